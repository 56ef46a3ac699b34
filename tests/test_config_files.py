"""Config and scenario files: bad input gets a clear error naming file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, parse_config
from sim.scenario import parse_scenario
from tools.cli import main

MINIMAL = """
schema_version = 1
name = "t"
[[instruments]]
symbol = "NVDA"
sector = "semis"
[market]
files = { NVDA = "nvda-1999-2014.txt" }
"""


def test_defaults_are_valid() -> None:
    config = parse_config("")
    assert config.symbols == ["NVDA", "ORCL", "YHOO"]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[risk]\nfoo = 1\n", "unknown key 'risk.foo' (line 2)"),
        ('mode = "moon"\n', "bad value for 'mode' (line 1)"),
        ('[risk]\nsize_scale = "2"\n', "risk.size_scale must be a finite number in [0.0001, 1], got '2' (line 2)"),
        ('[risk]\nmax_position_pct = "abc"\n', "risk.max_position_pct must be a decimal string"),
        ('[execution]\non_reject = "panic"\n', "execution.on_reject"),
        ("x = [\n", "not valid TOML"),
        ('[[instruments]]\nsymbol = "nvda"\nsector = "x"\n', "is not a ticker"),
    ],
)
def test_bad_config_names_key(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="cfg.toml")
    assert str(err.value).startswith("cfg.toml: ")
    assert needle in str(err.value)


def test_minimal_scenario_parses() -> None:
    s = parse_scenario(MINIMAL)
    assert s.session.days == 1 and s.engine_config().symbols == ["NVDA"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("bogus = 1\n", "unknown key 'market.bogus' (line 9)"),
        ("[faults]\nrest_429_p = 2.0\n", "faults.rest_429_p: probability 2.0 is outside [0, 1]"),
        ('[[faults.events]]\nat = "25:00:00"\nkind = "ws_close"\n', "faults.events[0].at: expected"),
        ('[[faults.events]]\nat = "10:00:00"\nkind = "meteor"\n', "faults.events[0].kind: 'meteor'"),
        ("[faults]\nbogus_p = 0.1\n", "unknown key 'bogus_p'"),
        ('[[faults.events]]\nat = "10:00:00"\nkind = "ws_close"\nday = 3\n', "outside the session"),
        ('[[faults.events]]\nat = "10:00:00"\nkind = "manual_reset"\n', "needs operator and reason"),
        ('[session]\nstart = "yesterday"\n', "session.start must be YYYY-MM-DD"),
        ("[expect]\nhalted = 3\n", "bad value for 'expect.halted'"),
        ('[[account.positions]]\nsymbol = "ORCL"\nqty = "10"\navg_entry_price = "40"\n',
         "account.positions.ORCL 'ORCL' is not in [[instruments]]"),
        ('[[account.positions]]\nsymbol = "NVDA"\nqty = "0"\navg_entry_price = "40"\n',
         "account.positions.NVDA.qty must not be 0"),
        ('[[account.positions]]\nsymbol = "NVDA"\nqty = "ten"\navg_entry_price = "40"\n',
         "account.positions.NVDA.qty must be a decimal string"),
        ('[[account.positions]]\nsymbol = "NVDA"\nqty = "10"\navg_entry_price = "-4"\n',
         "account.positions.NVDA.avg_entry_price must be a finite number"),
        ('[account]\ntype = "cash"\n[[account.positions]]\nsymbol = "NVDA"\nqty = "-10"\navg_entry_price = "4"\n',
         "a cash account cannot hold a short position"),
        ('[[account.positions]]\nsymbol = "NVDA"\nqty = "1"\navg_entry_price = "4"\n'
         '[[account.positions]]\nsymbol = "NVDA"\nqty = "2"\navg_entry_price = "4"\n', "listed twice"),
        ('[[account.positions]]\nsymbol = "NVDA"\nqty = "1"\n', "account.positions"),
    ],
)
def test_bad_scenario_names_key(extra: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_scenario(MINIMAL + extra, source="s.toml")
    assert needle in str(err.value)


def test_schema_version_is_checked() -> None:
    with pytest.raises(ConfigError, match="schema_version must be 1"):
        parse_scenario(MINIMAL.replace("schema_version = 1", "schema_version = 9"))


def test_replay_needs_a_file_per_symbol() -> None:
    with pytest.raises(ConfigError, match=r"market\.files has no file for NVDA"):
        parse_scenario(MINIMAL.replace('files = { NVDA = "nvda-1999-2014.txt" }', ""))


# --- issue 16: every safety value checked at load, paths confined, http(s) webhooks only ------------------------


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[risk]\nconnectivity_lost_halt_s = 1e308\n", "risk.connectivity_lost_halt_s must be a finite number in"),
        ("[risk]\nconnectivity_lost_halt_s = -5\n", "risk.connectivity_lost_halt_s must be"),
        ("[risk]\nconnectivity_lost_halt_s = 0\n", "risk.connectivity_lost_halt_s must be"),
        ("[risk]\nmax_consecutive_losses = -3\n", "risk.max_consecutive_losses must be an integer in [0, 1000]"),
        ('[[instruments]]\nsymbol = "NVDA"\nsector = "x"\nmax_position_size = -10\n',
         "instruments.max_position_size must be an integer in"),
        ('[alerts]\nwebhook_url = "file:///etc/passwd"\n', "alerts.webhook_url must be an http:// or https:// URL"),
        ("[policy]\ndecision_interval_s = nan\n", "policy.decision_interval_s must be a finite number"),
        ('[risk]\ndaily_loss_halt_pct = "0"\n', "risk.daily_loss_halt_pct must be a finite number in [0.01, 100]"),
        ('[policy]\nmodel = "../../../etc"\n', "policy.model must be a relative path inside its directory"),
        ('[policy]\nmodel = "/etc"\n', "policy.model must be a relative path"),
        ('[broker]\npaper_url = "ftp://x"\n', "broker.paper_url must be an http"),
    ],
)
def test_unsafe_config_values_fail_at_load_naming_key_and_line(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, source="cfg.toml")
    message = str(err.value)
    assert message.startswith("cfg.toml: ") and needle in message
    assert "(line " in message


def test_a_bad_config_is_exit_2_for_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy]\ndecision_interval_s = nan\n")
    assert main(["run", "--config", str(bad), "--no-dashboard"]) == 2
    assert main(["kill", "--config", str(bad), "--reason", "x"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "policy.decision_interval_s" in err and "(line 2)" in err


def test_a_missing_model_directory_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[policy]\nmodel = "no-such-model"\n')
    assert main(["run", "--config", str(config), "--no-dashboard"]) == 2
    assert "policy.model 'no-such-model' is not a model directory (no model.json) (line 2)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (('"nvda-1999-2014.txt"', '"nvda-missing.txt"'), "market.files.NVDA 'nvda-missing.txt' is not a file"),
        (('"nvda-1999-2014.txt"', '"../../../../etc/passwd"'), "market.files.NVDA must be a relative path"),
        (('"nvda-1999-2014.txt"', '"/etc/passwd"'), "market.files.NVDA must be a relative path"),
        (('name = "t"', 'name = "t"\n[session]\nstart = "2031-06-02"'), "session.start 2031-06-02 is outside the data"),
        (('name = "t"', 'name = "t"\n[policy]\nkind = "onnx"\nmodel = "../../../etc"'), "policy.model must be"),
        (("[market]\n", "[market]\nvol_pct_per_day = nan\n"), "market.vol_pct_per_day must be a finite number"),
        (("[market]\n", "[market]\nsource = \"generator\"\ncorrelation = inf\n"), "market.correlation must be"),
    ],
)
def test_bad_scenario_paths_and_dates_fail_at_load(change: tuple[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_scenario(MINIMAL.replace(*change), source="s.toml")
    assert str(err.value).startswith("s.toml: ") and needle in str(err.value)


def test_a_bad_scenario_is_exit_2_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(MINIMAL.replace('"nvda-1999-2014.txt"', '"../../../../etc/passwd"'))
    assert main(["sim", str(scenario), "--out", str(tmp_path / "out")]) == 2
    assert main(["run", "--scenario", str(scenario), "--out", str(tmp_path / "out2"), "--no-dashboard"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "market.files.NVDA" in err
    assert not (tmp_path / "out").exists()  # nothing was opened, let alone /etc/passwd
