"""The dashboard shows what a halt did to the positions (issue 17): the halt's ``on_halt`` action and, per
position, whether a stop of ours protects it (its order id and stop price) or not. The engine's JSON (a real
engine halted with ``on_halt = "protect"``), the static source's, and the page elements that render them."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import msgspec

from adapters.alerts import DashboardAlertSink
from adapters.dashboard.app import create_app
from adapters.dashboard.engine_source import EngineDashboardSource
from adapters.dashboard.source import StaticDashboardSource
from adapters.metrics import Metrics
from core.engine.system import Engine
from sim.scenario import load_scenario
from sim.world import World, WorldOptions, run_world
from tests.dashboard.conftest import ManualClock

HALT_PROTECT = Path(__file__).resolve().parents[2] / "scenarios" / "halt_protect.toml"
PROTECTION_KEYS = {"symbol", "qty", "protected", "stop_price", "order_id", "note"}


class _Watched(World):
    """Reads the dashboard's JSON of each engine where the world collects it (on the engine's trio thread)."""

    halts: list[dict[str, Any]]
    venue_books: list[tuple[set[str], dict[str, Any]]]  # (symbols held, open orders by id) at the same moment

    def collect(self, engine: Engine, adapters: Any) -> None:
        super().collect(engine, adapters)
        source = EngineDashboardSource(mode="sim", clock=ManualClock(), alerts=DashboardAlertSink(), engine=engine)
        snapshot = source.snapshot()
        assert json.loads(json.dumps(snapshot)) == snapshot  # plain JSON
        self.halts = [*getattr(self, "halts", []), snapshot["halt"]]
        book = (set(self.venue.account.positions), {o.id: o for o in self.venue.book.open_orders()})
        self.venue_books = [*getattr(self, "venue_books", []), book]


def _engine_halts(tmp_path: Path, on_halt: str) -> tuple[_Watched, list[dict[str, Any]]]:
    """The dashboard's halt JSON at the end of each day: the halt's day, then the restart into the halt."""
    scenario = load_scenario(HALT_PROTECT)
    scenario = msgspec.structs.replace(scenario, risk=msgspec.structs.replace(scenario.risk, on_halt=on_halt))
    world = _Watched(scenario, 1, tmp_path, WorldOptions())
    report = run_world(world)
    assert report.halted and report.kill_trigger == "manual"
    return world, world.halts


def test_the_engine_json_lists_each_position_with_its_stop_under_protect(tmp_path: Path) -> None:
    world, (halt, _restarted) = _engine_halts(tmp_path, "protect")
    # The scenario's day 1 ends with the book under its stops (day 2's stops fill: no position is left).
    assert halt["state"] == "HALTED" and halt["on_halt"] == "protect"
    protection = halt["protection"]
    assert isinstance(protection, list) and protection
    held, working = world.venue_books[0]
    assert {p["symbol"] for p in protection} == held
    for p in protection:
        assert set(p) == PROTECTION_KEYS and p["protected"] is True
        stop = working[p["order_id"]]  # the stop the row names works at the venue, at the price it shows
        assert stop.symbol == p["symbol"] and stop.type == "stop" and Decimal(p["stop_price"]) == stop.stop_price


def test_the_engine_json_says_unprotected_under_the_cancel_all_default(tmp_path: Path) -> None:
    world, halts = _engine_halts(tmp_path, "cancel_all")
    assert len(halts) == 2  # the halt's day, then a restart into the latched halt: both say what is bare
    for halt, (held, _working) in zip(halts, world.venue_books, strict=True):
        assert halt["state"] == "HALTED" and halt["on_halt"] == "cancel_all"
        protection = halt["protection"]
        assert isinstance(protection, list) and protection
        assert {p["symbol"] for p in protection} == held
        assert all(p["protected"] is False and p["order_id"] is None and p["note"] for p in protection)


async def test_the_static_source_lists_the_book_unprotected_while_halted(clock: ManualClock) -> None:
    source = StaticDashboardSource(clock=clock)
    source.set_position("NVDA", Decimal(20), Decimal("100"))
    source.set_position("ORCL", Decimal(-5), Decimal("30"))
    assert source.snapshot()["halt"]["protection"] == [] and source.snapshot()["halt"]["on_halt"] == "cancel_all"
    await source.kill("drill", "test")
    protection = source.snapshot()["halt"]["protection"]
    assert [(p["symbol"], p["qty"], p["protected"]) for p in protection] == [("NVDA", "20", False),
                                                                            ("ORCL", "-5", False)]
    await source.reset("alice", "done")
    assert source.snapshot()["halt"]["protection"] == []


async def test_the_page_renders_the_halt_action_and_each_positions_protection(clock: ManualClock) -> None:
    app = create_app(StaticDashboardSource(clock=clock), Metrics(), token="tok")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dashboard.test") as c:
        html = (await c.get("/")).text
    for element in ('id="halt-action"', 'id="protection-panel"', 'id="protection"'):
        assert element in html
    script = re.search(r"<script>(.*)</script>", html, re.S)
    assert script is not None
    js = script.group(1)
    # The renderer reads the JSON's fields: the action, and per position its protection, stop price and order id.
    for read in ("halt.on_halt", "halt.protection", "p.protected", "p.stop_price", "p.order_id", "p.note",
                 '$("protection-panel").hidden', 'replaceRows($("protection")'):
        assert read in js, read
