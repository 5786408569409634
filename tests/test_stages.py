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


def test_shard_ranges_cover_every_image_once_in_equal_shards():
    assert shard_ranges(10, 4) == ((0, 3), (3, 6), (6, 10))
    assert shard_ranges(3, 128) == ((0, 3),)
    assert shard_ranges(720, 128) == tuple((i, i + 120) for i in range(0, 720, 120))
    assert shard_ranges(0, 8) == ()
    for count in range(1, 60):
        for size in range(1, 12):
            ranges = shard_ranges(count, size)
            assert ranges[0][0] == 0 and ranges[-1][1] == count
            assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
            lengths = [stop - start for start, stop in ranges]
            assert max(lengths) <= size and max(lengths) - min(lengths) <= 1
            assert len(ranges) == -(-count // size)


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


@pytest.mark.parametrize("batch_images", [1, 4, 32])
def test_unreadable_image_is_named_in_the_error(imagefolder, tmp_path, monkeypatch, batch_images):
    import sweep.stages as stages_module

    monkeypatch.setattr(stages_module, "ENCODE_BATCH_IMAGES", batch_images)
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


class RecordingCodec(JxlCodec):
    """A transcoder stand-in: keeps the source bytes it is handed."""

    def __init__(self) -> None:
        super().__init__(distances=[4])
        self.sources: list[bytes] = []

    def encode_source(self, source: bytes, pixels, setting: str) -> bytes:
        self.sources.append(source)
        return self.encode(pixels, setting)


def test_only_transcoders_are_handed_the_source_bytes(imagefolder, tmp_path):
    from sweep.stages import reads_source_bytes

    assert not reads_source_bytes(JxlCodec()) and reads_source_bytes(RecordingCodec())
    reader, codec = ImageFolderReader(imagefolder), RecordingCodec()
    items = reader.read_split("train")[:3]
    stage = EncodeStage("k", "train", "4", ((0, 3),))
    encode_shard(ArtifactStore(tmp_path), stage, 0, reader.root, items, codec)
    assert codec.sources == [(imagefolder / item.relpath).read_bytes() for item in items]


@pytest.mark.parametrize("batch_images", [1, 3, 32])
def test_encoded_bytes_are_the_codecs_bytes_of_the_decoded_source(
    imagefolder, tmp_path, monkeypatch, batch_images
):
    import sweep.stages as stages_module
    from sweep.data.pixels import read_pixels

    # Batches inside a shard (decode all, encode all, write all) change no byte and no order.
    monkeypatch.setattr(stages_module, "ENCODE_BATCH_IMAGES", batch_images)
    store, reader = ArtifactStore(tmp_path / "store"), ImageFolderReader(imagefolder)
    stage = encode_split(store, reader, "4", shard_size=7)
    codec = JxlCodec(distances=[4])
    for item, file in zip(reader.read_split("train"), encoded_files(store, stage), strict=True):
        expected = codec.encode(read_pixels(imagefolder / item.relpath), "4")
        assert open(file.path, "rb").read() == expected
