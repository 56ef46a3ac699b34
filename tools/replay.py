"""Replay a wire capture (``adapters.capture``) in the fake venue, in virtual time (issue 22).

From a capture this module rebuilds the session as an ordinary scenario plus its data files:

* the market: every bar the session received on the data stream, one CSV per symbol (``market.source =
  "recorded"``), on an always-open window from the capture's first to its last record;
* the account and book at the start: the first ``GET /v2/account`` and ``GET /v2/positions`` answers;
* the venue's answers (``adapters.fake.replay_plan``): the recorded market-data REST answers, every request
  that was refused (429, 5xx, an order rejected), lost (no answer) or slow, by occurrence of its route, and
  each submitted order's fills at their recorded prices and times;
* stream faults as a ``[faults]`` plan: server closes become ``ws_close`` at their instant, a data stream that
  went quiet before the client gave up on it becomes ``ws_mute``;
* the engine: the capture header's instruments, policy, risk, execution and reconcile sections.

``replay`` runs that scenario (``sim.world``, virtual time) with the wire captured again, and compares the two
captures: the order requests (what was asked, and what came of it) and the fills, first divergence first.
Stream frames are carried generically (any ``T``/``stream``/``event``): only what the comparison needs is read.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from adapters.capture import CaptureError, read_capture, resolve_capture
from adapters.fake.market_recorded import BAR_COLUMNS
from adapters.fake.replay_plan import PLAN_VERSION, route_of, signature
from adapters.fake.wire import parse_time_ns
from core.limits import BATCH_WINDOW_S
from core.model import NS_PER_S as NS

REPORT_JSON: Final = "divergence.json"
REPORT_MD: Final = "divergence.md"
SLOW_ANSWER_S: Final = 1.0  # an answer slower than this is replayed as slow
SILENCE_MIN_S: Final = 10.0  # a data stream quiet this long before the client closed it: replayed as ws_mute
DATA_PREFIXES: Final = ("/v2/stocks", "/v1beta")
# Answered as recorded: market data, and the market's clock and calendar (a replay's venue is open around the
# clock; the engine must see the session's real hours, e.g. for its no-entries-before-the-close rule).
RECORDED_ROUTES: Final = (*DATA_PREFIXES, "/v2/clock", "/v2/calendar")
MUTATING: Final = ("POST", "PATCH", "DELETE")
STREAM_OF_PATH: Final = {"/stream": "trading"}  # any other WebSocket path is market data
ORDER_KEYS: Final = ("symbol", "side", "qty", "notional", "type", "time_in_force", "limit_price", "stop_price",
                     "order_class")


class ReplayError(Exception):
    """A capture that cannot be replayed (exit 2); the message names the file and record."""


# --- reading a capture ---------------------------------------------------------------------------------------


@dataclass
class Exchange:
    seq: int
    wall_ns: int
    method: str
    path: str
    route: str
    body: Any
    query: dict[str, str] = field(default_factory=dict)  # last value wins, like the venue reads it
    status: int | None = None  # None: no answer (error says why)
    answer: Any = None
    error: str = ""
    elapsed_ns: int = 0
    record: int = 0  # record number of the request in the capture


@dataclass
class Connection:
    conn: int
    path: str
    opened_ns: int
    frames: list[tuple[int, Any]] = field(default_factory=list)  # (wall ns, decoded data) received
    closed_ns: int | None = None
    close_code: int | None = None
    closed_by: str = ""

    @property
    def stream(self) -> str:
        return STREAM_OF_PATH.get(self.path, "data")


@dataclass
class Capture:
    path: Path
    header: dict[str, Any]
    exchanges: list[Exchange]
    connections: list[Connection]
    first_ns: int
    last_ns: int
    stop_ns: int | None = None  # the operator's graceful stop (a "stop" record), if the session had one
    stop_decided_through_ns: int | None = None  # the newest decision bucket the recorded engine decided before it


def load_capture(path: Path) -> Capture:
    """Read a capture file (or the newest in a directory); CaptureError/ReplayError name file and record."""
    try:
        file = resolve_capture(path)
        records = list(read_capture(file))
    except CaptureError as exc:
        raise ReplayError(str(exc)) from None
    header = records[0]
    exchanges: dict[int, Exchange] = {}
    conns: dict[int, Connection] = {}
    for number, rec in enumerate(records, start=1):
        try:
            kind, wall = rec["t"], int(rec["wall_ns"])
            if kind == "http_req":
                query = {str(k): str(v) for k, v in rec.get("query") or []}
                exchanges[int(rec["seq"])] = Exchange(int(rec["seq"]), wall, str(rec["method"]), str(rec["path"]),
                                                      route_of(str(rec["path"])), rec.get("body"), query,
                                                      record=number)
            elif kind == "http_resp":
                ex = exchanges[int(rec["seq"])]
                ex.elapsed_ns = int(rec.get("elapsed_ns", 0))
                if "error" in rec:
                    ex.error = str(rec["error"])
                else:
                    ex.status, ex.answer = int(rec["status"]), rec.get("body")
            elif kind == "ws_open":
                conns[int(rec["conn"])] = Connection(int(rec["conn"]), str(rec["path"]), wall)
            elif kind == "ws_in":
                conns[int(rec["conn"])].frames.append((wall, rec.get("data")))
            elif kind == "ws_close":
                c = conns[int(rec["conn"])]
                c.closed_ns, c.close_code, c.closed_by = wall, int(rec["code"]), str(rec["by"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ReplayError(f"{file}: record {number} ({rec.get('t')}): malformed: {exc!r}") from None
    walls = [int(r["wall_ns"]) for r in records if "wall_ns" in r]
    # The recording ends where the size cap stopped it ([capture] max_mb: a "limit" record), else at its end. A
    # "stop" record is where the runner was told to stop: the engine decided nothing after it (Engine.begin_stop),
    # what it had decided before still ran, and was recorded, while it settled. The replay stops there too.
    limits = [int(r["wall_ns"]) for r in records if r["t"] == "limit"]
    last = min(limits) if limits else max(walls)
    stop = min((r for r in records if r["t"] == "stop" and int(r["wall_ns"]) < last),
               key=lambda r: int(r["wall_ns"]), default=None)
    stop_ns = int(stop["wall_ns"]) if stop is not None else None
    decided = stop.get("decided_through_ns") if stop is not None else None
    return Capture(file, header, sorted((e for e in exchanges.values() if e.wall_ns <= last), key=lambda e: e.seq),
                   sorted(conns.values(), key=lambda c: c.conn), min(walls), last, stop_ns,
                   int(decided) if isinstance(decided, int) else None)


def messages(data: Any) -> list[dict[str, Any]]:
    """The messages of one decoded frame (a list of them, or one), whatever their kind."""
    items = data if isinstance(data, list) else [data]
    return [m for m in items if isinstance(m, dict)]


def ts_ns(value: Any) -> int:
    if isinstance(value, dict) and "$ts" in value:
        return int(value["$ts"])
    return parse_time_ns(str(value))


# --- the session's market, account and venue answers --------------------------------------------------------


Quotes = dict[str, list[tuple[int, tuple[str, ...]]]]


def stream_market(capture: Capture) -> tuple[dict[str, dict[int, tuple[str, ...]]], Quotes]:
    """Every bar (symbol -> start ns -> o, h, l, c, volume) and quote (symbol -> [(ns, bid, ask, sizes)])
    received on a market-data stream; other messages are carried by the recording, not replayed."""
    bars: dict[str, dict[int, tuple[str, ...]]] = {}
    quotes: dict[str, list[tuple[int, tuple[str, ...]]]] = {}
    for conn in capture.connections:
        if conn.stream != "data":
            continue
        for _wall, data in conn.frames:
            for msg in messages(data):
                try:
                    if msg.get("T") == "b":
                        bars.setdefault(str(msg["S"]), {})[ts_ns(msg["t"])] = (
                            str(msg["o"]), str(msg["h"]), str(msg["l"]), str(msg["c"]), str(int(msg.get("v", 0))))
                    elif msg.get("T") == "q":
                        quotes.setdefault(str(msg["S"]), []).append((ts_ns(msg["t"]), (
                            str(msg["bp"]), str(msg["ap"]), str(int(msg["bs"])), str(int(msg["as"])))))
                except (KeyError, ValueError, TypeError):
                    continue
    return bars, quotes


def market_rows(bars: dict[int, tuple[str, ...]], quotes: list[tuple[int, tuple[str, ...]]],
                interval_s: int) -> list[tuple[Any, ...]]:
    """One CSV row per bar interval: its bar (if received) and the last quote heard in it (if any)."""
    step = interval_s * NS
    rows: dict[int, list[Any]] = {ts: [ts, *bar, "", "", "", ""] for ts, bar in bars.items()}
    for ts, quote in sorted(quotes):
        start = ts - ts % step
        row = rows.setdefault(start, [start, "", "", "", "", "", "", "", "", ""])
        if Decimal(quote[0]) > 0 and Decimal(quote[1]) > Decimal(quote[0]):
            row[6:10] = quote
    return [tuple(rows[ts]) for ts in sorted(rows)]


def bar_interval_s(bars: dict[str, dict[int, Any]]) -> int:
    steps = [b - a for times in bars.values() for a, b in zip(sorted(times), sorted(times)[1:], strict=False)]
    step = min((s for s in steps if s > 0), default=60 * NS) // NS
    return min((c for c in (1, 5, 10, 15, 30, 60, 300) if c >= step), default=300)


def first_answer(capture: Capture, method: str, route: str) -> Any:
    for ex in capture.exchanges:
        if ex.method == method and ex.route == route and ex.status == 200:
            return ex.answer
    return None


def starting_account_type(capture: Capture, account: dict[str, Any]) -> str:
    """From the first account answer before the engine changed the account's configuration (its margin
    multiplier), else the header's (a simulation records its scenario's), else a margin account."""
    for ex in capture.exchanges:
        if ex.route == "/v2/account/configurations" and ex.method == "PATCH":
            break
        if ex.route == "/v2/account" and ex.method == "GET" and ex.status == 200 and isinstance(ex.answer, dict):
            return "cash" if Decimal(str(ex.answer.get("multiplier", "2"))) <= 1 else "margin_initial"
    return str(capture.header.get("account_type") or "margin_initial")


def plan_answers(capture: Capture) -> list[dict[str, Any]]:
    """The recorded answers the venue must repeat (see adapters.fake.replay_plan), by route occurrence (for
    the answers given as recorded, by the question asked; for a request about one of the client's orders, by
    that order and the request's rank among those about it)."""
    seen: dict[tuple[str, str], int] = {}
    about_seen: dict[tuple[str, int, int], int] = {}
    index = OrderIndex.of(capture)
    out: list[dict[str, Any]] = []
    for ex in capture.exchanges:
        key = (ex.method, ex.route)
        if ex.route.startswith(RECORDED_ROUTES):
            key = (ex.method, f"{ex.route}?{signature(ex.query)}")
        n = seen[key] = seen.get(key, 0) + 1
        entry: dict[str, Any] = {"method": ex.method, "route": ex.route, "n": n}
        about = index.about(ex)
        if about is not None:
            count = about_seen[(ex.method, *about)] = about_seen.get((ex.method, *about), 0) + 1
            entry |= {"order": about[0], "leg": about[1], "n": count}
        if ex.route.startswith(RECORDED_ROUTES):
            entry["query"] = signature(ex.query)
        if ex.method == "POST" and ex.route == "/v2/orders" and isinstance(ex.body, dict):
            entry |= {"symbol": ex.body.get("symbol", ""), "side": ex.body.get("side", "")}
        if ex.status is None:
            if ex.error:  # the client gave up on it (no answer record at all: the capture ended first)
                out.append(entry | {"lost": True})
        elif ex.status == 429 or ex.status >= 500 or (ex.status >= 400 and ex.method == "POST"):
            out.append(entry | {"status": ex.status, "body": ex.answer})
        elif ex.route.startswith(RECORDED_ROUTES) and ex.status == 200:
            out.append(entry | {"status": 200, "body": ex.answer})  # the market data the session was given
        elif ex.elapsed_ns > SLOW_ANSWER_S * NS:
            out.append(entry | {"delay_s": round(ex.elapsed_ns / NS, 3)})
    return out


@dataclass(frozen=True)
class OrderIndex:
    """Which of the client's orders an id or a client order id is: k (the k-th submitted) and leg."""

    ranks: dict[str, int]  # client order id -> k
    legs: dict[str, tuple[str, int]]  # leg order id -> (parent client order id, leg index)
    coids: dict[str, str]  # venue order id -> client order id

    @classmethod
    def of(cls, capture: Capture) -> OrderIndex:
        return cls(order_ranks(capture), leg_map(capture),
                   {str(o["id"]): str(o["client_order_id"]) for o in order_objects(capture)})

    def about(self, ex: Exchange) -> tuple[int, int] | None:
        """(k, leg) of the order a POST /v2/orders or DELETE/PATCH /v2/orders/{id} is about, else None."""
        if ex.route == "/v2/orders" and ex.method == "POST" and isinstance(ex.body, dict):
            k = self.ranks.get(str(ex.body.get("client_order_id")))
            return None if k is None else (k, 0)
        if ex.route == "/v2/orders/{id}" and ex.method in ("DELETE", "PATCH"):
            target = ex.path.rstrip("/").rsplit("/", 1)[-1]
            parent, leg = self.legs.get(target, (self.coids.get(target, ""), 0))
            k = self.ranks.get(parent)
            return None if k is None else (k, leg)
        return None


def order_ranks(capture: Capture) -> dict[str, int]:
    """client order id -> k: the k-th distinct order the client submitted (POST /v2/orders)."""
    ranks: dict[str, int] = {}
    for ex in capture.exchanges:
        if ex.method == "POST" and ex.route == "/v2/orders" and isinstance(ex.body, dict):
            coid = ex.body.get("client_order_id")
            if isinstance(coid, str):
                ranks.setdefault(coid, len(ranks) + 1)
    return ranks


def trade_updates(capture: Capture) -> list[tuple[int, dict[str, Any]]]:
    """Every trade_updates payload received (any event), in order, de-duplicated by execution id for fills."""
    out: list[tuple[int, dict[str, Any]]] = []
    for conn in capture.connections:
        if conn.stream != "trading":
            continue
        for wall, data in conn.frames:
            for msg in messages(data):
                if msg.get("stream") == "trade_updates" and isinstance(msg.get("data"), dict):
                    out.append((wall, msg["data"]))
    return sorted(out, key=lambda item: item[0])


def fills_of(capture: Capture) -> list[dict[str, Any]]:
    """The executions of the client's own orders, once each, by execution time: from the trade_updates it
    heard and, for those it never heard (a dropped frame), the FILL activities it read over REST."""
    ranks = order_ranks(capture)
    legs = leg_map(capture)
    orders = {str(o["id"]): o for o in order_objects(capture)}
    fills: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(execution: str, order: dict[str, Any], qty: Any, price: Any, when: Any) -> None:
        if execution in seen:
            return
        seen.add(execution)
        coid, leg = str(order.get("client_order_id", "")), 0
        if str(order.get("id")) in legs:
            coid, leg = legs[str(order.get("id"))]
        fills.append({"k": ranks.get(coid, 0), "leg": leg, "order_id": str(order.get("id", "")),
                      "symbol": order.get("symbol"), "side": order.get("side"), "qty": str(qty), "price": str(price),
                      "ts_ns": ts_ns(when) if when else 0,
                      "created_ns": ts_ns(order["created_at"]) if order.get("created_at") else 0})

    for _wall, update in trade_updates(capture):
        if update.get("event") not in ("fill", "partial_fill"):
            continue
        raw_order = update.get("order")
        order: dict[str, Any] = raw_order if isinstance(raw_order, dict) else {}
        execution = str(update.get("execution_id") or f"{order.get('id')}:{order.get('filled_qty')}")
        add(execution, order, update.get("qty"), update.get("price"), update.get("timestamp"))
    for ex in capture.exchanges:
        if ex.route != "/v2/account/activities" or not isinstance(ex.answer, list):
            continue
        for activity in ex.answer:
            if not isinstance(activity, dict) or activity.get("activity_type") != "FILL":
                continue
            found = orders.get(str(activity.get("order_id")))
            if found is not None:
                add(str(activity.get("id", "")).rsplit("::", 1)[-1], found, activity.get("qty"),
                    activity.get("price"), activity.get("transaction_time"))
    return sorted(fills, key=lambda f: (f["ts_ns"], f["k"], f["leg"]))


def order_objects(capture: Capture) -> Iterable[dict[str, Any]]:
    """Every order object the session was shown (REST answers, trade updates), legs included."""
    def walk(value: Any) -> Iterable[dict[str, Any]]:
        if isinstance(value, list):
            for item in value:
                yield from walk(item)
        elif isinstance(value, dict) and "client_order_id" in value and "id" in value:
            yield value
            yield from walk(value.get("legs") or [])

    for ex in capture.exchanges:
        if ex.route.startswith("/v2/orders"):
            yield from walk(ex.answer)
    for _wall, update in trade_updates(capture):
        yield from walk(update.get("order"))


def leg_map(capture: Capture) -> dict[str, tuple[str, int]]:
    """leg order id -> (its parent's client order id, 1-based leg index)."""
    legs: dict[str, tuple[str, int]] = {}
    for order in order_objects(capture):
        for i, leg in enumerate(order.get("legs") or [], start=1):
            if isinstance(leg, dict) and "id" in leg:
                legs[str(leg["id"])] = (str(order["client_order_id"]), i)
    return legs


def plan_orders(capture: Capture) -> list[dict[str, Any]]:
    ranks = order_ranks(capture)
    orders: dict[tuple[int, int], dict[str, Any]] = {}
    for ex in capture.exchanges:
        if ex.method == "POST" and ex.route == "/v2/orders" and isinstance(ex.body, dict):
            k = ranks.get(str(ex.body.get("client_order_id")))
            if k is not None and (k, 0) not in orders:
                orders[(k, 0)] = {"k": k, "leg": 0, "symbol": str(ex.body.get("symbol")),
                                  "side": str(ex.body.get("side")), "fills": []}
    for leg_id, (parent_coid, index) in leg_map(capture).items():
        k = ranks.get(parent_coid)
        leg = next((o for o in order_objects(capture) if str(o["id"]) == leg_id), None)
        if k is not None and leg is not None:
            orders.setdefault((k, index), {"k": k, "leg": index, "symbol": str(leg.get("symbol")),
                                           "side": str(leg.get("side")), "fills": []})
    for fill in fills_of(capture):
        entry = orders.get((fill["k"], fill["leg"]))
        if entry is not None and fill["created_ns"]:
            entry["fills"].append({"after_ns": max(0, fill["ts_ns"] - fill["created_ns"]), "qty": fill["qty"],
                                   "price": fill["price"]})
    return [orders[key] for key in sorted(orders)]


def plan_heard(capture: Capture) -> list[dict[str, Any]]:
    """How many distinct trade updates of each event the client heard, per order (k, leg): duplicates of a
    frame count once (the engine de-duplicates them; the replay's venue sends each once)."""
    ranks, legs = order_ranks(capture), leg_map(capture)
    counts: dict[tuple[int, int, str], set[str]] = {}
    for _wall, update in trade_updates(capture):
        order = update.get("order")
        if not isinstance(order, dict):
            continue
        coid, leg = str(order.get("client_order_id", "")), 0
        if str(order.get("id")) in legs:
            coid, leg = legs[str(order.get("id"))]
        k = ranks.get(coid)
        if k is not None:
            identity = json.dumps([update.get("execution_id"), update.get("timestamp"), order.get("status")])
            counts.setdefault((k, leg, str(update.get("event"))), set()).add(identity)
    return [{"k": k, "leg": leg, "event": event, "n": len(ids)} for (k, leg, event), ids in sorted(counts.items())]


def outside_events(capture: Capture, start_ns: int) -> list[dict[str, Any]]:
    """What the account's owner did meanwhile, as the fake's fault events: an order placed outside ttlive (not
    ``tt-``) -> ``foreign_order`` when first seen (a limit far from the market: the engine's handling is what is
    replayed, not its price); a fill of no order the session ever saw -> ``position_drift`` at its time."""
    from core.orderplan import CLIENT_ORDER_ID_PREFIX

    events: list[dict[str, Any]] = []
    known: set[str] = set()
    legs = leg_map(capture)
    for order in order_objects(capture):
        known.add(str(order["id"]))
        coid = str(order.get("client_order_id", ""))
        if coid.startswith(CLIENT_ORDER_ID_PREFIX) or str(order["id"]) in legs or str(order["id"]) in {
                e["_id"] for e in events}:
            continue  # ours, a leg of ours, or already placed
        try:
            qty = Decimal(str(order.get("qty")))
            at = max(start_ns + 1, ts_ns(order["created_at"]))
        except (ArithmeticError, KeyError, ValueError):
            continue  # a notional order (no qty) or no time: not replayed
        if qty > 0 and order.get("symbol"):
            events.append({"_id": str(order["id"]), "kind": "foreign_order", "symbol": str(order["symbol"]),
                           "qty": str(qty if order.get("side") == "buy" else -qty), "at_ns": at})
    for ex in capture.exchanges:
        if ex.route != "/v2/account/activities" or not isinstance(ex.answer, list):
            continue
        for activity in ex.answer:
            if not isinstance(activity, dict) or activity.get("activity_type") != "FILL":
                continue
            order_id = str(activity.get("order_id"))
            if order_id in known or order_id in {e["_id"] for e in events}:
                continue
            try:
                qty = Decimal(str(activity["qty"]))
                at = max(start_ns + 1, ts_ns(activity["transaction_time"]))
            except (ArithmeticError, KeyError, ValueError):
                continue
            signed = qty if str(activity.get("side")) == "buy" else -qty
            events.append({"_id": order_id, "kind": "position_drift", "symbol": str(activity.get("symbol")),
                           "qty": str(signed), "at_ns": at})
    return [{k: v for k, v in e.items() if k != "_id"} for e in sorted(events, key=lambda e: e["at_ns"])]


def operator_events(capture: Capture, start_ns: int) -> list[dict[str, Any]]:
    """An operator's kill and reset during the session, from the audit trail beside the capture (they never
    cross the wire): ``manual_kill``/``manual_reset`` harness events at their recorded instants."""
    from adapters.rundir import AUDIT_NAME
    from core.audit import AuditSchemaError
    from sim.invariants import audit_records

    audit = Path(str(capture.header.get("audit_dir") or capture.path.parent.parent / AUDIT_NAME))
    if not audit.is_dir():
        return []
    events: list[dict[str, Any]] = []
    try:
        records = [r for stream in sorted(p.name for p in audit.iterdir() if p.is_dir())
                   for r in audit_records(audit, stream)]
    except (AuditSchemaError, OSError, ValueError):
        return []  # an unreadable trail: the wire replays without operator actions (ttlive audit verify says why)
    for record in records:
        extra = record.get("extra") or {}
        try:
            at = ts_ns(record["timestamp"])
        except (KeyError, ValueError):
            continue
        if not start_ns < at <= capture.last_ns:
            continue
        if record.get("event_type") == "halt" and extra.get("trigger") == "manual":
            events.append({"kind": "manual_kill", "at_ns": at, "reason": str(extra.get("reason", ""))})
        elif record.get("event_type") == "reset":
            events.append({"kind": "manual_reset", "at_ns": at, "operator": str(extra.get("operator", "")),
                           "reason": str(extra.get("reason", ""))})
    return sorted(events, key=lambda e: e["at_ns"])


def stop_events(capture: Capture, *, bar_interval_ns: int, decision_interval_ns: int | None) -> list[dict[str, Any]]:
    """The operator's graceful stop (the capture's "stop" record) -> an ``operator_stop`` harness event: the
    replayed engine, too, decides nothing after it and settles what it had decided.

    The recorded process decided a bucket a few ms to a few 100 ms after the bar that closed it arrived (more under
    load); the replay decides at once. A stop that fell inside that gap would let the replay decide once more than
    the recording did, so the stop record says how far the engine had decided, and the replay stops halfway between
    that decision and the next one it would make (a bucket ending at X is decided when the bar starting at X closes,
    plus the policy's batch window). Without that record (an older capture) or a known decision interval, the
    replay stops at the stop record."""
    if capture.stop_ns is None:
        return []
    at_ns = capture.stop_ns
    if capture.stop_decided_through_ns is not None and decision_interval_ns is not None:
        batch_ns = int(BATCH_WINDOW_S * NS)
        next_decision_ns = capture.stop_decided_through_ns + decision_interval_ns + bar_interval_ns + batch_ns
        at_ns = min(at_ns, next_decision_ns - decision_interval_ns // 2)
    return [{"kind": "operator_stop", "at_ns": at_ns, "reason": "replayed: stop requested"}]


def stream_faults(capture: Capture, end_ns: int) -> list[dict[str, Any]]:
    """Server closes -> ws_close; a data stream the client closed after a silence -> ws_mute before it."""
    events: list[dict[str, Any]] = []
    for conn in capture.connections:
        if conn.closed_ns is None or conn.closed_ns >= end_ns:
            continue
        if conn.closed_by == "server":
            code = conn.close_code if conn.close_code in (1000, 1001, 1006, 1011) else 1006
            events.append({"kind": "ws_close", "stream": conn.stream, "at_ns": conn.closed_ns, "code": code})
        elif conn.closed_by == "client" and conn.stream == "data" and any(
                later.stream == "data" and later.conn > conn.conn for later in capture.connections):
            heard = conn.frames[-1][0] if conn.frames else conn.opened_ns
            if conn.closed_ns - heard >= SILENCE_MIN_S * NS:
                events.append({"kind": "ws_mute", "stream": "data", "at_ns": heard + 1,
                               "duration_s": round((conn.closed_ns - heard) / NS, 3)})
    return sorted(events, key=lambda e: e["at_ns"])


# --- the scenario ----------------------------------------------------------------------------------------------


def _snake(text: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")


def decision_interval_ns(engine: dict[str, Any]) -> int | None:
    """The recorded engine's decision interval (its config's ``policy.decision_interval_s``), if the header says."""
    policy = engine.get("policy") or {}
    value = policy.get("decision_interval_s") if isinstance(policy, dict) else None
    return int(float(value) * NS) if isinstance(value, (int, float)) and value > 0 else None


def scenario_name(capture: Capture) -> str:
    stem = capture.path.name.split(".")[0]
    return "replay_" + re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")


def write_scenario(capture: Capture, file: Path, *, name: str | None = None) -> Path:
    """Write ``file`` (TOML) with its data files beside it (``<stem>.<SYMBOL>.bars.csv``, ``<stem>.plan.json``)."""
    header = capture.header
    engine = header.get("config") or {}
    instruments = engine.get("instruments") or []
    if not instruments:
        raise ReplayError(f"{capture.path}: record 1: the header lists no instruments (not a runner's capture)")
    bars, quotes = stream_market(capture)
    symbols = [str(i["symbol"]) for i in instruments]
    missing = [s for s in symbols if s not in bars]
    if missing:
        raise ReplayError(f"{capture.path}: no bar of {', '.join(missing)} was received: nothing to replay the "
                          "market from")
    interval = bar_interval_s(bars)
    start_s = capture.first_ns // NS
    duration = max(1, math.ceil((capture.last_ns - start_s * NS) / NS) + 1)
    account = first_answer(capture, "GET", "/v2/account") or {}
    account_type = starting_account_type(capture, account)
    positions = first_answer(capture, "GET", "/v2/positions") or []
    file.parent.mkdir(parents=True, exist_ok=True)
    stem = file.name.removesuffix(".toml")
    files: dict[str, str] = {}
    for symbol in symbols:
        csv_name = f"{stem}.{symbol}.bars.csv"
        with open(file.parent / csv_name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(BAR_COLUMNS)
            writer.writerows(market_rows(bars[symbol], quotes.get(symbol, []), interval))
        files[symbol] = csv_name
    plan_name = f"{stem}.plan.json"
    plan = {"version": PLAN_VERSION, "capture": capture.path.name, "answers": plan_answers(capture),
            "orders": plan_orders(capture), "heard": plan_heard(capture)}
    (file.parent / plan_name).write_text(plan_json(plan), encoding="utf-8")
    import datetime as dt

    start = dt.datetime.fromtimestamp(start_s, tz=dt.UTC)
    cash = max(Decimal(0), Decimal(str(account.get("cash", "100000"))))
    doc: dict[str, Any] = {
        "schema_version": 1,
        "name": name or _snake(stem) or scenario_name(capture),
        "description": f"Replayed from the wire capture {capture.path.name} ({header.get('mode', '?')} session "
                       f"{header.get('session', '?')}): its market, starting book, venue answers and stream faults.",
        "seed": int(header.get("seed", 1)),  # a simulation's own seed (its task interleaving); else 1
        "session": {"start": start.date().isoformat(), "days": 1, "bar_interval_s": interval,
                    "calendar": "always_open", "start_time": start.strftime("%H:%M:%S"), "duration_s": duration},
        "account": {"type": account_type, "cash_usd": str(cash),
                    "pattern_day_trader": bool(account.get("pattern_day_trader", False)),
                    "positions": [{"symbol": str(p["symbol"]), "qty": str(p["qty"]),
                                   "avg_entry_price": str(p["avg_entry_price"])}
                                  for p in positions if isinstance(p, dict) and p.get("symbol") in symbols]},
        "instruments": instruments,
        "market": {"source": "recorded", "files": files},
        "policy": engine.get("policy", {}),
        "risk": engine.get("risk", {}),
        "execution": engine.get("execution", {}),
        "reconcile": engine.get("reconcile", {}),
        "faults": {"events": sorted([*stream_faults(capture, capture.last_ns),
                                     *[e for e in outside_events(capture, start_s * NS) if e["symbol"] in symbols],
                                     *operator_events(capture, start_s * NS),
                                     *stop_events(capture, bar_interval_ns=interval * NS,
                                                  decision_interval_ns=decision_interval_ns(engine))],
                                    key=lambda e: e["at_ns"])},
        "replay": {"plan": plan_name},
        # The incident's own orders and fills must still happen (edit these when the engine rightly changes).
        "expect": {"min_orders": len(order_ranks(capture)), "min_fills": len(fills_of(capture))},
    }
    file.write_text(to_toml(doc), encoding="utf-8")
    return file


def plan_json(plan: dict[str, Any]) -> str:
    """Compact, one answer or order per line (diffable, a few hundred KB for a day of history answers)."""
    def rows(items: list[Any]) -> str:
        return "[\n" + ",\n".join(json.dumps(i, sort_keys=True, separators=(",", ":")) for i in items) + "\n]"

    lists = ("answers", "orders", "heard")
    head = {k: v for k, v in plan.items() if k not in lists}
    body = ",\n".join(f'"{name}": {rows(plan[name])}' for name in lists if name in plan)
    return json.dumps(head, sort_keys=True)[:-1] + ",\n" + body + "}\n"


def to_toml(doc: dict[str, Any]) -> str:
    """A small TOML writer for scenario documents: scalars, inline arrays, tables, arrays of tables."""
    lines: list[str] = []

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, list):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{ " + ", ".join(f"{_key(k)} = {scalar(v)}" for k, v in value.items()) + " }"
        return json.dumps(str(value))

    def table(prefix: str, body: dict[str, Any], header: str) -> None:
        simple = {k: v for k, v in body.items() if v is not None and not _is_tables(v) and not isinstance(v, dict)}
        nested = {k: v for k, v in body.items() if isinstance(v, dict)}
        arrays = {k: v for k, v in body.items() if _is_tables(v)}
        if header:
            lines.append("")
            lines.append(header)
        lines.extend(f"{_key(k)} = {scalar(v)}" for k, v in simple.items())
        for k, v in nested.items():
            if all(not isinstance(x, dict | list) for x in v.values()) and prefix == "market":
                lines.append(f"{_key(k)} = {scalar(v)}")
            else:
                table(f"{prefix}.{k}" if prefix else k, v, f"[{prefix + '.' if prefix else ''}{k}]")
        for k, rows in arrays.items():
            for row in rows:
                table(f"{prefix}.{k}" if prefix else k, row, f"[[{prefix + '.' if prefix else ''}{k}]]")

    table("", doc, "")
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


# --- running and comparing ------------------------------------------------------------------------------------


def order_requests(capture: Capture) -> list[dict[str, Any]]:
    """Every order-changing request (submit, replace, cancel, close) with its outcome, in order."""
    index = OrderIndex.of(capture)
    ranks, legs, coids = index.ranks, index.legs, index.coids
    out: list[dict[str, Any]] = []
    for ex in capture.exchanges:
        if ex.method not in MUTATING or not ex.route.startswith(("/v2/orders", "/v2/positions")):
            continue
        body = ex.body if isinstance(ex.body, dict) else {}
        item: dict[str, Any] = {"request": f"{ex.method} {ex.route}"}
        target = ex.path.rstrip("/").rsplit("/", 1)[-1]
        if ex.route.endswith("/{id}"):  # which order: the k-th submitted (and which of its legs)
            parent, leg = legs.get(target, (coids.get(target, ""), 0))
            item |= {"order": ranks.get(parent, 0), "leg": leg}
        if ex.route == "/v2/orders" and ex.method == "POST":
            item["order"] = ranks.get(str(body.get("client_order_id")), 0)
            item |= {k: body[k] for k in ORDER_KEYS if body.get(k) is not None}
        item["outcome"] = "lost" if ex.status is None else ex.status
        item["at_s"] = round((ex.wall_ns - capture.first_ns) / NS, 3)
        item["capture_record"] = ex.record
        out.append(item)
    return out


_COMPARE_SKIP: Final = ("at_s", "capture_record", "ts_ns", "created_ns", "order_id")


def first_divergence(kind: str, recorded: list[dict[str, Any]],
                     replayed: list[dict[str, Any]]) -> dict[str, Any] | None:
    for i in range(max(len(recorded), len(replayed))):
        a = recorded[i] if i < len(recorded) else None
        b = replayed[i] if i < len(replayed) else None
        strip_a = None if a is None else {k: v for k, v in a.items() if k not in _COMPARE_SKIP}
        strip_b = None if b is None else {k: v for k, v in b.items() if k not in _COMPARE_SKIP}
        if strip_a != strip_b:
            return {"kind": kind, "index": i + 1, "expected": a, "got": b}
    return None


BURST_S: Final = 0.05  # requests this close together were sent concurrently: their order is not a decision


def canonical(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests sent in one burst (each within BURST_S of the one before, e.g. the cancels of a bracket's two
    legs) in a fixed order, so that which of them went first (ids, hashing, scheduling) is not a divergence.
    Their outcomes depend on that order (the second cancel of an OCO pair finds it canceled), so a burst's
    outcomes are compared as a set: they are dealt out in sorted order over its sorted requests."""
    out: list[dict[str, Any]] = []
    burst: list[dict[str, Any]] = []

    def flush() -> None:
        ordered = sorted(burst, key=_compare_key)
        outcomes = sorted((item["outcome"] for item in burst), key=str)
        out.extend(item | {"outcome": outcome} if len(burst) > 1 else item
                   for item, outcome in zip(ordered, outcomes, strict=True))
        burst.clear()

    for item in items:
        if burst and item["at_s"] - burst[-1]["at_s"] > BURST_S:
            flush()
        burst.append(item)
    flush()
    for i in range(len(out) - 1):  # a run of cancels of one order's legs: in leg order, outcomes as a set
        j = i
        while j + 1 < len(out) and _sibling_legs(out[j], out[j + 1]):
            j += 1
        if j > i and (i == 0 or not _sibling_legs(out[i - 1], out[i])):
            run = out[i:j + 1]
            outcomes = sorted((item["outcome"] for item in run), key=str)
            out[i:j + 1] = [item | {"outcome": outcome}
                            for item, outcome in zip(sorted(run, key=_compare_key), outcomes, strict=True)]
    return out


def _sibling_legs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Cancels of two legs of one order, one after the other: the engine releases a bracket's legs in the order of
    their venue-assigned ids, which a replay's venue assigns anew, so which leg went first is not a decision
    (however long the first cancel took: a 429 retried, a slow answer)."""
    return (a["request"] == b["request"] == "DELETE /v2/orders/{id}" and a.get("order") == b.get("order")
            and bool(a.get("leg")) and bool(b.get("leg")))


def _compare_key(item: dict[str, Any]) -> str:
    skip = (*_COMPARE_SKIP, "outcome")
    return json.dumps({k: v for k, v in item.items() if k not in skip}, sort_keys=True, default=str)


def submitted_orders(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The distinct orders the client submitted, by rank: what each asked for (its first POST), not how many
    attempts it took (a 429 retried)."""
    first: dict[int, dict[str, Any]] = {}
    for item in requests:
        if item["request"] == "POST /v2/orders" and item.get("order") and item["order"] not in first:
            first[item["order"]] = {k: item.get(k) for k in ("order", *ORDER_KEYS) if item.get(k) is not None}
    return [first[k] for k in sorted(first)]


def fills_by_order(fills: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each order's fills in their own order, orders by rank and leg (fills_of is by time across orders)."""
    return sorted(fills, key=lambda f: (f["k"], f["leg"]))


def compare(recorded: Capture, replayed: Capture) -> dict[str, Any]:
    """``divergences``: the first difference in the sequence of order requests (attempts, cancels, outcomes) and
    in the sequence of fills. ``same_orders_and_fills``: the same orders (rank, symbol, side, qty, type, class)
    and each order the same fills, whatever the interleaving of attempts and fills of different orders (the
    wall-clock timing of a recorded process)."""
    requests_a, requests_b = order_requests(recorded), order_requests(replayed)
    orders_a, orders_b = canonical(requests_a), canonical(requests_b)
    fills_a, fills_b = fills_of(recorded), fills_of(replayed)
    divergences = [d for d in (first_divergence("order request", orders_a, orders_b),
                               first_divergence("fill", fills_a, fills_b)) if d is not None]
    by_order = [d for d in (first_divergence("order", submitted_orders(requests_a), submitted_orders(requests_b)),
                            first_divergence("fill of an order", fills_by_order(fills_a), fills_by_order(fills_b)))
                if d is not None]
    return {
        "capture": str(recorded.path), "replay_capture": str(replayed.path), "same": not divergences,
        "same_orders_and_fills": not by_order, "orders_and_fills_divergence": by_order[0] if by_order else None,
        "recorded": {"order_requests": len(orders_a), "fills": len(fills_a)},
        "replayed": {"order_requests": len(orders_b), "fills": len(fills_b)},
        "first_divergence": divergences[0] if divergences else None, "divergences": divergences,
        "order_requests": {"recorded": orders_a, "replayed": orders_b},
        "orders": {"recorded": submitted_orders(requests_a), "replayed": submitted_orders(requests_b)},
        "fills": {"recorded": fills_a, "replayed": fills_b},
    }


def run_replay(capture_path: Path, out_dir: Path, *, options: Any = None) -> dict[str, Any]:
    """Rebuild the session as a scenario in ``out_dir/scenario``, run it in virtual time with the wire captured,
    compare; writes ``divergence.json`` and ``divergence.md`` in ``out_dir``. ``options``: sim WorldOptions
    (a test injects a changed engine there)."""
    from sim.scenario import load_scenario
    from sim.world import World, WorldOptions, run_world

    capture = load_capture(capture_path)
    scenario_file = write_scenario(capture, out_dir / "scenario" / f"{scenario_name(capture)}.toml")
    scenario = load_scenario(scenario_file)
    opts = options or WorldOptions()
    opts.capture = True
    run_dir = out_dir / "run"
    from adapters.rundir import claim

    with claim(run_dir, "sim", replace=True) as held:
        world = World(scenario, scenario.seed, held.directory, opts)
        report = run_world(world, scenario_file=str(scenario_file))
    replayed = load_capture(world.layout.capture_dir)
    result = compare(capture, replayed)
    result["scenario"] = str(scenario_file)
    result["sim_violations"] = list(report.invariant_violations)
    result["plan_applied"] = [list(a) for a in getattr(world.venue.replay_plan, "applied", [])]
    (out_dir / REPORT_JSON).write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    (out_dir / REPORT_MD).write_text(render_markdown(result), encoding="utf-8")
    return result


def render_markdown(result: dict[str, Any]) -> str:
    lines = [f"# Replay of {Path(result['capture']).name}", ""]
    rec, rep = result["recorded"], result["replayed"]
    lines.append(f"Recorded: {rec['order_requests']} order request(s), {rec['fills']} fill(s). Replayed: "
                 f"{rep['order_requests']} order request(s), {rep['fills']} fill(s).")
    lines.append("")
    if result["same"]:
        lines.append("**No divergence**: the replayed engine asked for the same orders and got the same fills.")
    elif result.get("same_orders_and_fills"):
        lines.append("**The same orders and fills**, order by order; the sequence of requests differs (attempts or "
                     "fills of different orders interleave otherwise: timing), as below.")
    elif result.get("orders_and_fills_divergence"):
        d = result["orders_and_fills_divergence"]
        lines.append(f"**Different orders or fills**: {d['kind']} #{d['index']}: expected "
                     f"`{json.dumps(d['expected'], default=str)}`, got `{json.dumps(d['got'], default=str)}`.")
    for d in result["divergences"]:
        lines.append(f"## First divergence in {d['kind']}s: #{d['index']}")
        lines.append("")
        lines.append(f"- expected (recorded): `{json.dumps(d['expected'], default=str)}`")
        lines.append(f"- got (replayed): `{json.dumps(d['got'], default=str)}`")
        lines.append("")
    if result.get("sim_violations"):
        lines.append("## Invariant violations in the replay")
        lines.extend(f"- {v}" for v in result["sim_violations"])
    lines.append("")
    lines.append(f"Scenario: `{result.get('scenario', '')}` (run it with `ttlive sim`).")
    return "\n".join(lines) + "\n"


def summary(result: dict[str, Any]) -> Iterable[str]:
    yield f"recorded {result['recorded']['order_requests']} order request(s), {result['recorded']['fills']} fill(s); "\
          f"replayed {result['replayed']['order_requests']}, {result['replayed']['fills']}"
    first = result["first_divergence"]
    if first is None:
        yield "no divergence"
    else:
        yield f"first divergence: {first['kind']} #{first['index']}: expected {first['expected']}, got {first['got']}"
