"""Start-of-week equity on a mid-week first start comes from the broker's portfolio history (issue 17): the
close of the last session before this week, not ``last_equity`` (the eve's close). The fake's history before
its start is the starting book held unchanged; a history that is missing or unanswered falls back to
``last_equity``, audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

import adapters.fake.rest as fake_rest
from adapters.fake.interfaces import RestRequest
from core.compliance import history_points
from core.engine.system import Engine
from core.ports import BrokerUnavailable
from sim.scenario import load_scenario
from sim.world import World, WorldOptions, run_world

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "midweek_start.toml"
FRIDAY_CLOSE = Decimal(36_000) + 2_900 * Decimal("15.60")  # NVDA closed at 15.60 on Friday 2011-10-28
TUESDAY_CLOSE = Decimal(36_000) + 2_900 * Decimal("14.06")  # ... and at 14.06 on Tuesday 2011-11-01


def _health(tmp_path: Path) -> str:
    return "".join(p.read_text() for p in sorted((tmp_path / "audit").rglob("health/*.jsonl")))


@pytest.mark.parametrize("path", ["wire", "ports"])
def test_a_midweek_first_start_measures_the_week_from_the_portfolio_history(tmp_path: Path, path: str) -> None:
    world = World(load_scenario(SCENARIO), 1, tmp_path, WorldOptions(path=path))
    report = run_world(world)
    assert report.invariant_violations == [], report.invariant_violations
    assert report.halted and report.kill_trigger == "weekly_loss"
    state = world.record.engines[0].ctx.state
    assert state.start_of_day_equity == TUESDAY_CLOSE  # last_equity: the day is measured from the eve
    assert state.start_of_week_equity == FRIDAY_CLOSE  # the week from the close before Monday
    health = _health(tmp_path)
    assert "is -5.50% of start-of-week equity 81240.0 (limit -5.00%)" in health
    assert "week_start_equity_fallback" not in health
    # The engine asked for it once, at the first start; the restart on day 2 is in the same week.
    asked = [r for r in world.venue.request_log if r.path == "/v2/account/portfolio/history"]
    assert len(asked) == 1 and asked[0].status == 200


def test_the_fake_history_before_its_start_is_the_starting_book_held(tmp_path: Path) -> None:
    world = World(load_scenario(SCENARIO), 1, tmp_path, WorldOptions())
    request = RestRequest(method="GET", path="/v2/account/portfolio/history",
                          query={"period": "1W", "timeframe": "1D"}, headers={})
    status, reply = world.venue.handle_decoded(request)
    assert status == 200
    points = dict(history_points(reply))
    assert points[dt.date(2011, 10, 28)] == FRIDAY_CLOSE
    assert points[dt.date(2011, 10, 31)] == Decimal(36_000) + 2_900 * Decimal("14.80")  # Monday's close
    assert points[dt.date(2011, 11, 1)] == TUESDAY_CLOSE == world.venue.account.last_equity
    assert max(points) == dt.date(2011, 11, 2)  # the live point: now, before Wednesday's open


def test_without_a_history_before_the_week_the_window_starts_from_last_equity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_rest, "_pre_start_points", lambda venue, start_ns, end_ns: [])
    world = World(load_scenario(SCENARIO), 1, tmp_path, WorldOptions())
    report = run_world(world)
    assert report.kill_trigger != "weekly_loss"  # the week looks flat from Tuesday's close: a wrong judgement
    assert world.record.engines[0].ctx.state.start_of_week_equity == TUESDAY_CLOSE
    health = _health(tmp_path)
    assert '"event":"week_start_equity_fallback"' in health and "has no session before 2011-10-31" in health


class _Silent:
    async def get_portfolio_history(self, **_: Any) -> dict[str, Any]:
        raise BrokerUnavailable("GET /v2/account/portfolio/history: retries exhausted (503)")


class _Ctx:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, object] | None]] = []

    def system(self, kind: str, *, reason: str = "", extra: dict[str, object] | None = None) -> None:
        self.records.append((kind, reason, extra))


def test_an_unanswered_history_falls_back_to_last_equity_audited() -> None:
    ctx = _Ctx()
    engine: Any = SimpleNamespace(broker=_Silent(), ctx=ctx)
    got = trio.run(lambda: Engine.week_start_equity(engine, "2011-11-02", last_equity=Decimal("76774")))
    assert got == Decimal("76774")
    [(kind, reason, extra)] = ctx.records
    assert kind == "health" and "did not answer" in reason and "503" in reason
    assert extra == {"event": "week_start_equity_fallback", "start_of_week_equity": "76774"}


class _Unasked:
    async def get_portfolio_history(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("a Monday needs no history: last_equity is the close before the week")


def test_on_a_monday_the_week_starts_from_last_equity_without_asking() -> None:
    ctx = _Ctx()
    engine: Any = SimpleNamespace(broker=_Unasked(), ctx=ctx)
    got = trio.run(lambda: Engine.week_start_equity(engine, "2011-10-31", last_equity=Decimal("78920")))
    assert got == Decimal("78920") and ctx.records == []
