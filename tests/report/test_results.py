"""Tests for the sweep.report package: relative values, CSV output, heatmaps, the DCR plot and
the distortion figure."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from sweep.report import heatmaps
from sweep.report.axis import SettingAxis, setting_position
from sweep.report.distortion import plot_distortion, worst_tenth
from sweep.report.heatmaps import interpolate_grid, plot_dcr_curves, plot_relative_heatmap
from sweep.report.results import write_report
from sweep.report.tables import RESULT_COLUMNS, add_relative, write_results_csv
from sweep.tables import write_csv

DCR = {"original": 0.0, "0.5": 0.55, "1": 0.7, "4": 0.85, "10": 0.93}


def _dcr(setting: str) -> float:
    return DCR.get(setting, 1.0 - 1.0 / (2.0 + setting_position(setting)))


def make_rows(settings: list[str], metrics: tuple[str, ...] = ("mIoU",)) -> list[dict]:
    """Full train x test grid without ``relative``; values differ per metric and cell."""
    rows = []
    for m_index, metric in enumerate(metrics):
        for train in settings:
            for test in settings:
                value = 0.8 - 0.1 * m_index - 0.01 * setting_position(train)
                value -= 0.02 * setting_position(test) + 0.001 * setting_position(train) ** 2
                rows.append(
                    {
                        "task": "segmentation",
                        "model": "segformer",
                        "codec": "jxl",
                        "train_setting": train,
                        "test_setting": test,
                        "train_dcr": _dcr(train),
                        "test_dcr": _dcr(test),
                        "train_dcr_raw": 0.5 + _dcr(train) / 2,
                        "test_dcr_raw": 0.5 + _dcr(test) / 2,
                        "metric": metric,
                        "value": value,
                    }
                )
    return rows


def make_dcr_rows(settings: list[str]) -> list[dict]:
    return [
        {"split": split, "setting": s, "dcr": _dcr(s), "dcr_raw": 0.5 + _dcr(s) / 2}
        for split in ("train", "test")
        for s in settings
    ]


def _cell(rows: list[dict], metric: str, train: str, test: str) -> dict:
    (row,) = [
        r
        for r in rows
        if r["metric"] == metric and r["train_setting"] == train and r["test_setting"] == test
    ]
    return row


def _assert_png(path: Path) -> None:
    assert path.is_file()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 0 and image.size[1] > 0


@pytest.fixture(autouse=True)
def no_leaked_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == []


def test_setting_position_values_and_numeric_order():
    assert setting_position("original") == 0.0
    assert setting_position("0.5") == 0.5
    assert setting_position("10") == 10.0
    ordered = sorted(["10", "original", "4", "0.5", "1"], key=setting_position)
    assert ordered == ["original", "0.5", "1", "4", "10"]


def test_add_relative_reference_cell_is_exactly_one():
    rows = add_relative(make_rows(["original", "1", "4"]))
    assert _cell(rows, "mIoU", "original", "original")["relative"] == 1.0


def test_add_relative_divides_by_reference_and_copies_rows():
    source = make_rows(["original", "1", "4"])
    rows = add_relative(source)
    reference = _cell(source, "mIoU", "original", "original")["value"]
    cell = _cell(rows, "mIoU", "4", "1")
    assert cell["relative"] == cell["value"] / reference
    assert cell["relative"] != 1.0
    assert all("relative" not in r for r in source)


def test_add_relative_uses_each_metrics_own_reference():
    rows = add_relative(make_rows(["original", "1"], metrics=("mIoU", "mAcc")))
    for metric in ("mIoU", "mAcc"):
        reference = _cell(rows, metric, "original", "original")["value"]
        assert _cell(rows, metric, "original", "original")["relative"] == 1.0
        cell = _cell(rows, metric, "1", "1")
        assert cell["relative"] == cell["value"] / reference
    # The two references differ, so a shared reference would break one of the checks above.
    assert (
        _cell(rows, "mIoU", "original", "original")["value"]
        != _cell(rows, "mAcc", "original", "original")["value"]
    )


def test_add_relative_missing_reference_names_metric():
    rows = make_rows(["original", "1"], metrics=("mIoU", "mAcc"))
    rows = [
        r
        for r in rows
        if not (r["metric"] == "mAcc" and r["train_setting"] == r["test_setting"] == "original")
    ]
    with pytest.raises(ValueError, match="mAcc"):
        add_relative(rows)


def test_zero_reference_keeps_the_values_with_nan_relatives_and_a_warning(tmp_path, caplog):
    rows = make_rows(["original", "1"], metrics=("mIoU", "mAcc"))
    _cell(rows, "mIoU", "original", "original")["value"] = 0.0
    relative = add_relative(rows)
    assert all(np.isnan(r["relative"]) for r in relative if r["metric"] == "mIoU")
    assert all(not np.isnan(r["relative"]) for r in relative if r["metric"] == "mAcc")
    assert "mIoU is 0.0 at original/original" in caplog.text
    # The report is still written: every value, heatmaps only where relatives exist.
    paths = write_report(rows, make_dcr_rows(["original", "1"]), tmp_path)
    assert "heatmap_mAcc_setting" in paths and "heatmap_mIoU_setting" not in paths
    assert len(paths["results.csv"].read_text().splitlines()) == 1 + len(rows)


def test_results_csv_header_numeric_order_and_exact_floats(tmp_path):
    rows = add_relative(make_rows(["10", "0.5", "original"], metrics=("mIoU", "mAcc")))
    rows[0]["value"] = 0.1 + 0.2  # 0.30000000000000004: lost by any rounding
    path = write_results_csv(rows, tmp_path / "results.csv")
    assert path == tmp_path / "results.csv"
    with path.open(newline="") as f:
        assert next(csv.reader(f)) == RESULT_COLUMNS
    with path.open(newline="") as f:
        read = list(csv.DictReader(f))
    assert len(read) == len(rows)
    assert [r["metric"] for r in read] == ["mAcc"] * 9 + ["mIoU"] * 9
    assert [r["train_setting"] for r in read[:9:3]] == ["original", "0.5", "10"]
    assert [r["test_setting"] for r in read[:3]] == ["original", "0.5", "10"]
    originals = {(r["metric"], r["train_setting"], r["test_setting"]): r for r in rows}
    for r in read:
        source = originals[(r["metric"], r["train_setting"], r["test_setting"])]
        for column in ("value", "relative", "train_dcr", "test_dcr_raw"):
            assert float(r[column]) == source[column]
    assert list(tmp_path.glob("*.tmp-*")) == []


def test_results_csv_failure_leaves_no_partial_files(tmp_path):
    rows = make_rows(["original", "1"])  # no "relative" column: writing must fail
    with pytest.raises(KeyError):
        write_results_csv(rows, tmp_path / "results.csv")
    assert list(tmp_path.iterdir()) == []


def test_write_csv_picks_columns_and_writes_exact_floats(tmp_path):
    rows = [
        {"name": "a,b", "value": 0.1 + 0.2, "count": 3, "extra": "ignored"},
        {"name": 'say "hi"', "value": np.float32(0.1), "count": None},
        {"name": "na\u00efve\nline", "value": np.float64(1e-7)},
    ]
    path = write_csv(rows, ["name", "value", "count"], tmp_path / "table.csv")
    assert path.read_bytes() == (
        b"name,value,count\r\n"
        b'"a,b",0.30000000000000004,3\r\n'
        b'"say ""hi""",0.10000000149011612,\r\n'
        b'"na\xc3\xafve\nline",1e-07,\r\n'
    )
    assert write_csv([], ["a", "b"], tmp_path / "empty.csv").read_bytes() == b"a,b\r\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "table.csv"]


