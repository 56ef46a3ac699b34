"""The spec 4.1 record: exact fields, builders that refuse bad input, canonical encoding, the hash chain."""

from __future__ import annotations

import hashlib
import itertools
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.audit import (
    GENESIS,
    GENESIS_SHA256,
    AuditRecord,
    AuditSchemaError,
    entry_from_mapping,
    fill_record,
    iso_from_ts_ns,
    order_record,
    risk_record,
    signal_record,
    slippage_bps,
    stream_for,
    system_record,
    ts_ns_from_iso,
    validate_entry,
)
from core.audit_chain import chain, decode_line, encode_line, head_of, integrity_problem
from tests.audit.factory import T0_NS, session

SPEC_FIELDS = [
    "timestamp", "event_type", "signal_id", "model_id", "symbol", "direction", "quantity",
    "risk_check_result", "alpaca_order_id", "execution_price", "slippage_bps", "latency_ms",
]  # fmt: skip


def test_record_has_exactly_the_spec_fields_then_extra_then_chain() -> None:
    assert list(AuditRecord.__struct_fields__) == [*SPEC_FIELDS, "extra", "seq", "prev_sha256", "sha256"]
    record = chain(session(1)[1], GENESIS)
    decoded = json.loads(encode_line(record))
    assert list(decoded) == [*SPEC_FIELDS, "extra", "seq", "prev_sha256", "sha256"]
    assert decoded["risk_check_result"] == {
        "passed": True,
        "rules_evaluated": ["position_limit"],
        "action_taken": "pass",
    }


def test_fill_record_values() -> None:
    entry = fill_record(
        ts_ns=T0_NS + 123_456_789, signal_id="s1", model_id="m1", symbol="AAPL", direction="long",
        quantity=Decimal("10"), alpaca_order_id="o1", execution_id="x1", execution_price=Decimal("100.10"),
        side="buy", reference_price=Decimal("100.00"), latency_ms=7,
    )  # fmt: skip
    assert entry.timestamp == "2024-01-02T14:30:00.123456789Z"
    assert entry.quantity == 10 and isinstance(entry.quantity, int)
    assert entry.execution_price == 100.1
    assert entry.slippage_bps == 10.0  # paid 10 bps above the reference on a buy
    assert entry.extra == {"execution_id": "x1", "reference_price": "100.00", "side": "buy"}
    assert stream_for(entry) == "fills"


def test_slippage_sign_follows_side() -> None:
    assert slippage_bps("sell", Decimal("99.90"), Decimal("100")) == 10.0  # sold below: a cost
    assert slippage_bps("buy", Decimal("99.90"), Decimal("100")) == -10.0  # bought below: an improvement


BASE: dict[str, Any] = {"ts_ns": 1, "signal_id": "s", "model_id": "m", "symbol": "A", "direction": "long"}
SIG: dict[str, Any] = {**BASE, "quantity": 1, "latency_ms": 0}
FILL: dict[str, Any] = {**SIG, "alpaca_order_id": "o", "execution_id": "x", "execution_price": Decimal(1),
                        "side": "buy"}  # fmt: skip


def _risk(passed: bool, action: str) -> dict[str, Any]:
    return {**SIG, "result": {"passed": passed, "rules_evaluated": [], "action_taken": action}}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: signal_record(**{**SIG, "direction": "up"}), "direction"),
        (lambda: signal_record(**{**SIG, "quantity": Decimal("1.0000000001")}), "at most 9 decimals"),
        (lambda: signal_record(**{**SIG, "quantity": -1}), ">= 0"),
        (lambda: signal_record(**{**SIG, "quantity": True}), "int or Decimal"),
        (lambda: signal_record(**{**SIG, "signal_id": ""}), "signal_id"),
        (lambda: signal_record(**{**SIG, "symbol": ""}), "symbol"),
        (lambda: signal_record(**{**SIG, "ts_ns": -5}), "ts_ns"),
        (lambda: signal_record(**{**SIG, "latency_ms": -1}), "latency_ms"),
        (lambda: signal_record(**SIG, extra={"x": float("nan")}), "finite"),
        (lambda: signal_record(**SIG, extra={"x": [1]}), "extra"),
        (lambda: signal_record(**SIG, extra={"": 1}), "extra key"),
        (lambda: risk_record(**_risk(True, "halt")), "contradicts"),
        (lambda: risk_record(**_risk(False, "pass")), "contradicts"),
        (lambda: risk_record(**_risk(False, "maybe")), "action_taken"),
        (lambda: fill_record(**{**FILL, "quantity": 0}), "quantity > 0"),
        (lambda: fill_record(**{**FILL, "execution_id": ""}), "execution_id"),
        (lambda: fill_record(**{**FILL, "execution_price": Decimal("NaN")}), "finite"),
        (lambda: fill_record(**{**FILL, "execution_price": Decimal(0)}), "execution_price"),
        (lambda: order_record(**SIG, client_order_id=""), "client_order_id"),
        (lambda: order_record(**SIG, client_order_id="c", extra={"client_order_id": "d"}), "duplicates"),
        (lambda: system_record("reset", ts_ns=1, reason="fixed"), "operator"),
        (lambda: system_record("halt", ts_ns=1), "reason"),
        (lambda: system_record("party", ts_ns=1, reason="x"), "system kind"),  # type: ignore[arg-type]
    ],
)
def test_invalid_records_raise_a_clear_error(build: object, message: str) -> None:
    with pytest.raises(AuditSchemaError, match=message):
        build()  # type: ignore[operator]


