"""model.resizer=learnable in a sweep: the parameter count and the before/after figure on each
model's child run, and the model beside the plain one on one comparison chart."""

from __future__ import annotations

import csv

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import run_sweep
from tests.sensitivity.test_stage import sweep_of


@pytest.mark.slow
def test_a_learnable_resizer_sweep_logs_its_count_and_figure_beside_the_plain_model(
    imagefolder, tmp_path
):
    run_sweep(sweep_of(imagefolder, tmp_path, "tracking=none", "sensitivity=off"))
    report = run_sweep(
        sweep_of(imagefolder, tmp_path, "model.resizer=learnable", "sensitivity=off")
    )
    assert report.name.startswith("imagefolder_vit_tiny_learnable_resizer_jxl_")
    assert {path.name for path in (report / "resizer").iterdir()} == {
        "train=original.png",
        "train=4.png",
    }
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    children = [
        run
        for run in client.search_runs([experiment.experiment_id])
        if "train_setting" in run.data.tags
    ]
    assert len(children) == 2
    for child in children:
        assert child.data.metrics["parameters/resizer"] == 12_035
        assert child.data.metrics["parameters/total"] > 12_035
        setting = child.data.tags["train_setting"]
        artifacts = [a.path for a in client.list_artifacts(child.info.run_id)]
        assert f"train={setting}.png" in artifacts
    with (tmp_path / "reports" / "compare_models_imagefolder_jxl" / "results.csv").open() as f:
        models = {row["model"] for row in csv.DictReader(f)}
    assert models == {"vit_tiny", "vit_tiny_learnable_resizer"}
