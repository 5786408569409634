"""A value that misses its interval by float32 rounding alone lies inside it."""

from __future__ import annotations

from sweep.analysis.intervals import enclosing


def test_a_bound_missing_the_value_by_rounding_moves_onto_it_and_a_real_miss_stays():
    value = 0.08868049085140228  # float32 mIoU; every draw of one image gave it in float64
    assert enclosing(0.08868048957146168, 0.08868048957146168, value) == (
        0.08868048957146168,
        value,
    )
    assert enclosing(0.4, 0.5, 0.3) == (0.4, 0.5)  # a skewed bootstrap: kept as it is
    assert enclosing(0.2, 0.5, 0.3) == (0.2, 0.5)
    assert enclosing(float("nan"), float("nan"), 0.3)[0] != 0.3
