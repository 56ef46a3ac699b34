"""Issue 22: what recording the wire costs per frame (``adapters.capture``): decode + scrub + JSON + gzip sync
flush of one market-data frame (msgpack, two bars and two quotes, as Alpaca sends them), on a real file."""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgpack

from adapters.capture import CaptureWriter, decode_payload
from tools.bench.common import LatencyStats, Options, time_each

SECRETS = ("PKBENCHKEY0000000001", "bench-secret-key-not-real-0001")


def market_frame(i: int) -> bytes:
    ts = msgpack.Timestamp.from_unix_nano(1_401_716_160_000_000_000 + i * 60_000_000_000)
    bars = [{"T": "b", "S": s, "o": 19.01, "h": 19.05, "l": 18.99, "c": 19.03, "v": 94_614, "n": 471, "vw": 19.02,
             "t": ts} for s in ("NVDA", "ORCL")]
    quotes = [{"T": "q", "S": s, "bp": 19.02, "bs": 300, "ap": 19.04, "as": 500, "t": ts} for s in ("NVDA", "ORCL")]
    return msgpack.packb(bars + quotes)  # type: ignore[no-any-return]


def bench_capture_frame(options: Options) -> tuple[LatencyStats, float]:
    """(per-frame latency of recording one received frame, compressed bytes per frame)."""
    n = options.n(10_000, 200)
    frames = [market_frame(i) for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="ttlive-bench-capture-") as directory:
        writer = CaptureWriter(Path(directory), secrets=SECRETS, header={}, session="bench")

        def record(frame: bytes) -> None:
            enc, data = decode_payload(frame, writer.scrub)
            writer.write({"t": "ws_in", "conn": 1, "enc": enc, "data": data})

        stats = time_each(record, frames, warmup=min(100, n // 10))
        size = writer.size_bytes
        writer.close()
    return stats, size / max(1, n)
