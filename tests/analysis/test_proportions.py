"""Intervals for shares of images that hold at the boundary: every image right, none changed,
20 images, one image; checked against exact intervals and by Monte Carlo coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from sweep.analysis.bootstrap import BootstrapOptions, percentile_interval, replicate_values
from sweep.analysis.proportions import PairedRatio, clopper_pearson, paired_difference, wilson


@pytest.mark.parametrize(("hits", "n"), [(20, 20), (0, 20), (1, 1), (0, 1), (13, 20), (97, 100)])
def test_the_cell_interval_is_scipys_exact_binomial_interval(hits, n):
    low, high = clopper_pearson(hits, n, 0.95)
    exact = binomtest(hits, n).proportion_ci(0.95, method="exact")
    assert (float(low), float(high)) == pytest.approx((exact.low, exact.high), abs=1e-12)


def test_twenty_images_all_right_reach_below_ninety_percent():
    low, high = clopper_pearson(20, 20, 0.95)
    assert float(low) == pytest.approx(0.8316, abs=1e-4) and float(high) == 1.0
    assert float(clopper_pearson(1, 1, 0.95)[0]) == pytest.approx(0.025)  # one image: 2.5%


@pytest.mark.parametrize(("hits", "n"), [(20, 20), (0, 20), (1, 1), (7, 30)])
def test_the_wilson_interval_is_scipys(hits, n):
    low, high = wilson(hits, n, 0.9)
    expected = binomtest(hits, n).proportion_ci(0.9, method="wilson")
    assert (float(low), float(high)) == pytest.approx((expected.low, expected.high), abs=1e-12)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        # Fagerland, Lydersen & Laake, Stat Med 33:2850 (2014), table of the worked examples
        # ("Newcombe square-and-add"): airway hyper-responsiveness (Bentur et al.) and complete
        # response (Cavo et al.), rows the first measurement.
        ((1, 1, 7, 12), (-0.5069, -0.0256)),
        ((59, 6, 16, 80), (-0.1186, -0.0046)),
    ],
)
def test_the_paired_difference_is_newcombes_method_10(table, expected):
    low, high = paired_difference(*table, 0.95)
    assert (float(low), float(high)) == pytest.approx(expected, abs=1e-4)


def test_no_image_changing_its_answer_still_leaves_room_on_twenty_images():
    all_right = PairedRatio(both=20, cell_only=0, reference_only=0, neither=0)
    low, high = all_right.interval(0.95)
    # Wilson's lower end for 20/20, n / (n + z^2): the cell could lose 16% unseen.
    assert low == pytest.approx(20 / (20 + 1.959964**2), abs=1e-6) and high == 1.0
    assert all_right.lower_bound(0.95) == pytest.approx(20 / (20 + 1.644854**2), abs=1e-6)
    some_wrong = PairedRatio(both=15, cell_only=0, reference_only=0, neither=5)
    low, high = some_wrong.interval(0.95)
    assert low < 0.9 and high > 1.1 and some_wrong.relative == 1.0
    one = PairedRatio(both=1, cell_only=0, reference_only=0, neither=0)
    assert one.interval(0.95)[0] < 0.25
    assert np.isnan(PairedRatio(0, 0, 0, 5).interval(0.95)[0])  # no hit in the reference


def test_the_images_needed_are_the_first_that_clear_the_threshold():
    all_right = PairedRatio(both=20, cell_only=0, reference_only=0, neither=0)
    needed = all_right.images_needed(0.99, 0.95)
    # n / (n + z^2) >= 0.99 at one-sided 95% first at n = 99 z^2 = 267.8.
    assert needed == 268
    assert all_right.lower_bound(0.95, needed) >= 0.99 > all_right.lower_bound(0.95, needed - 1)
    losing = PairedRatio(both=18, cell_only=0, reference_only=1, neither=1)  # 94.7%
    assert losing.images_needed(0.99, 0.95) is None
    assert PairedRatio(200, 0, 0, 0).images_needed(0.9, 0.95) == 200  # already enough


def test_the_relative_interval_covers_at_twenty_images_where_the_bootstrap_cannot():
    """n = 20, reference right on 97% of images, the cell losing one image in 100 on net:
    the true ratio is 0.96 / 0.97. Most draws show no discordant image at all, where the
    percentile bootstrap says [100%, 100%] and misses it."""
    shares = (0.95, 0.01, 0.02, 0.02)  # both right, cell only, reference only, neither
    truth = (shares[0] + shares[1]) / (shares[0] + shares[2])
    tables = np.random.default_rng(7).multinomial(20, shares, size=2000)
    ratios = [PairedRatio(*table) for table in tables]
    ratios = [r for r in ratios if r.reference_share > 0]
    intervals = np.array([r.interval(0.95) for r in ratios])
    two_sided = np.mean((intervals[:, 0] <= truth) & (truth <= intervals[:, 1]))
    one_sided = np.mean([r.lower_bound(0.95) <= truth for r in ratios])
    assert two_sided >= 0.95 and one_sided >= 0.95, (two_sided, one_sided)

    def accuracy(outcomes, counts):
        return {"accuracy": counts @ outcomes["correct"] / counts.sum(1)}

    covered = []
    for table in tables[:200]:  # the percentile bootstrap of the same ratio, same draws
        cell = np.repeat([1.0, 1.0, 0.0, 0.0], table)
        reference = np.repeat([1.0, 0.0, 1.0, 0.0], table)
        values = replicate_values(
            {"cell": {"correct": cell}, "reference": {"correct": reference}},
            accuracy,
            BootstrapOptions(replicates=400, seed=0),
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = values["cell"]["accuracy"] / values["reference"]["accuracy"]
        low, high = percentile_interval(ratio, 0.95)
        covered.append(low <= truth <= high)
    assert np.mean(covered) < 0.7
