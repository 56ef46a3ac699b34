"""The ports path (adapters.ports_venue): the same venue at the engine's ports, no wire.

On a clean scenario it must place the same orders and get the same fills (prices, quantities, times) as the wire
path; the venue and the engine's records must agree; scenarios whose faults only exist on the wire are refused
with a clear error (exit 2 from the CLI); the venue-side and harness events still run there."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from adapters.bootstrap import PortsLink
from adapters.fake.faults import FaultPlan
from adapters.ports_venue import PortsPathError, check_plan
from sim.invariants import audit_records
from sim.scenario import load_scenario
from sim.world import World, WorldOptions, fresh_out_dir, run_world
from tools import cmd_backtest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


def run(name: str, path: str, out: Path) -> tuple[Any, World]:
    scenario = load_scenario(SCENARIOS / name)
    world = World(scenario, scenario.seed, fresh_out_dir(out / path), WorldOptions(path=path))
    return run_world(world), world


def orders_and_fills(world: World) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    venue = world.venue
    orders = [(o.ts_ns, o.client_order_id, o.symbol, o.side, o.qty, o.type, o.time_in_force, o.order_class,
               o.parent_id is not None) for o in venue.order_log]
    fills = [(f.ts_ns, f.client_order_id, f.symbol, f.side, f.qty, f.price, f.cum_qty, f.position_qty)
             for f in venue.fills]
    return orders, fills


@pytest.fixture(scope="module")
def clean_day(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, World]]:
    out = tmp_path_factory.mktemp("ports")
    return {path: run("clean_day.toml", path, out) for path in ("wire", "ports")}


def test_same_orders_and_fills_as_the_wire_on_a_clean_day(clean_day: dict[str, tuple[Any, World]]) -> None:
    wire_orders, wire_fills = orders_and_fills(clean_day["wire"][1])
    ports_orders, ports_fills = orders_and_fills(clean_day["ports"][1])
    assert wire_orders and wire_fills  # the day trades: the comparison means something
    assert ports_orders == wire_orders
    assert ports_fills == wire_fills


def test_the_ports_run_keeps_its_invariants_and_books_every_fill(clean_day: dict[str, tuple[Any, World]]) -> None:
    report, world = clean_day["ports"]
    assert report.ok, (report.invariant_violations, report.expectation_failures)
    assert report.fills == len(world.venue.fills) == clean_day["wire"][0].fills
    assert report.positions == report.venue_positions == clean_day["wire"][0].positions
    audited = [r["extra"]["execution_id"] for r in audit_records(world.audit_dir, "fills")]
    assert audited == [f.execution_id for f in world.venue.fills]
    assert not world.front.connections_opened  # nothing went over a (memory) socket
    assert not any(r.path.startswith("/stream") for r in world.venue.request_log)


@pytest.mark.parametrize("name", ["crash_restart.toml", "halt_survives_restart.toml", "foreign_orders.toml"])
def test_harness_and_venue_events_run_on_the_ports_path(name: str, tmp_path: Path) -> None:
    report, _world = run(name, "ports", tmp_path)
    assert report.ok, (report.invariant_violations, report.expectation_failures)


@pytest.mark.parametrize("name", ["server_errors.toml", "mute_stream.toml", "dropped_updates.toml",
                                  "rate_limit_storm.toml", "ambiguous_submits.toml", "disconnect_storm.toml"])
def test_wire_only_faults_are_refused_on_the_ports_path(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / name)
    with pytest.raises(PortsPathError, match="the ports path has no wire") as caught:
        World(scenario, scenario.seed, tmp_path, WorldOptions(path="ports"))
    assert "faults." in str(caught.value) and "--path wire" in str(caught.value)


def test_check_plan_names_every_offending_key() -> None:
    check_plan(FaultPlan())
    check_plan(FaultPlan.from_toml_dict({"events": [{"kind": "quote_stale", "at": "10:00", "duration_s": 5},
                                                    {"kind": "client_crash", "at": "11:00"}]}))
    plan = FaultPlan.from_toml_dict({"rest_5xx_p": 0.1, "market_data_drop_p": 0.2,
                                     "events": [{"kind": "ws_close", "at": "10:00", "stream": "data"}]})
    with pytest.raises(PortsPathError) as caught:
        check_plan(plan)
    message = str(caught.value)
    for part in ("faults.rest_5xx_p = 0.1", "faults.market_data_drop_p = 0.2", "faults.events[0] kind = 'ws_close'"):
        assert part in message


def test_a_bad_path_and_the_broken_engines_are_refused(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "clean_day.toml")
    with pytest.raises(ValueError, match="'wire' or 'ports'"):
        World(scenario, 1, tmp_path, WorldOptions(path="http"))
    with pytest.raises(ValueError, match="wire path"):
        World(scenario, 1, tmp_path, WorldOptions(path="ports", break_idempotency=True))
    world = World(scenario, 1, tmp_path, WorldOptions(path="ports"))
    assert isinstance(world.engine_link, PortsLink)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ttlive")
    cmd_backtest.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_path_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse(["backtest"]).path == "wire"
    with pytest.raises(SystemExit):
        parse(["backtest", "--path", "http"])
    args = parse(["backtest", "--scenario", str(SCENARIOS / "server_errors.toml"), "--path", "ports",
                  "--out", str(tmp_path)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "server_errors.toml" in err and "the ports path has no wire" in err
    args = parse(["backtest", "--path", "ports", "--agent", "tensortrade", "--out", str(tmp_path)])
    assert args.func(args) == 2
    assert "--agent engine only" in capsys.readouterr().err


def test_cli_backtest_on_the_ports_path(tmp_path: Path) -> None:
    args = parse(["backtest", "--scenario", str(SCENARIOS / "clean_day.toml"), "--path", "ports",
                  "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert (tmp_path / "drift_report.json").exists()


def sim_args(argv: list[str]) -> argparse.Namespace:
    from tools import cmd_sim

    parser = argparse.ArgumentParser(prog="ttlive")
    cmd_sim.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_sim_refuses_wire_faults_on_the_ports_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = sim_args(["sim", str(SCENARIOS / "clean_day.toml"), str(SCENARIOS / "mute_stream.toml"),
                     "--seeds", "1..2", "--path", "ports", "--out", str(tmp_path)])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "mute_stream.toml" in err and "faults.events[0] kind = 'ws_mute'" in err
    assert not any(tmp_path.iterdir())  # refused before anything ran


def test_a_sim_sweep_on_the_ports_path(tmp_path: Path) -> None:
    import json

    from sim.sweep import run_one

    args = sim_args(["sim", str(SCENARIOS / "clean_day.toml"), "--seeds", "1..2", "--path", "ports",
                     "--workers", "1", "--quiet", "--out", str(tmp_path / "sweep")])
    assert args.func(args) == 0
    summary = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert summary["runs"] == 2 and summary["failed"] == 0
    ports = json.loads((tmp_path / "sweep" / "clean_day" / "seed-1" / "report.json").read_text())
    wire = run_one(str(SCENARIOS / "clean_day.toml"), 1, str(tmp_path / "wire"))
    # The same decisions, orders and fills (the audit, but for where the venue's answer to a submission lands
    # among the fills: a REST answer and a decoded event race differently), and not the same requests: the ports
    # path has no trading-stream resync over REST, so the venue's trace differs. The sweep ran at the ports.
    def trail(audit: Path) -> list[tuple[str, str, str]]:
        from core.audit import is_submission
        from sim.invariants import audit_records

        streams = ("signals", "risk", "orders", "fills")
        return sorted((r["timestamp"], r["event_type"], r["signal_id"]) for stream in streams
                      for r in audit_records(audit, stream)
                      if r["event_type"] != "order" or is_submission(r["event_type"], r["extra"]))

    assert trail(tmp_path / "sweep" / "clean_day" / "seed-1" / "audit") == trail(tmp_path / "wire" / "audit")
    assert ports["trace_sha256"] != wire["trace_sha256"]
