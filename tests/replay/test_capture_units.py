"""[capture] config, per-mode defaults, and stream frames the replay does not know carried through."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.bootstrap import open_capture
from adapters.capture import CaptureWriter, read_capture
from adapters.rundir import run_layout
from core.config import CaptureSection, ConfigError, EngineConfig, Mode, parse_config
from tools.replay import Capture, fills_of, load_capture, stop_events, stream_market


def test_capture_defaults_on_for_paper_only() -> None:
    section = CaptureSection()
    assert section.active(Mode.PAPER) and not section.active(Mode.LIVE) and not section.active(Mode.SIM)
    assert CaptureSection(enabled=True).active(Mode.LIVE) and not CaptureSection(enabled=False).active(Mode.PAPER)


def test_capture_keys_are_validated_with_file_and_key() -> None:
    config = parse_config("[capture]\nenabled = true\nmax_mb = 8\nkeep_sessions = 3\n", source="c.toml")
    assert config.capture == CaptureSection(enabled=True, max_mb=8.0, keep_sessions=3)
    with pytest.raises(ConfigError, match=r"c\.toml.*capture\.keep_sessions"):
        parse_config("[capture]\nkeep_sessions = 0\n", source="c.toml")
    with pytest.raises(ConfigError, match=r"c\.toml.*capture.*retention"):
        parse_config("[capture]\nretention = 3\n", source="c.toml")


def test_open_capture_lives_beside_the_audit_trail(tmp_path: Path) -> None:
    layout = run_layout(out_dir=tmp_path)
    assert open_capture(layout, CaptureSection(), Mode.LIVE, secrets=[]) is None  # live: opt-in
    writer = open_capture(layout, CaptureSection(), Mode.PAPER, secrets=["k" * 12], config=EngineConfig())
    assert writer is not None and writer.path.parent == tmp_path / "capture" != layout.audit_dir
    writer.close()


def test_unknown_frames_and_events_are_carried_not_fatal(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, secrets=[], header={"config": {}}, session="s")
    writer.write({"t": "ws_open", "conn": 1, "path": "/v2/iex"})
    writer.write({"t": "ws_in", "conn": 1, "enc": "json", "data": [
        {"T": "b", "S": "NVDA", "o": 1.0, "h": 1.2, "l": 0.9, "c": 1.1, "v": 10, "t": "2024-01-02T14:30:00Z"},
        {"T": "luld", "S": "NVDA", "u": 2.0}, {"T": "b", "S": "NVDA"}, "not a message"]})
    writer.write({"t": "ws_open", "conn": 2, "path": "/stream"})
    writer.write({"t": "ws_in", "conn": 2, "enc": "json", "data": {"stream": "trade_updates", "data": {
        "event": "pending_review", "order": {"id": "o1", "client_order_id": "tt-1"}}}})
    writer.write({"t": "ws_in", "conn": 2, "enc": "json", "data": {"stream": "a_new_stream", "data": {}}})
    writer.write({"t": "ws_close", "conn": 2, "code": 1000, "reason": "", "by": "client"})
    writer.close()
    capture = load_capture(writer.path)
    bars, quotes = stream_market(capture)
    assert list(bars["NVDA"].values()) == [("1.0", "1.2", "0.9", "1.1", "10")] and quotes == {}
    assert fills_of(capture) == []
    assert len(capture.connections[1].frames) == 2  # carried in the recording as received


def test_a_replayed_scenario_with_a_bad_data_file_fails_at_load(tmp_path: Path) -> None:
    import shutil

    from sim.scenario import load_scenario
    from tools.runner import REPO_ROOT

    for path in (REPO_ROOT / "scenarios" / "regressions").glob("paper_drill_capture_faults*"):
        shutil.copy(path, tmp_path / path.name)
    scenario = tmp_path / "paper_drill_capture_faults.toml"
    assert load_scenario(scenario).market.source == "recorded"
    bars = tmp_path / "paper_drill_capture_faults.NVDA.bars.csv"
    rows = bars.read_text().splitlines()
    bars.write_text("\n".join([*rows[:2], "123,abc,1,1,1,1,,,,", *rows[3:]]) + "\n")
    with pytest.raises(ConfigError, match=r"NVDA\.bars\.csv: line 3"):
        load_scenario(scenario)
    bars.write_text("\n".join(rows) + "\n")
    (tmp_path / "paper_drill_capture_faults.plan.json").write_text('{"version": 1, "answers": [{"method": "GET"}]}')
    with pytest.raises(ConfigError, match=r"replay\.plan.*plan\.json: bad entry"):
        load_scenario(scenario)


def test_a_failing_disk_stops_the_capture_not_the_caller(tmp_path: Path) -> None:
    writer = CaptureWriter(tmp_path, secrets=[], header={}, session="s")

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def flush(self, *args: object) -> None: ...

        def close(self) -> None: ...

    writer._gz = Full()  # type: ignore[assignment]
    writer.write({"t": "ws_in", "data": "x"})  # no exception
    assert writer.closed
    writer.close()


def test_a_capped_capture_replays_up_to_its_limit_and_unanswered_is_not_lost(tmp_path: Path) -> None:
    from tools.replay import plan_answers

    clock = iter(range(1, 100))
    writer = CaptureWriter(tmp_path, secrets=[], header={"config": {}}, session="s", wall_ns=lambda: next(clock))
    writer.write({"t": "http_req", "seq": 1, "method": "POST", "path": "/v2/orders", "body": {}})
    writer.write({"t": "http_req", "seq": 2, "method": "POST", "path": "/v2/orders", "body": {}})
    writer.write({"t": "http_resp", "seq": 2, "error": "ReadTimeout"})
    writer.max_bytes = 0  # the cap is reached here
    writer.write({"t": "http_req", "seq": 3, "method": "GET", "path": "/v2/account", "body": None})
    writer.close()
    capture = load_capture(writer.path)
    limit = next(r for r in read_capture(writer.path) if r["t"] == "limit")
    assert [e.seq for e in capture.exchanges] == [1, 2] and capture.last_ns == limit["wall_ns"]
    assert [a.get("lost") for a in plan_answers(capture)] == [True]  # seq 1 had no answer record: unknown


def test_a_recorded_answer_follows_its_order_not_the_interleaving(tmp_path: Path) -> None:
    """Recorded: order 1's first two attempts met 429s, order 2's first attempt met one (the k-th order is the
    k-th client order id submitted). Replayed, the attempts interleave otherwise (wall-clock timing of the recorded
    process): each order still meets its own answers."""
    import json

    from adapters.fake.interfaces import RestRequest
    from adapters.fake.replay_plan import ReplayPlan

    storm = {"status": 429, "body": {"code": 42910000, "message": "rate limit exceeded"}}
    answers = [{"method": "POST", "route": "/v2/orders", "n": n, "order": k, "leg": 0, "symbol": s, "side": "buy"}
               | storm for k, n, s in ((1, 1, "ORCL"), (1, 2, "ORCL"), (2, 1, "NVDA"))]
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"version": 1, "answers": answers, "orders": []}), encoding="utf-8")
    plan = ReplayPlan.load(plan_file)

    def post(coid: str, symbol: str) -> int | None:
        body = json.dumps({"client_order_id": coid, "symbol": symbol, "side": "buy", "qty": "1"}).encode()
        answer = plan.rest_answer(RestRequest("POST", "/v2/orders", {}, {}, body))
        return None if answer is None else answer.status

    # recorded: a, a, b, a, b; replayed: order 2's first attempt comes between order 1's first two
    assert [post("tt-a", "ORCL"), post("tt-b", "NVDA"), post("tt-a", "ORCL"), post("tt-a", "ORCL"),
            post("tt-b", "NVDA")] == [429, 429, 429, None, None]
    # a different order at a rank (the engine diverged) is answered by the venue, not by the recording
    other = ReplayPlan.load(plan_file)
    body = json.dumps({"client_order_id": "tt-x", "symbol": "AAPL", "side": "sell", "qty": "1"}).encode()
    assert other.rest_answer(RestRequest("POST", "/v2/orders", {}, {}, body)) is None


def test_a_replay_decides_exactly_as_far_as_the_recording_did() -> None:
    """The recorded process decides a bucket some ms after the bar that closes it arrives, the replay at once: a
    stop inside that gap must not give the replay one more decision (the capture drill's flaky extra order)."""
    s = 1_000_000_000
    decided = 1_000 * s  # the recorded engine decided the bucket ending here (at 1,001.1 s: bar close + batch)
    capture = Capture(Path("x.capture.jsonl.gz"), {}, [], [], 990 * s, 1_010 * s, stop_ns=1_002 * s + s // 20,
                      stop_decided_through_ns=decided)
    # The next bucket (ending at 1,001 s) would be decided at 1,002.1 s, after the stop record: without the record
    # of how far the engine had decided, the stop at 1,002.05 s lets the replay decide at 1,002 s + its batch.
    (event,) = stop_events(capture, bar_interval_ns=s, decision_interval_ns=s)
    assert event["kind"] == "operator_stop"
    assert decided + s + s // 10 < event["at_ns"] < decided + 2 * s + s // 10  # between the two decisions
    assert event["at_ns"] == decided + s + s // 2 + s // 10
    # An older capture, or an unknown interval: the stop record's own time, as before.
    old = Capture(Path("x.capture.jsonl.gz"), {}, [], [], 990 * s, 1_010 * s, stop_ns=1_002 * s)
    assert stop_events(old, bar_interval_ns=s, decision_interval_ns=s)[0]["at_ns"] == 1_002 * s
    assert stop_events(capture, bar_interval_ns=s, decision_interval_ns=None)[0]["at_ns"] == capture.stop_ns
