"""``ttlive fake-alpaca``: serve the deterministic fake Alpaca venue on 127.0.0.1 until Ctrl-C.

REST at http://HOST:PORT/v2/..., trading stream at ws://HOST:PORT/stream, market data at /v2/iex and /v2/sip;
point alpaca-py at it with ``url_override``. Its clock starts at a market open of a replay date.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import signal
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tools.exitcodes import EXIT_OK, EXIT_USAGE

DEFAULT_SYMBOLS = ("NVDA", "ORCL")
DEFAULT_START_DATE = "2014-06-02"
DEFAULT_TICKS = "realistic"  # quotes and trades between bars, as a real feed has them (FORMAT.md, "Ticks")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "[::1]", "localhost"})


class UsageError(ValueError):
    """Arguments that cannot be served; the command exits 2 with this message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeAlpacaOptions:
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    sectors: dict[str, str] = field(default_factory=dict)
    key_id: str | None = None
    secret_key: str | None = None
    start_date: str = DEFAULT_START_DATE
    speed: float = 1.0
    clock: str = "session"  # session (trading time from a replay open) | wall (real NYSE hours, wall time)
    # | now (drills: wall time, a market open around the clock, so a paper runner on the wall clock trades)
    market: Any = None  # a [market]-like object for adapters.fake.market_spec.market_from_spec; None = replay
    ticks: str | None = None  # --ticks: bar | realistic; None = the scenario's [market] ticks, else realistic
    bar_interval_s: int = 60
    account_type: str = "margin_initial"
    cash_usd: Decimal = Decimal(100_000)
    pattern_day_trader: bool = False
    rate_limit_per_min: int = 200
    faults: dict[str, Any] = field(default_factory=dict)  # a [faults] table
    drill_admin: bool = False  # serve /_drill/... (records, drop streams, crash with a snapshot)
    snapshot_path: str | None = None  # where /_drill/crash writes the venue; --restore reads it back
    restore: bool = False  # start from the venue pickled at snapshot_path (a venue restart in a drill)
    short_sessions: tuple[int, int] | None = None  # --clock now: (session s, break s), days squeezed into minutes
    trading_stream_frames: str = "binary"  # binary (as Alpaca paper) | text
    trade_events: str = "basic"  # basic | full (every documented trade_updates event; adapters.fake.venue)


@dataclass(frozen=True, slots=True)
class _MarketSpec:
    source: str = "replay"
    files: dict[str, str] = field(default_factory=dict)


def _symbols(text: str) -> tuple[str, ...]:
    symbols = tuple(dict.fromkeys(s.strip().upper() for s in text.split(",") if s.strip()))
    if not symbols:
        raise argparse.ArgumentTypeError("give at least one symbol, e.g. NVDA,ORCL")
    return symbols


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


SHORT_SESSIONS_HISTORY = 60  # --short-sessions: squeezed sessions before the first open (the warm-up's bars)


def _short_sessions(text: str) -> tuple[int, int]:
    try:
        session_s, break_s = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SESSION_S,BREAK_S (two whole seconds), got {text!r}") from None
    if session_s < 5 or break_s < 5:
        raise argparse.ArgumentTypeError(f"sessions and breaks last at least 5 s, got {text!r}")
    return session_s, break_s


