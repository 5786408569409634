"""The recommendation: the highest-DCR setting whose lower bound clears the threshold."""

from __future__ import annotations

import numpy as np
import pytest

from sweep.analysis.intervals import BootstrapRatio
from sweep.analysis.recommendation import RecommendOptions, recommend, scenario_dcr

ORIG = "original"


def dcr_rows():
    """train 1000 bytes and test 500 bytes originally; setting 1 keeps half, setting 4 a
    fifth, setting 15 a twentieth."""
    rows = []
    for setting, share in ((ORIG, 1.0), ("1", 0.5), ("4", 0.2), ("15", 0.05)):
        for split, original in (("train", 1000), ("test", 500)):
            rows.append({"split": split, "setting": setting, "original_bytes": original,
                         "encoded_bytes": original * share})  # fmt: skip
    return rows


def cells(relatives: dict):
    """Relative values per cell, with replicates spread +-0.4% (+-2% for the 'noisy' ones)."""
    values, relative, replicates = {}, {}, {}
    rng = np.random.default_rng(0)
    for cell, (point, spread) in relatives.items():
        values[cell] = 0.8 * point
        relative[cell] = point
        replicates[cell] = BootstrapRatio(point + rng.normal(0, spread / 2, 1000), 240, point)
    return values, relative, replicates


def test_each_scenario_gets_the_highest_dcr_setting_that_is_surely_kept():
    values, relative, replicates = cells(
        {
            (ORIG, ORIG): (1.0, 0.0),
            ("1", "1"): (1.0, 0.004),
            ("4", "4"): (1.0, 0.004),  # kept, and the most bytes saved
            ("15", "15"): (0.8, 0.004),  # lost
            ("1", ORIG): (1.0, 0.004),
            ("4", ORIG): (1.0, 0.02),  # kept on average, but not surely
            ("15", ORIG): (0.7, 0.004),
            (ORIG, "1"): (0.9, 0.004),
            (ORIG, "4"): (0.8, 0.004),
            (ORIG, "15"): (0.5, 0.004),
        }
    )
    out = recommend("accuracy", values, relative, replicates, dcr_rows(),
                    lambda s: f"distance {s}", RecommendOptions(0.99))  # fmt: skip
    store = out["scenarios"]["store_compressed"]
    assert store["recommended"] == "4"
    assert store["sentence"].startswith("store train and test at distance 4: 80% fewer bytes")
    assert "relative accuracy 100.0% [" in store["sentence"]
    assert out["scenarios"]["train_compressed"]["recommended"] == "1"
    deploy = out["scenarios"]["deploy_compressed"]
    assert deploy["recommended"] is None and "keep the originals" in deploy["sentence"]
    candidate = store["candidates"][0]
    assert candidate["relative_ci_low"] <= candidate["relative"] <= candidate["relative_ci_high"]
    assert candidate["relative_lower_bound"] >= candidate["relative_ci_low"]


def test_the_dcr_of_storing_both_splits_counts_their_bytes_together():
    assert scenario_dcr(dcr_rows(), ("train", "test"), "4") == pytest.approx(0.8)
    assert scenario_dcr(dcr_rows(), ("test",), "1") == pytest.approx(0.5)
    assert scenario_dcr(dcr_rows(), ("test",), "9") is None


def test_a_threshold_given_in_percent_is_refused_by_name():
    with pytest.raises(ValueError, match="0.99 for 99%"):
        RecommendOptions(99)
