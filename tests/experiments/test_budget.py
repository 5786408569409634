"""The storage-budget experiment: nested subsets that fit, cells as ordinary stages, the law."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sweep.config.build import build_launch, build_sweep
from sweep.errors import OptionError
from sweep.experiments.budget.cells import BudgetOptions, fitting_prefix, image_order
from sweep.experiments.budget.report import COLUMNS
from sweep.experiments.budget.scaling_law import exponent_intervals, fit_law
from tests.conftest import FAST_SWEEP, compose_config, launch, record_calls, run_sweep


def test_the_prefix_that_fits_and_budgets_in_fractions_or_bytes():
    sizes = np.array([4, 3, 5, 2])
    assert [fitting_prefix(sizes, b) for b in (3, 4, 7, 11, 12, 100)] == [0, 1, 2, 2, 3, 4]
    options = BudgetOptions(budgets=(0.5, 2e6))
    assert options.budget_bytes(0.5, 1000) == 500 and options.budget_bytes(2e6, 1000) == 2_000_000
    # One seeded order: the same seed gives the same order, so subsets nest across budgets.
    np.testing.assert_array_equal(image_order(10, 3), image_order(10, 3))
    assert sorted(image_order(10, 3)) == list(range(10))


def test_the_law_recovers_its_exponents_from_cells_that_follow_it():
    rng = np.random.default_rng(0)
    n = np.repeat([50, 100, 200, 400, 800], 4).astype(float)
    bits = np.tile([2e3, 8e3, 3e4, 1e5], 5)
    error = 0.1 + 2.0 * n**-0.6 + 40.0 * bits**-0.5
    law = fit_law(n, bits, error + rng.normal(0, 0.002, error.shape))
    assert law.alpha == pytest.approx(0.6, abs=0.1) and law.beta == pytest.approx(0.5, abs=0.1)
    assert law.E == pytest.approx(0.1, abs=0.03)
    np.testing.assert_allclose(law.error(n, bits), error, atol=0.01)
    replicates = error + rng.normal(0, 0.002, (40, error.size))
    intervals = exponent_intervals(n, bits, replicates, 0.95)
    assert intervals["alpha"][0] <= 0.6 <= intervals["alpha"][1] + 0.05
    assert law.nu == pytest.approx(law.alpha * law.beta / (law.alpha + law.beta))
    assert fit_law(n[:4], bits[:4], error[:4]) is None  # fewer cells than constants


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("experiment.budgets=[]", "experiment.budgets: must be a non-empty list"),
        ("experiment.budgets=[0.1,0.1]", "experiment.budgets: lists a budget twice"),
        ("+experiment.size=3", "experiment.size: unknown option"),
        ("experiment.settings=[4]", "experiment.settings: must include 'original'"),
    ],
)
def test_bad_budget_options_name_themselves(override, message):
    with pytest.raises(OptionError, match=message):
        build_launch(compose_config("experiment=budget", override), check_data=False)


def test_the_budget_experiment_trains_nested_subsets_and_reuses_whole_split_trainings(
    imagefolder, tmp_path, monkeypatch
):
    common = (
        "task=imagefolder",
        f"task.root={imagefolder}",
        f"results_dir={tmp_path}",
        "cluster=inline",
        "cluster.torch_threads=1",
        "tracking=none",
        *FAST_SWEEP,
    )
    run_sweep(build_sweep(compose_config(*common)))  # the grid: whole-split trainings
    trained = []
    record_calls(monkeypatch, "train", "run", trained.append)
    budget = launch(*common, "experiment=budget", "experiment.budgets=[0.2,0.5,1.0]")
    report = budget.experiment.report(budget.session)
    with (report / "budget.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == COLUMNS
    images = {(r["setting"], float(r["budget"])): int(r["images"]) for r in rows}
    # More bytes hold more images; a compressed setting holds at least as many as originals.
    for setting in ("original", "4"):
        counts = [images[(setting, b)] for b in (0.2, 0.5, 1.0)]
        assert counts == sorted(counts)
    assert all(images[("4", b)] >= images[("original", b)] for b in (0.2, 0.5, 1.0))
    assert images[("original", 1.0)] == 18
    # Cells below one batch (8 images) say so and train nothing.
    small = [r for r in rows if int(r["images"]) < 8]
    assert small and all("fewer than one batch" in r["status"] for r in small)
    # The whole split at original is the grid's own training, reused.
    assert all(stage.subset is not None for stage in trained)
    for row in rows:
        assert int(row["bytes_used"]) <= int(row["budget_bytes"])
        if row["status"] == "trained":
            assert float(row["ci_low"]) <= float(row["value"]) <= float(row["ci_high"])
    summary = json.loads((report / "budget_law.json").read_text())
    assert summary["sentences"] and len(summary["best_by_budget"]) == 3
    for name in ("budget_by_bytes.png", "budget_by_images.png"):
        assert (report / name).stat().st_size > 0
