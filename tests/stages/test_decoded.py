"""The decode cache (train.decode_cache): planned for RGB trainings only, the same pixels as a
fresh decode, bit-identical trained weights, and no training key changed."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sweep.config.build import build_sweep
from sweep.data.files import LabelledFile
from sweep.engine.execute import execute
from sweep.errors import OptionError
from sweep.inputs.files import DecodedImageDataset, ImageFileDataset
from sweep.models.trained import WEIGHTS_FILE
from sweep.session.planning import plan_sweep, stage_context
from sweep.stages import decoded
from sweep.stages.decoded import DecodedStage, decoded_files, write_cache
from sweep.stages.encode import EncodeStage, encoded_files
from sweep.store import ArtifactStore
from tests.conftest import FAST_SWEEP, FAST_TRAINING, compose_config

MIXED_GRID = ("grid.train=[original,4,mixed]",)


def unchanged(image: torch.Tensor) -> torch.Tensor:
    """The transform that leaves a sample's (3, H, W) uint8 pixels as read (it pickles)."""
    return image


def imagefolder_sweep(root: Path, results: Path, *overrides: str, fast=FAST_SWEEP):
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={root}",
        f"results_dir={results}",
        "cluster=inline",
        "cluster.torch_threads=1",
        "tracking=none",
        *fast,
        *overrides,
    )
    return build_sweep(cfg, check_data=False)


def keys_by_kind(plan) -> dict[str, dict]:
    return {kind: {i: s.key for i, s in stages.items()} for kind, stages in plan.stages.items()}


def train_models(sweep):
    """Runs the plan's trainings (and the encodes and caches they read); returns the plan."""
    plan = plan_sweep(sweep)
    execute(
        plan.narrowed_to(plan.replicate_trains.values()),
        stage_context(sweep, plan),
        sweep.cluster,
        False,
    )
    return plan


def test_the_cache_changes_no_key_of_any_other_stage(imagefolder, tmp_path):
    plain = plan_sweep(imagefolder_sweep(imagefolder, tmp_path, *MIXED_GRID))
    cached = plan_sweep(
        imagefolder_sweep(imagefolder, tmp_path, *MIXED_GRID, "train.decode_cache=true")
    )
    assert plain.of_kind(decoded.NAME) == {}
    caches = cached.of_kind(decoded.NAME)
    # One cache per train-split encode, keyed by the encode and the decoders.
    assert sorted(caches) == ["4", "original"]
    assert {c.encode.key for c in caches.values()} == {
        e.key for (split, _), e in cached.encodes.items() if split == "train"
    }
    assert len({c.key for c in caches.values()}) == 2
    others = keys_by_kind(cached) | {decoded.NAME: {}}
    assert others == keys_by_kind(plain)
    # Each training reads its setting's cache; the mix reads one per setting it draws from.
    for (setting, _), stage in cached.replicate_trains.items():
        wanted = ["original", "4"] if setting == "mixed" else [setting]
        assert [c.setting for c in stage.decoded] == wanted
        assert set(stage.decoded) <= set(stage.upstream())


# 2 loader processes: each maps the cache itself.
@pytest.mark.parametrize("workers", [0, 2])
def test_cached_training_reads_the_cache_and_trains_the_same_weights(
    imagefolder, tmp_path, monkeypatch, workers
):
    options = (f"train.loader_workers={workers}", *MIXED_GRID)  # the mix reads 2 caches
    plain = train_models(imagefolder_sweep(imagefolder, tmp_path / "plain", *options))
    plain_store = ArtifactStore(tmp_path / "plain" / "store")
    sweep = imagefolder_sweep(imagefolder, tmp_path / "cached", *options, "train.decode_cache=true")

    def refuse(self, index):
        raise AssertionError("a training with a decode cache decoded a file")

    monkeypatch.setattr(ImageFileDataset, "__getitem__", refuse)
    cached = train_models(sweep)
    monkeypatch.undo()
    assert sweep.store.root != plain_store.root
    assert {s: t.key for s, t in cached.trains.items()} == {
        s: t.key for s, t in plain.trains.items()
    }
    for setting, stage in cached.trains.items():
        assert sweep.store.read_json("train", stage.key, "summary.json")["decode_cache"]
        assert len(stage.decoded) == (2 if setting == "mixed" else 1)
        ours = torch.load(sweep.store.path("train", stage.key) / WEIGHTS_FILE, weights_only=True)
        theirs = torch.load(plain_store.path("train", stage.key) / WEIGHTS_FILE, weights_only=True)
        assert ours.keys() == theirs.keys()
        for name, tensor in ours.items():
            assert torch.equal(tensor, theirs[name]), (setting, name)

    # The cache of every train setting holds exactly what a fresh decode of its files gives.
    for cache in cached.of_kind(decoded.NAME).values():
        files = encoded_files(sweep.store, cache.encode)
        summary = sweep.store.read_json(decoded.NAME, cache.key, "summary.json")
        assert summary["images"] == len(files) == 18
        from_cache = DecodedImageDataset(decoded_files(sweep.store, cache, files), unchanged)
        fresh = ImageFileDataset(files, unchanged)
        for index in range(len(files)):
            (pixels, label), (expected, target) = from_cache[index], fresh[index]
            assert pixels.dtype == torch.uint8 and pixels.shape == expected.shape
            assert torch.equal(pixels, expected) and label == target


