"""RiskGuard: every signal passes these pre-trade rules before an order exists (spec 2.1, 2.2, 2.4).

Pure and sans-IO: the engine builds a ``PortfolioView``; the guard answers PASS, RESIZE or REJECT.

Definitions the rules share (so a reviewer can check them in one place):

* **Exposure** of a symbol is ``|qty| x mark price``; the gross exposure of a set of symbols is the sum of
  their exposures (longs and shorts both count: a long/short pair in correlated names is counted, not netted).
* **Open orders are worst-cased.** Pending orders may fill or not, so a held symbol's exposure is the larger
  of ``|position|`` and ``|position + pending|``; the candidate order is checked against both outcomes
  ("bases") of its own symbol's pending quantity. Two quick signals therefore cannot jointly breach a limit.
* **Reducing is never blocked by exposure rules.** For each base, the part of the order that moves the
  position toward zero (up to ``|base|``) is always allowed by position_limit, sector_exposure,
  correlated_exposure, leverage and daily_loss; an order that crosses through zero is a reduce plus a new
  open, and only the open part (the post-trade position on the other side) is checked. pdt and buying_power
  are not exposure rules: pdt may block an exit (as the broker's PDT protection does); buying_power only
  charges the open part.
* **position_limit**: post-trade ``|position| x price <= max_position_fraction x equity`` and
  ``|position| <= max_position_size[symbol]`` shares (spec 2.1, 2.2).
* **sector_exposure**: post-trade gross exposure of every symbol in the candidate's sector
  ``<= max_sector_fraction x equity``. A candidate with no configured sector may only reduce.
* **correlated_exposure**: the group is the candidate plus every held symbol whose correlation with the
  candidate (``rolling_correlations``, daily returns over ``CORRELATION_WINDOW_DAYS``) is
  ``>= correlation_threshold``; the group's post-trade gross exposure ``<= max_correlated_fraction x equity``.
  A pair without enough history has no entry and counts as uncorrelated.
* **daily_loss**: once ``(equity - last_equity) / last_equity <= -daily_loss_halt_fraction``, no new risk:
  only the reducing part passes; a refusal is audited with action ``halt``.
* **leverage**: post-trade gross exposure of the whole book ``<= cap x equity`` (cash 1x, margin initial 1x,
  margin experienced 2x; spec 2.4).
* **buying_power**: cost of the order's open part ``<= buying_power - cost of the open parts of pending
  orders`` (conservative if the broker already deducted them: we may refuse, never overspend).
* **pdt**: with ``pdt_protection`` and equity below the PDT threshold, an order that would be a day trade
  (the symbol was traded on the opposite side today) is blocked when it would be the 4th in 5 sessions, or
  at all if the account is already flagged pattern day trader.
* **size_scale** (go-live, spec 6) scales the open part of the request first; exits are never scaled.
  A NEUTRAL signal means "flatten": sell/buy toward zero, at most the current position; ``reduce_only``
  signals are clamped the same way.

Every rule returns the largest quantity it allows (a downward-closed set); RESIZE is the minimum over rules,
which is therefore the largest quantity every rule allows, in the symbol's quantity step (whole shares, or
1e-9 shares under fractional / notional sizing: ``RiskConfig.quantity_steps``). Quantities stay Decimal.
"""

from __future__ import annotations

import decimal
import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import ClassVar, Final, Protocol

import msgspec
import numpy as np

from core.config import EngineConfig
from core.limits import (
    CORRELATION_THRESHOLD,
    CORRELATION_WINDOW_DAYS,
    DAILY_LOSS_HALT_FRACTION,
    LEVERAGE_CAP_CASH,
    LEVERAGE_CAP_MARGIN_EXPERIENCED,
    LEVERAGE_CAP_MARGIN_INITIAL,
    MAX_CORRELATED_FRACTION,
    MAX_POSITION_FRACTION,
    MAX_SECTOR_FRACTION,
    PDT_EQUITY_THRESHOLD_USD,
    PDT_MAX_DAY_TRADES,
)
from core.model import AccountType, Direction, ExecutionAction, Side, Signal
from core.orderplan import floor_to_step, quantity_steps

_ZERO = Decimal(0)
_WHOLE = Decimal(1)

