"""The store on S3 (moto's server on loopback): publishing without rename, a create-only
manifest, races, the read cache, cleaning, and a dead server named in the error."""

from __future__ import annotations

import json
import threading

import pytest

from sweep.store import DONE, ObjectStore, StoreError, open_store
from sweep.store.__main__ import main
from sweep.store.locations import member, read_location
from sweep.store.remote import PAYLOAD_PREFIX


def test_an_output_is_its_payload_then_its_manifest(s3_server, tmp_path):
    store = open_store(f"{s3_server.url}/store", cache_dir=tmp_path / "cache")
    assert isinstance(store, ObjectStore)
    assert not store.is_done("train", "abc")
    with store.writing("train", "abc") as out:
        (out / "model.pt").write_bytes(b"weights")
        (out / "sub").mkdir()
        (out / "sub" / "more.json").write_text("{}")
        assert s3_server.objects("store") == []  # nothing uploaded before the body ends
    assert store.is_done("train", "abc")
    objects = s3_server.objects("store/train/abc")
    assert f"{s3_server.bucket}/store/train/abc/{DONE}" in objects
    manifest = json.loads(
        s3_server.filesystem().cat_file(f"{s3_server.bucket}/store/train/abc/{DONE}")
    )
    assert manifest["payload"].startswith(PAYLOAD_PREFIX)
    assert manifest["files"]["model.pt"]["size"] == 7
    assert len(manifest["files"]["model.pt"]["sha256"]) == 64
    assert (store.path("train", "abc") / "model.pt").read_bytes() == b"weights"
    assert (store.path("train", "abc") / "sub" / "more.json").read_text() == "{}"
    # A store unpickled elsewhere (a Ray worker) sees the same output.
    assert (
        open_store(f"{s3_server.url}/store", tmp_path / "other").read_json(
            "train", "abc", "sub/more.json"
        )
        == {}
    )


def test_a_failed_writer_uploads_nothing(s3_server, tmp_path):
    store = open_store(f"{s3_server.url}/store", cache_dir=tmp_path)
    with pytest.raises(RuntimeError), store.writing("train", "abc") as out:
        (out / "model.pt").write_bytes(b"half")
        raise RuntimeError("killed")
    assert not store.is_done("train", "abc")
    assert s3_server.objects("store") == []


def test_racing_writers_publish_one_complete_output(s3_server, tmp_path):
    """Eight writers race on one key: one manifest, naming one complete payload; the losers
    remove theirs. moto's conditional writes are not atomic under races, so any number may
    think they won: each still published a whole payload, and the manifest names one."""
    barrier = threading.Barrier(8)
    errors = []

    def write(number: int) -> None:
        try:
            store = open_store(f"{s3_server.url}/store", cache_dir=tmp_path / str(number))
            with store.writing("encode", "k") as out:
                (out / "value").write_text("same result")
                barrier.wait()
        except Exception as error:  # pragma: no cover - shown by the assert
            errors.append(error)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    reader = open_store(f"{s3_server.url}/store", cache_dir=tmp_path / "reader")
    manifest = reader.manifest("encode", "k")
    assert (reader.path("encode", "k") / "value").read_text() == "same result"
    named = f"{s3_server.bucket}/store/encode/k/{manifest.payload}/value"
    assert named in s3_server.objects("store/encode/k")
    # Stale unnamed payloads (of losers that thought they won) go with `clean`; the named stays.
    reader.remove_stale_temporaries(max_age_seconds=-1)
    assert s3_server.objects("store/encode/k") == sorted(
        [named, f"{s3_server.bucket}/store/encode/k/{DONE}"]
    )


def test_an_unpublished_payload_is_cleaned_only_when_old(s3_server, tmp_path):
    fs = s3_server.filesystem()
    fs.pipe_file(f"{s3_server.bucket}/store/train/abc/{PAYLOAD_PREFIX}dead-1-x/model.pt", b"w")
    store = open_store(f"{s3_server.url}/store", cache_dir=tmp_path)
    assert store.remove_stale_temporaries(max_age_seconds=3600) == 0
    assert store.remove_stale_temporaries(max_age_seconds=-1) == 1
    assert s3_server.objects("store") == []


def test_the_clean_command_removes_unnamed_payloads_and_keeps_outputs(s3_server, tmp_path, capsys):
    store = open_store(f"{s3_server.url}/sweep/store", cache_dir=tmp_path)
    with store.writing("train", "kept") as out:
        (out / "model.pt").write_bytes(b"w")
    fs = s3_server.filesystem()
    fs.pipe_file(f"{s3_server.bucket}/sweep/store/train/x/{PAYLOAD_PREFIX}dead-1-x/model.pt", b"w")
    assert main(["clean", f"{s3_server.url}/sweep"]) == 0  # too young: kept
    assert len(s3_server.objects("sweep/store")) == 3
    assert main(["clean", f"{s3_server.url}/sweep", "--older-than-hours=-1"]) == 0
    assert "removed 1 unpublished" in capsys.readouterr().out
    assert store.is_done("train", "kept") and len(s3_server.objects("sweep/store")) == 2


