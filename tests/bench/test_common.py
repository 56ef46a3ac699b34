"""Measurement helpers: HDR percentiles, ratios, and the simulation budget that keeps `make bench` bounded."""

from __future__ import annotations

from pathlib import Path

from sim.scenario import load_scenario
from tools.bench.common import REPO_ROOT, LatencyRecorder, ratio, time_each
from tools.bench.simrun import SimBudget, SimRun, scenario_toml, symbols_for


def test_hdr_percentiles_in_microseconds() -> None:
    recorder = LatencyRecorder()
    for value_us in range(1, 101):  # 1..100 µs
        recorder.record_ns(value_us * 1_000)
    stats = recorder.stats()
    assert stats.count == 100
    assert 49.9 <= stats.p50_us <= 50.1 and 98.9 <= stats.p99_us <= 99.1 and 99.9 <= stats.max_us <= 100.1


def test_time_each_drops_warmup_calls() -> None:
    seen: list[int] = []
    stats = time_each(seen.append, range(10), warmup=3)
    assert seen == list(range(10)) and stats.count == 7


def test_ratio_is_ours_over_theirs_and_none_without_both() -> None:
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(None, 2.0) is None and ratio(2.0, None) is None and ratio(1.0, 0.0) is None


def fake_runner(walls: dict[tuple[int, int], float], calls: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
    def run(n_symbols: int, days: int, *, seed: int) -> SimRun:
        calls.append((n_symbols, days))
        return SimRun(True, n_symbols, days, wall_s=walls[(n_symbols, days)], sim_s=23_400.0 * days)

    return run


def test_budget_shares_runs_and_skips_what_it_cannot_afford() -> None:
    calls: list[tuple[int, int]] = []
    walls = {(3, 1): 10.0, (30, 1): 37.0, (10, 1): 17.0, (100, 1): 107.0}
    budget = SimBudget(100.0, seed=1, runner=fake_runner(walls, calls))
    assert budget.run(3, 1, optional=False).wall_s == 10.0
    assert budget.run(30, 1).ok
    assert budget.estimate_s(100, 1) == 107.0  # 10 s + 97 x (27 s / 27 symbols)
    assert budget.run(10, 1).ok  # estimated 17 s, 53 s left
    skipped = budget.run(100, 1)  # estimated 107 s, 36 s left
    assert not skipped.ok and "skipped: estimated 107 s" in skipped.error
    assert budget.run(3, 1, optional=False) is budget.runs[(3, 1)]  # shared, not rerun
    assert calls == [(3, 1), (30, 1), (10, 1)]


def test_quick_budget_runs_only_required_runs() -> None:
    calls: list[tuple[int, int]] = []
    budget = SimBudget(1_000.0, seed=1, quick=True, runner=fake_runner({(3, 1): 5.0}, calls))
    assert budget.run(3, 1, optional=False).ok
    assert "--quick" in budget.run(30, 1).error
    assert calls == [(3, 1)]


def test_bench_scenarios_pass_the_harness_loader(tmp_path: Path) -> None:
    for n_symbols in (3, 30):
        symbols, sectors, source = symbols_for(n_symbols)
        path = tmp_path / f"bench_{n_symbols}.toml"
        path.write_text(scenario_toml(f"bench_{n_symbols}", n_symbols, 2, seed=5), encoding="utf-8")
        scenario = load_scenario(path)
        assert [i.symbol for i in scenario.instruments] == list(symbols)
        assert scenario.market.source == source and scenario.session.days == 2 and scenario.seed == 5
        assert {i.symbol: i.sector for i in scenario.instruments} == sectors


def test_ports_runs_are_their_own_and_share_the_budget() -> None:
    calls: list[tuple[int, int, str]] = []

    def run(n_symbols: int, days: int, *, seed: int, path: str = "wire") -> SimRun:
        calls.append((n_symbols, days, path))
        return SimRun(True, n_symbols, days, wall_s=4.0 if path == "ports" else 10.0, sim_s=23_400.0, path=path)

    budget = SimBudget(100.0, seed=1, runner=run)
    wire = budget.run(3, 1, optional=False)
    ports = budget.run(3, 1, optional=False, path="ports")
    assert (wire.path, wire.wall_s, ports.path, ports.wall_s) == ("wire", 10.0, "ports", 4.0)
    assert budget.run(3, 1, optional=False, path="ports") is ports and budget.runs[(3, 1)] is wire
    assert budget.spent_s == 14.0 and calls == [(3, 1, "wire"), (3, 1, "ports")]


def test_the_ports_row_uses_the_same_nautilus_run() -> None:
    from tools.bench import nautilus
    from tools.bench.common import Options
    from tools.bench.nautilus import TtliveRun

    def side(bars: int, wall_s: float) -> object:
        return lambda symbols, days: TtliveRun(True, events=2 * bars, bars=bars, wall_s=wall_s, orders=1, fills=1,
                                               how="test")

    section = nautilus.run(Options(quick=True, nautilus_python="/nonexistent/python"), side(390, 2.0),
                           ports_side=side(390, 0.5))
    rows = {r.name: r for r in section.results}
    assert set(rows) == {"nautilus_events_per_s_ratio", "nautilus_ports_ratio"}
    assert rows["nautilus_ports_ratio"].value == 780.0 and rows["nautilus_events_per_s_ratio"].value == 195.0
    assert rows["nautilus_ports_ratio"].ratio is None  # Nautilus not measured: no ratio, nothing estimated


def test_capture_frame_row_measures_a_recorded_frame() -> None:
    from tools.bench.capture import bench_capture_frame
    from tools.bench.common import Options, latency_result

    stats, bytes_per_frame = bench_capture_frame(Options(quick=True))
    assert stats.count > 0 and 0 < stats.p50_us <= stats.p99_us
    assert 0 < bytes_per_frame < 400  # compressed: a 4-message frame is ~250 bytes of JSON before gzip
    row = latency_result("capture_frame_us", stats)
    assert row.unit == "us" and row.value == row.p50


def test_the_sweep_bench_runs_make_sweeps_own_scenarios() -> None:
    from tools.bench.sweeps import chaos_scenarios, make_sweep_seeds

    scenarios = chaos_scenarios()
    assert len(scenarios) >= 10 and "scenarios/ambiguous_submits.toml" in scenarios
    assert all((REPO_ROOT / s).is_file() for s in scenarios), scenarios
    assert make_sweep_seeds() == 200
