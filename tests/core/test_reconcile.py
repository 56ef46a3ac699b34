"""Reconciliation tolerance: 0.1 % of position value (spec 1.3); one-sided positions are always material."""

from __future__ import annotations

from decimal import Decimal

from core.reconcile import compare_positions, reconcile

D = Decimal


def test_equal_books_have_no_discrepancy() -> None:
    assert compare_positions({"A": D(10)}, {"A": D(10)}, {"A": D(5)}) == []


def test_small_difference_within_tolerance_is_not_material() -> None:
    (d,) = compare_positions({"A": D(10_000)}, {"A": D(10_001)}, {"A": D(5)})
    assert not d.material  # 5 USD of 50,005 USD = 0.0099 %


def test_difference_above_tolerance_is_material() -> None:
    (d,) = compare_positions({"A": D(100)}, {"A": D(101)}, {"A": D(5)})
    assert d.material and d.value_diff_usd == D(5)


def test_one_sided_position_is_material() -> None:
    (d,) = compare_positions({}, {"B": D(1)}, {"B": D(1)})
    assert d.material and d.engine_qty == 0


def test_open_order_sets_are_compared() -> None:
    report = reconcile({}, {}, {}, {"x", "y"}, {"y", "z"})
    assert [o.order_id for o in report.orders] == ["x", "z"]
    assert report.material
