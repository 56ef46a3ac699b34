"""Config and scenario files: bad input gets a clear error naming file, key and line."""

from __future__ import annotations

import pytest

from core.config import ConfigError, parse_config
from sim.scenario import parse_scenario

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
        ('[risk]\nsize_scale = "2"\n', "risk.size_scale must be in (0, 1]"),
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
