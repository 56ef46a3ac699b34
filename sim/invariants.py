"""The always-on invariants of a simulated session, checked from records the engine does not control.

Venue order log and executions (what the broker saw), the audit files (what compliance reads), and the engine's
persisted state (what it believes). A violation is a sentence a developer can act on.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from adapters.audit_jsonl import iter_records
from core.audit_chain import encode_line
from core.halt_fsm import persisted_halted
from core.model import NS_PER_S as NS
from core.protect import is_protective
from sim.report import Report
from sim.scenario import Scenario

if TYPE_CHECKING:
    from adapters.fake.faults import FaultEvent
    from sim.world import World

PROTECTIVE_EXIT_SUFFIX = "-ts"  # core.orderplan.trailing_exit: the entry's client order id + this
NOTIONAL_QTY_TOLERANCE = Decimal("1.01")  # a notional order's shares vs the approved qty (the touch may move)
COID = re.compile(r"^tt-(?P<signal>[0-9a-f-]{36})-(?P<attempt>\d+)(?P<suffix>.*)$")


def audit_records(audit_dir: Path, stream: str) -> list[dict[str, Any]]:
    """A stream's records, oldest first, as the plain dicts their JSON lines are (for checks that index fields by
    name); read by the one typed reader, so a damaged line raises instead of passing unchecked."""
    return [msgspec.json.decode(encode_line(record)) for record in iter_records(audit_dir, stream)]


def check_invariants(world: World, engine_positions: dict[str, str], venue_positions: dict[str, str],
                     state: dict[str, Any]) -> list[str]:
    venue = world.venue
    violations: list[str] = []
    ours = [o for o in venue.order_log if o.client_order_id.startswith("tt-")]
    our_ids = {o.order_id for o in ours}
    legs = [o for o in venue.order_log if o.parent_id is not None and o.parent_id in our_ids]
    our_ids |= {o.order_id for o in legs}

    # 1. One venue order per signal attempt (idempotent retries): group by (signal, attempt). Orders of ours open
    #    when the venue started ([[account.orders]], an earlier life's) were placed before this run: not judged here.
    starting = set(venue.starting_order_ids)
    placed = [o for o in ours if o.order_id not in starting]
    violations.extend(check_submissions([(o.order_id, o.client_order_id) for o in placed]))

    # 2. Nothing accepted while halted: no order of ours created inside a halt interval.
    intervals = halt_intervals(world)
    for order in ours:
        if is_protective(order.client_order_id):  # the one exception (core.protect): exits only, checked below
            if order.type != "stop" or order.order_class not in ("", "simple") or order.time_in_force != "gtc":
                violations.append(f"protective order {order.client_order_id} is a {order.order_class} "
                                  f"{order.type} {order.time_in_force}, not a plain GTC stop")
            continue
        for start, end in intervals:
            if order.ts_ns > start and (end is None or order.ts_ns < end):
                violations.append(f"order {order.client_order_id} accepted at {order.ts_ns} while halted "
                                  f"(halt from {start})")

    # 3. No accepted order breaches a risk limit: every order of ours traces to a passed risk check for at least
    #    its quantity (the order never exceeds what RiskGuard approved).
    risk = audit_records(world.audit_dir, "risk")
    approved: dict[str, Decimal] = {}
    for rec in risk:
        result = rec.get("risk_check_result") or {}
        if result.get("passed"):  # whole shares are ints, fractional ones exact strings (never floats)
            approved[rec["signal_id"]] = max(approved.get(rec["signal_id"], Decimal(0)), Decimal(rec["quantity"]))
    for order in placed:
        match = COID.match(order.client_order_id)
        if match is None or match["suffix"] == PROTECTIVE_EXIT_SUFFIX or is_protective(order.client_order_id):
            continue  # a protective exit (like a bracket leg) only ever reduces: the venue refuses more
        allowed = approved.get(match["signal"])
        # A dollar order's shares are the venue's to decide (its estimate at the touch of acceptance).
        notional = venue.book.get_order(order.order_id).notional
        limit = allowed * NOTIONAL_QTY_TOLERANCE if allowed is not None and notional is not None else allowed
        if allowed is None or limit is None:
            violations.append(f"order {order.client_order_id} has no passed risk check")
        elif order.qty > limit:
            violations.append(f"order {order.client_order_id} qty {order.qty} exceeds approved {allowed}")

    # 4. Every venue fill of ours audited and booked exactly once.
    venue_execs = {str(f.execution_id) for f in venue.fills if f.order_id in our_ids}
    violations.extend(check_fills(venue_execs, audit_records(world.audit_dir, "fills"), state))

    # 5. Engine positions equal venue positions at the end — when the venue lets the engine find out: not while the
    #    world keeps REST from answering through the end of the run (an outage or answers slower than the timeout).
    unreachable = rest_blocked_at_end(world)
    differ = positions_differ({k: Decimal(v) for k, v in engine_positions.items()},
                              {k: Decimal(v) for k, v in venue_positions.items()})
    if differ is not None and not unreachable:
        violations.append(f"{differ} (at the end)")

    # 5b. A halted book leaves nothing working at the venue (kill switch step 1, verified), REST permitting.
    halted = persisted_halted(state.get("halt", {}))
    if halted and not unreachable:
        working = [o for o in venue.book.open_orders() if (o.client_order_id.startswith("tt-") or o.id in our_ids)
                   and not is_protective(o.client_order_id)]
        if working:
            violations.append(f"halted, yet {len(working)} of our orders still work at the venue")

    # 5e. on_halt = "protect": a halted book has a working stop of ours for every whole-share position at the venue.
    if halted and not unreachable and world.config.risk.halt_action == "protect":
        violations.extend(check_protected(world))

    # 5c. The order gate, on the venue's own request log: nothing order-creating arrives after a latch, and every
    #     order of ours working at the latch is resolved within HALT_RESOLVE_S.
    violations.extend(check_order_gate(world, our_ids))
    # 5d. Liveness: after the last fault the streams deliver (live or polling) again within STREAM_RECOVERY_S.
    violations.extend(check_stream_recovery(world))
    # 5f. After an operator's graceful stop the engine decides nothing until it starts again.
    violations.extend(check_no_decision_after_stop(world))

    # 6. Bounded queues and 7. no leaked tasks.
    violations.extend(world.record.channel_overflows)
    if world.record.leaked_tasks:
        violations.append(f"{world.record.leaked_tasks} task nurseries still open at shutdown")
    if venue.internal_errors:
        violations.append(f"venue internal errors: {venue.internal_errors[:3]}")
    for engine in world.record.engines:
        if engine.crash is not None:
            violations.append(f"engine crashed: {engine.crash!r}")
    return violations


def check_no_decision_after_stop(world: World) -> list[str]:
    """After an operator's graceful stop (the harness's ``operator_stop``) no signal is audited for the rest of
    that session, restarts included (timestamps are fixed-width UTC strings: they compare as text)."""
    from core.audit import iso_from_ts_ns

    violations: list[str] = []
    if not world.record.stop_windows:
        return violations
    signals = audit_records(world.audit_dir, "signals")
    for start_ns, end_ns in world.record.stop_windows:
        start, end = iso_from_ts_ns(start_ns), iso_from_ts_ns(end_ns)
        late = [r for r in signals if start < r["timestamp"] <= end]
        if late:
            violations.append(f"signal {late[0]['signal_id']} decided at {late[0]['timestamp']}, after the "
                              f"operator's stop at {start}")
    return violations


ORDER_CREATING = re.compile(r"^(POST /v2/orders|PATCH /v2/orders/.+)$")
TERMINAL_EVENTS = frozenset({"fill", "canceled", "expired", "replaced", "rejected"})
HALT_RESOLVE_S = 10  # issue 15: every order in flight at the latch is resolved within 10 s of simulated time
STREAM_RECOVERY_S = 60  # issue 15: after the last fault the streams are live or polling within 60 s


@dataclass(frozen=True, slots=True)
class GateWindow:
    """One closed stretch of the order gate, in the venue's record positions."""

    latched_ns: int
    first_request: int  # index into venue.request_log of the first request after the latch
    first_order: int  # index into venue.order_log of the first order accepted after the latch
    reset_ns: int | None
    end_request: int | None  # first request after the reset (None: never reset)


