"""Property tests: over random books and signals, RiskGuard never approves a breach and resizes maximally.

The oracle below recomputes every limit from the post-trade book directly (for each pending-fill outcome),
independently of the guard's "room" arithmetic.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.model import AccountType, Direction, ExecutionAction, Side, Signal
from core.risk import Outcome, PortfolioView, RiskConfig, RiskGuard

D = Decimal
SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")
SECTOR_OF = {"AAA": "tech", "BBB": "tech", "CCC": "energy", "DDD": "energy", "EEE": "health"}  # FFF: none
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
QUICK = settings(PROPS, max_examples=100)


@dataclass(frozen=True)
class Case:
    view: PortfolioView
    config: RiskConfig
    signal: Signal


def shares(rnd: random.Random, equity: Decimal, price: Decimal, max_fraction: float) -> Decimal:
    """A signed whole-share quantity worth up to ``max_fraction`` of equity, so limits bind often."""
    return D(round(float(equity) * rnd.uniform(-max_fraction, max_fraction) / float(price)))


@st.composite
def cases(draw: st.DrawFn, *, reducing_only: bool = False) -> Case:
    """Hypothesis draws the structure (who is held, what is signalled); one drawn seed fills in the numbers
    (hypothesis' own integers favour 0 and 1, which would make nearly every example trivially rejected)."""
    held = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=len(SYMBOLS)))
    pending_syms = draw(st.lists(st.sampled_from(SYMBOLS), unique=True, max_size=3))
    symbol = draw(st.sampled_from(SYMBOLS))
    account_type = draw(st.sampled_from(list(AccountType)))
    rnd = random.Random(draw(st.integers(0, 2**64)))
    # start-of-day equity around the PDT threshold or far from it; the day's change around the -3% limit
    last_equity = D(rnd.choice([20_000, 24_999, 25_000, 26_000, rnd.randint(5_000, 400_000)]))
    change_bp = rnd.choice([0, 150, -100, 400, -299, -300, 0, 150, -301, -500])
    equity = (last_equity * (1 + D(change_bp) / 10_000)).quantize(D("0.01"))
    needs_mark = {*held, *pending_syms}
    prices = {
        s: D(rnd.randint(100, 50_000)) / 100 for s in SYMBOLS if s in needs_mark or rnd.random() < 0.9
    }
    if rnd.random() < 0.3:  # a heavy book outside the candidate's sector (price moves): leverage binds
        heavy = [s for s in SYMBOLS if s != symbol and SECTOR_OF.get(s, s) != SECTOR_OF.get(symbol)]
        positions = {s: shares(rnd, equity, prices[s], 0.1) for s in held}
        for s in heavy:
            prices.setdefault(s, D(rnd.randint(100, 50_000)) / 100)
            positions[s] = (equity * D(rnd.uniform(0.2, 0.4)) / prices[s]).to_integral_value()
    else:
        positions = {s: shares(rnd, equity, prices[s], rnd.choice([0.05, 0.15, 0.3])) for s in held}
    open_orders = {s: shares(rnd, equity, prices[s], 0.06) for s in pending_syms}
    corr: dict[str, dict[str, float]] = {s: {} for s in SYMBOLS}
    for i, a in enumerate(SYMBOLS):
        for b in SYMBOLS[i + 1 :]:
            if rnd.random() < 0.5:
                corr[a][b] = corr[b][a] = rnd.choice([-0.9, 0.0, 0.5, 0.69, 0.7, 0.71, 0.95])
    if reducing_only:
        prices.setdefault(symbol, D(rnd.randint(100, 50_000)) / 100)
        pos = positions.get(symbol, D(0)) or D(rnd.randint(1, 300) * rnd.choice([1, -1]))
        positions[symbol] = pos
        open_orders.pop(symbol, None)
        direction = draw(st.sampled_from([Direction.SHORT if pos > 0 else Direction.LONG, Direction.NEUTRAL]))
        quantity = D(rnd.randint(1, int(abs(pos))))
    else:
        direction = draw(st.sampled_from([Direction.LONG, Direction.SHORT, Direction.NEUTRAL]))
        mark = prices.get(symbol, D(100))
        quantity = abs(shares(rnd, equity, mark, 0.15)) if rnd.random() < 0.97 else D(0)
    view = PortfolioView(
        equity=equity,
        last_equity=last_equity,
        week_start_equity=equity,
        cash=equity,
        buying_power=(equity * D(rnd.choice(["0", "0.05", "0.5", "1", "2", "3", "4"]))).quantize(D("0.01")),
        account_type=account_type,
        positions=positions,
        prices=prices,
        open_orders=open_orders,
        correlations=corr,
        day_trades_5d=rnd.randint(0, 5),
        bought_today=frozenset(s for s in SYMBOLS if rnd.random() < 0.5),
        sold_today=frozenset(s for s in SYMBOLS if rnd.random() < 0.5),
        pattern_day_trader=rnd.random() < 0.3,
        halted=not reducing_only and rnd.random() < 0.03,
    )
    config = RiskConfig(
        size_scale=rnd.choice([D("0.25"), D("0.5"), D(1), D(1)]),
        max_position_size={s: D(rnd.randint(0, 400)) for s in SYMBOLS if rnd.random() < 0.2},
        pdt_protection=not reducing_only and rnd.random() < 0.5,
        sectors=SECTOR_OF,
    )
    signal = Signal(
        signal_id="s",
        model_id="m",
        symbol=symbol,
        direction=direction,
        quantity=quantity,
        action=ExecutionAction.MARKET,
        ts_ns=0,
        reduce_only=not reducing_only and rnd.random() < 0.1,
    )
    return Case(view, config, signal)


