"""The bill before launch: `python -m sweep dry_run=true` counts, estimates, and runs nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.bill import bill_of, format_bill
from sweep.config import build_sweep
from sweep.errors import OptionError
from sweep.run import plan_sweep
from sweep.screen import screen_images
from tests.conftest import compose_config

REPO = Path(__file__).resolve().parent.parent
# The demo task with a few images per class: generated in a second, hashed in less.
SMALL_DEMO = (
    "task=demo",
    "task.reader.train_per_class=4",
    "task.reader.test_per_class=2",
    "tracking=none",
    "progress=false",
)


def listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def demo_sweep(results: Path, *overrides: str):
    return build_sweep(compose_config(*SMALL_DEMO, f"results_dir={results}", *overrides))


def counts_of(printed: str) -> dict[str, tuple[int, int, int]]:
    """kind -> (total, cached, to run), from the printed table."""
    found = re.findall(r"^(\w+) +([\d,]+) +([\d,]+) +([\d,]+) ", printed, re.MULTILINE)
    return {kind: tuple(int(n.replace(",", "")) for n in rest) for kind, *rest in found}


def test_cli_dry_run_prints_the_bill_and_runs_nothing(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sweep", *SMALL_DEMO, f"results_dir={tmp_path}"]
        + ["dry_run=true", "dry_run_calibrate=false", "tracking=local", "grid=full"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    counts = counts_of(result.stdout)
    # grid/full.yaml: every JPEG XL setting (original and 11 distances) on both axes.
    assert counts["encode"] == (24, 0, 24) and counts["train"] == (12, 0, 12)
    assert counts["evaluate"] == (144, 0, 144) and counts["validate"] == (2, 0, 2)
    assert re.search(r"estimate: [\d.]+ CPU-hours, [\d.]+ GPU-hours", result.stdout)
    assert "to run: 12 trainings, 144 evaluations" in result.stdout
    # Nothing in the store, no MLflow database, no report, no Ray session of ours.
    assert listing(tmp_path / "store") == []
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "reports").exists()
    assert "Started a local Ray instance" not in result.stderr


def test_dry_run_in_process_starts_no_ray_and_writes_no_stage(tmp_path, monkeypatch, capsys):
    from sweep import __main__ as entry

    sweep = demo_sweep(tmp_path)  # generates the demo images, as any run does first
    before = listing(tmp_path / "store")

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run started Ray")

    monkeypatch.setattr("sweep.engine.cluster.start_ray", refuse)
    monkeypatch.setattr("sweep.engine.execute.start_ray", refuse)
    monkeypatch.setattr("sweep.run.make_tracker", refuse)
    arguments = [*SMALL_DEMO, f"results_dir={tmp_path}", "dry_run=true", "dry_run_calibrate=false"]
    monkeypatch.setattr(sys, "argv", ["sweep", *arguments])
    entry.main()
    printed = capsys.readouterr().out
    assert "dry run: nothing was run or written" in printed
    assert "to run: 4 trainings, 16 evaluations" in printed  # the demo grid, 4 x 4
    assert listing(tmp_path / "store") == before
    assert sweep.dry_run is False  # the option's default


def test_full_grid_shows_its_counts(tmp_path):
    bill = bill_of(demo_sweep(tmp_path, "grid=full"), calibrate=False)
    counts = {count.kind: (count.total, count.to_run) for count in bill.counts}
    # grid/full.yaml: every JPEG XL setting (original and 11 distances) on both axes.
    assert counts["encode"] == (24, 24) and counts["train"] == (12, 12)
    assert counts["evaluate"] == (144, 144)
    assert bill.work.trainings == 12 and bill.work.evaluations == 144
    sweep = demo_sweep(tmp_path, "grid=full")
    train_images = 6 * 4
    assert bill.work.train_decodes == 12 * sweep.options.epochs * train_images
    # Grouped evaluations decode each test setting's images once per group of models.
    groups = -(-12 // sweep.cluster.eval_group_size)
    assert bill.work.eval_decodes == 12 * groups * 6 * 2
    assert bill.work.encode_images == 11 * (24 + 12)  # the original setting keeps its files
    # Without calibration, there is no figure and the hours say so.
    assert bill.throughput["train"].source == "none"
    printed = format_bill(bill)
    assert "without validate, encode, distortion, train, evaluate (no figure)" in printed


def test_a_finished_stage_counts_as_cached(tmp_path):
    sweep = demo_sweep(tmp_path)
    first = bill_of(sweep, calibrate=False)
    plan_key = first.plan_key
    from sweep.bill import grid_plan, predicted_screening

    _, screening = predicted_screening(sweep)
    encode = grid_plan(sweep, screening).encodes[("test", "4")]
    with sweep.store.writing("encode", encode.key):
        pass  # the DONE marker, as a finished encode leaves it
    second = bill_of(sweep, calibrate=False)
    assert second.plan_key == plan_key
    encodes = {c.kind: c for c in second.counts}["encode"]
    assert (encodes.total, encodes.cached, encodes.to_run) == (8, 1, 7)
    assert second.work.encode_images == first.work.encode_images - 12


def test_finished_trainings_of_the_model_give_the_training_rate(tmp_path):
    """The rate of finished trainings of the same model config on this device type: the
    plan's own, and those a report of another sweep of the model names."""
    sweep = demo_sweep(tmp_path)
    first = bill_of(sweep, calibrate=False)
    from sweep.bill import grid_plan, machine_device, predicted_screening

    _, screening = predicted_screening(sweep)
    own = grid_plan(sweep, screening).trains["original"]
    device = machine_device()
    for key, rate in ((own.key, 40.0), ("f" * 20, 60.0), ("e" * 20, 80.0)):
        with sweep.store.writing("train", key) as out:
            summary = {"images_per_second": rate, "device": device, "parameters": {"total": 10}}
            (out / "summary.json").write_text(json.dumps(summary))
    report = tmp_path / "reports" / "demo_swav_tiny_jxl_other"
    report.mkdir(parents=True)
    (report / "config.yaml").write_text(sweep.config_yaml)
    (report / "stages.json").write_text(json.dumps({"train": {"original": "f" * 20}}))
    bill = bill_of(sweep, calibrate=False)
    # The "e..." training belongs to no report of this model: not counted.
    assert bill.throughput["train"].seconds_per_image == pytest.approx(1 / 50)
    assert bill.throughput["train"].source == "measured in store"
    assert bill.throughput["evaluate"].source == "derived"
    trained = bill.work.train_decodes
    assert trained == first.work.train_decodes * 3 // 4  # the finished one is not counted
    assert bill.hours_by_kind["train"] == pytest.approx(trained / 50 / 3600)
    assert bill.bytes_to_write["weights"] == 4 * 10 * 3
    assert json.loads(json.dumps(bill.to_json()))["stages"]["train"]["cached"] == 1


