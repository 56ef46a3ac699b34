"""How the fake venue carries out a due fault of its seeded plan: close or evict streams, freeze quotes, drift.

Windows (ws_mute, rest_outage, rest_slow, rate_limit_storm) are answered by ``faults.FaultInjector`` itself;
this module handles the faults that act on the venue at one instant, and places ``day``/``at`` events in time.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from adapters.fake.accounts import FillActivity, NonTradeActivity, StartingOrder, activity_side
from adapters.fake.faults import FaultEvent
from adapters.fake.wire import activity_id, et_date, parse_time_ns
from core.model import NS_PER_S, Fill, Side

if TYPE_CHECKING:
    from adapters.fake.venue import Venue

FAULT_RESOLVE_HORIZON_DAYS: Final = 400  # how far ahead `day = N` fault events may point
_DAY_NS: Final = 86_400 * NS_PER_S
_ZERO: Final = Decimal(0)


def resolve_fault_at(venue: Venue, event: FaultEvent) -> int:
    """``at`` = exchange wall time on the ``day``-th trading session counted from the start date."""
    if event.at_ns is not None:
        return event.at_ns
    day_start_ns = parse_time_ns(et_date(venue.start_ns))  # midnight, exchange time
    horizon_ns = day_start_ns + FAULT_RESOLVE_HORIZON_DAYS * _DAY_NS
    sessions = venue.calendar.sessions_between(day_start_ns, horizon_ns)
    if event.day >= len(sessions):
        raise ValueError(f"fault {event.kind!r} on day {event.day}: only {len(sessions)} sessions ahead")
    return parse_time_ns(sessions[event.day][0]) + event.seconds_of_day() * NS_PER_S


def apply_fault(venue: Venue, event: FaultEvent) -> None:
    kind = event.kind
    if kind in ("ws_close", "eviction_406"):
        targets: list[Any] = venue.trading_sessions() if event.stream == "trading" else venue.data_sessions()
        for target in targets:
            if kind == "ws_close":
                _call_hook(target, "force_close", event.code, "fault: ws_close")
            else:
                _call_hook(target, "evict")
    elif kind == "venue_restart":
        for session in venue.trading_sessions():
            session.force_close(1006, "venue restart")
        for data_session in venue.data_sessions():
            _call_hook(data_session, "force_close", 1006, "venue restart")
    elif kind == "quote_stale":
        symbols = [event.symbol] if event.symbol else list(venue.market.symbols)
        for symbol in symbols:
            _call_hook(venue.market, "set_stale", symbol, venue.now_ns + event.duration_ns)
    elif kind == "position_drift":
        assert event.symbol is not None and event.qty is not None
        _drift_position(venue, event.symbol, event.qty)
    elif kind == "foreign_order":
        assert event.symbol is not None and event.qty is not None
        _foreign_order(venue, event)
    elif kind in ACCOUNT_ACTIVITY_KINDS:
        apply_account_activity(venue, event)
    # ws_mute, rest_outage, rest_slow, rate_limit_storm: windows the injector answers for.
    # client_crash, manual_kill, manual_reset: carried out by the simulation harness.


ACCOUNT_ACTIVITY_KINDS: Final = frozenset({"dividend", "fee", "journal", "interest", "transfer", "split"})
_CASH_ACTIVITY: Final = {  # kind -> (activity type of a credit, of a debit, description)
    "fee": ("FEE", "FEE", "ttlive fake: account fee"),
    "journal": ("JNLC", "JNLC", "ttlive fake: cash journal"),
    "interest": ("INT", "INT", "ttlive fake: interest"),
    "transfer": ("CSD", "CSW", "ttlive fake: cash transfer"),
}


def apply_account_activity(venue: Venue, event: FaultEvent) -> None:
    """A non-trade activity on the account, with its effect and its NTA record (GET /v2/account/activities):
    a dividend pays ``amount`` per share held (DIV), a fee charges ``amount`` (FEE), a journal moves ``amount`` in
    or out (JNLC), interest credits or charges it (INT), a transfer deposits (CSD) or withdraws (CSW) it, and a
    ``ratio``:1 split multiplies the position and divides its average entry and every price the venue shows from
    now on (SPLIT: ``qty`` the change in shares, ``per_share_amount`` the ratio)."""
    account, now_ns = venue.account, venue.now_ns
    record_id = activity_id(now_ns, venue.new_uuid())
    if event.kind == "dividend":
        assert event.symbol is not None and event.amount is not None
        held = account.position_qty(event.symbol)
        if held <= 0:  # shorts owe the dividend; a flat book gets none: not modelled, skipped and said so
            venue.skipped_faults.append((now_ns, event, "no long position to pay a dividend on"))
            return
        net = (held * event.amount).quantize(Decimal("0.01"))
        account.cash += net
        account.non_trade.append(NonTradeActivity(
            id=record_id, ts_ns=now_ns, activity_type="DIV", net_amount=net, symbol=event.symbol, qty=held,
            per_share_amount=event.amount, description=f"Cash DIV @ {event.amount}, Pos QTY: {held}"))
    elif event.kind in _CASH_ACTIVITY:
        assert event.amount is not None
        net = -abs(event.amount) if event.kind == "fee" else event.amount
        account.cash += net
        credit, debit, description = _CASH_ACTIVITY[event.kind]
        account.non_trade.append(NonTradeActivity(
            id=record_id, ts_ns=now_ns, activity_type=credit if net >= 0 else debit, net_amount=net,
            description=description))
    else:
        assert event.symbol is not None and event.ratio is not None
        change = account.split(event.symbol, event.ratio)
        venue.split_prices(event.symbol, event.ratio)
        account.non_trade.append(NonTradeActivity(
            id=record_id, ts_ns=now_ns, activity_type="SPLIT", net_amount=_ZERO, symbol=event.symbol, qty=change,
            per_share_amount=event.ratio, description=f"Stock split {event.ratio}:1"))


PRICE_QUANTUM: Final = Decimal("0.0001")


class SplitAdjusted:
    """The market as the venue shows it around stock splits: every price of a split symbol from the split's
    instant on is divided by its ratio (sizes unchanged). Everything else is the wrapped source's."""

    def __init__(self, inner: Any, splits: dict[str, list[tuple[int, Decimal]]]) -> None:
        self._inner = inner
        self._splits = splits

    def __getattr__(self, name: str) -> Any:  # set_stale and the other optional hooks
        return getattr(self._inner, name)

    @property
    def symbols(self) -> Any:
        return self._inner.symbols

    def bar_interval_ns(self) -> int:
        return int(self._inner.bar_interval_ns())

    def sector(self, symbol: str) -> str:
        return str(self._inner.sector(symbol))

    def factor(self, symbol: str, ts_ns: int) -> Decimal:
        out = Decimal(1)
        for at_ns, ratio in self._splits.get(symbol, ()):
            if ts_ns >= at_ns:
                out *= ratio
        return out

    def _price(self, price: Decimal, factor: Decimal) -> Decimal:
        return (price / factor).quantize(PRICE_QUANTUM)

    def quote_at(self, symbol: str, ts_ns: int) -> Any:
        quote = self._inner.quote_at(symbol, ts_ns)
        factor = self.factor(symbol, ts_ns)
        if quote is None or factor == 1:
            return quote
        return replace(quote, bid_price=self._price(quote.bid_price, factor),
                       ask_price=self._price(quote.ask_price, factor))

    def _bars(self, symbol: str, bars: list[Any]) -> list[Any]:
        out = []
        for bar in bars:
            f = self.factor(symbol, bar.ts_ns)
            out.append(bar if f == 1 else replace(
                bar, open=self._price(bar.open, f), high=self._price(bar.high, f), low=self._price(bar.low, f),
                close=self._price(bar.close, f), vwap=self._price(bar.vwap, f)))
        return out

    def bars_between(self, symbol: str, start_ns: int, end_ns: int) -> list[Any]:
        return self._bars(symbol, self._inner.bars_between(symbol, start_ns, end_ns))

    def daily_bars_between(self, symbol: str, start_ns: int, end_ns: int) -> list[Any]:
        return self._bars(symbol, self._inner.daily_bars_between(symbol, start_ns, end_ns))


