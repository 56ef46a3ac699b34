"""The result of one simulated session: what `report.json` holds and what the sweep table summarises.

Everything here is derived from records (venue logs, audit files, engine state), never from the engine's own
opinion of itself, so a broken engine cannot report itself healthy.
"""

from __future__ import annotations

import msgspec


class Report(msgspec.Struct, kw_only=True):
    scenario: str
    scenario_file: str
    seed: int
    git_revision: str
    trace_sha256: str
    audit_sha256: str
    invariant_violations: list[str]
    expectation_failures: list[str]
    orders_submitted: int
    venue_orders: int
    duplicate_client_order_ids: int
    fills: int
    halted: bool
    kill_trigger: str
    positions: dict[str, str]
    venue_positions: dict[str, str]
    equity_start_usd: str
    equity_end_usd: str
    max_drawdown_pct: str
    alerts: dict[str, int]
    counters: dict[str, int]
    reconnects: int
    polling_s: float
    rest_retries: int
    crashes: int
    binding_rules: dict[str, int]
    sim_seconds: float
    wall_seconds: float
    replay_command: str
    # What the run exercised (a swarm sums these, so a swarm cannot pass by testing nothing).
    coverage: dict[str, int] = msgspec.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.invariant_violations and not self.expectation_failures


def encode_report(report: Report) -> bytes:
    return msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"
