"""Drills: the real ``ttlive run --mode paper`` as a separate OS process against the loopback fake venue, with
faults injected from outside (kill -9 of the runner, a venue crash and restart, dropped WebSockets).

Each drill starts ``ttlive fake-alpaca --clock now --drill-admin`` (wall time, market open around the clock,
generated prices with 1 s bars, so a runner on the wall clock trades at once) and ``ttlive run --mode paper``
pointed at it, each in its own process group, on 127.0.0.1 with ephemeral ports; injects its fault; stops the
runner with SIGTERM (a graceful settle); then checks the invariants from the venue's records (fetched over
``GET /_drill/records``), the runner's audit files and its persisted engine state. Every process is killed
(by process group) when the drill ends, whatever happens. Drills are bounded: each phase has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

import httpx

from adapters.rundir import STATE_NAME
from core.model import NS_PER_S
from sim.invariants import audit_records, check_fills, check_submissions, positions_differ
from tools.exitcodes import EXIT_INTERRUPTED  # the runner's exit status after a graceful SIGTERM stop
from tools.runner import REPO_ROOT

DRILL_KEY_ID: Final = "drill-key-id"  # the fake accepts any key; the runner refuses secrets < 8 characters
DRILL_SECRET: Final = "drill-secret-key"
SYMBOLS: Final = (("NVDA", "semiconductors"), ("ORCL", "software"))
FAKE_READY_TIMEOUT_S: Final = 60.0  # the fake builds the NYSE calendar and a day of 1 s bars (~3-10 s)
RUNNER_READY_TIMEOUT_S: Final = 60.0  # the runner's "trading until ..." line
FIRST_TRADE_TIMEOUT_S: Final = 60.0  # first venue fill of the runner (~5-15 s on an idle machine)
STOP_TIMEOUT_S: Final = 60.0  # SIGTERM -> settle -> exit; then SIGKILL
HTTP_TIMEOUT_S: Final = 5.0
POLL_S: Final = 0.2


class DrillError(Exception):
    """The drill could not be carried out (a process did not start, a phase missed its deadline)."""


# --- the checks (pure: records in, violations out) -----------------------------------------------------------


def engine_positions(state: dict[str, Any]) -> dict[str, Decimal]:
    """Non-zero positions in a persisted engine state (``ledger.holdings``: symbol -> [qty, avg, ...])."""
    holdings = state.get("ledger", {}).get("holdings", {})
    out = {symbol: Decimal(str(row[0])) for symbol, row in holdings.items()}
    return {symbol: qty for symbol, qty in sorted(out.items()) if qty != 0}


def check_records(
    venue: dict[str, Any], audited_fills: list[dict[str, Any]], state: dict[str, Any] | None
) -> list[str]:
    """The drill invariants, from the venue's records, every audited fill (all runner lives) and the final
    engine state. Returns one sentence per violation; empty when everything holds."""
    violations: list[str] = []
    ours = [o for o in venue["orders"] if str(o["client_order_id"]).startswith("tt-")]
    if not ours:
        violations.append("the runner placed no order at the venue: the drill exercised nothing")
    our_ids = {o["order_id"] for o in ours}
    our_ids |= {o["order_id"] for o in venue["orders"] if o.get("parent_id") in our_ids}  # bracket legs

    # The same checks as every simulated session (sim.invariants), over the records the venue serves.
    violations += check_submissions([(str(o["order_id"]), str(o["client_order_id"])) for o in ours])
    venue_execs = {str(f["execution_id"]) for f in venue["fills"] if f["order_id"] in our_ids}
    if state is None:
        violations.append("no engine state file after the runner stopped")
    violations += check_fills(venue_execs, audited_fills, state)
    if state is not None:
        differ = positions_differ(engine_positions(state),
                                  {s: Decimal(str(q)) for s, q in venue["positions"].items()})
        if differ is not None:
            violations.append(differ)
    if venue.get("internal_errors"):
        violations.append(f"venue internal errors: {venue['internal_errors'][:3]}")
    return violations



# --- processes -----------------------------------------------------------------------------------------------


@dataclass
class Proc:
    """One child in its own process group (so a kill reaches its children too), output to a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def kill9(self) -> int:
        self.signal_group(signal.SIGKILL)
        return self.popen.wait(timeout=STOP_TIMEOUT_S)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait up to timeout_s, then SIGKILL; the exit status (negative: killed by that signal)."""
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self.signal_group(signal.SIGKILL)  # also any child left behind in the group
        return self.popen.wait(timeout=STOP_TIMEOUT_S)


@dataclass
class DrillResult:
    name: str
    violations: list[str]
    notes: list[str]
    workdir: Path
    pids: list[int] = field(default_factory=list)  # every process the drill started (all gone by now)

    @property
    def ok(self) -> bool:
        return not self.violations


@dataclass
class DrillRig:
    """The fake venue and the paper runner(s) of one drill, and what it takes to check them."""

    workdir: Path
    log: Callable[[str], None]
    seed: int = 0
    procs: list[Proc] = field(default_factory=list)
    port: int = 0
    runner: Proc | None = None
    runner_lives: int = 0
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # a drill's own checks (beyond check_records)

    # paths
    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    @property
    def audit_dir(self) -> Path:
        return self.state_dir / "audit"

    @property
    def snapshot_path(self) -> Path:
        return self.workdir / "venue.pkl"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Proc:
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "tools.cli", *args],
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                start_new_session=True,  # own process group: killpg reaches it and only it
            )
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        """Kill every process this drill started (runner first, then the venue)."""
        for proc in reversed(self.procs):
            if proc.popen.poll() is None:
                proc.signal_group(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=STOP_TIMEOUT_S)

    # the venue
    def start_venue(
        self, *, restore: bool = False, short_sessions: tuple[int, int] | None = None, faults: str = "",
        ticks: str | None = None,
    ) -> Proc:
        args = ["fake-alpaca", "--port", str(self.port), "--clock", "now", "--bar-interval-s", "1",
                "--seed", str(self.seed), "--rate-limit", "0", "--drill-admin",
                "--snapshot", str(self.snapshot_path)]
        if ticks is not None:
            args += ["--ticks", ticks]
        if restore:
            args.append("--restore")
        if short_sessions is not None:
            args += ["--short-sessions", f"{short_sessions[0]},{short_sessions[1]}"]
        if faults:  # a [faults] table (TOML), in a generator-market scenario the venue loads
            path = self.workdir / "venue_faults.toml"
            instruments = "".join(f'[[instruments]]\nsymbol = "{s}"\nsector = "{sec}"\n' for s, sec in SYMBOLS)
            path.write_text(f'schema_version = 1\nname = "drill_faults"\n{instruments}[market]\nsource = "generator"\n'
                            f"{faults}", encoding="utf-8")
            args += ["--scenario", str(path), "--bar-interval-s", "1"]
        proc = self._spawn(f"venue{sum(p.name.startswith('venue') for p in self.procs) + 1}", args)
        line = self._wait_for_line(proc, "fake-alpaca on http://127.0.0.1:", FAKE_READY_TIMEOUT_S)
        self.port = int(line.split("http://127.0.0.1:", 1)[1].split()[0].strip("/"))
        self.log(f"venue up on {self.url} ({proc.name}, pid {proc.popen.pid})")
        return proc

    def records(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/_drill/records", timeout=HTTP_TIMEOUT_S)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def post(self, endpoint: str) -> dict[str, Any]:
        response = httpx.post(f"{self.url}/_drill/{endpoint}", timeout=HTTP_TIMEOUT_S)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def crash_venue(self, venue: Proc) -> None:
        """The venue pickles its books and SIGKILLs itself inside one request: nothing happens in between."""
        with contextlib.suppress(httpx.HTTPError):  # the process dies before it answers
            httpx.post(f"{self.url}/_drill/crash", timeout=HTTP_TIMEOUT_S)
        status = venue.popen.wait(timeout=STOP_TIMEOUT_S)
        if status != -signal.SIGKILL:
            raise DrillError(f"the venue did not crash as asked (exit status {status})")
        if not self.snapshot_path.is_file():
            raise DrillError("the venue crashed without writing its snapshot")

    # the runner
    def write_config(self) -> Path:
        instruments = "".join(f'[[instruments]]\nsymbol = "{s}"\nsector = "{sec}"\n' for s, sec in SYMBOLS)
        text = (
            'mode = "paper"\n'
            f"{instruments}"
            '[policy]\nkind = "rule"\ndecision_interval_s = 1.0\n'
            "[dashboard]\nenabled = false\n"
            f'[audit]\ndir = "{self.audit_dir.as_posix()}"\n'
            f'[broker]\npaper_url = "{self.url}"\ndata_url = "{self.url}"\n'
        )
        path = self.workdir / "config.toml"
        path.write_text(text, encoding="utf-8")
        return path

    def start_runner(self, *extra: str) -> Proc:
        config = self.write_config()  # the venue's port may have changed (a restart rebinds it)
        self.runner_lives += 1
        proc = self._spawn(
            f"runner{self.runner_lives}",
            ["run", "--config", str(config), "--mode", "paper", "--no-dashboard", "--quiet", *extra],
            env={"APCA_API_KEY_ID": DRILL_KEY_ID, "APCA_API_SECRET_KEY": DRILL_SECRET},
        )
        self._wait_for_line(proc, "trading until", RUNNER_READY_TIMEOUT_S)
        self.log(f"runner life {self.runner_lives} trading (pid {proc.popen.pid})")
        self.runner = proc
        return proc

    def stop_runner(self) -> None:
        assert self.runner is not None
        status = self.runner.stop()
        self.log(f"runner life {self.runner_lives} stopped with SIGTERM: exit status {status}")
        if status != EXIT_INTERRUPTED:
            self.notes.append(f"runner life {self.runner_lives} exited {status} after SIGTERM "
                              f"(expected {EXIT_INTERRUPTED}); see {self.runner.log_path}")

    # waiting
    def _wait_for_line(self, proc: Proc, needle: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in proc.output().splitlines():
                if needle in line:
                    return line
            if proc.popen.poll() is not None:
                raise DrillError(f"{proc.name} exited {proc.popen.returncode} before {needle!r}:\n"
                                 f"{_tail(proc.output())}")
            time.sleep(POLL_S)
        raise DrillError(f"{proc.name} did not print {needle!r} within {timeout_s:g} s:\n{_tail(proc.output())}")

    def wait_for(self, what: str, predicate: Callable[[dict[str, Any]], bool], timeout_s: float) -> dict[str, Any]:
        """Poll the venue's records until predicate holds (the runner must stay alive meanwhile)."""
        deadline = time.monotonic() + timeout_s
        while True:
            records = self.records()
            if predicate(records):
                return records
            if self.runner is not None and self.runner.popen.poll() is not None:
                raise DrillError(f"the runner exited {self.runner.popen.returncode} while waiting for {what}:\n"
                                 f"{_tail(self.runner.output())}")
            if time.monotonic() > deadline:
                raise DrillError(f"no {what} within {timeout_s:g} s")
            time.sleep(POLL_S)

    def check(self) -> list[str]:
        state_path = self.state_dir / STATE_NAME
        state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else None
        return [*self.failures, *check_records(self.records(), audit_records(self.audit_dir, "fills"), state)]


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.splitlines()[-lines:])


