"""ONNX Runtime policy behind core.ports.DecisionModel: the shipped TensorTrade-trained model, FP32 by default.

INT8 stays available (``precision="int8"``): at batch 1 it is slower here and its actions depend on the batch
(models/default/model_card.md, "Precision").

It refuses to start when the model was trained on a different feature schema or action space than this build
computes, because a silently misaligned input vector trades on garbage.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnxruntime as ort  # type: ignore[import-untyped]
from numpy.typing import NDArray

from adapters.policy.actions import ACTION_SPACE_VERSION, ACTION_TABLE, PolicyAction, decode_action
from core.features import DEFAULT_SPEC, FEATURE_SCHEMA_VERSION, FeatureSpec, feature_names

MODEL_SCHEMA: Final = "ttlive-policy/1"
SHIPPED_MODELS_DIR: Final = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL_DIR: Final = SHIPPED_MODELS_DIR / "default"
PRECISIONS: Final = ("int8", "fp32")
MAX_INFERENCE_BATCH: Final = 1_024  # rows per call; the batcher releases far fewer (one per symbol)
WARM_UP_BATCH_SIZES: Final = (1, 8, 32)
_FLOAT32: Final = np.dtype(np.float32)
_INT64: Final = np.dtype(np.int64)
_ACTION_OUTPUT: Final = ["action"]


class ModelMismatch(RuntimeError):
    """The model on disk does not fit this build (feature schema, names, width, action space, file hash)."""


def resolve_model_dir(model: str | Path) -> Path:
    """``"default"`` is the shipped model, another bare name (no path separator) of a directory under
    ``adapters/policy/models/`` another shipped one (``"ppo-daily-v1"``, the first model, which regression
    scenarios pin); anything else is a directory holding model.json (``./name`` for a local one)."""
    text = str(model)
    if text == "default":
        return DEFAULT_MODEL_DIR
    shipped = SHIPPED_MODELS_DIR / text
    if "/" not in text and "\\" not in text and (shipped / "model.json").is_file():
        return shipped
    return Path(model)


def load_model_metadata(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "model.json"
    try:
        meta: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelMismatch(f"no model.json in {model_dir}") from exc
    except json.JSONDecodeError as exc:
        raise ModelMismatch(f"{path} is not valid JSON: {exc}") from exc
    return meta


def check_compatible(meta: dict[str, Any], spec: FeatureSpec = DEFAULT_SPEC) -> None:
    """Raise ModelMismatch naming the first difference between the model's inputs/outputs and this build's."""
    where = meta.get("model_id", "<unnamed model>")
    if meta.get("schema") != MODEL_SCHEMA:
        raise ModelMismatch(f"{where}: model.json schema {meta.get('schema')!r}, this build reads {MODEL_SCHEMA!r}")
    if meta.get("feature_schema_version") != FEATURE_SCHEMA_VERSION:
        raise ModelMismatch(
            f"{where}: trained on feature schema v{meta.get('feature_schema_version')}, core.features computes "
            f"v{FEATURE_SCHEMA_VERSION}; retrain with `ttlive train` or run the matching ttlive version"
        )
    expected = feature_names(spec)
    names = meta.get("feature_names")
    if meta.get("n_features") != len(expected) or not isinstance(names, list) or len(names) != len(expected):
        raise ModelMismatch(
            f"{where}: model expects {meta.get('n_features')} features, core.features produces {len(expected)}"
        )
    for i, (got, want) in enumerate(zip(names, expected, strict=True)):
        if got != want:
            raise ModelMismatch(f"{where}: feature {i} is {got!r} in the model but {want!r} in core.features")
    if meta.get("action_space_version") != ACTION_SPACE_VERSION:
        raise ModelMismatch(
            f"{where}: action space v{meta.get('action_space_version')}, this build decodes v{ACTION_SPACE_VERSION}"
        )
    try:
        actions = tuple(PolicyAction.from_json(raw) for raw in meta.get("actions", []))
    except (KeyError, ValueError, TypeError) as exc:
        raise ModelMismatch(f"{where}: unreadable action table: {exc}") from exc
    if actions != ACTION_TABLE:
        raise ModelMismatch(f"{where}: action table differs from adapters.policy.actions.ACTION_TABLE")


def _providers(device_id: int) -> list[Any]:
    """Spec 3.1 "dedicate GPU for inference only": CUDA on one pinned device when present, else CPU."""
    if "CUDAExecutionProvider" in ort.get_available_providers():
        return [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OnnxPolicy:
    """One InferenceSession used for nothing but inference (intra-op threads 1: latency, not throughput)."""

    def __init__(
        self,
        model_dir: str | Path = DEFAULT_MODEL_DIR,
        precision: str = "fp32",
        *,
        device_id: int = 0,
        spec: FeatureSpec = DEFAULT_SPEC,
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.model_dir = resolve_model_dir(model_dir)
        self.precision = precision
        self.meta = load_model_metadata(self.model_dir)
        check_compatible(self.meta, spec)
        self.model_id: str = str(self.meta["model_id"])
        self.n_features: int = int(self.meta["n_features"])
        self.long_only: bool = bool(self.meta.get("long_only", True))
        file_info = self.meta["files"][precision]
        path = self.model_dir / file_info["path"]
        model_bytes = path.read_bytes()
        if hashlib.sha256(model_bytes).hexdigest() != file_info["sha256"]:
            raise ModelMismatch(f"{self.model_id}: {path.name} does not match the sha256 recorded in model.json")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(model_bytes, options, providers=_providers(device_id))
        self.provider: str = self.session.get_providers()[0]
        self._check_graph()
        self.warmed_up = False

    def _check_graph(self) -> None:
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ModelMismatch(f"{self.model_id}: expected one graph input, found {len(inputs)}")
        graph_input = inputs[0]
        self.input_name: str = graph_input.name
        if self.input_name != self.meta.get("input_name") or graph_input.type != "tensor(float)":
            raise ModelMismatch(f"{self.model_id}: graph input {graph_input.name} {graph_input.type} is not the "
                                f"float32 {self.meta.get('input_name')!r} model.json declares")
        width = graph_input.shape[1] if len(graph_input.shape) == 2 else None
        if width != self.n_features:
            raise ModelMismatch(
                f"{self.model_id}: graph input width {width}, core.features produces {self.n_features}"
            )
        outputs = {o.name: o for o in self.session.get_outputs()}
        if "action" not in outputs or "logits" not in outputs:
            raise ModelMismatch(f"{self.model_id}: graph outputs {sorted(outputs)} lack 'action' and 'logits'")
        n_logits = outputs["logits"].shape[1]
        if n_logits != len(ACTION_TABLE):
            raise ModelMismatch(f"{self.model_id}: {n_logits} logits for {len(ACTION_TABLE)} actions")

    def _checked(self, features: Any) -> NDArray[Any]:
        """The batch as ONNX Runtime takes it; cheap on the hot path (a C-contiguous float32 array passes as is)."""
        batch = features if type(features) is np.ndarray else np.asarray(features)
        shape = batch.shape
        if len(shape) != 2 or shape[1] != self.n_features:
            raise ValueError(f"features must be (batch, {self.n_features}), got {shape}")
        if not 0 < shape[0] <= MAX_INFERENCE_BATCH:
            raise ValueError(f"batch of {shape[0]} rows outside 1..{MAX_INFERENCE_BATCH}")
        if batch.dtype is not _FLOAT32 and batch.dtype != _FLOAT32:
            raise ValueError(f"features must be float32 (core.features output), got {batch.dtype}")
        return batch if batch.flags.c_contiguous else np.ascontiguousarray(batch)

    def warm_up(self, batch_sizes: tuple[int, ...] = WARM_UP_BATCH_SIZES, rounds: int = 3) -> None:
        """Spec 3.1 "pre-load model at market open": run dummy batches so the first real call is not the first."""
        for _ in range(rounds):
            for size in batch_sizes:
                self.session.run(None, {self.input_name: np.zeros((size, self.n_features), np.float32)})
        self.warmed_up = True

    def infer(self, features: Any) -> NDArray[Any]:
        """(batch, n_features) float32 -> (batch,) int64 action ids (the deterministic argmax)."""
        (actions,) = self.session.run(_ACTION_OUTPUT, {self.input_name: self._checked(features)})
        return actions if actions.dtype is _INT64 else np.asarray(actions, dtype=np.int64)

    def logits(self, features: Any) -> NDArray[Any]:
        (logits,) = self.session.run(["logits"], {self.input_name: self._checked(features)})
        return np.asarray(logits, dtype=np.float32)

    @staticmethod
    def decode_action(action_id: int) -> PolicyAction:
        """-> (Direction, size_fraction, ExecutionAction): the target exposure the action names."""
        return decode_action(int(action_id))