def test_mapping_input_is_validated_and_chain_fields_refused() -> None:
    good = json.loads(encode_line(chain(session(1)[0], GENESIS)))
    for key in ("seq", "prev_sha256", "sha256"):
        good.pop(key)
    assert entry_from_mapping(good) == session(1)[0]
    with pytest.raises(AuditSchemaError, match="seq"):
        entry_from_mapping({**good, "seq": 3})
    with pytest.raises(AuditSchemaError, match="quantity"):
        entry_from_mapping({**good, "quantity": "10"})


def test_chain_links_and_hash_covers_everything_but_itself() -> None:
    entries = session(2)
    head = GENESIS
    records: list[AuditRecord] = []
    for entry in entries:
        record = chain(entry, head)
        records.append(record)
        head = head_of(record)
    assert records[0].seq == 1 and records[0].prev_sha256 == GENESIS_SHA256
    for before, after in itertools.pairwise(records):
        assert after.seq == before.seq + 1
        assert after.prev_sha256 == before.sha256
    # sha256 = SHA-256 of the line with the sha256 member removed (same canonical encoding).
    line = encode_line(records[3]).rstrip(b"\n")
    suffix = b',"sha256":"' + records[3].sha256.encode() + b'"}'
    assert line.endswith(suffix)
    assert hashlib.sha256(line[: -len(suffix)] + b"}").hexdigest() == records[3].sha256


def test_decode_roundtrip_and_integrity() -> None:
    record = chain(session(1)[3], GENESIS)
    line = encode_line(record)
    assert decode_line(line) == record
    assert integrity_problem(record, line) is None
    tampered = line.replace(b'"quantity":10', b'"quantity":11')
    assert integrity_problem(decode_line(tampered), tampered) is not None
    spaced = line.replace(b'"quantity":10', b'"quantity": 10')
    assert "canonical" in (integrity_problem(decode_line(spaced), spaced) or "")
    with pytest.raises(AuditSchemaError):
        decode_line(line[:-20])
    with pytest.raises(AuditSchemaError):
        decode_line(line.replace(b'"direction":"long"', b'"direction":"sideways"'))


def test_extra_keys_encode_sorted_whatever_the_insertion_order() -> None:
    kwargs = {"ts_ns": 1, "signal_id": "s", "model_id": "m", "symbol": "A", "direction": "long",
              "quantity": 1, "latency_ms": 0}  # fmt: skip
    a = signal_record(**kwargs, extra={"b": 1, "a": "x"})  # type: ignore[arg-type]
    b = signal_record(**kwargs, extra={"a": "x", "b": 1})  # type: ignore[arg-type]
    assert encode_line(chain(a, GENESIS)) == encode_line(chain(b, GENESIS))
    assert b'"extra":{"a":"x","b":1}' in encode_line(chain(a, GENESIS))


def test_chained_record_is_refused_as_an_entry() -> None:
    record = chain(session(1)[0], GENESIS)
    with pytest.raises(AuditSchemaError, match="unchained"):
        validate_entry(record)


@given(st.integers(min_value=0, max_value=253_402_300_799_999_999_999))
def test_timestamp_roundtrip(ts_ns: int) -> None:
    text = iso_from_ts_ns(ts_ns)
    assert len(text) == 30 and text.endswith("Z")
    assert ts_ns_from_iso(text) == ts_ns


def test_timestamps_sort_like_instants() -> None:
    stamps = [iso_from_ts_ns(t) for t in (0, 999, 1_000_000_000, T0_NS, T0_NS + 1)]
    assert stamps == sorted(stamps)


def test_fractional_quantities_are_exact_decimal_strings_and_whole_ones_stay_ints() -> None:
    """Fractional sizing: the audit carries 0.123456789 shares exactly (a string, never a float)."""
    from core.audit import audit_quantity

    fractional = signal_record(**{**SIG, "quantity": Decimal("0.123456789")})
    assert fractional.quantity == "0.123456789" and audit_quantity(fractional) == Decimal("0.123456789")
    assert signal_record(**{**SIG, "quantity": Decimal("12.50")}).quantity == "12.5"
    assert signal_record(**{**SIG, "quantity": Decimal("7.000")}).quantity == 7  # whole: the int of spec 4.1
