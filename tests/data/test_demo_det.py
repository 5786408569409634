"""The built-in detection demo: deterministic VOC-layout data with tight boxes, generated once."""

from __future__ import annotations

import numpy as np

from sweep.data.demo_det import DemoDetReader
from sweep.data.demo_det_images import (
    DEMO_DET_CLASSES,
    generate_demo_det_split,
    render_demo_det_image,
)
from sweep.data.voc import VocReader


def test_render_is_deterministic_and_boxes_are_tight_inside_the_image():
    counts = set()
    for seed in range(40):
        pixels, objects = render_demo_det_image(np.random.default_rng(seed), size=96)
        again, same = render_demo_det_image(np.random.default_rng(seed), size=96)
        np.testing.assert_array_equal(pixels, again)
        assert same == objects
        assert pixels.shape == (96, 96, 3) and pixels.dtype == np.uint8
        counts.add(len(objects))
        for found in objects:
            x1, y1, x2, y2 = found["box"]
            assert found["name"] in DEMO_DET_CLASSES
            assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 96
            assert 6 <= x2 - x1 <= 0.45 * 96  # 7-20% radius objects
    assert {1, 2, 3} <= counts


def test_images_without_objects_occur():
    empty = sum(not render_demo_det_image(np.random.default_rng(s), size=64)[1] for s in range(200))
    assert 0 < empty < 40


def test_objects_do_not_overlap():
    for seed in range(30):
        _, objects = render_demo_det_image(np.random.default_rng(seed), size=96)
        boxes = [o["box"] for o in objects]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]


def test_generated_split_is_byte_identical_and_read_back_exactly(tmp_path):
    for name in ("a", "b"):
        generate_demo_det_split(tmp_path / name, "train", images=6, size=64, seed=3)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    for relative in files_a:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()
    reader = VocReader(tmp_path / "a", list(DEMO_DET_CLASSES), "train", "train")
    items = reader.read_split("train")
    assert len(items) == 6
    for item in items:
        assert len(item.target["boxes"]) == len(item.target["labels"])
        assert not any(item.target["difficult"])


def test_reader_boxes_equal_the_rendered_boxes(tmp_path, monkeypatch):
    rendered = []
    import sweep.data.demo_det_images as generator

    original = generator.render_demo_det_image

    def remember(rng, size):
        result = original(rng, size)
        rendered.append(result[1])
        return result

    monkeypatch.setattr(generator, "render_demo_det_image", remember)
    generate_demo_det_split(tmp_path, "val", images=5, size=64)
    items = VocReader(tmp_path, list(DEMO_DET_CLASSES), "val", "val").read_split("test")
    for item, objects in zip(items, rendered, strict=True):
        assert item.target["boxes"] == [[float(v) for v in o["box"]] for o in objects]
        assert item.target["labels"] == [DEMO_DET_CLASSES.index(o["name"]) for o in objects]


def test_reader_generates_once_atomically_and_reads_voc(tmp_path):
    reader = DemoDetReader(tmp_path, train_images=5, test_images=3, image_size=64)
    reader.prepare()
    assert reader.class_names() == list(DEMO_DET_CLASSES)
    assert [len(reader.read_split(s)) for s in ("train", "test")] == [5, 3]
    assert (reader.root / "labels.txt").read_text().split() == list(DEMO_DET_CLASSES)
    assert [p.name for p in tmp_path.iterdir()] == [reader.root.name]  # no staging left
    done = (reader.root / "DONE").stat().st_mtime_ns
    DemoDetReader(tmp_path, train_images=5, test_images=3, image_size=64).prepare()
    assert (reader.root / "DONE").stat().st_mtime_ns == done
    other = DemoDetReader(tmp_path, train_images=6, test_images=3, image_size=64)
    assert other.root != reader.root
