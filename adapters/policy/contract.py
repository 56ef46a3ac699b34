"""A model's contract: what the policy was trained on and must be run with, and the check that a run matches it.

An exported model directory states, in model.json's ``contract`` section (written by ``ttlive train``):

* ``decision_interval_s`` / ``bar_timeframe`` - the decision bars the policy is meant to decide on at run time
  (the engine rolls the market-data stream's bars into bars of this length: ``core.engine.market``);
* ``bar_source`` - where those bars come from at run time;
* ``training_bar_timeframe`` / ``training_bar_source`` - the bars it actually learnt on (they may differ from the
  run-time bars: the shipped demonstration model learnt on daily bars and decides on 5-minute ones, and says so);
* ``feature_spec`` + ``feature_spec_sha256`` - core.features' parameters and schema version, hashed;
* ``symbols`` - the symbols it was trained on; ``action_space_version`` + ``action_map_sha256`` - its actions;
* ``training_data`` - the date range of its training (and held-out) data; ``notes`` - anything a user must know.

``check_run`` compares a run's policy section and symbols with it. A different decision interval refuses to
start (``ContractError``, exit 2, naming the field) unless the config lists the field in
``policy.contract_override`` (or ``--override-contract``): then the run goes ahead and its audit trail carries a
``model_contract`` warning record naming each overridden field with both values. What cannot be overridden: a
feature spec or action map that differs from this build's (the input vector or the actions would be garbage).
What is stated but never refuses: symbols outside the training set and a run-time bar timeframe other than the
training one (advisories, audited in the same record). An unset ``policy.decision_interval_s`` means the
model's (``resolve_policy``): the one default of the decision interval is the model's contract.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from adapters.policy.actions import ACTION_SPACE_VERSION, ACTION_TABLE
from core.config import CONTRACT_OVERRIDABLE, EngineConfig, PolicySection
from core.features import DEFAULT_SPEC, FEATURE_SCHEMA_VERSION, FeatureSpec

CONTRACT_SCHEMA: Final = "ttlive-model-contract/1"
CONTRACT_KEY: Final = "contract"  # the section of model.json
CONTRACT_EVENT: Final = "model_contract"  # extra.event of the audited record
RUN_BAR_SOURCE: Final = "Alpaca market-data stream bars (REST gap fill, last-value carry-forward of silent symbols) rolled to the decision interval by core.engine.market"  # noqa: E501
# The rule baseline has no trained weights; its contract is this build's (any symbol, any timeframe).
RULE_DECISION_INTERVAL_S: Final = 300.0


class ContractError(ValueError):
    """A model contract is missing or unreadable, or a run does not match it (exit 2; the message names the
    field, the run's value and the contract's)."""


def timeframe_of(interval_s: float) -> str:
    """Alpaca's name for bars of ``interval_s`` seconds: 1Min..59Min, 1Hour.., 1Day."""
    seconds = int(interval_s)
    if seconds != interval_s or seconds <= 0:
        return f"{interval_s:g}Sec"
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400}Day"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}Hour"
    if seconds % 60 == 0:
        return f"{seconds // 60}Min"
    return f"{seconds}Sec"


def timeframe_seconds(timeframe: str) -> int:
    """The inverse of ``timeframe_of`` for the minute bars a policy can be trained on: '5Min' -> 300."""
    if not timeframe.endswith("Min") or not timeframe[:-3].isdigit() or int(timeframe[:-3]) <= 0:
        raise ValueError(f"intraday timeframe must be like '5Min', got {timeframe!r}")
    return int(timeframe[:-3]) * 60


