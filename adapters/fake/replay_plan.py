"""The venue's recorded answers, for a replayed capture (``ttlive replay``, issue 22).

A plan (JSON, written by ``tools.replay`` from a capture) tells the fake venue two things:

* ``answers``: what the n-th request to a route (method + path with ids as ``{id}``) got when it was recorded,
  when that was a fault or a refusal: a status with its body (429, 5xx, an order rejected), the answer lost
  after the request was applied, or an answer that came slowly. Every other request is answered by the venue.
  An answer with a ``query`` signature (market data, the clock, the calendar: ``signature``) is the n-th answer
  to that same question, whatever order concurrent requests arrive in.
* ``heard``: how many trade updates of each event the client heard per order: any beyond that number the
  venue emits in the replay are dropped (the recorded session never heard them: a lost frame, or no connection).
* ``orders``: for the k-th order the client submitted (its k-th distinct client order id on POST /v2/orders),
  the fills it got, each as (time after the order was created, qty, price). Such an order never matches on
  the venue's own book: its fills come when their time is due, at the recorded prices. An order the recording
  does not have (another symbol or side at that rank: the engine diverged) is matched as usual.

Counting is by occurrence, so a replayed engine that repeats the recorded requests meets the recorded faults
at the same requests; one that diverges meets them elsewhere, which the divergence report shows. An answer to a
request about one order (POST /v2/orders; DELETE or PATCH /v2/orders/{id}) may name that order instead: ``order``
k (and ``leg``), with ``n`` counting the requests about it. Then the k-th order's n-th attempt meets its recorded
answer (a 429, a lost answer) however the requests about other orders interleave with it (wall-clock timing of the
recorded process: two decisions a few milliseconds apart, a rate limiter releasing them together).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from adapters.fake import matching as m
from adapters.fake.wire import ApiError

if TYPE_CHECKING:
    from adapters.fake.interfaces import RestRequest
    from adapters.fake.venue_orders import OrderBook

PLAN_VERSION: Final = 1
# Query keys that say which data a request is for; the rest (start, end, page tokens) follow the clock.
SIGNATURE_KEYS: Final = ("symbols", "symbol", "timeframe", "feed", "limit", "sort", "adjustment", "status",
                         "direction", "activity_types", "nested")


def signature(query: dict[str, str]) -> str:
    """What a request asks for, independent of when it is sent: concurrent requests (one per symbol) may reach
    the venue in another order in a replay; each still gets the answer recorded for the same question."""
    return "&".join(f"{k}={query[k]}" for k in SIGNATURE_KEYS if k in query)
_ID_SEGMENT: Final = re.compile(r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|"
                                r"tt-[A-Za-z0-9-]+)$")


def route_of(path: str) -> str:
    """A path with its order/asset ids as ``{id}``: requests to the same route are counted together."""
    return "/".join("{id}" if _ID_SEGMENT.match(part) else part for part in path.rstrip("/").split("/"))


class ReplayPlanError(ValueError):
    """A plan file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Answer:
    method: str
    route: str
    n: int  # 1-based occurrence of (method, route)
    status: int | None = None  # answer with this status and body instead of applying the request
    body: Any = None
    lost: bool = False  # apply, then lose the answer (the client times out)
    delay_s: float = 0.0  # apply, answer this late
    symbol: str = ""  # POST /v2/orders: the answer applies only to an order for this symbol and side
    side: str = ""
    query: str | None = None  # a signature (see ``signature``): n counts requests with the same one
    order: int = 0  # k > 0: n counts the requests of this method about the k-th order (its ``leg``), not the route's
    leg: int = 0


@dataclass
class RecordedOrder:
    k: int
    leg: int  # 0: the submitted order; i: its i-th leg (bracket/OTO/OCO), which has recorded fills of its own
    symbol: str
    side: str
    fills: list[tuple[int, Decimal, Decimal]]  # (ns after created, qty, price)
    done: int = 0  # fills already given