def gate_windows(world: World) -> list[GateWindow]:
    out: list[GateWindow] = []
    latch: tuple[int, int, int, bool] | None = None
    for change in world.record.gate_changes:
        if change[3] and latch is None:
            latch = change
        elif not change[3] and latch is not None:
            out.append(GateWindow(latch[0], latch[1], latch[2], change[0], change[1]))
            latch = None
    if latch is not None:
        out.append(GateWindow(latch[0], latch[1], latch[2], None, None))
    return out


# --- checks over plain records, shared by the simulation, the swarm and the drills (which read a venue over HTTP) ---

def check_submissions(ours: list[tuple[str, str]]) -> list[str]:
    """(venue order id, client order id) of every order of ours: each id is one of ours (tt-<signal>-<attempt>),
    used once, and each signal attempt reached the venue once (idempotent retries)."""
    violations: list[str] = []
    for coid, n in sorted(Counter(coid for _, coid in ours).items()):
        if n > 1:
            violations.append(f"client order id {coid} used by {n} venue orders")
    attempts: Counter[tuple[str, str]] = Counter()
    for order_id, coid in ours:
        match = COID.match(coid)
        if match is None:
            violations.append(f"venue order {order_id} has an unexpected client order id {coid}")
            continue
        if match["suffix"] != PROTECTIVE_EXIT_SUFFIX:  # an entry's protective exit is its own order
            attempts[(match["signal"], match["attempt"])] += 1
    for (signal, attempt), n in sorted(attempts.items()):
        if n > 1:
            violations.append(f"{n} venue orders for signal {signal} attempt {attempt} (duplicate submission)")
    return violations


