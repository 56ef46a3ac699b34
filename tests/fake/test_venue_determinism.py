"""Same seed + same request script => byte-identical REST responses and stream frames (spec: replayable sims)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from adapters.fake.faults import FaultPlan
from tests.fake.test_venue_support import MINUTE_NS, NS, START_NS, make_venue, request


def _script(seed: int) -> list[Any]:
    """A busy session: orders of every kind, faults drawn, partial fills, replaces, cancels, closes."""
    plan = FaultPlan.from_toml_dict(
        {
            "rest_5xx_p": 0.1,
            "rest_timeout_after_accept_p": 0.1,
            "trade_update_drop_p": 0.1,
            "trade_update_duplicate_p": 0.1,
            "trade_update_reorder_p": 0.2,
            "events": [{"kind": "position_drift", "at_ns": START_NS + 3 * MINUTE_NS, "symbol": "MSFT", "qty": "5"}],
        }
    )
    venue, market = make_venue(seed=seed, faults=plan, passive_fill_probability=0.4, cash_usd=Decimal(1_000_000))
    market.set_quote("AAPL", "100.00", "100.02", bid_size=200, ask_size=200)
    session = venue.open_trading_stream()
    out: list[Any] = [
        session.receive(json.dumps({"action": "auth", "key": "k", "secret": "s"})),
        session.receive(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}})),
    ]
    bodies = [
        {"symbol": "AAPL", "qty": 500, "side": "buy", "type": "market", "time_in_force": "day"},
        {"symbol": "AAPL", "qty": "50", "side": "buy", "type": "limit", "limit_price": 99.99, "time_in_force": "gtc"},
        {"symbol": "MSFT", "qty": "20", "side": "sell", "type": "market", "time_in_force": "day"},
        {
            "symbol": "MSFT",
            "qty": "10",
            "side": "buy",
            "type": "limit",
            "limit_price": "50.01",
            "time_in_force": "day",
            "order_class": "bracket",
            "take_profit": {"limit_price": "51"},
            "stop_loss": {"stop_price": "49"},
        },
    ]
    for minute in range(8):
        venue.advance_to(START_NS + minute * MINUTE_NS + 7 * NS)
        market.set_quote(
            "AAPL",
            f"{100 + minute * 0.05:.2f}",
            f"{100.02 + minute * 0.05:.2f}",
            bid_size=200,
            ask_size=200,
            from_ns=START_NS + minute * MINUTE_NS,
        )
        for body in bodies:
            response = venue.handle_rest(request("POST", "/v2/orders", body=body))
            out.append(
                (response.status, response.body, sorted(response.headers.items()), response.drop_response_after_s)
            )
        for method, path, query in (
            ("GET", "/v2/orders", {"status": "all", "nested": "true"}),
            ("GET", "/v2/positions", {}),
            ("GET", "/v2/account", {}),
            ("GET", "/v2/account/activities", {}),
        ):
            out.append(venue.handle_rest(request(method, path, query=query)).body)
        if minute == 4:
            out.append(venue.handle_rest(request("DELETE", "/v2/orders")).body)
        out.append([getattr(item, "data", item) for item in session.drain()])
    out.append(venue.handle_rest(request("DELETE", "/v2/positions", query={"cancel_orders": "True"})).body)
    venue.advance_to(START_NS + 10 * MINUTE_NS)
    out.append([getattr(item, "data", item) for item in session.drain()])
    out.append(venue.handle_rest(request("GET", "/v2/account/portfolio/history", query={"period": "1D"})).body)
    assert venue.internal_errors == []
    return out


def test_same_seed_same_bytes() -> None:
    first, second = _script(11), _script(11)
    assert first == second
    assert sum(len(frames) for frames in first if isinstance(frames, list)) > 20  # the script did stream


def test_different_seed_different_ids() -> None:
    assert _script(11) != _script(12)


def test_same_bytes_in_a_new_process_with_another_hash_seed() -> None:
    import hashlib
    import os
    import subprocess
    import sys

    code = (
        "import hashlib; from tests.fake.test_venue_determinism import _script; "
        "print(hashlib.sha256(repr(_script(11)).encode()).hexdigest())"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        digests.add(result.stdout.strip())
    assert digests == {hashlib.sha256(repr(_script(11)).encode()).hexdigest()}