@pytest.mark.parametrize("axes", ["setting", "dcr"])
@pytest.mark.parametrize(
    "settings",
    [["original", "1", "4", "10"], ["original", "1"], ["original"]],
    ids=["4x4", "2x2", "1x1"],
)
def test_heatmap_writes_png(tmp_path, axes, settings):
    rows = add_relative(make_rows(settings))
    path = plot_relative_heatmap(rows, "mIoU", tmp_path / "heat.png", axes=axes)
    assert path == tmp_path / "heat.png"
    _assert_png(path)
    assert list(tmp_path.glob("*.tmp-*")) == []


@pytest.mark.parametrize(("settings", "interpolated"), [(["original", "1", "4"], True),
                                                        (["original", "1"], False)])  # fmt: skip
def test_heatmap_interpolates_only_non_degenerate_grids(tmp_path, monkeypatch, settings,
                                                        interpolated):  # fmt: skip
    calls = []

    def spy(*args, **kwargs):
        calls.append(args)
        return interpolate_grid(*args, **kwargs)

    monkeypatch.setattr(heatmaps, "interpolate_grid", spy)
    rows = add_relative(make_rows(settings))
    plot_relative_heatmap(rows, "mIoU", tmp_path / "heat.png")
    assert bool(calls) is interpolated


