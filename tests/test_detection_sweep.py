"""Detection through the whole sweep: boxes survive encoding untouched, mAP in the results."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sweep.analysis.detection_map import MapResample
from sweep.analysis.outcomes import OUTCOMES_FILE, read_outcomes
from sweep.config.build import build_sweep
from sweep.data.formats import sniff_format
from sweep.data.pixels import read_pixels
from sweep.errors import OptionError
from sweep.session.planning import plan_sweep, stage_context
from sweep.stages.encode import encode_shard, encoded_files, finalize_encode
from sweep.store.locations import read_location
from tests.conftest import compose_config, run_sweep
from tests.data.test_voc import write_voc_folder

REPO = Path(__file__).resolve().parent.parent
# The tiny detector on a 2 x 2 grid. The report divides by the original/original mAP, so each
# sweep below trains long enough for a clearly non-zero one.
FAST_DETECTION = (
    "model=faster_rcnn_tiny",
    "grid.train=[original,4]",
    "grid.test=[original,4]",
    "progress=false",
    "tracking=none",
)


def read_csv(path: Path) -> list[dict]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


def test_encoding_keeps_boxes_labels_and_difficult_flags_untouched(tmp_path):
    root = write_voc_folder(tmp_path / "VOC2012")
    sweep = build_sweep(
        compose_config(
            "task=voc",
            f"task.root={root}",
            f"results_dir={tmp_path / 'results'}",
            "cluster=inline",
            *FAST_DETECTION,
        )
    )
    plan = plan_sweep(sweep)
    context = stage_context(sweep, plan)
    for stage in plan.encodes.values():
        for index in range(len(stage.shards)):
            encode_shard(context, stage, index, plan.shard_items(stage, index))
        finalize_encode(context, stage)

        records = encoded_files(sweep.store, stage)
        items = sweep.reader.items(stage.split)
        assert [record.target for record in records] == [item.target for item in items]
        for record, item in zip(records, items, strict=True):
            source = read_pixels(root / item.relpath)
            encoded = read_pixels(record.path)
            assert encoded.shape == source.shape  # same resolution: the boxes still fit
            expected_format = "jpeg" if stage.setting == "original" else "jxl"
            assert sniff_format(read_location(record.path)[:32]) == expected_format
    # The records as written on disk, JSON and all: a difficult flag and an empty image.
    train = plan.encodes[("train", "4")]
    lines = (sweep.store.path("encode", train.key) / "records.jsonl").read_text().splitlines()
    targets = [json.loads(line)["target"] for line in lines]
    assert targets[1]["difficult"] == [False, True]
    assert targets[2] == {"boxes": [], "labels": [], "difficult": []}


@pytest.mark.slow
def test_inline_demo_det_sweep_reports_map_for_every_cell(tmp_path):
    cfg = compose_config(
        "task=demo_det",
        f"results_dir={tmp_path}",
        "cluster=inline",
        "cluster.torch_threads=1",
        "task.reader.train_images=64",
        "task.reader.test_images=16",
        "train.epochs=6",
        "train.batch_size=4",
        *FAST_DETECTION,
    )
    report = run_sweep(build_sweep(cfg))
    rows = read_csv(report / "results.csv")
    cells = [("original", "original"), ("original", "4"), ("4", "original"), ("4", "4")]
    for metric in ("map_50", "map"):
        metric_rows = [r for r in rows if r["metric"] == metric]
        assert [(r["train_setting"], r["test_setting"]) for r in metric_rows] == cells
        assert all(0 <= float(r["value"]) <= 1 for r in metric_rows)
        assert float(metric_rows[0]["value"]) > 0 and metric_rows[0]["relative"] == "1.0"
    assert all(r["task"] == "demo_det" and r["model"] == "faster_rcnn_tiny" for r in rows)
    # Every cell has its interval, around its value, and so does its relative value.
    for row in rows:
        assert float(row["ci_low"]) <= float(row["value"]) <= float(row["ci_high"]), row
        assert (
            float(row["relative_ci_low"])
            <= float(row["relative"])
            <= float(row["relative_ci_high"])
        )
    assert any(float(r["ci_high"]) > float(r["ci_low"]) for r in rows)
    recommendation = json.loads((report / "recommendation.json").read_text())
    assert recommendation["metric"] == "map_50"
    for scenario in recommendation["scenarios"].values():
        assert "no intervals" not in scenario["sentence"]
        assert all("relative_lower_bound" in c for c in scenario["candidates"])
    # The stored match tables recount to the cell's torchmetrics values.
    for cell in (tmp_path / "store" / "evaluate").iterdir():
        metrics = json.loads((cell / "metrics.json").read_text())
        _, outcomes = read_outcomes(cell / OUTCOMES_FILE)
        recounted = MapResample()(outcomes, np.ones((1, len(outcomes["labels"]))))
        assert recounted["map_50"][0] == pytest.approx(metrics["map_50"], abs=1e-4)
        assert recounted["map"][0] == pytest.approx(metrics["map"], abs=1e-4)
    # A heatmap per metric, on both axes (setting and DCR), as for classification.
    heatmaps = {p.name for p in report.glob("heatmap_*.png") if p.stat().st_size > 0}
    assert {"heatmap_map_50_dcr.png", "heatmap_map_dcr.png"} <= heatmaps and len(heatmaps) == 4
    [train] = [
        json.loads(p.read_text()) for p in (tmp_path / "store" / "train").glob("*/summary.json")
    ][:1]
    assert len(train["train_loss"]) == 6 and train["images"] == 64


@pytest.mark.slow
def test_an_untrained_detector_is_at_chance_and_the_grid_recommends_nothing(tmp_path, caplog):
    cfg = compose_config(
        "task=demo_det",
        f"results_dir={tmp_path}",
        "cluster=inline",
        "cluster.torch_threads=1",
        "task.reader.train_images=8",
        "task.reader.test_images=16",
        "train.epochs=0",
        *FAST_DETECTION,
    )
    report = run_sweep(build_sweep(cfg))
    recommendation = json.loads((report / "recommendation.json").read_text())
    assert recommendation["chance"]["metric"] == "map_50"
    assert recommendation["chance"]["reference_ci_low"] <= recommendation["chance"]["chance_level"]
    for scenario in recommendation["scenarios"].values():
        assert scenario["recommended"] is None
        assert "cannot answer" in scenario["sentence"]
    assert any("chance" in record.getMessage() for record in caplog.records)


@pytest.mark.slow
def test_cli_voc_folder_with_the_tiny_detector(tmp_path):
    root = write_voc_folder(tmp_path / "VOC2012")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep",
            "task=voc",
            f"task.root={root}",
            f"results_dir={tmp_path / 'results'}",
            "cluster=inline",
            # Tested on its own training images: a few epochs make a sure non-zero mAP.
            "task.reader.test_list=train",
            "task.kind.grad_clip=10",
            "model.train_sizes=[64]",
            "model.test_size=64",
            "model.max_size=64",
            "train.epochs=20",
            "train.batch_size=2",
            *FAST_DETECTION,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [report] = (tmp_path / "results" / "reports").glob("voc_faster_rcnn_tiny_jxl_*")
    rows = read_csv(report / "results.csv")
    assert {r["metric"] for r in rows} == {"map_50", "map"} and len(rows) == 8
    assert all(float(r["value"]) > 0 for r in rows if r["train_setting"] == "original")


def test_a_classification_model_on_a_detection_task_is_refused(tmp_path):
    with pytest.raises(OptionError, match="swav_tiny is a classification model"):
        build_sweep(
            compose_config("task=demo_det", "model=swav_tiny", f"results_dir={tmp_path}"),
            check_data=False,
        )