RULE_HALTED = "halted"
RULE_SIZE_SCALE = "size_scale"
RULE_MARK_PRICE = "mark_price"
RULE_DAILY_LOSS = "daily_loss"
RULE_PDT = "pdt"
RULE_POSITION_LIMIT = "position_limit"
RULE_SECTOR_EXPOSURE = "sector_exposure"
RULE_CORRELATED_EXPOSURE = "correlated_exposure"
RULE_LEVERAGE = "leverage"
RULE_BUYING_POWER = "buying_power"


class UnknownSectorError(ValueError):
    """A traded symbol has no sector: the sector rule could not protect it, so start-up refuses."""


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Risk parameters; every default is a named limit in core.limits. Scenario ``[risk]`` keys override."""

    max_position_fraction: Decimal = MAX_POSITION_FRACTION
    max_position_size: dict[str, Decimal] = {}  # per-symbol share cap (spec 2.2); absent = no share cap
    max_sector_fraction: Decimal = MAX_SECTOR_FRACTION
    max_correlated_fraction: Decimal = MAX_CORRELATED_FRACTION
    correlation_threshold: float = CORRELATION_THRESHOLD
    daily_loss_halt_fraction: Decimal = DAILY_LOSS_HALT_FRACTION
    size_scale: Decimal = Decimal(1)  # no scaling; go-live sets GO_LIVE_SIZE_SCALE (spec 6) in the config
    leverage_cap_cash: Decimal = LEVERAGE_CAP_CASH
    leverage_cap_margin_initial: Decimal = LEVERAGE_CAP_MARGIN_INITIAL
    leverage_cap_margin_experienced: Decimal = LEVERAGE_CAP_MARGIN_EXPERIENCED
    pdt_protection: bool = True
    pdt_equity_threshold_usd: Decimal = PDT_EQUITY_THRESHOLD_USD
    pdt_max_day_trades: int = PDT_MAX_DAY_TRADES
    sectors: dict[str, str] = {}  # symbol -> sector, from the instrument list
    # symbol -> the smallest quantity step (core.orderplan.quantity_steps); absent = whole shares
    quantity_steps: dict[str, Decimal] = {}

    def __post_init__(self) -> None:
        fractions = (
            ("max_position_fraction", self.max_position_fraction),
            ("max_sector_fraction", self.max_sector_fraction),
            ("max_correlated_fraction", self.max_correlated_fraction),
            ("daily_loss_halt_fraction", self.daily_loss_halt_fraction),
            ("size_scale", self.size_scale),
        )
        for name, value in fractions:
            if not _ZERO < value <= 1:
                raise ValueError(f"RiskConfig.{name} must be in (0, 1], got {value}")
        for account_type in AccountType:
            if self.leverage_cap(account_type) <= 0:
                raise ValueError(f"RiskConfig leverage cap for {account_type} must be > 0")
        for symbol, shares in sorted(self.max_position_size.items()):
            if shares < 0:
                raise ValueError(f"RiskConfig.max_position_size[{symbol!r}] must be >= 0, got {shares}")
        if not -1.0 <= self.correlation_threshold <= 1.0:
            raise ValueError(
                f"RiskConfig.correlation_threshold must be in [-1, 1], got {self.correlation_threshold}"
            )

    @classmethod
    def from_engine_config(cls, config: EngineConfig) -> RiskConfig:
        """The engine config's ``[risk]`` (percent strings) and ``[[instruments]]`` as a RiskConfig."""
        r = config.risk
        return cls(
            max_position_fraction=Decimal(r.max_position_pct) / 100,
            max_position_size={
                i.symbol: Decimal(i.max_position_size)
                for i in config.instruments
                if i.max_position_size is not None
            },
            max_sector_fraction=Decimal(r.max_sector_pct) / 100,
            max_correlated_fraction=Decimal(r.max_correlated_pct) / 100,
            correlation_threshold=r.correlation_threshold,
            daily_loss_halt_fraction=Decimal(r.daily_loss_halt_pct) / 100,
            size_scale=Decimal(r.size_scale),
            pdt_protection=r.pdt_protection,
            sectors=config.sectors,
            quantity_steps=quantity_steps(config),
        )

    # Go-live (spec 6): size_scale caps the position, not just each order. The exposure limits below are the
    # configured ones times size_scale, so a position at the scaled cap gets no adds however often a policy
    # that aims at a target asks again; exits are never limited.
    @property
    def position_fraction_cap(self) -> Decimal:
        return self.max_position_fraction * self.size_scale

    @property
    def sector_fraction_cap(self) -> Decimal:
        return self.max_sector_fraction * self.size_scale

    @property
    def correlated_fraction_cap(self) -> Decimal:
        return self.max_correlated_fraction * self.size_scale

    def share_cap(self, symbol: str) -> Decimal | None:
        shares = self.max_position_size.get(symbol)
        return None if shares is None else _floor(shares * self.size_scale, self.step(symbol))

    def step(self, symbol: str) -> Decimal:
        """How finely ``symbol`` is sized: 1 (whole shares) unless fractional/notional sizing applies to it."""
        return self.quantity_steps.get(symbol, _WHOLE)

    def leverage_cap(self, account_type: AccountType) -> Decimal:
        if account_type is AccountType.CASH:
            return self.leverage_cap_cash
        if account_type is AccountType.MARGIN_INITIAL:
            return self.leverage_cap_margin_initial
        return self.leverage_cap_margin_experienced

    def validate_sectors(self, symbols: Iterable[str]) -> None:
        """Start-up check: every tradable symbol needs a sector, else the sector limit would silently pass."""
        missing = sorted({s for s in symbols if not self.sectors.get(s)})
        if missing:
            raise UnknownSectorError(
                f"no sector configured for {', '.join(missing)}: give every instrument a sector "
                "(scenario [[instruments]] sector = ...) so the 25% sector limit can be enforced"
            )


