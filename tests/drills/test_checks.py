"""The drill checks on hand-made records: each invariant holds on a clean record and catches its breach."""

from __future__ import annotations

import copy
from typing import Any

from tools.drill import DRILLS, check_records, describe

SIGNAL = "0f8e2a3c-1111-4222-8333-444455556666"


def clean() -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    venue = {
        "orders": [
            {"order_id": "o1", "client_order_id": f"tt-{SIGNAL}-0", "parent_id": None},
            {"order_id": "o2", "client_order_id": "leg-uuid", "parent_id": "o1"},  # a bracket leg
            {"order_id": "x9", "client_order_id": "someone-else", "parent_id": None},
        ],
        "fills": [
            {"execution_id": "e1", "order_id": "o1", "client_order_id": f"tt-{SIGNAL}-0"},
            {"execution_id": "e2", "order_id": "o2", "client_order_id": "leg-uuid"},
            {"execution_id": "e9", "order_id": "x9", "client_order_id": "someone-else"},  # not ours
        ],
        "positions": {"NVDA": "50"},
        "internal_errors": [],
    }
    audited = [{"extra": {"execution_id": "e1"}}, {"extra": {"execution_id": "e2"}}]
    state = {"ledger": {"seen_execution_ids": ["e1", "e2"], "holdings": {"NVDA": ["50", "99.8", "0"],
                                                                          "ORCL": ["0", "0", "1.5"]}}}
    return venue, audited, state


def test_clean_records_hold() -> None:
    assert check_records(*clean()) == []


def test_duplicate_submission_for_one_signal_attempt_is_caught() -> None:
    venue, audited, state = clean()
    venue["orders"].append({"order_id": "o3", "client_order_id": f"tt-{SIGNAL}-0", "parent_id": None})
    problems = check_records(venue, audited, state)
    assert any("used by 2 venue orders" in p for p in problems)
    assert any(f"2 venue orders for signal {SIGNAL} attempt 0" in p for p in problems)


def test_a_second_attempt_of_the_same_signal_is_legal() -> None:
    venue, audited, state = clean()
    venue["orders"].append({"order_id": "o3", "client_order_id": f"tt-{SIGNAL}-1", "parent_id": None})
    assert check_records(venue, audited, state) == []


def test_fill_audited_twice_missing_or_phantom_is_caught() -> None:
    venue, audited, state = clean()
    twice = check_records(venue, [*audited, copy.deepcopy(audited[0])], state)
    assert any("execution e1 audited 2 times" in p for p in twice)
    missing = check_records(venue, audited[:1], state)
    assert any("1 venue executions never audited, e.g. e2" in p for p in missing)
    phantom = check_records(venue, [*audited, {"extra": {"execution_id": "e9"}}], state)
    assert any("audited executions the venue never made, e.g. e9" in p for p in phantom)


def test_positions_and_ledger_must_match_the_venue() -> None:
    venue, audited, state = clean()
    venue["positions"] = {"NVDA": "40"}
    assert any("positions differ" in p for p in check_records(venue, audited, state))
    venue, audited, state = clean()
    state["ledger"]["seen_execution_ids"] = ["e1"]
    assert any("ledger booked 1 executions" in p for p in check_records(venue, audited, state))
    assert any("no engine state file" in p for p in check_records(venue, audited, None))


def test_a_drill_without_orders_fails() -> None:
    venue, _audited, state = clean()
    venue["orders"], venue["fills"], venue["positions"] = [], [], {}
    state["ledger"] = {"seen_execution_ids": [], "holdings": {}}
    assert check_records(venue, [], state) == ["the runner placed no order at the venue: the drill exercised nothing"]


def test_every_drill_is_listed_with_a_description() -> None:
    assert {"runner_kill9", "venue_restart", "disconnect"} <= set(DRILLS)
    assert all(describe(name) for name in DRILLS)
