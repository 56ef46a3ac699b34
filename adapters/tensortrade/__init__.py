"""TensorTrade 1.0.3 inside ttlive: the training environment (env.py) and the live bridge.

The bridge lets a TensorTrade agent trade through a running ``core.engine.system.Engine`` (the fake venue in
simulation, Alpaca paper or live otherwise). Nothing the agent does reaches the broker except as a ``Signal``
(model_id ``tensortrade-bridge``) sent into the engine's signal channel: the risk actor checks it (RiskGuard,
audited ``risk_check``), the execution actor turns it into an order (client order id ``tt-<signal_id>-<attempt>``,
audited ``order``), and fills come back through the engine's trade-update stream and ledger (audited ``fill``).
Its rooms:

* ``messages.py`` - the errors and the immutable values that cross between the trio side and the thread;
* ``host.py`` - the trio side: BridgeHost (bars, the thread's calls, virtual time) and BridgeHoldModel;
* ``client.py`` - the TensorTrade side's door: BridgeClient, ``current_client``, BridgeOrder;
* ``components.py`` - the TensorTrade subclasses: AlpacaDataFeed, AlpacaExchange, AlpacaBroker, the action
  scheme, observer and TradingEnvironment (spec 5.1), ``default_environment``;
* ``episode.py`` - the thread's body: ``run_episode``, PolicyAgent, EpisodeSummary.

Importing this package keeps ``tensortrade.agents`` (and with it TensorFlow) from loading, whichever submodule
is imported first: TensorFlow loaded next to torch crashed the process (feasibility notes).
"""

from __future__ import annotations

import sys
import types
from typing import Any


def _keep_tensortrade_agents_unloaded() -> None:
    """``import tensortrade`` pulls ``tensortrade.agents`` and with it TensorFlow, which later crashes torch
    (feasibility notes). Nothing here needs the agents, so that one sub-package becomes a placeholder."""
    if "tensortrade.agents" in sys.modules:
        return
    placeholder = types.ModuleType("tensortrade.agents")

    def _refuse(name: str) -> Any:
        raise AttributeError(f"tensortrade.agents.{name}: disabled in ttlive (the agents load TensorFlow)")

    placeholder.__getattr__ = _refuse  # type: ignore[method-assign]
    sys.modules["tensortrade.agents"] = placeholder


_keep_tensortrade_agents_unloaded()
