"""A sweep's intervals and recommendation where the bootstrap is degenerate: every image
right, no image changing its answer, a model at chance."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import binomtest

from sweep.analysis.bootstrap import BootstrapOptions
from sweep.analysis.chance import classification_chance
from sweep.analysis.intervals import (
    AT_CHANCE,
    BootstrapRatio,
    measure_intervals,
    with_intervals,
)
from sweep.analysis.outcomes import write_outcomes
from sweep.analysis.proportions import PairedRatio
from sweep.analysis.recommendation import RecommendOptions, recommend
from sweep.store import ArtifactStore

ORIG = "original"
SETTINGS = (ORIG, "4")
ACCURACY = {"accuracy": "correct"}


def accuracy(outcomes, counts):
    """Classification's resample, with a per-class key beside it as the kinds may add."""
    correct = np.asarray(outcomes["correct"], dtype=np.float64)
    per_class = np.stack([counts @ correct / counts.sum(1)] * 2, axis=1)
    return {"accuracy": counts @ correct / counts.sum(1), "per_class/accuracy": per_class}


def stored_sweep(tmp_path, labels: np.ndarray, predictions: dict, seeds=(0,)):
    """A store holding each cell's outcomes: predictions[(train, test)] per image (the same
    for every seed); returns the store and the evaluations as measure_intervals takes them."""
    store = ArtifactStore(tmp_path / "store")
    sources = [f"img{i:03d}.jpg" for i in range(len(labels))]
    evaluations = {}
    for (train, test), predicted in predictions.items():
        for seed in seeds:
            key = f"{train}-{test}-{seed}"
            folder = store.path("evaluate", key)
            folder.mkdir(parents=True)
            outcomes = {"label": labels, "prediction": predicted, "correct": predicted == labels}
            write_outcomes(folder, sources, outcomes)
            evaluations[(train, test, seed)] = SimpleNamespace(key=key)
    return store, evaluations


def grid_of(predicted: np.ndarray) -> dict:
    return {(train, test): predicted for train in SETTINGS for test in SETTINGS}


def rows_of(predictions: dict, labels: np.ndarray, seeds=(0,)) -> list[dict]:
    rows = []
    for (train, test), predicted in predictions.items():
        for seed in seeds:
            value = float(np.mean(predicted == labels))
            rows.append({"train_setting": train, "test_setting": test, "seed": seed,
                         "metric": "accuracy", "value": value})  # fmt: skip
    return rows


DCR_ROWS = [
    {"split": split, "setting": setting, "original_bytes": 100, "encoded_bytes": share}
    for split in ("train", "test")
    for setting, share in ((ORIG, 100), ("4", 20))
]


def recommendation(intervals, rows) -> dict:
    values = {(r["train_setting"], r["test_setting"]): r["value"] for r in rows}
    relative = {cell: v / values[(ORIG, ORIG)] for cell, v in values.items()}
    return recommend(
        "accuracy", values, relative, intervals.headline_relative("accuracy"), DCR_ROWS,
        lambda s: f"distance {s}", RecommendOptions(0.99), 0.95,
        intervals.chance.get("accuracy"),
    )  # fmt: skip


def test_twenty_images_all_right_reach_below_ninety_percent_and_recommend_nothing(tmp_path):
    labels = np.arange(20) % 4
    predictions = grid_of(labels.copy())
    store, evaluations = stored_sweep(tmp_path, labels, predictions)
    intervals = measure_intervals(
        store, evaluations, accuracy, BootstrapOptions(replicates=200), ACCURACY,
        classification_chance,
    )  # fmt: skip
    rows = with_intervals(rows_of(predictions, labels), intervals)
    exact = binomtest(20, 20).proportion_ci(0.95, method="exact")
    for row in rows:
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((exact.low, 1.0))
        assert row["ci_low"] < 0.9
        if (row["train_setting"], row["test_setting"]) == (ORIG, ORIG):
            assert (row["relative_ci_low"], row["relative_ci_high"]) == (1.0, 1.0)
        else:  # no image changed its answer, and the interval still says 20 images are few
            assert row["relative_ci_low"] == pytest.approx(20 / (20 + 1.959964**2), abs=1e-6)
        assert AT_CHANCE not in row
    out = recommendation(intervals, rows)
    assert "chance" not in out
    for scenario in out["scenarios"].values():
        assert scenario["recommended"] is None
        (candidate,) = scenario["candidates"]
        assert candidate["relative_lower_bound"] < 0.9 and candidate["images_needed"] == 268
        assert candidate["interval"].startswith("Newcombe")
        assert "with 95% confidence on 20 test images; keep the originals" in scenario["sentence"]
        assert "about 268 test images" in scenario["sentence"]


