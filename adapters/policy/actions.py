"""The policy's discrete action space and what an action asks for, shared by TensorTrade training and live.

An action names a *target exposure* (direction x size bucket of the allowed position) and how to get there
(an ExecutionAction); ``plan_target`` turns it into the one order intent both worlds carry out the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from core.model import Direction, ExecutionAction

ACTION_SPACE_VERSION: Final = 1
SIZE_BUCKETS: Final = (0.25, 0.5, 1.0)  # fractions of the allowed position (risk decides what "allowed" is)
ORDER_EXECUTIONS: Final = (ExecutionAction.MARKET, ExecutionAction.LIMIT_AGGRESSIVE, ExecutionAction.LIMIT_PASSIVE)
# Half the smallest bucket: a target closer than this to what we hold (plus what is working) sends nothing,
# so re-emitting the current target is "hold" and price drift alone never churns orders.
REBALANCE_DEADBAND_FRACTION: Final = 0.125


class PolicyAction(NamedTuple):
    """``direction``/``size_fraction`` is the target exposure; NEUTRAL means flat. CANCEL cancels working orders.

    A tuple on purpose: ``direction, size_fraction, execution = decode_action(i)`` is the runtime's contract."""

    direction: Direction
    size_fraction: float
    execution: ExecutionAction

    @property
    def target_fraction(self) -> float:
        sign = {Direction.LONG: 1.0, Direction.SHORT: -1.0, Direction.NEUTRAL: 0.0}[self.direction]
        return sign * self.size_fraction

    @property
    def is_cancel(self) -> bool:
        return self.execution is ExecutionAction.CANCEL

    def to_json(self) -> dict[str, Any]:
        return {"direction": self.direction.value, "size_fraction": self.size_fraction,
                "execution": self.execution.value}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> PolicyAction:
        return cls(Direction(raw["direction"]), float(raw["size_fraction"]), ExecutionAction(raw["execution"]))


def _build_table() -> tuple[PolicyAction, ...]:
    # Long-only table (13 actions): TensorTrade wallets cannot go negative and the initial deployment runs
    # without margin (spec 2.2), so a short target is not offered; a model trained with shorts would append
    # SHORT rows and bump ACTION_SPACE_VERSION.
    table = [PolicyAction(Direction.NEUTRAL, 0.0, ExecutionAction.CANCEL)]
    table += [PolicyAction(Direction.NEUTRAL, 0.0, execution) for execution in ORDER_EXECUTIONS]
    table += [
        PolicyAction(Direction.LONG, size, execution) for size in SIZE_BUCKETS for execution in ORDER_EXECUTIONS
    ]
    return tuple(table)


ACTION_TABLE: Final = _build_table()
N_ACTIONS: Final = len(ACTION_TABLE)


def decode_action(action_id: int) -> PolicyAction:
    if not 0 <= action_id < N_ACTIONS:
        raise ValueError(f"action id {action_id} outside 0..{N_ACTIONS - 1}")
    return ACTION_TABLE[action_id]


def action_id_for(direction: Direction, size_fraction: float, execution: ExecutionAction) -> int:
    return ACTION_TABLE.index(PolicyAction(direction, size_fraction, execution))


def action_label(action_id: int) -> str:
    action = decode_action(action_id)
    if action.is_cancel:
        return "CANCEL"
    return f"{action.direction.value}:{action.size_fraction:g}:{action.execution.value}"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What to do now for one symbol. ``direction`` speaks core.orderplan's words: LONG buys, SHORT sells,
    NEUTRAL flattens the whole position. ``delta_fraction`` (>= 0) is the size of the change / allowed."""

    cancel_working: bool
    direction: Direction | None = None
    delta_fraction: float = 0.0
    execution: ExecutionAction | None = None

    @property
    def submits(self) -> bool:
        return self.direction is not None


NO_OP: Final = OrderIntent(cancel_working=False)


def plan_target(action: PolicyAction, *, position_fraction: float, working_fraction: float = 0.0) -> OrderIntent:
    """One working order per symbol: a new target replaces (cancels) the working one; a target already met by
    position + working order (within the deadband) leaves everything alone.

    ``position_fraction`` and ``working_fraction`` are signed values / allowed value (working = the remaining
    quantity of the open order, buys positive).
    """
    if action.is_cancel:
        return OrderIntent(cancel_working=working_fraction != 0.0)
    target = action.target_fraction
    if abs(target - (position_fraction + working_fraction)) < REBALANCE_DEADBAND_FRACTION:
        return NO_OP
    cancel = working_fraction != 0.0
    delta = target - position_fraction
    if target == 0.0:
        if position_fraction == 0.0:
            return OrderIntent(cancel_working=cancel)
        return OrderIntent(cancel, Direction.NEUTRAL, abs(position_fraction), action.execution)
    if abs(delta) < REBALANCE_DEADBAND_FRACTION:
        return OrderIntent(cancel_working=cancel)  # the working order was the whole difference
    direction = Direction.LONG if delta > 0 else Direction.SHORT
    return OrderIntent(cancel, direction, abs(delta), action.execution)
