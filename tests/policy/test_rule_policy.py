"""RulePolicy: a deterministic EMA-crossover baseline behind the DecisionModel port."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.policy.actions import action_id_for, plan_target
from adapters.policy.rule_policy import RulePolicy
from core.features import DEFAULT_SPEC, feature_names
from core.model import Direction, ExecutionAction

NAMES = feature_names()
GAP, POS = NAMES.index("ema_gap_z"), NAMES.index("position_fraction")
LONG_1 = action_id_for(Direction.LONG, 1.0, ExecutionAction.MARKET)
FLAT = action_id_for(Direction.NEUTRAL, 0.0, ExecutionAction.MARKET)


def rows(*pairs: tuple[float, float]) -> np.ndarray:
    batch = np.zeros((len(pairs), DEFAULT_SPEC.n_features), np.float32)
    for i, (gap, position) in enumerate(pairs):
        batch[i, GAP], batch[i, POS] = gap, position
    return batch


def test_crossover_with_hysteresis() -> None:
    policy = RulePolicy()
    actions = policy.infer(rows((1.0, 0.0), (-1.0, 1.0), (0.0, 1.0), (0.0, 0.0), (0.0, 0.5), (0.3, 0.0)))
    assert actions.dtype == np.int64
    assert actions.tolist() == [
        LONG_1,  # gap above entry: go long
        FLAT,  # gap below exit: go flat
        LONG_1,  # dead zone while long: restate long (plans no order)
        FLAT,  # dead zone while flat: restate flat
        action_id_for(Direction.LONG, 0.5, ExecutionAction.MARKET),  # nearest target to a half position
        LONG_1,
    ]
    for action_id, position in zip(actions[2:5].tolist(), (1.0, 0.0, 0.5), strict=True):
        assert not plan_target(policy.decode_action(action_id), position_fraction=position).submits


def test_same_input_same_output_and_shape_checked() -> None:
    policy = RulePolicy(enter_z=0.5, exit_z=-0.5, size_fraction=0.5)
    batch = rows(*[(float(g), 0.0) for g in np.linspace(-2, 2, 32)])
    assert np.array_equal(policy.infer(batch), policy.infer(batch.copy()))
    assert policy.model_id.startswith("rule-ema-cross")
    with pytest.raises(ValueError):
        policy.infer(np.zeros((1, 3), np.float32))
