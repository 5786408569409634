"""DCT-input models in a sweep like any model: coefficients straight from JPEG files on JPEG
settings and computed from pixels on JPEG XL ones; an RGB and a DCT model of one task and codec
on one comparison chart and in one results.csv; DCTNet's gate frequencies in the report."""

from __future__ import annotations

import csv
import json

import pytest

from sweep.config.build import build_sweep
from sweep.store import ArtifactStore
from tests.conftest import FAST_TRAINING, compose_config, run_sweep

JPEG_GRID = ("codec=jpeg", "grid.train=[original,q50-420]", "grid.test=[original,q50-420]")
TINY_DCT = ("model=dct_resnet50_tiny", "model.image_size=48")


def run_of(imagefolder, results, *overrides: str):
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={imagefolder}",
        f"results_dir={results}",
        *FAST_TRAINING,
        "cluster=inline",
        "tracking=none",
        "distortion.enabled=false",
        *overrides,
    )
    sweep = build_sweep(cfg, check_data=True)
    return sweep, run_sweep(sweep)


def summaries(store: ArtifactStore, kind: str, name: str) -> list[dict]:
    return [
        json.loads((folder / name).read_text())
        for folder in sorted((store.root / kind).iterdir())
        if (folder / name).is_file()
    ]


@pytest.mark.slow
def test_jpeg_settings_feed_coefficients_read_from_the_files(imagefolder, tmp_path):
    sweep, report = run_of(imagefolder, tmp_path, *TINY_DCT, *JPEG_GRID)
    # Every stored file of the grid is a 4:2:0 JPEG (the originals too): no inverse DCT.
    trains = summaries(sweep.store, "train", "summary.json")
    assert [t["input_sources"] for t in trains] == [{"file": 18, "pixels": 0}] * 2
    evaluations = summaries(sweep.store, "evaluate", "metrics.json")
    assert [e["input_sources"] for e in evaluations] == [{"file": 9, "pixels": 0}] * 4
    with (report / "results.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert {row["model"] for row in rows} == {"dct_resnet50_tiny_late_concat_rfa_thinner"}
    assert len(rows) == 4
    assert (report / "sensitivity").is_dir()  # the maps perturb the coefficients' pixels

    # JPEG XL settings: coefficients computed from decoded pixels; the original stays read.
    sweep, report = run_of(imagefolder, tmp_path, *TINY_DCT, "sensitivity=off")
    keys = json.loads((report / "stages.json").read_text())["evaluate"]
    sources = {
        cell: json.loads(sweep.store.path("evaluate", key).joinpath("metrics.json").read_text())
        for cell, key in keys.items()
    }
    assert {cell: metrics["input_sources"] for cell, metrics in sources.items()} == {
        "original/original": {"file": 9, "pixels": 0},
        "original/4": {"file": 0, "pixels": 9},
        "4/original": {"file": 9, "pixels": 0},
        "4/4": {"file": 0, "pixels": 9},
    }


@pytest.mark.slow
def test_rgb_and_dct_models_of_one_task_and_codec_share_a_chart_and_a_table(imagefolder, tmp_path):
    small_vit = (
        "model=vit_tiny",
        "model.image_size=48",
        "model.architecture.hidden_size=32",
        "model.architecture.num_hidden_layers=1",
        "model.architecture.intermediate_size=64",
    )
    run_of(imagefolder, tmp_path, *small_vit, *JPEG_GRID, "sensitivity=off")
    run_of(
        imagefolder, tmp_path, "model=dctnet_tiny", "model.selection=dynamic",
        "model.channels=192", "model.image_size=48", *JPEG_GRID, "sensitivity=off",
    )  # fmt: skip
    folder = tmp_path / "reports" / "compare_models_imagefolder_jpeg"
    with (folder / "results.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert {row["model"] for row in rows} == {"vit_tiny", "dctnet_tiny_dynamic192"}
    assert len(rows) == 8
    assert (folder / "accuracy_vs_dcr.png").is_file()
    assert (folder / "relative_vs_dcr_accuracy.png").is_file()
    # The gate's selection frequencies: one figure of the diagonal, every cell in a table.
    report = next((tmp_path / "reports").glob("imagefolder_dctnet_tiny_dynamic192_jpeg_*"))
    assert (report / "gate_frequencies.png").is_file()
    with (report / "gate_frequencies.csv").open() as stream:
        cells = list(csv.DictReader(stream))
    assert len(cells) == 4 * 192
    for statistic in ("gate_open", "gate_probability"):
        assert all(0.0 <= float(cell[statistic]) <= 1.0 for cell in cells)
