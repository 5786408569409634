"""Content digests and the dataset fingerprint: by content, never by place or time, each file
hashed once and then taken from the cache in the store."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

import sweep.data.digests as digests_module
from sweep.data.digests import UNREADABLE, FileDigests
from sweep.data.imagefolder import ImageFolderReader
from sweep.data.voc_seg import VocSegmentationReader
from tests.data.test_voc_seg import write_voc_seg

# Far from any time the fixtures were written at.
LATER_NS = 2_000_000_000 * 10**9


def touch_every_file(root: Path, ns: int = LATER_NS) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(ns, ns))


def count_hashes(monkeypatch) -> list[Path]:
    """The files hashed from now on (hash_file is the only reader of their bytes)."""
    hashed = []
    real = digests_module.hash_file

    def counted(path):
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(digests_module, "hash_file", counted)
    return hashed


def fingerprints(reader, digests=None) -> dict[str, str]:
    return {split: reader.fingerprint(reader.items(split), digests) for split in ("train", "test")}


def test_a_moved_and_touched_dataset_keeps_its_fingerprint(imagefolder, tmp_path):
    before = fingerprints(ImageFolderReader(imagefolder))
    moved = Path(shutil.move(imagefolder, tmp_path / "elsewhere" / "copy"))
    touch_every_file(moved)
    assert fingerprints(ImageFolderReader(moved)) == before


def test_masks_enter_the_fingerprint_by_content_not_place(tmp_path):
    root = write_voc_seg(tmp_path / "VOC2012")
    reader = VocSegmentationReader(root)
    before = reader.fingerprint(reader.items("train"))
    copy = Path(shutil.copytree(root, tmp_path / "mnt" / "VOC2012"))
    touch_every_file(copy)
    moved = VocSegmentationReader(copy)
    assert moved.fingerprint(moved.items("train")) == before
    mask = copy / moved.items("train")[0].mask
    mask.write_bytes(mask.read_bytes() + b"\0")  # a changed label mask
    assert moved.fingerprint(moved.items("train")) != before


def test_a_second_fingerprint_reads_no_file_bytes(imagefolder, tmp_path, monkeypatch):
    cache = tmp_path / "store" / "digests"
    reader = ImageFolderReader(imagefolder)
    hashed = count_hashes(monkeypatch)
    first = fingerprints(reader, FileDigests(cache))
    assert len(hashed) == 27  # 18 train and 9 test images, each once

    def refuse(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(digests_module, "hash_file", refuse)
    # A new run: only the cache file in the store carries the digests over.
    assert fingerprints(ImageFolderReader(imagefolder), FileDigests(cache)) == first


def test_a_relocated_copy_is_hashed_once_at_its_new_place(imagefolder, tmp_path, monkeypatch):
    cache = tmp_path / "store" / "digests"
    before = fingerprints(ImageFolderReader(imagefolder), FileDigests(cache))
    copy = Path(shutil.copytree(imagefolder, tmp_path / "resynced"))
    touch_every_file(copy)
    hashed = count_hashes(monkeypatch)
    assert fingerprints(ImageFolderReader(copy), FileDigests(cache)) == before
    assert len(hashed) == 27 and all(copy in path.parents for path in hashed)
    assert fingerprints(ImageFolderReader(copy), FileDigests(cache)) == before
    assert len(hashed) == 27  # cached at the new place too
    assert len(list(cache.glob("*.jsonl"))) == 2  # one cache file per place


def test_a_changed_file_changes_the_fingerprint(imagefolder, tmp_path):
    cache = tmp_path / "store" / "digests"
    reader = ImageFolderReader(imagefolder)
    before = fingerprints(reader, FileDigests(cache))
    changed = imagefolder / reader.items("train")[4].relpath
    changed.write_bytes(changed.read_bytes()[:-1] + b"\1\2")  # new bytes, size and time
    after = fingerprints(ImageFolderReader(imagefolder), FileDigests(cache))
    assert after["train"] != before["train"] and after["test"] == before["test"]


def test_the_cache_trusts_size_and_time_at_the_same_path(imagefolder, tmp_path):
    """Documented limit: bytes rewritten in place with the same size and time go unnoticed
    through the cache (as by make and rsync); without the cache they are seen."""
    cache = tmp_path / "store" / "digests"
    reader = ImageFolderReader(imagefolder)
    before = fingerprints(reader, FileDigests(cache))
    changed = imagefolder / reader.items("train")[4].relpath
    stat = changed.stat()
    data = bytearray(changed.read_bytes())
    data[-3] ^= 0xFF  # same size
    changed.write_bytes(bytes(data))
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same time
    assert fingerprints(ImageFolderReader(imagefolder), FileDigests(cache)) == before
    assert fingerprints(ImageFolderReader(imagefolder))["train"] != before["train"]
    os.utime(changed)  # touch: the cache entry no longer matches, the file is hashed again
    assert fingerprints(ImageFolderReader(imagefolder), FileDigests(cache)) != before


def test_an_unreadable_file_is_fingerprinted_and_never_cached(imagefolder, tmp_path, monkeypatch):
    """Validation quarantines it, naming the reason; hashing must not stop the sweep first."""
    reader = ImageFolderReader(imagefolder)
    locked = imagefolder / reader.items("train")[0].relpath
    real = digests_module.hash_file

    def denied(path):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(digests_module, "hash_file", denied)
    cache = tmp_path / "digests"
    relpaths = [item.relpath for item in reader.items("train")]
    found = FileDigests(cache).of(imagefolder, relpaths)
    assert found[relpaths[0]] == (locked.stat().st_size, UNREADABLE)
    assert all(found[relpath][1] != UNREADABLE for relpath in relpaths[1:])
    again = FileDigests(cache)
    again.of(imagefolder, relpaths)
    assert again.hashed_files == 1  # only the unreadable file is tried again


def test_a_missing_file_is_an_error_naming_it(imagefolder):
    reader = ImageFolderReader(imagefolder)
    items = reader.items("train")
    (imagefolder / items[1].relpath).unlink()
    with pytest.raises(FileNotFoundError, match=items[1].relpath):
        reader.fingerprint(items, FileDigests())


def test_a_damaged_cache_file_is_ignored_and_rewritten(imagefolder, tmp_path, monkeypatch, caplog):
    cache = tmp_path / "digests"
    reader = ImageFolderReader(imagefolder)
    before = fingerprints(reader, FileDigests(cache))
    [cache_file] = cache.glob("*.jsonl")
    cache_file.write_text('{"root": "x"\n["half')
    hashed = count_hashes(monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert fingerprints(ImageFolderReader(imagefolder), FileDigests(cache)) == before
    assert "ignoring the digest cache" in caplog.text and len(hashed) == 27
    assert fingerprints(ImageFolderReader(imagefolder), FileDigests(cache)) == before
    assert len(hashed) == 27
