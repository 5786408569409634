"""Encode stage: records per image, the original setting keeps source bytes, DCR arithmetic."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweep.codecs.jxl import JxlCodec
from sweep.data.formats import sniff_format
from sweep.data.imagefolder import ImageFolderReader
from sweep.stages.encode import (
    EncodeStage,
    encode_shard,
    encoded_files,
    finalize_encode,
    summarize_records,
)
from sweep.stages.kind import StageContext
from sweep.stages.shards import ImageReadError, shard_ranges
from sweep.store import ArtifactStore
from sweep.store.locations import read_location, split_location


def context_of(store: ArtifactStore, root, codec=None) -> StageContext:
    return StageContext(store, root, codec=codec)


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


def encode_split(store, reader, setting: str, shard_size: int = 4) -> EncodeStage:
    items = reader.read_split("train")
    shards = shard_ranges(len(items), shard_size)
    stage = EncodeStage(f"key-{setting}", "train", setting, shards, reader.root)
    codec = JxlCodec(distances=[4])
    for index, (start, stop) in enumerate(stage.shards):
        encode_shard(context_of(store, reader.root, codec), stage, index, items[start:stop])
    finalize_encode(context_of(store, reader.root), stage)
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


def test_records_name_dataset_files_relative_to_the_root_of_the_reading_run(imagefolder, tmp_path):
    """A moved dataset: the stored records stay, the files are found at its new place."""
    import dataclasses
    import json
    import shutil

    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    stage = encode_split(store, reader, "original")
    stored = (store.path("encode", stage.key) / "records.jsonl").read_text()
    assert str(imagefolder) not in stored
    record = json.loads(stored.splitlines()[0])
    assert (record["file"], record["file_in"]) == (record["source"], "dataset")
    items = reader.read_split("train")
    moved = shutil.move(imagefolder, tmp_path / "moved")
    files = encoded_files(store, dataclasses.replace(stage, dataset_root=moved))
    assert [f.path for f in files] == [str(moved / item.relpath) for item in items]
    assert all(Path(f.path).is_file() for f in files)
    with pytest.raises(ValueError, match="without the dataset root"):
        encoded_files(store, dataclasses.replace(stage, dataset_root=None))


def test_lossy_setting_packs_jxl_images_with_their_sizes(imagefolder, tmp_path):
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    stage = encode_split(store, reader, "4")
    files = encoded_files(store, stage)
    assert len(files) == 18
    assert all(sniff_format(read_location(f.path)[:32]) == "jxl" for f in files)
    # One pack per shard, each image a byte range of it; nothing else holds image bytes.
    packs = sorted((store.root / "encode-shards").rglob("pack.bin"))
    assert len(packs) == len(stage.shards) >= 2
    assert {split_location(f.path)[0] for f in files} == {str(p) for p in packs}
    assert not [p for p in (store.root / "encode-shards").rglob("*.jxl")]
    assert [f.target for f in files] == [item.target for item in reader.read_split("train")]
    summary = store.read_json("encode", stage.key, "summary.json")
    written = sum(len(read_location(f.path)) for f in files)
    assert summary["encoded_bytes"] == written == sum(p.stat().st_size for p in packs)
    assert 0 < summary["dcr"] < 1 and summary["dcr_raw"] > summary["dcr"]


def test_finished_shards_are_not_encoded_again(imagefolder, tmp_path):
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    stage = encode_split(store, reader, "4")
    items = reader.read_split("train")
    assert encode_shard(context_of(store, reader.root, JxlCodec()), stage, 0, items[:4]) == 0


def test_resume_with_another_shard_size_encodes_every_image(imagefolder, tmp_path):
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    items = reader.read_split("train")
    codec = JxlCodec(distances=[4])
    small = EncodeStage("k", "train", "4", shard_ranges(len(items), 4))
    encode_shard(context_of(store, reader.root, codec), small, 0, items[:4])  # then killed
    large = EncodeStage("k", "train", "4", shard_ranges(len(items), 8))
    for index, (start, stop) in enumerate(large.shards):
        encode_shard(context_of(store, reader.root, codec), large, index, items[start:stop])
    finalize_encode(context_of(store, reader.root), large)
    assert len(encoded_files(store, large)) == len(items) == 18


@pytest.mark.parametrize("batch_images", [1, 4, 32])
def test_unreadable_image_is_named_in_the_error(imagefolder, tmp_path, monkeypatch, batch_images):
    import sweep.stages.encoding as encoding

    monkeypatch.setattr(encoding, "ENCODE_BATCH_IMAGES", batch_images)
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    items = reader.read_split("train")
    broken = imagefolder / items[2].relpath
    broken.write_bytes(broken.read_bytes()[:40])
    stage = EncodeStage("k", "train", "4", ((0, len(items)),))
    with pytest.raises(ImageReadError, match=str(broken)):
        encode_shard(context_of(store, reader.root, JxlCodec(distances=[4])), stage, 0, items)
    assert not store.path("encode-shards", "k").exists() or not any(
        store.path("encode-shards", "k").iterdir()
    )


def test_machine_io_error_during_validation_names_the_file(imagefolder, tmp_path, monkeypatch):
    import errno

    import sweep.stages.validate as validate_module
    from sweep.stages.validate import ValidateStage, validate_shard

    def broken(path):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(validate_module, "inspect_image", broken)
    reader = ImageFolderReader(imagefolder)
    items = reader.read_split("train")
    stage = ValidateStage("v", "train", ((0, len(items)),))
    with pytest.raises(ImageReadError, match=r"train/cat/0\.jpg: OSError: .*Input/output"):
        validate_shard(context_of(ArtifactStore(tmp_path), reader.root), stage, 0, items)


class RecordingCodec(JxlCodec):
    """A transcoder stand-in: keeps the source bytes it is handed."""

    def __init__(self) -> None:
        super().__init__(distances=[4])
        self.sources: list[bytes] = []

    def encode_source(self, source: bytes, pixels, setting: str) -> bytes:
        self.sources.append(source)
        return self.encode(pixels, setting)


def test_only_transcoders_are_handed_the_source_bytes(imagefolder, tmp_path):
    from sweep.stages.encoding import reads_source_bytes

    assert not reads_source_bytes(JxlCodec()) and reads_source_bytes(RecordingCodec())
    reader, codec = ImageFolderReader(imagefolder), RecordingCodec()
    items = reader.read_split("train")[:3]
    stage = EncodeStage("k", "train", "4", ((0, 3),))
    encode_shard(context_of(ArtifactStore(tmp_path), reader.root, codec), stage, 0, items)
    assert codec.sources == [(imagefolder / item.relpath).read_bytes() for item in items]


@pytest.mark.parametrize("batch_images", [1, 3, 32])
def test_encoded_bytes_are_the_codecs_bytes_of_the_decoded_source(
    imagefolder, tmp_path, monkeypatch, batch_images
):
    import sweep.stages.encoding as encoding
    from sweep.data.pixels import read_pixels

    # Batches inside a shard (decode all, encode all, write all) change no byte and no order.
    monkeypatch.setattr(encoding, "ENCODE_BATCH_IMAGES", batch_images)
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    stage = encode_split(store, reader, "4", shard_size=7)
    codec = JxlCodec(distances=[4])
    for item, file in zip(reader.read_split("train"), encoded_files(store, stage), strict=True):
        expected = codec.encode(read_pixels(imagefolder / item.relpath), "4")
        assert read_location(file.path) == expected
