"""The dashboard's view of a running engine, and a way to serve it from a wall-clock thread of its own while
the engine runs on a virtual clock (``EngineDashboardSource``, ``LoopBridgeSource``, ``DashboardThread``).

Why a thread: hypercorn's timers and the page's once-a-second push must run on wall time, while a simulated
engine runs on trio's MockClock; everything that touches the engine is carried into the engine's loop.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any, Final

import trio

from adapters.alerts import DashboardAlertSink
from adapters.alpaca.models import ns_to_rfc3339
from adapters.dashboard.source import EQUITY_CURVE_MAX_POINTS, CommandRejected, money, validate_reset
from adapters.metrics import Metrics
from core.config import EngineConfig
from core.engine.snapshot import HaltView
from core.engine.system import Engine
from core.halt_fsm import HaltState
from core.ports import Clock

log = logging.getLogger("ttlive.dashboard")

COMMAND_SETTLE_S: Final = 5.0  # engine-clock seconds a kill/reset waits for the supervisor to act on it
COMMAND_POLL_S: Final = 0.01
BRIDGE_CALL_TIMEOUT_S: Final = 5.0  # wall seconds a snapshot may wait for a busy engine loop
THREAD_START_TIMEOUT_S: Final = 15.0
THREAD_STOP_TIMEOUT_S: Final = 5.0
STARTING: Final = "STARTING"  # no engine attached yet (or it has not loaded its state)
ZERO: Final = Decimal(0)


IdleCommand = Callable[[str, str, str], None]
"""(kind "kill" | "reset", actor, reason): a command while no engine runs (the persisted latch); raises
``CommandRejected`` when refused."""


def _pct(used: Decimal, limit: Decimal) -> str:
    return money(used / limit * 100) if limit > 0 else "0.00"


class EngineDashboardSource:
    """``DashboardSource`` over the engine the runner attaches (a new one per session day or restart).

    Reads only: the ledger (positions, marks, cash), the execution actor's open orders, the supervisor's halt
    machine, the streams' connection machines, the monitor's equity curve and the counters. Commands go
    through the engine's own operator controls (``Engine.kill`` / ``Engine.reset``), audited by the engine.
    ``daily_realized_pl`` is the ledger's realized P&L since this source first saw the session date.
    While no engine runs (before the pre-open, after the close) commands go to ``idle_command`` if given.
    """

    def __init__(
        self,
        *,
        mode: str,
        clock: Clock,
        alerts: DashboardAlertSink,
        engine: Engine | None = None,
        settle_s: float = COMMAND_SETTLE_S,
        idle_command: IdleCommand | None = None,
    ) -> None:
        self.mode = mode
        self._clock = clock
        self.alerts = alerts
        self._engine = engine
        self._settle_s = settle_s
        self._idle_command = idle_command
        self._realized_baseline: dict[str, Decimal] = {}  # session date -> ledger realized P&L at first sight

    @property
    def engine(self) -> Engine | None:
        return self._engine

    def attach(self, engine: Engine) -> None:
        """The runner's ``WorldOptions.on_engine`` hook: follow the engine of the current session day."""
        self._engine = engine

    # --- snapshot -------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        engine = self._engine
        now_ns = self._clock.now_ns()
        book = engine.snapshot() if engine is not None else None
        if engine is None or book is None or not book.has_book:
            return self._empty(now_ns, engine)
        config = engine.config
        positions: list[dict[str, Any]] = []
        unrealized = ZERO
        largest = ZERO
        sectors: dict[str, Decimal] = {}
        equity = book.equity_usd
        for position in book.positions:
            mark = position.current_price if position.current_price is not None else position.avg_entry_price
            market_value = position.qty * mark
            pl = (mark - position.avg_entry_price) * position.qty
            unrealized += pl
            largest = max(largest, abs(market_value))
            sector = config.sectors.get(position.symbol, "?")
            sectors[sector] = sectors.get(sector, ZERO) + abs(market_value)
            positions.append(
                {
                    "symbol": position.symbol,
                    "qty": str(position.qty),
                    "avg_entry_price": money(position.avg_entry_price),
                    "current_price": money(mark),
                    "market_value": money(market_value),
                    "unrealized_pl": money(pl),
                }
            )
        baseline = self._realized_baseline.setdefault(book.session_date, book.realized_pl_usd)
        curve = [
            [ns_to_rfc3339(ts), money(eq)] for ts, eq in book.equity_curve[-(EQUITY_CURVE_MAX_POINTS - 1) :]
        ]
        curve.append([ns_to_rfc3339(now_ns), money(equity)])
        return {
            "ts": ns_to_rfc3339(now_ns),
            "mode": self.mode,
            "positions": positions,
            "unrealized_pl": money(unrealized),
            "daily_realized_pl": money(book.realized_pl_usd - baseline),
            "open_orders": {"count": book.open_orders, "value_usd": money(book.open_order_value_usd)},
            "risk_utilisation": risk_utilisation(
                config,
                equity=equity,
                largest_position_usd=largest,
                largest_sector_usd=max(sectors.values(), default=ZERO),
                gross_usd=book.gross_exposure_usd,
                start_of_day_equity=book.start_of_day_equity,
                start_of_week_equity=book.start_of_week_equity,
            ),
            "connections": connections(engine),
            "halt": self._halt(book.halt),
            "alerts": self.alerts.recent(),
            "equity_curve": curve,
            "fills_count": book.counters.fills,
            "orders_count": book.counters.orders_submitted,
        }

    def starting(self) -> dict[str, Any]:
        """The placeholder before an engine loop runs (no clock to read yet: the epoch stands in)."""
        return self._empty(0, None)

    def _empty(self, now_ns: int, engine: Engine | None) -> dict[str, Any]:
        return {
            "ts": ns_to_rfc3339(now_ns),
            "mode": self.mode,
            "positions": [],
            "unrealized_pl": "0.00",
            "daily_realized_pl": "0.00",
            "open_orders": {"count": 0, "value_usd": "0.00"},
            "risk_utilisation": {},
            "connections": connections(engine) if engine is not None else {},
            "halt": self._halt(None),
            "alerts": self.alerts.recent(),
            "equity_curve": [],
            "fills_count": 0,
            "orders_count": 0,
        }

    @staticmethod
    def _halt(machine: HaltView | None) -> dict[str, Any]:
        if machine is None:
            return {"state": STARTING, "trigger": None, "reason": None, "since": None, "on_halt": None,
                    "protection": []}
        # What the halt does to the positions, and (while halted) each position's stop at the venue or its lack.
        shield = {"on_halt": machine.on_halt,
                  "protection": [p.to_dict() for p in machine.protection] if machine.halted else []}
        first = machine.first_trip
        if first is not None:
            return {
                "state": machine.state.value.upper(),
                "trigger": first.trigger.value,
                "reason": first.reason,
                "since": ns_to_rfc3339(first.ts_ns),
                **shield,
            }
        reset = machine.last_reset
        return {
            "state": machine.state.value.upper(),
            "trigger": None,
            "reason": None,
            "since": ns_to_rfc3339(reset.ts_ns) if reset is not None else None,
            **shield,
        }

    # --- commands -------------------------------------------------------------------------------------------

    def _running(self) -> Engine | None:
        """The running engine; None when it is not running and the runner handles commands itself."""
        engine = self._engine
        if engine is None or not engine.started.is_set() or engine.stopped.is_set():
            if self._idle_command is None:
                raise CommandRejected("the engine is not running")
            return None
        return engine

    async def kill(self, reason: str, source: str) -> None:
        engine = self._running()
        if engine is None:
            assert self._idle_command is not None
            self._idle_command("kill", source, reason)
            return
        if engine.is_halted:
            return  # latched already; the engine would record the extra trip, the operator gains nothing
        await engine.kill(reason, source=source)
        await self._wait(lambda: engine.is_halted)

    async def reset(self, operator: str, reason: str) -> None:
        operator, reason = validate_reset(operator, reason)
        engine = self._running()
        if engine is None:
            assert self._idle_command is not None
            self._idle_command("reset", operator, reason)
            return
        halt = engine.snapshot().halt
        if halt is None or not halt.halted:
            raise CommandRejected("reset refused: the kill switch is not engaged")
        if halt.state is not HaltState.HALTED:
            raise CommandRejected("reset refused: the halt is still under way (cancel-all); retry shortly")
        await engine.reset(operator, reason)
        await self._wait(lambda: not engine.is_halted)

    async def _wait(self, done: Callable[[], bool]) -> None:
        with trio.move_on_after(self._settle_s):
            while not done():
                await trio.sleep(COMMAND_POLL_S)


