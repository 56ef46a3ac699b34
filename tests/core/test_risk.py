"""Unit tests per RiskGuard rule: pass, resize, reject, reducing passes, configuration errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import pytest

from core import limits
from core.config import parse_config
from core.model import AccountType, Direction, ExecutionAction, Side, Signal
from core.risk import (
    DEFAULT_RULES,
    ActionTaken,
    Outcome,
    PortfolioView,
    RiskConfig,
    RiskGuard,
    UnknownSectorError,
    loss_limit_reached,
    max_shares_within,
    rolling_correlations,
    utilisation_pct,
    would_be_day_trade,
)

D = Decimal
SECTORS = {"AAA": "tech", "BBB": "tech", "CCC": "energy", "DDD": "energy", "EEE": "health"}
CONFIG = RiskConfig(size_scale=D(1), sectors=SECTORS)


def view(**overrides: Any) -> PortfolioView:
    """Equity 100k, price 100 everywhere: 5% position = 50 sh, 25% sector = 250 sh, 40% group = 400 sh."""
    fields: dict[str, Any] = {
        "equity": D(100_000),
        "last_equity": D(100_000),
        "week_start_equity": D(100_000),
        "cash": D(100_000),
        "buying_power": D(100_000),
        "account_type": AccountType.MARGIN_INITIAL,
        "prices": {s: D(100) for s in SECTORS},
    }
    fields.update(overrides)
    return PortfolioView(**fields)


def signal(
    symbol: str = "AAA", direction: Direction = Direction.LONG, qty: int | str = 10, **kw: Any
) -> Signal:
    return Signal(
        signal_id="sig-1",
        model_id="m",
        symbol=symbol,
        direction=direction,
        quantity=D(qty),
        action=kw.pop("action", ExecutionAction.MARKET),
        ts_ns=0,
        **kw,
    )


def decide(sig: Signal, v: PortfolioView, config: RiskConfig = CONFIG) -> Any:
    return RiskGuard(config).evaluate_signal(sig, v)


# --- configuration ---------------------------------------------------------------------------------------


def test_config_defaults_come_from_limits() -> None:
    c = RiskConfig()
    assert c.max_position_fraction == limits.MAX_POSITION_FRACTION
    assert c.max_sector_fraction == limits.MAX_SECTOR_FRACTION
    assert c.max_correlated_fraction == limits.MAX_CORRELATED_FRACTION
    assert c.correlation_threshold == limits.CORRELATION_THRESHOLD
    assert c.daily_loss_halt_fraction == limits.DAILY_LOSS_HALT_FRACTION
    assert c.leverage_cap(AccountType.CASH) == limits.LEVERAGE_CAP_CASH
    assert c.leverage_cap(AccountType.MARGIN_INITIAL) == limits.LEVERAGE_CAP_MARGIN_INITIAL
    assert c.leverage_cap(AccountType.MARGIN_EXPERIENCED) == limits.LEVERAGE_CAP_MARGIN_EXPERIENCED
    assert c.pdt_equity_threshold_usd == limits.PDT_EQUITY_THRESHOLD_USD
    assert c.pdt_max_day_trades == limits.PDT_MAX_DAY_TRADES


def test_validate_sectors_names_every_missing_symbol() -> None:
    with pytest.raises(UnknownSectorError, match="ZZZ, ZZZ2"):
        CONFIG.validate_sectors(["AAA", "ZZZ2", "ZZZ"])
    CONFIG.validate_sectors(SECTORS)  # complete map: no error
    with pytest.raises(UnknownSectorError, match="EMPTY"):
        RiskConfig(sectors={"EMPTY": ""}).validate_sectors(["EMPTY"])


@pytest.mark.parametrize(
    "field, value",
    [
        ("max_position_fraction", "0"),
        ("max_sector_fraction", "1.5"),
        ("size_scale", "0"),
        ("size_scale", "2"),
    ],
)
def test_config_rejects_out_of_range_values(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=field):
        RiskConfig(**{field: D(value)})


def test_config_converts_from_toml_like_dict_and_refuses_unknown_keys() -> None:
    c = msgspec.convert({"size_scale": "0.25", "max_position_size": {"AAA": "20"}}, RiskConfig)
    assert c.size_scale == D("0.25") and c.max_position_size == {"AAA": D(20)}
    with pytest.raises(msgspec.ValidationError, match="nonsense"):
        msgspec.convert({"nonsense": 1}, RiskConfig)


def test_from_engine_config_maps_percentages_sectors_and_share_caps() -> None:
    text = """
