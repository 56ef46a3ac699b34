"""Positions, cash and P&L booked from fills, each execution exactly once.

The engine's own view of the account, derived only from the fills it saw; the reconciler compares it with
the venue's. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from core.model import Fill, Position, Side

ZERO = Decimal(0)


@dataclass(slots=True)
class Holding:
    qty: Decimal = ZERO  # signed: negative is short
    avg_entry_price: Decimal = ZERO
    realized_pl: Decimal = ZERO


@dataclass(slots=True)
class BookedFill:
    fill: Fill
    realized_pl: Decimal  # P&L this fill realised (closing part only)
    closed_trade: bool  # True when the fill flattened (or flipped) the position: a round trip ended


@dataclass(slots=True)
class Ledger:
    cash_usd: Decimal
    holdings: dict[str, Holding] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)
    seen_execution_ids: set[str] = field(default_factory=set)
    realized_pl_usd: Decimal = ZERO
    fills_booked: int = 0
    _round_trip_pl: dict[str, Decimal] = field(default_factory=dict)

    def apply_fill(self, fill: Fill) -> BookedFill | None:
        """Book one execution. A repeated execution id returns None and changes nothing."""
        if fill.execution_id in self.seen_execution_ids:
            return None
        assert fill.qty > 0, f"fill {fill.execution_id} has non-positive qty {fill.qty}"
        assert fill.price > 0, f"fill {fill.execution_id} has non-positive price {fill.price}"
        self.seen_execution_ids.add(fill.execution_id)
        holding = self.holdings.setdefault(fill.symbol, Holding())
        signed = fill.qty if fill.side is Side.BUY else -fill.qty
        realized = ZERO
        closed_trade = False
        old_qty = holding.qty
        if old_qty == 0 or (old_qty > 0) == (signed > 0):
            # Opening or adding: weighted average entry.
            new_qty = old_qty + signed
            holding.avg_entry_price = (
                abs(old_qty) * holding.avg_entry_price + abs(signed) * fill.price
            ) / abs(new_qty)
            holding.qty = new_qty
        else:
            closing = min(abs(signed), abs(old_qty))
            direction = Decimal(1) if old_qty > 0 else Decimal(-1)
            realized = (fill.price - holding.avg_entry_price) * closing * direction
            new_qty = old_qty + signed
            holding.qty = new_qty
            self._round_trip_pl[fill.symbol] = self._round_trip_pl.get(fill.symbol, ZERO) + realized
            if new_qty == 0:
                holding.avg_entry_price = ZERO
                closed_trade = True
            elif (new_qty > 0) != (old_qty > 0):
                # Flipped through zero: the remainder opens at this fill's price.
                holding.avg_entry_price = fill.price
                closed_trade = True
        holding.realized_pl += realized
        self.realized_pl_usd += realized
        self.cash_usd -= signed * fill.price
        self.marks[fill.symbol] = fill.price
        self.fills_booked += 1
        if holding.qty == 0 and not closed_trade:
            del self.holdings[fill.symbol]
        return BookedFill(fill=fill, realized_pl=realized, closed_trade=closed_trade)

    def take_round_trip_pl(self, symbol: str) -> Decimal:
        """Realised P&L of the round trip that just closed on ``symbol`` (for the losing-streak trigger)."""
        return self._round_trip_pl.pop(symbol, ZERO)

    def mark(self, symbol: str, price: Decimal) -> None:
        assert price > 0, f"mark for {symbol} must be positive, got {price}"
        self.marks[symbol] = price

    def position_qty(self, symbol: str) -> Decimal:
        holding = self.holdings.get(symbol)
        return holding.qty if holding else ZERO

    def positions(self) -> dict[str, Decimal]:
        return {s: h.qty for s, h in sorted(self.holdings.items()) if h.qty != 0}

    def market_value(self, symbol: str) -> Decimal:
        holding = self.holdings.get(symbol)
        if holding is None or holding.qty == 0:
            return ZERO
        return holding.qty * self.marks.get(symbol, holding.avg_entry_price)

    def gross_exposure_usd(self) -> Decimal:
        return sum((abs(self.market_value(s)) for s in self.holdings), ZERO)

    def equity_usd(self) -> Decimal:
        return self.cash_usd + sum((self.market_value(s) for s in self.holdings), ZERO)

    def snapshot(self) -> list[Position]:
        out = []
        for symbol, holding in sorted(self.holdings.items()):
            if holding.qty == 0:
                continue
            mark = self.marks.get(symbol)
            out.append(
                Position(
                    symbol=symbol,
                    qty=holding.qty,
                    avg_entry_price=holding.avg_entry_price,
                    current_price=mark,
                    market_value=holding.qty * mark if mark is not None else None,
                    unrealized_pl=(mark - holding.avg_entry_price) * holding.qty if mark is not None else None,
                )
            )
        return out

    def apply_split(self, symbol: str, share_change: Decimal) -> Decimal | None:
        """A stock split adds ``share_change`` shares (negative: a reverse split): quantity and mark scale, the
        average entry divides, cost basis and equity stay. Returns the ratio applied (None: nothing held)."""
        holding = self.holdings.get(symbol)
        if holding is None or holding.qty == 0 or holding.qty + share_change == 0:
            return None
        ratio = (holding.qty + share_change) / holding.qty
        if ratio <= 0:
            return None
        holding.qty += share_change
        holding.avg_entry_price = holding.avg_entry_price / ratio
        if symbol in self.marks:
            self.marks[symbol] = self.marks[symbol] / ratio
        return ratio

    def adopt_venue_position(self, symbol: str, qty: Decimal, avg_entry_price: Decimal) -> Decimal:
        """Take the venue's position as truth after a reconciliation that still disagreed (returns the delta)."""
        holding = self.holdings.setdefault(symbol, Holding())
        delta = qty - holding.qty
        holding.qty = qty
        holding.avg_entry_price = avg_entry_price if qty != 0 else ZERO
        return delta

    def to_dict(self) -> dict[str, object]:
        return {
            "cash_usd": str(self.cash_usd),
            "realized_pl_usd": str(self.realized_pl_usd),
            "holdings": {
                s: [str(h.qty), str(h.avg_entry_price), str(h.realized_pl)]
                for s, h in sorted(self.holdings.items())
            },
            "seen_execution_ids": sorted(self.seen_execution_ids),
            "fills_booked": self.fills_booked,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Ledger:
        holdings_raw = data["holdings"]
        assert isinstance(holdings_raw, dict)
        seen = data["seen_execution_ids"]
        assert isinstance(seen, list)
        fills_booked = data["fills_booked"]
        assert isinstance(fills_booked, int)
        ledger = cls(cash_usd=Decimal(str(data["cash_usd"])))
        ledger.realized_pl_usd = Decimal(str(data["realized_pl_usd"]))
        for symbol, (qty, avg, rpl) in holdings_raw.items():
            ledger.holdings[symbol] = Holding(Decimal(qty), Decimal(avg), Decimal(rpl))
        ledger.seen_execution_ids = set(seen)
        ledger.fills_booked = fills_booked
        return ledger
