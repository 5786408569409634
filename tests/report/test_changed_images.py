"""changed_images.csv and the galleries of the images that change most."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from sweep.analysis.changed_images import image_scores, most_affected
from sweep.report.changed_images import (
    CHANGED_COLUMNS,
    changed_rows,
    gallery_name,
    plot_gallery,
    write_changed_csv,
)
from tests.analysis.test_changed_images import classifier

SOURCES = [f"test/{name}.png" for name in ("a", "b", "c", "d")]
CLASSES = ["cat", "dog"]


def cells() -> dict:
    return {
        ("original", "original", 0): classifier([1, 1, 1, 0]),
        ("original", "4", 0): classifier([1, 0, 0, 1]),
        ("4", "original", 0): classifier([1, 1, 1, 0]),
        ("4", "4", 0): classifier([0, 0, 0, 0]),
    }


def test_every_cell_but_the_reference_has_its_flips_and_most_affected_image(tmp_path):
    scores = {cell: image_scores(o) for cell, o in cells().items()}
    rows = changed_rows(scores, SOURCES, 0.95)
    by_cell = {(r["train_setting"], r["test_setting"]): r for r in rows}
    assert set(by_cell) == {("original", "4"), ("4", "original"), ("4", "4")}
    assert (by_cell[("original", "4")]["worse"], by_cell[("original", "4")]["better"]) == (2, 1)
    assert by_cell[("original", "4")]["most_affected"] == "test/b.png"
    assert by_cell[("4", "original")]["worse"] == 0
    assert by_cell[("4", "original")]["most_affected"] is None
    assert by_cell[("4", "4")]["worse"] == 3
    path = write_changed_csv(rows, tmp_path)
    with path.open() as stream:
        written = list(csv.DictReader(stream))
    assert list(written[0]) == CHANGED_COLUMNS
    row = next(r for r in written if (r["train_setting"], r["test_setting"]) == ("4", "4"))
    assert row["measure"] == "correct" and row["images"] == "4"
    assert float(row["worse_ci_low"]) < 3 < float(row["worse_ci_high"]) <= 4
    assert row["most_affected"] == "test/a.png"


def test_a_gallery_shows_each_affected_image_in_two_panels_read_at_its_settings(tmp_path):
    outcomes = cells()
    reference = outcomes[("original", "original", 0)]
    model = {"original": outcomes[("4", "original", 0)], "4": outcomes[("4", "4", 0)]}
    affected = most_affected(
        image_scores(reference), {t: image_scores(o) for t, o in model.items()}, 6
    )
    assert [a.index for a in affected] == [0, 1, 2]
    read = []

    def image_of(setting: str, source: str) -> np.ndarray:
        read.append((setting, source))
        if source == "test/c.png":
            raise OSError("gone")  # drawn as "unreadable", not a failed report
        return np.full((8, 12, 3), 40 if setting == "original" else 200, np.uint8)

    path = plot_gallery(affected, "4", SOURCES, reference, model, CLASSES, image_of,
                        tmp_path / gallery_name("4"))  # fmt: skip
    assert path.name == "changed_images_4.png"
    assert read == [(setting, source) for source in SOURCES[:3] for setting in ("original", "4")]
    with Image.open(path) as image:
        assert image.height > 1.2 * image.width  # three rows of two panels
    with pytest.raises(KeyError):  # an affected image's setting must be one of the model's
        plot_gallery(affected, "4", SOURCES, reference, {"original": model["original"]},
                     CLASSES, image_of, tmp_path / "x.png")  # fmt: skip
