"""Encode stage: records per image, the original setting keeps source bytes, DCR arithmetic."""

from __future__ import annotations

import pytest

from sweep.codecs.jxl import JxlCodec
from sweep.data.imagefolder import ImageFolderReader
from sweep.plan import EncodeStage, shard_ranges
from sweep.stages import (
    ImageReadError,
    encode_shard,
    encoded_files,
    finalize_encode,
    summarize_records,
)
from sweep.store import ArtifactStore


def test_dcr_against_original_files_and_raw_pixels():
    stage = EncodeStage("k", "test", "4", ((0, 2),))
    records = [
        {"original_bytes": 1000, "encoded_bytes": 100, "raw_bytes": 30000},
        {"original_bytes": 3000, "encoded_bytes": 300, "raw_bytes": 10000},
    ]
    summary = summarize_records(stage, records)
    assert summary["dcr"] == pytest.approx(1 - 400 / 4000)  # 0.9
    assert summary["dcr_raw"] == pytest.approx(1 - 400 / 40000)  # 0.99
    assert summary["images"] == 2


def test_shard_ranges_cover_every_image_once():
    assert shard_ranges(10, 4) == ((0, 4), (4, 8), (8, 10))
    assert shard_ranges(3, 128) == ((0, 3),)


def encode_split(store, reader, setting: str, shard_size: int = 4) -> EncodeStage:
    items = reader.read_split("train")
    stage = EncodeStage(f"key-{setting}", "train", setting, shard_ranges(len(items), shard_size))
    codec = JxlCodec(distances=[4])
    for index, (start, stop) in enumerate(stage.shards):
        encode_shard(store, stage, index, reader.root, items[start:stop], codec)
    finalize_encode(store, stage)
    return stage


def test_original_keeps_the_source_files_and_bytes(imagefolder, tmp_path):
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    stage = encode_split(store, reader, "original")
    summary = store.read_json("encode", stage.key, "summary.json")
    assert summary["dcr"] == 0.0
    assert summary["raw_bytes"] == 18 * 48 * 48 * 3
    files = encoded_files(store, stage)
    sources = [str(imagefolder / item.relpath) for item in reader.read_split("train")]
    assert [f.path for f in files] == sources
    assert not list(store.path("encode-shards", stage.key).rglob("*.jxl"))


def test_lossy_setting_writes_jxl_files_with_their_sizes(imagefolder, tmp_path):
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    stage = encode_split(store, reader, "4")
    files = encoded_files(store, stage)
    assert len(files) == 18 and all(f.path.endswith(".jxl") for f in files)
    assert [f.target for f in files] == [item.target for item in reader.read_split("train")]
    summary = store.read_json("encode", stage.key, "summary.json")
    written = sum(len(open(f.path, "rb").read()) for f in files)
    assert summary["encoded_bytes"] == written
    assert 0 < summary["dcr"] < 1 and summary["dcr_raw"] > summary["dcr"]


def test_finished_shards_are_not_encoded_again(imagefolder, tmp_path):
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    stage = encode_split(store, reader, "4")
    items = reader.read_split("train")
    assert encode_shard(store, stage, 0, reader.root, items[:4], JxlCodec()) == 0


def test_resume_with_another_shard_size_encodes_every_image(imagefolder, tmp_path):
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    items = reader.read_split("train")
    codec = JxlCodec(distances=[4])
    small = EncodeStage("k", "train", "4", shard_ranges(len(items), 4))
    encode_shard(store, small, 0, reader.root, items[:4], codec)  # then killed
    large = EncodeStage("k", "train", "4", shard_ranges(len(items), 8))
    for index, (start, stop) in enumerate(large.shards):
        encode_shard(store, large, index, reader.root, items[start:stop], codec)
    finalize_encode(store, large)
    assert len(encoded_files(store, large)) == len(items) == 18


def test_unreadable_image_is_named_in_the_error(imagefolder, tmp_path):
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    items = reader.read_split("train")
    broken = imagefolder / items[2].relpath
    broken.write_bytes(broken.read_bytes()[:40])
    stage = EncodeStage("k", "train", "4", ((0, len(items)),))
    with pytest.raises(ImageReadError, match=str(broken)):
        encode_shard(store, stage, 0, reader.root, items, JxlCodec(distances=[4]))
    assert not store.path("encode-shards", "k").exists() or not any(
        store.path("encode-shards", "k").iterdir()
    )


def test_machine_io_error_during_validation_names_the_file(imagefolder, tmp_path, monkeypatch):
    import errno

    import sweep.stages as stages_module
    from sweep.plan import ValidateStage
    from sweep.stages import validate_shard

    def broken(path):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(stages_module, "inspect_image", broken)
    reader = ImageFolderReader(imagefolder)
    items = reader.read_split("train")
    stage = ValidateStage("v", "train", ((0, len(items)),))
    with pytest.raises(ImageReadError, match=r"train/cat/0\.jpg: OSError: .*Input/output"):
        validate_shard(ArtifactStore(tmp_path), stage, 0, reader.root, items, False)
