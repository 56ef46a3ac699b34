"""The fake venue's order book and the lifecycle that moves it: accept, route, match, execute, cancel, replace.

The ``Venue`` owns the clock, the account and the streams; this book owns the orders and asks the venue for
the time, the touch and the ids. Executions draw from the book's own seeded ``random.Random``.
"""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any, Final

from adapters.fake import matching as m
from adapters.fake import venue_checks as checks
from adapters.fake.accounts import FillActivity, activity_side
from adapters.fake.interfaces import FakeQuote
from adapters.fake.wire import ApiError, activity_id, dec_str, order_json
from core.model import Fill, Side

if TYPE_CHECKING:
    from adapters.fake.venue import Venue

_ZERO: Final = Decimal(0)
_FRACTION_QUANTUM: Final = Decimal("0.000000001")
CANCEL_LATENCY_NS: Final = 50_000_000  # trade_events "full": an acknowledged cancel lands 50 ms later


@dataclass(frozen=True, slots=True, kw_only=True)
class AcceptedOrder:
    """One order the venue accepted (entries, bracket legs, replacements, liquidations)."""

    ts_ns: int
    order_id: str
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    type: str
    time_in_force: str
    order_class: str
    parent_id: str | None = None
    replaces: str | None = None


class OrderBook:
    """Every order the venue accepted, in acceptance order. Never awaits; runs on the venue's clock."""

    def __init__(self, venue: Venue) -> None:
        self._venue = venue
        self._match_rng = random.Random(f"ttlive-fake-venue-matching:{venue.config.seed}")
        self._orders: dict[str, m.VenueOrder] = {}  # insertion order == acceptance order
        self._open: dict[str, m.VenueOrder] = {}  # the open subset, same order (terminal is absorbing)
        self._by_client_id: dict[str, str] = {}  # every client_order_id ever used -> order id
        # Every order in acceptance order, which is submitted_at_ns order while the venue's clock never steps back
        # (virtual time; a wall clock could): GET /v2/orders?after= bisects it instead of scanning every order.
        self._accepted: list[m.VenueOrder] = []
        self._time_ordered = True
        self._seq = 0
        self._liquidity = m.Liquidity()
        self._day_trade_orders: set[str] = set()
        self._cancels_due: dict[str, int] = {}  # trade_events "full": order id -> when its cancel lands

    @property
    def full_events(self) -> bool:
        """Every documented trade_updates event where Alpaca produces it (VenueConfig.trade_events = "full")."""
        return self._venue.config.trade_events == "full"

    def _announce(self, order: m.VenueOrder, status: str) -> None:
        """A status Alpaca reports on the way (pending_new, pending_replace, calculated): the order passes
        through it within this venue step, so the event carries it and the book keeps the order where it was."""
        previous = order.status
        order.status = status
        order.updated_at_ns = self._venue.now_ns
        self._venue.emit_trade_update(status, order)
        order.status = previous

    # --- queries ------------------------------------------------------------------------------------------------

    def orders(self) -> list[m.VenueOrder]:
        return list(self._orders.values())

    def open_orders(self) -> list[m.VenueOrder]:
        return list(self._open.values())

    def orders_after(self, after_ns: int | None) -> list[m.VenueOrder]:
        """The orders submitted after ``after_ns`` (all when None), in acceptance order."""
        if after_ns is None:
            return list(self._accepted)
        if not self._time_ordered:
            return [o for o in self._accepted if o.submitted_at_ns > after_ns]
        start = bisect.bisect_right(self._accepted, after_ns, key=lambda o: o.submitted_at_ns)
        return self._accepted[start:]

    def get_order(self, order_id: str) -> m.VenueOrder:
        order = self._orders.get(order_id)
        if order is None:
            raise ApiError(404, 40410000, "order not found")
        return order

    def get_order_by_client_id(self, client_order_id: str) -> m.VenueOrder:
        order_id = self._by_client_id.get(client_order_id)
        if order_id is None:
            raise ApiError(404, 40410000, "order not found")
        return self._orders[order_id]

    def knows_client_order_id(self, client_order_id: str) -> bool:
        return client_order_id in self._by_client_id

    def legs_of(self, order: m.VenueOrder) -> list[m.VenueOrder]:
        return [self._orders[leg_id] for leg_id in order.leg_ids]

    def order_view(self, order: m.VenueOrder, *, nested: bool = True) -> dict[str, Any]:
        return order_json(order, self.legs_of(order) if nested and order.leg_ids else None)

    def held_for_orders(self, symbol: str, side: str) -> Decimal:
        """Quantity open routed-or-queued orders on this side already claim (held legs excluded).

        The two live exits of an OCO pair claim the same shares, so a pair counts once.
        """
        held, counted = _ZERO, set[str]()
        for o in self._open.values():
            if o.symbol != symbol or o.side != side or o.status not in m.CLAIMING:
                continue
            if counted.isdisjoint(o.oco_ids):
                held += o.leaves_qty
            counted.add(o.id)
        return held

    def reserved_usd(self) -> Decimal:
        return sum(
            (
                o.leaves_qty * o.reserve_price
                for o in self._open.values()
                if o.reserve_price is not None and o.status in m.CLAIMING
            ),
            _ZERO,
        )

    # --- order entry --------------------------------------------------------------------------------------------

    def submit_order(self, spec: m.OrderSpec) -> dict[str, Any]:
        """POST /v2/orders after body validation: broker checks, then accept and route. Returns the reply."""
        client_order_id, reserve_price = checks.check_new_order(self._venue, spec)
        return self._accept(spec, client_order_id, reserve_price)

    def _accept(self, spec: m.OrderSpec, client_order_id: str, reserve_price: Decimal | None) -> dict[str, Any]:
        if spec.order_class == "oco":  # the order itself is the take-profit limit
            spec = replace(spec, type="limit", limit_price=spec.take_profit_limit_price, stop_price=None)
        parent = self._new_order(spec, client_order_id, reserve_price=reserve_price)
        exit_side = "sell" if spec.side == "buy" else "buy"
        legs: list[m.VenueOrder] = []
        if spec.order_class in ("bracket", "oto"):
            if spec.take_profit_limit_price is not None:
                legs.append(self._new_leg(parent, exit_side, "limit", spec.take_profit_limit_price, None))
            if spec.stop_loss_stop_price is not None:
                stop_type = "stop" if spec.stop_loss_limit_price is None else "stop_limit"
                legs.append(
                    self._new_leg(parent, exit_side, stop_type, spec.stop_loss_limit_price, spec.stop_loss_stop_price)
                )
        elif spec.order_class == "oco":  # the parent is the take-profit limit; its leg the stop; both live
            stop_type = "stop" if spec.stop_loss_limit_price is None else "stop_limit"
            legs.append(
                self._new_leg(
                    parent,
                    spec.side,
                    stop_type,
                    spec.stop_loss_limit_price,
                    spec.stop_loss_stop_price,
                    status="accepted",
                )
            )
            parent.oco_ids.append(legs[0].id)
            legs[0].oco_ids.append(parent.id)
        if len(legs) == 2:
            legs[0].oco_ids.append(legs[1].id)
            legs[1].oco_ids.append(legs[0].id)
        parent.leg_ids.extend(leg.id for leg in legs)
        reply = self.order_view(parent)
        self._route(parent)
        return reply

    def _new_order(
        self,
        spec: m.OrderSpec,
        client_order_id: str,
        *,
        reserve_price: Decimal | None,
        status: str = "accepted",
        parent_id: str | None = None,
        replaces: str | None = None,
    ) -> m.VenueOrder:
        self._seq += 1
        now = self._venue.now_ns
        position = self._venue.account.position_qty(spec.symbol)
        intent = position_intent(spec.side, position)
        order = m.VenueOrder(
            seq=self._seq,
            id=self._venue.new_uuid(),
            client_order_id=client_order_id,
            symbol=spec.symbol,
            asset_id=self._venue.asset_id(spec.symbol),
            side=spec.side,
            type=spec.type,
            time_in_force=spec.time_in_force,
            qty=spec.qty if spec.notional is None else checks.estimated_qty(self._venue, spec),
            notional=spec.notional,
            order_class=spec.order_class,
            status=status,
            created_at_ns=now,
            submitted_at_ns=now,
            updated_at_ns=now,
            limit_price=spec.limit_price,
            stop_price=spec.stop_price,
            trail_price=spec.trail_price,
            trail_percent=spec.trail_percent,
            extended_hours=spec.extended_hours,
            position_intent=intent,
            parent_id=parent_id,
            replaces=replaces,
            reserve_price=reserve_price,
        )
        self._orders[order.id] = order
        self._open[order.id] = order
        self._by_client_id[client_order_id] = order.id
        if self._accepted and order.submitted_at_ns < self._accepted[-1].submitted_at_ns:
            self._time_ordered = False  # the clock stepped back: orders_after scans
        self._accepted.append(order)
        self._venue.order_log.append(
            AcceptedOrder(
                ts_ns=now,
                order_id=order.id,
                client_order_id=client_order_id,
                symbol=order.symbol,
                side=order.side,
                qty=order.qty,
                type=order.type,
                time_in_force=order.time_in_force,
                order_class=order.order_class,
                parent_id=parent_id,
                replaces=replaces,
            )
        )
        return order

    def _new_leg(
        self,
        parent: m.VenueOrder,
        side: str,
        order_type: str,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        *,
        status: str = "held",
    ) -> m.VenueOrder:
        spec = m.OrderSpec(
            symbol=parent.symbol,
            qty=parent.qty,
            side=side,
            type=order_type,
            time_in_force=parent.time_in_force,
            limit_price=limit_price,
            stop_price=stop_price,
            order_class=parent.order_class,
        )
        return self._new_order(spec, self._venue.new_uuid(), reserve_price=None, status=status, parent_id=parent.id)

    # --- routing, matching, execution -----------------------------------------------------------------------------

    def _set_status(self, order: m.VenueOrder, status: str) -> None:
        assert order.status not in m.TERMINAL, f"order {order.id} is {order.status}: terminal states are absorbing"
        order.status = status
        if status not in m.OPEN:
            self._open.pop(order.id, None)

    def _tradable(self, order: m.VenueOrder) -> bool:
        if self._venue.market_open():
            return True
        return order.extended_hours and self._venue.quote(order.symbol) is not None

    def _route(self, order: m.VenueOrder, *, match: bool = True) -> None:
        """accepted -> new once the market can take it (now, or at the next open)."""
        if order.status not in m.QUEUED or not self._tradable(order):
            return
        if self.full_events and self._gapped_beyond_buying_power(order):
            self._reject(order)
            return
        if self.full_events:
            self._announce(order, "pending_new")  # routed, not yet acknowledged by the market
        self._set_status(order, "new")
        order.updated_at_ns = self._venue.now_ns
        self._venue.emit_trade_update("new", order)
        for leg in self.legs_of(order):
            if leg.status in m.QUEUED:  # OCO: the stop leg goes live with its parent
                self._route(leg, match=match)
        if not match:
            return
        self._match(order)
        if order.time_in_force in ("ioc", "fok") and order.status in m.WORKING:
            self._finish(order, "canceled")

    def _gapped_beyond_buying_power(self, order: m.VenueOrder) -> bool:
        """An opening market order queued while the market was closed reserved buying power at the last price;
        if the market opens so far away that it no longer covers the order, Alpaca rejects it at routing."""
        if order.type != "market" or order.reserve_price is None or order.notional is not None:
            return False
        price = checks.reference_price(self._venue, m.OrderSpec(
            symbol=order.symbol, qty=order.qty, side=order.side, type=order.type, time_in_force=order.time_in_force))
        if price is None or price <= order.reserve_price:
            return False
        return order.leaves_qty * (price - order.reserve_price) > self._venue.buying_power()

    def _reject(self, order: m.VenueOrder) -> None:
        self._set_status(order, "rejected")
        order.failed_at_ns = order.updated_at_ns = self._venue.now_ns
        self._venue.emit_trade_update("rejected", order)
        self._activate_legs(order)  # nothing filled: its held legs are canceled

    def match_all(self) -> None:
        if self.full_events:
            self._suspend_or_resume()
        for order in list(self._open.values()):
            if order.status in m.WORKING and self._tradable(order):
                self._match(order)

    def _match(self, order: m.VenueOrder) -> None:
        if order.status not in m.WORKING:
            return
        plan = self._venue.replay_plan
        if plan is not None and plan.match(self, order, self._venue.now_ns):
            return  # a replayed capture's order: its recorded fills, at their recorded times and prices
        quote = self._venue.quote(order.symbol)
        if quote is None or quote == order.last_quote:  # liquidity used, draw made, trigger checked
            return
        order.last_quote = quote
        if not m.observe_quote(order, quote):
            return
        if order.notional is not None:
            if order.type == "limit" and order.limit_price is not None and not (
                quote.ask_price <= order.limit_price if order.side == "buy" else quote.bid_price >= order.limit_price
            ):
                return  # a dollar-amount limit (an account's starting order; REST takes market only): not yet
            self._match_notional(order, quote)
            return
        execution = m.decide_execution(
            order,
            quote,
            rng=self._match_rng,
            liquidity=self._liquidity,
            slippage_bps=self._venue.config.slippage_bps,
            passive_fill_probability=self._venue.config.passive_fill_probability,
            all_or_none=order.time_in_force == "fok",
        )
        if execution is None:
            return
        if not execution.passive:
            self._liquidity.consume(quote, order.side, execution.qty)
        self._execute(order, execution.qty, execution.price)

    def _match_notional(self, order: m.VenueOrder, quote: FakeQuote) -> None:
        """A dollar-amount order executes whole; its share quantity becomes what it bought or sold."""
        execution = m.decide_notional_execution(
            order, quote, rng=self._match_rng, slippage_bps=self._venue.config.slippage_bps
        )
        if execution is None:
            return
        qty = execution.qty
        position = self._venue.account.position_qty(order.symbol)
        if order.side == "sell" and position > 0:
            qty = min(qty, position)  # a notional sell of a long never turns it short (fractional shorts are refused)
        self._liquidity.consume(quote, order.side, qty)
        order.qty = qty
        self._execute(order, qty, execution.price)

    def _execute(self, order: m.VenueOrder, qty: Decimal, price: Decimal) -> None:
        leaves = order.leaves_qty
        assert 0 < qty <= leaves, f"fill {qty} exceeds leaves {leaves} of order {order.id}"  # pair assertion
        session_date = self._venue.session_date()
        before = self._venue.account.position_qty(order.symbol)
        day_trade = self._venue.account.apply_fill(order.symbol, order.side, qty, price, session_date)
        if day_trade and order.id not in self._day_trade_orders:  # one day trade per closing order
            self._day_trade_orders.add(order.id)
            self._venue.account.day_trades.append((session_date, order.id))
        after = self._venue.account.position_qty(order.symbol)
        order.filled_qty += qty
        order.filled_notional += qty * price
        order.filled_avg_price = order.filled_notional / order.filled_qty
        order.updated_at_ns = self._venue.now_ns
        complete = order.filled_qty == order.qty
        if complete:
            self._set_status(order, "filled")
        elif order.status != "pending_cancel":  # a partial fill does not stop a cancel on its way
            self._set_status(order, "partially_filled")
        if complete:
            order.filled_at_ns = self._venue.now_ns
        execution_id = self._venue.new_uuid()
        event = "fill" if complete else "partial_fill"
        self._venue.fills.append(
            Fill(
                execution_id=execution_id,
                order_id=order.id,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=Side(order.side),
                qty=qty,
                price=price,
                ts_ns=self._venue.now_ns,
                cum_qty=order.filled_qty,
                position_qty=after,
            )
        )
        self._venue.account.activities.append(
            FillActivity(
                id=activity_id(self._venue.now_ns, execution_id),
                ts_ns=self._venue.now_ns,
                type=event,
                price=price,
                qty=qty,
                side=activity_side(order.side, before, after),
                symbol=order.symbol,
                leaves_qty=order.leaves_qty,
                order_id=order.id,
                cum_qty=order.filled_qty,
                order_status=order.status,
            )
        )
        self._venue.emit_trade_update(event, order, execution_id=execution_id, price=price, qty=qty, position_qty=after)
        for sibling_id in order.oco_ids:  # one-cancels-other: the first execution of a leg ends its sibling
            sibling = self._orders[sibling_id]
            if sibling.status in m.OPEN:
                self._finish(sibling, "canceled")
        if complete:
            self._activate_legs(order)

    def _activate_legs(self, parent: m.VenueOrder) -> None:
        """Held exit legs go live once the entry is done (filled, or ended with a partial fill)."""
        for leg in self.legs_of(parent):
            if leg.status not in m.HELD:
                continue
            if parent.filled_qty == 0:
                self._finish(leg, "canceled")
                continue
            leg.qty = parent.filled_qty
            self._set_status(leg, "accepted")
            leg.updated_at_ns = self._venue.now_ns
            self._route(leg, match=False)

    def _finish(self, order: m.VenueOrder, status: str) -> None:
        """End an open order as canceled or expired; an entry's held legs follow it."""
        assert status in ("canceled", "expired") and order.status in m.OPEN, (status, order.status)
        self._set_status(order, status)
        order.updated_at_ns = self._venue.now_ns
        if status == "canceled":
            order.canceled_at_ns = self._venue.now_ns
        else:
            order.expired_at_ns = self._venue.now_ns
        self._venue.emit_trade_update(status, order)
        self._activate_legs(order)

    def route_queued(self) -> None:
        """At the open: orders received while the market was closed go live; gtc orders done for the day work
        again (reported ``new``, their status what their fills make it)."""
        for order in [o for o in self._open.values() if o.status in m.QUEUED]:
            if order.status in m.QUEUED:  # an earlier routing may have canceled it (OCO)
                self._route(order)
        for order in [o for o in self._open.values() if o.status == "done_for_day"]:
            self._rework(order)

    def _rework(self, order: m.VenueOrder) -> None:
        self._set_status(order, "partially_filled" if order.filled_qty > 0 else "new")
        order.updated_at_ns = self._venue.now_ns
        self._venue.emit_trade_update("new", order)

    def _suspend_or_resume(self) -> None:
        """trade_events "full": while a symbol's quotes are frozen (quote_stale) its working orders are
        suspended (not eligible to trade, Alpaca's ``suspended``); they work again once quotes resume."""
        now = self._venue.now_ns
        for order in list(self._open.values()):
            stale = self._venue.faults.stale_since_ns(order.symbol, now) is not None
            if stale and order.status in ("new", "partially_filled"):
                self._set_status(order, "suspended")
                order.updated_at_ns = now
                self._venue.emit_trade_update("suspended", order)
            elif not stale and order.status == "suspended":
                self._rework(order)

    def settle_cancels(self) -> None:
        """trade_events "full": acknowledged cancels land. An order that filled meanwhile cannot be canceled any
        more: Alpaca reports ``order_cancel_rejected`` (the order keeps its fill)."""
        now = self._venue.now_ns
        for order_id, due_ns in list(self._cancels_due.items()):
            if due_ns > now:
                continue
            del self._cancels_due[order_id]
            order = self._orders[order_id]
            if order.status == "pending_cancel":
                self._finish(order, "canceled")
            elif order.status in m.TERMINAL:
                order.updated_at_ns = now
                self._venue.emit_trade_update("order_cancel_rejected", order)

    def next_cancel_due_ns(self) -> int | None:
        return min(self._cancels_due.values(), default=None)

    def close_session(self, close_ns: int) -> None:
        """At the close: day orders expire; with trade_events "full", a day order that partly filled is first
        ``calculated`` (done for the day, settlement pending) and a working gtc order is ``done_for_day``."""
        if self.full_events:
            for order in [o for o in self._open.values() if o.time_in_force != "day" and o.status in m.WORKING]:
                if order.status == "pending_cancel":
                    continue  # its cancel lands first
                self._set_status(order, "done_for_day")
                order.updated_at_ns = self._venue.now_ns
                self._venue.emit_trade_update("done_for_day", order)
        self.expire_day_orders(close_ns)

    def expire_day_orders(self, close_ns: int) -> None:
        """Day orders live for the session they were submitted for: expire them at its close."""
        for _ in range(len(self._orders) + 1):  # expiring a parent may activate day legs: repeat
            batch = [
                o
                for o in self._open.values()
                if o.time_in_force == "day" and o.status in m.CLAIMING and o.submitted_at_ns < close_ns
            ]
            if not batch:
                break
            for order in batch:
                if order.status in m.CLAIMING:
                    if self.full_events and order.filled_qty > 0:
                        self._announce(order, "calculated")
                    self._finish(order, "expired")

    # --- cancel, replace, close -------------------------------------------------------------------------------------

    def cancel_order(self, order_id: str) -> list[m.VenueOrder]:
        """DELETE /v2/orders/{id}; returns every order this canceled (a bracket cancels as a unit)."""
        order = self.get_order(order_id)
        if order.status in m.TERMINAL:
            raise ApiError(422, 42210000, f'order is already in "{order.status}" state')
        was_open = list(self._open.values())
        if order.status == "pending_cancel":
            return []  # already on its way
        if order.status in m.HELD and order.parent_id is not None:
            parent = self._orders[order.parent_id]
            if parent.status in m.OPEN:
                self._finish(parent, "canceled")
        if self.full_events and order.status in ("new", "partially_filled"):
            # Acknowledged now, landing a moment later: until then the order may still execute.
            self._set_status(order, "pending_cancel")
            order.updated_at_ns = self._venue.now_ns
            self._cancels_due[order.id] = self._venue.now_ns + CANCEL_LATENCY_NS
            self._venue.emit_trade_update("pending_cancel", order)
            return [order]
        if order.status in m.OPEN:
            self._finish(order, "canceled")
        for sibling_id in order.oco_ids:
            sibling = self._orders[sibling_id]
            if sibling.status in m.OPEN:
                self._finish(sibling, "canceled")
        return [o for o in was_open if o.status == "canceled"]

    def cancel_all_orders(self) -> list[m.VenueOrder]:
        canceled: list[m.VenueOrder] = []
        for _ in range(len(self._orders) + 1):  # canceling a partly filled entry activates its legs: repeat
            open_orders = self.open_orders()
            if not open_orders:
                break
            if all(o.status == "pending_cancel" for o in open_orders):
                break  # every cancel is on its way
            for order in open_orders:
                if order.status in m.OPEN and order.status != "pending_cancel":
                    canceled.extend(self.cancel_order(order.id))
        return canceled

    def replace_order(self, order_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """PATCH /v2/orders/{id}: a new order replaces the old one (old -> replaced, ``replaced_by``)."""
        old = self.get_order(order_id)
        if old.status not in m.CLAIMING or old.status == "pending_cancel":
            raise ApiError(422, 42210000, f'order is already in "{old.status}" state')
        if not self.full_events:
            return self._replace(old, changes)
        self._announce(old, "pending_replace")
        try:
            return self._replace(old, changes)
        except ApiError:
            # The replace was refused: the original works on (Alpaca's order_replace_rejected).
            old.updated_at_ns = self._venue.now_ns
            self._venue.emit_trade_update("order_replace_rejected", old)
            raise

    def _replace(self, old: m.VenueOrder, changes: dict[str, Any]) -> dict[str, Any]:
        if old.filled_qty > 0:
            raise ApiError(422, 42210000, "cannot replace a partially filled order")
        if old.notional is not None:
            raise ApiError(422, 42210000, "notional orders cannot be replaced")
        client_order_id = checks.check_client_order_id(self._venue, changes.get("client_order_id"))
        qty = changes.get("qty", old.qty)
        if qty < old.filled_qty or qty <= 0:
            raise ApiError(422, 40010001, "qty must be > 0")
        new_spec = m.OrderSpec(
            symbol=old.symbol,
            qty=qty,
            side=old.side,
            type=old.type,
            time_in_force=changes.get("time_in_force", old.time_in_force),
            limit_price=changes.get("limit_price", old.limit_price),
            stop_price=changes.get("stop_price", old.stop_price),
            trail_price=changes.get("trail", old.trail_price) if old.trail_price is not None else None,
            trail_percent=changes.get("trail", old.trail_percent) if old.trail_percent is not None else None,
            extended_hours=old.extended_hours,
            order_class=old.order_class,
        )
        if new_spec.type == "trailing_stop" and "stop_price" in changes:
            raise ApiError(422, 40010001, "stop_price cannot be replaced on a trailing_stop order; use trail")
        reserve = old.reserve_price
        if reserve is not None:
            reserve = checks.reference_price(self._venue, new_spec)
            if reserve is not None:
                extra = qty * reserve - old.leaves_qty * (old.reserve_price or _ZERO)
                checks.check_buying_power(self._venue, extra)
        new = self._new_order(
            new_spec, client_order_id, reserve_price=reserve, parent_id=old.parent_id, replaces=old.id
        )
        new.leg_ids = list(old.leg_ids)
        new.oco_ids = list(old.oco_ids)
        new.hwm = old.hwm if new.type == "trailing_stop" else None
        for leg in self.legs_of(new):
            leg.parent_id = new.id
        for sibling_id in new.oco_ids:
            sibling = self._orders[sibling_id]
            sibling.oco_ids = [new.id if i == old.id else i for i in sibling.oco_ids]
        if old.parent_id is not None:
            parent = self._orders[old.parent_id]
            parent.leg_ids = [new.id if i == old.id else i for i in parent.leg_ids]
        self._set_status(old, "replaced")
        old.replaced_at_ns = old.updated_at_ns = self._venue.now_ns
        old.replaced_by = new.id
        self._venue.emit_trade_update("replaced", old)
        reply = self.order_view(new)
        self._route(new)
        return reply

    def close_position(
        self, symbol_or_asset_id: str, *, qty: Decimal | None = None, percentage: Decimal | None = None
    ) -> dict[str, Any]:
        """DELETE /v2/positions/{symbol}: a market order for all (or ``qty`` / ``percentage``) of it."""
        symbol = self._venue.resolve_symbol(symbol_or_asset_id)
        position = self._venue.account.positions.get(symbol) if symbol is not None else None
        if symbol is None or position is None:
            raise ApiError(404, 40410000, "position does not exist")
        size = abs(position.qty)
        amount = size
        if qty is not None:
            if qty <= 0 or qty > size:
                raise ApiError(422, 40010001, f"qty must be > 0 and <= {dec_str(size)}")
            amount = qty
        elif percentage is not None:
            if not _ZERO < percentage <= 100:
                raise ApiError(422, 40010001, "percentage must be > 0 and <= 100")
            amount = (size * percentage / 100).quantize(_FRACTION_QUANTUM, rounding=ROUND_DOWN)
            if amount <= 0:
                raise ApiError(422, 40010001, "percentage is too small for this position")
        side = "sell" if position.qty > 0 else "buy"
        checks.check_quantity(self._venue, symbol, side, amount)
        spec = m.OrderSpec(symbol=symbol, qty=amount, side=side, type="market", time_in_force="day")
        return self._accept(spec, checks.check_client_order_id(self._venue, None), None)

    def close_all_positions(self, *, cancel_orders: bool) -> list[dict[str, Any]]:
        if cancel_orders:
            self.cancel_all_orders()
        results: list[dict[str, Any]] = []
        for symbol in sorted(self._venue.account.positions):
            try:
                results.append({"symbol": symbol, "status": 200, "body": self.close_position(symbol)})
            except ApiError as err:
                results.append({"symbol": symbol, "status": err.status, "body": err.body()})
        return results


def position_intent(side: str, position: Decimal) -> str:
    if side == "buy":
        return "buy_to_close" if position < 0 else "buy_to_open"
    return "sell_to_close" if position > 0 else "sell_to_open"
