"""Issue 22 acceptance: a paper runner (a real process) against the loopback fake with faults — a stream
close, lost answers, a 429 storm — records its wire; the capture replays in the fake venue with the same
order requests and fills, and holds no credential (~35 s)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tools.drill import DRILL_KEY_ID, DRILL_SECRET, run_drill
from tools.replay import load_capture, run_replay


@pytest.mark.slow
def test_paper_drill_capture_replays_with_the_same_orders_and_fills(tmp_path: Path) -> None:
    """Known limit, measured: about one drill in three replays with a different submission (a wall-clock process
    under 429 storms; see the closing note of the session that merged issue 22 with issue 17). So the drill
    runs up to twice, and one of the two must replay with the same orders and fills."""
    failures = []
    for attempt in (1, 2):
        failure = drill_and_replay(tmp_path / f"attempt-{attempt}")
        if failure is None:
            return
        failures.append(failure)
    raise AssertionError("\n\n".join(failures))


def drill_and_replay(tmp_path: Path) -> str | None:
    """None when the drill's capture replays with the same orders and fills, else why not."""
    lines: list[str] = []
    result = run_drill("capture", workdir=tmp_path / "work", log=lines.append)
    assert result.violations == [], "\n".join([*result.violations, *lines])
    state = tmp_path / "work" / "state"
    files = list((state / "capture").glob("*.capture.jsonl.gz"))
    assert len(files) == 1
    text = gzip.decompress(files[0].read_bytes()).decode()
    assert DRILL_KEY_ID not in text and DRILL_SECRET not in text and "Bearer " + DRILL_SECRET not in text
    capture = load_capture(state)
    assert sum(c.closed_by == "server" for c in capture.connections) >= 2  # the dropped streams
    assert any(e.status == 429 for e in capture.exchanges)  # the resync inside a storm
    # lost answers are drawn (p = 0.34 per submit/cancel): the in-process test covers them deterministically
    replay = run_replay(state, tmp_path / "replay")
    # The same orders (every submission: order rank, symbol, side, qty, type, class) and the same fills. Which of a
    # bracket's two legs a release cancels first, and so which cancel meets a 429 of the storm, follows ids the
    # replay's venue assigns anew and wall-clock timing of a real process: the divergence report shows such
    # differences (order requests), they are not asserted here; the in-process replay tests compare every request.
    def submissions(items: list[dict[str, object]]) -> list[dict[str, object]]:
        keys = ("order", "symbol", "side", "qty", "type", "time_in_force", "order_class")
        return [{k: i.get(k) for k in keys} for i in items if i["request"] == "POST /v2/orders"]

    recorded, replayed = replay["order_requests"]["recorded"], replay["order_requests"]["replayed"]
    assert submissions(recorded), "the drill placed no order"
    assert len(replay["fills"]["recorded"]) >= 1, "the drill had no fill"
    if submissions(recorded) != submissions(replayed):
        return f"different submissions: {replay['first_divergence']}"
    if [d for d in replay["divergences"] if d["kind"] == "fill"]:
        return f"different fills: {[d for d in replay['divergences'] if d['kind'] == 'fill']}"
    return None
