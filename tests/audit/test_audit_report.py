"""Tests for the audit report (sweep.audit.report and the tables, histograms, size heatmap and
projection modules it calls): tables, headline numbers and figures."""

from __future__ import annotations

import csv
import math
import sys
import types
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from sweep.audit import histograms
from sweep.audit.projection import pca_2d, project, settings_features, standardize
from sweep.audit.records import AUDIT_COLUMNS, FileAudit
from sweep.audit.report import write_audit_report
from sweep.audit.tables import summarize

OUTPUTS = (
    "files.csv",
    "anomalies.csv",
    "summary.csv",
    "bits_per_pixel.csv",
    "histograms.png",
    "size_heatmap.png",
    "projection.png",
)


def jpeg(split: str, path: str, quality: int, subsampling: str, width: int = 640,
         height: int = 480, file_bytes: int = 40_000, **extra: object) -> FileAudit:  # fmt: skip
    """A readable baseline JPEG record as the header reader would produce it; ``extra``
    overrides any field."""
    fields = dict(
        split=split,
        path=path,
        format="jpeg",
        extension="jpg",
        format_mismatch=False,
        file_bytes=file_bytes,
        width=width,
        height=height,
        mode="RGB",
        channels=3,
        bits_per_pixel=8 * file_bytes / (width * height),
        jpeg_subsampling=subsampling,
        jpeg_progressive=False,
        jpeg_quality=quality,
        jpeg_quality_exact=True,
        jpeg_quality_distance=0.0,
        jpeg_qtables="0:1 2 3;1:4 5 6",
    )
    return FileAudit(**{**fields, **extra})


def png(split: str, path: str, width: int, height: int, extension: str = "png",
        file_bytes: int = 100_000) -> FileAudit:  # fmt: skip
    """A readable PNG record; a non-png ``extension`` makes it misnamed."""
    return FileAudit(
        split=split,
        path=path,
        format="png",
        extension=extension,
        format_mismatch=extension != "png",
        file_bytes=file_bytes,
        width=width,
        height=height,
        mode="RGB",
        channels=3,
        bits_per_pixel=8 * file_bytes / (width * height),
    )


def unreadable(split: str, path: str) -> FileAudit:
    """A file whose headers could not be read."""
    return FileAudit(
        split=split,
        path=path,
        format="unknown",
        extension="jpg",
        format_mismatch=False,
        file_bytes=123,
        error="cannot identify image file",
    )


def dataset() -> list[FileAudit]:
    """53 train files (50 q96 4:4:4, a misnamed PNG, a 20x17 PNG, an unreadable file) and
    22 test files (20 q75 4:2:0, a 500x32 q75 strip, a q5 4:1:1 JPEG)."""
    records = [jpeg("train", f"train/a/{i}.jpg", 96, "4:4:4") for i in range(50)]
    records += [jpeg("test", f"test/a/{i}.jpg", 75, "4:2:0", 500, 375, 20_000) for i in range(20)]
    records += [
        png("train", "train/b/misnamed.jpg", 256, 256, extension="jpg"),
        png("train", "train/b/tiny.png", 20, 17, file_bytes=600),
        unreadable("train", "train/b/broken.jpg"),
        jpeg("test", "test/b/strip.jpg", 75, "4:2:0", 500, 32, 4_000),
        jpeg("test", "test/b/q5.jpg", 5, "4:1:1", 300, 200, 2_000, jpeg_progressive=True),
    ]
    return records