class PortfolioView(msgspec.Struct, frozen=True, kw_only=True):
    """The book as the engine sees it when a signal arrives. Quantities are signed shares (short < 0)."""

    equity: Decimal
    last_equity: Decimal  # equity at the previous close = start of day (Alpaca ``last_equity``)
    week_start_equity: Decimal  # carried for monitors; no pre-trade rule reads it
    cash: Decimal
    buying_power: Decimal  # broker figure; the guard itself deducts the open parts of ``open_orders``
    account_type: AccountType
    positions: dict[str, Decimal] = {}
    prices: dict[str, Decimal] = {}  # mark price per symbol; required for every held or pending symbol
    open_orders: dict[str, Decimal] = {}  # net signed quantity still pending per symbol (buy > 0)
    # symbol -> {other symbol -> correlation}, both directions; rolling_correlations() builds it once a day
    correlations: dict[str, dict[str, float]] = {}
    day_trades_5d: int = 0  # day trades in the last PDT_WINDOW_DAYS sessions
    bought_today: frozenset[str] = frozenset()  # symbols with a buy fill this session
    sold_today: frozenset[str] = frozenset()  # symbols with a sell fill this session
    pattern_day_trader: bool = False
    halted: bool = False

    def __post_init__(self) -> None:
        for book in (self.positions, self.open_orders):
            for symbol, qty in book.items():
                if qty != 0 and not self.prices.get(symbol, _ZERO) > 0:
                    raise ValueError(f"PortfolioView: {symbol} is held or pending but has no positive mark")

    @property
    def daily_pnl(self) -> Decimal:
        return self.equity - self.last_equity


class Outcome(enum.StrEnum):
    PASS = "pass"
    REJECT = "reject"
    RESIZE = "resize"


class ActionTaken(enum.StrEnum):
    """Spec 4.1 ``risk_check_result.action_taken``."""

    PASS = "pass"
    REJECT = "reject"
    RESIZE = "resize"
    HALT = "halt"  # refused because trading is halted or the daily-loss limit was reached


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    signal_id: str
    symbol: str
    side: Side | None  # the order side to submit; None for CANCEL or nothing to flatten
    outcome: Outcome
    requested_qty: Decimal
    approved_qty: Decimal  # in the symbol's quantity step (whole shares unless fractional); 0 when rejected
    rules_evaluated: tuple[str, ...]  # in evaluation order
    binding_rule: str | None  # the rule that set approved_qty below the request (first one on ties)
    reasons: dict[str, str]  # rule id -> short text
    action_taken: ActionTaken

    @property
    def passed(self) -> bool:
        return self.outcome is not Outcome.REJECT

    def to_audit(self) -> dict[str, object]:
        """The spec 4.1 ``risk_check_result`` object."""
        return {
            "passed": self.passed,
            "rules_evaluated": list(self.rules_evaluated),
            "action_taken": self.action_taken.value,
        }


def loss_limit_reached(equity: Decimal, start_equity: Decimal, fraction: Decimal) -> bool:
    """``(equity - start) / start <= -fraction``, without dividing; no verdict without a positive start."""
    return start_equity > 0 and equity - start_equity <= -fraction * start_equity