def split_adjusted(venue: Venue, market: Any) -> Any:
    """``market`` wrapped for the plan's split events (resolved to their instants), or itself when it has none."""
    splits: dict[str, list[tuple[int, Decimal]]] = {}
    for event in venue.config.faults.events:
        if event.kind == "split" and event.symbol is not None and event.ratio is not None:
            splits.setdefault(event.symbol, []).append((resolve_fault_at(venue, event), event.ratio))
    return SplitAdjusted(market, splits) if splits else market


FOREIGN_LIMIT_AWAY: Final = Decimal("0.2")  # a foreign limit rests 20 % away from the mark: it works, not fills


def _foreign_order(venue: Venue, event: FaultEvent) -> None:
    """The account's owner places an order outside ttlive (Alpaca's app, another script): a GTC limit far from
    the market, with a client order id of their own. It goes through the venue's own checks; refused, it is skipped."""
    from adapters.fake.matching import OrderSpec
    from adapters.fake.wire import ApiError

    assert event.symbol is not None and event.qty is not None
    price = venue.mark(event.symbol)
    if price <= 0:
        venue.skipped_faults.append((venue.now_ns, event, "no price known for the symbol yet"))
        return
    buy = event.qty > 0
    limit = (price * (1 - FOREIGN_LIMIT_AWAY if buy else 1 + FOREIGN_LIMIT_AWAY)).quantize(Decimal("0.01"))
    spec = OrderSpec(symbol=event.symbol, qty=abs(event.qty), side="buy" if buy else "sell", type="limit",
                     time_in_force="gtc", limit_price=limit, client_order_id=f"desk-{venue.new_uuid()}")
    try:
        venue.book.submit_order(spec)
    except ApiError as exc:
        venue.skipped_faults.append((venue.now_ns, event, f"refused: {exc}"))


