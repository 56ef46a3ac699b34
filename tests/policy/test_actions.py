"""The action table and plan_target: what each action asks for, given the position and the working order."""

from __future__ import annotations

import pytest

from adapters.policy.actions import (
    ACTION_TABLE,
    N_ACTIONS,
    NO_OP,
    REBALANCE_DEADBAND_FRACTION,
    OrderIntent,
    PolicyAction,
    action_id_for,
    decode_action,
    plan_target,
)
from core.model import Direction, ExecutionAction

LONG_HALF_MKT = PolicyAction(Direction.LONG, 0.5, ExecutionAction.MARKET)
FLAT_PASSIVE = PolicyAction(Direction.NEUTRAL, 0.0, ExecutionAction.LIMIT_PASSIVE)
CANCEL = PolicyAction(Direction.NEUTRAL, 0.0, ExecutionAction.CANCEL)


def test_table_is_small_unique_and_round_trips() -> None:
    assert N_ACTIONS == 13 == len(set(ACTION_TABLE))
    for i, action in enumerate(ACTION_TABLE):
        direction, size, execution = decode_action(i)  # the runtime's tuple contract
        assert (direction, size, execution) == action
        assert action_id_for(direction, size, execution) == i
        assert PolicyAction.from_json(action.to_json()) == action
    assert sum(a.is_cancel for a in ACTION_TABLE) == 1
    assert {a.direction for a in ACTION_TABLE} == {Direction.LONG, Direction.NEUTRAL}  # long-only table
    with pytest.raises(ValueError):
        decode_action(N_ACTIONS)


@pytest.mark.parametrize(
    ("action", "position", "working", "expected"),
    [
        # from flat: buy the target
        (LONG_HALF_MKT, 0.0, 0.0, OrderIntent(False, Direction.LONG, 0.5, ExecutionAction.MARKET)),
        # target already held (within the deadband): hold, even if prices drifted a little
        (LONG_HALF_MKT, 0.5, 0.0, NO_OP),
        (LONG_HALF_MKT, 0.5 + REBALANCE_DEADBAND_FRACTION / 2, 0.0, NO_OP),
        # above target: sell the difference
        (LONG_HALF_MKT, 1.0, 0.0, OrderIntent(False, Direction.SHORT, 0.5, ExecutionAction.MARKET)),
        # a working buy already covers the target: leave it working
        (LONG_HALF_MKT, 0.0, 0.5, NO_OP),
        # a working order for another target is replaced
        (LONG_HALF_MKT, 0.0, 1.0, OrderIntent(True, Direction.LONG, 0.5, ExecutionAction.MARKET)),
        # position already at target but a stray working order remains: cancel it only
        (LONG_HALF_MKT, 0.5, 0.3, OrderIntent(cancel_working=True)),
        # flat target flattens the whole position (core.orderplan's NEUTRAL)
        (FLAT_PASSIVE, 0.8, 0.0, OrderIntent(False, Direction.NEUTRAL, 0.8, ExecutionAction.LIMIT_PASSIVE)),
        (FLAT_PASSIVE, 0.0, 0.0, NO_OP),
        (FLAT_PASSIVE, 0.0, 0.4, OrderIntent(cancel_working=True)),
        # cancel: only when something works
        (CANCEL, 0.5, 0.25, OrderIntent(cancel_working=True)),
        (CANCEL, 0.5, 0.0, OrderIntent(cancel_working=False)),
    ],
)
def test_plan_target(action: PolicyAction, position: float, working: float, expected: OrderIntent) -> None:
    assert plan_target(action, position_fraction=position, working_fraction=working) == expected


def test_every_action_from_every_bucket_plans_something_consistent() -> None:
    """After carrying out an intent (fills at target), restating the same action is a no-op."""
    for action in ACTION_TABLE:
        if action.is_cancel:
            continue
        for position in (0.0, 0.25, 0.5, 1.0):
            intent = plan_target(action, position_fraction=position)
            if intent.submits:
                sign = {Direction.LONG: 1, Direction.SHORT: -1, Direction.NEUTRAL: -1 if position > 0 else 1}
                position += sign[intent.direction] * intent.delta_fraction  # type: ignore[index]
            assert abs(position - action.target_fraction) < 1e-12
            assert plan_target(action, position_fraction=position) == NO_OP
