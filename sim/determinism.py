"""The one wrapped place where trio's task scheduling is made deterministic.

trio shuffles runnable tasks at random and keeps some in address-ordered sets; seeding its RNG and turning on
its deterministic-scheduling flag (both private, hence trio is pinned exactly) makes a run replay byte for byte.
"""

from __future__ import annotations

import trio._core._run as _trio_run


def seed_trio_scheduler(seed: int) -> None:
    """Call before every ``trio.run`` of a simulated world. Fails loudly if trio renamed its knobs."""
    if not hasattr(_trio_run, "_ALLOW_DETERMINISTIC_SCHEDULING") or not hasattr(_trio_run, "_r"):
        raise RuntimeError(
            "trio's private scheduler knobs moved; sim determinism needs trio==0.35.0 (see pyproject.toml)"
        )
    _trio_run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]  # trio's test-only knob
    _trio_run._r.seed(seed)
