"""One order's lifecycle, from our risk approval to the venue's last word, as one transition table.

Pure (no I/O, no clock): the execution actor feeds an ``Order`` events and carries out what it returns.

Three kinds of answer, kept apart on purpose (h11's local vs remote errors):

* an edge in ``TRANSITIONS`` is taken (``Outcome.APPLIED``, possibly a self-loop for a repeated report);
* a venue report the table has no edge for, once the venue may know the order, is *stale*: the wire reorders
  (stream vs REST, reconnects), so an old status arriving late is normal. Its status is ignored and it is
  reported as ``Outcome.STALE`` (the monotone evidence it carries, venue id and cumulative filled qty, is
  still kept); a terminal state is never left;
* anything else is our own mistake (a local event in the wrong state, or a venue report for an order we
  never sent) and raises ``IllegalTransition``. Impossible venue data (an overfill, a fill on a rejected
  order) raises ``VenueProtocolError`` instead. Either way the order is left exactly as it was.

Fills are separate from status: ``apply_fill`` counts an execution once (by execution id) and then fires
``PARTIAL_FILL`` or ``FILL`` through the same table. An execution that arrives after a terminal report is
accepted if the venue's own numbers say it happened before the order closed (``Outcome.LATE_FILL``): the
REST poll can report ``canceled`` (or ``filled``) before the stream delivers the fills that preceded it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

from core.fsm_errors import IllegalTransition, UnknownWireValue, VenueProtocolError
from core.model import Side

MACHINE = "order"


class OrderState(enum.StrEnum):
    # Ours: the venue has confirmed nothing yet.
    CREATED = "created"
    RISK_APPROVED = "risk_approved"
    SUBMITTING = "submitting"
    ACK_UNKNOWN = "ack_unknown"  # the submit timed out: the venue may or may not have the order
    # Alpaca OrderStatus, exact wire values (alpaca-wire.md §2).
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    DONE_FOR_DAY = "done_for_day"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    PENDING_REVIEW = "pending_review"
    ACCEPTED = "accepted"
    PENDING_NEW = "pending_new"
    ACCEPTED_FOR_BIDDING = "accepted_for_bidding"
    STOPPED = "stopped"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    CALCULATED = "calculated"
    HELD = "held"  # bracket/OTO child legs waiting for the parent's fill


S = OrderState

# Status sets partition the enum (a test checks it): instead of chains of `or` at call sites.
PRE_SUBMIT: frozenset[OrderState] = frozenset({S.CREATED, S.RISK_APPROVED})  # nothing left the process
IN_FLIGHT: frozenset[OrderState] = frozenset({S.SUBMITTING, S.ACK_UNKNOWN})  # sent, not confirmed
# Final at the venue. done_for_day is NOT here: a gtc order is done for *today* and works again at the next
# open (Alpaca then reports it new / partially_filled again); a day order that is done for the day is
# followed by canceled or expired, which are terminal.
TERMINAL: frozenset[OrderState] = frozenset({S.FILLED, S.CANCELED, S.EXPIRED, S.REPLACED, S.REJECTED})
OPEN: frozenset[OrderState] = frozenset(
    {
        S.NEW,
        S.PARTIALLY_FILLED,
        S.DONE_FOR_DAY,
        S.PENDING_CANCEL,
        S.PENDING_REPLACE,
        S.PENDING_REVIEW,
        S.ACCEPTED,
        S.PENDING_NEW,
        S.ACCEPTED_FOR_BIDDING,
        S.STOPPED,
        S.SUSPENDED,
        S.CALCULATED,
        S.HELD,
    }
)  # the venue has it and it may still execute
MAY_EXECUTE: frozenset[OrderState] = IN_FLIGHT | OPEN  # counts against exposure; a halt must cancel these
ALPACA_STATUSES: frozenset[str] = frozenset(s.value for s in OPEN | TERMINAL)
OPEN_STATUSES: frozenset[str] = frozenset(s.value for s in OPEN)  # a REST status string that may still execute


class OrderEvent(enum.StrEnum):
    # Local: decisions and observations of our own side.
    RISK_APPROVED = "risk_approved"
    RISK_REJECTED = "risk_rejected"
    WITHDRAWN = "withdrawn"  # dropped before it was sent (halt, shutdown, stale signal)
    SUBMIT_SENT = "submit_sent"
    SUBMIT_REJECTED = "submit_rejected"  # POST /v2/orders answered 4xx: no order exists at the venue
    SUBMIT_TIMEOUT = "submit_timeout"  # POST outcome unknown after the adapter's retries
    NOT_FOUND = "not_found"  # lookup by client_order_id after ACK_UNKNOWN: the venue never got it
    # Venue: one per Alpaca status (REST snapshot or POST response = the ack) and trade_updates event.
    PENDING_REVIEW = "pending_review"
    HELD = "held"
    ACCEPTED = "accepted"
    PENDING_NEW = "pending_new"
    ACCEPTED_FOR_BIDDING = "accepted_for_bidding"
    NEW = "new"
    PARTIAL_FILL = "partial_fill"
    FILL = "fill"
    DONE_FOR_DAY = "done_for_day"
    CALCULATED = "calculated"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    REJECTED = "rejected"
    RESTATED = "restated"  # trade_updates only, carries no status change
    ORDER_CANCEL_REJECTED = "order_cancel_rejected"  # trade_updates only
    ORDER_REPLACE_REJECTED = "order_replace_rejected"  # trade_updates only


E = OrderEvent

LOCAL_EVENTS: frozenset[OrderEvent] = frozenset(
    {
        E.RISK_APPROVED,
        E.RISK_REJECTED,
        E.WITHDRAWN,
        E.SUBMIT_SENT,
        E.SUBMIT_REJECTED,
        E.SUBMIT_TIMEOUT,
        E.NOT_FOUND,
    }
)
VENUE_EVENTS: frozenset[OrderEvent] = frozenset(OrderEvent) - LOCAL_EVENTS

# The state each venue status report names (a bijection between the 18 statuses and their events).
REPORTED_STATE: dict[OrderEvent, OrderState] = {
    E.PENDING_REVIEW: S.PENDING_REVIEW,
    E.HELD: S.HELD,
    E.ACCEPTED: S.ACCEPTED,
    E.PENDING_NEW: S.PENDING_NEW,
    E.ACCEPTED_FOR_BIDDING: S.ACCEPTED_FOR_BIDDING,
    E.NEW: S.NEW,
    E.PARTIAL_FILL: S.PARTIALLY_FILLED,
    E.FILL: S.FILLED,
    E.DONE_FOR_DAY: S.DONE_FOR_DAY,
    E.CALCULATED: S.CALCULATED,
    E.STOPPED: S.STOPPED,
    E.SUSPENDED: S.SUSPENDED,
    E.PENDING_CANCEL: S.PENDING_CANCEL,
    E.PENDING_REPLACE: S.PENDING_REPLACE,
    E.CANCELED: S.CANCELED,
    E.EXPIRED: S.EXPIRED,
    E.REPLACED: S.REPLACED,
    E.REJECTED: S.REJECTED,
}


def _to(*events: OrderEvent) -> dict[OrderEvent, OrderState]:
    """Edges to the state each report names."""
    return {e: REPORTED_STATE[e] for e in events}


def _stay(state: OrderState, *events: OrderEvent) -> dict[OrderEvent, OrderState]:
    return dict.fromkeys(events, state)


_FINAL = (E.FILL, E.CANCELED, E.EXPIRED, E.REPLACED, E.REJECTED)
_ALL_STATUS_REPORTS = tuple(REPORTED_STATE)


def _open_row(state: OrderState, *more: OrderEvent) -> dict[OrderEvent, OrderState]:
    """Edges every open state has: its own status repeated (a REST poll reports it again and again), an
    execution (fills are facts and must always count), the venue's final word (the venue decides finality
    and the wire reorders, so a terminal report wins from any open state), a restatement (no status)."""
    own = next(e for e, s in REPORTED_STATE.items() if s is state)
    return {**_to(own, E.PARTIAL_FILL, *_FINAL, *more), **_stay(state, E.RESTATED)}


# Anything after the ack ladder below: working, the side states, and the venue's final word.
_PAST_ACK = (
    E.NEW,
    E.PARTIAL_FILL,
    E.PENDING_CANCEL,
    E.PENDING_REPLACE,
    E.STOPPED,
    E.SUSPENDED,
    E.DONE_FOR_DAY,
    E.CALCULATED,
)

# One row per state, every state listed; terminal rows are empty (absorbing).
ROWS: dict[OrderState, dict[OrderEvent, OrderState]] = {
    S.CREATED: {
        E.RISK_APPROVED: S.RISK_APPROVED,
        E.RISK_REJECTED: S.REJECTED,  # why: a local veto ends it before the wire; every end is TERMINAL
        E.WITHDRAWN: S.CANCELED,
    },
    S.RISK_APPROVED: {
        E.SUBMIT_SENT: S.SUBMITTING,
        E.WITHDRAWN: S.CANCELED,  # why: a halt between approval and send must not leave it dangling
    },
    S.SUBMITTING: {
        E.SUBMIT_TIMEOUT: S.ACK_UNKNOWN,
        E.SUBMIT_REJECTED: S.REJECTED,
        # why: the order gate closed (halt) before any attempt left: nothing reached the venue
        E.WITHDRAWN: S.CANCELED,
        # why: the stream can beat the POST response, so any status (even filled) may be the first news
        **_to(*_ALL_STATUS_REPORTS),
        **_stay(S.SUBMITTING, E.RESTATED),
    },
    S.ACK_UNKNOWN: {
        # why: the venue never saw it, so the same client_order_id may be re-sent (or the order withdrawn)
        E.NOT_FOUND: S.RISK_APPROVED,
        **_to(*_ALL_STATUS_REPORTS),  # any report resolves the ambiguity
        **_stay(S.ACK_UNKNOWN, E.RESTATED),
    },
    # The ack ladder (received, not yet working), earliest first; a report only moves forward on it.
    S.HELD: _open_row(
        S.HELD, E.PENDING_REVIEW, E.ACCEPTED, E.PENDING_NEW, E.ACCEPTED_FOR_BIDDING, *_PAST_ACK
    ),
    S.PENDING_REVIEW: _open_row(
        S.PENDING_REVIEW, E.ACCEPTED, E.PENDING_NEW, E.ACCEPTED_FOR_BIDDING, *_PAST_ACK
    ),
    S.ACCEPTED: _open_row(S.ACCEPTED, E.PENDING_NEW, E.ACCEPTED_FOR_BIDDING, *_PAST_ACK),
    S.PENDING_NEW: _open_row(S.PENDING_NEW, E.ACCEPTED_FOR_BIDDING, *_PAST_ACK),
    S.ACCEPTED_FOR_BIDDING: _open_row(S.ACCEPTED_FOR_BIDDING, *_PAST_ACK),
    # Working.
    S.NEW: {
        **_open_row(
            S.NEW,
            E.PENDING_CANCEL,
            E.PENDING_REPLACE,
            E.STOPPED,
            E.SUSPENDED,
            E.DONE_FOR_DAY,
            E.CALCULATED,
        ),
        # why: Alpaca often skips pending_cancel/pending_replace, so the refusal arrives while still new
        **_stay(S.NEW, E.ORDER_CANCEL_REJECTED, E.ORDER_REPLACE_REJECTED),
    },
    S.PARTIALLY_FILLED: {
        **_open_row(
            S.PARTIALLY_FILLED,
            E.PENDING_CANCEL,
            E.PENDING_REPLACE,
            E.STOPPED,
            E.SUSPENDED,
            E.DONE_FOR_DAY,
            E.CALCULATED,
        ),
        **_stay(S.PARTIALLY_FILLED, E.ORDER_CANCEL_REJECTED, E.ORDER_REPLACE_REJECTED),
    },
    # Side states.
    S.PENDING_CANCEL: {
        # A fill racing the cancel is legal: _open_row has PARTIAL_FILL and FILL (-> filled).
        **_open_row(S.PENDING_CANCEL),
        E.ORDER_CANCEL_REJECTED: S.NEW,  # why: the cancel was refused, the order works on
    },
    S.PENDING_REPLACE: {
        **_open_row(S.PENDING_REPLACE, E.PENDING_CANCEL),  # a fill may race the replace too
        E.ORDER_REPLACE_REJECTED: S.NEW,  # why: the replace was refused, the original works on
    },
    S.STOPPED: {  # a trade is guaranteed but has not happened yet
        **_open_row(S.STOPPED, E.PENDING_CANCEL, E.DONE_FOR_DAY, E.CALCULATED),
        **_stay(S.STOPPED, E.ORDER_CANCEL_REJECTED),
    },
    S.SUSPENDED: {
        **_open_row(S.SUSPENDED, E.PENDING_CANCEL),
        E.NEW: S.NEW,  # why: a suspension is lifted, the order is eligible to trade again
        **_stay(S.SUSPENDED, E.ORDER_CANCEL_REJECTED),
    },
    S.DONE_FOR_DAY: {
        **_open_row(S.DONE_FOR_DAY, E.PENDING_CANCEL, E.PENDING_REPLACE, E.CALCULATED, E.SUSPENDED),
        E.NEW: S.NEW,  # why: a gtc order works again at the next session's open
        **_stay(S.DONE_FOR_DAY, E.ORDER_CANCEL_REJECTED, E.ORDER_REPLACE_REJECTED),
    },
    S.CALCULATED: {  # done for the day, settlement pending: filled or done_for_day follows
        **_open_row(S.CALCULATED, E.DONE_FOR_DAY),
    },
    # Terminal states are absorbing: no edges. A venue report here is stale; a local event is illegal.
    S.FILLED: {},
    S.CANCELED: {},
    S.EXPIRED: {},
    S.REPLACED: {},
    S.REJECTED: {},
}
TRANSITIONS: dict[tuple[OrderState, OrderEvent], OrderState] = {
    (state, event): target for state, row in ROWS.items() for event, target in row.items()
}


class Outcome(enum.StrEnum):
    APPLIED = "applied"  # the table's edge was taken (a self-loop for a repeated report)
    STALE = "stale"  # a venue report older than what we know: ignored
    DUPLICATE = "duplicate"  # an execution already counted: ignored
    LATE_FILL = "late_fill"  # an execution that preceded the terminal report: counted, state unchanged


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupOrder:
    """Ask the venue for the order by client_order_id (after an ambiguous submit), then report the answer."""

    order_id: str
    client_order_id: str


OrderCommand = LookupOrder


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """What one event did to the order."""

    outcome: Outcome
    state_before: OrderState
    state_after: OrderState
    commands: tuple[OrderCommand, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderLogEntry:
    """One applied event, in order. Stale reports and duplicate executions changed nothing: not logged."""

    seq: int
    event: OrderEvent
    state_before: OrderState
    state_after: OrderState
    ts_ns: int
    execution_id: str | None = None
    qty: Decimal | None = None
    price: Decimal | None = None


@dataclass(slots=True, kw_only=True, eq=False)
class Order:
    """The machine for one order. Mutated only by ``apply`` / ``apply_fill``; read everything else.

    ``state`` and the quantities are constructor fields so an order can be restored (or a test can start
    mid-life); a new order starts CREATED.
    """

    order_id: str  # our internal execution id
    client_order_id: str  # the idempotency key sent to the venue
    symbol: str
    side: Side
    qty: Decimal
    state: OrderState = S.CREATED
    venue_order_id: str | None = None  # set by the first venue report that carries one (the ack)
    filled_qty: Decimal = Decimal(0)  # sum of the executions counted here, each once
    reported_filled_qty: Decimal | None = None  # the largest cumulative filled qty the venue has stated
    # A dollar-amount order: ``qty`` is then our estimate of the shares; the venue's executions decide it (it grows
    # to what the venue reports filled, and becomes exactly the filled quantity once the venue says filled).
    notional: Decimal | None = None
    _filled_notional: Decimal = field(default=Decimal(0), init=False, repr=False)
    _seen_execution_ids: set[str] = field(default_factory=set, init=False, repr=False)
    _log: list[OrderLogEntry] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.qty <= 0:
            raise ValueError(f"order {self.order_id}: qty must be positive, got {self.qty}")

    # --- reading --------------------------------------------------------------------------------------

    @property
    def avg_fill_price(self) -> Decimal | None:
        return self._filled_notional / self.filled_qty if self.filled_qty else None

    @property
    def seen_execution_ids(self) -> frozenset[str]:
        return frozenset(self._seen_execution_ids)

    @property
    def log(self) -> tuple[OrderLogEntry, ...]:
        return tuple(self._log)

    @property
    def leaves_qty(self) -> Decimal:
        return self.qty - self.filled_qty

    @property
    def missing_fill_qty(self) -> Decimal:
        """Quantity the venue says filled that no execution here accounts for yet (a gap to fill via REST)."""
        if self.reported_filled_qty is None:
            return Decimal(0)
        return max(Decimal(0), self.reported_filled_qty - self.filled_qty)

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL

    # --- events ---------------------------------------------------------------------------------------

    def apply(
        self,
        event: OrderEvent,
        *,
        ts_ns: int = 0,
        venue_order_id: str | None = None,
        venue_filled_qty: Decimal | None = None,
    ) -> Applied:
        """Fire one local event or venue status report (the POST response's status is the ack).

        ``venue_order_id`` / ``venue_filled_qty`` come with venue reports (the order snapshot's ``id`` and
        ``filled_qty``). Executions go through ``apply_fill`` instead, so they are counted exactly once.
        """
        before = self.state
        if event in LOCAL_EVENTS and (venue_order_id is not None or venue_filled_qty is not None):
            raise ValueError(f"order {self.order_id}: local event {event} carries no venue data")
        target = self._resolve(event)  # may raise IllegalTransition: nothing mutated yet
        if venue_filled_qty is not None:
            if self.notional is not None and venue_filled_qty > self.qty:
                self._resize_notional(venue_filled_qty)
            self._check_cum(venue_filled_qty, "reported filled_qty")
        if venue_order_id is not None and self.venue_order_id not in (None, venue_order_id):
            raise VenueProtocolError(
                f"venue order id changed from {self.venue_order_id} to {venue_order_id}",
                entity_id=self.order_id,
            )
        # Mutate: evidence first (monotone, so even a stale report may carry it), then the state.
        if venue_order_id is not None:
            self.venue_order_id = venue_order_id
        if venue_filled_qty is not None:
            self._note_reported(venue_filled_qty)
        if target is None:
            return Applied(outcome=Outcome.STALE, state_before=before, state_after=before)
        self.state = target
        self._append(event, before, ts_ns)
        commands: tuple[OrderCommand, ...] = ()
        if target is S.ACK_UNKNOWN:
            commands = (LookupOrder(order_id=self.order_id, client_order_id=self.client_order_id),)
        return Applied(outcome=Outcome.APPLIED, state_before=before, state_after=target, commands=commands)

    def apply_fill(
        self,
        execution_id: str,
        qty: Decimal,
        price: Decimal,
        *,
        cum_qty: Decimal | None = None,
        ts_ns: int = 0,
        final_qty: Decimal | None = None,
    ) -> Applied:
        """Count one execution (a ``fill`` / ``partial_fill`` update, or one synthesised from activities).

        ``cum_qty`` is the venue's cumulative filled quantity after this execution, when known: evidence used
        to tell a completed order (``FILL``) from a partial one even when executions arrive out of order.
        ``final_qty`` (notional orders only): the venue says the order is complete at this share quantity.
        """
        before = self.state
        if execution_id in self._seen_execution_ids:
            return Applied(outcome=Outcome.DUPLICATE, state_before=before, state_after=before)
        if not execution_id:
            raise VenueProtocolError("execution without an id", entity_id=self.order_id)
        if qty <= 0 or price <= 0:
            raise VenueProtocolError(
                f"execution {execution_id}: qty {qty} @ {price}", entity_id=self.order_id
            )
        new_filled = self.filled_qty + qty
        if self.notional is not None:  # the venue decides a dollar order's shares: take its word (checked)
            sized = max(new_filled, cum_qty if cum_qty is not None else Decimal(0))
            if final_qty is not None and final_qty < sized:
                raise VenueProtocolError(
                    f"execution {execution_id}: final qty {final_qty} below {sized} filled", entity_id=self.order_id
                )
            self._resize_notional(final_qty if final_qty is not None else max(self.qty, sized))
        if new_filled > self.qty:
            raise VenueProtocolError(
                f"execution {execution_id} overfills: {self.filled_qty} + {qty} > {self.qty}",
                entity_id=self.order_id,
            )
        if cum_qty is not None:
            self._check_cum(cum_qty, f"execution {execution_id} cum_qty")
            if cum_qty < qty:
                raise VenueProtocolError(
                    f"execution {execution_id}: cum_qty {cum_qty} < its own qty {qty}",
                    entity_id=self.order_id,
                )
        evidence = max(new_filled, cum_qty if cum_qty is not None else Decimal(0))
        if before in TERMINAL:
            covered = self._late_fill_cover()
            # Unknown cover: a closed-with-leaves order cannot have completed (the venue would say filled).
            if (evidence > covered) if covered is not None else (evidence >= self.qty):
                raise VenueProtocolError(
                    f"execution {execution_id} ({qty}) after the order was {before} with "
                    f"{self.reported_filled_qty} reported filled, {self.filled_qty} counted",
                    entity_id=self.order_id,
                )
            outcome, target = Outcome.LATE_FILL, before
            event = E.FILL if evidence == self.qty else E.PARTIAL_FILL
        else:
            event = E.FILL if evidence == self.qty else E.PARTIAL_FILL
            resolved = self._resolve(event)  # raises for PRE_SUBMIT: a fill for an order we never sent
            if resolved is None:  # pragma: no cover - every non-terminal state has both fill edges
                raise AssertionError(f"{before} has no edge for {event}")
            outcome, target = Outcome.APPLIED, resolved
        # Mutate second.
        self._seen_execution_ids.add(execution_id)
        self.filled_qty = new_filled
        self._filled_notional += qty * price
        if cum_qty is not None:
            self._note_reported(cum_qty)
        self.state = target
        # Log last.
        self._append(event, before, ts_ns, execution_id=execution_id, qty=qty, price=price)
        return Applied(outcome=outcome, state_before=before, state_after=target)

    # --- internals ------------------------------------------------------------------------------------

    def _resolve(self, event: OrderEvent) -> OrderState | None:
        """The table's target; None for a stale venue report; raises for anything we should never do."""
        target = TRANSITIONS.get((self.state, event))
        if target is not None:
            # A working order with executions is partially_filled, whichever report brought it back to work
            # (order_cancel_rejected, a gtc order's next-day `new`): the status follows the fills we counted.
            if target is S.NEW and self.filled_qty > 0:
                return S.PARTIALLY_FILLED
            return target
        if event in VENUE_EVENTS and self.state not in PRE_SUBMIT:
            return None
        raise IllegalTransition(machine=MACHINE, state=self.state, event=event, entity_id=self.order_id)

    def _resize_notional(self, qty: Decimal) -> None:
        """A notional order's share quantity, as the venue's executions have shown it (never below what filled)."""
        assert self.notional is not None and qty >= self.filled_qty, (self.notional, qty, self.filled_qty)
        if qty > 0:
            self.qty = qty

    def _late_fill_cover(self) -> Decimal | None:
        """How much can have filled before this terminal state, by the venue's word; None if unknown."""
        if self.state is S.FILLED:
            return self.qty
        if self.state is S.REJECTED:
            return self.reported_filled_qty or Decimal(0)
        return self.reported_filled_qty  # canceled / expired / replaced: what the venue said had filled

    def _check_cum(self, cum_qty: Decimal, what: str) -> None:
        if cum_qty < 0 or cum_qty > self.qty:
            raise VenueProtocolError(f"{what} {cum_qty} outside [0, {self.qty}]", entity_id=self.order_id)

    def _note_reported(self, cum_qty: Decimal) -> None:
        if self.reported_filled_qty is None or cum_qty > self.reported_filled_qty:
            self.reported_filled_qty = cum_qty

    def _append(
        self,
        event: OrderEvent,
        before: OrderState,
        ts_ns: int,
        *,
        execution_id: str | None = None,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> None:
        self._log.append(
            OrderLogEntry(
                seq=len(self._log),
                event=event,
                state_before=before,
                state_after=self.state,
                ts_ns=ts_ns,
                execution_id=execution_id,
                qty=qty,
                price=price,
            )
        )


# --- wire mappers -----------------------------------------------------------------------------------------

_STATUS_EVENT: dict[str, OrderEvent] = {state.value: event for event, state in REPORTED_STATE.items()}
# trade_updates event names are the status names, except the two execution events and three status-less ones.
_TRADE_EVENT: dict[str, OrderEvent] = {
    **{e.value: e for e in REPORTED_STATE},
    E.RESTATED.value: E.RESTATED,
    E.ORDER_CANCEL_REJECTED.value: E.ORDER_CANCEL_REJECTED,
    E.ORDER_REPLACE_REJECTED.value: E.ORDER_REPLACE_REJECTED,
}


def status_event(wire_status: str) -> OrderEvent:
    """The event for an order snapshot's ``status`` (REST, POST response, or a trade update's order)."""
    try:
        return _STATUS_EVENT[wire_status]
    except KeyError:
        raise UnknownWireValue(kind="order status", value=wire_status) from None


def trade_event(wire_event: str) -> OrderEvent:
    """The event for a ``trade_updates`` message's ``event`` field."""
    try:
        return _TRADE_EVENT[wire_event]
    except KeyError:
        raise UnknownWireValue(kind="trade_updates event", value=wire_event) from None
