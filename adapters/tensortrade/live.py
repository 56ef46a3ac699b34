"""``ttlive run --agent tensortrade`` on a broker (paper or live): the configured policy runtime acts as a
TensorTrade agent stepping a ``TradingEnv`` built from AlpacaDataFeed, AlpacaExchange and AlpacaBroker
(spec 5.1) next to a running engine. The simulated twin is ``sim.bridge_world.BridgeWorld``.

The environment's bars are the engine's (``BridgeHost``: the market-data stream's bars rolled to the decision
interval, gap-filled and marked), its orders enter through ``Engine.submit_signal`` (audited signal ->
RiskGuard ``risk_check`` -> execution ``order``), and the kill switch closes the same gate for them as for
any other order. The engine's own policy actor runs ``BridgeHoldModel`` meanwhile, so only the agent trades.
"""

from __future__ import annotations

from typing import Any, Final

from adapters.policy.decision import load_decision_model
from adapters.tensortrade.components import default_environment
from adapters.tensortrade.episode import EpisodeSummary, PolicyAgent
from adapters.tensortrade.host import BridgeHoldModel, BridgeHost
from adapters.tensortrade.messages import BridgeError
from core.config import EngineConfig

AGENTS: Final = ("engine", "tensortrade")  # who decides: the engine's policy actor, or a TensorTrade env


def bracket_refusal(config: EngineConfig) -> str | None:
    """Why ``config`` cannot run the TensorTrade agent, or None."""
    if config.execution.brackets:
        return ("--agent tensortrade needs execution.brackets = false in the config: bracket legs would move "
                "the position behind TensorTrade's wallets")
    return None


class TensorTradeAgent:
    """The policy runtime of ``config.policy`` as a TensorTrade agent for one engine (one session)."""

    def __init__(self, config: EngineConfig) -> None:
        refusal = bracket_refusal(config)
        if refusal is not None:
            raise BridgeError(refusal)
        decision = load_decision_model(config.policy.kind, config.policy.model, config.policy.precision)
        self.policy_model_id = decision.model_id
        self.agent = PolicyAgent(decision.runtime, len(config.symbols))
        self.engine_model = BridgeHoldModel()  # the engine's own policy actor stays silent
        self.host: BridgeHost | None = None
        self.summary: EpisodeSummary | None = None

    def attach(self, engine: Any) -> BridgeHost:
        """Bind to the engine built with ``engine_model`` (before it runs: the host follows its decision clock)."""
        self.host = BridgeHost(engine)
        return self.host

    async def run_session(self, *, open_ns: int, close_ns: int) -> EpisodeSummary:
        """One episode: from the engine's first decision after ``open_ns`` to the session's last (or until the
        engine stops)."""
        assert self.host is not None, "attach(engine) first"
        self.summary = await self.host.run_session(open_ns=open_ns, close_ns=close_ns,
                                                   make_env=default_environment, agent=self.agent)
        return self.summary

    def describe(self) -> str:
        """One line for the operator, from the host's counters (they survive an episode cut by the stop)."""
        host, s = self.host, self.summary
        if host is None:
            return f"tensortrade agent ({self.policy_model_id}): not attached"
        state = "complete" if s is not None and not s.interrupted else "ended with the session/stop"
        return (f"tensortrade agent ({self.policy_model_id}): {host.steps_delivered} decisions on the engine's "
                f"bars ({host.interpolated_bars} carried-forward bars), {host.signals_sent} orders sent "
                f"(signals incl. cancels); episode {state}")
