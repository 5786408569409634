"""The bill before launch: `python -m sweep dry_run=true` counts, estimates, and runs nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweep.config.build import build_launch
from sweep.errors import OptionError
from sweep.experiments.bill.counting import predicted_screening
from sweep.experiments.bill.experiment import BillExperiment, bill_of
from sweep.experiments.bill.pricing import format_bill
from sweep.experiments.bill.throughput import machine_device
from sweep.session.planning import plan_sweep, screen
from tests.conftest import compose_config

REPO = Path(__file__).resolve().parents[2]
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


def demo_launch(results: Path, *overrides: str):
    """What `python -m sweep <SMALL_DEMO> <overrides>` runs."""
    return build_launch(compose_config(*SMALL_DEMO, f"results_dir={results}", *overrides))


def billed(launched, calibrate: bool = False):
    """The bill of a launch's experiment (what dry_run=true prints)."""
    return bill_of(launched.session, launched.experiment, calibrate)


def planned(launched):
    """The experiment's plan over the predicted screening, as the bill sees it."""
    _, screening = predicted_screening(launched.session.sweep)
    return launched.experiment.planned(launched.session, screening).plan


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

    demo_launch(tmp_path)  # generates the demo images, as any run does first
    before = listing(tmp_path / "store")

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run started Ray")

    monkeypatch.setattr("sweep.engine.cluster.start_ray", refuse)
    monkeypatch.setattr("sweep.engine.execute.start_ray", refuse)
    monkeypatch.setattr("sweep.tracking.deferred.make_tracker", refuse)
    arguments = [*SMALL_DEMO, f"results_dir={tmp_path}", "dry_run=true", "dry_run_calibrate=false"]
    monkeypatch.setattr(sys, "argv", ["sweep", *arguments])
    with pytest.raises(SystemExit) as exited:
        entry.main()
    assert exited.value.code == 0
    printed = capsys.readouterr().out
    assert "dry run: nothing was run or written" in printed
    assert "to run: 4 trainings, 16 evaluations" in printed  # the demo grid, 4 x 4
    assert listing(tmp_path / "store") == before
    # The option's default runs the experiment itself.
    assert not isinstance(demo_launch(tmp_path).experiment, BillExperiment)


