"""The fake venue's one brokerage account: cash, positions, realised P&L, activities, day trades, equity.

Fills move cash and positions here and nowhere else; buying power and margin figures are derived from this
state and the marks the venue passes in (equity = cash + long MV - short MV, marks at the quote mid).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from core.limits import PDT_EQUITY_THRESHOLD_USD

EQUITY_HISTORY_MAX_POINTS: Final = 500_000  # ~5 years of one-minute points; oldest dropped beyond
ACCOUNT_TYPES: Final = ("cash", "margin_initial", "margin_experienced")
MARGIN_MIN_EQUITY_USD: Final = Decimal(2000)  # FINRA: margin (2x) needs $2,000 equity
MAINTENANCE_LONG_FRACTION: Final = Decimal("0.25")
MAINTENANCE_SHORT_FRACTION: Final = Decimal("0.30")
_ZERO: Final = Decimal(0)


@dataclass(slots=True)
class PositionState:
    symbol: str
    qty: Decimal = _ZERO  # negative = short
    avg_entry_price: Decimal = _ZERO
    realized_pl: Decimal = _ZERO
    opened_session: str | None = None  # session date of the latest exposure-increasing fill (day trades)


@dataclass(frozen=True, slots=True, kw_only=True)
class FillActivity:
    id: str  # "YYYYMMDDHHMMSSmmm::<uuid>"
    ts_ns: int
    type: str  # fill | partial_fill
    price: Decimal
    qty: Decimal
    side: str  # buy | sell | sell_short
    symbol: str
    leaves_qty: Decimal
    order_id: str
    cum_qty: Decimal
    order_status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NonTradeActivity:
    """A non-trade activity (Alpaca's NTA): DIV, FEE, INT, JNLC, CSD, CSW, SPLIT (a stock split: ``qty`` is the
    change in shares, ``per_share_amount`` the split ratio) ..."""

    id: str  # "YYYYMMDDHHMMSSmmm::<uuid>"
    ts_ns: int
    activity_type: str
    net_amount: Decimal  # cash in (> 0) or out (< 0)
    description: str
    symbol: str | None = None
    qty: Decimal | None = None
    per_share_amount: Decimal | None = None


@dataclass(slots=True, kw_only=True)
class AccountConfiguration:
    """GET/PATCH /v2/account/configurations; ``max_margin_multiplier`` caps the account multiplier."""

    dtbp_check: str | None = "entry"
    trade_confirm_email: str = "all"
    suspend_trade: bool = False
    no_shorting: bool = False
    fractional_trading: bool = True
    max_margin_multiplier: Decimal = Decimal(4)
    max_options_trading_level: int | None = 0
    pdt_check: str | None = "entry"
    ptp_no_exception_entry: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountFigures:
    """One consistent snapshot of the money figures GET /v2/account reports."""

    account_id: str
    account_number: str
    created_at_ns: int
    cash: Decimal
    equity: Decimal
    last_equity: Decimal
    long_market_value: Decimal
    short_market_value: Decimal  # magnitude; the wire sends it negative
    buying_power: Decimal
    regt_buying_power: Decimal
    daytrading_buying_power: Decimal
    non_marginable_buying_power: Decimal
    multiplier: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    last_maintenance_margin: Decimal
    sma: Decimal
    daytrade_count: int
    pattern_day_trader: bool
    trading_blocked: bool
    shorting_enabled: bool
    balance_asof: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StartingOrder:
    """An order already open at the account when the venue starts (``[[account.orders]]``): the owner's (any client
    order id) or ttlive's from an earlier life (``tt-`` prefix). Alpaca's field names; ``notional`` instead of
    ``qty`` for a dollar-amount order (the venue sizes it at the mark and lists it with ``qty`` null)."""

    symbol: str
    side: str  # buy | sell
    type: str  # market | limit | stop | stop_limit | trailing_stop
    time_in_force: str
    client_order_id: str
    qty: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    trail_price: Decimal | None = None
    trail_percent: Decimal | None = None
    order_class: str = ""  # "" (simple) | bracket | oto | oco
    take_profit_limit_price: Decimal | None = None
    stop_loss_stop_price: Decimal | None = None


def default_multiplier(account_type: str, cash_usd: Decimal, pattern_day_trader: bool) -> Decimal:
    """Alpaca's account multiplier: 1 for cash (or < $2k), 4 for a PDT >= $25k, else 2 (Reg T)."""
    if account_type == "cash" or cash_usd < MARGIN_MIN_EQUITY_USD:
        return Decimal(1)
    if pattern_day_trader and cash_usd >= PDT_EQUITY_THRESHOLD_USD:
        return Decimal(4)
    return Decimal(2)