NOTIONAL_QUANTUM: Final = Decimal("0.000000001")


def place_starting_orders(venue: Venue, orders: tuple[StartingOrder, ...]) -> list[str]:
    """The orders open at the account when the venue starts, accepted through the venue's own checks (a market
    closed at the start queues them for the open); returns their ids. Refused => ValueError naming the order."""
    from adapters.fake.matching import OrderSpec
    from adapters.fake.wire import ApiError

    ids: list[str] = []
    for n, order in enumerate(orders):
        qty = order.qty
        if order.notional is not None:
            mark = order.limit_price or venue.mark(order.symbol)  # a notional limit is sized at its limit
            if mark <= 0:
                raise ValueError(f"starting order {n} ({order.client_order_id}): no price to size a notional order")
            qty = (order.notional / mark).quantize(NOTIONAL_QUANTUM, rounding="ROUND_DOWN")
        assert qty is not None
        spec = OrderSpec(symbol=order.symbol, qty=qty, side=order.side, type=order.type,
                         time_in_force=order.time_in_force, limit_price=order.limit_price,
                         stop_price=order.stop_price, trail_price=order.trail_price, trail_percent=order.trail_percent,
                         client_order_id=order.client_order_id, order_class=order.order_class,
                         take_profit_limit_price=order.take_profit_limit_price,
                         stop_loss_stop_price=order.stop_loss_stop_price)
        try:
            reply = venue.book.submit_order(spec)
        except ApiError as exc:
            raise ValueError(f"starting order {n} ({order.client_order_id}) refused by the venue: {exc}") from None
        accepted = venue.book.get_order(str(reply["id"]))
        accepted.notional = order.notional
        ids.append(accepted.id)
    return ids


def _drift_position(venue: Venue, symbol: str, qty: Decimal) -> None:
    """A trade made outside the engine: the venue position and cash change, a FILL activity appears."""
    now_ns = venue.now_ns
    price = venue.mark(symbol)
    if price <= 0:
        venue.skipped_faults.append(
            (
                now_ns,
                FaultEvent(kind="position_drift", symbol=symbol, qty=qty),
                "no price known for the symbol yet",
            )
        )
        return
    side = "buy" if qty > 0 else "sell"
    account = venue.account
    before = account.position_qty(symbol)
    account.apply_fill(symbol, side, abs(qty), price, venue.session_date())
    after = account.position_qty(symbol)
    order_id, execution_id = venue.new_uuid(), venue.new_uuid()
    venue.external_fills.append(
        Fill(
            execution_id=execution_id,
            order_id=order_id,
            client_order_id="",
            symbol=symbol,
            side=Side(side),
            qty=abs(qty),
            price=price,
            ts_ns=now_ns,
            cum_qty=abs(qty),
            position_qty=after,
        )
    )
    account.activities.append(
        FillActivity(
            id=activity_id(now_ns, execution_id),
            ts_ns=now_ns,
            type="fill",
            price=price,
            qty=abs(qty),
            side=activity_side(side, before, after),
            symbol=symbol,
            leaves_qty=_ZERO,
            order_id=order_id,
            cum_qty=abs(qty),
            order_status="filled",
        )
    )


def _call_hook(target: Any, name: str, *args: Any) -> None:
    hook = getattr(target, name, None)
    if hook is not None:
        hook(*args)