def our_fills(records: dict[str, Any]) -> int:
    return sum(1 for f in records["fills"] if str(f["client_order_id"]).startswith("tt-"))


def our_orders(records: dict[str, Any]) -> int:
    return sum(1 for o in records["orders"] if str(o["client_order_id"]).startswith("tt-"))


# --- the drills ----------------------------------------------------------------------------------------------


def drill_runner_kill9(rig: DrillRig) -> None:
    """kill -9 the runner right after its first order reaches the venue (its fill may land while the runner
    is dead), restart it on the same state dir, let it trade, stop it. The second life must resync: no
    duplicate submission, every fill audited exactly once across both lives, engine positions == venue's."""
    rig.start_venue()
    rig.start_runner()
    rig.wait_for("first order of the runner", lambda r: our_orders(r) >= 1, FIRST_TRADE_TIMEOUT_S)
    assert rig.runner is not None
    status = rig.runner.kill9()
    before = rig.records()
    rig.log(f"runner killed with SIGKILL (status {status}) after {our_orders(before)} order(s), "
            f"{our_fills(before)} fill(s)")
    time.sleep(2.0)  # the venue goes on: a market order fills on the next 1 s bar with nobody listening
    rig.start_runner()
    time.sleep(8.0)  # trade on: a few decisions, the startup reconciliation done
    rig.stop_runner()