def would_be_day_trade(
    side: Side, symbol: str, bought_today: frozenset[str], sold_today: frozenset[str]
) -> bool:
    """Conservative FINRA reading: trading a symbol on the opposite side of a fill earlier this session."""
    return symbol in (sold_today if side is Side.BUY else bought_today)


def max_shares_within(budget_usd: Decimal, price: Decimal, step: Decimal = Decimal(1)) -> Decimal:
    """Largest n >= 0, a multiple of ``step``, with ``n x price <= budget_usd`` (Decimal ``//`` is exact
    divide-integer: whole shares are counted exactly, fractional ones in whole steps)."""
    if step == _WHOLE:
        if budget_usd < price:
            return _ZERO
        return budget_usd // price
    if budget_usd <= 0:
        return _ZERO
    return (budget_usd // (price * step)) * step


def _floor(value: Decimal, step: Decimal = Decimal(1)) -> Decimal:
    """``value`` rounded down to a multiple of ``step`` (whole shares by default)."""
    return floor_to_step(value, step)


class Candidate:
    """One signal under review: the order shape and the per-call aggregates every rule reads."""

    __slots__ = (
        "_aggregated",
        "_memo",
        "bases",
        "config",
        "corr_others_usd",
        "gross_others_usd",
        "pending_open_cost_usd",
        "position",
        "price",
        "reduce_room",
        "requested",
        "sector",
        "sector_others_usd",
        "sign",
        "signal",
        "step",
        "view",
    )

    def __init__(
        self, signal: Signal, view: PortfolioView, config: RiskConfig, memo: BookMemo | None = None
    ) -> None:
        self.signal = signal
        self.view = view
        self.config = config
        self.requested = signal.quantity
        self.step = config.step(signal.symbol)
        position = view.positions.get(signal.symbol, _ZERO)
        self.position = position
        if signal.direction is Direction.LONG:
            self.sign = 1
        elif signal.direction is Direction.SHORT:
            self.sign = -1
        else:  # NEUTRAL: flatten, i.e. trade toward zero
            self.sign = -1 if position > 0 else (1 if position < 0 else 0)
        pending = view.open_orders.get(signal.symbol, _ZERO)
        self.bases: tuple[Decimal, ...] = (position,) if pending == 0 else (position, position + pending)
        # The part of the order that is a pure reduction whatever the pending orders do.
        self.reduce_room = min(abs(b) if b * self.sign < 0 else _ZERO for b in self.bases)
        price = view.prices.get(signal.symbol)
        self.price = price if price is not None and price > 0 else None
        self.sector = config.sectors.get(signal.symbol)
        self._aggregated = False
        self._memo = memo
        self.gross_others_usd = _ZERO
        self.sector_others_usd = _ZERO
        self.corr_others_usd = _ZERO
        self.pending_open_cost_usd = _ZERO

    @property
    def side(self) -> Side | None:
        return Side.BUY if self.sign > 0 else (Side.SELL if self.sign < 0 else None)

    def room(self, allowed_shares: Decimal, *, held_counts: bool) -> Decimal:
        """Largest order qty such that, for every base, the order is a pure reduction up to ``|base|``
        or leaves at most ``allowed_shares`` on the order's side (``held_counts``: the base's own shares
        on the order's side count against the allowance; False for cost-only rules)."""
        best: Decimal | None = None
        for base in self.bases:
            if base * self.sign < 0:
                room = abs(base) + allowed_shares
            elif held_counts:
                room = allowed_shares - abs(base)
            else:
                room = allowed_shares
            if best is None or room < best:
                best = room
        assert best is not None
        return _floor(max(best, _ZERO), self.step)

    def aggregate(self) -> None:
        """One pass over the book: worst-case exposures of the other symbols and pending open costs.

        The pass depends only on (view, symbol) under a fixed config, so with a memo (``RiskGuard`` keeps one
        per view) a second candidate in the same symbol reuses the first one's sums: the same Decimals."""
        if self._aggregated:
            return
        self._aggregated = True
        symbol = self.signal.symbol
        memo = self._memo
        if memo is not None:
            known = memo.aggregates.get(symbol)
            if known is not None:
                self.gross_others_usd, self.sector_others_usd, self.corr_others_usd, self.pending_open_cost_usd = known
                return
        view, sector = self.view, self.sector
        sectors, prices = self.config.sectors, view.prices
        corr_row = view.correlations.get(symbol, _NO_CORRELATIONS)
        threshold = self.config.correlation_threshold
        gross = sector_sum = corr_sum = pending_cost = _ZERO
        for book_symbol, qty, pending in _book(view):
            price = prices[book_symbol]
            exposure = worst_exposure_usd(qty, pending, price)
            if pending:
                pending_cost += _open_part(qty, pending) * price
            if book_symbol == symbol:
                continue
            gross += exposure
            if sector is not None and sectors.get(book_symbol) == sector:
                sector_sum += exposure
            corr = corr_row.get(book_symbol)
            if corr is not None and corr >= threshold:
                corr_sum += exposure
        self.gross_others_usd = gross
        self.sector_others_usd = sector_sum
        self.corr_others_usd = corr_sum
        self.pending_open_cost_usd = pending_cost
        if memo is not None:
            memo.store_aggregates(symbol, (gross, sector_sum, corr_sum, pending_cost))


RISK_MEMO_MAX_ENTRIES: Final = 4_096  # per view and kind; far more than any instrument list x 2 sides x rules


class BookMemo:
    """What the guard has worked out about one view: it depends on (view, config, symbol, side) only.

    ``aggregates``: (gross others, sector others, correlated others, pending open cost) USD per candidate
    symbol. ``results``: the (cap, reason) of every rule marked ``memoisable`` by (rule index, symbol, sign).
    Entries are the very objects the first computation returned, so a memoised decision is the same decision.
    """

    __slots__ = ("aggregates", "results")

    def __init__(self) -> None:
        self.aggregates: dict[str, tuple[Decimal, Decimal, Decimal, Decimal]] = {}
        self.results: dict[tuple[int, str, int], RuleResult] = {}

    def store_aggregates(self, symbol: str, sums: tuple[Decimal, Decimal, Decimal, Decimal]) -> None:
        if len(self.aggregates) >= RISK_MEMO_MAX_ENTRIES:
            self.aggregates.clear()
        self.aggregates[symbol] = sums

    def store_result(self, key: tuple[int, str, int], result: RuleResult) -> None:
        if len(self.results) >= RISK_MEMO_MAX_ENTRIES:
            self.results.clear()
        self.results[key] = result


_NO_CORRELATIONS: Mapping[str, float] = {}


def _book(view: PortfolioView) -> Iterator[tuple[str, Decimal, Decimal]]:
    """(symbol, position, pending) for every symbol held or with a pending order."""
    pending_book = view.open_orders
    for symbol, qty in view.positions.items():
        pending = pending_book.get(symbol, _ZERO) if pending_book else _ZERO
        if qty or pending:
            yield symbol, qty, pending
    for symbol, pending in pending_book.items():
        if pending and symbol not in view.positions:
            yield symbol, _ZERO, pending


def worst_exposure_usd(position: Decimal, pending: Decimal, price: Decimal) -> Decimal:
    """Exposure whether or not the pending orders fill: ``max(|p|, |p + pending|) x price``."""
    if pending:
        return max(abs(position), abs(position + pending)) * price
    return abs(position) * price


def _open_part(position: Decimal, change: Decimal) -> Decimal:
    """Shares of ``change`` that open or extend exposure (past zero) rather than reduce ``position``."""
    if position * change >= 0:
        return abs(change)
    return max(abs(change) - abs(position), _ZERO)


RuleResult = tuple[Decimal | None, str]  # (max order qty allowed or None = no constraint, short reason)


class Rule(Protocol):
    """``memoisable`` (optional, default False): the result depends only on the view, the config, the symbol
    and the candidate's sign (order side), never on the requested quantity, so the guard may reuse it."""

    id: ClassVar[str]

    def check(self, c: Candidate) -> RuleResult: ...


class HaltedRule:
    id: ClassVar[str] = RULE_HALTED

    def check(self, c: Candidate) -> RuleResult:
        if c.view.halted:
            return _ZERO, "trading halted: nothing is accepted until a manual reset"
        return None, "not halted"


class SizeScaleRule:
    """Shapes the request: scales its open part (go-live), clamps flatten / reduce-only to the position."""

    id: ClassVar[str] = RULE_SIZE_SCALE

    def check(self, c: Candidate) -> RuleResult:
        q, p = c.requested, c.position
        if c.sign == 0:
            return _ZERO, "nothing to flatten: no position"
        exit_part = min(q, abs(p)) if p * c.sign < 0 else _ZERO
        if c.signal.direction is Direction.NEUTRAL or c.signal.reduce_only:
            return exit_part, f"flatten/reduce-only: at most the position {abs(p)}"
        scaled = exit_part + _floor((q - exit_part) * c.config.size_scale, c.step)
        return scaled, f"open part scaled by {c.config.size_scale}"


class MarkPriceRule:
    id: ClassVar[str] = RULE_MARK_PRICE

    def check(self, c: Candidate) -> RuleResult:
        if c.price is None:
            return _ZERO, f"no mark price for {c.signal.symbol}"
        return None, f"mark {c.price}"


class DailyLossRule:
    id: ClassVar[str] = RULE_DAILY_LOSS

    def check(self, c: Candidate) -> RuleResult:
        v = c.view
        if loss_limit_reached(v.equity, v.last_equity, c.config.daily_loss_halt_fraction):
            return c.reduce_room, (
                f"daily P&L {v.daily_pnl} reached -{c.config.daily_loss_halt_fraction} of {v.last_equity}: "
                "reducing only"
            )
        return None, "daily loss within limit"


class PdtRule:
    id: ClassVar[str] = RULE_PDT

    def check(self, c: Candidate) -> RuleResult:
        cfg, v, side = c.config, c.view, c.side
        if not cfg.pdt_protection or v.equity >= cfg.pdt_equity_threshold_usd or side is None:
            return None, "PDT protection not applicable"
        if not would_be_day_trade(side, c.signal.symbol, v.bought_today, v.sold_today):
            return None, "not a day trade"
        if v.pattern_day_trader:
            return _ZERO, "account flagged PDT with equity under the threshold: no day trades"
        if v.day_trades_5d >= cfg.pdt_max_day_trades:
            return _ZERO, f"would be day trade #{v.day_trades_5d + 1} in the PDT window"
        return None, f"day trade #{v.day_trades_5d + 1} allowed"


class PositionLimitRule:
    id: ClassVar[str] = RULE_POSITION_LIMIT
    memoisable: ClassVar[bool] = True

    def check(self, c: Candidate) -> RuleResult:
        assert c.price is not None
        limit_usd = c.config.position_fraction_cap * c.view.equity
        shares = max_shares_within(limit_usd, c.price, c.step)
        share_cap = c.config.share_cap(c.signal.symbol)
        if share_cap is not None and share_cap < shares:
            shares = _floor(share_cap, c.step)
        return c.room(shares, held_counts=True), f"position at most {shares} sh (limit {limit_usd:.2f} USD)"


class _GroupExposureRule:
    """A cap on the post-trade gross exposure of a group of symbols that contains the candidate."""

    id: ClassVar[str] = ""
    memoisable: ClassVar[bool] = True

    def group(self, c: Candidate) -> tuple[Decimal, Decimal, str]:
        """(limit USD, worst-case exposure of the group's other symbols USD, group name)."""
        raise NotImplementedError

    def check(self, c: Candidate) -> RuleResult:
        assert c.price is not None
        c.aggregate()
        limit_usd, others_usd, name = self.group(c)
        shares = max_shares_within(limit_usd - others_usd, c.price, c.step)
        return c.room(shares, held_counts=True), (
            f"{name}: others {others_usd:.2f} of {limit_usd:.2f} USD, room {shares} sh"
        )


class SectorExposureRule(_GroupExposureRule):
    id: ClassVar[str] = RULE_SECTOR_EXPOSURE

    def check(self, c: Candidate) -> RuleResult:
        if c.sector is None:  # validate_sectors() refuses this at start-up; stay safe if it slips through
            return c.reduce_room, f"{c.signal.symbol} has no sector: reducing only"
        return super().check(c)

    def group(self, c: Candidate) -> tuple[Decimal, Decimal, str]:
        return c.config.sector_fraction_cap * c.view.equity, c.sector_others_usd, f"sector {c.sector}"


class CorrelatedExposureRule(_GroupExposureRule):
    id: ClassVar[str] = RULE_CORRELATED_EXPOSURE

    def group(self, c: Candidate) -> tuple[Decimal, Decimal, str]:
        return c.config.correlated_fraction_cap * c.view.equity, c.corr_others_usd, "correlated group"


class LeverageRule(_GroupExposureRule):
    id: ClassVar[str] = RULE_LEVERAGE

    def group(self, c: Candidate) -> tuple[Decimal, Decimal, str]:
        cap = c.config.leverage_cap(c.view.account_type)
        return cap * c.view.equity, c.gross_others_usd, f"gross book ({cap}x {c.view.account_type})"


class BuyingPowerRule:
    id: ClassVar[str] = RULE_BUYING_POWER
    memoisable: ClassVar[bool] = True

    def check(self, c: Candidate) -> RuleResult:
        assert c.price is not None
        c.aggregate()
        available_usd = c.view.buying_power - c.pending_open_cost_usd
        shares = max_shares_within(available_usd, c.price, c.step)
        return c.room(shares, held_counts=False), f"buying power {available_usd:.2f} USD after open orders"


DEFAULT_RULES: tuple[Rule, ...] = (
    HaltedRule(),
    SizeScaleRule(),
    MarkPriceRule(),
    DailyLossRule(),
    PdtRule(),
    PositionLimitRule(),
    SectorExposureRule(),
    CorrelatedExposureRule(),
    LeverageRule(),
    BuyingPowerRule(),
)

_HALT_RULES = frozenset({RULE_HALTED, RULE_DAILY_LOSS})


class RiskGuard:
    """Evaluates signals against the rules in order. The view carries the book; the guard only memoises.

    A ``PortfolioView`` is a snapshot: the guard memoises per-symbol book sums for the last view it saw (by
    identity), so a caller builds a new view when the book changes and never mutates one's dicts in place.
    """

    def __init__(self, config: RiskConfig | None = None, rules: Sequence[Rule] = DEFAULT_RULES) -> None:
        self.config = config if config is not None else RiskConfig()
        self.rules = tuple(rules)
        self._memoisable = tuple(bool(getattr(rule, "memoisable", False)) for rule in self.rules)
        self._memo_key: tuple[PortfolioView, int, str] | None = None
        self._memo = BookMemo()

    def _memo_for(self, view: PortfolioView) -> BookMemo:
        """The aggregate memo of ``view`` (a Decimal context change also starts a new one: sums may round)."""
        context = decimal.getcontext()
        key = (view, context.prec, context.rounding)
        last = self._memo_key
        if last is None or last[0] is not view or last[1:] != key[1:]:
            self._memo_key = key
            self._memo = BookMemo()
        return self._memo

    def evaluate_signal(self, signal: Signal, view: PortfolioView) -> Decision:
        q = signal.quantity
        step = self.config.step(signal.symbol)
        if q < 0 or _floor(q, step) != q:
            what = "whole shares" if step == _WHOLE else f"steps of {step}"
            raise ValueError(f"signal {signal.signal_id}: quantity must be {what} >= 0, got {q}")
        if signal.action is ExecutionAction.CANCEL:
            return Decision(
                signal_id=signal.signal_id,
                symbol=signal.symbol,
                side=None,
                outcome=Outcome.PASS,
                requested_qty=q,
                approved_qty=q,
                rules_evaluated=(),
                binding_rule=None,
                reasons={},
                action_taken=ActionTaken.PASS,
            )
        memo = self._memo_for(view)
        candidate = Candidate(signal, view, self.config, memo)
        allowed = q
        binding: str | None = None
        evaluated: list[str] = []
        reasons: dict[str, str] = {}
        results, symbol, sign = memo.results, signal.symbol, candidate.sign
        for index, (rule, memoisable) in enumerate(zip(self.rules, self._memoisable, strict=True)):
            if memoisable:
                key = (index, symbol, sign)
                result = results.get(key)
                if result is None:
                    result = rule.check(candidate)
                    memo.store_result(key, result)
                cap, reason = result
            else:
                cap, reason = rule.check(candidate)
            evaluated.append(rule.id)
            reasons[rule.id] = reason
            if cap is not None and (cap < allowed or (cap <= 0 and binding is None)):
                allowed, binding = cap, rule.id  # strict <: on ties the earlier rule stays binding
            if allowed <= 0 and binding is not None:  # nothing can raise it again
                break
        approved = _floor(max(allowed, _ZERO), step)
        if approved <= 0:
            outcome = Outcome.REJECT
            action = ActionTaken.HALT if binding in _HALT_RULES else ActionTaken.REJECT
            approved = _ZERO
        elif approved == q:
            outcome, action, binding = Outcome.PASS, ActionTaken.PASS, None
        else:
            outcome, action = Outcome.RESIZE, ActionTaken.RESIZE
        return Decision(
            signal_id=signal.signal_id,
            symbol=signal.symbol,
            side=candidate.side,
            outcome=outcome,
            requested_qty=q,
            approved_qty=approved,
            rules_evaluated=tuple(evaluated),
            binding_rule=binding,
            reasons=reasons,
            action_taken=action,
        )


def utilisation_pct(view: PortfolioView, config: RiskConfig) -> dict[str, Decimal]:
    """Spec 4.3 "risk utilisation": percent of each limit consumed by the book now (worst-case pending).

    position_limit / sector_exposure / correlated_exposure report the most loaded symbol, sector or
    correlated group; the dashboard shows it, no decision depends on it. O(held^2) for the groups.
    """
    if view.equity <= 0:
        return {}
    exposure = {s: worst_exposure_usd(q, p, view.prices[s]) for s, q, p in _book(view)}
    by_sector: dict[str, Decimal] = {}
    for symbol, usd in exposure.items():
        sector = config.sectors.get(symbol)
        if sector is not None:
            by_sector[sector] = by_sector.get(sector, _ZERO) + usd
    threshold = config.correlation_threshold
    worst_group = _ZERO
    for symbol, usd in exposure.items():
        row = view.correlations.get(symbol, _NO_CORRELATIONS)
        group = usd
        for other, other_usd in exposure.items():
            corr = row.get(other)
            if other != symbol and corr is not None and corr >= threshold:
                group += other_usd
        worst_group = max(worst_group, group)
    loss = max(-view.daily_pnl, _ZERO) / view.last_equity if view.last_equity > 0 else _ZERO
    used_vs_limit = {
        RULE_POSITION_LIMIT: (max(exposure.values(), default=_ZERO), config.position_fraction_cap),
        RULE_SECTOR_EXPOSURE: (max(by_sector.values(), default=_ZERO), config.sector_fraction_cap),
        RULE_CORRELATED_EXPOSURE: (worst_group, config.correlated_fraction_cap),
        RULE_LEVERAGE: (sum(exposure.values(), _ZERO), config.leverage_cap(view.account_type)),
        RULE_DAILY_LOSS: (loss * view.equity, config.daily_loss_halt_fraction),
    }
    return {rule: used / (fraction * view.equity) * 100 for rule, (used, fraction) in used_vs_limit.items()}


def rolling_correlations(
    returns_by_symbol: Mapping[str, Sequence[float]],
    window: int = CORRELATION_WINDOW_DAYS,
    *,
    min_periods: int | None = None,
) -> dict[str, dict[str, float]]:
    """Pearson correlation of daily returns over the last ``window`` days: ``{a: {b: corr}}``, both ways.

    Series are aligned on their most recent element (same dates; NaN marks a missing day). A pair with
    fewer than ``min_periods`` (default: ``window``) common days, or a constant series, gets no entry.
    The engine calls this once per day and puts the result into ``PortfolioView.correlations``, so a
    risk check only does dictionary look-ups.
    """
    if window < 2:
        raise ValueError(f"window must be >= 2, got {window}")
    need = window if min_periods is None else min_periods
    if not 2 <= need <= window:
        raise ValueError(f"min_periods must be in [2, window={window}], got {need}")
    symbols = sorted(returns_by_symbol)
    matrix = np.full((len(symbols), window), np.nan, dtype=np.float64)
    for row, symbol in enumerate(symbols):
        tail = np.asarray(list(returns_by_symbol[symbol])[-window:], dtype=np.float64)
        if tail.size:
            matrix[row, window - tail.size :] = tail
    finite = np.isfinite(matrix)
    result: dict[str, dict[str, float]] = {symbol: {} for symbol in symbols}
    for i, a in enumerate(symbols):
        for j in range(i + 1, len(symbols)):
            mask = finite[i] & finite[j]
            if int(mask.sum()) < need:
                continue
            x, y = matrix[i, mask], matrix[j, mask]
            dx, dy = x - x.mean(), y - y.mean()
            denom = float(np.sqrt(np.dot(dx, dx) * np.dot(dy, dy)))
            if denom == 0.0:
                continue
            corr = max(-1.0, min(1.0, float(np.dot(dx, dy)) / denom))
            result[a][symbols[j]] = corr
            result[symbols[j]][a] = corr
    return result