@dataclass
class ReplayPlan:
    answers: dict[tuple[str, str, int], Answer] = field(default_factory=dict)
    orders: dict[tuple[int, int], RecordedOrder] = field(default_factory=dict)
    seen: dict[tuple[str, str], int] = field(default_factory=dict)  # (method, route) -> requests so far
    submitted: dict[str, int] = field(default_factory=dict)  # client order id -> k (1-based)
    owned: dict[str, RecordedOrder] = field(default_factory=dict)  # venue order id -> its recorded order
    applied: list[tuple[str, str, int, str]] = field(default_factory=list)  # record: what the plan did
    heard: dict[tuple[int, int, str], int] | None = None  # (k, leg, event) -> trade updates the client heard
    emitted: dict[tuple[int, int, str], int] = field(default_factory=dict)
    signed: set[tuple[str, str]] = field(default_factory=set)  # (method, route?signature) answered by question
    by_order: dict[tuple[str, int, int, int], Answer] = field(default_factory=dict)  # (method, k, leg, n)
    order_seen: dict[tuple[str, int, int], int] = field(default_factory=dict)  # (method, k, leg) -> requests so far

    @classmethod
    def load(cls, path: str | Path) -> ReplayPlan:
        where = str(path)
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ReplayPlanError(f"{where}: cannot read the replay plan: {exc}") from None
        if not isinstance(raw, dict) or raw.get("version") != PLAN_VERSION:
            raise ReplayPlanError(f"{where}: not a version {PLAN_VERSION} replay plan")
        plan = cls()
        try:
            for i, a in enumerate(raw.get("answers", [])):
                answer = Answer(method=str(a["method"]), route=str(a["route"]), n=int(a["n"]),
                                status=None if a.get("status") is None else int(a["status"]), body=a.get("body"),
                                lost=bool(a.get("lost", False)), delay_s=float(a.get("delay_s", 0.0)),
                                symbol=str(a.get("symbol", "")), side=str(a.get("side", "")),
                                query=None if a.get("query") is None else str(a["query"]),
                                order=int(a.get("order", 0)), leg=int(a.get("leg", 0)))
                if answer.n < 1:
                    raise ValueError(f"answers[{i}].n must be >= 1")
                if answer.order > 0:
                    plan.by_order[(answer.method, answer.order, answer.leg, answer.n)] = answer
                    continue
                route = answer.route if answer.query is None else f"{answer.route}?{answer.query}"
                plan.answers[(answer.method, route, answer.n)] = answer
            for o in raw.get("orders", []):
                fills = [(int(f["after_ns"]), Decimal(str(f["qty"])), Decimal(str(f["price"]))) for f in o["fills"]]
                key = (int(o["k"]), int(o.get("leg", 0)))
                plan.orders[key] = RecordedOrder(*key, str(o["symbol"]), str(o["side"]), fills)
            plan.signed = {(a.method, f"{a.route}?{a.query}") for a in plan.answers.values() if a.query is not None}
            if "heard" in raw:
                plan.heard = {(int(h["k"]), int(h["leg"]), str(h["event"])): int(h["n"]) for h in raw["heard"]}
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ReplayPlanError(f"{where}: bad entry: {exc!r}") from None
        return plan

    # --- REST ----------------------------------------------------------------------------------------------

    def rest_answer(self, req: RestRequest, book: OrderBook | None = None) -> Answer | None:
        """Count this request; the recorded answer for its occurrence, if it was a fault or a refusal."""
        route = route_of(req.path)
        key = (req.method, route)
        n = self.seen[key] = self.seen.get(key, 0) + 1
        body = _json(req.body) if req.method == "POST" and route == "/v2/orders" else None
        if isinstance(body, dict) and isinstance(body.get("client_order_id"), str):
            self.submitted.setdefault(body["client_order_id"], len(self.submitted) + 1)
        answer = self.answers.get((req.method, route, n))
        about = self._about(req, route, body, book)
        if about is not None:  # a request about the k-th order: counted per order, answered as recorded for it
            k, leg = about
            count = self.order_seen[(req.method, k, leg)] = self.order_seen.get((req.method, k, leg), 0) + 1
            answer, n = self.by_order.get((req.method, k, leg, count)), count
        keyed = (req.method, f"{route}?{signature(req.query)}")
        if keyed in self.signed:  # answered by question (market data, clock, calendar), not by arrival order
            n = self.seen[keyed] = self.seen.get(keyed, 0) + 1
            answer = self.answers.get((*keyed, n))
        if answer is None:
            return None
        if answer.symbol and (not isinstance(body, dict) or (body.get("symbol"), body.get("side")) != (
                answer.symbol, answer.side)):
            return None  # the engine asked for another order here: the venue answers it on its own
        self.applied.append((req.method, route, n, "lost" if answer.lost else str(answer.status or answer.delay_s)))
        return answer

    def _about(self, req: RestRequest, route: str, body: Any, book: OrderBook | None) -> tuple[int, int] | None:
        """(k, leg) of the order a POST /v2/orders or a DELETE/PATCH /v2/orders/{id} is about, when the plan
        answers by order and the order is one the client submitted (or a leg of one)."""
        if not self.by_order:
            return None
        if route == "/v2/orders" and req.method == "POST" and isinstance(body, dict):
            k = self.submitted.get(str(body.get("client_order_id")))
            return None if k is None else (k, 0)
        if route == "/v2/orders/{id}" and req.method in ("DELETE", "PATCH") and book is not None:
            try:
                order = book.get_order(req.path.rstrip("/").rsplit("/", 1)[-1])
            except ApiError:
                return None
            return self._rank(book, order)
        return None

    # --- matching ------------------------------------------------------------------------------------------

    def match(self, book: OrderBook, order: m.VenueOrder, now_ns: int) -> bool:
        """True when the plan owns ``order`` (its recorded fills that are due were given); False: match as usual."""
        recorded = self.owned.get(order.id)
        if recorded is None:
            candidate = self._candidate(book, order)
            if candidate is None or (candidate.symbol, candidate.side) != (order.symbol, order.side):
                return False
            if any(r is candidate for r in self.owned.values()):
                return False
            recorded = self.owned[order.id] = candidate
        while recorded.done < len(recorded.fills) and order.status in m.WORKING:
            after_ns, qty, price = recorded.fills[recorded.done]
            if order.created_at_ns + after_ns > now_ns:
                break
            recorded.done += 1
            qty = min(qty, order.leaves_qty)
            if qty > 0:
                book._execute(order, qty, price)
        return True


    def _candidate(self, book: OrderBook, order: m.VenueOrder) -> RecordedOrder | None:
        rank = self._rank(book, order)
        return None if rank is None else self.orders.get(rank)

    def _rank(self, book: OrderBook, order: m.VenueOrder) -> tuple[int, int] | None:
        """(k, leg) of an order the client submitted (leg 0) or of one of its legs."""
        if order.parent_id is None:
            k = self.submitted.get(order.client_order_id)
            return None if k is None else (k, 0)
        try:
            parent = book.get_order(order.parent_id)
            leg = parent.leg_ids.index(order.id) + 1
        except (ValueError, ApiError):  # an unknown parent or leg: not the plan's
            return None
        k = self.submitted.get(parent.client_order_id)
        return None if k is None else (k, leg)

    # --- trade updates -------------------------------------------------------------------------------------

    def unheard(self, book: OrderBook, event: str, order: m.VenueOrder) -> bool:
        """True for a trade update of a recorded order beyond those the client heard of that kind (a frame
        dropped, or sent while it was away): the replay loses it too. Unknown events pass like any other."""
        rank = self._rank(book, order) if self.heard is not None else None
        if rank is None or self.heard is None:
            return False
        key = (*rank, event)
        count = self.emitted[key] = self.emitted.get(key, 0) + 1
        return count > self.heard.get(key, 0)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def attach_plan(venue: Any, path: str | Path) -> ReplayPlan:
    """Load the plan and hand it to the venue (``Venue.replay_plan``)."""
    plan = ReplayPlan.load(path)
    venue.replay_plan = plan
    return plan