def test_heatmap_rejects_unknown_axes_and_metric(tmp_path):
    rows = add_relative(make_rows(["original", "1"]))
    with pytest.raises(ValueError, match="axes"):
        plot_relative_heatmap(rows, "mIoU", tmp_path / "heat.png", axes="bogus")
    with pytest.raises(ValueError, match="mAcc"):
        plot_relative_heatmap(rows, "mAcc", tmp_path / "heat.png")


def test_interpolate_grid_is_linear_between_observed_cells():
    # Non-uniform 3x3 grid with a non-linear surface, so "nearest" or a global plane would fail.
    positions = [0.0, 1.0, 4.0]
    xs, ys = np.meshgrid(positions, positions)
    xs, ys = xs.ravel(), ys.ravel()
    values = 90.0 + 3.0 * xs - 2.0 * ys + 0.5 * xs * ys + np.arange(9.0) ** 1.5
    gx, gy, grid = interpolate_grid(xs, ys, values, resolution=201)
    assert grid.shape == (201, 201)
    assert gx[0] == 0.0 and gx[-1] == 4.0 and gy[0] == 0.0 and gy[-1] == 4.0

    def observed(x: float, y: float) -> float:
        return float(values[(xs == x) & (ys == y)][0])

    # Midpoint of the edge (1, 1)-(4, 1): x = 2.5 is grid column 125 (step 0.02).
    ix, iy = int(np.argmin(abs(gx - 2.5))), int(np.argmin(abs(gy - 1.0)))
    assert gx[ix] == pytest.approx(2.5) and gy[iy] == pytest.approx(1.0)
    expected = (observed(1.0, 1.0) + observed(4.0, 1.0)) / 2
    assert grid[iy, ix] == pytest.approx(expected, rel=1e-9)
    assert expected not in (observed(1.0, 1.0), observed(4.0, 1.0))
    # Observed corners are reproduced exactly.
    assert grid[0, 0] == pytest.approx(observed(0.0, 0.0))
    assert grid[-1, -1] == pytest.approx(observed(4.0, 4.0))


def test_dcr_plot_writes_png(tmp_path):
    path = plot_dcr_curves(make_dcr_rows(["10", "original", "1", "4"]), tmp_path / "dcr.png")
    assert path == tmp_path / "dcr.png"
    _assert_png(path)


def test_write_report_outputs(tmp_path):
    settings = ["original", "1", "4", "10"]
    out_dir = tmp_path / "nested" / "report"
    paths = write_report(
        make_rows(settings, metrics=("mIoU", "mAcc")), make_dcr_rows(settings), out_dir
    )
    assert set(paths) == {
        "results.csv",
        "heatmap_mIoU_setting",
        "heatmap_mIoU_dcr",
        "heatmap_mAcc_setting",
        "heatmap_mAcc_dcr",
        "dcr_by_setting",
    }
    assert paths["results.csv"] == out_dir / "results.csv"
    assert paths["heatmap_mIoU_dcr"] == out_dir / "heatmap_mIoU_dcr.png"
    assert paths["dcr_by_setting"] == out_dir / "dcr_by_setting.png"
    for name, path in paths.items():
        assert path.is_file(), name
        if name != "results.csv":
            _assert_png(path)
    with paths["results.csv"].open(newline="") as f:
        read = list(csv.DictReader(f))
    reference = [r for r in read if r["train_setting"] == r["test_setting"] == "original"]
    assert [float(r["relative"]) for r in reference] == [1.0, 1.0]
    assert list(out_dir.glob("*.tmp-*")) == []


