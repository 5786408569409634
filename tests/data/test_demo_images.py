"""Tests for the built-in demo dataset (sweep.data.demo_images)."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from sweep.data.demo_images import DEMO_CLASSES, generate_demo_split, render_demo_image

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def _files(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(root.rglob("*.jpg"))


def test_class_names_are_usable_folder_names() -> None:
    assert len(DEMO_CLASSES) == len(set(DEMO_CLASSES)) >= 4
    for name in DEMO_CLASSES:
        assert name == name.lower() and " " not in name and "/" not in name


@pytest.mark.parametrize("size", [64, 96])
def test_render_returns_rgb_uint8_of_requested_size(size: int) -> None:
    rng = np.random.default_rng(0)
    for class_index in range(len(DEMO_CLASSES)):
        image = render_demo_image(class_index, rng, size=size)
        assert image.shape == (size, size, 3)
        assert image.dtype == np.uint8


def test_render_is_deterministic_in_the_generator() -> None:
    first = render_demo_image(1, np.random.default_rng(7))
    again = render_demo_image(1, np.random.default_rng(7))
    other = render_demo_image(1, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_render_has_photographic_content() -> None:
    rng = np.random.default_rng(3)
    for class_index in range(len(DEMO_CLASSES)):
        image = render_demo_image(class_index, rng)
        # A flat or synthetic-only image would have few colours and little spread.
        assert image.std() > 15
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 200


def test_generate_writes_expected_layout(tmp_path: pathlib.Path) -> None:
    count = generate_demo_split(tmp_path, "train", per_class=2, size=64)
    assert count == 2 * len(DEMO_CLASSES) == len(_files(tmp_path))
    for name in DEMO_CLASSES:
        for i in range(2):
            path = tmp_path / "train" / name / f"train_{name}_{i:04d}.jpg"
            with Image.open(path) as image:
                assert image.format == "JPEG"
                assert image.mode == "RGB" and image.size == (64, 64)
                # 4:4:4, i.e. no chroma subsampling, so colour detail is not lost up front.
                assert JpegImagePlugin.get_sampling(image) == 0


def test_generate_is_byte_identical_for_the_same_seed(tmp_path: pathlib.Path) -> None:
    for name, seed in [("a", 0), ("b", 0), ("c", 1)]:
        generate_demo_split(tmp_path / name, "test", per_class=2, seed=seed)
    read = {name: [p.read_bytes() for p in _files(tmp_path / name)] for name in "abc"}
    assert read["a"] == read["b"]
    assert all(x != y for x, y in zip(read["a"], read["c"], strict=True))


def test_train_and_test_streams_differ(tmp_path: pathlib.Path) -> None:
    generate_demo_split(tmp_path, "train", per_class=2)
    generate_demo_split(tmp_path, "test", per_class=2)
    train = [p.read_bytes() for p in _files(tmp_path / "train")]
    test = [p.read_bytes() for p in _files(tmp_path / "test")]
    assert not set(train) & set(test)


def test_split_stream_does_not_depend_on_python_hash_seed(tmp_path: pathlib.Path) -> None:
    generate_demo_split(tmp_path / "here", "train", per_class=1)
    code = (
        "import pathlib, sys; from sweep.data.demo_images import generate_demo_split; "
        "generate_demo_split(pathlib.Path(sys.argv[1]), 'train', per_class=1)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO_ROOT)}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "there")], check=True, env=env)
    here, there = _files(tmp_path / "here"), _files(tmp_path / "there")
    assert [p.read_bytes() for p in here] == [p.read_bytes() for p in there]


def _grain_retained(distance: float, seeds: range) -> float:
    """Fraction of the grain that survives a JPEG XL round trip, averaged over images.

    The smooth and grainy disks drawn from equal generator states share background, shape,
    colour and shading, and differ only by the grain, which is drawn last. Projecting the
    decoded difference onto the original difference measures how much grain is left.
    """
    imagecodecs = pytest.importorskip("imagecodecs")
    smooth, grainy = DEMO_CLASSES.index("disk_smooth"), DEMO_CLASSES.index("disk_grainy")
    ratios = []
    for seed in seeds:
        pair = [render_demo_image(c, np.random.default_rng(seed)) for c in (smooth, grainy)]
        grain = pair[1].astype(np.float64) - pair[0]
        decoded = [
            imagecodecs.jpegxl_decode(imagecodecs.jpegxl_encode(p, distance=distance, effort=7))
            for p in pair
        ]
        kept = decoded[1].astype(np.float64) - decoded[0]
        ratios.append((kept * grain).sum() / (grain * grain).sum())
    return float(np.mean(ratios))


def test_grain_survives_mild_but_not_heavy_jpegxl() -> None:
    assert np.abs(_grain_retained(0.0, range(1))) > 0  # the pair really differs
    assert _grain_retained(1.0, range(4)) > 0.7
    assert _grain_retained(15.0, range(4)) < 0.2
