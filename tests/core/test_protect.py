"""on_halt = "protect": the config's one answer (halt_action), the halt machine's command order, and the pure
planning of protective stops (core.protect): exits only, on the right side of the market, whole shares."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.config import ConfigError, parse_config
from core.halt_fsm import (
    CancelAllOrders,
    HaltMachine,
    HaltState,
    LiquidateAll,
    ProtectPositions,
    SendAlert,
    SetHalted,
)
from core.model import BrokerOrder, OrderType, Position, Side, TimeInForce
from core.protect import covers, is_protective, protective_client_order_id, protective_stop, stop_price

D = Decimal


def test_halt_action_defaults_to_the_spec_and_keeps_the_legacy_key() -> None:
    assert parse_config("").risk.halt_action == "cancel_all"
    assert parse_config("[risk]\nliquidate_on_halt = true\n").risk.halt_action == "flatten"
    assert parse_config('[risk]\non_halt = "protect"\n').risk.halt_action == "protect"
    assert parse_config('[risk]\non_halt = "flatten"\nliquidate_on_halt = true\n').risk.halt_action == "flatten"


@pytest.mark.parametrize(("text", "needle"), [
    ('[risk]\non_halt = "protect"\nliquidate_on_halt = true\n', "risk.liquidate_on_halt"),
    ('[risk]\non_halt = "hedge"\n', "on_halt"),
    ('[risk]\nprotect_stop_pct = "0"\n', "risk.protect_stop_pct"),
    ('[risk]\nprotect_stop_pct = "75"\n', "risk.protect_stop_pct"),
])
def test_bad_halt_settings_fail_at_load(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_config(text, source="ttlive.toml")


def test_protect_runs_after_the_cancel_all_and_before_the_latch_record() -> None:
    out = HaltMachine(on_halt="protect").trip("manual", "drill", 10)
    assert [type(c) for c in out] == [CancelAllOrders, ProtectPositions, SetHalted, SendAlert]
    flatten = HaltMachine(on_halt="flatten").trip("manual", "drill", 10)
    assert [type(c) for c in flatten] == [CancelAllOrders, SetHalted, LiquidateAll, SendAlert]
    plain = HaltMachine().trip("manual", "drill", 10)
    assert [type(c) for c in plain] == [CancelAllOrders, SetHalted, SendAlert]


def test_a_restart_mid_halt_protects_again() -> None:
    machine = HaltMachine(on_halt="protect")
    machine.trip("daily_loss", "-3.2 %", 10)
    assert machine.state is HaltState.HALTING
    restored = HaltMachine.from_state(machine.to_state(), on_halt="protect")
    assert ProtectPositions() in restored.recovery_commands(20)


def test_unknown_on_halt_is_refused() -> None:
    with pytest.raises(ValueError, match="on_halt"):
        HaltMachine(on_halt="hedge")


def position(qty: str, entry: str, last: str | None) -> Position:
    return Position(symbol="NVDA", qty=D(qty), avg_entry_price=D(entry),
                    current_price=None if last is None else D(last))


@pytest.mark.parametrize(("qty", "entry", "last", "expected"), [
    ("100", "50", "60", D("49.00")),  # long in profit: below the entry
    ("100", "50", "40", D("39.20")),  # long under water: below the market, never above it
    ("-10", "50", "40", D("51.00")),  # short in profit: above the entry
    ("-10", "50", "60", D("61.20")),  # short under water: above the market
    ("100", "0.50", None, D("0.4900")),  # sub-dollar: four decimals
])
def test_the_stop_sits_beyond_the_worse_of_entry_and_market(qty: str, entry: str, last: str | None,
                                                           expected: Decimal) -> None:
    assert stop_price(position(qty, entry, last), D("0.02")) == expected


def test_a_protective_stop_is_an_exit_of_whole_shares() -> None:
    long = protective_stop(position("10.7", "50", "55"), D("0.02"), "k")
    assert (long.side, long.qty, long.type, long.time_in_force) == (Side.SELL, D(10), OrderType.STOP, TimeInForce.GTC)
    assert is_protective(long.client_order_id) and long.client_order_id == protective_client_order_id("k")
    short = protective_stop(position("-3", "50", "55"), D("0.02"), "k")
    assert (short.side, short.qty) == (Side.BUY, D(3))
    with pytest.raises(ValueError, match="less than one share"):
        protective_stop(position("0.5", "50", "55"), D("0.02"), "k")
    assert not is_protective("tt-abc-0") and not is_protective("desk-1-protect")


def stop(side: Side, qty: str, filled: str = "0") -> BrokerOrder:
    return BrokerOrder(id="o", client_order_id=protective_client_order_id("k"), symbol="NVDA", side=side,
                       qty=D(qty), filled_qty=D(filled), filled_avg_price=None, status="new", type=OrderType.STOP,
                       time_in_force=TimeInForce.GTC, stop_price=D(40))


def test_covers_needs_the_closing_side_and_the_whole_quantity() -> None:
    held = position("10", "50", "55")
    assert covers(held, [stop(Side.SELL, "10")])
    assert covers(held, [stop(Side.SELL, "6"), stop(Side.SELL, "4")])
    assert not covers(held, [stop(Side.SELL, "8")])  # the position grew since
    assert not covers(held, [stop(Side.BUY, "10")])
    assert not covers(held, [stop(Side.SELL, "10", filled="2")])