def test_members_of_a_pack_are_read_by_range_through_the_cache(s3_server, tmp_path):
    store = open_store(f"{s3_server.url}/store", cache_dir=tmp_path / "cache", cache_bytes=10**6)
    with store.writing("encode-shards", "k/00000000-00000003") as out:
        (out / "pack.bin").write_bytes(b"aaabbbbcc")
    pack = store.location("encode-shards", "k/00000000-00000003", "pack.bin")
    assert pack.startswith("s3://")
    assert read_location(member(pack, 3, 4)) == b"bbbb"
    cached = list((tmp_path / "cache" / "objects").rglob("pack.bin"))
    assert len(cached) == 1  # the whole object, fetched once
    s3_server.filesystem().rm(pack.removeprefix("s3://"))
    assert read_location(member(pack, 7, 2)) == b"cc"  # the second read is the node's copy


def test_the_cache_keeps_at_most_its_bytes(s3_server, tmp_path):
    store = open_store(f"{s3_server.url}/store", cache_dir=tmp_path / "cache", cache_bytes=25)
    for index in range(4):
        with store.writing("encode-shards", f"k/{index}") as out:
            (out / "pack.bin").write_bytes(bytes([index]) * 10)
        store.file("encode-shards", f"k/{index}", "pack.bin")
    kept = [p for p in (tmp_path / "cache" / "objects").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in kept) <= 25
    assert store.file("encode-shards", "k/0", "pack.bin").read_bytes() == b"\0" * 10


def test_a_dead_server_is_named_with_what_to_check(s3_server, tmp_path):
    store = open_store(f"{s3_server.url}/store", cache_dir=tmp_path)
    s3_server.stop()
    with pytest.raises(StoreError) as raised:
        store.check_writable()
    message = str(raised.value)
    assert f"{s3_server.url}/store" in message
    assert "AWS_ENDPOINT_URL_S3" in message and "testing" not in message


def test_a_conditional_write_conflict_is_tried_again(monkeypatch, tmp_path):
    """S3 answers a conditional write that races another in flight with 409
    ConditionalRequestConflict: the manifest write is sent again; 412 means another won."""
    from sweep.store import objects

    answers = [OSError("An error occurred (ConditionalRequestConflict) (409)"), None]
    written = []

    class Stream:
        def __enter__(self):
            answer = answers.pop(0)
            if answer is not None:
                raise answer
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            written.append(data)

    class FileSystem:
        def open(self, path, mode):
            assert mode == "xb"
            return Stream()

    monkeypatch.setattr(objects, "filesystem", lambda url: (FileSystem(), url))
    monkeypatch.setattr(objects, "CONFLICT_PAUSE_SECONDS", 0.0)
    assert objects.write_if_absent("s3://b/k/DONE", b"manifest") is True
    assert written == [b"manifest"] and answers == []

    class Taken(FileSystem):
        def open(self, path, mode):
            raise FileExistsError(path)

    monkeypatch.setattr(objects, "filesystem", lambda url: (Taken(), url))
    assert objects.write_if_absent("s3://b/k/DONE", b"manifest") is False


def test_a_results_dir_on_a_dead_server_exits_2_naming_it(s3_server, tmp_path, capsys):
    from sweep.cli import check_overrides

    url = f"{s3_server.url}/sweep"
    s3_server.stop()
    with pytest.raises(SystemExit) as exited:
        check_overrides([f"results_dir={url}", f"local_dir={tmp_path / 'local'}"])
    assert exited.value.code == 2
    [message] = [
        line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")
    ]
    assert message.startswith("error: results_dir: ") and f"{url}/store" in message
    assert "AWS_ENDPOINT_URL_S3" in message


def test_an_unwritable_read_cache_is_named_with_its_option(s3_server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = open_store(f"{s3_server.url}/store", cache_dir=blocker / "cache")
    with pytest.raises(StoreError, match=r"store\.cache_dir") as raised:
        store.check_writable()
    assert str(blocker / "cache") in str(raised.value)


def test_a_copy_is_touched_at_most_once_a_minute(s3_server, tmp_path, monkeypatch):
    """Reading many members of one pack refreshes its copy's time once, not once a member."""
    import os

    store = open_store(f"{s3_server.url}/store", cache_dir=tmp_path / "cache")
    with store.writing("encode-shards", "k/0") as out:
        (out / "pack.bin").write_bytes(b"abcdef")
    pack = store.location("encode-shards", "k/0", "pack.bin")
    touched = []
    real = os.utime
    monkeypatch.setattr(
        os, "utime", lambda path, *a, **k: (touched.append(path), real(path, *a, **k))
    )
    for start in range(6):
        assert read_location(member(pack, start, 1)) == b"abcdef"[start : start + 1]
    assert len(touched) <= 1
