"""The supervisor actor alone, on trio's MockClock: the kill switch's cancel-all when REST is down at the latch.

A stub broker refuses (BrokerUnavailable) until a given virtual time. The latch must still close at once (the
observers hear it before any network call), the halt completes unverified, and once REST answers the supervisor's
ticks retry the cancel-all until it holds — audited — and a restarted halted supervisor owes one too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import trio

from core.audit import AuditEntry
from core.config import EngineConfig
from core.engine.context import EngineContext
from core.engine.state import EngineState
from core.engine.supervisor import CANCEL_RETRY_S, Supervisor
from core.halt_fsm import HaltState
from core.ledger import Ledger
from core.model import AccountType
from core.ports import BrokerUnavailable

NS = 1_000_000_000
START_NS = 1_401_715_800 * NS


class TrioClock:
    def now_ns(self) -> int:
        return START_NS + round(trio.current_time() * NS)


class DownUntil:
    """cancel_all_orders / list_orders fail until ``up_at_s`` (trio time); then cancel empties the book."""

    def __init__(self, up_at_s: float) -> None:
        self.up_at_s = up_at_s
        self.open_orders = ["o-1", "o-2"]
        self.calls: list[tuple[float, str]] = []

    def _gate(self, what: str) -> None:
        self.calls.append((trio.current_time(), what))
        if trio.current_time() < self.up_at_s:
            raise BrokerUnavailable(f"{what}: REST down", retryable=True)

    async def cancel_all_orders(self) -> list[tuple[str, int]]:
        self._gate("cancel_all")
        cancelled, self.open_orders = self.open_orders, []
        return [(o, 200) for o in cancelled]

    async def list_orders(self, **_: Any) -> list[str]:
        self._gate("list_open")
        return list(self.open_orders)


class Records:
    def __init__(self) -> None:
        self.audit: list[AuditEntry] = []
        self.alerts: list[str] = []
        self.saved: dict[str, Any] | None = None

    def write(self, entry: AuditEntry) -> None:
        self.audit.append(entry)

    async def send(self, *, severity: str, key: str, message: str, ts_ns: int) -> None:
        self.alerts.append(key)

    def load(self) -> dict[str, Any] | None:
        return self.saved

    def save(self, state: dict[str, Any]) -> None:
        self.saved = state


def make(broker: DownUntil, records: Records, state: EngineState | None = None) -> tuple[Supervisor, Any]:
    ctx = EngineContext(
        config=EngineConfig(), broker=broker, clock=TrioClock(), ids=None, alerts=records,  # type: ignore[arg-type]
        audit_sink=records, store=records, account_type=AccountType.MARGIN_INITIAL, model_id="test",
        state=state or EngineState(ledger=Ledger(cash_usd=Decimal(100_000)), start_of_day_equity=Decimal(100_000),
                                   start_of_week_equity=Decimal(100_000)),
    )
    send, recv = trio.open_memory_channel[Any](16)
    _, resync_recv = trio.open_memory_channel[Any](16)
    latched: list[bool] = []
    supervisor = Supervisor(ctx, inbox=recv, resync=resync_recv, observers=[latched.append])  # type: ignore[arg-type]
    return supervisor, (send, latched, ctx)


def verified_records(records: Records) -> list[AuditEntry]:
    return [e for e in records.audit if e.extra.get("event") == "cancel_all_verified"]


async def test_a_cancel_all_that_fails_at_the_latch_is_retried_until_it_holds(autojump_clock: Any) -> None:
    broker, records = DownUntil(up_at_s=200.0), Records()
    supervisor, (_, latched, _) = make(broker, records)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.serve)
        await supervisor.trip("connectivity_lost", "REST unreachable for 31 s")
        assert latched == [True]  # the gate closed before any network call was answered
        assert supervisor.halt.state is HaltState.HALTED and not supervisor.cancel_all_verified
        assert broker.open_orders == ["o-1", "o-2"]  # REST is still down
        await trio.sleep(300.0)
        nursery.cancel_scope.cancel()
    assert broker.open_orders == []
    assert supervisor.cancel_all_verified and not supervisor.cancel_all_owed
    assert len(verified_records(records)) == 1
    retries = [t for t, what in broker.calls if what == "cancel_all" and t >= 200.0]
    assert retries and retries[0] < 200.0 + CANCEL_RETRY_S + 5.0  # held within one retry period of REST's return
    # While REST was down the retries were spaced, not a hot loop.
    assert sum(1 for t, what in broker.calls if what == "cancel_all") < 60


async def test_a_supervisor_restarted_halted_verifies_the_book_once(autojump_clock: Any) -> None:
    broker, records = DownUntil(up_at_s=0.0), Records()
    first, (_, _, ctx) = make(broker, records)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(first.serve)
        await first.trip("manual", "desk review")
        nursery.cancel_scope.cancel()
    assert first.cancel_all_verified
    broker.open_orders = ["placed-while-we-were-down"]
    broker.calls.clear()
    again, _ = make(broker, Records(), state=ctx.state)  # the persisted halt comes back latched
    assert again.halt.state is HaltState.HALTED and again.cancel_all_owed
    async with trio.open_nursery() as nursery:
        nursery.start_soon(again.serve)
        await trio.sleep(30.0)
        nursery.cancel_scope.cancel()
    assert broker.open_orders == [] and not again.cancel_all_owed
    assert [what for _, what in broker.calls].count("cancel_all") == 1


async def test_idle_equity_ticks_sleep_until_the_book_changes_and_still_trip_on_the_grid(autojump_clock: Any) -> None:
    """The idle tick re-marks equity every 5 s; with an unchanged book it would only repeat itself, so it sleeps
    until a writer rings (a mark, a fill) and then runs at the 5 s instant the plain loop would have used."""
    from core.engine.supervisor import IDLE_TICK_S
    from core.model import Fill, Side

    broker, records = DownUntil(up_at_s=0.0), Records()
    supervisor, (_, latched, ctx) = make(broker, records)
    steps: list[float] = []
    step = supervisor.step

    async def counted(message: Any) -> None:
        steps.append(trio.current_time())
        await step(message)

    supervisor.step = counted  # type: ignore[method-assign]
    ledger = ctx.state.ledger
    ledger.apply_fill(Fill(execution_id="x-1", client_order_id="c-1", order_id="v-1", symbol="NVDA",
                           side=Side.BUY, qty=Decimal(1000), price=Decimal(50), ts_ns=START_NS))
    supervisor.session_started(Decimal(100_000), new_week=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(supervisor.serve)
        await trio.sleep(0)
        t0 = trio.current_time()
        await trio.sleep(62.0)
        assert [round(t - t0) for t in steps] == [5], "one idle tick reads the book; then nothing changed"
        ledger.mark("NVDA", Decimal(49))  # at +62: a 1 % loss, below the daily limit
        ctx.book_changed()
        await trio.sleep(10.0)
        assert [round(t - t0) for t in steps] == [5, 65]  # the grid instant after the ring (5 + 12 * 5)
        assert latched == []
        ledger.mark("NVDA", Decimal(40))  # at +72: a 10 % loss of start-of-day equity 100,000
        ctx.book_changed()
        await trio.sleep(10.0)
        nursery.cancel_scope.cancel()
    assert [round(t - t0) for t in steps][:3] == [5, 65, 75]
    assert latched == [True] and supervisor.halt.state is HaltState.HALTED
    assert supervisor.trip_log[0][1] == "daily_loss" and IDLE_TICK_S == 5.0


class BracketBook:
    """A filled bracket entry listed "open" with its two legs working (as Alpaca lists it), and a protective stop."""

    def __init__(self) -> None:
        from core.model import BrokerOrder, OrderClass, OrderType, Side, TimeInForce
        from core.protect import protective_client_order_id

        def order(oid: str, coid: str, status: str, kind: OrderType, side: Side,
                  legs: tuple[BrokerOrder, ...] = ()) -> BrokerOrder:
            return BrokerOrder(id=oid, client_order_id=coid, symbol="ORCL", side=side, qty=Decimal(15),
                               filled_qty=Decimal(15 if status == "filled" else 0), filled_avg_price=None,
                               status=status, type=kind, time_in_force=TimeInForce.GTC,
                               order_class=OrderClass.BRACKET if legs else OrderClass.SIMPLE, legs=legs)

        self.status = {"parent": "filled", "take-profit": "new", "stop-loss": "held", "stop": "new"}
        self._make = lambda: [
            order("parent", "tt-entry-0", self.status["parent"], OrderType.LIMIT, Side.BUY, legs=(
                order("take-profit", "tt-entry-0-tp", self.status["take-profit"], OrderType.LIMIT, Side.SELL),
                order("stop-loss", "tt-entry-0-sl", self.status["stop-loss"], OrderType.STOP, Side.SELL))),
            order("stop", protective_client_order_id("00000000-0000-0000-0000-000000000001"), self.status["stop"],
                  OrderType.STOP, Side.SELL),
        ]
        self.cancelled: list[str] = []

    async def list_orders(self, **_: Any) -> list[Any]:
        return [o for o in self._make() if o.status != "canceled" or any(leg.status != "canceled" for leg in o.legs)]

    async def cancel_order(self, order_id: str) -> None:
        from core.ports import NotCancelable

        self.cancelled.append(order_id)
        if self.status[order_id] == "filled":
            raise NotCancelable(f"{order_id} is filled", retryable=False)
        self.status[order_id] = "canceled"


async def test_protect_mode_retry_cancels_a_filled_brackets_legs_and_spares_its_stops() -> None:
    """Swarm seed 31: the retry cancelled only the (uncancelable) filled parent, its legs kept it listed, and the
    cancel-all was never verified - so no protective stop was ever placed. scenarios/regressions/
    protect_retry_bracket_legs.toml is the whole world."""
    broker, records = BracketBook(), Records()
    supervisor, _ = make(broker, records)  # type: ignore[arg-type]
    remaining = await supervisor._cancel_all_but_stops()
    assert remaining == []
    assert sorted(broker.cancelled) == ["stop-loss", "take-profit"]  # the legs; never the parent, never our stop
    assert broker.status["stop"] == "new"
