"""The NautilusTrader half of the side-by-side backtest, run as a script by a Python that has nautilus-trader.

Self-contained on purpose (stdlib + nautilus_trader only): it may run in a separate venv, because
nautilus-trader pins pandas<3. Reads the bars ttlive's fake venue serves (CSV), prints one JSON object.

Usage: python nautilus_side.py BARS.csv [--fast 12 --slow 26 --trade-size 100 --cash-usd 1000000]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import time
from decimal import Decimal
from importlib import metadata
from typing import Any

VENUE = "XNAS"


def _load_bars(path: str) -> dict[str, list[tuple[int, str, str, str, str, int]]]:
    """symbol -> [(bar start ns, open, high, low, close, volume)] in file order."""
    out: dict[str, list[tuple[int, str, str, str, str, int]]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            out.setdefault(row["symbol"], []).append(
                (int(row["ts_ns"]), row["open"], row["high"], row["low"], row["close"], int(row["volume"]))
            )
    return out


def run(
    bars_csv: str,
    *,
    fast: int,
    slow: int,
    trade_size: int,
    cash_usd: int,
    bar_interval_s: int,
    decision_interval_s: int,
) -> dict[str, Any]:
    t_start = time.perf_counter()
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.examples.strategies.ema_cross_long_only import (
        EMACrossLongOnly,
        EMACrossLongOnlyConfig,
    )
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.enums import AccountType, OmsType
    from nautilus_trader.model.identifiers import TraderId, Venue
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.test_kit.providers import TestInstrumentProvider

    t_imported = time.perf_counter()
    raw = _load_bars(bars_csv)
    engine = BacktestEngine(
        config=BacktestEngineConfig(trader_id=TraderId("BENCH-001"), logging=LoggingConfig(log_level="ERROR"))
    )
    engine.add_venue(
        venue=Venue(VENUE),
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(cash_usd, USD)],
    )
    interval_ns = bar_interval_s * 1_000_000_000
    n_bars = 0
    for symbol in sorted(raw):
        instrument = TestInstrumentProvider.equity(symbol=symbol, venue=VENUE)
        engine.add_instrument(instrument)
        bar_type = BarType.from_str(f"{symbol}.{VENUE}-{bar_interval_s}-SECOND-LAST-EXTERNAL")
        # The strategy decides on bars of decision_interval_s that Nautilus aggregates from the data bars,
        # as ttlive's market actor rolls stream bars into decision bars.
        decision_type = (
            bar_type
            if decision_interval_s == bar_interval_s
            else BarType.from_str(
                f"{symbol}.{VENUE}-{decision_interval_s}-SECOND-LAST-INTERNAL@{bar_interval_s}-SECOND-EXTERNAL"
            )
        )
        series = [
            Bar(
                bar_type,
                Price.from_str(o),
                Price.from_str(h),
                Price.from_str(lo),
                Price.from_str(c),
                Quantity.from_int(v),
                ts + interval_ns,  # nautilus stamps a bar at its close; the fake venue at its start
                ts + interval_ns,
            )
            for ts, o, h, lo, c, v in raw[symbol]
        ]
        n_bars += len(series)
        engine.add_data(series)
        config = EMACrossLongOnlyConfig(
            instrument_id=instrument.id,
            bar_type=decision_type,
            trade_size=Decimal(trade_size),
            fast_ema_period=fast,
            slow_ema_period=slow,
            request_historical_bars=False,
            close_positions_on_stop=False,
        )
        engine.add_strategy(EMACrossLongOnly(config=config))
    t_ready = time.perf_counter()
    engine.run()
    t_run = time.perf_counter()
    orders = engine.cache.orders()
    fills = sum(1 for o in orders if o.is_closed and o.filled_qty > 0)
    result = {
        "library": "nautilus_trader",
        "version": metadata.version("nautilus_trader"),
        "python": sys.version.split()[0],
        "numpy": metadata.version("numpy"),
        "strategy": f"EMACrossLongOnly({fast}/{slow}, size {trade_size}) on {decision_interval_s}-s bars",
        "symbols": sorted(raw),
        "bars": n_bars,
        "orders": len(orders),
        "filled_orders": fills,
        "import_s": t_imported - t_start,
        "setup_s": t_ready - t_imported,
        "run_s": t_run - t_ready,
        "total_s": t_run - t_start,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    engine.dispose()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bars_csv")
    parser.add_argument("--fast", type=int, default=12)
    parser.add_argument("--slow", type=int, default=26)
    parser.add_argument("--trade-size", type=int, default=100)
    parser.add_argument("--cash-usd", type=int, default=1_000_000)
    parser.add_argument("--bar-interval-s", type=int, default=60)
    parser.add_argument("--decision-interval-s", type=int, default=60)
    args = parser.parse_args(argv)
    result = run(
        args.bars_csv,
        fast=args.fast,
        slow=args.slow,
        trade_size=args.trade_size,
        cash_usd=args.cash_usd,
        bar_interval_s=args.bar_interval_s,
        decision_interval_s=args.decision_interval_s,
    )
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
