"""per_class.csv and the figure of the classes that lose most."""

from __future__ import annotations

import csv

from PIL import Image

from sweep.analysis.per_class import full_set_values, per_class_rows
from sweep.report.per_class import (
    PER_CLASS_COLUMNS,
    PER_CLASS_FIGURE,
    error_bar,
    plot_classes_losing_most,
    write_per_class_csv,
)
from sweep.tasks.classification import resample_accuracy
from tests.analysis.test_per_class import CLASSES, classifier_grid, intervals_of


def grid_rows() -> list[dict]:
    outcomes = classifier_grid(hurt="owl")
    # The diagonal too: a model trained at 4, tested at 4, as hurt as the original-trained one.
    outcomes[("4", "4", 0)] = outcomes[("original", "4", 0)]
    return per_class_rows(full_set_values(resample_accuracy, outcomes), intervals_of(outcomes),
                          CLASSES)  # fmt: skip


def test_per_class_csv_holds_every_cell_and_class_with_names_and_intervals(tmp_path):
    path = write_per_class_csv(grid_rows(), tmp_path)
    with path.open() as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == PER_CLASS_COLUMNS
    assert len(rows) == 5 * len(CLASSES)
    owl = next(r for r in rows if (r["test_setting"], r["class_name"]) == ("15", "owl"))
    assert owl["class_index"] == "3" and owl["metric"] == "accuracy" and owl["seed"] == "0"
    assert float(owl["relative_ci_low"]) <= float(owl["relative"]) <= float(owl["relative_ci_high"])
    assert float(owl["relative"]) < 0.5  # the class that compression hurts
    assert all(r["ci_low"] and r["ci_high"] for r in rows)


def test_the_figure_has_a_panel_per_compressed_setting_and_a_row_for_the_diagonal(tmp_path):
    rows = grid_rows()
    path = plot_classes_losing_most(rows, ["original", "1", "4", "15"], tmp_path / PER_CLASS_FIGURE)
    one_line = plot_classes_losing_most(
        [r for r in rows if r["train_setting"] == "original"],
        ["original", "1", "4", "15"],
        tmp_path / "one_line.png",
    )
    with Image.open(path) as both, Image.open(one_line) as single:
        assert both.width == single.width  # three panels wide
        assert both.height > single.height * 1.4  # and a second row for the diagonal
    assert plot_classes_losing_most(rows, ["original"], tmp_path / "none.png") is None


def test_error_bars_reach_the_interval_bounds_and_vanish_without_them():
    row = {"relative": 0.5, "relative_ci_low": 0.4, "relative_ci_high": 0.7}
    low, high = error_bar(row, 50.0)
    assert (round(low, 6), round(high, 6)) == (10.0, 20.0)
    assert error_bar({"relative": 0.5}, 50.0) == (0.0, 0.0)