def test_full_grid_shows_its_counts(tmp_path):
    launched = demo_launch(tmp_path, "grid=full")
    bill = billed(launched)
    counts = {count.kind: (count.total, count.to_run) for count in bill.counts}
    # grid/full.yaml: every JPEG XL setting (original and 11 distances) on both axes.
    assert counts["encode"] == (24, 24) and counts["train"] == (12, 12)
    assert counts["evaluate"] == (144, 144)
    assert bill.runs["trainings"] == 12 and bill.runs["evaluations"] == 144
    sweep = launched.session.sweep
    train_images = 6 * 4
    assert bill.images["train"] == 12 * sweep.options.epochs * train_images
    # Grouped evaluations decode each test setting's images once per group of models.
    groups = -(-12 // sweep.cluster.eval_group_size)
    assert f"{12 * groups * 6 * 2:,} image decodes" in bill.costs["evaluate"].work
    assert bill.images["encode"] == 11 * (24 + 12)  # the original setting keeps its files
    # Without calibration, there is no figure and the hours say so.
    assert bill.throughput["train"].source == "none"
    printed = format_bill(bill)
    assert "without decode, encode, measure, train, evaluate (no figure)" in printed


def test_the_decode_cache_is_billed(tmp_path):
    """train.decode_cache=true plans a decoded stage per train setting: the bill counts it,
    its decodes and the bytes of its pixels."""
    bill = billed(demo_launch(tmp_path, "train.decode_cache=true"), calibrate=True)
    counts = {count.kind: count for count in bill.counts}
    assert counts["decoded"].to_run == 4
    train, test = 6 * 4, 6 * 2  # SMALL_DEMO's images: 6 classes
    assert bill.costs["decoded"].cached == 4 * train  # the train split, at each setting
    assert bill.images["decode"] == 4 * train + train + test  # caches, and the validations
    # The demo's images are 96 x 96 RGB: 27,648 bytes each in the cache.
    assert bill.bytes_to_write["decode_cache"] == 4 * train * 96 * 96 * 3
    assert "of decode caches" in format_bill(bill)


def test_the_bill_times_the_products_own_fit_step(tmp_path, monkeypatch):
    """The training rate comes from steps of the fit loop every training runs."""
    from sweep.tasks.base import FitLoop

    steps = []
    original = FitLoop.step

    def counted(self, batch):
        steps.append(batch)
        return original(self, batch)

    monkeypatch.setattr(FitLoop, "step", counted)
    bill = billed(demo_launch(tmp_path, "train.batch_size=4"), calibrate=True)
    assert bill.throughput["train"].source == "timed now" and len(steps) >= 2


def test_a_finished_stage_counts_as_cached(tmp_path):
    launched = demo_launch(tmp_path)
    sweep = launched.session.sweep
    first = billed(launched)
    plan_key = first.plan_key
    encode = planned(launched).encodes[("test", "4")]
    with sweep.store.writing("encode", encode.key):
        pass  # the DONE marker, as a finished encode leaves it
    second = billed(launched)
    assert second.plan_key == plan_key
    encodes = {c.kind: c for c in second.counts}["encode"]
    assert (encodes.total, encodes.cached, encodes.to_run) == (8, 1, 7)
    assert second.images["encode"] == first.images["encode"] - 12


def test_finished_trainings_of_the_model_give_the_training_rate(tmp_path):
    """The rate of finished trainings of the same model config on this device type: the
    plan's own, and those a report of another sweep of the model names."""
    launched = demo_launch(tmp_path)
    sweep = launched.session.sweep
    first = billed(launched)
    own = planned(launched).trains["original"]
    device = machine_device()
    for key, rate in ((own.key, 40.0), ("f" * 20, 60.0), ("e" * 20, 80.0)):
        with sweep.store.writing("train", key) as out:
            summary = {"images_per_second": rate, "device": device, "parameters": {"total": 10}}
            (out / "summary.json").write_text(json.dumps(summary))
    report = tmp_path / "reports" / "demo_swav_tiny_jxl_other"
    report.mkdir(parents=True)
    (report / "config.yaml").write_text(sweep.config_yaml)
    (report / "stages.json").write_text(json.dumps({"train": {"original": "f" * 20}}))
    bill = billed(launched)
    # The "e..." training belongs to no report of this model: not counted.
    assert bill.throughput["train"].seconds_per_image == pytest.approx(1 / 50)
    assert bill.throughput["train"].source == "measured in store"
    assert bill.throughput["evaluate"].source == "derived"
    trained = bill.images["train"]
    assert trained == first.images["train"] * 3 // 4  # the finished one is not counted
    assert bill.hours_by_work["train"] == pytest.approx(trained / 50 / 3600)
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
    launched = build_launch(cfg)
    sweep = launched.session.sweep
    before = billed(launched)
    real = plan_sweep(sweep, screen(sweep))  # runs the validation, inline
    after = billed(launched)
    assert before.plan_key == real.key == after.plan_key
    validate = {c.kind: c for c in after.counts}["validate"]
    assert (validate.cached, validate.to_run) == (2, 0) and "validate" not in after.costs
    # An unreadable file: once the validation has quarantined it, the bill leaves it out too.
    (imagefolder / "train" / "cat" / "empty.jpg").write_bytes(b"")
    launched = build_launch(cfg)
    sweep = launched.session.sweep
    real = plan_sweep(sweep, screen(sweep))
    after = billed(launched)
    assert after.plan_key == real.key and len(real.splits["train"]) == 18
    assert any("1 image(s) quarantined" in note for note in after.notes)


def test_budget_experiment_bills_its_encodes_and_says_why(tmp_path):
    bill = billed(demo_launch(tmp_path, "experiment=budget"))
    kinds = {count.kind for count in bill.counts}
    assert kinds == {"validate", "encode"}
    assert any("experiment=budget" in note and "cells" in note for note in bill.notes)


def test_budget_experiment_bills_its_cells_once_its_encodes_exist(tmp_path):
    from sweep.session.planning import run_part

    launched = demo_launch(tmp_path, "experiment=budget", "cluster=inline", "train.batch_size=2")
    sweep = launched.session.sweep
    encodes = planned(launched)
    screen(sweep)  # the validation, then the encodes the cells are sized from
    run_part(launched.experiment.shaped(sweep), encodes)
    bill = billed(launched)
    counts = {count.kind: count for count in bill.counts}
    assert counts["encode"].to_run == 0 and counts["validate"].to_run == 0
    # 4 settings x 3 budgets, each cell one training evaluated on the original test split.
    assert counts["train"].total == bill.runs["trainings"] == 12
    assert counts["evaluate"].total == 12
    assert any("planned from the finished encodes" in note for note in bill.notes)


def test_dry_run_must_be_true_or_false(tmp_path):
    with pytest.raises(OptionError, match="dry_run"):
        demo_launch(tmp_path, "dry_run=maybe")


def test_calibration_times_the_codec_and_the_model(tmp_path):
    """A few seconds on the small demo: the codec at each pending setting, a few training
    steps and (time allowing, else derived from the training rate) one evaluation."""
    bill = billed(demo_launch(tmp_path, "train.batch_size=4"), calibrate=True)
    for name in ("decode", "encode", "measure", "train", "evaluate"):
        expected = ("timed now", "derived") if name == "evaluate" else ("timed now",)
        assert bill.throughput[name].source in expected, name
        assert bill.throughput[name].images_per_second > 0
    assert bill.cpu_hours + bill.gpu_hours > 0
    assert all(hours > 0 for hours in bill.hours_by_work.values())
    assert re.search(r"estimate: [\d.]+ CPU-hours", format_bill(bill))
    assert bill.bytes_to_write["encoded_images"] > 0 and bill.bytes_to_write["weights"] > 0
