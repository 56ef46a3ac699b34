"""Compares the engine's stream-derived book with the venue's REST snapshot (spec 1.3 state consistency).

A discrepancy is material when its value exceeds 0.1 % of the position's value; a symbol held on one side only is
always material. Pure: the reconciler actor fetches, this decides.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal

import msgspec

from core.ledger import Ledger
from core.limits import RECONCILE_TOLERANCE_FRACTION
from core.model import CashActivity, Position

ZERO = Decimal(0)


class Discrepancy(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    engine_qty: Decimal
    venue_qty: Decimal
    price: Decimal
    value_diff_usd: Decimal
    position_value_usd: Decimal
    material: bool


class OrderDiscrepancy(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    engine_open: bool
    venue_open: bool


class ReconcileReport(msgspec.Struct, frozen=True, kw_only=True):
    positions: list[Discrepancy]
    orders: list[OrderDiscrepancy]

    @property
    def material(self) -> bool:
        return any(d.material for d in self.positions) or bool(self.orders)


def compare_positions(
    engine: Mapping[str, Decimal],
    venue: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    *,
    tolerance_fraction: Decimal = RECONCILE_TOLERANCE_FRACTION,
) -> list[Discrepancy]:
    out: list[Discrepancy] = []
    for symbol in sorted(set(engine) | set(venue)):
        e_qty = engine.get(symbol, ZERO)
        v_qty = venue.get(symbol, ZERO)
        if e_qty == v_qty:
            continue
        price = prices.get(symbol, ZERO)
        diff = abs(e_qty - v_qty) * price
        value = max(abs(e_qty), abs(v_qty)) * price
        one_sided = e_qty == 0 or v_qty == 0
        material = one_sided or price == 0 or diff > tolerance_fraction * value
        out.append(
            Discrepancy(
                symbol=symbol, engine_qty=e_qty, venue_qty=v_qty, price=price,
                value_diff_usd=diff, position_value_usd=value, material=material,
            )
        )
    return out


def compare_open_orders(engine_open: set[str], venue_open: set[str]) -> list[OrderDiscrepancy]:
    return [
        OrderDiscrepancy(order_id=oid, engine_open=oid in engine_open, venue_open=oid in venue_open)
        for oid in sorted(engine_open ^ venue_open)
    ]


def reconcile(
    engine_positions: Mapping[str, Decimal],
    venue_positions: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    engine_open_orders: set[str],
    venue_open_orders: set[str],
    *,
    tolerance_fraction: Decimal = RECONCILE_TOLERANCE_FRACTION,
) -> ReconcileReport:
    return ReconcileReport(
        positions=compare_positions(
            engine_positions, venue_positions, prices, tolerance_fraction=tolerance_fraction
        ),
        orders=compare_open_orders(engine_open_orders, venue_open_orders),
    )


class Adoption(msgspec.Struct, frozen=True, kw_only=True):
    """A position taken from the broker into the ledger (audited by the caller)."""

    symbol: str
    before: Decimal
    after: Decimal
    avg_entry_price: Decimal


def adopt_positions(
    ledger: Ledger, positions: Sequence[Position], *, exclude: Collection[str] = ()
) -> list[Adoption]:
    """Make the ledger hold exactly the broker's positions (quantity and average entry), marking each at the
    broker's current price: the start-up rule for an account that already holds a book, or whose book changed
    while the engine was down. Symbols the ledger holds and the broker does not go to zero. Cash is not touched.
    ``exclude``: symbols left as they are (their fills are still to be replayed: see ``Engine.load_state``)."""
    held = {p.symbol: p for p in positions if p.qty != 0}
    adopted: list[Adoption] = []
    for symbol in sorted((set(held) | set(ledger.positions())) - set(exclude)):
        position = held.get(symbol)
        if position is not None and position.current_price is not None and position.current_price > 0:
            ledger.mark(symbol, position.current_price)
        qty = position.qty if position is not None else ZERO
        before = ledger.position_qty(symbol)
        if before == qty:
            continue
        entry = position.avg_entry_price if position is not None else ZERO
        ledger.adopt_venue_position(symbol, qty, entry)
        adopted.append(Adoption(symbol=symbol, before=before, after=qty, avg_entry_price=entry))
    return adopted


# --- money (cash, equity, buying power) ----------------------------------------------------------------------

# A stock split: qty = the change in shares (the position's cash does not move). Alpaca's enum says SPLIT; older
# documents list SSP. Reading qty as the change in shares is ours (the fake's): checked against paper before live.
SPLIT_ACTIVITIES = frozenset({"SPLIT", "SSP"})


class MoneyCheck(msgspec.Struct, frozen=True, kw_only=True):
    """The engine's cash and equity against the broker's (equity valued at the broker's own prices, so only a
    difference of cash or quantity can show), with the difference that stays after every activity is applied."""

    broker_cash: Decimal
    engine_cash: Decimal
    broker_equity: Decimal
    engine_equity: Decimal
    buying_power: Decimal
    tolerance_usd: Decimal

    @property
    def cash_diff(self) -> Decimal:
        return self.broker_cash - self.engine_cash

    @property
    def equity_diff(self) -> Decimal:
        return self.broker_equity - self.engine_equity

    @property
    def material(self) -> bool:
        return abs(self.cash_diff) > self.tolerance_usd or abs(self.equity_diff) > self.tolerance_usd


def compare_money(ledger: Ledger, *, cash: Decimal, equity: Decimal, buying_power: Decimal,
                  prices: Mapping[str, Decimal],
                  tolerance_fraction: Decimal = RECONCILE_TOLERANCE_FRACTION) -> MoneyCheck:
    """``tolerance_fraction`` of the broker's equity is the alert threshold (spec 1.3: 0.1 %)."""
    value = sum((qty * prices.get(symbol, ledger.marks.get(symbol, ZERO))
                 for symbol, qty in ledger.positions().items()), ZERO)
    return MoneyCheck(broker_cash=cash, engine_cash=ledger.cash_usd, broker_equity=equity,
                      engine_equity=ledger.cash_usd + value, buying_power=buying_power,
                      tolerance_usd=abs(equity) * tolerance_fraction)


class Adjustment(msgspec.Struct, frozen=True, kw_only=True):
    """One non-trade activity applied to the ledger (audited by the caller)."""

    activity_id: str
    activity_type: str
    symbol: str | None
    cash_delta: Decimal
    split_ratio: Decimal | None = None


def apply_cash_activity(ledger: Ledger, activity: CashActivity, *, positions_from_broker_ns: int) -> Adjustment:
    """A dividend, fee, interest, journal or transfer moves cash by its net amount; a split (SPLIT) changes the
    quantity — unless the position was adopted from the broker after the split (start-up), which already holds it."""
    ratio = None
    if (activity.activity_type in SPLIT_ACTIVITIES and activity.symbol and activity.qty
            and activity.ts_ns > positions_from_broker_ns):
        ratio = ledger.apply_split(activity.symbol, activity.qty)
    ledger.cash_usd += activity.net_amount
    return Adjustment(activity_id=activity.id, activity_type=activity.activity_type, symbol=activity.symbol,
                      cash_delta=activity.net_amount, split_ratio=ratio)