def connections(engine: Engine) -> dict[str, str]:
    """Each stream's connection-machine state (streams without a machine are left out)."""
    out: dict[str, str] = {}
    for name, stream in (("trade_updates", engine.trade_stream), ("market_data", engine.market_stream)):
        machine = getattr(stream, "machine", None)
        state = getattr(machine, "state", None)
        if state is not None:
            out[name] = str(getattr(state, "value", state)).upper()
    return out


def risk_utilisation(
    config: EngineConfig,
    *,
    equity: Decimal,
    largest_position_usd: Decimal,
    largest_sector_usd: Decimal,
    gross_usd: Decimal,
    start_of_day_equity: Decimal,
    start_of_week_equity: Decimal,
) -> dict[str, str]:
    """Percent of each limit consumed (spec 4.3), from the config's [risk] section."""
    r = config.risk
    if equity <= 0:
        return {}
    day_loss = (
        max(ZERO, start_of_day_equity - equity) / start_of_day_equity if start_of_day_equity > 0 else ZERO
    )
    week_loss = (
        max(ZERO, start_of_week_equity - equity) / start_of_week_equity if start_of_week_equity > 0 else ZERO
    )
    return {
        "daily_loss": _pct(day_loss, Decimal(r.daily_loss_halt_pct) / 100),
        "weekly_loss": _pct(week_loss, Decimal(r.weekly_loss_halt_pct) / 100),
        "position_size": _pct(largest_position_usd / equity, Decimal(r.max_position_pct) / 100),
        "sector": _pct(largest_sector_usd / equity, Decimal(r.max_sector_pct) / 100),
        "leverage": _pct(gross_usd / equity, Decimal(1)),  # initial deployment: 1x (spec 2.2 / 2.4)
    }


