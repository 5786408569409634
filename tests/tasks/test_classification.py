"""Classification training and evaluation: learns, reproducible, accuracy from torchmetrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sweep.data.files import LabelledFile
from sweep.models.swav import SwavResNet
from sweep.models.trained import WEIGHTS_FILE
from sweep.options import TrainOptions
from sweep.tasks.classification import ClassificationTask, resample_accuracy


def files_of(root, split: str) -> list[LabelledFile]:
    classes = sorted(p.name for p in (root / split).iterdir())
    return [
        LabelledFile(str(path), label)
        for label, name in enumerate(classes)
        for path in sorted((root / split / name).iterdir())
    ]


MODEL = SwavResNet(name="tiny", weights="random", depth=10, frozen_backbone=False, image_size=48)
OPTIONS = TrainOptions(epochs=3, batch_size=9, lr=1e-3, warmup_fraction=0.0, min_crop_scale=1.0)


def test_training_is_reproducible_and_learns_an_easy_dataset(imagefolder, tmp_path):
    task = ClassificationTask()
    train = files_of(imagefolder, "train")
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        summary = task.train(MODEL, train, 3, OPTIONS, seed=0, out_dir=tmp_path / name)
        runs.append(torch.load(tmp_path / name / WEIGHTS_FILE, weights_only=True))
    assert all(torch.equal(runs[0][key], runs[1][key]) for key in runs[0])
    assert summary["train_loss"][-1] < summary["train_loss"][0]
    metrics = task.evaluate(MODEL, tmp_path / "a", files_of(imagefolder, "test"), 3, OPTIONS)
    assert metrics["images"] == 9
    assert metrics["accuracy"] >= 2 / 3  # the classes differ by dominant colour


def test_other_seed_gives_other_weights(imagefolder, tmp_path):
    task = ClassificationTask()
    train = files_of(imagefolder, "train")
    for seed in (0, 1):
        (tmp_path / str(seed)).mkdir()
        task.train(MODEL, train, 3, OPTIONS, seed=seed, out_dir=tmp_path / str(seed))
    a, b = (torch.load(tmp_path / s / WEIGHTS_FILE, weights_only=True) for s in ("0", "1"))
    assert not torch.equal(a["head.1.weight"], b["head.1.weight"])


def test_accuracy_counts_correct_predictions(tmp_path, imagefolder):
    """A model that always predicts class 1 scores the share of class 1 in the test split."""
    task = ClassificationTask()
    module = MODEL.build(3)
    with torch.no_grad():
        module.head[1].weight.zero_()
        module.head[1].bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    torch.save(module.state_dict(), tmp_path / WEIGHTS_FILE)
    test = files_of(imagefolder, "test")
    metrics = task.evaluate(MODEL, tmp_path, test, 3, OPTIONS)
    assert metrics["accuracy"] == pytest.approx(1 / 3)
    # Per image, in file order, what the intervals resample.
    outcomes = metrics["outcomes"]
    assert outcomes["prediction"].tolist() == [1] * len(test)
    assert outcomes["label"].tolist() == [f.target for f in test]
    assert outcomes["correct"].mean() == pytest.approx(metrics["accuracy"])
    once = np.ones((1, len(test)))
    assert resample_accuracy(outcomes, once)["accuracy"][0] == pytest.approx(1 / 3)


def test_a_last_batch_of_one_image_does_not_break_batch_norm(imagefolder, tmp_path):
    train = files_of(imagefolder, "train")[:10]  # 10 = 9 + 1
    probe = SwavResNet(name="probe", weights="random", depth=10, image_size=48)
    summary = ClassificationTask().train(probe, train, 3, OPTIONS, seed=0, out_dir=tmp_path)
    assert len(summary["train_loss"]) == OPTIONS.epochs
