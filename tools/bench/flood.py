"""Memory with the market-data buffer full: a fresh process floods the real stream decoder until it drops.

Run as ``python -m tools.bench.flood MESSAGES`` (the memory group starts it, so nothing else the suite loaded
counts): frames go through ``MarketDataStream.on_frame`` (msgpack decode -> domain Quote -> the spec 3.3
drop-oldest buffer) with no consumer, so the buffer fills to its 10,000 bound and then drops the oldest.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import msgpack
import trio

from adapters.alpaca.config import Credentials
from adapters.alpaca.streams import MarketDataStream
from core.limits import STREAM_BUFFER_MAX_MESSAGES

MESSAGES_PER_FRAME = 10
SYMBOLS = ("NVDA", "ORCL", "YHOO")
START_NS = 1_401_715_860_000_000_000  # 2014-06-02 09:31 ET


def _status_kib(field: str) -> int:
    """VmRSS / VmHWM of this process from /proc (Linux), in KiB."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _frame(first: int) -> bytes:
    """Ten quotes exactly as the fake venue (and Alpaca) frames them on a msgpack stream."""
    messages: list[dict[str, Any]] = []
    for k in range(first, first + MESSAGES_PER_FRAME):
        bid = 19.0 + (k % 200) / 100
        messages.append(
            {
                "T": "q",
                "S": SYMBOLS[k % len(SYMBOLS)],
                "ax": "V",
                "ap": bid + 0.01,
                "as": 300,
                "bx": "V",
                "bp": bid,
                "bs": 200,
                "c": ["R"],
                "t": msgpack.Timestamp.from_unix_nano(START_NS + k * 1_000_000),
                "z": "C",
            }
        )
    frame: bytes = msgpack.packb(messages, use_bin_type=True)
    return frame


class _Clock:
    def now_ns(self) -> int:
        return START_NS


async def flood(messages: int) -> dict[str, Any]:
    stream = MarketDataStream(
        url="ws://fake-alpaca/v2/iex", credentials=Credentials(key_id="k", secret_key="s"), clock=_Clock()
    )
    logging.getLogger("ttlive.alpaca.streams").setLevel(
        logging.ERROR
    )  # one drop warning per 1,000: noise here
    rss_before_kib = _status_kib("VmRSS")
    started = time.perf_counter()
    for first in range(0, messages, MESSAGES_PER_FRAME):
        stream.on_frame(_frame(first))
    elapsed_s = time.perf_counter() - started
    buffer = stream.buffer
    assert len(buffer) == min(messages, STREAM_BUFFER_MAX_MESSAGES), (len(buffer), messages)
    return {
        "messages": messages,
        "buffered": len(buffer),
        "capacity": buffer.capacity,
        "dropped": buffer.dropped,
        "high_water": buffer.high_water,
        "rss_before_flood_mib": rss_before_kib / 1024,
        "rss_full_mib": _status_kib("VmRSS") / 1024,
        "peak_rss_mib": _status_kib("VmHWM") / 1024,
        "encode_decode_msgs_per_s": messages / elapsed_s,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    messages = int(args[0]) if args else 5 * STREAM_BUFFER_MAX_MESSAGES
    print(json.dumps(trio.run(flood, messages), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
