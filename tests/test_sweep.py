"""Whole sweeps: results, report, MLflow, resume after a kill, reruns that do no work."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweep.config.build import build_sweep
from sweep.stages.table import STAGE_KINDS
from tests.conftest import FAST_SWEEP, FAST_TRAINING, compose_config, record_calls, run_sweep

REPO = Path(__file__).resolve().parent.parent


def read_csv(path: Path) -> list[dict]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


def imagefolder_sweep(root: Path, results: Path, *overrides: str):
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={root}",
        f"results_dir={results}",
        "cluster=inline",
        "cluster.torch_threads=1",
        *FAST_SWEEP,
        *overrides,
    )
    return build_sweep(cfg)


def test_inline_sweep_writes_results_report_and_mlflow_runs(imagefolder, tmp_path):
    report = run_sweep(imagefolder_sweep(imagefolder, tmp_path))
    rows = read_csv(report / "results.csv")
    assert [(r["train_setting"], r["test_setting"]) for r in rows] == [
        ("original", "original"),
        ("original", "4"),
        ("4", "original"),
        ("4", "4"),
    ]
    assert rows[0]["relative"] == "1.0"
    for row in rows:
        assert float(row["relative"]) == pytest.approx(
            float(row["value"]) / float(rows[0]["value"])
        )
        assert row["metric"] == "accuracy" and row["task"] == "imagefolder"
    assert float(rows[1]["test_dcr"]) > 0.5 and rows[0]["test_dcr"] == "0.0"
    for name in (
        "heatmap_accuracy_setting.png",
        "heatmap_accuracy_dcr.png",
        "dcr_by_setting.png",
        "config.yaml",
    ):
        assert (report / name).stat().st_size > 0
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "sweep.key" in r.data.tags]
    compares = [r for r in runs if "compare.key" in r.data.tags]
    assert len(parents) == 1 and len(compares) == 1 and len(runs) == 4
    assert "dcr_within_1pct/jxl/accuracy/stored" in compares[0].data.metrics
    assert "dcr_within_1pct/accuracy/stored" in parents[0].data.metrics
    assert "results.csv" in [a.path for a in client.list_artifacts(parents[0].info.run_id)]
    # Measured distortion of every test image at every setting, summarized in the report.
    distortion = read_csv(report / "distortion.csv")
    measures = {"psnr", "ssim", "ssimulacra2", "butteraugli_max", "butteraugli_3norm"}
    if shutil.which("butteraugli_main") is None:
        measures -= {"butteraugli_max", "butteraugli_3norm"}
    for setting in ("original", "4"):
        found = {r["measure"]: r for r in distortion if r["setting"] == setting}
        assert measures <= set(found) and {r["split"] for r in distortion} == {"test"}
        assert all(int(found[m]["count"]) + int(found[m]["undefined"]) == 9 for m in measures)
    measured = {r["measure"]: float(r["median"]) for r in distortion if r["setting"] == "4"}
    assert 15 < measured["psnr"] < 60 and 0 < measured["ssimulacra2"] < 100
    assert (report / "distortion_by_setting.png").stat().st_size > 0
    assert "distortion/test/4/ssim/median" in parents[0].data.metrics
    # Every cell's interval holds its value; original/original's relative one is exactly 1.
    for row in rows:
        assert float(row["ci_low"]) <= float(row["value"]) <= float(row["ci_high"])
        low, high = float(row["relative_ci_low"]), float(row["relative_ci_high"])
        assert low <= float(row["relative"]) <= high
    assert (rows[0]["relative_ci_low"], rows[0]["relative_ci_high"]) == ("1.0", "1.0")
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert any("accuracy_ci_low/test_004.0_4" in child.data.metrics for child in children)
    # A dashboard worth reviewing: the experiment opens on its runs; children filter by task,
    # model and codec and sort by a numeric position; operations are tags, not parameters;
    # the parent's clock is the sweep's, with its wall time and stage counts as metrics.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    for child in children:
        assert {"task", "model", "codec", "train_setting"} <= set(child.data.params)
        assert child.data.tags["codec"] == "jxl" and child.data.tags["task"] == "imagefolder"
    positions = {c.data.params["train_setting"]: c.data.metrics["train_position"] for c in children}
    assert positions == {"original": 0.0, "4": 4.0}
    found = client.search_runs([experiment.experiment_id], "tags.codec = 'jxl'")
    assert {r.info.run_id for r in found} >= {c.info.run_id for c in children}
    parent = parents[0]
    assert "task.name" in parent.data.params and "grid.train" in parent.data.params
    assert not any(k.startswith(("cluster.", "tracking.")) for k in parent.data.params)
    assert parent.data.tags["ops.cluster.mode"] == "inline"
    wall = parent.data.metrics["sweep/wall_seconds"]
    assert wall > 0 and parent.data.metrics["stages/evaluate"] == 4
    assert (parent.info.end_time - parent.info.start_time) / 1000 >= 0.9 * wall
    recommendation = json.loads((report / "recommendation.json").read_text())
    assert set(recommendation["scenarios"]) == {
        "store_compressed", "train_compressed", "deploy_compressed",
    }  # fmt: skip
    assert all(s["sentence"] for s in recommendation["scenarios"].values())


def test_seeds_replicate_every_training_and_share_every_encode(imagefolder, tmp_path, monkeypatch):
    run_sweep(imagefolder_sweep(imagefolder, tmp_path, "tracking=none"))  # seed 0 alone
    ran = {"train": [], "encode": []}
    for kind in ran:
        record_calls(monkeypatch, kind, "run", lambda stage: ran[stage.kind].append(stage))
    report = run_sweep(imagefolder_sweep(imagefolder, tmp_path, "seeds=[0,1]", "tracking=none"))
    # Seed 0's models and every encode exist: only seed 1 trains, once per train setting.
    assert sorted((t.setting, t.seed) for t in ran["train"]) == [("4", 1), ("original", 1)]
    assert ran["encode"] == []
    rows = read_csv(report / "results.csv")
    by_seed = {}
    for row in rows:
        by_seed.setdefault(row["seed"], {})[(row["train_setting"], row["test_setting"])] = row
    assert set(by_seed) == {"0", "1", "mean"} and all(len(c) == 4 for c in by_seed.values())
    for cell, mean in by_seed["mean"].items():
        values = [float(by_seed[seed][cell]["value"]) for seed in ("0", "1")]
        assert float(mean["value"]) == pytest.approx(sum(values) / 2)
        # The mean's interval resamples seeds and images: it holds both seeds' values.
        assert float(mean["ci_low"]) <= min(values) and max(values) <= float(mean["ci_high"])
        assert float(mean["relative"]) == pytest.approx(
            float(mean["value"]) / float(by_seed["mean"][("original", "original")]["value"])
        )
    # Each seed is relative to its own original/original.
    assert {by_seed[s][("original", "original")]["relative"] for s in by_seed} == {"1.0"}
    assert (report / "recommendation.json").is_file()


def test_rerun_of_a_finished_sweep_does_no_stage_work(imagefolder, tmp_path, monkeypatch):
    first = run_sweep(imagefolder_sweep(imagefolder, tmp_path))
    before = (first / "results.csv").read_text()

    def refuse(stage):
        raise AssertionError(f"a finished {stage.kind} stage ran again")

    # Every worker of every kind, validation and measuring included.
    for name, kind in STAGE_KINDS.items():
        for role in ("run", "shard") if kind.sharded else ("run",):
            record_calls(monkeypatch, name, role, refuse)
    second = run_sweep(imagefolder_sweep(imagefolder, tmp_path))
    assert second == first and (second / "results.csv").read_text() == before
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    # A parent, two children and the codec comparison.
    assert len(client.search_runs([experiment.experiment_id])) == 4


def test_extending_the_grid_reuses_finished_stages(imagefolder, tmp_path, monkeypatch):
    run_sweep(imagefolder_sweep(imagefolder, tmp_path))
    trained = []
    record_calls(monkeypatch, "train", "run", lambda stage: trained.append(stage.setting))
    run_sweep(
        imagefolder_sweep(
            imagefolder, tmp_path, "grid.train=[original,4,10]", "grid.test=[original,4,10]"
        )
    )
    assert trained == ["10"]


def sweep_command(*overrides: str, fast: tuple[str, ...] = FAST_SWEEP) -> list[str]:
    return [sys.executable, "-m", "sweep", *fast, *overrides]


def test_cli_food101_with_vit_tiny(food101, tmp_path):
    result = subprocess.run(
        sweep_command(
            "task=food101",
            f"task.root={food101}",
            f"results_dir={tmp_path}",
            "cluster=inline",
            "tracking=none",
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [report] = (tmp_path / "reports").glob("food101_*")
    rows = read_csv(report / "results.csv")
    assert len(rows) == 4 and {r["model"] for r in rows} == {"vit_tiny"}
    assert report.name.startswith("food101_vit_tiny_jxl_")
    compare = tmp_path / "reports" / "compare_food101_vit_tiny"
    assert (compare / "relative_vs_dcr_accuracy.png").stat().st_size > 0
    [within, _] = read_csv(compare / "dcr_within_1pct.csv")
    assert within["codec"] == "jxl" and within["report"] == report.name


@pytest.mark.slow
def test_cli_imagefolder_on_a_local_ray(imagefolder, tmp_path):
    result = subprocess.run(
        sweep_command(
            "task=imagefolder",
            f"task.root={imagefolder}",
            f"results_dir={tmp_path}",
            "cluster=local",
            "cluster.num_cpus=2",
            "model=swav_tiny",
            "model.image_size=48",
            fast=FAST_TRAINING,
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [report] = (tmp_path / "reports").glob("imagefolder_*")
    assert len(read_csv(report / "results.csv")) == 4
    assert len(list((tmp_path / "store" / "train").iterdir())) == 2
    # What to do, one plain sentence per scenario, in this order, at the end.
    said = [line for line in result.stdout.splitlines() if line.startswith("recommendation: ")]
    assert [line.split(": ")[1].split(" ")[0] for line in said] == ["store", "train", "deploy"]


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_same_results(imagefolder, tmp_path):
    """SIGKILL the driver once a training is stored; the rerun matches an uninterrupted run."""
    common = (
        "task=imagefolder",
        f"task.root={imagefolder}",
        "cluster=inline",
        "cluster.torch_threads=1",
        "grid.train=[original,1,4]",
        # Trainings of a few seconds each, so that the kill lands between two of them.
        "train.epochs=30",
        "grid.test=[original,4]",
    )
    reference = subprocess.run(
        sweep_command(*common, f"results_dir={tmp_path / 'reference'}"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert reference.returncode == 0, reference.stderr[-2000:]

    killed = tmp_path / "killed"
    process = subprocess.Popen(
        sweep_command(*common, f"results_dir={killed}"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list((killed / "store" / "train").glob("*/DONE")):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished_trains = list((killed / "store" / "train").glob("*/DONE"))
    assert 1 <= len(finished_trains) < 3, "the kill should land in the middle of the sweep"

    finished_at = {path: path.stat().st_mtime_ns for path in finished_trains}
    resumed = subprocess.run(
        sweep_command(*common, f"results_dir={killed}"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    [reference_report] = (tmp_path / "reference" / "reports").glob("imagefolder_*")
    [resumed_report] = (killed / "reports").glob("imagefolder_*")
    assert (resumed_report / "results.csv").read_text() == (
        reference_report / "results.csv"
    ).read_text()
    assert {path: path.stat().st_mtime_ns for path in finished_trains} == finished_at
    assert not list((killed / "store").glob("*/*.tmp-*"))
    client = MlflowClient(f"sqlite:///{killed}/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    assert len(client.search_runs([experiment.experiment_id])) == 1 + 3 + 1


@pytest.mark.parametrize(("stop", "code", "said"), [
    (signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)"),
])  # fmt: skip
def test_an_interrupted_sweep_says_it_resumes_and_its_parent_run_shows_it(
    imagefolder, tmp_path, stop, code, said
):
    """Ctrl-C or SIGTERM once a training is stored: the message says the same command
    resumes, MLflow shows the sweep KILLED from the moment it ran, and the rerun finishes it
    in the same parent run."""
    command = sweep_command(
        "task=imagefolder",
        f"task.root={imagefolder}",
        f"results_dir={tmp_path}",
        "cluster=inline",
        "cluster.torch_threads=1",
        "train.epochs=30",
    )

    # As from a terminal: a shell's background job (CI's, say) inherits SIGINT ignored, and
    # Python then keeps ignoring it.
    def as_in_a_terminal() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               preexec_fn=as_in_a_terminal)  # fmt: skip
    deadline = time.time() + 300
    while time.time() < deadline and not list((tmp_path / "store" / "train").glob("*/DONE")):
        time.sleep(0.05)
    os.kill(process.pid, stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == code, stderr[-2000:]
    assert f"{said}: every finished stage is kept" in stderr
    assert "the same command resumes" in stderr and "Traceback" not in stderr
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    [parent] = client.search_runs([experiment.experiment_id], "tags.`sweep.key` != ''")
    assert parent.info.status == "KILLED" and parent.data.tags["sweep.error"] == "interrupted"

    resumed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    [again] = client.search_runs([experiment.experiment_id], "tags.`sweep.key` != ''")
    assert again.info.run_id == parent.info.run_id and again.info.status == "FINISHED"
    assert "sweep.error" not in again.data.tags


def test_a_failed_sweep_ends_its_parent_run_failed_with_the_error(
    imagefolder, tmp_path, monkeypatch
):
    def broken(stage):
        raise RuntimeError(f"no memory left for {stage.setting}")

    record_calls(monkeypatch, "train", "run", broken)
    with pytest.raises(Exception, match="no memory left"):
        run_sweep(imagefolder_sweep(imagefolder, tmp_path))
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    [parent] = client.search_runs([experiment.experiment_id], "tags.`sweep.key` != ''")
    assert parent.info.status == "FAILED" and "no memory left" in parent.data.tags["sweep.error"]


def add_bad_files(root: Path) -> None:
    """The issue's case: a PNG named .jpg, a truncated JPEG and a zero-byte file."""
    from PIL import Image

    Image.new("RGB", (48, 48), (200, 10, 10)).save(root / "train" / "cat" / "renamed.jpg", "PNG")
    good = (root / "train" / "dog" / "0.jpg").read_bytes()
    (root / "train" / "dog" / "cut.jpg").write_bytes(good[: len(good) // 2])
    (root / "test" / "fish" / "empty.jpg").write_bytes(b"")


def test_bad_images_are_quarantined_or_converted_the_same_for_every_cell(imagefolder, tmp_path):
    add_bad_files(imagefolder)
    report = run_sweep(imagefolder_sweep(imagefolder, tmp_path))
    quarantined = read_csv(report / "quarantine.csv")
    assert {(r["split"], r["path"]) for r in quarantined} == {
        ("train", "train/dog/cut.jpg"),
        ("test", "test/fish/empty.jpg"),
    }
    assert next(r for r in quarantined if r["path"].endswith("empty.jpg"))["reason"] == (
        "empty file"
    )
    converted = read_csv(report / "conversions.csv")
    assert converted == [
        {"split": "train", "path": "train/cat/renamed.jpg", "kinds": "format_mismatch"}
    ]
    store = tmp_path / "store" / "encode"
    for summary in store.glob("*/summary.json"):
        images = __import__("json").loads(summary.read_text())["images"]
        assert images == (19 if '"train"' in summary.read_text() else 9)
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    [parent] = [
        r for r in client.search_runs([experiment.experiment_id]) if "sweep.key" in r.data.tags
    ]
    assert parent.data.metrics["quarantined/train"] == 1
    assert parent.data.metrics["quarantined/test"] == 1
    assert "quarantine.csv" in [a.path for a in client.list_artifacts(parent.info.run_id)]


def test_on_error_fail_stops_at_the_bad_file_naming_it(imagefolder, tmp_path):
    add_bad_files(imagefolder)
    result = subprocess.run(
        sweep_command(
            "task=imagefolder",
            f"task.root={imagefolder}",
            f"results_dir={tmp_path}",
            "cluster=inline",
            "tracking=none",
            "data.on_error=fail",
        ),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert "cut.jpg" in result.stderr or "empty.jpg" in result.stderr
    assert "data.on_error=fail" in result.stderr
    assert not (tmp_path / "store" / "encode").exists()


def test_new_decoder_versions_validate_the_images_again(imagefolder, tmp_path, monkeypatch):
    import sweep.stages.validate as validate_module
    from sweep.data.validate import decoder_identity

    run_sweep(imagefolder_sweep(imagefolder, tmp_path))
    validated = []
    record_calls(monkeypatch, "validate", "shard", lambda stage: validated.append(stage.split))
    monkeypatch.setattr(
        validate_module, "decoder_identity", lambda: {**decoder_identity(), "pillow": "0"}
    )
    run_sweep(imagefolder_sweep(imagefolder, tmp_path))
    assert sorted(set(validated)) == ["test", "train"]
