"""Issue 16, end to end: a paper runner (a separate OS process against `ttlive fake-alpaca` on loopback) is killed
with SIGKILL at a seeded random moment, its state file is deleted, and it is restarted on the same directory. It
must come back halted if and only if a halt was latched when it died (here: by `ttlive kill` before it started,
with no state yet). ~20-40 s per case, like the runner_kill9 drill."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from adapters.rundir import STATE_NAME
from sim.invariants import audit_records
from tools.cli import main
from tools.drill import POLL_S, DrillError, DrillRig

ENGINE_START_TIMEOUT_S = 60.0


def engine_starts(rig: DrillRig) -> list[dict[str, object]]:
    """The extra of every 'engine started' health record, oldest first (its 'halt' is the latch at start)."""
    return [dict(r["extra"]) for r in audit_records(rig.audit_dir, "health")
            if r["extra"].get("reason") == "engine started"]


def wait_for_engine_start(rig: DrillRig, count: int) -> dict[str, object]:
    deadline = time.monotonic() + ENGINE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        starts = engine_starts(rig)
        if len(starts) >= count:
            return starts[count - 1]
        assert rig.runner is not None and rig.runner.popen.poll() is None, rig.runner.output()[-3000:]
        time.sleep(POLL_S)
    raise DrillError(f"no engine start #{count} within {ENGINE_START_TIMEOUT_S:g} s")


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_a_killed_runner_without_its_state_comes_back_halted_iff_latched(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    latch = seed % 2 == 1  # seed 1 latches a halt before the runner starts, seed 2 does not
    kill_after_s = rng.uniform(0.5, 4.0)
    lines: list[str] = []
    rig = DrillRig(tmp_path, lines.append, seed=seed)
    try:
        rig.start_venue()
        if latch:  # a runner that has not run here yet: no state, no trail
            assert main(["kill", "--config", str(rig.write_config()), "--reason", "desk review"]) == 0
        rig.start_runner()
        first = wait_for_engine_start(rig, 1)
        assert (first["halt"] != "active") is latch
        time.sleep(kill_after_s)  # a seeded moment of the first life
        assert rig.runner is not None
        rig.runner.kill9()
        state = rig.state_dir / STATE_NAME
        latched = json.loads(state.read_text())["halt"].get("state", "active") != "active"  # the persisted latch
        state.unlink(missing_ok=True)
        rig.start_runner()
        second = wait_for_engine_start(rig, 2)
        assert (second["halt"] != "active") is latched, (second, lines)
        assert latched is latch
        rig.stop_runner()
    finally:
        rig.close()