def test_without_the_share_metrics_the_bootstrap_collapses_to_a_point(tmp_path):
    labels = np.arange(20) % 4
    predictions = grid_of(labels.copy())
    store, evaluations = stored_sweep(tmp_path, labels, predictions)
    intervals = measure_intervals(store, evaluations, accuracy, BootstrapOptions(replicates=200))
    (row, *_) = with_intervals(rows_of(predictions, labels), intervals)
    assert (row["ci_low"], row["ci_high"]) == (1.0, 1.0)  # what the user saw
    assert isinstance(intervals.headline_relative("accuracy")[("4", "4")], BootstrapRatio)


def test_a_setting_that_loses_images_says_more_images_cannot_help(tmp_path):
    labels = np.arange(100) % 4
    compressed = labels.copy()
    compressed[:10] = (labels[:10] + 1) % 4  # 10 of 100 flip to wrong at setting 4
    predictions = grid_of(labels.copy()) | {
        (ORIG, "4"): compressed, ("4", "4"): compressed, ("4", ORIG): compressed,
    }  # fmt: skip
    store, evaluations = stored_sweep(tmp_path, labels, predictions)
    intervals = measure_intervals(
        store, evaluations, accuracy, BootstrapOptions(replicates=200), ACCURACY
    )
    evidence = intervals.headline_relative("accuracy")[(ORIG, "4")]
    assert evidence == PairedRatio(both=90, cell_only=0, reference_only=10, neither=0)
    out = recommendation(intervals, rows_of(predictions, labels))
    sentence = out["scenarios"]["deploy_compressed"]["sentence"]
    assert "reaches 99%, so more test images cannot help" in sentence


def test_seeds_means_keep_the_bootstrap_and_each_seed_its_exact_interval(tmp_path):
    labels = np.arange(40) % 4
    predicted = labels.copy()
    predicted[:6] = (labels[:6] + 1) % 4
    predictions = grid_of(predicted)
    store, evaluations = stored_sweep(tmp_path, labels, predictions, seeds=(0, 1))
    intervals = measure_intervals(
        store, evaluations, accuracy, BootstrapOptions(replicates=200), ACCURACY
    )
    assert isinstance(intervals.headline_relative("accuracy")[("4", "4")], BootstrapRatio)
    columns = intervals.columns(("4", "4", 1), "accuracy")
    exact = binomtest(34, 40).proportion_ci(0.95, method="exact")
    assert (columns["ci_low"], columns["ci_high"]) == pytest.approx((exact.low, exact.high))
    mean = intervals.columns(("4", "4", "mean"), "accuracy")
    assert mean["ci_low"] != pytest.approx(exact.low)  # a percentile of the replicates


def test_a_model_at_chance_warns_and_the_grid_cannot_answer(tmp_path, caplog):
    labels = np.arange(3000) % 3  # balanced: chance is 1/3
    predicted = np.zeros(3000, dtype=labels.dtype)  # always the first class, at every setting
    predictions = grid_of(predicted)
    store, evaluations = stored_sweep(tmp_path, labels, predictions)
    blind = measure_intervals(
        store, evaluations, accuracy, BootstrapOptions(replicates=200), ACCURACY
    )
    rows = with_intervals(rows_of(predictions, labels), blind)
    # Without the check, 3,000 images that never change their answer "keep 99%".
    assert recommendation(blind, rows)["scenarios"]["store_compressed"]["recommended"] == "4"
    with caplog.at_level(logging.WARNING, logger="sweep.analysis.intervals"):
        intervals = measure_intervals(
            store, evaluations, accuracy, BootstrapOptions(replicates=200), ACCURACY,
            classification_chance,
        )  # fmt: skip
    assert "is not above its chance level 33.3%" in caplog.text
    rows = with_intervals(rows_of(predictions, labels), intervals)
    assert all("the grid cannot answer" in row[AT_CHANCE] for row in rows)
    out = recommendation(intervals, rows)
    assert out["chance"]["chance_level"] == pytest.approx(1 / 3)
    assert out["chance"]["reference_ci_low"] < 1 / 3 < out["chance"]["reference_ci_high"]
    for scenario in out["scenarios"].values():
        assert scenario["recommended"] is None
        assert "the grid cannot answer" in scenario["sentence"]
        assert "33.3%" in scenario["sentence"]


def test_a_bootstrap_interval_narrows_as_one_over_the_root_of_the_images():
    replicates = 0.995 + np.random.default_rng(0).normal(0, 0.01 / 1.645, 20000)
    evidence = BootstrapRatio(replicates, images=100, observed=0.995)
    bound = evidence.lower_bound(0.95)
    assert bound == pytest.approx(0.985, abs=3e-4)
    needed = evidence.images_needed(0.99, 0.95)
    # The lower bound's distance to the value halves with 4x the images: (0.01 / 0.005)^2.
    assert needed == int(np.ceil(100 * ((0.995 - bound) / 0.005) ** 2))
    assert 380 < needed < 420
    assert BootstrapRatio(replicates, 100, 0.989).images_needed(0.99, 0.95) is None
    assert BootstrapRatio(replicates, 100, float("nan")).images_needed(0.99, 0.95) is None