def check_fills(venue_execs: set[str], audited_fills: list[dict[str, Any]],
                state: dict[str, Any] | None) -> list[str]:
    """Every venue execution of ours audited exactly once (across every engine life), nothing audited that the
    venue never made, and the ledger (of ``state``, when there is one) booked exactly what was audited."""
    violations: list[str] = []
    audited = Counter(str(rec.get("extra", {}).get("execution_id")) for rec in audited_fills)
    for execution_id, n in sorted(audited.items()):
        if n > 1:
            violations.append(f"execution {execution_id} audited {n} times")
    missing = sorted(venue_execs - set(audited))
    if missing:
        violations.append(f"{len(missing)} venue executions never audited, e.g. {missing[0]}")
    phantom = sorted(set(audited) - venue_execs)
    if phantom:
        violations.append(f"{len(phantom)} audited executions the venue never made, e.g. {phantom[0]}")
    booked = set((state or {}).get("ledger", {}).get("seen_execution_ids", []))
    if state is not None and booked != set(audited):
        violations.append(f"ledger booked {len(booked)} executions, the audit trail has {len(audited)} "
                          f"({len(booked - set(audited))} booked only, {len(set(audited) - booked)} audited only)")
    return violations


def positions_differ(engine: dict[str, Decimal], venue: dict[str, Decimal]) -> str | None:
    """The sentence for books that disagree (zero positions ignored), or None."""
    def nonzero(book: dict[str, Decimal]) -> dict[str, Decimal]:
        return {s: Decimal(q) for s, q in sorted(book.items()) if Decimal(q) != 0}

    ours, theirs = nonzero(engine), nonzero(venue)
    if ours == theirs:
        return None
    return (f"positions differ: engine {{{', '.join(f'{s}: {q}' for s, q in ours.items())}}} "
            f"venue {{{', '.join(f'{s}: {q}' for s, q in theirs.items())}}}")


def check_order_gate(world: World, our_ids: set[str]) -> list[str]:
    venue = world.venue
    violations: list[str] = []
    terminal_ns: dict[str, int] = {}
    for event in venue.event_log:
        if event.event in TERMINAL_EVENTS:
            terminal_ns.setdefault(event.order_id, event.ts_ns)
    for window in gate_windows(world):
        requests = venue.request_log[window.first_request:window.end_request]
        for offset, req in enumerate(requests):
            if ORDER_CREATING.match(f"{req.method} {req.path}"):
                if req.method == "POST" and is_protective(venue.request_coids.get(window.first_request + offset, "")):
                    continue  # a protective stop's attempt (core.protect), placed, retried or refused: the one exit
                violations.append(
                    f"{req.method} {req.path} reached the venue {(req.ts_ns - window.latched_ns) / 1e9:.1f} s after "
                    f"the kill switch latched (request #{window.first_request + offset}, answered {req.status})")
        deadline_ns = window.latched_ns + HALT_RESOLVE_S * NS
        if not _resolvable(world, window, deadline_ns):
            continue
        for order in venue.order_log[:window.first_order]:
            if order.order_id not in our_ids:
                continue
            ended = terminal_ns.get(order.order_id)
            if ended is None or ended > deadline_ns:
                if ended is not None and ended <= window.latched_ns:
                    continue
                late = "still working" if ended is None else f"resolved {(ended - window.latched_ns) / 1e9:.1f} s"
                violations.append(f"order {order.client_order_id} in flight at the latch: {late} after it "
                                  f"(limit {HALT_RESOLVE_S} s)")
    return violations