[[instruments]]
symbol = "AAA"
sector = "tech"
max_position_size = 30
[[instruments]]
symbol = "CCC"
sector = "energy"
[risk]
max_position_pct = "4"
size_scale = "0.25"
daily_loss_halt_pct = "2.5"
"""
    c = RiskConfig.from_engine_config(parse_config(text))
    assert c.max_position_fraction == D("0.04")
    assert c.daily_loss_halt_fraction == D("0.025")
    assert c.max_sector_fraction == limits.MAX_SECTOR_FRACTION
    assert c.size_scale == D("0.25")
    assert c.sectors == {"AAA": "tech", "CCC": "energy"}
    assert c.max_position_size == {"AAA": D(30)}


def test_view_requires_a_mark_for_every_held_or_pending_symbol() -> None:
    with pytest.raises(ValueError, match="ZZZ"):
        view(positions={"ZZZ": D(5)})
    with pytest.raises(ValueError, match="ZZZ"):
        view(open_orders={"ZZZ": D(-5)})
    view(positions={"ZZZ": D(0)})  # flat: no mark needed


def test_fractional_or_negative_signal_quantity_is_a_programmer_error() -> None:
    with pytest.raises(ValueError, match="whole shares"):
        decide(signal(qty="1.5"), view())
    with pytest.raises(ValueError, match="whole shares"):
        decide(signal(qty=-1), view())


# --- decision shape ---------------------------------------------------------------------------------------


def test_pass_decision_and_audit_shape() -> None:
    d = decide(signal(qty=10), view())
    assert d.outcome is Outcome.PASS and d.passed
    assert d.approved_qty == d.requested_qty == D(10)
    assert d.side is Side.BUY
    assert d.binding_rule is None
    assert d.rules_evaluated == tuple(r.id for r in DEFAULT_RULES)
    assert set(d.reasons) == set(d.rules_evaluated)
    assert d.to_audit() == {
        "passed": True,
        "rules_evaluated": list(d.rules_evaluated),
        "action_taken": "pass",
    }
    assert b'"outcome":"pass"' in msgspec.json.encode(d)


def test_cancel_always_passes_even_when_halted() -> None:
    d = decide(signal(qty=0, action=ExecutionAction.CANCEL, cancel_order_id="o-1"), view(halted=True))
    assert d.outcome is Outcome.PASS and d.rules_evaluated == () and d.side is None


# --- halted -----------------------------------------------------------------------------------------------


def test_halted_rejects_everything_including_reducing() -> None:
    d = decide(signal(direction=Direction.SHORT, qty=10), view(halted=True, positions={"AAA": D(20)}))
    assert d.outcome is Outcome.REJECT and not d.passed
    assert d.binding_rule == "halted" and d.action_taken is ActionTaken.HALT
    assert d.approved_qty == 0
    assert d.rules_evaluated == ("halted",)
    assert d.to_audit()["action_taken"] == "halt"


# --- size_scale and flatten -------------------------------------------------------------------------------


def test_size_scale_scales_the_open_part_only() -> None:
    quarter = RiskConfig(size_scale=D("0.25"), sectors=SECTORS)
    d = decide(signal(qty=40), view(), quarter)
    assert (d.outcome, d.approved_qty, d.binding_rule) == (Outcome.RESIZE, D(10), "size_scale")
    # long 20, sell 60: the 20-share exit is not scaled, the 40-share new short is scaled to 10
    d = decide(signal(direction=Direction.SHORT, qty=60), view(positions={"AAA": D(20)}), quarter)
    assert d.approved_qty == D(30) and d.side is Side.SELL
    # a pure exit is never scaled
    d = decide(signal(direction=Direction.SHORT, qty=20), view(positions={"AAA": D(20)}), quarter)
    assert d.outcome is Outcome.PASS and d.approved_qty == D(20)
    # 3 shares x 0.25 rounds down to nothing
    d = decide(signal(qty=3), view(), quarter)
    assert d.outcome is Outcome.REJECT and d.binding_rule == "size_scale"
    assert d.action_taken is ActionTaken.REJECT


def test_zero_quantity_is_rejected_not_passed() -> None:
    d = decide(signal(qty=0), view())
    assert d.outcome is Outcome.REJECT and d.binding_rule == "size_scale"


def test_neutral_flattens_toward_zero_and_is_reducing() -> None:
    over_limit = view(positions={"AAA": D(-80)}, equity=D(90_000))  # short 80 x 100 = 8.9% > 5%: over
    d = decide(signal(direction=Direction.NEUTRAL, qty=80), over_limit)
    assert d.outcome is Outcome.PASS and d.side is Side.BUY and d.approved_qty == D(80)
    d = decide(signal(direction=Direction.NEUTRAL, qty=500), over_limit)
    assert (d.outcome, d.approved_qty, d.binding_rule) == (Outcome.RESIZE, D(80), "size_scale")
    d = decide(signal(direction=Direction.NEUTRAL, qty=10), view())
    assert d.outcome is Outcome.REJECT and d.side is None


def test_reduce_only_never_crosses_zero() -> None:
    d = decide(signal(direction=Direction.SHORT, qty=50, reduce_only=True), view(positions={"AAA": D(20)}))
    assert (d.outcome, d.approved_qty) == (Outcome.RESIZE, D(20))
    d = decide(signal(direction=Direction.LONG, qty=5, reduce_only=True), view(positions={"AAA": D(20)}))
    assert d.outcome is Outcome.REJECT


# --- mark price -------------------------------------------------------------------------------------------


def test_missing_mark_rejects_a_new_symbol() -> None:
    d = decide(signal(symbol="EEE"), view(prices={"AAA": D(100)}))
    assert d.outcome is Outcome.REJECT and d.binding_rule == "mark_price"


# --- position_limit ----------------------------------------------------------------------------------------


def test_go_live_size_scale_caps_the_position_not_just_each_order() -> None:
    """Spec 6 go-live at 25 %: the 5 % position limit (50 sh here) becomes 12 sh. A policy that aims at a target
    and asks again and again gets no shares past the scaled cap; a position already beyond it may only shrink."""
    quarter = RiskConfig(size_scale=D("0.25"), sectors=SECTORS)
    held = 0
    for _ in range(10):  # the policy re-buys toward its target every decision
        d = decide(signal(qty=40), view(positions={"AAA": D(held)}), quarter)
        held += int(d.approved_qty) if d.passed else 0
    assert held == 12
    d = decide(signal(qty=4), view(positions={"AAA": D(12)}), quarter)
    assert (d.outcome, d.binding_rule) == (Outcome.REJECT, "position_limit")
    d = decide(signal(qty=4), view(positions={"AAA": D(40)}), quarter)  # 3.2x the go-live size, from before
    assert (d.outcome, d.binding_rule) == (Outcome.REJECT, "position_limit")
    d = decide(signal(direction=Direction.SHORT, qty=28), view(positions={"AAA": D(40)}), quarter)
    assert d.outcome is Outcome.PASS and d.approved_qty == D(28)  # exits are never limited
    capped = RiskConfig(size_scale=D("0.25"), sectors=SECTORS, max_position_size={"AAA": D(20)})
    d = decide(signal(qty=8), view(positions={"AAA": D(4)}), capped)  # share cap 20 x 0.25 = 5
    assert d.approved_qty == D(1)
    used = utilisation_pct(view(positions={"AAA": D(12)}), quarter)
    assert used["position_limit"] == D(12 * 100) / (D("0.0125") * D(100_000)) * 100  # 96 % of the go-live cap


def test_position_limit_pass_resize_reject_and_reduce() -> None:
    assert decide(signal(qty=50), view()).outcome is Outcome.PASS  # exactly 5%: allowed
    d = decide(signal(qty=60), view())
    assert (d.outcome, d.approved_qty, d.binding_rule) == (Outcome.RESIZE, D(50), "position_limit")
    assert d.action_taken is ActionTaken.RESIZE
    d = decide(signal(qty=1), view(positions={"AAA": D(50)}))
    assert (d.outcome, d.binding_rule) == (Outcome.REJECT, "position_limit")
    # price rose: 80 sh is now over the limit, selling 10 still passes
    d = decide(signal(direction=Direction.SHORT, qty=10), view(positions={"AAA": D(80)}))
    assert d.outcome is Outcome.PASS


def test_crossing_order_is_reduce_plus_checked_open() -> None:
    # long 30, sell 100: 30 reduce + 70 new short; the short may only be 50 -> 80
    d = decide(signal(direction=Direction.SHORT, qty=100), view(positions={"AAA": D(30)}))
    assert (d.outcome, d.approved_qty, d.binding_rule) == (Outcome.RESIZE, D(80), "position_limit")


def test_position_limit_respects_per_symbol_share_cap() -> None:
    capped = RiskConfig(size_scale=D(1), sectors=SECTORS, max_position_size={"AAA": D(20)})
    d = decide(signal(qty=30), view(), capped)
    assert (d.approved_qty, d.binding_rule) == (D(20), "position_limit")


def test_pending_buys_count_toward_the_limit() -> None:
    d = decide(signal(qty=40), view(open_orders={"AAA": D(30)}))
    assert (d.approved_qty, d.binding_rule) == (D(20), "position_limit")


def test_pending_exit_is_not_credited_to_a_new_sell() -> None:
    # long 50 with a pending sell 50: if it fills, another sell 80 opens a short of 80 > 50
    d = decide(
        signal(direction=Direction.SHORT, qty=80), view(positions={"AAA": D(50)}, open_orders={"AAA": D(-50)})
    )
    assert (d.approved_qty, d.binding_rule) == (D(50), "position_limit")


# --- sector_exposure ---------------------------------------------------------------------------------------


def test_sector_exposure_counts_other_symbols_in_the_sector() -> None:
    v = view(positions={"BBB": D(240)}, prices={**view().prices, "BBB": D(100)})  # tech 24,000 of 25,000
    d = decide(signal(qty=30), v)
    assert (d.outcome, d.approved_qty, d.binding_rule) == (Outcome.RESIZE, D(10), "sector_exposure")
    assert decide(signal(symbol="CCC", qty=30), v).outcome is Outcome.PASS  # other sector unaffected


def test_sector_exposure_counts_shorts_and_pending() -> None:
    v = view(positions={"BBB": D(-200)}, open_orders={"BBB": D(-50)})  # worst case 250 sh = 25,000: full
    d = decide(signal(qty=5), v)
    assert (d.outcome, d.binding_rule) == (Outcome.REJECT, "sector_exposure")
    assert decide(signal(symbol="BBB", direction=Direction.LONG, qty=100), v).outcome is Outcome.PASS


def test_unknown_sector_allows_only_reducing() -> None:
    v = view(prices={**view().prices, "NEW": D(10)}, positions={"NEW": D(5)})
    d = decide(signal(symbol="NEW", qty=1), v)
    assert (d.outcome, d.binding_rule) == (Outcome.REJECT, "sector_exposure")
    assert "no sector" in d.reasons["sector_exposure"]
    assert decide(signal(symbol="NEW", direction=Direction.SHORT, qty=5), v).outcome is Outcome.PASS


# --- correlated_exposure -----------------------------------------------------------------------------------


def corr(value: float) -> dict[str, dict[str, float]]:
    return {"AAA": {"CCC": value}, "CCC": {"AAA": value}}


def test_correlated_exposure_resize_and_threshold_boundary() -> None:
    held = {"CCC": D(390)}  # 39,000 of the 40,000 group limit (its sector, energy, is another matter)
    lenient = RiskConfig(size_scale=D(1), sectors=SECTORS, max_sector_fraction=D("0.5"))
    d = decide(signal(qty=30), view(positions=held, correlations=corr(0.7)), lenient)  # == threshold: counts
    assert (d.outcome, d.approved_qty, d.binding_rule) == (Outcome.RESIZE, D(10), "correlated_exposure")
    d = decide(signal(qty=30), view(positions=held, correlations=corr(0.69)), lenient)
    assert d.outcome is Outcome.PASS
    d = decide(signal(qty=30), view(positions=held), lenient)  # no correlation data: uncorrelated
    assert d.outcome is Outcome.PASS


def test_correlated_exposure_never_blocks_reducing() -> None:
    lenient = RiskConfig(size_scale=D(1), sectors=SECTORS, max_sector_fraction=D("0.5"))
    v = view(positions={"CCC": D(450), "AAA": D(40)}, correlations=corr(0.9))
    assert decide(signal(qty=1), v, lenient).binding_rule == "correlated_exposure"
    assert decide(signal(direction=Direction.SHORT, qty=40), v, lenient).outcome is Outcome.PASS


# --- daily_loss -------------------------------------------------------------------------------------------


def test_daily_loss_at_exactly_three_percent_halts_new_risk() -> None:
    v = view(equity=D(97_000), last_equity=D(100_000), positions={"AAA": D(20)})
    d = decide(signal(qty=1), v)
    assert (d.outcome, d.binding_rule, d.action_taken) == (Outcome.REJECT, "daily_loss", ActionTaken.HALT)
    assert d.to_audit() == {
        "passed": False,
        "rules_evaluated": list(d.rules_evaluated),
        "action_taken": "halt",
    }
    # reducing passes; a crossing order is cut to its reducing part
    assert decide(signal(direction=Direction.SHORT, qty=20), v).outcome is Outcome.PASS
    d = decide(signal(direction=Direction.SHORT, qty=30), v)
    assert (d.outcome, d.approved_qty, d.binding_rule) == (Outcome.RESIZE, D(20), "daily_loss")
    # just above the limit: normal trading
    assert decide(signal(qty=1), view(equity=D("97000.01"), last_equity=D(100_000))).outcome is Outcome.PASS


def test_loss_limit_reached_boundaries() -> None:
    f = limits.DAILY_LOSS_HALT_FRACTION
    assert loss_limit_reached(D(97), D(100), f)
    assert not loss_limit_reached(D("97.01"), D(100), f)
    assert not loss_limit_reached(D(50), D(0), f)


# --- leverage ----------------------------------------------------------------------------------------------


def test_leverage_cap_by_account_type() -> None:
    # 95,000 gross already in other names (all in different sectors, under each sector cap)
    book = {"BBB": D(240), "CCC": D(240), "DDD": D(0), "EEE": D(240)}
    prices = {s: D(100) for s in SECTORS} | {"CCC": D(100), "EEE": D(200)}
    lenient = RiskConfig(
        size_scale=D(1), sectors=SECTORS, max_sector_fraction=D(1), max_correlated_fraction=D(1)
    )
    v = view(positions=book, prices=prices, account_type=AccountType.CASH)  # gross 24k+24k+48k = 96k
    d = decide(signal(qty=50), v, lenient)
    assert (d.outcome, d.approved_qty, d.binding_rule) == (Outcome.RESIZE, D(40), "leverage")
    v2 = view(
        positions=book, prices=prices, account_type=AccountType.MARGIN_EXPERIENCED, buying_power=D(200_000)
    )
    assert decide(signal(qty=50), v2, lenient).outcome is Outcome.PASS
    # reducing a name while over the cap passes
    assert (
        decide(signal(symbol="EEE", direction=Direction.SHORT, qty=240), v, lenient).outcome is Outcome.PASS
    )


# --- buying_power ------------------------------------------------------------------------------------------


def test_buying_power_limits_the_open_part_and_pending_opens_consume_it() -> None:
    d = decide(signal(qty=40), view(buying_power=D(1_050)))
    assert (d.approved_qty, d.binding_rule) == (D(10), "buying_power")
    d = decide(signal(qty=40), view(buying_power=D(3_000), open_orders={"CCC": D(25)}))  # 2,500 pending
    assert (d.approved_qty, d.binding_rule) == (D(5), "buying_power")
    d = decide(signal(direction=Direction.SHORT, qty=30), view(buying_power=D(0), positions={"AAA": D(30)}))
    assert d.outcome is Outcome.PASS  # selling a long costs nothing


# --- pdt ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "equity, day_trades, flagged, protection, expected",
    [
        ("20000", 3, False, True, Outcome.REJECT),  # would be the 4th
        ("20000", 2, False, True, Outcome.PASS),  # the 3rd is allowed
        ("25000", 3, False, True, Outcome.PASS),  # at the threshold: not a small account
        ("20000", 3, False, False, Outcome.PASS),  # protection off
        ("20000", 0, True, True, Outcome.REJECT),  # flagged PDT under 25k: no day trades at all
    ],
)
def test_pdt_blocks_the_fourth_day_trade(
    equity: str, day_trades: int, flagged: bool, protection: bool, expected: Outcome
) -> None:
    cfg = RiskConfig(size_scale=D(1), sectors=SECTORS, pdt_protection=protection)
    v = view(
        equity=D(equity),
        last_equity=D(equity),
        buying_power=D(equity),
        positions={"AAA": D(5)},
        bought_today=frozenset({"AAA"}),
        day_trades_5d=day_trades,
        pattern_day_trader=flagged,
    )
    d = decide(signal(direction=Direction.SHORT, qty=5), v, cfg)  # selling what was bought today
    assert d.outcome is expected
    if expected is Outcome.REJECT:
        assert d.binding_rule == "pdt" and d.action_taken is ActionTaken.REJECT


def test_would_be_day_trade_means_opposite_side_today() -> None:
    bought, sold = frozenset({"AAA"}), frozenset({"CCC"})
    assert would_be_day_trade(Side.SELL, "AAA", bought, sold)
    assert not would_be_day_trade(Side.BUY, "AAA", bought, sold)
    assert would_be_day_trade(Side.BUY, "CCC", bought, sold)
    assert not would_be_day_trade(Side.SELL, "DDD", bought, sold)


# --- helpers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "budget, price, expected",
    [("1000", "100", 10), ("999.99", "100", 9), ("-5", "10", 0), ("5", "10", 0), ("0.3", "0.1", 3)],
)
def test_max_shares_within_is_exact(budget: str, price: str, expected: int) -> None:
    n = max_shares_within(D(budget), D(price))
    assert n == expected
    assert n * D(price) <= max(D(budget), D(0)) < (n + 1) * D(price)


def test_rolling_correlations_matches_numpy_and_skips_short_or_flat_series() -> None:
    rng = np.random.default_rng(7)
    base = rng.normal(0, 0.01, 80)
    returns = {
        "AAA": list(base),
        "BBB": list(base * 2 + rng.normal(0, 0.001, 80)),
        "CCC": list(-base),
        "FLAT": [0.001] * 80,
        "SHORT": list(base[-10:]),
    }
    out = rolling_correlations(returns, window=60)
    expected = float(np.corrcoef(base[-60:], np.asarray(returns["BBB"][-60:]))[0, 1])
    assert out["AAA"]["BBB"] == pytest.approx(expected, abs=1e-12)
    assert out["BBB"]["AAA"] == out["AAA"]["BBB"]
    assert out["AAA"]["CCC"] == pytest.approx(-1.0)
    assert "FLAT" not in out["AAA"] and out["FLAT"] == {}
    assert "SHORT" not in out["AAA"]
    assert "SHORT" in rolling_correlations(returns, window=60, min_periods=10)["AAA"]
    # only the window counts: a different distant past changes nothing
    shifted = dict(returns, AAA=[9.9] * 20 + list(base[20:]))
    assert rolling_correlations(shifted, window=60)["AAA"]["BBB"] == out["AAA"]["BBB"]
    with pytest.raises(ValueError):
        rolling_correlations(returns, window=1)


def test_utilisation_reports_the_most_loaded_position_and_the_daily_loss() -> None:
    v = view(positions={"AAA": D(25), "BBB": D(10)}, equity=D(100_000), last_equity=D(101_500))
    u = utilisation_pct(v, CONFIG)
    assert u["position_limit"] == D(50)  # 2,500 of 5,000
    assert u["sector_exposure"] == D(14)  # 3,500 of 25,000
    assert u["leverage"] == D("3.5")
    assert u["daily_loss"].quantize(D("0.01")) == D("49.26")  # 1,500 / 101,500 of 3%