def test_the_bill_plans_with_the_real_run_keys(imagefolder, tmp_path):
    """The predicted screening gives the keys the sweep will use, before and after the
    validation runs; a finished validation counts as cached."""
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={imagefolder}",
        f"results_dir={tmp_path}",
        "cluster=inline",
        "tracking=none",
        "progress=false",
        "grid.train=[original,4]",
        "grid.test=[original,4]",
    )
    sweep = build_sweep(cfg)
    before = bill_of(sweep, calibrate=False)
    real = plan_sweep(sweep, screen_images(sweep))  # runs the validation, inline
    after = bill_of(sweep, calibrate=False)
    assert before.plan_key == real.key == after.plan_key
    validate = {c.kind: c for c in after.counts}["validate"]
    assert (validate.cached, validate.to_run) == (2, 0) and after.work.validate_images == 0
    # An unreadable file: once the validation has quarantined it, the bill leaves it out too.
    (imagefolder / "train" / "cat" / "empty.jpg").write_bytes(b"")
    sweep = build_sweep(cfg)
    real = plan_sweep(sweep, screen_images(sweep))
    after = bill_of(sweep, calibrate=False)
    assert after.plan_key == real.key and len(real.splits["train"]) == 18
    assert any("1 image(s) quarantined" in note for note in after.notes)


def test_budget_experiment_bills_its_encodes_and_says_why(tmp_path):
    bill = bill_of(demo_sweep(tmp_path, "experiment=budget"), calibrate=False)
    kinds = {count.kind for count in bill.counts}
    assert kinds == {"validate", "encode"}
    assert any("experiment=budget" in note and "cells" in note for note in bill.notes)


def test_budget_experiment_bills_its_cells_once_its_encodes_exist(tmp_path):
    from sweep.bill import budget_shaped, grid_plan, predicted_screening
    from sweep.engine.execute import execute
    from sweep.run import stage_context

    sweep = demo_sweep(tmp_path, "experiment=budget", "cluster=inline", "train.batch_size=2")
    _, screening = predicted_screening(sweep)
    encodes = grid_plan(sweep, screening)
    screen_images(sweep)  # the validation, then the encodes the cells are sized from
    context = stage_context(budget_shaped(sweep), encodes)
    execute(encodes, context, sweep.cluster, show_progress=False)
    bill = bill_of(sweep, calibrate=False)
    counts = {count.kind: count for count in bill.counts}
    assert counts["encode"].to_run == 0 and counts["validate"].to_run == 0
    # 4 settings x 3 budgets, each cell one training evaluated on the original test split.
    assert counts["train"].total == bill.work.trainings == 12
    assert counts["evaluate"].total == 12
    assert any("planned from the finished encodes" in note for note in bill.notes)


def test_dry_run_must_be_true_or_false(tmp_path):
    with pytest.raises(OptionError, match="dry_run"):
        demo_sweep(tmp_path, "dry_run=maybe")


def test_calibration_times_the_codec_and_the_model(tmp_path):
    """A few seconds on the small demo: the codec at each pending setting, a few training
    steps and (time allowing, else derived from the training rate) one evaluation."""
    bill = bill_of(demo_sweep(tmp_path, "train.batch_size=4"), calibrate=True)
    for name in ("validate", "encode", "distortion", "train", "evaluate"):
        expected = ("timed now", "derived") if name == "evaluate" else ("timed now",)
        assert bill.throughput[name].source in expected, name
        assert bill.throughput[name].images_per_second > 0
    assert bill.cpu_hours + bill.gpu_hours > 0
    assert all(hours > 0 for hours in bill.hours_by_kind.values())
    assert re.search(r"estimate: [\d.]+ CPU-hours", format_bill(bill))
    assert bill.bytes_to_write["encoded_images"] > 0 and bill.bytes_to_write["weights"] > 0
