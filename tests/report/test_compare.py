"""The codec comparison: curves, the within-1% DCR with known answers, files from reports."""

from __future__ import annotations

import csv
import math
import os

import pytest
from PIL import Image

from sweep.report.compare import (
    CurvePoint,
    curve_points,
    dcr_within,
    write_comparison,
    write_model_comparison,
)
from sweep.report.tables import add_relative, write_results_csv


def point(setting: str, dcr: float, relative: float) -> CurvePoint:
    return CurvePoint(setting, setting, dcr, relative)


def test_crossing_is_interpolated_between_the_named_cells():
    points = [point("original", 0.0, 1.0), point("1", 0.5, 0.995), point("4", 0.9, 0.975)]
    found = dcr_within(points)
    # 0.995 -> 0.975 over DCR 0.5 -> 0.9 crosses 0.99 a quarter of the way: 0.5 + 0.1.
    assert found["dcr_within"] == pytest.approx(0.6)
    assert found["last_cell_within"] == "train=1/test=1"
    assert found["first_cell_beyond"] == "train=4/test=4"
    assert found["status"].startswith("crossed")


def test_the_first_drop_ends_the_curve_even_if_a_later_cell_recovers():
    points = [
        point("original", 0.0, 1.0),
        point("1", 0.4, 0.98),
        point("4", 0.8, 1.01),  # noise above the original does not extend the answer
    ]
    found = dcr_within(points)
    assert found["dcr_within"] == pytest.approx(0.0 + (1.0 - 0.99) / (1.0 - 0.98) * 0.4)
    assert found["first_cell_beyond"] == "train=1/test=1"


def test_a_curve_that_never_drops_gives_a_lower_bound_at_the_last_cell():
    found = dcr_within([point("original", 0.0, 1.0), point("10", 0.93, 0.999)])
    assert found["dcr_within"] == 0.93
    assert "lower bound" in found["status"]
    assert found["first_cell_beyond"] == "" and math.isnan(found["first_cell_dcr"])


def test_curve_points_pick_the_diagonal_or_the_original_test_column():
    rows = []
    for train, train_dcr in (("original", 0.0), ("4", 0.8)):
        for test in ("original", "4"):
            rows.append(
                {"metric": "accuracy", "train_setting": train, "test_setting": test,
                 "train_dcr": train_dcr, "relative": 0.9 if test == "4" else 1.0,
                 "value": 0.5}
            )  # fmt: skip
    stored = curve_points(rows, "accuracy", "stored")
    assert [(p.train_setting, p.test_setting) for p in stored] == [
        ("original", "original"),
        ("4", "4"),
    ]
    train_only = curve_points(rows, "accuracy", "train_only")
    assert [(p.train_setting, p.test_setting) for p in train_only] == [
        ("original", "original"),
        ("4", "original"),
    ]


def write_sweep_report(reports, name, codec, model="m", drop=0.05):
    rows = []
    for train, train_dcr in (("original", 0.0), ("1", 0.5), ("4", 0.9)):
        for test, test_dcr in (("original", 0.0), ("1", 0.5), ("4", 0.9)):
            rows.append(
                {"task": "demo", "model": model, "codec": codec, "train_setting": train,
                 "test_setting": test, "train_dcr": train_dcr, "test_dcr": test_dcr,
                 "train_dcr_raw": 0.9, "test_dcr_raw": 0.9, "metric": "accuracy",
                 "value": 0.8 - drop * (train_dcr + test_dcr)}
            )  # fmt: skip
    path = reports / name / "results.csv"
    path.parent.mkdir(parents=True)
    write_results_csv(add_relative(rows), path)
    return path


def test_write_comparison_uses_the_newest_report_of_each_codec(tmp_path):
    reports = tmp_path / "reports"
    old = write_sweep_report(reports, "demo_m_jxl_old", "jxl", drop=0.5)
    os.utime(old, (1, 1))
    write_sweep_report(reports, "demo_m_jxl_new", "jxl", drop=0.001)
    write_sweep_report(reports, "demo_m_jpeg_1", "jpeg", drop=0.05)
    write_sweep_report(reports, "demo_other_jpeg_1", "jpeg", model="other")
    paths, table = write_comparison(reports, "demo", "m")
    with Image.open(paths["relative_vs_dcr_accuracy"]) as image:
        assert image.format == "PNG" and image.width > 600
    stored = {r["codec"]: r for r in table if r["curve"] == "stored"}
    assert set(stored) == {"jxl", "jpeg"}
    assert stored["jxl"]["report"] == "demo_m_jxl_new"
    # jxl: relative 1 - 0.001*2*0.9/0.8 at the last cell, never below 99%.
    assert stored["jxl"]["dcr_within"] == 0.9
    # jpeg: relative 1 - 0.05*2*dcr/0.8 crosses 0.99 at dcr 0.08 (first segment).
    assert stored["jpeg"]["dcr_within"] == pytest.approx(0.08)
    with paths["dcr_within_1pct.csv"].open(newline="") as stream:
        assert len(list(csv.DictReader(stream))) == len(table) == 4


def test_write_model_comparison_puts_every_models_cells_in_one_table_and_chart(tmp_path):
    """An RGB and a DCT model of one task and codec: one results.csv, relative and absolute
    charts, the DCR within 1% per model; another codec's sweeps stay out."""
    reports = tmp_path / "reports"
    write_sweep_report(reports, "demo_rgb_jxl", "jxl", model="rgb", drop=0.05)
    write_sweep_report(reports, "demo_dct_jxl", "jxl", model="dct", drop=0.001)
    write_sweep_report(reports, "demo_dct_jpeg", "jpeg", model="dct")
    assert write_model_comparison(reports, "demo", "jpeg") == ({}, [])  # one model: nothing
    paths, table = write_model_comparison(reports, "demo", "jxl")
    assert paths["results.csv"].parent.name == "compare_models_demo_jxl"
    with paths["results.csv"].open(newline="") as stream:
        cells = list(csv.DictReader(stream))
    assert len(cells) == 2 * 9
    assert {(row["model"], row["codec"]) for row in cells} == {("rgb", "jxl"), ("dct", "jxl")}
    assert {"relative", "value", "train_dcr"} <= set(cells[0])
    for chart in ("relative_vs_dcr_accuracy", "accuracy_vs_dcr"):
        with Image.open(paths[chart]) as image:
            assert image.format == "PNG"
    stored = {r["model"]: r["dcr_within"] for r in table if r["curve"] == "stored"}
    assert stored == {"dct": 0.9, "rgb": pytest.approx(0.08)}
    # Redrawn after the next sweep: the comparison's own table is no sweep's report.
    paths, again = write_model_comparison(reports, "demo", "jxl")
    assert again == table
    with paths["results.csv"].open(newline="") as stream:
        assert len(list(csv.DictReader(stream))) == 2 * 9
