"""Whole segmentation sweeps on tiny folders: Cityscapes, VOC and the built-in demo."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from sweep.config.build import build_sweep
from sweep.data.files import LabelledFile
from sweep.data.formats import sniff_format
from sweep.errors import OptionError
from sweep.store import ArtifactStore
from sweep.store.locations import member, read_location
from sweep.tasks.segmentation import SegmentationMetrics
from sweep.tasks.segmentation_samples import load_labelled_image
from tests.conftest import compose_config, record_calls, run_sweep
from tests.data.test_cityscapes import write_cityscapes
from tests.data.test_voc_seg import write_voc_seg

# A SegFormer small enough for seconds of CPU, one epoch, a 2 x 2 grid, in this process.
FAST_SEGMENTATION = (
    "model=segformer_tiny",
    "model.architecture.hidden_sizes=[8,16,16,16]",
    "model.architecture.num_attention_heads=[1,1,1,1]",
    "model.architecture.decoder_hidden_size=16",
    "task.kind.crop_size=32",
    "train.epochs=1",
    "train.batch_size=2",
    "grid.train=[original,4]",
    "grid.test=[original,4]",
    "cluster=inline",
    "cluster.torch_threads=1",
    "tracking=none",
    "progress=false",
)


def read_csv(path: Path) -> list[dict]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


def digests(root: Path, pattern: str) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.glob(pattern))
    }


def encode_records(results: Path) -> list[dict]:
    records = []
    for stage in (results / "store" / "encode").iterdir():
        summary = json.loads((stage / "summary.json").read_text())
        for line in (stage / "records.jsonl").read_text().splitlines():
            records.append({**json.loads(line), "setting": summary["setting"]})
    return records


def check_results(report: Path, task: str) -> list[dict]:
    rows = read_csv(report / "results.csv")
    cells = [("original", "original"), ("original", "4"), ("4", "original"), ("4", "4")]
    for metric in ("miou", "macc"):
        found = [r for r in rows if r["metric"] == metric]
        assert sorted((r["train_setting"], r["test_setting"]) for r in found) == sorted(cells)
        assert all(0 <= float(r["value"]) <= 1 and r["task"] == task for r in found)
        # Resampled from each image's confusion matrix: every value inside its interval.
        assert all(float(r["ci_low"]) <= float(r["value"]) <= float(r["ci_high"]) for r in found)
        # One heatmap per axis kind (codec settings, DCR) for either metric.
        heatmaps = list(report.glob(f"heatmap_{metric}_*.png"))
        assert len(heatmaps) >= 2 and all(path.stat().st_size > 0 for path in heatmaps)
    return rows


def test_cityscapes_sweep_encodes_images_and_keeps_masks_byte_identical(tmp_path):
    root = write_cityscapes(tmp_path / "cityscapes", size=(64, 32))
    masks_before = digests(root, "gtFine/*/*/*")
    sweep = build_sweep(
        compose_config(
            "task=cityscapes",
            f"task.root={root}",
            f"results_dir={tmp_path / 'results'}",
            *FAST_SEGMENTATION,
            "task.kind.window=32",
            "task.kind.stride=16",
        )
    )
    check_results(run_sweep(sweep), "cityscapes")
    assert digests(root, "gtFine/*/*/*") == masks_before
    records = encode_records(tmp_path / "results")
    assert len(records) == 2 * (4 + 2)  # two settings of 4 train and 2 test images
    for record in records:
        mask = root / record["mask"]  # relative to the dataset root, wherever it lies
        source_mask = root / record["source"].replace("leftImg8bit", "gtFine", 1).replace(
            "_leftImg8bit.png", "_gtFine_labelIds.png"
        )
        assert mask == source_mask and mask.read_bytes() == source_mask.read_bytes()
        if record["setting"] == "4":  # the camera image is re-encoded, the mask never
            store = ArtifactStore(tmp_path / "results" / "store")
            pack = store.location("encode-shards", record["shard"], "pack.bin")
            encoded = read_location(member(pack, record["offset"], record["size"]))
            assert sniff_format(encoded[:32]) == "jxl"
            assert encoded != (root / record["source"]).read_bytes()


def test_voc_seg_sweep_reads_palette_masks(tmp_path):
    root = write_voc_seg(tmp_path / "VOC2012")
    masks_before = digests(root, "SegmentationClass/*.png")
    sweep = build_sweep(
        compose_config(
            "task=voc_seg",
            f"task.root={root}",
            f"results_dir={tmp_path / 'results'}",
            *FAST_SEGMENTATION,
            # The images are 40x24: rescaled to a short side of 32 for SegFormer, evaluated
            # at their own size.
            "task.kind.resize_short_side=32",
        )
    )
    check_results(run_sweep(sweep), "voc_seg")
    assert digests(root, "SegmentationClass/*.png") == masks_before
    for record in encode_records(tmp_path / "results"):
        assert record["mask"].startswith("SegmentationClass/")
        assert (root / record["mask"]).is_file()


def test_demo_seg_sweep_writes_miou_and_macc_rows(tmp_path):
    sweep = build_sweep(
        compose_config(
            "task=demo_seg",
            "task.reader.train_images=8",
            "task.reader.test_images=4",
            "task.reader.image_size=64",
            f"results_dir={tmp_path}",
            *FAST_SEGMENTATION,
            "task.kind.crop_size=64",
        )
    )
    report = run_sweep(sweep)
    rows = check_results(report, "demo_seg")
    assert report.name.startswith("demo_seg_segformer_tiny_jxl_")
    original = {
        r["metric"]: r for r in rows if r["train_setting"] == r["test_setting"] == "original"
    }
    assert original["miou"]["relative"] == original["macc"]["relative"] == "1.0"
    assert (tmp_path / "data" / "demo_seg").is_dir()


def test_changing_the_evaluation_mode_re_evaluates_without_retraining(tmp_path, monkeypatch):
    demo = (
        "task=demo_seg",
        "task.reader.train_images=6",
        "task.reader.test_images=3",
        "task.reader.image_size=64",
        f"results_dir={tmp_path}",
        *FAST_SEGMENTATION,
        "task.kind.crop_size=64",
        "distortion.enabled=false",
    )
    first = run_sweep(build_sweep(compose_config(*demo)))
    ran: dict[str, list] = {"train": [], "evaluate": [], "encode": []}
    for kind in ran:
        record_calls(monkeypatch, kind, "run", lambda stage: ran[stage.kind].append(stage))
    sliding = ("task.kind.eval_mode=slide", "task.kind.window=48", "task.kind.stride=16")
    second = run_sweep(build_sweep(compose_config(*demo, *sliding)))
    assert ran["train"] == [] and ran["encode"] == []
    assert sorted(stage.cell for stage in ran["evaluate"]) == sorted(
        [("original", "original"), ("original", "4"), ("4", "original"), ("4", "4")]
    )
    assert second != first  # another sweep, with its own report
    assert read_csv(second / "results.csv") != [] and read_csv(first / "results.csv") != []


def test_segmentation_tasks_compose_with_segformer(tmp_path):
    for task in ("cityscapes", "voc_seg", "demo_seg"):
        for model in ("segformer", "segformer_tiny"):
            cfg = compose_config(
                f"task={task}", f"model={model}", f"task.root={tmp_path}", f"results_dir={tmp_path}"
            )
            sweep = build_sweep(cfg, check_data=False)
            assert sweep.task.identity()["kind"] == sweep.model.task_kind == "segmentation"
            assert sweep.task.metric_names == ("miou", "macc")
    demo = build_sweep(
        compose_config("task=demo_seg", "model=segformer_tiny", f"results_dir={tmp_path}"),
        check_data=False,
    )
    assert demo.train_settings == ["original", "1", "4", "15"]
    # Each segmentation task picks a segmentation model by default.
    defaults = {"cityscapes": "segformer", "voc_seg": "segformer", "demo_seg": "segformer_tiny"}
    for task, model in defaults.items():
        assert compose_config(f"task={task}", f"task.root={tmp_path}").model.name == model
    assert compose_config("model=segformer").train.lr == pytest.approx(6e-5)


def test_segformer_not_available_offline_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    root = write_cityscapes(tmp_path / "cityscapes")
    cfg = compose_config(
        "task=cityscapes", "model=segformer", f"task.root={root}", f"results_dir={tmp_path}"
    )
    with pytest.raises(OptionError, match="hf download nvidia/mit-b5") as error:
        build_sweep(cfg)
    assert error.value.option == "model"


def test_a_classification_model_is_refused_for_a_segmentation_task(tmp_path):
    cfg = compose_config("task=demo_seg", "model=vit_tiny", f"results_dir={tmp_path}")
    with pytest.raises(OptionError, match="choose a segmentation model"):
        build_sweep(cfg, check_data=False)


@pytest.mark.slow
def test_segformer_tiny_learns_the_demo_far_beyond_the_majority_class(tmp_path):
    """The demo's model and recipe on a smaller demo: well above predicting background."""
    cfg = compose_config(
        "task=demo_seg",
        "model=segformer_tiny",
        "task.reader.train_images=120",
        "task.reader.test_images=40",
        "train.epochs=30",
        f"results_dir={tmp_path}",
    )
    sweep = build_sweep(cfg)
    reader = sweep.reader

    def files(split: str) -> list[LabelledFile]:
        return [
            LabelledFile(str(reader.root / i.relpath), i.target, str(reader.root / i.mask))
            for i in reader.items(split)
        ]

    classes = len(reader.class_names())
    majority = SegmentationMetrics(classes, torch.device("cpu"))
    for file in files("test"):
        _, mask = load_labelled_image(file)
        majority.update(torch.zeros_like(mask), mask)  # background everywhere
    baseline = majority.compute()["miou"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        task = instantiate(cfg.task.kind)
        task.train(sweep.model, files("train"), classes, sweep.options, 0, tmp_path)
        metrics = task.evaluate(sweep.model, tmp_path, files("test"), classes, sweep.options)
    finally:
        torch.set_num_threads(threads)
    assert 0.1 < baseline < 0.25
    assert metrics["miou"] > 2 * baseline and metrics["macc"] > 0.5
