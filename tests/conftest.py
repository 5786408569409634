"""Shared fixtures: tiny datasets in the real layouts, composed configs, a fast sweep config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
CLASSES = ("cat", "dog", "fish")


def compose_config(*overrides: str):
    """The config `python -m sweep <overrides>` would run with."""
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        return compose("config", overrides=list(overrides))


def record_calls(monkeypatch, kind: str, role: str, record) -> None:
    """Calls record(stage) whenever a worker ("run" or "shard") of that stage kind runs (in
    this process: cluster=inline), by replacing the kind's entry in the table. For a kind
    that runs its stages in groups, "run" also records each stage its group worker runs."""
    from sweep.stages.table import STAGE_KINDS

    entry = STAGE_KINDS[kind]
    worker = getattr(entry, role)

    def recorded(context, stage, *args):
        record(stage)
        return worker(context, stage, *args)

    recorded.__name__ = worker.__name__
    replaced = {role: recorded}
    if role == "run" and entry.grouped:
        group_worker = entry.run_group

        def recorded_group(context, stages, *args):
            for stage in stages:
                record(stage)
            return group_worker(context, stages, *args)

        recorded_group.__name__ = group_worker.__name__
        replaced["run_group"] = recorded_group
    monkeypatch.setitem(STAGE_KINDS, kind, dataclasses.replace(entry, **replaced))


def write_jpeg(path: Path, label: int, index: int, size: int = 48) -> None:
    """A small JPEG whose dominant colour encodes its class, with noise so it compresses."""
    rng = np.random.default_rng(1000 * label + index)
    pixels = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    pixels[..., label % 3] += 150
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)


@pytest.fixture
def imagefolder(tmp_path: Path) -> Path:
    """<root>/train/<class>/*.jpg (6 per class) and <root>/test/<class>/*.jpg (3 per class)."""
    root = tmp_path / "imagefolder"
    for label, name in enumerate(CLASSES):
        for index in range(6):
            write_jpeg(root / "train" / name / f"{index}.jpg", label, index)
        for index in range(3):
            write_jpeg(root / "test" / name / f"{index}.jpg", label, 100 + index)
    return root


@pytest.fixture
def food101(tmp_path: Path) -> Path:
    """The Food-101 layout: images/<class>/<id>.jpg, meta/classes.txt, train.txt, test.txt."""
    root = tmp_path / "food-101"
    meta = root / "meta"
    meta.mkdir(parents=True)
    lines = {"train": [], "test": []}
    for label, name in enumerate(CLASSES):
        for index in range(5):
            split = "train" if index < 3 else "test"
            image_id = f"{1000 + index}"
            write_jpeg(root / "images" / name / f"{image_id}.jpg", label, index)
            lines[split].append(f"{name}/{image_id}")
    (meta / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    for split, entries in lines.items():
        (meta / f"{split}.txt").write_text("\n".join(entries) + "\n")
    return root


# A sweep that finishes in seconds on one core: tiny ViT, one epoch, a 2 x 2 grid.
SMALLER_VIT = (
    "model=vit_tiny",
    "model.image_size=48",
    "model.architecture.hidden_size=32",
    "model.architecture.num_hidden_layers=1",
    "model.architecture.intermediate_size=64",
)
FAST_TRAINING = (
    "train.epochs=1",
    "train.batch_size=8",
    "grid.train=[original,4]",
    "grid.test=[original,4]",
    "progress=false",
)
FAST_SWEEP = SMALLER_VIT + FAST_TRAINING


def run_sweep(sweep, on_plan=None) -> Path:
    """The grid of a validated sweep run to its end, as `python -m sweep` runs it; returns its
    report folder."""
    from sweep.config.build import rebuild_sweep
    from sweep.session.experiment import Session
    from sweep.session.grid import run_grid

    return run_grid(Session(sweep, rebuild_sweep), on_plan)


def launch(*overrides: str):
    """The sweep and experiment `python -m sweep <overrides>` would run (`Launch`)."""
    from sweep.config.build import build_launch

    return build_launch(compose_config(*overrides))


@pytest.fixture
def s3_server(monkeypatch):
    """An S3 server on loopback with a fresh bucket (tests/s3_server.py), stopped after."""
    from tests.s3_server import start_s3_server

    server = start_s3_server(monkeypatch)
    yield server
    server.stop()
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