def drill_venue_restart(rig: DrillRig) -> None:
    """The venue process crashes (SIGKILL) mid-session and comes back 3 s later on the same port.

    What is simulated, honestly: the fake keeps its books in memory, so it pickles the whole venue (orders,
    fills, account, records) in the same request that kills it, and the new process restores that snapshot
    — a broker whose durable state survives an outage, which is what Alpaca's does. Lost: every WebSocket
    connection and any response in flight. The runner must notice, reconnect, resync and keep the
    invariants; the outage is shorter than the 30 s connectivity kill switch."""
    venue = rig.start_venue()
    rig.start_runner()
    rig.wait_for("first fill of the runner", lambda r: our_fills(r) >= 1, FIRST_TRADE_TIMEOUT_S)
    rig.crash_venue(venue)
    rig.log("venue crashed (snapshot taken); down for 3 s")
    time.sleep(3.0)
    rig.start_venue(restore=True)
    rig.wait_for("the runner's reconnection to the restarted venue",
                 lambda r: r.get("connections_opened", 0) >= 2, 45.0)
    time.sleep(5.0)
    rig.stop_runner()


def drill_disconnect(rig: DrillRig) -> None:
    """Drop every WebSocket of the runner (trading and market data) three times, 4 s apart, via the fake's
    fault endpoint (an abort: the client sees the connection die without a close handshake). The runner must
    reconnect each time (the venue counts the new connections), resync, and keep the invariants."""
    rig.start_venue()
    rig.start_runner()
    rig.wait_for("first fill of the runner", lambda r: our_fills(r) >= 1, FIRST_TRADE_TIMEOUT_S)
    opened = rig.records().get("connections_opened", 0)
    for _ in range(3):
        dropped = rig.post("drop_streams")["dropped"]
        rig.log(f"dropped {dropped} WebSocket connection(s)")
        time.sleep(4.0)
    rig.wait_for("reconnections after the drops", lambda r: r.get("connections_opened", 0) >= opened + 2, 30.0)
    reconnects = rig.records().get("connections_opened", 0) - opened
    rig.notes.append(f"{reconnects} WebSocket connection(s) opened after the first drop")
    rig.stop_runner()


