"""``ttlive kill`` and ``ttlive reset``: the kill switch from the command line (spec 2.3), audited either way.
``ttlive lift-go-live-cap``: the operator's audited lift of the go-live size cap (spec 6, core.sessions).

With ``--dashboard URL`` the command goes to a live runner's dashboard API (bearer token from ``--token`` or
TTLIVE_DASHBOARD_TOKEN) and the engine audits it. Otherwise the persisted engine state is edited so the next
start comes up halted (a kill leaves the latch HALTING: the next start cancels every open order before it
settles HALTED) or active (an audited manual reset), and a halt/reset record is appended to the audit trail.
A kill needs no state: it latches a runner that never ran here (or whose state file is unreadable: moved aside),
and the halt record alone keeps the next start halted (core.recovery).
A live runner holds the audit trail's lock: then the command goes to the dashboard the config names instead
(with ``--state`` there is no config to name one, and the command is refused).
Exit status: 0 done, 1 refused (nothing to reset, runner unreachable), 2 bad input or not authorised.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path
from typing import Any

from tools.exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE

HTTP_TIMEOUT_S = 10.0


def register(sub: Any) -> None:
    kill = sub.add_parser(
        "kill",
        help="engage the kill switch (running engine or persisted state)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kill.add_argument("--reason", required=True, help="why (audited)")
    kill.add_argument("--operator", default=None, help="who (audited; default: the login name)")
    _targets(kill)
    kill.set_defaults(func=run_kill)
    reset = sub.add_parser(
        "reset",
        help="manual reset of a halted kill switch (operator and reason required)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reset.add_argument("--operator", required=True, help="who resets (audited)")
    reset.add_argument("--reason", required=True, help="why it is safe to resume (audited)")
    _targets(reset)
    reset.set_defaults(func=run_reset)
    lift = sub.add_parser(
        "lift-go-live-cap",
        help="let live trading run above the go-live size_scale before its first 10 sessions (audited)",
        description=(
            "Spec 6: live trading starts at risk.size_scale <= 0.25 for its first 10 sessions, counted from the "
            "audit trail (core.sessions). This writes the operator's audited decision to lift that cap into the "
            "config's audit trail; `ttlive run --mode live` then accepts a larger size_scale. Refused while a "
            "runner holds the trail."
        ),
    )
    lift.add_argument("--config", type=Path, required=True, help="the live engine config (its audit trail)")
    lift.add_argument("--operator", required=True, help="who lifts the cap (audited)")
    lift.add_argument("--reason", required=True, help="why (audited)")
    lift.set_defaults(func=run_lift_go_live_cap)


def _targets(p: argparse.ArgumentParser) -> None:
    route = p.add_mutually_exclusive_group()
    route.add_argument(
        "--state", type=Path, default=None, help="engine state file (default: runs/sim/latest/state.json)"
    )
    route.add_argument(
        "--config", type=Path, default=None, help="engine config: its state file and audit dir"
    )
    route.add_argument(
        "--dashboard",
        default=None,
        metavar="URL",
        help="a live runner's dashboard, e.g. http://127.0.0.1:8765",
    )
    p.add_argument("--token", default=None, help="dashboard bearer token (default: TTLIVE_DASHBOARD_TOKEN)")
    p.add_argument("--audit", type=Path, default=None, help="audit dir (default: next to the state file)")


class RunnerLive(Exception):
    """The audit trail is locked: a runner is using this state; the engine itself must act."""

    def __init__(self, audit_dir: Path) -> None:
        super().__init__(str(audit_dir))
        self.audit_dir = audit_dir


class ControlError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _paths(args: argparse.Namespace) -> tuple[Path, Path]:
    from adapters.rundir import STATE_NAME
    from tools.runner import load_config, state_dir

    if args.config is not None:
        config = load_config(args.config)
        return state_dir(config) / STATE_NAME, args.audit or Path(config.audit.dir)
    state: Path = args.state or state_dir(load_config(None)) / STATE_NAME
    return state, args.audit or state.parent / "audit"


def _post(args: argparse.Namespace, path: str, body: dict[str, str]) -> int:
    import httpx

    from adapters.dashboard.server import token_from_env

    token = (args.token or token_from_env()).strip()
    if not token:
        raise ControlError("the dashboard route needs a token: --token or TTLIVE_DASHBOARD_TOKEN", EXIT_USAGE)
    url = args.dashboard.rstrip("/") + path
    try:
        response = httpx.post(
            url, json=body, headers={"authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT_S
        )
    except httpx.HTTPError as exc:
        raise ControlError(
            f"no runner answered at {args.dashboard} ({type(exc).__name__}); if none is running, "
            "use the state file route (--state or --config)",
            EXIT_FAILED,
        ) from None
    try:
        message = response.json()
    except ValueError:
        message = {"error": response.text[:200]}
    if response.status_code == 200:
        print(f"ok: kill switch now {message.get('halt', {}).get('state', '?')}")
        return EXIT_OK
    detail = message.get("error", "") if isinstance(message, dict) else ""
    code = EXIT_USAGE if response.status_code in (401, 403, 413, 422) else EXIT_FAILED
    raise ControlError(f"the runner answered HTTP {response.status_code}: {detail}", code)


def latch_target(store: Any, kind: str, state_path: Path) -> dict[str, Any]:
    """The persisted state to change. A kill never needs one (fail closed: it latches a runner that has not run
    here yet, or whose state is unreadable, which is moved aside, not lost); a reset does. Raises
    ``LatchRefused``, as ``core.latch.change_latch`` does."""
    from adapters.state_store import StateFileError
    from core.latch import LatchRefused, LatchRequestInvalid

    try:
        data = store.load()
    except StateFileError as exc:
        if kind == "reset":
            raise LatchRefused(f"{exc}; refusing to reset") from None
        aside = store.set_aside()
        print(f"warning: {exc}; moved to {aside}: latching a fresh state", file=sys.stderr)
        return {}
    if data is None and kind == "reset":
        raise LatchRequestInvalid(f"no engine state at {state_path}: nothing to reset (give --state or --config)")
    return data or {}


def _edit_state(args: argparse.Namespace, kind: str, operator: str, reason: str) -> int:
    """Change the persisted halt latch and audit it; the audit lock proves no runner is using this trail."""
    from adapters.audit_jsonl import AuditLockedError, JsonlAuditSink, append_anchor, verify_dir
    from adapters.rundir import record_mode
    from adapters.state_store import FileStateStore
    from core.latch import change_latch

    state_path, audit_dir = _paths(args)
    try:
        sink = JsonlAuditSink(audit_dir, fsync=True)
    except AuditLockedError:
        raise RunnerLive(audit_dir) from None
    try:
        store = FileStateStore(state_path, fsync=True)
        data = latch_target(store, kind, state_path)
        anchored = verify_dir(audit_dir).ok  # keep an anchored trail anchored; never bless what we did not write
        now_ns = time.time_ns()  # an operator's command on the wall clock (this is not a simulation)
        record, new_state = change_latch(
            data, kind, operator=operator, reason=reason, source="cli", route="state_file", now_ns=now_ns
        )
        sink.write(record)  # durable before the state changes: an unaudited latch change never lands
        store.save(data)
        if args.config is not None:
            record_mode(state_path.parent, str(load_config_mode(args.config)))
    finally:
        sink.close()
    if anchored:
        append_anchor(audit_dir, ts_ns=now_ns)
    print(f"ok: {state_path} now {new_state} ({kind} audited in {audit_dir})")
    return EXIT_OK


def load_config_mode(path: Path) -> str:
    from tools.runner import load_config

    return str(load_config(path).mode)


def _operator(args: argparse.Namespace) -> str:
    if args.operator is not None:
        return str(args.operator)
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "")


def _configured_dashboard(args: argparse.Namespace) -> str | None:
    """The dashboard URL of the runner the config describes (None: disabled, or on an ephemeral port)."""
    from tools.runner import load_config

    config = load_config(args.config)
    if not config.dashboard.enabled or config.dashboard.port == 0:
        return None
    host = config.dashboard.host
    return (
        f"http://[{host}]:{config.dashboard.port}"
        if ":" in host
        else f"http://{host}:{config.dashboard.port}"
    )


def _dispatch(args: argparse.Namespace, kind: str, operator: str, reason: str) -> int:
    """The dashboard when asked for (or when a runner is live on the state), else the state file."""
    body = {"reason": reason} if kind == "kill" else {"operator": operator, "reason": reason}
    if args.dashboard:
        return _post(args, f"/api/{kind}", body)
    try:
        return _edit_state(args, kind, operator, reason)
    except RunnerLive as live:
        url = None if args.state is not None else _configured_dashboard(args)
        if url is None:
            raise ControlError(
                f"a runner is live on {live.audit_dir}: use --dashboard URL so the engine itself acts",
                EXIT_FAILED,
            ) from None
        print(f"a runner is live on {live.audit_dir}: sending the {kind} to its dashboard at {url}")
        args.dashboard = url
        return _post(args, f"/api/{kind}", body)


def _run(command: str, args: argparse.Namespace, kind: str, operator: str, reason: str) -> int:
    """Dispatch with every refusal as an exit code: bad config (2), refused (1), not authorised (2)."""
    from core.config import ConfigError
    from core.latch import LatchRefused, LatchRequestInvalid

    try:
        return _dispatch(args, kind, operator, reason)
    except ConfigError as exc:
        print(f"ttlive {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LatchRefused as exc:
        print(f"ttlive {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, LatchRequestInvalid) else EXIT_FAILED
    except ControlError as exc:
        print(f"ttlive {command}: {exc}", file=sys.stderr)
        return exc.code


def run_kill(args: argparse.Namespace) -> int:
    from adapters.alerts import escape_control

    args.operator = None if args.operator is None else escape_control(args.operator)
    reason = escape_control(args.reason).strip()
    if not reason:
        print("ttlive kill: --reason must not be empty", file=sys.stderr)
        return EXIT_USAGE
    return _run("kill", args, "kill", _operator(args).strip() or "unknown", reason)


def run_reset(args: argparse.Namespace) -> int:
    from adapters.alerts import escape_control

    operator, reason = escape_control(args.operator).strip(), escape_control(args.reason).strip()
    if not operator or not reason:
        print("ttlive reset: a manual reset needs a non-empty --operator and --reason", file=sys.stderr)
        return EXIT_USAGE
    return _run("reset", args, "reset", operator, reason)


def run_lift_go_live_cap(args: argparse.Namespace) -> int:
    """Append the operator's lift of the go-live cap to the live audit trail (a runner must not hold it)."""
    from adapters.alerts import escape_control
    from adapters.audit_jsonl import AuditLockedError, JsonlAuditSink, append_anchor, verify_dir
    from adapters.rundir import run_layout
    from core.config import ConfigError, Mode
    from core.sessions import counted_sessions, go_live_cap_lifted_record
    from tools.compliance import load_audit
    from tools.runner import load_config

    operator, reason = escape_control(args.operator).strip(), escape_control(args.reason).strip()
    if not operator or not reason:
        print("ttlive lift-go-live-cap: needs a non-empty --operator and --reason", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(args.config, Mode.LIVE)
    except ConfigError as exc:
        print(f"ttlive lift-go-live-cap: {exc}", file=sys.stderr)
        return EXIT_USAGE
    audit_dir = run_layout(config).audit_dir
    try:
        sink = JsonlAuditSink(audit_dir, fsync=True)  # the lock proves no runner is using this trail
    except AuditLockedError:
        print(f"ttlive lift-go-live-cap: a runner is live on {audit_dir}: stop it first", file=sys.stderr)
        return EXIT_FAILED
    now_ns = time.time_ns()  # an operator's command on the wall clock
    try:
        sessions = len(counted_sessions(load_audit(audit_dir).health, "live"))
        anchored = verify_dir(audit_dir).ok  # keep an anchored trail anchored; never bless what we did not write
        sink.write(go_live_cap_lifted_record(ts_ns=now_ns, operator=operator, reason=reason, sessions=sessions))
    finally:
        sink.close()
    if anchored:
        append_anchor(audit_dir, ts_ns=now_ns)
    print(f"ok: go-live cap lifted after {sessions} live session(s) by {operator} (audited in {audit_dir})")
    return EXIT_OK