# --- the oracle -------------------------------------------------------------------------------------------


def worst(v: PortfolioView, s: str) -> Decimal:
    p, o = v.positions.get(s, D(0)), v.open_orders.get(s, D(0))
    return max(abs(p), abs(p + o)) * v.prices.get(s, D(0))


def side_of(case: Case) -> int:
    p = case.view.positions.get(case.signal.symbol, D(0))
    if case.signal.direction is Direction.LONG:
        return 1
    if case.signal.direction is Direction.SHORT:
        return -1
    return -1 if p > 0 else (1 if p < 0 else 0)


def effective_request(case: Case) -> Decimal:
    """What the policy may get at most: exits unscaled, the opening remainder scaled, flatten clamped."""
    s, q = side_of(case), case.signal.quantity
    p = case.view.positions.get(case.signal.symbol, D(0))
    if s == 0:
        return D(0)
    exit_qty = min(q, abs(p)) if (p > 0 > s or p < 0 < s) else D(0)
    if case.signal.direction is Direction.NEUTRAL or case.signal.reduce_only:
        return exit_qty
    return exit_qty + ((q - exit_qty) * case.config.size_scale).to_integral_value(ROUND_FLOOR)


def leverage_cap(cfg: RiskConfig, account_type: AccountType) -> Decimal:
    return {
        AccountType.CASH: cfg.leverage_cap_cash,
        AccountType.MARGIN_INITIAL: cfg.leverage_cap_margin_initial,
        AccountType.MARGIN_EXPERIENCED: cfg.leverage_cap_margin_experienced,
    }[account_type]


