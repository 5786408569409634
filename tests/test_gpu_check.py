"""`make gpu-check`: says so and exits 0 without a GPU; its smoke run covers the whole path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def gpu_check(*arguments: str, timeout: int = 300) -> subprocess.CompletedProcess:
    # No CUDA device, whatever this machine has.
    env = os.environ | {"CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", *arguments],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_without_a_gpu_it_says_so_and_exits_0(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = gpu_check("--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "no CUDA device" in done.stdout
    assert "GPU utilisation" in done.stdout
    assert not out.exists()


def test_a_wrong_model_is_named():
    done = gpu_check("--models", "vit,resnet")
    assert done.returncode == 2
    assert "resnet" in done.stderr and "faster_rcnn" in done.stderr


@pytest.mark.slow
def test_the_smoke_run_writes_every_figure(tmp_path):
    out = tmp_path / "figures.json"
    done = gpu_check(
        "--allow-cpu", "--tiny", "--steps", "2", "--images", "8", "--eval-images", "4",
        "--out", str(out), timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert set(figures["models"]) == {"vit", "faster_rcnn", "segformer"}
    for name, result in figures["models"].items():
        assert set(result) == {
            "model", "recipe", "batch_size", "steps", "timed_steps", "precision",
            "loader_workers", "images_per_s", "fit_images_per_s", "train_seconds",
            "gpu_utilisation_mean", "gpu_utilisation_median", "gpu_samples", "gpu_sampler",
            "peak_memory_gib", "eval_images", "eval_models", "eval_separate_s", "eval_grouped_s",
            "eval_grouped_gain",
        }, name  # fmt: skip
        assert result["steps"] == 2 and result["timed_steps"] == 1
        assert result["loader_workers"] == 0  # auto on the CPU
        assert result["images_per_s"] > 0 and result["eval_grouped_gain"] > 0
        assert result["eval_models"] == 3 and result["eval_images"] == 4
    assert figures["device"] == "cpu" and figures["goal_met"] is False
    assert "goal: >= 90% GPU utilisation" in done.stdout