def feature_spec_sha256(spec: FeatureSpec = DEFAULT_SPEC, schema_version: int = FEATURE_SCHEMA_VERSION) -> str:
    """sha256 of core.features' parameters and schema version (canonical JSON): equal hashes, equal vectors."""
    params = {k: getattr(spec, k) for k in spec.__dataclass_fields__}
    blob = json.dumps({"feature_schema_version": schema_version, "spec": params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def action_map_sha256(actions: tuple[Any, ...] = ACTION_TABLE) -> str:
    blob = json.dumps([a.to_json() for a in actions], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


class TrainingData(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    first: str  # first training date (YYYY-MM-DD)
    last: str  # last training date
    held_out: list[str] = msgspec.field(default_factory=list)  # [first, last] held-out dates, if any


class ModelContract(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    schema: str
    decision_interval_s: float
    bar_timeframe: str
    bar_source: str
    training_bar_timeframe: str
    training_bar_source: str
    feature_schema_version: int
    feature_spec: dict[str, Any]
    feature_spec_sha256: str
    symbols: list[str]
    action_space_version: int
    action_map_sha256: str
    training_data: TrainingData
    notes: str = ""


def build_contract(*, decision_interval_s: float, training_bar_timeframe: str, training_bar_source: str,
                   symbols: list[str], training_data: TrainingData, notes: str = "",
                   spec: FeatureSpec = DEFAULT_SPEC) -> ModelContract:
    """The contract ``ttlive train`` writes for a model of this build."""
    return ModelContract(
        schema=CONTRACT_SCHEMA, decision_interval_s=float(decision_interval_s),
        bar_timeframe=timeframe_of(decision_interval_s), bar_source=RUN_BAR_SOURCE,
        training_bar_timeframe=training_bar_timeframe, training_bar_source=training_bar_source,
        feature_schema_version=FEATURE_SCHEMA_VERSION,
        feature_spec={k: getattr(spec, k) for k in spec.__dataclass_fields__},
        feature_spec_sha256=feature_spec_sha256(spec), symbols=list(symbols),
        action_space_version=ACTION_SPACE_VERSION, action_map_sha256=action_map_sha256(),
        training_data=training_data, notes=notes,
    )


def contract_json(contract: ModelContract) -> dict[str, Any]:
    data: dict[str, Any] = msgspec.to_builtins(contract)
    return data


def parse_contract(raw: object, *, where: str) -> ModelContract:
    """The ``contract`` section of a model.json; ContractError naming ``where`` and the key when it is wrong."""
    if raw is None:
        raise ContractError(f"{where}: no '{CONTRACT_KEY}' section (decision interval, bars, features, symbols, "
                            "actions, data range): re-export the model with `ttlive train`, or add the section")
    try:
        contract = msgspec.convert(raw, type=ModelContract, strict=True)
    except msgspec.ValidationError as exc:
        raise ContractError(f"{where}: unreadable '{CONTRACT_KEY}' section: {exc}") from None
    if contract.schema != CONTRACT_SCHEMA:
        raise ContractError(f"{where}: contract schema {contract.schema!r}, this build reads {CONTRACT_SCHEMA!r}")
    if not contract.decision_interval_s > 0:
        raise ContractError(f"{where}: contract.decision_interval_s must be > 0, got {contract.decision_interval_s}")
    if contract.bar_timeframe != timeframe_of(contract.decision_interval_s):
        raise ContractError(f"{where}: contract.bar_timeframe {contract.bar_timeframe!r} is not the timeframe of "
                            f"contract.decision_interval_s {contract.decision_interval_s:g} "
                            f"({timeframe_of(contract.decision_interval_s)!r})")
    return contract


@functools.lru_cache(maxsize=32)
def _load(model_json: str, mtime_ns: int) -> ModelContract:
    path = Path(model_json)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot read the model contract: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ContractError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(meta, dict):
        raise ContractError(f"{path}: not a JSON object")
    return parse_contract(meta.get(CONTRACT_KEY), where=str(path))


def load_contract(model_dir: str | Path) -> ModelContract:
    """The contract of the model in ``model_dir`` (``"default"``: the shipped one)."""
    from adapters.policy.onnx_policy import resolve_model_dir

    path = resolve_model_dir(model_dir) / "model.json"
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        raise ContractError(f"{path}: no model.json, so no model contract") from None
    return _load(str(path), mtime)


def contract_for(policy: PolicySection) -> ModelContract | None:
    """The contract the policy runs under: the ONNX model's; None for the rule baseline (no trained weights)."""
    return load_contract(policy.model) if policy.kind == "onnx" else None


def model_interval_s(policy: PolicySection) -> float:
    contract = contract_for(policy)
    return contract.decision_interval_s if contract is not None else RULE_DECISION_INTERVAL_S


def resolve_policy(policy: PolicySection) -> PolicySection:
    """``policy`` with an unset decision interval set to the model's (its contract's)."""
    if policy.decision_interval_s is not None:
        return policy
    return msgspec.structs.replace(policy, decision_interval_s=model_interval_s(policy))


def resolve_config(config: EngineConfig) -> EngineConfig:
    policy = resolve_policy(config.policy)
    return config if policy is config.policy else msgspec.structs.replace(config, policy=policy)


@dataclass(frozen=True, slots=True)
class Difference:
    field: str
    run: object
    contract: object
    note: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "run": self.run, "contract": self.contract}
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class ContractCheck:
    """What a run that may start differs in: overridden fields (they would have refused) and advisories."""

    model_id: str
    contract: ModelContract | None
    overridden: list[Difference] = field(default_factory=list)
    advisories: list[Difference] = field(default_factory=list)

    @property
    def warning(self) -> bool:
        return bool(self.overridden or self.advisories)

    def lines(self) -> list[str]:
        out = [f"{d.field} = {d.run!r} does not match the model contract ({d.contract!r}): overridden "
               "(policy.contract_override)" for d in self.overridden]
        out += [f"{d.field}: run {d.run!r}, model contract {d.contract!r}" + (f" ({d.note})" if d.note else "")
                for d in self.advisories]
        return out

    def audit_extra(self) -> dict[str, object]:
        c = self.contract
        return {
            "event": CONTRACT_EVENT,
            "model_id": self.model_id,
            "severity": "warning" if self.warning else "info",
            "decision_interval_s": c.decision_interval_s if c is not None else None,
            "training_bar_timeframe": c.training_bar_timeframe if c is not None else None,
            # audit extras are scalars: the differences as canonical JSON text
            "overridden_fields": ",".join(d.field for d in self.overridden),
            "overridden": json.dumps([d.to_json() for d in self.overridden], sort_keys=True),
            "advisories": json.dumps([d.to_json() for d in self.advisories], sort_keys=True),
        }


def check_run(policy: PolicySection, symbols: list[str], *, overrides: tuple[str, ...] = (), model_id: str = "",
              source: str = "config") -> ContractCheck:
    """Match a run's policy section and symbols against the model contract (module docstring).

    Raises ContractError for a mismatch that is not overridden, naming the field and both values."""
    unknown = sorted(set(overrides) - set(CONTRACT_OVERRIDABLE))
    if unknown:
        raise ContractError(f"{source}: cannot override {', '.join(unknown)}: only "
                            f"{', '.join(CONTRACT_OVERRIDABLE)} may differ from a model contract")
    contract = contract_for(policy)
    if contract is None:
        return ContractCheck(model_id=model_id or "rule", contract=None)
    where = f"model {policy.model!r}"
    if contract.feature_spec_sha256 != feature_spec_sha256():
        raise ContractError(f"{where}: contract.feature_spec_sha256 {contract.feature_spec_sha256[:12]}... is not "
                            f"this build's core.features ({feature_spec_sha256()[:12]}...): retrain or run the "
                            "matching ttlive version (not overridable)")
    if contract.action_map_sha256 != action_map_sha256() or contract.action_space_version != ACTION_SPACE_VERSION:
        raise ContractError(f"{where}: contract.action_map_sha256 is not this build's action table "
                            "(adapters.policy.actions; not overridable)")
    allowed = set(overrides) | set(policy.contract_override)
    overridden: list[Difference] = []
    interval = policy.decision_interval_s if policy.decision_interval_s is not None else contract.decision_interval_s
    if interval != contract.decision_interval_s:
        diff = Difference("policy.decision_interval_s", interval, contract.decision_interval_s)
        if "decision_interval_s" not in allowed:
            raise ContractError(
                f"{source}: policy.decision_interval_s = {interval:g} does not match the model contract "
                f"({contract.decision_interval_s:g}, {where}); leave it unset to use the model's, or accept the "
                "difference with policy.contract_override = [\"decision_interval_s\"] (or --override-contract "
                "decision_interval_s): the run is then audited with a warning")
        overridden.append(diff)
    advisories: list[Difference] = []
    outside = [s for s in symbols if s not in contract.symbols]
    if outside:
        advisories.append(Difference("symbols", outside, list(contract.symbols),
                                     "traded but not in the training set"))
    run_timeframe = timeframe_of(interval)
    if run_timeframe != contract.training_bar_timeframe:
        advisories.append(Difference("bar_timeframe", run_timeframe, contract.training_bar_timeframe,
                                     "decision bars differ from the bars the model was trained on"))
    return ContractCheck(model_id=model_id or str(policy.model), contract=contract, overridden=overridden,
                         advisories=advisories)


def contract_record(check: ContractCheck, ts_ns: int) -> Any:
    """The audited ``model_contract`` record (health stream): the contract the run is bound to and what of it
    was overridden or only advised."""
    from core.audit import system_record

    reason = ("model contract: " + "; ".join(check.lines())) if check.warning else "model contract matched"
    return system_record("health", ts_ns=ts_ns, reason=reason, extra=check.audit_extra())
