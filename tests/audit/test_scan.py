"""Audit scan: true formats, header facts, anomalies, parallel = serial, and the CLI."""

from __future__ import annotations

import csv
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from sweep.audit.records import anomalies
from sweep.audit.scan import SMALL, audit_file, audit_files, sniff_format

REPO = Path(__file__).resolve().parents[2]


def photo(width: int = 64, height: int = 48) -> Image.Image:
    rng = np.random.default_rng(width * height)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    """train/: an ordinary JPEG, a PNG named .JPEG, a q5 4:2:0 JPEG, a 500x32 image;
    test/: an ordinary JPEG, an empty file and a truncated JPEG."""
    root = tmp_path / "odd"
    for folder in ("train/a", "test/a"):
        (root / folder).mkdir(parents=True)
    (root / "train/a/ok.jpg").write_bytes(jpeg_bytes(photo(), quality=96, subsampling=0))
    photo().save(root / "train/a/n01440764_2708.JPEG", "PNG")
    (root / "train/a/low.jpg").write_bytes(jpeg_bytes(photo(), quality=5, subsampling=2))
    (root / "train/a/strip.jpg").write_bytes(jpeg_bytes(photo(500, 32), quality=90))
    (root / "test/a/ok.jpg").write_bytes(jpeg_bytes(photo(), quality=75, subsampling=2))
    (root / "test/a/empty.jpg").write_bytes(b"")
    (root / "test/a/cut.jpg").write_bytes(jpeg_bytes(photo(), quality=75)[:90])
    return root


def test_sniff_formats():
    assert sniff_format(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff_format(b"\x89PNG\r\n\x1a\n....") == "png"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_format(b"\x00\x00\x00\x1cftypavif") == "avif"
    assert sniff_format(b"\xff\x0a\x00") == "jxl"
    assert sniff_format(b"hello world") == "unknown"


def test_header_facts_of_a_jpeg(odd_folder):
    record = audit_file(odd_folder, "train", "train/a/low.jpg")
    assert (record.format, record.width, record.height) == ("jpeg", 64, 48)
    assert record.jpeg_quality == 5 and record.jpeg_quality_exact
    assert record.jpeg_subsampling == "4:2:0" and record.jpeg_progressive is False
    assert record.mode == "RGB" and record.channels == 3
    assert record.bits_per_pixel == pytest.approx(8 * record.file_bytes / (64 * 48))
    assert len(record.jpeg_qtables.split(";")) == 2


def test_the_three_anomalies_of_the_issue(odd_folder):
    png = audit_file(odd_folder, "train", "train/a/n01440764_2708.JPEG")
    assert png.format == "png" and png.extension == "jpeg" and png.format_mismatch
    assert any("misnamed format" in reason for reason in anomalies(png))
    low = audit_file(odd_folder, "train", "train/a/low.jpg")
    assert any("quality 5 below 10" in reason for reason in anomalies(low))
    strip = audit_file(odd_folder, "train", "train/a/strip.jpg")
    assert any("aspect ratio 15.6:1" in reason for reason in anomalies(strip))
    assert not anomalies(audit_file(odd_folder, "train", "train/a/ok.jpg"))


def test_unreadable_files_are_recorded_not_fatal(odd_folder):
    empty = audit_file(odd_folder, "test", "test/a/empty.jpg")
    cut = audit_file(odd_folder, "test", "test/a/cut.jpg")
    missing = audit_file(odd_folder, "test", "test/a/nowhere.jpg")
    assert empty.error == "empty file"
    assert cut.error and cut.width is None
    assert missing.error.startswith("FileNotFoundError")
    assert all(anomalies(r)[0].startswith("unreadable") for r in (empty, cut, missing))


def test_parallel_audit_matches_serial(tmp_path):
    data = jpeg_bytes(photo(32, 32), quality=80)
    files = []
    for index in range(SMALL + 100):
        (tmp_path / f"{index}.jpg").write_bytes(data)
        files.append(("train", f"{index}.jpg"))
    assert audit_files(tmp_path, files, workers=2) == audit_files(tmp_path, files, workers=1)


def test_cli_audits_a_folder_and_logs_to_mlflow(odd_folder, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep.audit",
            "task=imagefolder",
            f"task.root={odd_folder}",
            f"results_dir={tmp_path / 'results'}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [report] = (tmp_path / "results" / "audits").iterdir()
    with (report / "anomalies.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    reasons = {(row["path"], row["reason"].split(":")[0]) for row in rows}
    assert ("train/a/n01440764_2708.JPEG", "misnamed format") in reasons
    assert ("train/a/low.jpg", "JPEG quality 5 below 10") in reasons
    assert any(path == "train/a/strip.jpg" and "aspect" in why for path, why in reasons)
    assert {path for path, why in reasons if why == "unreadable"} == {
        "test/a/empty.jpg",
        "test/a/cut.jpg",
    }
    for name in ("histograms.png", "size_heatmap.png", "projection.png", "files.csv"):
        assert (report / name).stat().st_size > 0
    client = MlflowClient(f"sqlite:///{tmp_path}/results/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["all/files"] == 7
    assert "anomalies.csv" in [a.path for a in client.list_artifacts(run.info.run_id)]


def test_cli_without_dataset_root_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sweep.audit", "task=food101", f"results_dir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "task.root" in result.stderr


def test_audit_recovers_every_libjpeg_quality_and_subsampling(tmp_path):
    """libjpeg through Pillow (4:4:4, 4:2:2, 4:2:0) and imagecodecs (4:4:0, 4:1:1), q 1-100."""
    import imagecodecs

    image = photo(32, 32)
    pixels = np.asarray(image)
    files, expected = [], {}
    for quality in range(1, 101):
        for pillow, name in ((0, "4:4:4"), (1, "4:2:2"), (2, "4:2:0")):
            data = jpeg_bytes(image, quality=quality, subsampling=pillow)
            files.append(("train", f"{quality}-{pillow}.jpg"))
            (tmp_path / files[-1][1]).write_bytes(data)
            expected[files[-1][1]] = (quality, name)
        for code, name in (("440", "4:4:0"), ("411", "4:1:1")):
            data = imagecodecs.jpeg8_encode(pixels, level=quality, subsampling=code)
            files.append(("train", f"{quality}-{code}.jpg"))
            (tmp_path / files[-1][1]).write_bytes(data)
            expected[files[-1][1]] = (quality, name)
    records = audit_files(tmp_path, files, workers=2)
    found = {r.path: (r.jpeg_quality, r.jpeg_subsampling) for r in records}
    assert found == expected
    assert all(r.jpeg_quality_exact for r in records)


def test_jpeg_xl_files_are_audited_not_unreadable(tmp_path):
    import imagecodecs

    pixels = np.asarray(photo(64, 48))
    (tmp_path / "a.jxl").write_bytes(imagecodecs.jpegxl_encode(pixels, distance=1.0))
    record = audit_file(tmp_path, "train", "a.jxl")
    assert record.error is None and record.format == "jxl" and not record.format_mismatch
    assert (record.width, record.height, record.channels) == (64, 48, 3)


def test_cli_unwritable_results_dir_exits_2(odd_folder, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sweep.audit",
            "task=imagefolder",
            f"task.root={odd_folder}",
            f"results_dir={blocker}/results",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "results_dir" in result.stderr
    assert "Traceback" not in result.stderr