@dataclass(slots=True, kw_only=True)
class Account:
    account_id: str
    account_number: str
    created_at_ns: int
    account_type: str
    cash: Decimal
    multiplier: Decimal
    pattern_day_trader: bool
    config: AccountConfiguration = field(default_factory=AccountConfiguration)
    last_equity: Decimal = _ZERO
    last_maintenance_margin: Decimal = _ZERO
    realized_pl: Decimal = _ZERO
    positions: dict[str, PositionState] = field(default_factory=dict)
    activities: list[FillActivity] = field(default_factory=list)
    non_trade: list[NonTradeActivity] = field(default_factory=list)  # dividends, fees, journals, splits
    day_trades: list[tuple[str, str]] = field(default_factory=list)  # (session date, order id)
    equity_points: deque[tuple[int, Decimal]] = field(default_factory=lambda: deque(maxlen=EQUITY_HISTORY_MAX_POINTS))

    def __post_init__(self) -> None:
        assert self.account_type in ACCOUNT_TYPES, self.account_type

    @property
    def is_margin(self) -> bool:
        return self.account_type != "cash"

    @property
    def effective_multiplier(self) -> Decimal:
        if not self.is_margin:
            return Decimal(1)
        return min(self.multiplier, self.config.max_margin_multiplier)

    @property
    def shorting_enabled(self) -> bool:
        return self.is_margin and not self.config.no_shorting

    def position_qty(self, symbol: str) -> Decimal:
        position = self.positions.get(symbol)
        return _ZERO if position is None else position.qty

    def apply_fill(self, symbol: str, side: str, qty: Decimal, price: Decimal, session_date: str) -> bool:
        """Move cash and the position by one execution; True if it closes exposure opened this session."""
        assert qty > 0 and price > 0, (qty, price)
        position = self.positions.setdefault(symbol, PositionState(symbol))
        signed = qty if side == "buy" else -qty
        old = position.qty
        new = old + signed
        self.cash -= signed * price
        day_trade = False
        if old == 0 or (old > 0) == (signed > 0):  # opening or adding
            position.avg_entry_price = (abs(old) * position.avg_entry_price + qty * price) / abs(new)
            position.opened_session = session_date
        else:  # reducing, closing or flipping
            closing = min(qty, abs(old))
            direction = 1 if old > 0 else -1
            pnl = closing * (price - position.avg_entry_price) * direction
            position.realized_pl += pnl
            self.realized_pl += pnl
            day_trade = position.opened_session == session_date
            if new != 0 and (new > 0) != (old > 0):  # flipped through zero: the rest opens at this price
                position.avg_entry_price = price
                position.opened_session = session_date
        position.qty = new
        if new == 0:
            del self.positions[symbol]
        return day_trade

    def split(self, symbol: str, ratio: Decimal) -> Decimal:
        """A ``ratio``:1 split of the position (2 = two for one): quantity times ratio, average entry divided by it,
        cost basis unchanged. Returns the change in shares."""
        position = self.positions.get(symbol)
        if position is None or ratio <= 0:
            return _ZERO
        before = position.qty
        position.qty = before * ratio
        position.avg_entry_price = position.avg_entry_price / ratio
        return position.qty - before

    def market_values(self, marks: dict[str, Decimal]) -> tuple[Decimal, Decimal]:
        """(long market value, short market value as a magnitude) at the given marks."""
        long_mv = sum((p.qty * marks[s] for s, p in self.positions.items() if p.qty > 0), _ZERO)
        short_mv = sum((-p.qty * marks[s] for s, p in self.positions.items() if p.qty < 0), _ZERO)
        return long_mv, short_mv

    def equity(self, marks: dict[str, Decimal]) -> Decimal:
        long_mv, short_mv = self.market_values(marks)
        return self.cash + long_mv - short_mv

    def maintenance_margin(self, marks: dict[str, Decimal]) -> Decimal:
        long_mv, short_mv = self.market_values(marks)
        return long_mv * MAINTENANCE_LONG_FRACTION + short_mv * MAINTENANCE_SHORT_FRACTION

    def buying_power(self, marks: dict[str, Decimal], reserved_usd: Decimal) -> Decimal:
        """Cash accounts: cash. Margin: equity x min(multiplier, max_margin_multiplier) - gross exposure.

        Both net of what open opening orders hold (``reserved_usd``), never below zero.
        """
        if not self.is_margin:
            return max(_ZERO, self.cash - reserved_usd)
        long_mv, short_mv = self.market_values(marks)
        gross = long_mv + short_mv
        equity = self.cash + long_mv - short_mv
        return max(_ZERO, equity * self.effective_multiplier - gross - reserved_usd)

    def figures(
        self, marks: dict[str, Decimal], *, reserved_usd: Decimal, daytrade_count: int, balance_asof: str
    ) -> AccountFigures:
        long_mv, short_mv = self.market_values(marks)
        gross = long_mv + short_mv
        equity = self.cash + long_mv - short_mv
        multiplier = self.effective_multiplier
        buying_power = self.buying_power(marks, reserved_usd)
        if self.is_margin:
            regt = max(_ZERO, equity * min(Decimal(2), multiplier) - gross - reserved_usd)
            initial = gross / multiplier
        else:
            regt, initial = buying_power, gross
        dtbp = _ZERO
        if self.is_margin and multiplier >= 4:
            dtbp = max(_ZERO, (self.last_equity - self.last_maintenance_margin) * 4)
        return AccountFigures(
            account_id=self.account_id,
            account_number=self.account_number,
            created_at_ns=self.created_at_ns,
            cash=self.cash,
            equity=equity,
            last_equity=self.last_equity,
            long_market_value=long_mv,
            short_market_value=short_mv,
            buying_power=buying_power,
            regt_buying_power=regt,
            daytrading_buying_power=dtbp,
            non_marginable_buying_power=max(_ZERO, self.cash - reserved_usd),
            multiplier=multiplier,
            initial_margin=initial,
            maintenance_margin=self.maintenance_margin(marks),
            last_maintenance_margin=self.last_maintenance_margin,
            sma=max(_ZERO, equity - initial),
            daytrade_count=daytrade_count,
            pattern_day_trader=self.pattern_day_trader,
            trading_blocked=self.config.suspend_trade,
            shorting_enabled=self.shorting_enabled,
            balance_asof=balance_asof,
        )


def activity_side(side: str, before: Decimal, after: Decimal) -> str:
    """FILL activities say ``sell_short`` for a sell that opens or extends a short."""
    if side == "sell" and after < 0 and after < before:
        return "sell_short" if before <= 0 else "sell"
    return side