def protective_refusals_since(world: World, since_ns: int) -> set[str]:
    """Symbols whose protective stop the venue refused with a 4xx answer after ``since_ns`` (audited)."""
    import datetime as dt

    out = set()
    for rec in audit_records(world.audit_dir, "health"):
        extra = rec.get("extra", {})
        if extra.get("event") != "protect_failed" or "HTTP 4" not in str(extra.get("reason", "")):
            continue
        stamp = dt.datetime.fromisoformat(str(rec["timestamp"])[:26] + "+00:00")
        if int(stamp.timestamp()) * NS >= since_ns - NS:
            out.add(str(rec["symbol"]))
    return out


PROTECT_SETTLE_S = 120  # a halt (or a position change) this long before the end has had its stops placed or re-checked


def check_protected(world: World) -> list[str]:
    """Every venue position of at least one share has stops of ours on the closing side for its whole shares —
    judged when the latest latch is at least PROTECT_SETTLE_S old at the end of the run."""
    windows = gate_windows(world)
    if not windows or windows[-1].reset_ns is not None:
        return []
    if windows[-1].latched_ns + PROTECT_SETTLE_S * NS > world.record.end_ns:
        return []
    venue = world.venue
    stops: dict[str, Decimal] = {}
    for order in venue.book.open_orders():
        if is_protective(order.client_order_id) and order.type == "stop":
            held = venue.account.position_qty(order.symbol)
            closing = "sell" if held > 0 else "buy"
            if order.side == closing:
                stops[order.symbol] = stops.get(order.symbol, Decimal(0)) + order.qty - order.filled_qty
    refused = protective_refusals_since(world, windows[-1].latched_ns)
    moved: dict[str, int] = {}  # the last execution that changed each venue position
    for fill in (*venue.fills, *venue.external_fills):
        moved[fill.symbol] = max(moved.get(fill.symbol, 0), fill.ts_ns)
    out = []
    for symbol, position in sorted(venue.account.positions.items()):
        if moved.get(symbol, 0) + PROTECT_SETTLE_S * NS > world.record.end_ns:
            continue  # moved too recently for the periodic check to have caught up
        whole = abs(position.qty).to_integral_value(rounding="ROUND_DOWN")
        if symbol in refused:
            continue  # the broker said no (4xx, e.g. PDT protection); the engine audited and alerted it UNPROTECTED
        if whole >= 1 and stops.get(symbol, Decimal(0)) != whole:
            out.append(f"halted with on_halt = protect, yet {symbol} {position.qty} has "
                       f"{stops.get(symbol, Decimal(0))} shares of working stops at the venue")
    return out


def _resolvable(world: World, window: GateWindow, deadline_ns: int) -> bool:
    """Can the 10 s promise be judged? Not when the world took the means away: the run or a reset ends the
    window first, the client was down, or the venue refused service (5xx, 429) inside it."""
    if deadline_ns > world.record.end_ns or (window.reset_ns is not None and window.reset_ns <= deadline_ns):
        return False
    if any(start <= deadline_ns and end >= window.latched_ns for start, end in world.record.crash_windows):
        return False
    for req in world.venue.request_log[window.first_request:]:
        if req.ts_ns > deadline_ns:
            break
        if req.status >= 500 or req.status == 429:
            return False
    return True


def check_stream_recovery(world: World) -> list[str]:
    if not world.record.stream_outages:
        return []
    quiet_from = last_fault_end_ns(world) + STREAM_RECOVERY_S * NS
    for ts_ns, channel, state in world.record.stream_outages:
        if ts_ns > quiet_from and ts_ns <= world.record.end_ns:
            return [f"{channel} stream {state} at {ts_ns}, {(ts_ns - quiet_from) / 1e9 + STREAM_RECOVERY_S:.0f} s "
                    f"after the last fault ended (limit {STREAM_RECOVERY_S} s)"]
    return []


