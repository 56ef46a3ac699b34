"""A deterministic baseline behind the same DecisionModel port: an EMA(12/26) crossover with hysteresis.

Scenarios use it (policy kind "rule") when they test the plumbing rather than a model, and it is the floor a
trained model should beat. It reads the same core.features vector an ONNX model gets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from adapters.policy.actions import SIZE_BUCKETS, PolicyAction, action_id_for, decode_action
from core.features import DEFAULT_SPEC, FeatureSpec, feature_names
from core.model import Direction, ExecutionAction


class RulePolicy:
    """Go long ``size_fraction`` of allowed when the EMA gap (in window sigmas) exceeds ``enter_z``; go flat when
    it falls below ``exit_z``; in between, restate the target nearest the position held (which plans no order)."""

    long_only = True

    def __init__(
        self,
        *,
        enter_z: float = 0.25,
        exit_z: float = -0.25,
        size_fraction: float = 1.0,
        execution: ExecutionAction = ExecutionAction.MARKET,
        spec: FeatureSpec = DEFAULT_SPEC,
    ) -> None:
        assert exit_z < enter_z, "hysteresis needs exit below entry"
        assert size_fraction in SIZE_BUCKETS and execution is not ExecutionAction.CANCEL
        self.model_id = f"rule-ema-cross-{enter_z:g}-{exit_z:g}-{size_fraction:g}-{execution.value.lower()}"
        names = feature_names(spec)
        self.n_features = len(names)
        self._gap = names.index("ema_gap_z")
        self._position = names.index("position_fraction")
        self.enter_z, self.exit_z = enter_z, exit_z
        self._long = action_id_for(Direction.LONG, size_fraction, execution)
        self._flat = action_id_for(Direction.NEUTRAL, 0.0, execution)
        targets = [(0.0, self._flat)] + [(s, action_id_for(Direction.LONG, s, execution)) for s in SIZE_BUCKETS]
        self._target_fractions = np.array([t for t, _ in targets])
        self._target_ids = np.array([i for _, i in targets], dtype=np.int64)

    def infer(self, features: Any) -> NDArray[Any]:
        batch = np.asarray(features, dtype=np.float32)
        if batch.ndim != 2 or batch.shape[1] != self.n_features:
            raise ValueError(f"features must be (batch, {self.n_features}), got {batch.shape}")
        gap = batch[:, self._gap]
        position = batch[:, self._position]
        nearest = np.abs(position[:, None] - self._target_fractions[None, :]).argmin(axis=1)
        actions = self._target_ids[nearest]
        actions = np.where(gap > self.enter_z, self._long, actions)
        actions = np.where(gap < self.exit_z, self._flat, actions)
        return actions.astype(np.int64)

    def warm_up(self) -> None:
        """Nothing to load; present so the engine treats every policy alike."""

    @staticmethod
    def decode_action(action_id: int) -> PolicyAction:
        return decode_action(int(action_id))