class LoopBridgeSource:
    """A ``DashboardSource`` for a dashboard in another thread: each call runs in the engine's trio loop.

    ``serve`` (a task in the engine's loop) records that loop's token; when it ends it keeps the last state,
    which is served from then on, and commands are refused: the session is over. Before it starts, the
    placeholder snapshot (``STARTING``) is served.
    """

    def __init__(
        self, inner: EngineDashboardSource, *, call_timeout_s: float = BRIDGE_CALL_TIMEOUT_S
    ) -> None:
        self.inner = inner
        self._call_timeout_s = call_timeout_s
        self._token: trio.lowlevel.TrioToken | None = None
        self._final: dict[str, Any] | None = None  # the last state, once the engine's loop has ended
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="dashboard-bridge"
        )

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._token = trio.lowlevel.current_trio_token()
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            self._token = None
            try:
                self._final = self.inner.snapshot()  # taken inside the loop, on the engine's clock
            except Exception:  # the session's own error, if any, is the one that matters
                log.exception("final dashboard snapshot failed")

    def close(self) -> None:
        self._token = None
        self._pool.shutdown(wait=False, cancel_futures=True)

    def snapshot(self) -> dict[str, Any]:
        token = self._token
        if token is None:
            return self._final if self._final is not None else self.inner.starting()
        # from_thread must not be called from a trio thread (this one runs the dashboard's loop): hop once.
        future = self._pool.submit(partial(trio.from_thread.run_sync, self.inner.snapshot, trio_token=token))
        try:
            return future.result(timeout=self._call_timeout_s)
        except trio.RunFinishedError:
            return self._final if self._final is not None else self.inner.starting()

    async def kill(self, reason: str, source: str) -> None:
        await self._command(self.inner.kill, reason, source)

    async def reset(self, operator: str, reason: str) -> None:
        validate_reset(operator, reason)  # refuse bad input here, without a trip into the engine's loop
        await self._command(self.inner.reset, operator, reason)

    async def _command(self, fn: Callable[..., Any], *args: Any) -> None:
        token = self._token
        if token is None:
            raise CommandRejected("the session has ended: no engine to command")
        try:
            await trio.to_thread.run_sync(partial(trio.from_thread.run, fn, *args, trio_token=token))
        except trio.RunFinishedError:
            raise CommandRejected("the session has ended: no engine to command") from None


class DashboardThread:
    """Runs ``serve_dashboard`` in a daemon thread with its own (wall-clock) trio loop."""

    def __init__(self, source: Any, metrics: Metrics, *, host: str, port: int, token: str) -> None:
        self._args = (source, metrics, host, port, token)
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop_token: trio.lowlevel.TrioToken | None = None
        self._scope: trio.CancelScope | None = None
        self._error: BaseException | None = None
        self.port: int | None = None

    def start(self, timeout_s: float = THREAD_START_TIMEOUT_S) -> int:
        """Start serving; returns the bound port. Raises the server's start-up error (e.g. port in use)."""
        self._thread = threading.Thread(target=self._run, name="ttlive-dashboard", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise TimeoutError(f"the dashboard did not start within {timeout_s} s")
        if self._error is not None:
            raise self._error
        assert self.port is not None
        return self.port

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to start(); after start-up it is logged
            if not self._ready.is_set():
                self._error = exc
            else:
                log.exception("dashboard thread failed")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        from adapters.dashboard.server import serve_dashboard

        self._loop_token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._scope = scope
            async with trio.open_nursery() as nursery:
                self.port = await nursery.start(partial(serve_dashboard, *self._args))
                self._ready.set()

    def stop(self, timeout_s: float = THREAD_STOP_TIMEOUT_S) -> None:
        token, scope = self._loop_token, self._scope
        if token is not None and scope is not None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(scope.cancel)
        if self._thread is not None:
            self._thread.join(timeout_s)


__all__ = ["DashboardThread", "EngineDashboardSource", "LoopBridgeSource", "connections", "risk_utilisation"]