EXPECTED_ANOMALIES = {
    ("train", "train/b/misnamed.jpg", "misnamed format: png content in a .jpg file"),
    ("train", "train/b/tiny.png", "shorter side 17 px under 32"),
    ("train", "train/b/broken.jpg", "unreadable: cannot identify image file"),
    ("test", "test/b/strip.jpg", "aspect ratio 15.6:1 beyond 8:1"),
    ("test", "test/b/q5.jpg", "JPEG quality 5 below 10"),
    ("test", "test/b/q5.jpg", "4:1:1 chroma subsampling"),
}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The full report of ``dataset()``, written once for all table and figure checks."""
    return write_audit_report(dataset(), tmp_path_factory.mktemp("audit") / "report")


def test_returns_every_output_and_closes_figures(written: dict[str, Path]) -> None:
    assert set(written) == set(OUTPUTS)
    for name, path in written.items():
        assert path.name == name and path.is_file()
    assert plt.get_fignums() == []
    # No temp files left behind by the atomic writes.
    assert sorted(p.name for p in written["files.csv"].parent.iterdir()) == sorted(OUTPUTS)


def test_files_csv_round_trips(written: dict[str, Path]) -> None:
    rows = read_csv(written["files.csv"])
    assert list(rows[0]) == [*AUDIT_COLUMNS, "anomalies"]
    assert len(rows) == 75
    assert sum(r["split"] == "train" for r in rows) == 53
    assert sum(r["jpeg_quality"] == "96" for r in rows) == 50
    by_path = {r["path"]: r for r in rows}
    broken = by_path["train/b/broken.jpg"]
    assert broken["width"] == "" and broken["error"] == "cannot identify image file"
    assert (
        by_path["test/b/q5.jpg"]["anomalies"] == "JPEG quality 5 below 10; 4:1:1 chroma subsampling"
    )
    assert by_path["train/a/0.jpg"]["anomalies"] == ""
    assert float(by_path["test/a/0.jpg"]["bits_per_pixel"]) == 8 * 20_000 / (500 * 375)


def test_anomalies_csv_lists_exactly_the_expected_reasons(written: dict[str, Path]) -> None:
    rows = read_csv(written["anomalies.csv"])
    assert list(rows[0]) == ["split", "path", "reason"]
    assert len(rows) == len(EXPECTED_ANOMALIES)
    assert {(r["split"], r["path"], r["reason"]) for r in rows} == EXPECTED_ANOMALIES


def test_summary_csv_counts_per_split(written: dict[str, Path]) -> None:
    rows = read_csv(written["summary.csv"])
    counts = {(r["split"], r["measure"], r["value"]): int(r["count"]) for r in rows}
    assert len(counts) == len(rows)  # one row per (split, measure, value)
    assert counts[("train", "jpeg_quality", "96")] == 50
    assert counts[("test", "jpeg_quality", "75")] == 21
    assert counts[("test", "jpeg_quality", "5")] == 1
    assert counts[("all", "jpeg_quality", "96")] == 50
    assert ("train", "jpeg_quality", "75") not in counts
    assert counts[("train", "format", "jpeg")] == 50
    assert counts[("train", "format", "png")] == 2
    assert counts[("train", "format", "unknown")] == 1
    assert counts[("all", "format", "jpeg")] == 72
    assert counts[("train", "jpeg_subsampling", "4:4:4")] == 50
    assert counts[("test", "jpeg_subsampling", "4:2:0")] == 21
    assert counts[("test", "jpeg_subsampling", "4:1:1")] == 1
    assert counts[("test", "jpeg_progressive", "True")] == 1
    assert counts[("test", "jpeg_progressive", "False")] == 21
    assert counts[("train", "mode", "RGB")] == 52  # the unreadable file has no mode
    assert {r["split"] for r in rows} == {"train", "test", "all"}
    # Each split's format counts cover all of its files.
    for split, total in (("train", 53), ("test", 22), ("all", 75)):
        assert sum(c for (s, m, _), c in counts.items() if s == split and m == "format") == total
    # Qualities are listed in numeric, not text, order.
    test_q = [r["value"] for r in rows if r["split"] == "test" and r["measure"] == "jpeg_quality"]
    assert test_q == ["5", "75"]


def test_bits_per_pixel_csv(written: dict[str, Path]) -> None:
    rows = {r["split"]: r for r in read_csv(written["bits_per_pixel.csv"])}
    assert list(rows) == ["train", "test", "all"]
    assert [int(rows[s]["count"]) for s in rows] == [52, 22, 74]
    train_bpp = 8 * 40_000 / (640 * 480)
    assert float(rows["train"]["median"]) == pytest.approx(train_bpp)
    assert float(rows["train"]["p10"]) == pytest.approx(train_bpp)
    assert float(rows["test"]["p90"]) == pytest.approx(8 * 20_000 / (500 * 375))
    assert float(rows["train"]["p90"]) >= float(rows["train"]["median"])


def test_pngs_open(written: dict[str, Path]) -> None:
    for name in ("histograms.png", "size_heatmap.png", "projection.png"):
        with Image.open(written[name]) as image:
            image.verify()
            assert image.format == "PNG"
            assert min(image.size) > 300


def test_summarize() -> None:
    numbers = summarize(dataset())
    expected = {
        "train/files": 53,
        "train/unreadable": 1,
        "train/anomalies": 3,
        "train/format_mismatch": 1,
        "train/jpeg_share": 50 / 53,
        "train/median_quality": 96,
        "test/files": 22,
        "test/unreadable": 0,
        "test/anomalies": 2,
        "test/format_mismatch": 0,
        "test/jpeg_share": 1.0,
        "test/median_quality": 75,
        "all/files": 75,
        "all/unreadable": 1,
        "all/anomalies": 5,
        "all/format_mismatch": 1,
        "all/jpeg_share": 72 / 75,
        "all/median_quality": 96,
    }
    assert numbers == pytest.approx(expected)
    assert all(isinstance(v, float) for v in numbers.values())


def test_summarize_without_jpegs_or_files() -> None:
    numbers = summarize([png("train", "a.png", 64, 64)])
    assert numbers["train/jpeg_share"] == 0.0
    assert math.isnan(numbers["train/median_quality"])
    assert numbers["test/files"] == 0.0
    assert math.isnan(numbers["test/jpeg_share"])
    empty = summarize([])
    assert set(empty) == set(numbers)
    assert empty["all/files"] == 0.0 and math.isnan(empty["all/median_quality"])


DEGENERATE = {
    "empty": [],
    "all_unreadable": [unreadable("train", "a.jpg"), unreadable("test", "b.jpg")],
    "one_file": [jpeg("train", "a.jpg", 90, "4:2:0")],
    "no_jpegs": [png("train", f"{i}.png", 64 + i, 48) for i in range(5)]
    + [png("test", "t.png", 64, 64)],
    "mixed_formats": [
        jpeg("train", "a.jpg", 90, "4:2:0"),
        png("train", "b.png", 100, 100),
        FileAudit("test", "c.webp", "webp", "webp", False, 5000, 300, 200, "RGB", 3, 0.67),
        jpeg("test", "d.jpg", 50, "grey", 100, 100, 900),
        jpeg("test", "e.jpg", 85, "2x3", 4000, 3000, 3_000_000),
    ],
    "same_size_one_split": [jpeg("test", f"{i}.jpg", 80, "4:2:0") for i in range(4)],
}


@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_inputs_write_everything(name: str, tmp_path: Path) -> None:
    records = DEGENERATE[name]
    paths = write_audit_report(records, tmp_path / "nested" / "out")
    assert set(paths) == set(OUTPUTS)
    assert plt.get_fignums() == []
    assert len(read_csv(paths["files.csv"])) == len(records)
    for image_name in ("histograms.png", "size_heatmap.png", "projection.png"):
        with Image.open(paths[image_name]) as image:
            image.verify()
    summary = summarize(records)
    assert summary["all/files"] == len(records)


def test_settings_features_keep_non_jpegs_at_quality_zero() -> None:
    records = dataset()
    used, features = settings_features(records)
    assert len(used) == 74  # the unreadable file is left out
    by_path = dict(zip((r.path for r in used), features, strict=True))
    np.testing.assert_allclose(by_path["train/b/misnamed.jpg"], [-1, 8, 8, 0])
    np.testing.assert_allclose(by_path["train/a/0.jpg"][[0, 3]], [0, 96])
    np.testing.assert_allclose(by_path["test/b/q5.jpg"][[0, 3]], [4, 5])  # 4:1:1 -> code 4
    z = standardize(features)
    assert np.allclose(z.mean(axis=0), 0) and np.isfinite(z).all()
    assert np.allclose(standardize(np.ones((3, 4))), 0)  # constant columns, no NaN


def test_pca_finds_the_dominant_direction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` raises ImportError
    t = np.linspace(-1, 1, 20)
    z = np.column_stack([t, 2 * t, np.zeros_like(t), 0.01 * np.cos(7 * t)])
    coords, method, labels = project(z)
    assert method == "PCA" and labels[0].startswith("PC 1")
    assert coords.shape == (20, 2)
    coords_pca, explained = pca_2d(z)
    assert explained[0] > 0.99
    np.testing.assert_allclose(np.abs(coords_pca[:, 0]), np.abs(t) * math.sqrt(5), atol=1e-2)


def test_umap_used_when_importable_and_pca_on_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeUMAP:
        def __init__(self, **kwargs: object) -> None:
            self.kwargs = kwargs

        def fit_transform(self, z: np.ndarray) -> np.ndarray:
            return z[:, :2] * 10

    fake = types.ModuleType("umap")
    fake.UMAP = FakeUMAP
    monkeypatch.setitem(sys.modules, "umap", fake)
    z = np.arange(12, dtype=float).reshape(4, 3)
    coords, method, _ = project(z)
    assert method == "UMAP"
    np.testing.assert_allclose(coords, z[:, :2] * 10)

    def broken(self: FakeUMAP, z: np.ndarray) -> np.ndarray:
        raise ValueError("too few points")

    monkeypatch.setattr(FakeUMAP, "fit_transform", broken)
    assert project(z)[1] == "PCA"


def test_failed_drawing_still_closes_the_figure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(histograms, "_plot_quality", explode)
    with pytest.raises(RuntimeError):
        histograms.plot_histograms(dataset(), tmp_path / "h.png")
    assert plt.get_fignums() == []
    assert list(tmp_path.iterdir()) == []
