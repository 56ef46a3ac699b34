"""``ttlive compliance --date D``: reconcile the broker's records (spec 4.4) against the audit trail for one
date, list every difference, and write the daily P&L reconciliation and the weekly performance report (HTML).

Broker records: ``--sim-report DIR`` reads the ones ``ttlive run`` pulled from the fake venue at the end of a
simulated session (``DIR/broker.json``, audit in ``DIR/audit``); a paper or live config pulls them from
Alpaca's REST API. Exit status: 0 reconciled (no differences), 1 differences found, 2 bad input or records
unavailable.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from core.config import ConfigError, Mode
from tools.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

FETCH_TIMEOUT_S = 120.0


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None


def register(sub: Any) -> None:
    p = sub.add_parser(
        "compliance",
        help="reconcile broker records against the audit trail for a date",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--date", type=_date, required=True, help="the trading date, YYYY-MM-DD (UTC, as audit files)"
    )
    p.add_argument(
        "--audit", type=Path, default=None, help="audit directory (default: the run's or config's)"
    )
    p.add_argument("--config", type=Path, default=None, help="engine config (paper/live: pull from Alpaca)")
    p.add_argument(
        "--sim-report",
        type=Path,
        default=None,
        metavar="DIR",
        help="a `ttlive run` output directory: use the broker records it pulled from the fake venue",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="where to write the reports (default: DIR/compliance)"
    )
    p.set_defaults(func=run)


class UsageError(Exception):
    pass


def _records(args: argparse.Namespace) -> tuple[Any, Path, Path]:
    """(broker records, audit dir, directory the reports go under)."""
    from tools.compliance import BROKER_RECORDS_NAME, load_records
    from tools.runner import RunError, load_config, state_dir

    if args.sim_report is not None:
        run_dir: Path = args.sim_report
    else:
        config = load_config(args.config)
        if config.mode is not Mode.SIM:
            try:
                return _pull(config, args)
            except RunError as exc:
                raise UsageError(str(exc)) from None
        run_dir = state_dir(config)
    path = run_dir / BROKER_RECORDS_NAME
    if not path.is_file():
        raise UsageError(
            f"no broker records at {path}: run `ttlive run --out {run_dir}` first (it pulls them "
            "from the fake venue at the end of the session), or give --sim-report DIR"
        )
    try:
        records = load_records(path)
    except Exception as exc:
        raise UsageError(f"{path}: unreadable broker records ({type(exc).__name__})") from None
    return records, args.audit or run_dir / "audit", run_dir


def _pull(config: Any, args: argparse.Namespace) -> tuple[Any, Path, Path]:
    import trio

    from adapters.alpaca.clock import WallClock
    from adapters.bootstrap import BrokerLink, open_rest
    from tools.compliance import fetch_broker_records, save_records
    from tools.runner import credentials, state_dir

    creds = credentials(config, "the compliance pull")
    clock = WallClock()
    link = BrokerLink.alpaca(config.mode, config.broker, creds)

    async def fetch() -> Any:
        async with open_rest(link, clock=clock) as rest:
            with trio.fail_after(FETCH_TIMEOUT_S):
                return await fetch_broker_records(rest, source=str(config.mode), now_ns=clock.now_ns())

    try:
        records = trio.run(fetch)
    except Exception as exc:  # broker errors are translated at the adapter; they carry no secrets
        raise UsageError(f"could not pull the broker records: {type(exc).__name__}: {exc}") from None
    run_dir = state_dir(config)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_records(run_dir / f"broker-{args.date.isoformat()}.json", records)
    return records, args.audit or Path(config.audit.dir), run_dir


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from tools.compliance import load_audit, write_reports

    try:
        records, audit_dir, run_dir = _records(args)
    except (UsageError, ConfigError) as exc:
        print(f"ttlive compliance: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not audit_dir.is_dir():
        print(f"ttlive compliance: no such audit directory: {audit_dir}", file=sys.stderr)
        return EXIT_USAGE
    trail = load_audit(audit_dir)
    result, result_path, weekly_path = write_reports(args.date, records, trail, args.out or run_dir / "compliance")

    console = Console()
    table = Table(title=f"compliance {args.date} ({records.source})", show_header=False)
    for key, value in sorted(result.counts.items()):
        table.add_row(key, str(value))
    pnl = result.daily_pnl
    table.add_row(
        "realized P&L broker / audit", f"{pnl.realized_pl_broker_usd} / {pnl.realized_pl_audit_usd}"
    )
    table.add_row("equity end / change", f"{pnl.equity_end_usd} / {pnl.equity_change_usd}")
    table.add_row("differences", str(len(result.differences)))
    console.print(table)
    for diff in result.differences:
        console.print(
            f"[red]{diff.kind}[/red] {diff.subject}: {diff.detail}", soft_wrap=True, highlight=False
        )
    console.print(f"reconciliation: {result_path}\nweekly report: {weekly_path}", soft_wrap=True)
    if result.ok:
        console.print("[green]OK[/green]: every fill, order and position reconciles with the audit trail")
        return EXIT_OK
    return EXIT_FAILED