SHORT_SESSIONS: Final = (20, 10)  # the three_sessions drill's market: 20 s days, 10 s nights
THREE_SESSIONS: Final = 3


def drill_three_sessions(rig: DrillRig) -> None:
    """One paper runner, three sessions, no restart by hand: the venue squeezes days into 20 s with 10 s nights
    (``--short-sessions``) and ``ttlive run --mode paper --sessions 3`` waits for each open, trades, settles
    after each close, audits how each session ended and writes its compliance report, then exits 0 on its own.
    Every session must count as paper-phase evidence (open to close, clean reconciliation)."""
    from core.sessions import SESSION_COMPLETED_EVENT

    rig.start_venue(short_sessions=SHORT_SESSIONS)
    rig.start_runner("--sessions", str(THREE_SESSIONS))
    assert rig.runner is not None
    budget_s = THREE_SESSIONS * sum(SHORT_SESSIONS) + STOP_TIMEOUT_S
    try:
        status = rig.runner.popen.wait(timeout=budget_s)
    except subprocess.TimeoutExpired:
        raise DrillError(
            f"the runner did not end on its own after {THREE_SESSIONS} sessions ({budget_s:g} s)"
        ) from None
    rig.log(f"runner exited on its own with status {status}")
    if status != 0:
        rig.failures.append(f"the runner exited {status}: {_tail(rig.runner.output())}")
    ended = [r for r in audit_records(rig.audit_dir, "health") if r["extra"].get("event") == SESSION_COMPLETED_EVENT]
    counted = [r for r in ended if r["extra"].get("counts") is True]
    rig.log(f"{len(ended)} session(s) ended, {len(counted)} counted; {our_orders(rig.records())} order(s)")
    if len(ended) != THREE_SESSIONS or len(counted) != THREE_SESSIONS:
        rig.failures.append(
            f"expected {THREE_SESSIONS} counted sessions, got {len(counted)} of {len(ended)}: "
            + "; ".join(str(r["extra"]) for r in ended)
        )
    if not list((rig.state_dir / "compliance").glob("compliance-*.json")):
        rig.failures.append("no daily compliance report was written")
    if our_orders(rig.records()) == 0:
        rig.failures.append("the runner placed no order in three sessions")