def test_setting_axis_orders_results_and_ticks_by_codec_positions(tmp_path):
    # A quality axis: higher quality is less compression, so it lies nearer the original.
    axis = SettingAxis("JPEG quality", {"original": 0, "q90": 10, "q50": 50})
    rows = []

    for train in ("q50", "original", "q90"):
        for test in ("q90", "q50", "original"):
            rows.append(
                {
                    **make_rows(["original"])[0],
                    "train_setting": train,
                    "test_setting": test,
                    "value": 0.5 + axis.position(test) / 1000,
                }
            )
    paths = write_report(rows, [], tmp_path, axis)
    with paths["results.csv"].open(newline="") as f:
        order = [(r["train_setting"], r["test_setting"]) for r in csv.DictReader(f)]
    assert order[:3] == [("original", "original"), ("original", "q90"), ("original", "q50")]
    assert order[-1] == ("q50", "q50")
    assert axis.position("q50") == 50.0 and axis.position("2") == 2.0


def test_distortion_figure_draws_measured_and_missing_measures(tmp_path):
    rows = [
        {"setting": s, "measure": m, "median": v, "p10": v * 0.8, "p90": v * 1.2}
        for s, d in (("1", 1.0), ("4", 4.0))
        for m, v in (("butteraugli_3norm", d * 0.8), ("butteraugli_max", d * 1.3), ("psnr", 40 - d))
    ]
    path = plot_distortion(rows, tmp_path / "d.png", target_is_distance=True)
    _assert_png(path)
    # A sweep measured nothing: every panel says so instead of failing.
    _assert_png(plot_distortion([], tmp_path / "none.png"))


def test_worst_tenth_is_the_bad_tail_of_each_measure():
    assert worst_tenth({"measure": "psnr", "p10": 30.0, "p90": 40.0}) == 30.0
    assert worst_tenth({"measure": "butteraugli_max", "p10": 1.0, "p90": 2.0}) == 2.0


def test_noise_stays_pale_whatever_the_spread_of_the_cells():
    """Cells at 98.2-100.6% (all within noise on real data) must not span the whole colour
    scale: 100% is its pale centre and 98.2% is barely tinted."""
    norm = heatmaps.relative_norm(np.array([98.2, 99.5, 100.0, 100.6]))
    assert norm(100.0) == pytest.approx(0.5)
    assert abs(norm(98.2) - 0.5) < 0.1 and abs(norm(100.6) - 0.5) < 0.05
    wide = heatmaps.relative_norm(np.array([40.0, 100.0]))
    assert wide(40.0) == pytest.approx(0.0)  # a real collapse takes the darkest colour


def test_cells_whose_interval_excludes_100_percent_are_marked():
    cells = [
        {"relative_ci_low": 0.97, "relative_ci_high": 1.02},  # within noise
        {"relative_ci_low": 0.80, "relative_ci_high": 0.95},  # surely lower
        {},  # no interval: not marked
    ]
    assert heatmaps.within_noise(cells).tolist() == [False, True, False]


def test_the_dcr_heatmap_paints_only_its_cells(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(heatmaps, "interpolate_grid", lambda *a, **k: calls.append(a))
    rows = add_relative(make_rows(["original", "1", "4", "10"]))
    plot_relative_heatmap(rows, "mIoU", tmp_path / "heat.png", axes="dcr")
    assert calls == []


def test_results_csv_carries_intervals_where_the_rows_have_them(tmp_path):
    rows = add_relative(make_rows(["original", "1"]))
    rows[0] |= {"ci_low": 0.4, "ci_high": 0.6, "relative_ci_low": 1.0, "relative_ci_high": 1.0}
    path = write_results_csv(rows, tmp_path / "results.csv")
    with path.open() as stream:
        table = list(csv.DictReader(stream))
    assert [r["ci_low"] for r in table].count("") == len(rows) - 1
    assert {"0.4", "0.6"} <= {v for r in table for v in (r["ci_low"], r["ci_high"])}