def allowed(case: Case, x: Decimal) -> bool:
    """Would x shares on the signal's side leave every limit respected (or be a pure reduction)?"""
    v, cfg, sym = case.view, case.config, case.signal.symbol
    s = side_of(case)
    if v.halted or x < 1 or x > effective_request(case) or sym not in v.prices:
        return False
    price, equity = v.prices[sym], v.equity
    p, o = v.positions.get(sym, D(0)), v.open_orders.get(sym, D(0))
    others = [t for t in SYMBOLS if t != sym]
    sector = cfg.sectors.get(sym)
    loss_hit = (
        v.last_equity > 0 and (v.equity - v.last_equity) / v.last_equity <= -cfg.daily_loss_halt_fraction
    )
    pending_cost = D(0)
    for t in SYMBOLS:
        tp, to = v.positions.get(t, D(0)), v.open_orders.get(t, D(0))
        opened = abs(tp + to) - abs(tp) if (tp + to) * tp >= 0 else abs(tp + to)
        pending_cost += max(opened, D(0)) * v.prices.get(t, D(0))
    for base in {p, p + o}:
        new = base + s * x
        reducing = abs(new) <= abs(base) and new * base >= 0
        exposure = abs(new) * price
        opened = abs(new) if new * base < 0 or base == 0 else max(abs(new) - abs(base), D(0))
        if opened > 0 and opened * price > v.buying_power - pending_cost:
            return False
        if reducing:
            continue
        if loss_hit:
            return False
        scale = cfg.size_scale  # go-live: the limits themselves are scaled (spec 6, issue 17)
        if exposure > cfg.max_position_fraction * scale * equity:
            return False
        if sym in cfg.max_position_size and abs(new) > (cfg.max_position_size[sym] * scale).to_integral_value(
                rounding="ROUND_FLOOR"):
            return False
        if sector is None:
            return False
        same_sector = [t for t in others if cfg.sectors.get(t) == sector]
        row = v.correlations.get(sym, {})
        correlated = [t for t in others if row.get(t, -2.0) >= cfg.correlation_threshold]
        for group, fraction in (
            (same_sector, cfg.max_sector_fraction * scale),
            (correlated, cfg.max_correlated_fraction * scale),
            (others, leverage_cap(cfg, v.account_type)),
        ):
            if exposure + sum(worst(v, t) for t in group) > fraction * equity:
                return False
    side = Side.BUY if s > 0 else Side.SELL
    day_trade = sym in (v.sold_today if side is Side.BUY else v.bought_today)
    small = cfg.pdt_protection and equity < cfg.pdt_equity_threshold_usd
    return not (small and day_trade and (v.pattern_day_trader or v.day_trades_5d >= cfg.pdt_max_day_trades))


# --- properties ---------------------------------------------------------------------------------------------


@PROPS
@given(cases())
def test_no_approval_breaches_a_limit_and_resize_is_maximal(case: Case) -> None:
    d = RiskGuard(case.config).evaluate_signal(case.signal, case.view)
    assert d.requested_qty == case.signal.quantity
    if d.outcome is Outcome.REJECT:
        assert d.approved_qty == 0 and not d.passed and d.binding_rule is not None
        assert not allowed(case, D(1)), f"rejected but 1 share is fine: {d.binding_rule}"
        return
    assert d.passed and d.approved_qty >= 1
    assert d.side is (Side.BUY if side_of(case) > 0 else Side.SELL)
    assert allowed(case, d.approved_qty), f"approved {d.approved_qty} breaches a limit ({d.outcome})"
    assert not allowed(case, d.approved_qty + 1), "not the largest allowed quantity"
    if d.outcome is Outcome.PASS:
        assert d.approved_qty == d.requested_qty and d.binding_rule is None
    else:
        assert d.approved_qty < d.requested_qty and d.binding_rule in d.rules_evaluated


@QUICK
@given(cases(reducing_only=True))
def test_reducing_orders_pass(case: Case) -> None:
    d = RiskGuard(case.config).evaluate_signal(case.signal, case.view)
    assert d.outcome is Outcome.PASS, (d.binding_rule, d.reasons)
    assert d.approved_qty == case.signal.quantity


@QUICK
@given(cases())
def test_decision_is_deterministic_and_independent_of_dict_order(case: Case) -> None:
    v = case.view
    shuffled = msgspec.structs.replace(
        v,
        positions=dict(reversed(list(v.positions.items()))),
        prices=dict(reversed(list(v.prices.items()))),
        open_orders=dict(reversed(list(v.open_orders.items()))),
    )
    first = RiskGuard(case.config).evaluate_signal(case.signal, v)
    again = RiskGuard(case.config).evaluate_signal(case.signal, shuffled)
    assert msgspec.json.encode(first) == msgspec.json.encode(again)
