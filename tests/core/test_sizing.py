"""Fractional and notional sizing end to end through the pure core: the policy's target weight becomes a
9-decimal quantity (orderplan), RiskGuard approves in the symbol's step, the ledger and the order machine
carry it exactly, a notional order's shares are the venue's to decide; trailing-stop protective exits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.config import ConfigError, InstrumentConfig, parse_config
from core.fsm_errors import VenueProtocolError
from core.ledger import Ledger
from core.model import (
    AccountType,
    Direction,
    ExecutionAction,
    Fill,
    OrderClass,
    OrderType,
    Quote,
    Side,
    Signal,
    TimeInForce,
)
from core.order_fsm import Order, OrderEvent, OrderState
from core.orderplan import (
    FRACTION_QUANTUM,
    PlanConfig,
    PlanError,
    plan_order,
    quantity_steps,
    size_for_value,
    trailing_exit,
)
from core.risk import Outcome, PortfolioView, RiskConfig, RiskGuard

D = Decimal
QUOTE = Quote(symbol="NVDA", bid_price=D("99.98"), ask_price=D("100.02"), bid_size=D(300), ask_size=D(200), ts_ns=0)
FRACTIONAL = PlanConfig(sizing="fractional", quantity_steps={"NVDA": FRACTION_QUANTUM})
NOTIONAL = PlanConfig(sizing="notional", quantity_steps={"NVDA": FRACTION_QUANTUM})


def _plan(config: PlanConfig, qty: str, *, action: ExecutionAction = ExecutionAction.LIMIT_PASSIVE,
          direction: Direction = Direction.LONG, pos: str = "0") -> object:
    return plan_order(signal_id="s1", attempt=0, symbol="NVDA", direction=direction, qty=D(qty), action=action,
                      quote=QUOTE, position_qty=D(pos), config=config)


def test_target_weight_becomes_a_fractional_quantity_rounded_down_exactly() -> None:
    assert size_for_value(D("12.3456789012345"), D("100"), FRACTION_QUANTUM) == D("0.123456789")
    assert size_for_value(D("12.3456789012345"), D("100"), D(1)) == 0
    assert size_for_value(D("1000"), D("3"), FRACTION_QUANTUM) == D("333.333333333")


def test_config_steps_fractional_only_where_the_asset_allows() -> None:
    config = parse_config('[execution]\nsizing = "fractional"\n')
    assert quantity_steps(config) == {s: FRACTION_QUANTUM for s in config.symbols}
    whole = parse_config("")
    assert quantity_steps(whole) == {}
    mixed = parse_config('[execution]\nsizing = "notional"\n[[instruments]]\nsymbol = "NVDA"\nsector = "x"\n'
                         '[[instruments]]\nsymbol = "ORCL"\nsector = "y"\nfractionable = false\n')
    assert quantity_steps(mixed) == {"NVDA": FRACTION_QUANTUM}
    assert mixed.instruments[1] == InstrumentConfig(symbol="ORCL", sector="y", fractionable=False)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[execution]\nsizing = "shares"\n', "execution.sizing"),
        ('[execution]\nprotective_exit = "hope"\n', "execution.protective_exit"),
        ('[execution]\ntrail_percent = "90"\n', "execution.trail_percent"),
        ("[execution]\ntrail_percent = 2\n", "execution.trail_percent"),
    ],
)
def test_bad_sizing_and_exit_keys_name_the_key_and_line(text: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"{key}.*\(line 2\)"):
        parse_config(text, source="engine.toml")


def test_fractional_quantity_goes_as_a_simple_market_day_order_without_bracket() -> None:
    req = _plan(FRACTIONAL, "0.123456789")
    assert req.qty == D("0.123456789") and req.notional is None  # type: ignore[attr-defined]
    assert (req.type, req.time_in_force, req.order_class) == (  # type: ignore[attr-defined]
        OrderType.MARKET, TimeInForce.DAY, OrderClass.SIMPLE)
    whole = _plan(FRACTIONAL, "12")  # a whole quantity keeps the action's shape and its bracket
    assert whole.type is OrderType.LIMIT and whole.order_class is OrderClass.BRACKET  # type: ignore


def test_notional_entry_sends_dollars_and_a_reducing_order_sends_shares() -> None:
    req = _plan(NOTIONAL, "2.5")
    assert req.notional == D("250.05") and req.type is OrderType.MARKET  # type: ignore[attr-defined]  # 2.5 x 100.02
    exit_ = _plan(NOTIONAL, "0.123456789", direction=Direction.NEUTRAL, pos="0.123456789")
    assert exit_.notional is None and exit_.qty == D("0.123456789")  # type: ignore[attr-defined]


def test_orders_under_one_dollar_are_not_planned() -> None:
    with pytest.raises(PlanError, match=r"\$1"):
        _plan(FRACTIONAL, "0.001")
    with pytest.raises(PlanError, match=r"\$1"):
        _plan(NOTIONAL, "0.009")


def _view(**kw: object) -> PortfolioView:
    base: dict[str, object] = dict(equity=D(100_000), last_equity=D(100_000), week_start_equity=D(100_000),
                                   cash=D(100_000), buying_power=D(100_000), account_type=AccountType.MARGIN_INITIAL,
                                   prices={"NVDA": D("100")})
    return PortfolioView(**{**base, **kw})  # type: ignore[arg-type]


def _signal(qty: str, direction: Direction = Direction.LONG) -> Signal:
    return Signal(signal_id="sig", model_id="m", symbol="NVDA", direction=direction, quantity=D(qty),
                  action=ExecutionAction.MARKET, ts_ns=0)


def test_risk_guard_approves_and_resizes_in_the_fractional_step() -> None:
    guard = RiskGuard(RiskConfig(sectors={"NVDA": "semis"}, quantity_steps={"NVDA": FRACTION_QUANTUM}))
    ok = guard.evaluate_signal(_signal("0.123456789"), _view())
    assert ok.outcome is Outcome.PASS and ok.approved_qty == D("0.123456789")
    # 5% of 100k at $100 is 50 shares; 7 cents of buying power buy 0.0007 shares exactly
    big = guard.evaluate_signal(_signal("250.5"), _view())
    assert big.outcome is Outcome.RESIZE and big.approved_qty == D(50)
    tight = guard.evaluate_signal(_signal("5"), _view(buying_power=D("0.07")))
    assert tight.approved_qty == D("0.0007") and tight.binding_rule == "buying_power"
    with pytest.raises(ValueError, match="steps of"):
        guard.evaluate_signal(_signal("0.1234567891"), _view())
    whole = RiskGuard(RiskConfig(sectors={"NVDA": "semis"}))
    with pytest.raises(ValueError, match="whole shares"):
        whole.evaluate_signal(_signal("0.5"), _view())


def test_ledger_books_fractional_fills_exactly() -> None:
    ledger = Ledger(cash_usd=D(1000))
    for i, (side, qty) in enumerate([(Side.BUY, "0.123456789"), (Side.BUY, "1.000000001"), (Side.SELL, "1.1")]):
        ledger.apply_fill(Fill(execution_id=f"e{i}", order_id="o", client_order_id="c", symbol="NVDA",
                               side=side, qty=D(qty), price=D("100.01"), ts_ns=i))
    assert ledger.position_qty("NVDA") == D("0.023456790")
    assert ledger.cash_usd == D(1000) - D("0.023456790") * D("100.01")
    assert Ledger.from_dict(ledger.to_dict()).position_qty("NVDA") == D("0.023456790")


def test_notional_order_machine_takes_the_venues_share_quantity() -> None:
    order = Order(order_id="o", client_order_id="c", symbol="NVDA", side=Side.BUY, qty=D("2.5"), notional=D("250"))
    order.apply(OrderEvent.RISK_APPROVED)
    order.apply(OrderEvent.SUBMIT_SENT)
    order.apply(OrderEvent.NEW, venue_order_id="v", venue_filled_qty=D(0))
    # the price fell: the $250 bought more than the estimate, and the venue says it is complete
    applied = order.apply_fill("x1", D("2.512562814"), D("99.50"), cum_qty=D("2.512562814"),
                               final_qty=D("2.512562814"))
    assert applied.state_after is OrderState.FILLED and order.qty == D("2.512562814") and order.leaves_qty == 0
    short = Order(order_id="p", client_order_id="d", symbol="NVDA", side=Side.BUY, qty=D("2.5"), notional=D("250"))
    for event in (OrderEvent.RISK_APPROVED, OrderEvent.SUBMIT_SENT):
        short.apply(event)
    assert short.apply_fill("y", D("2.4"), D("104"), final_qty=D("2.4")).state_after is OrderState.FILLED
    with pytest.raises(VenueProtocolError):  # a whole-share order still refuses an overfill
        Order(order_id="q", client_order_id="e", symbol="NVDA", side=Side.BUY, qty=D(2),
              state=OrderState.NEW).apply_fill("z", D("2.1"), D(100))


def test_trailing_exit_protects_whole_shares_on_the_other_side() -> None:
    config = PlanConfig(protective_exit="trailing_stop", trail_percent=D("2.5"))
    req = trailing_exit(entry_client_order_id="tt-x-0", symbol="NVDA", entry_side=Side.BUY, qty=D(7), config=config)
    assert (req.side, req.type, req.time_in_force, req.trail_percent, req.qty) == (
        Side.SELL, OrderType.TRAILING_STOP, TimeInForce.GTC, D("2.5"), D(7))
    assert req.client_order_id == "tt-x-0-ts"
    with pytest.raises(PlanError, match="whole shares"):
        trailing_exit(entry_client_order_id="tt-x-0", symbol="NVDA", entry_side=Side.BUY, qty=D("0.5"),
                      config=config)
    entry = _plan(config, "10", action=ExecutionAction.MARKET)
    assert entry.order_class is OrderClass.SIMPLE and entry.bracket is None  # type: ignore[attr-defined]


def test_a_short_opens_in_whole_shares_even_under_fractional_sizing() -> None:
    short = _plan(FRACTIONAL, "3.75", action=ExecutionAction.MARKET, direction=Direction.SHORT)
    assert short.side is Side.SELL and short.qty == D(3) and short.notional is None  # type: ignore[attr-defined]
    assert _plan(NOTIONAL, "3.75", action=ExecutionAction.MARKET, direction=Direction.SHORT).qty == D(3)  # type: ignore
    with pytest.raises(PlanError):
        _plan(FRACTIONAL, "0.5", action=ExecutionAction.MARKET, direction=Direction.SHORT)
