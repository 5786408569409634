"""Artifact store: atomic publication, DONE markers, concurrent writers, stale temporaries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from sweep.store import DONE, ArtifactStore, ObjectStore, StoreError, open_store, write_json_atomic
from sweep.store.manifest import Manifest


def test_output_is_published_with_done_marker(tmp_path):
    store = ArtifactStore(tmp_path)
    assert not store.is_done("train", "abc")
    with store.writing("train", "abc") as out:
        (out / "model.pt").write_text("weights")
        assert not store.path("train", "abc").exists()  # invisible until finished
    assert store.is_done("train", "abc")
    assert (store.path("train", "abc") / "model.pt").read_text() == "weights"
    assert (store.path("train", "abc") / DONE).is_file()
    manifest = Manifest.from_json((store.path("train", "abc") / DONE).read_text())
    assert manifest.payload == "" and manifest.files["model.pt"]["size"] == len("weights")


def test_failed_writer_publishes_nothing_and_leaves_no_temporary(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(RuntimeError), store.writing("train", "abc") as out:
        (out / "model.pt").write_text("half")
        raise RuntimeError("killed")
    assert not store.path("train", "abc").exists()
    assert list((tmp_path / "train").iterdir()) == []


def test_second_writer_of_a_key_keeps_the_first_output(tmp_path):
    store = ArtifactStore(tmp_path)
    with store.writing("encode", "k") as first:
        with store.writing("encode", "k") as second:
            (second / "value").write_text("second")
        (first / "value").write_text("first")
    assert (store.path("encode", "k") / "value").read_text() == "second"
    assert sorted(p.name for p in (tmp_path / "encode").iterdir()) == ["k"]


def test_nested_keys_publish_atomically(tmp_path):
    store = ArtifactStore(tmp_path)
    with store.writing("encode-shards", "key/00003") as out:
        (out / "records.json").write_text("[]")
    assert store.is_done("encode-shards", "key/00003")


def test_incomplete_folder_is_kept_aside_not_lost(tmp_path):
    store = ArtifactStore(tmp_path)
    stray = store.path("train", "abc")
    stray.mkdir(parents=True)
    (stray / "notes.txt").write_text("someone's file")
    with store.writing("train", "abc") as out:
        (out / "model.pt").write_text("weights")
    assert store.is_done("train", "abc")
    kept = list((tmp_path / "train").glob("abc.incomplete-*"))
    assert len(kept) == 1 and (kept[0] / "notes.txt").read_text() == "someone's file"


def test_temporaries_of_dead_or_old_writers_are_removed(tmp_path):
    store = ArtifactStore(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname().replace("-", "_")
    of_dead_writer = tmp_path / "train" / f"a.tmp-{host}-{dead.pid}-0000"
    of_live_writer = tmp_path / "train" / f"b.tmp-{host}-{os.getpid()}-0000"
    of_other_host = tmp_path / "encode-shards" / "k" / "00001.tmp-elsewhere-1-0000"
    old_of_other_host = tmp_path / "evaluate" / "c.tmp-elsewhere-1-0000"
    for folder in (of_dead_writer, of_live_writer, of_other_host, old_of_other_host):
        folder.mkdir(parents=True)
    long_ago = time.time() - 3 * 24 * 3600
    os.utime(old_of_other_host, (long_ago, long_ago))
    assert store.remove_stale_temporaries() == 2
    assert not of_dead_writer.exists() and not old_of_other_host.exists()
    assert of_live_writer.exists() and of_other_host.exists()


def test_urls_open_an_object_store_and_unwritable_folders_are_refused(tmp_path):
    assert isinstance(open_store("s3://bucket/store"), ObjectStore)
    assert type(open_store(f"file://{tmp_path}/store")) is ArtifactStore
    with pytest.raises(StoreError, match="s3://bucket/store"):
        ArtifactStore("s3://bucket/store")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match=str(blocker)):
        ArtifactStore(blocker / "store").check_writable()


def test_json_written_atomically(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"b": 1})
    assert (tmp_path / "a.json").read_text().strip().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