def _date(text: str) -> str:
    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fake-alpaca",
        help="serve the deterministic fake Alpaca venue on localhost (REST + streams, alpaca-py compatible)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=_port, required=True, help="TCP port (0 = pick a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--seed", type=int, default=None, help="venue seed (default: scenario's, else 0)")
    parser.add_argument("--scenario", type=Path, default=None, help="scenario TOML: market, account, faults")
    parser.add_argument("--key", default=None, help="accept only this API key id (default: any)")
    parser.add_argument("--secret", default=None, help="the secret for --key")
    parser.add_argument("--symbols", type=_symbols, default=None, help="comma list (default NVDA,ORCL)")
    parser.add_argument(
        "--start-date", type=_date, default=None, help=f"replay date (default {DEFAULT_START_DATE})"
    )
    parser.add_argument(
        "--speed", type=_positive_float, default=1.0, help="session seconds per wall second (default 1)"
    )
    parser.add_argument(
        "--clock",
        choices=("session", "wall", "now"),
        default="session",
        help="session: start at a replay open, trading hours only (default); wall: real NYSE "
        "hours at wall time with generated prices; now: wall time with the market open around the clock "
        "(UTC-day sessions, generated prices), for drills against a paper runner",
    )
    parser.add_argument(
        "--short-sessions",
        type=_short_sessions,
        default=None,
        metavar="SESSION_S,BREAK_S",
        help="with --clock now: sessions of SESSION_S seconds every SESSION_S+BREAK_S seconds, the first opening "
        "BREAK_S seconds after start (drills of a runner that goes from session to session)",
    )
    parser.add_argument("--bar-interval-s", type=int, choices=(1, 5, 10, 15, 30, 60, 300), default=None)
    parser.add_argument(
        "--ticks",
        choices=("bar", "realistic"),
        default=None,
        help="realistic: quotes and trades between bars at a seeded, bursty cadence (default, unless the "
        "scenario's [market] ticks says otherwise); bar: one quote and one trade per bar",
    )
    parser.add_argument("--cash-usd", default=None, help="starting cash (default 100000)")
    parser.add_argument("--rate-limit", type=int, default=200, help="requests per minute per key (0 = off)")
    parser.add_argument(
        "--drill-admin",
        action="store_true",
        help="serve the drill endpoints: GET /_drill/records, POST /_drill/drop_streams, POST /_drill/crash",
    )
    parser.add_argument(
        "--snapshot", type=Path, default=None, help="file /_drill/crash pickles the venue to (--drill-admin)"
    )
    parser.add_argument(
        "--restore", action="store_true", help="start from the venue in --snapshot (a restarted venue)"
    )
    parser.add_argument(
        "--trading-frames", choices=("binary", "text"), default="binary",
        help="trading-stream frame type (default binary, as Alpaca paper sends them)",
    )
    parser.add_argument(
        "--trade-events", choices=("basic", "full"), default="basic",
        help="full: also pending_new, pending_cancel (cancels land 50 ms later), pending_replace, "
        "order_cancel_rejected, order_replace_rejected, done_for_day, calculated, suspended",
    )
    parser.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> FakeAlpacaOptions:
    """Validate the combination of arguments (and the scenario file); raises UsageError."""
    if (args.key is None) != (args.secret is None):
        raise UsageError("give both --key and --secret, or neither")
    if args.rate_limit < 0:
        raise UsageError("--rate-limit must be >= 0")
    values: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "speed": args.speed,
        "clock": args.clock,
        "key_id": args.key,
        "secret_key": args.secret,
        "rate_limit_per_min": args.rate_limit,
        "drill_admin": getattr(args, "drill_admin", False),
        "snapshot_path": str(args.snapshot) if getattr(args, "snapshot", None) is not None else None,
        "restore": getattr(args, "restore", False),
        "ticks": getattr(args, "ticks", None),
        "trading_stream_frames": getattr(args, "trading_frames", "binary"),
        "trade_events": getattr(args, "trade_events", "basic"),
    }
    if args.short_sessions is not None:
        if args.clock != "now":
            raise UsageError("--short-sessions needs --clock now")
        values["short_sessions"] = args.short_sessions
    if values["snapshot_path"] is not None and not values["drill_admin"]:
        raise UsageError("--snapshot needs --drill-admin")
    if values["restore"]:
        if args.clock == "session":
            raise UsageError("--restore needs --clock now or wall (a session clock would restart the day)")
        if values["snapshot_path"] is None:
            raise UsageError("--restore needs --snapshot FILE")
        if not Path(values["snapshot_path"]).is_file():
            raise UsageError(f"--restore: no snapshot at {values['snapshot_path']}")
    if args.scenario is not None:
        values.update(_scenario_values(args.scenario))
    if args.seed is not None:
        values["seed"] = args.seed
    if args.symbols is not None:
        if args.scenario is not None:
            raise UsageError("--symbols and --scenario do not mix: the scenario lists its instruments")
        values["symbols"] = args.symbols
    if args.start_date is not None:
        values["start_date"] = args.start_date
    if args.bar_interval_s is not None:
        values["bar_interval_s"] = args.bar_interval_s
    if args.cash_usd is not None:
        try:
            cash = Decimal(args.cash_usd)
        except InvalidOperation:
            raise UsageError(f"--cash-usd is not a number: {args.cash_usd!r}") from None
        if not cash.is_finite() or cash < 0:
            raise UsageError("--cash-usd must be >= 0")
        values["cash_usd"] = cash
    if args.clock in ("wall", "now"):
        values["start_date"] = dt.datetime.now(dt.UTC).date().isoformat()
        values["market"] = _generator_for_wall(values.get("market"))
    return FakeAlpacaOptions(**values)


def _generator_for_wall(market: Any) -> Any:
    """The replay files end in 2015, so wall-clock mode prices come from the seeded generator."""
    if market is not None and getattr(market, "source", "") == "generator":
        return market
    from sim.scenario import MarketSpec

    return MarketSpec(source="generator")


def _scenario_values(path: Path) -> dict[str, Any]:
    from core.config import ConfigError
    from sim.scenario import load_scenario

    try:
        scenario = load_scenario(path)  # validates everything, the [faults] table included
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return {
        "seed": scenario.seed,
        "symbols": tuple(i.symbol for i in scenario.instruments),
        "sectors": {i.symbol: i.sector for i in scenario.instruments},
        "start_date": scenario.session.start,
        "bar_interval_s": scenario.session.bar_interval_s,
        "market": scenario.market,
        "account_type": scenario.account.type,
        "cash_usd": Decimal(scenario.account.cash_usd),
        "pattern_day_trader": scenario.account.pattern_day_trader,
        "faults": dict(scenario.faults),
    }


def build_server(opts: FakeAlpacaOptions) -> Any:
    """The LoopbackServer for these options (venue, market, calendar and clock mapping)."""
    from adapters.fake.calendar import (
        AlwaysOpenCalendar,
        ArraySessionCalendar,
        LinearClock,
        NyseCalendar,
        ShortSessionsCalendar,
        TradingTimeClock,
    )
    from adapters.fake.faults import FaultPlan, FaultPlanError
    from adapters.fake.market_spec import market_from_spec
    from adapters.fake.server import LoopbackServer
    from adapters.fake.venue import Venue, VenueConfig

    calendar: ArraySessionCalendar = AlwaysOpenCalendar() if opts.clock == "now" else NyseCalendar()
    clock: LinearClock | TradingTimeClock
    market_start = opts.start_date
    if opts.restore:
        return _restored_server(opts)
    if opts.clock in ("wall", "now"):
        clock = LinearClock(time.time_ns())  # the shell reads the wall clock once; the venue never does
        if opts.short_sessions is not None:
            session_s, break_s = opts.short_sessions
            calendar = ShortSessionsCalendar(
                clock.session_ns(float(break_s)), opts.start_date, session_s=session_s, break_s=break_s,
                history=SHORT_SESSIONS_HISTORY,
            )
            market_start = calendar.session(0)[0]  # prices from the first history session: warm-up bars exist
    else:
        clock = TradingTimeClock(calendar, opts.start_date, speed=opts.speed)
    start_ns = clock.session_ns(0.0)
    try:
        market = market_from_spec(
            opts.market if opts.market is not None else _MarketSpec(),
            symbols=opts.symbols,
            sectors=opts.sectors,
            seed=opts.seed,
            bar_interval_s=opts.bar_interval_s,
            start_date=market_start,
            calendar=calendar,
            default_ticks=DEFAULT_TICKS,
        )
        if opts.ticks is not None:
            market.set_ticks(opts.ticks, float(getattr(opts.market, "tick_rate", 1.0)))
        faults = FaultPlan.from_toml_dict(opts.faults)
        config = VenueConfig(
            seed=opts.seed,
            account_type=opts.account_type,
            cash_usd=opts.cash_usd,
            pattern_day_trader=opts.pattern_day_trader,
            key_id=opts.key_id,
            secret_key=opts.secret_key,
            rate_limit_per_min=opts.rate_limit_per_min,
            faults=faults,
            trading_stream_frames=opts.trading_stream_frames,
            trade_events=opts.trade_events,
        )
    except (ValueError, FileNotFoundError, FaultPlanError) as exc:
        raise UsageError(str(exc)) from None
    venue = Venue(config, market=market, calendar=calendar, start_ns=start_ns)
    return LoopbackServer(venue, clock, drill_admin=opts.drill_admin, snapshot_path=opts.snapshot_path)


def _restored_server(opts: FakeAlpacaOptions) -> Any:
    """A venue restarted from the snapshot a ``/_drill/crash`` wrote: its books, account and records
    survive, its connections do not; its clock resumes at wall time (never before the snapshot)."""
    import pickle

    from adapters.fake.calendar import LinearClock
    from adapters.fake.server import LoopbackServer, forget_connections

    assert opts.snapshot_path is not None
    with open(opts.snapshot_path, "rb") as fh:
        venue = pickle.load(fh)  # our own file, written by this program's /_drill/crash
    forget_connections(venue)
    clock = LinearClock(max(time.time_ns(), venue.now_ns))
    return LoopbackServer(venue, clock, drill_admin=opts.drill_admin, snapshot_path=opts.snapshot_path)


def exposure_warning(host: str) -> str | None:
    """The warning printed when the fake is bound beyond loopback (anyone who reaches the port may trade it)."""
    if host.lower() in LOOPBACK_HOSTS:
        return None
    return (
        f"ttlive fake-alpaca: WARNING: bound to {host}, beyond loopback: anyone who can reach this port can use "
        "the fake venue (any non-empty key pair is accepted unless --key/--secret are given). Bind 127.0.0.1 "
        "unless you mean it."
    )


def run(args: argparse.Namespace) -> int:
    try:
        opts = options_from_args(args)
        server = build_server(opts)
    except UsageError as exc:
        print(f"ttlive fake-alpaca: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    warning = exposure_warning(opts.host)
    if warning is not None:
        print(warning, file=sys.stderr, flush=True)
    import trio

    from adapters.fake.calendar import et_from_ns

    async def main() -> None:
        async def until_signal() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    return

        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                lambda task_status: server.serve(
                    opts.host, opts.port, shutdown_trigger=until_signal, task_status=task_status
                )
            )
            url = binds[0] if binds else f"http://{opts.host}:{opts.port}"
            ws = url.replace("http://", "ws://", 1)
            print(
                f"fake-alpaca on {url}  (REST {url}/v2/..., trading {ws}/stream, data {ws}/v2/iex "
                f"and {ws}/v2/sip)",
                flush=True,
            )
            print(
                f"session clock starts {et_from_ns(server.venue.now_ns):%Y-%m-%d %H:%M %Z} "
                f"({opts.clock}, speed {opts.speed:g}); symbols {','.join(opts.symbols)}; seed {opts.seed}; "
                f"ticks {'realistic' if server.venue.market.realistic_ticks else 'bar'}; Ctrl-C stops",
                flush=True,
            )

    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
    print("fake-alpaca stopped", flush=True)
    return EXIT_OK