REST_BLOCKING = frozenset({"rest_outage", "rest_slow"})
CONVERGE_S = 60  # one reconciliation interval: REST must have answered this long before the end for judging


def rest_blocked_at_end(world: World) -> bool:
    """Does a timed fault keep REST from answering (an outage, or latency over the client's timeout) within the
    last CONVERGE_S of the run?"""
    from core.limits import ORDER_SUBMIT_TIMEOUT_S

    since_ns = world.record.end_ns - CONVERGE_S * NS
    for event, at_ns in _timed_events(world):
        if event.kind not in REST_BLOCKING:
            continue
        if event.kind == "rest_slow" and event.latency_ms < ORDER_SUBMIT_TIMEOUT_S * 1000:
            continue
        if at_ns <= world.record.end_ns and at_ns + event.duration_ns >= since_ns:
            return True
    return False


def _timed_events(world: World) -> list[tuple[FaultEvent, int]]:
    from adapters.fake.calendar import ns_at

    out = []
    for event in world.plan.events:
        if event.at_ns is not None:
            out.append((event, event.at_ns))
        elif event.at is not None and event.day < len(world.sessions):
            out.append((event, ns_at(world.sessions[event.day][0], event.at)))
    return out


def last_fault_end_ns(world: World) -> int:
    ends = [until for _, until in world.record.crash_windows]
    ends += [at_ns + event.duration_ns for event, at_ns in _timed_events(world)]
    return max(ends, default=0)


def halt_intervals(world: World) -> list[tuple[int, int | None]]:
    """[trip, reset) intervals from the supervisors' records across engine restarts."""
    events = sorted([(ts, "trip") for ts, _, _ in world.record.trips]
                    + [(ts, "reset") for ts, _, _ in world.record.resets])
    out: list[tuple[int, int | None]] = []
    start: int | None = None
    for ts, kind in events:
        if kind == "trip" and start is None:
            start = ts
        elif kind == "reset" and start is not None:
            out.append((start, ts))
            start = None
    if start is not None:
        out.append((start, None))
    return out


def check_expectations(scenario: Scenario, report: Report) -> list[str]:
    e = scenario.expect
    failures: list[str] = []
    if e.halted is not None and report.halted != e.halted:
        failures.append(f"expected halted={e.halted}, got {report.halted}")
    if e.kill_trigger is not None and e.kill_trigger != "" and report.kill_trigger != e.kill_trigger:
        failures.append(f"expected kill_trigger={e.kill_trigger!r}, got {report.kill_trigger!r}")
    if e.kill_trigger == "" and report.kill_trigger:
        failures.append(f"expected no kill switch trip, got {report.kill_trigger!r}")
    if e.min_fills is not None and report.fills < e.min_fills:
        failures.append(f"expected at least {e.min_fills} fills, got {report.fills}")
    if e.max_fills is not None and report.fills > e.max_fills:
        failures.append(f"expected at most {e.max_fills} fills, got {report.fills}")
    if e.min_orders is not None and report.orders_submitted < e.min_orders:
        failures.append(f"expected at least {e.min_orders} orders, got {report.orders_submitted}")
    if e.max_drawdown_pct is not None and Decimal(report.max_drawdown_pct) >= Decimal(e.max_drawdown_pct):
        failures.append(f"expected max drawdown < {e.max_drawdown_pct}%, got {report.max_drawdown_pct}%")
    for key, n in sorted(e.min_alerts.items()):
        if report.alerts.get(key, 0) < n:
            failures.append(f"expected at least {n} alert(s) {key!r}, got {report.alerts.get(key, 0)}")
    if e.min_reconnects is not None and report.reconnects < e.min_reconnects:
        failures.append(f"expected at least {e.min_reconnects} reconnects, got {report.reconnects}")
    if e.min_polling_s is not None and report.polling_s < e.min_polling_s:
        failures.append(f"expected at least {e.min_polling_s} s in polling mode, got {report.polling_s}")
    if e.min_retries is not None and report.rest_retries < e.min_retries:
        failures.append(f"expected at least {e.min_retries} REST retries, got {report.rest_retries}")
    for rule, n in sorted(e.min_binding_rules.items()):
        if report.binding_rules.get(rule, 0) < n:
            failures.append(f"expected risk rule {rule!r} to bind at least {n} time(s), got "
                            f"{report.binding_rules.get(rule, 0)}")
    return failures
