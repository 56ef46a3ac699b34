"""The model contract (adapters/policy/contract.py): what the shipped model states, how a run is matched against
it (refused with exit 2, or run with an audited warning when overridden), and the errors for a missing or
corrupt contract."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import msgspec
import pytest

from adapters.policy.contract import (
    CONTRACT_EVENT,
    ContractError,
    check_run,
    feature_spec_sha256,
    load_contract,
    resolve_config,
    resolve_policy,
    timeframe_of,
)
from adapters.policy.onnx_policy import DEFAULT_MODEL_DIR
from core.config import ConfigError, EngineConfig, PolicySection, parse_config
from sim.invariants import audit_records
from tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
HALF_DAY = ROOT / "tests" / "runner" / "half_day.toml"


def test_the_shipped_model_states_its_contract_honestly() -> None:
    contract = load_contract("default")
    assert contract.decision_interval_s == 300.0 and contract.bar_timeframe == "5Min"
    assert contract.training_bar_timeframe == "5Min"  # trained on the bars it decides on
    assert "intraday paths" in contract.training_bar_source
    assert contract.symbols == ["NVDA", "ORCL", "YHOO"]  # the default session's symbols
    assert "2001-01-01" <= contract.training_data.first < "2001-02-01"
    assert contract.training_data.last == "2010-12-31"  # training and validation (selection) data
    assert contract.training_data.held_out == ["2011-01-03", "2014-12-31"]  # what `ttlive evaluate` draws from
    assert contract.feature_spec_sha256 == feature_spec_sha256()
    assert "demonstration" in contract.notes.lower()


def test_the_first_model_stays_shipped_by_name_and_says_it_learnt_on_daily_bars() -> None:
    """Regression scenarios pin "ppo-daily-v1" (the model their bugs were found with); a bare name resolves to
    a shipped model, a path to a directory."""
    from adapters.policy.onnx_policy import SHIPPED_MODELS_DIR, resolve_model_dir

    assert resolve_model_dir("ppo-daily-v1") == SHIPPED_MODELS_DIR / "ppo-daily-v1"
    assert resolve_model_dir("./ppo-daily-v1") == Path("./ppo-daily-v1")
    assert resolve_model_dir("no-such-model") == Path("no-such-model")
    contract = load_contract("ppo-daily-v1")
    assert contract.training_bar_timeframe == "1Day" and contract.decision_interval_s == 300.0
    assert contract.symbols == ["NVDA", "ORCL"]


def test_an_unset_interval_is_the_models() -> None:
    assert resolve_policy(PolicySection()).decision_interval_s == 300.0
    assert resolve_policy(PolicySection(decision_interval_s=60.0)).decision_interval_s == 60.0
    config = resolve_config(parse_config("", source="empty.toml"))
    assert config.policy.interval_s == load_contract("default").decision_interval_s
    with pytest.raises(ConfigError, match="unset"):
        _ = PolicySection().interval_s  # an engine never runs on an unresolved interval


def test_a_mismatched_interval_is_refused_naming_the_field_and_both_values() -> None:
    with pytest.raises(ContractError, match=r"policy.decision_interval_s = 60 does not match the model contract "
                                            r"\(300"):
        check_run(PolicySection(decision_interval_s=60.0), ["NVDA"], source="c.toml")


def test_an_override_lets_it_run_and_names_what_was_overridden() -> None:
    by_config = check_run(PolicySection(decision_interval_s=60.0, contract_override=["decision_interval_s"]),
                          ["NVDA", "AAPL"])
    by_flag = check_run(PolicySection(decision_interval_s=60.0), ["NVDA", "AAPL"],
                        overrides=("decision_interval_s",))
    for check in (by_config, by_flag):
        assert [d.field for d in check.overridden] == ["policy.decision_interval_s"]
        assert check.overridden[0].run == 60.0 and check.overridden[0].contract == 300.0
        assert {d.field for d in check.advisories} == {"symbols", "bar_timeframe"}
        extra = check.audit_extra()
        assert extra["event"] == CONTRACT_EVENT and extra["severity"] == "warning"
        assert extra["overridden_fields"] == "policy.decision_interval_s"


def test_a_matching_run_has_nothing_to_override() -> None:
    check = check_run(PolicySection(), ["NVDA", "ORCL", "YHOO"])
    assert check.overridden == [] and check.advisories == []  # trained on 5Min bars of these, run on 5Min bars
    assert not check.warning
    first = check_run(PolicySection(model="ppo-daily-v1"), ["NVDA", "ORCL"])  # learnt on daily bars: advised
    assert [d.field for d in first.advisories] == ["bar_timeframe"]
    assert check_run(PolicySection(kind="rule", decision_interval_s=60.0), ["ANY"]).contract is None  # no weights


def test_unknown_override_fields_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"policy\.contract_override"):
        parse_config('[policy]\ncontract_override = ["symbols"]\n', source="c.toml")
    with pytest.raises(ContractError, match="cannot override symbols"):
        check_run(PolicySection(), ["NVDA"], overrides=("symbols",))


def _model_copy(tmp_path: Path, edit: object) -> Path:
    model = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, model)
    meta = json.loads((model / "model.json").read_text())
    if callable(edit):
        edit(meta)
    (model / "model.json").write_text(json.dumps(meta))
    return model


def test_a_missing_contract_is_a_clear_error(tmp_path: Path) -> None:
    model = _model_copy(tmp_path, lambda meta: meta.pop("contract"))
    with pytest.raises(ContractError, match=r"no .contract. section"):
        load_contract(model)
    with pytest.raises(ContractError, match=r"no model\.json"):
        load_contract(tmp_path / "nowhere")


def test_a_corrupt_contract_is_a_clear_error(tmp_path: Path) -> None:
    model = _model_copy(tmp_path, lambda meta: meta["contract"].update(decision_interval_s="five minutes"))
    with pytest.raises(ContractError, match=r"unreadable .contract. section.*decision_interval_s"):
        load_contract(model)
    model2 = _model_copy(tmp_path / "b", lambda meta: meta["contract"].update(bar_timeframe="1Day"))
    with pytest.raises(ContractError, match="bar_timeframe"):
        load_contract(model2)
    model3 = _model_copy(tmp_path / "c", lambda meta: meta["contract"].update(feature_spec_sha256="0" * 64))
    with pytest.raises(ContractError, match=r"feature_spec_sha256.*not overridable"):
        check_run(PolicySection(model=str(model3)), ["NVDA"])
    (model / "model.json").write_text("{not json")
    with pytest.raises(ContractError, match="not valid JSON"):
        load_contract(model)


def test_timeframes() -> None:
    assert [timeframe_of(s) for s in (60, 300, 3600, 86_400, 90)] == ["1Min", "5Min", "1Hour", "1Day", "90Sec"]


# --- the CLI: ttlive run / ttlive sim ---------------------------------------------------------------------


def test_run_and_sim_refuse_a_config_off_the_contract_with_exit_2(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c60.toml"
    config.write_text("[policy]\ndecision_interval_s = 60\n")
    assert main(["run", "--config", str(config), "--no-dashboard", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "policy.decision_interval_s = 60 does not match the model contract (300" in err
    scenario = tmp_path / "s.toml"
    scenario.write_text(HALF_DAY.read_text().replace('kind = "rule"', 'kind = "onnx"\nmodel = "default"', 1)
                        .replace("decision_interval_s = 300", "decision_interval_s = 60"))
    assert main(["sim", str(scenario), "--out", str(tmp_path / "s")]) == 2
    assert "policy.decision_interval_s = 60 does not match the model contract" in capsys.readouterr().err


def test_run_refuses_a_model_without_a_contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _model_copy(tmp_path, lambda meta: meta.pop("contract"))
    monkeypatch.chdir(tmp_path)
    Path("m.toml").write_text('[policy]\nmodel = "model"\n')
    assert main(["run", "--config", "m.toml", "--no-dashboard", "--out", "r"]) == 2
    assert "no 'contract' section" in capsys.readouterr().err


def test_run_with_the_override_is_audited_as_a_warning(tmp_path: Path) -> None:
    config = tmp_path / "c60.toml"
    config.write_text('[policy]\ndecision_interval_s = 120\ncontract_override = ["decision_interval_s"]\n')
    out = tmp_path / "run"
    rc = main(["run", "--config", str(config), "--scenario", str(HALF_DAY), "--no-dashboard", "--quiet",
               "--out", str(out)])
    assert rc == 0
    records = [r for r in audit_records(out / "audit", "health")
               if r["extra"].get("event") == CONTRACT_EVENT]
    assert len(records) == 1, "one model-contract record per run"
    extra = records[0]["extra"]
    assert extra["severity"] == "warning" and extra["overridden_fields"] == "policy.decision_interval_s"
    overridden = json.loads(extra["overridden"])
    assert overridden == [{"field": "policy.decision_interval_s", "run": 120.0, "contract": 300.0}]
    assert "does not match the model contract" in records[0]["extra"]["reason"]
    report = msgspec.json.decode((out / "report.json").read_bytes())
    assert report["invariant_violations"] == [] and report["orders_submitted"] > 0  # it ran and traded


def test_an_empty_config_and_no_config_run_the_same_interval() -> None:
    """`ttlive run --config empty.toml` and `ttlive run` agree: both decide at the model's interval."""
    from sim.scenario import load_scenario

    default = load_scenario(ROOT / "scenarios" / "default.toml")
    assert default.policy.decision_interval_s is None  # the default session takes the model's
    empty = resolve_config(EngineConfig())
    assert empty.policy.interval_s == resolve_config(default.engine_config()).policy.interval_s == 300.0


def test_the_override_flag_and_the_paper_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Paper checks the contract before anything is opened; --override-contract lets it past (here it then
    stops at the missing credentials, exit 2 too, for another reason)."""
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    config = tmp_path / "c60.toml"
    config.write_text(f'[policy]\ndecision_interval_s = 60\n[audit]\ndir = "{(tmp_path / "a").as_posix()}"\n')
    assert main(["run", "--config", str(config), "--mode", "paper", "--no-dashboard"]) == 2
    assert "does not match the model contract" in capsys.readouterr().err
    assert main(["run", "--config", str(config), "--mode", "paper", "--no-dashboard",
                 "--override-contract", "decision_interval_s"]) == 2
    err = capsys.readouterr().err
    assert "does not match" not in err and "credentials" in err