def test_no_cache_is_made_for_trainings_already_finished(imagefolder, tmp_path):
    train_models(imagefolder_sweep(imagefolder, tmp_path))
    sweep = imagefolder_sweep(imagefolder, tmp_path, "train.decode_cache=true")
    plan = train_models(sweep)  # the same training keys: every training is finished
    caches = plan.of_kind(decoded.NAME)
    assert {c.trainings for c in caches.values()} == {(t.key,) for t in plan.trains.values()}
    assert not any(sweep.store.is_done(decoded.NAME, c.key) for c in caches.values())
    # A new seed trains, so its setting's cache is made.
    seeds = imagefolder_sweep(imagefolder, tmp_path, "train.decode_cache=true", "seeds=[0,1]")
    plan = train_models(seeds)
    assert all(sweep.store.is_done(decoded.NAME, c.key) for c in caches.values())
    assert all(sweep.store.is_done("train", t.key) for t in plan.replicate_trains.values())


def write_image(path: Path, shape: tuple[int, ...], seed: int) -> LabelledFile:
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return LabelledFile(str(path), seed)


@pytest.mark.parametrize("part_bytes", [256 * 2**20, 2500], ids=["one part", "three parts"])
def test_images_of_different_sizes_and_modes_read_back_as_decoded(
    tmp_path, monkeypatch, part_bytes
):
    monkeypatch.setattr(decoded, "PART_BYTES", part_bytes)
    files = [
        write_image(tmp_path / "wide.png", (20, 36, 3), 0),
        write_image(tmp_path / "grey.png", (17, 9), 1),  # one channel: repeated to RGB
        write_image(tmp_path / "tall.jpg", (40, 24, 3), 2),
    ]
    store = ArtifactStore(tmp_path / "store")
    stage = DecodedStage("cache", EncodeStage("encode", "train", "original", ()))
    with store.writing(decoded.NAME, stage.key) as out:
        summary = write_cache(files, out)
    parts = 1 if part_bytes > 10**6 else 3  # 2160, 459 and 2880 bytes: no two fit in 2500
    assert summary == {"images": 3, "bytes": (20 * 36 + 17 * 9 + 40 * 24) * 3, "parts": parts}
    part_files = sorted(store.path(decoded.NAME, stage.key).glob("pixels-*.u8"))
    assert len(part_files) == parts
    assert sum(p.stat().st_size for p in part_files) == summary["bytes"]
    cached = decoded_files(store, stage, files)
    dataset = DecodedImageDataset(cached, unchanged)
    fresh = ImageFileDataset(files, unchanged)
    for index in range(len(files)):
        assert torch.equal(dataset[index][0], fresh[index][0])
    # A worker gets the dataset without the map (it maps the file itself).
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy.mapped == {} and torch.equal(copy[1][0], fresh[1][0])
    # A subset (a budget training's) keeps each file's place in the cache.
    picked = DecodedImageDataset(cached.subset([2, 0]), unchanged)
    assert torch.equal(picked[0][0], fresh[2][0]) and torch.equal(picked[1][0], fresh[0][0])
    # An index that does not match its encode's files is refused, naming the folder.
    with pytest.raises(ValueError, match="holds 3 images"):
        decoded_files(store, stage, files[:2])


def test_dct_input_plans_no_cache_and_says_so(imagefolder, tmp_path, caplog):
    sweep = imagefolder_sweep(
        imagefolder,
        tmp_path,
        "model=dct_resnet50_tiny",
        "model.image_size=48",
        "train.decode_cache=true",
        fast=FAST_TRAINING,
    )
    with caplog.at_level(logging.INFO, logger=decoded.__name__):
        plan = plan_sweep(sweep)
    assert plan.of_kind(decoded.NAME) == {}
    assert all(stage.decoded == () for stage in plan.replicate_trains.values())
    messages = [r.getMessage() for r in caplog.records if "decode_cache" in r.getMessage()]
    assert len(messages) == 1 and sweep.model.name in messages[0], messages


@pytest.mark.parametrize("value", ["maybe", "1"])
def test_a_bad_value_names_the_option(imagefolder, tmp_path, value):
    with pytest.raises(OptionError, match="train.decode_cache: must be true") as error:
        imagefolder_sweep(imagefolder, tmp_path, f"train.decode_cache={value}")
    assert error.value.option == "train.decode_cache"