STORM_S: Final = 4  # the capture drill's 429 storms: this long, every twice this long
STORMS: Final = 30


def drill_capture(rig: DrillRig) -> None:
    """The paper runner's wire capture under faults: a third of order submissions lose their answer (applied,
    never answered), 4 s storms of 429s every 8 s, and every WebSocket dropped after the first fill and again
    inside a storm (the resync meets the 429s). The capture (state/capture/) is what ``ttlive replay`` rebuilds
    the session from."""
    first = time.time_ns() + 10 * NS_PER_S  # 429 storms of STORM_S every 2 * STORM_S, from 10 s on
    storms = [first + i * 2 * STORM_S * NS_PER_S for i in range(STORMS)]
    events = "".join(f'[[faults.events]]\nkind = "rate_limit_storm"\nat_ns = {at}\nduration_s = {STORM_S}\n'
                     for at in storms)
    # One quote per bar (--ticks bar): a replay rebuilds the market at bar resolution (each bar and the last quote
    # of its interval) and decides at the bar's close, while the recorded process decided a few ms to a few 100 ms
    # later, under load, on whatever quotes came meanwhile; with realistic ticks an order could size a share apart.
    rig.start_venue(faults=f"[faults]\nrest_timeout_after_accept_p = 0.34\n{events}", ticks="bar")
    rig.start_runner()
    rig.wait_for("first fill of the runner", lambda r: our_fills(r) >= 1, FIRST_TRADE_TIMEOUT_S)
    rig.log(f"dropped {rig.post('drop_streams')['dropped']} WebSocket connection(s)")
    storm = next((at for at in storms if at > time.time_ns() + NS_PER_S // 2), None)
    if storm is None:
        raise DrillError("the runner's first fill came after the last 429 storm")
    time.sleep((storm - time.time_ns()) / NS_PER_S + 0.3)
    # Inside a storm: the reconnections resync over REST, into 429s.
    rig.log(f"dropped {rig.post('drop_streams')['dropped']} WebSocket connection(s) during a 429 storm")
    time.sleep(STORM_S + 5.0)  # through the storm, and a few decisions after
    rig.stop_runner()
    from tools.replay import load_capture

    size = sum(p.stat().st_size for p in (rig.state_dir / "capture").glob("*.gz"))
    capture = load_capture(rig.state_dir)
    lost = sum(1 for e in capture.exchanges if e.error)
    storm = sum(1 for e in capture.exchanges if e.status == 429)
    closes = sum(1 for c in capture.connections if c.closed_by == "server")
    rig.notes.append(f"capture: {size / 1e6:.3f} MB for this session ({len(capture.exchanges)} REST exchanges: "
                     f"{lost} lost answers, {storm} 429s; {closes} stream(s) closed by the venue)")


DRILLS: Final[dict[str, Callable[[DrillRig], None]]] = {
    "capture": drill_capture,
    "disconnect": drill_disconnect,
    "runner_kill9": drill_runner_kill9,
    "three_sessions": drill_three_sessions,
    "venue_restart": drill_venue_restart,
}


def describe(name: str) -> str:
    doc = DRILLS[name].__doc__ or ""
    return " ".join(doc.split()).split(". ")[0]


def run_drill(
    name: str, *, workdir: Path | None = None, seed: int = 0, log: Callable[[str], None] = lambda _m: None
) -> DrillResult:
    """Run one drill end to end; every process it starts is gone when this returns. Raises KeyError for an
    unknown name; a drill that cannot be carried out reports that as a violation."""
    drill = DRILLS[name]
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        if any(workdir.iterdir()):
            raise DrillError(f"{workdir}: the work directory must be empty (a drill starts from a clean state)")
    work = workdir if workdir is not None else Path(tempfile.mkdtemp(prefix=f"ttlive-drill-{name}-"))
    rig = DrillRig(work, log, seed=seed)
    violations: list[str] = []
    try:
        drill(rig)
        violations = rig.check()
    except (DrillError, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
        violations = [f"drill could not complete: {exc}"]
    finally:
        rig.close()
    if workdir is None and not violations:
        shutil.rmtree(work, ignore_errors=True)  # kept on failure: the logs say what happened
    return DrillResult(name, violations, rig.notes, work, [p.popen.pid for p in rig.procs])
