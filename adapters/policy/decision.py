"""Adapts a policy runtime (ONNX or the rule baseline) to the engine's DecisionModel port.

The engine asks for action ids over a batch of feature rows, then for the order intent of one action given
the current position and working order; the action table and the target arithmetic live with the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from adapters.policy.actions import OrderIntent, decode_action, plan_target


class PolicyDecisionModel:
    def __init__(self, runtime: Any, model_id: str) -> None:
        self.runtime = runtime
        self.model_id = model_id

    def warm_up(self) -> None:
        self.runtime.warm_up()

    def infer(self, features: Any) -> NDArray[Any]:
        return np.asarray(self.runtime.infer(features))

    def intent(self, action_id: int, *, position_fraction: float, working_fraction: float) -> OrderIntent:
        return plan_target(decode_action(action_id), position_fraction=position_fraction,
                           working_fraction=working_fraction)


def load_decision_model(kind: str, model: str = "default", precision: str = "fp32") -> PolicyDecisionModel:
    """``kind`` onnx: the shipped (or given) model at ``precision``; ``rule``: the deterministic baseline."""
    if kind == "rule":
        from adapters.policy.rule_policy import RulePolicy

        rule = RulePolicy()
        return PolicyDecisionModel(rule, getattr(rule, "model_id", "rule-momentum-v1"))
    from adapters.policy.onnx_policy import OnnxPolicy, resolve_model_dir

    model_dir: Path = resolve_model_dir(model)
    runtime = OnnxPolicy(model_dir, precision=precision)
    return PolicyDecisionModel(runtime, runtime.model_id)
