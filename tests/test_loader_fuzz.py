"""Hypothesis fuzz of the config and scenario loaders (issue 16): random TOML trees of valid keys with hostile
values (NaN, infinities, 1e308, negatives, zero, huge ints, wrong types, path traversal, non-http URLs).

A loader either raises ConfigError (exit 2, naming the file) or returns an object whose every safety value is in
its documented range; never any other exception. The oracle below is written from core.limits, independently
of the loaders' own checks. No simulation runs: load only.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import limits
from core.config import ConfigError, EngineConfig, parse_config
from sim.scenario import Scenario, parse_scenario
from sim.swarm import dumps_toml

EXAMPLES = 2_000
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([
        math.nan, math.inf, -math.inf, 1e308, -1e308, 0, 0.0, -0.0, -5, -3, -1, 1, 10**30, -(10**30), 2**63,
        "", "0", "-1", "-5", "nan", "NaN", "inf", "-inf", "1e308", "1e-9", "100.0001", "abc",
        "../../../../etc/passwd", "/etc/passwd", "..", "a/../../b", "~/x", "C:/x", "file:///etc/passwd",
        "ftp://example.com", "javascript:alert(1)", "http://", "a\nb", "\x00", True, False, [], [1, "x"], {},
    ]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.text(max_size=12),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
)

RISK_KEYS = ("max_position_pct", "max_sector_pct", "max_correlated_pct", "correlation_threshold",
             "correlation_window_days", "daily_loss_halt_pct", "weekly_loss_halt_pct", "max_consecutive_losses",
             "connectivity_lost_halt_s", "size_scale", "pdt_protection", "liquidate_on_halt")
EXECUTION_KEYS = ("brackets", "stop_loss_pct", "take_profit_pct", "aggressive_cross_bps", "on_reject",
                  "depth_check_fraction", "submit_timeout_s")
POLICY_KEYS = ("kind", "model", "precision", "decision_interval_s")
RECONCILE_KEYS = ("interval_s", "tolerance_pct")
ENGINE_SECTIONS = {"risk": RISK_KEYS, "execution": EXECUTION_KEYS, "policy": POLICY_KEYS,
                   "reconcile": RECONCILE_KEYS}
CONFIG_SECTIONS = {**ENGINE_SECTIONS, "dashboard": ("enabled", "host", "port"), "audit": ("dir",),
                   "alerts": ("webhook_url",), "broker": ("paper_url", "live_url", "data_url", "feed")}
SCENARIO_SECTIONS = {**ENGINE_SECTIONS, "session": ("start", "days", "bar_interval_s"),
                     "account": ("type", "cash_usd", "pattern_day_trader"),
                     "market": ("source", "drift_bps_per_day", "vol_pct_per_day", "correlation", "spread_bps")}


def tables(sections: dict[str, tuple[str, ...]]) -> st.SearchStrategy[dict[str, dict[str, Any]]]:
    """Some sections, each with some of its keys, each key a hostile value."""
    def section(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
        return st.dictionaries(st.sampled_from(keys), HOSTILE, max_size=len(keys))

    return st.fixed_dictionaries({}, optional={name: section(keys) for name, keys in sections.items()})


INSTRUMENT = st.fixed_dictionaries(
    {"symbol": st.sampled_from(["NVDA", "ORCL"]), "sector": st.just("tech")},
    optional={"max_position_size": HOSTILE},
)


def in_range(value: Any, bounds: tuple[Any, Any]) -> bool:
    try:
        number = Decimal(value) if isinstance(value, str) else value
    except InvalidOperation:
        return False
    finite = number.is_finite() if isinstance(number, Decimal) else math.isfinite(number)
    return bool(finite and bounds[0] <= number <= bounds[1])


def assert_safe(config: EngineConfig) -> None:
    """Every safety value of a loaded config is finite and within its core.limits range."""
    r, e, p, rc = config.risk, config.execution, config.policy, config.reconcile
    for key in ("max_position_pct", "max_sector_pct", "max_correlated_pct", "daily_loss_halt_pct",
                "weekly_loss_halt_pct"):
        assert in_range(getattr(r, key), limits.RISK_PCT_RANGE), (key, getattr(r, key))
    assert in_range(r.size_scale, limits.SIZE_SCALE_RANGE)
    assert in_range(r.correlation_threshold, limits.CORRELATION_THRESHOLD_RANGE)
    assert in_range(r.max_consecutive_losses, limits.MAX_CONSECUTIVE_LOSSES_RANGE)
    assert in_range(r.connectivity_lost_halt_s, limits.CONNECTIVITY_LOST_HALT_RANGE_S)
    assert in_range(e.submit_timeout_s, limits.SUBMIT_TIMEOUT_RANGE_S)
    assert in_range(e.stop_loss_pct, limits.STOP_LOSS_RANGE_PCT)
    # None: the model's (its contract)
    assert p.decision_interval_s is None or in_range(p.decision_interval_s, limits.DECISION_INTERVAL_RANGE_S)
    assert in_range(rc.interval_s, limits.RECONCILE_INTERVAL_RANGE_S)
    assert in_range(rc.tolerance_pct, limits.RECONCILE_TOLERANCE_RANGE_PCT)
    assert p.model == "default" or (".." not in p.model.split("/") and not p.model.startswith("/"))
    for inst in config.instruments:
        assert inst.max_position_size is None or in_range(inst.max_position_size,
                                                          limits.MAX_POSITION_SIZE_RANGE_SHARES)
    assert config.alerts.webhook_url == "" or config.alerts.webhook_url.startswith(("http://", "https://"))
    for url in (config.broker.paper_url, config.broker.live_url, config.broker.data_url):
        assert url.startswith(("http://", "https://"))


@FUZZ
@given(tree=tables(CONFIG_SECTIONS), instruments=st.lists(INSTRUMENT, max_size=2))
def test_config_loader_never_crashes_nor_loads_an_unsafe_value(tree: dict[str, Any], instruments: list[Any]) -> None:
    document = {**tree, **({"instruments": instruments} if instruments else {})}
    try:
        config = parse_config(dumps_toml(document), source="fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ")
        return
    assert_safe(config)


BASE_SCENARIO = {"schema_version": 1, "name": "fuzz"}
MARKET_FILES = {"NVDA": "nvda-1999-2014.txt", "ORCL": "orcl-1995-2014.txt"}
HOSTILE_FILE = st.one_of(st.sampled_from(list(MARKET_FILES.values())), HOSTILE)


@FUZZ
@given(tree=tables(SCENARIO_SECTIONS), files=st.dictionaries(st.sampled_from(["NVDA", "ORCL"]), HOSTILE_FILE),
       seed=st.one_of(st.none(), HOSTILE))
def test_scenario_loader_never_crashes_nor_loads_an_unsafe_value(tree: dict[str, Any], files: dict[str, Any],
                                                                  seed: Any) -> None:
    market = {**tree.get("market", {}), "files": files or MARKET_FILES}
    document = {**BASE_SCENARIO, **({} if seed is None else {"seed": seed}), **tree,
                "instruments": [{"symbol": s, "sector": "tech"} for s in sorted(files or MARKET_FILES)],
                "market": market}
    try:
        scenario: Scenario = parse_scenario(dumps_toml(document), source="fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml: ")
        return
    assert_safe(scenario.engine_config())
    assert in_range(scenario.account.cash_usd, limits.ACCOUNT_CASH_RANGE_USD)
    assert in_range(scenario.market.vol_pct_per_day, limits.MARKET_VOL_RANGE_PCT_PER_DAY)
    assert in_range(scenario.market.spread_bps, limits.MARKET_SPREAD_RANGE_BPS)
    assert all(".." not in name and not name.startswith("/") for name in scenario.market.files.values())
