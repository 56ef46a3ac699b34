"""alpaca-py against ``ttlive fake-alpaca`` as a user starts it (default speed, default ticks): quotes and trades
arrive within 2 s of subscribing, as on a real feed; a request without credentials gets Alpaca's 401.

These wait on real time by nature: every wait is bounded (``FAIL_AFTER_S``) and arrival is measured, not slept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alpaca.data.live import StockDataStream
from alpaca.data.models import Quote, Trade

from tests.conformance.test_alpaca_py import RunningFake, _run_in_thread
from tools import cli
from tools.cmd_fake_alpaca import DEFAULT_SYMBOLS, FakeAlpacaOptions, build_server, exposure_warning, options_from_args

REPO = Path(__file__).resolve().parents[2]

ARRIVAL_BOUND_S = 2.0  # a real IEX subscription on a liquid name sees quotes within a second
FAIL_AFTER_S = 10.0


@pytest.fixture(scope="module")
def default_fake() -> Iterator[RunningFake]:
    with RunningFake(FakeAlpacaOptions(seed=1, rate_limit_per_min=0)) as running:  # speed 1, realistic ticks
        yield running


class _SubscribedAt(logging.Handler):
    """alpaca-py logs ``subscribed to ...`` when the server acknowledges the subscription: the clock starts."""

    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.at is None and record.getMessage().startswith("subscribed to"):
            self.at = time.monotonic()


def test_stock_data_stream_gets_quotes_and_trades_within_two_seconds(default_fake: RunningFake) -> None:
    assert default_fake.venue.market.realistic_ticks
    first: dict[tuple[str, str], float] = {}
    wanted = {(kind, s) for kind in ("q", "t") for s in DEFAULT_SYMBOLS}
    all_arrived = threading.Event()

    def arrived(kind: str, symbol: str) -> None:
        first.setdefault((kind, symbol), time.monotonic())
        if wanted <= first.keys():
            all_arrived.set()

    async def on_quote(quote: Quote) -> None:
        arrived("q", quote.symbol)

    async def on_trade(trade: Trade) -> None:
        arrived("t", trade.symbol)

    marker = _SubscribedAt()
    logger = logging.getLogger("alpaca.data.live.websocket")
    logger.addHandler(marker)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    stream = StockDataStream("any-key", "any-secret", url_override=f"{default_fake.ws_url}/v2/iex")
    stream.subscribe_quotes(on_quote, *DEFAULT_SYMBOLS)
    stream.subscribe_trades(on_trade, *DEFAULT_SYMBOLS)
    started = time.monotonic()
    thread = _run_in_thread(stream)
    try:
        all_arrived.wait(FAIL_AFTER_S)
    finally:
        stream.stop()
        thread.join(15)
        logger.removeHandler(marker)
        logger.setLevel(old_level)
    assert not thread.is_alive(), "StockDataStream did not stop"
    missing = sorted(wanted - first.keys())
    assert not missing, f"nothing of {missing} within {FAIL_AFTER_S} s of starting the stream"
    subscribed = marker.at if marker.at is not None else started
    late = {k: round(t - subscribed, 3) for k, t in first.items() if t - subscribed > ARRIVAL_BOUND_S}
    assert not late, f"first arrivals later than {ARRIVAL_BOUND_S} s after subscribing: {late}"


def test_rest_without_credentials_is_refused_like_alpaca(default_fake: RunningFake) -> None:
    with httpx.Client(base_url=default_fake.url, timeout=10) as client:
        bare = client.get("/v2/account")
        assert (bare.status_code, bare.json()) == (401, {"code": 40110000, "message": "request is not authorized"})
        half = client.get("/v2/orders", headers={"APCA-API-KEY-ID": "only-the-key"})
        assert half.status_code == 401
        data = client.get("/v2/stocks/NVDA/quotes/latest")
        assert (data.status_code, data.json()) == (401, {"message": "unauthorized."})
        pair = {"APCA-API-KEY-ID": "any", "APCA-API-SECRET-KEY": "pair"}
        assert client.get("/v2/account", headers=pair).status_code == 200
        latest = client.get("/v2/stocks/NVDA/quotes/latest", headers=pair).json()["quote"]
        assert latest["bp"] < latest["ap"]


def test_binding_beyond_loopback_warns() -> None:
    for host in ("127.0.0.1", "::1", "localhost", "LOCALHOST"):
        assert exposure_warning(host) is None
    for host in ("0.0.0.0", "::", "192.0.2.7"):
        warning = exposure_warning(host)
        assert warning is not None and "WARNING" in warning and host in warning


def test_ticks_default_realistic_unless_asked(tmp_path: Path) -> None:
    def market(*argv: str) -> Any:
        args = cli.build_parser().parse_args(["fake-alpaca", "--port", "0", *argv])
        return build_server(options_from_args(args)).venue.market

    assert market().realistic_ticks
    assert not market("--ticks", "bar").realistic_ticks
    plain = tmp_path / "plain.toml"  # a scenario that does not say: the server's default
    plain.write_text((REPO / "scenarios" / "clean_day.toml").read_text())
    assert market("--scenario", str(plain)).realistic_ticks
    barred = tmp_path / "barred.toml"
    barred.write_text(plain.read_text().replace('source = "replay"', 'source = "replay"\nticks = "bar"'))
    assert not market("--scenario", str(barred)).realistic_ticks
    assert market("--scenario", str(barred), "--ticks", "realistic").realistic_ticks
