"""TensorTrade 1.0.3 inside ttlive: the training environment (env.py) and the live bridge (bridge.py).

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
