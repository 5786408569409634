"""Whole sweeps at the boundary: a classifier right on all 20 test images is not "surely"
kept by any setting, and one at chance says the grid cannot answer."""

from __future__ import annotations

import csv
import json
import logging

import pytest
import torch

from sweep.config.build import build_sweep
from sweep.report import results
from sweep.tasks.classification import ClassificationTask
from tests.conftest import SMALLER_VIT, compose_config, run_sweep, write_jpeg


def tiny_sweep(root, results_dir):
    """A 2 x 2 grid of a tiny ViT trained one epoch, no distortion, no MLflow; what its
    classifiers answer is the test's (`answering`)."""
    cfg = compose_config(
        "task=imagefolder", f"task.root={root}", f"results_dir={results_dir}",
        "cluster=inline", "cluster.torch_threads=1", "tracking=none", "train.epochs=1",
        "train.batch_size=8",
        "grid.train=[original,4]", "grid.test=[original,4]", "distortion.enabled=false",
        "progress=false", *SMALLER_VIT,
    )  # fmt: skip
    return build_sweep(cfg)


def folder_of(tmp_path, test_per_class: int):
    """Two classes, two training images each and `test_per_class` test images each."""
    root = tmp_path / "images"
    for label, name in enumerate(("cat", "dog")):
        for index in range(2):
            write_jpeg(root / "train" / name / f"{index}.jpg", label, index)
        for index in range(test_per_class):
            write_jpeg(root / "test" / name / f"{index}.jpg", label, 100 + index)
    return root


def answering(monkeypatch, answer) -> None:
    """Every classifier's logits: one-hot of answer(true labels)."""

    def forward(self, module, inputs, truth, num_classes, options):
        return torch.nn.functional.one_hot(answer(truth[1]), num_classes).float()

    monkeypatch.setattr(ClassificationTask, "evaluation_forward", forward)


def test_twenty_test_images_all_right_recommend_no_setting(tmp_path, monkeypatch):
    answering(monkeypatch, lambda labels: labels)  # a pretrained classifier, always right
    report = run_sweep(tiny_sweep(folder_of(tmp_path, 10), tmp_path / "results"))
    with (report / "results.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == 4 and all(float(r["value"]) == 1.0 for r in rows)
    reference = rows[0]
    assert (reference["train_setting"], reference["test_setting"]) == ("original", "original")
    assert float(reference["ci_low"]) == pytest.approx(0.8316, abs=1e-4)  # Clopper-Pearson
    assert all(float(r["relative_ci_low"]) < 0.9 for r in rows[1:])
    recommendation = json.loads((report / "recommendation.json").read_text())
    for scenario in recommendation["scenarios"].values():
        assert scenario["recommended"] is None
        assert "on 20 test images" in scenario["sentence"]
        assert "about 268 test images" in scenario["sentence"]


def test_a_model_at_chance_warns_and_recommends_nothing(tmp_path, monkeypatch, caplog):
    answering(monkeypatch, torch.zeros_like)  # always "cat": half of the test images
    drawn = []
    plot = results.plot_relative_heatmap
    monkeypatch.setattr(
        results, "plot_relative_heatmap", lambda rows, *a: drawn.append(rows) or plot(rows, *a)
    )
    with caplog.at_level(logging.WARNING, logger="sweep.analysis.intervals"):
        report = run_sweep(tiny_sweep(folder_of(tmp_path, 10), tmp_path / "results"))
    assert "is not above its chance level 50.0%" in caplog.text
    recommendation = json.loads((report / "recommendation.json").read_text())
    assert recommendation["chance"]["chance_level"] == 0.5
    for scenario in recommendation["scenarios"].values():
        assert scenario["recommended"] is None and "the grid cannot answer" in scenario["sentence"]
    assert drawn and all("the grid cannot answer" in row["at_chance"] for row in drawn[0])
