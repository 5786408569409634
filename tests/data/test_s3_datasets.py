"""Every dataset reader on an object store (`task.root=s3://...`): the tiny datasets of the
readers' own tests, uploaded to an S3 server on loopback (moto), read as they read locally.

Each reader must give the local copy's class names, items and fingerprint; name the URL when
the root or an annotation file is missing; resolve items to URLs whose pixels are the local
file's; and, with the digest cache, fingerprint the bucket a second time without reading a
byte of its files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from s3fs import S3FileSystem

import sweep.data.digests as digests_module
from sweep.data.base import SPLITS, DatasetError, DatasetReader
from sweep.data.cityscapes import CityscapesReader
from sweep.data.coco import CocoReader
from sweep.data.digests import FileDigests
from sweep.data.food101 import Food101Reader
from sweep.data.formats import sniff_file
from sweep.data.imagefolder import ImageFolderReader
from sweep.data.masks import read_label_mask
from sweep.data.pixels import read_pixels
from sweep.data.seg_folder import SegmentationFolderReader
from sweep.data.validate import inspect_image
from sweep.data.voc import VocReader
from sweep.data.voc_seg import VocSegmentationReader
from sweep.stages.kind import StageContext
from sweep.stages.validate import NAME as VALIDATE
from sweep.stages.validate import (
    Screening,
    file_digests,
    finalize_validation,
    plan_validation,
    screening_of,
    validate_shard,
)
from sweep.store import open_store
from tests.data.coco_files import write_coco
from tests.data.test_cityscapes import write_cityscapes
from tests.data.test_seg_folder import write_seg_folder
from tests.data.test_voc import write_voc_folder
from tests.data.test_voc_seg import write_voc_seg
from tests.s3_server import S3_ENVIRONMENT, start_s3_server


@dataclass(frozen=True)
class Layout:
    """A reader's tiny dataset and where the readers look for what it lacks.

    Attributes:
        write: Writes the local dataset under a folder (pytest's request for the fixtures of
            tests/conftest.py) and returns its root.
        reader: The reader of a root (a folder or a URL).
        required: A file (or folder) under the root without which `prepare` refuses it.
    """

    write: Callable[[pytest.FixtureRequest, Path], Path]
    reader: Callable[[str | Path], DatasetReader]
    required: str


LAYOUTS = {
    "imagefolder": Layout(
        lambda request, _: request.getfixturevalue("imagefolder"), ImageFolderReader, "test"
    ),
    "food101": Layout(
        lambda request, _: request.getfixturevalue("food101"), Food101Reader, "meta/train.txt"
    ),
    "voc": Layout(
        lambda _, folder: write_voc_folder(folder / "VOC2012"),
        VocReader,
        "ImageSets/Main/val.txt",
    ),
    # The VOCdevkit folder as the root: the reader finds VOC2012/ in it.
    "voc_seg": Layout(
        lambda _, folder: write_voc_seg(folder / "VOCdevkit" / "VOC2012").parent,
        VocSegmentationReader,
        "VOC2012/ImageSets/Segmentation/val.txt",
    ),
    "coco": Layout(
        lambda _, folder: write_coco(folder / "coco"),
        CocoReader,
        "annotations/instances_val2017.json",
    ),
    "seg_folder": Layout(
        lambda _, folder: write_seg_folder(folder / "seg"),
        # As conf/task/seg_folder.yaml builds it: the class file under the root.
        lambda root: SegmentationFolderReader(root, classes=f"{root}/classes.txt"),
        "classes.txt",
    ),
    "cityscapes": Layout(
        lambda _, folder: write_cityscapes(folder / "cityscapes"), CityscapesReader, "gtFine/val"
    ),
}


@dataclass
class Copies:
    """A dataset on the disk and its upload to the bucket."""

    layout: Layout
    local: Path
    url: str
    fs: S3FileSystem

    def reader(self, where: str = "s3") -> DatasetReader:
        return self.layout.reader(self.url if where == "s3" else self.local)


@pytest.fixture(scope="module")
def bucket():
    """One S3 server on loopback for the module (tests/s3_server.py; starting one per test
    would take most of the module's time)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        server = start_s3_server(monkeypatch)
        yield server
        server.stop()
        S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def uploads(bucket, tmp_path_factory) -> dict[str, Copies]:
    """Each layout written once and uploaded once, under datasets/<name>, when a test first
    asks for it."""
    return {}


@pytest.fixture(params=list(LAYOUTS))
def copies(request, bucket, uploads, tmp_path_factory) -> Copies:
    name = request.param
    if name not in uploads:
        layout = LAYOUTS[name]
        local = layout.write(request, tmp_path_factory.mktemp(name))
        fs = bucket.filesystem()
        fs.put(f"{local}/", f"{bucket.bucket}/datasets/{name}/", recursive=True)
        uploads[name] = Copies(layout, local, f"{bucket.url}/datasets/{name}", fs)
    return uploads[name]


def fingerprints(reader: DatasetReader, digests: FileDigests | None = None) -> dict[str, str]:
    return {split: reader.fingerprint(reader.items(split), digests) for split in SPLITS}


def test_a_reader_on_s3_lists_what_it_lists_locally(copies, tmp_path):
    local, remote = copies.reader("local"), copies.reader()
    local.prepare()
    remote.prepare()
    assert remote.class_names() == local.class_names()
    for split in SPLITS:
        assert remote.items(split) == local.items(split)
    # The digests are of the content: the bucket's fingerprint is the disk's.
    digests = FileDigests(tmp_path / "digests")
    assert fingerprints(remote, digests) == fingerprints(local, digests)
    assert len(list((tmp_path / "digests").glob("*.jsonl"))) == 2  # one cache file per place
    for split in SPLITS:
        item = remote.items(split)[0]
        location = str(remote.resolve(item.relpath))
        assert location == f"{remote.root}/{item.relpath}"
        assert location.startswith(f"{copies.url}/")
        local_file = local.resolve(item.relpath)
        assert np.array_equal(read_pixels(location), read_pixels(local_file))
        assert inspect_image(location) == inspect_image(local_file)
        assert sniff_file(location) == sniff_file(local_file)
        if item.mask is not None:
            mask = read_label_mask(str(remote.resolve(item.mask)))
            assert np.array_equal(mask, read_label_mask(local.resolve(item.mask)))


def test_a_missing_root_is_refused_naming_its_url(copies):
    missing = f"{copies.url}-elsewhere"
    with pytest.raises(DatasetError, match=f"dataset root {missing} holds no objects"):
        copies.layout.reader(missing).prepare()


def test_a_missing_annotation_file_is_refused_naming_its_url(copies):
    required = f"{copies.url}/{copies.layout.required}"
    copies.fs.rm(required, recursive=True)
    try:
        with pytest.raises(DatasetError, match=required):
            copies.reader().prepare()
    finally:  # the upload is the module's
        local = copies.local / copies.layout.required
        copies.fs.put(f"{local}/" if local.is_dir() else str(local), required, recursive=True)
        assert copies.fs.find(required)


def test_listed_names_may_not_climb_out_of_the_bucket_prefix(copies):
    reader = copies.reader()
    with pytest.raises(DatasetError, match=f"points outside the dataset root {reader.root}"):
        reader.resolve("../other/secret.jpg")


@pytest.fixture
def object_requests(monkeypatch):
    """The reads (GET) and HEADs of the bucket's objects, as "<call> <URL>", in a list that a
    test clears where it starts counting."""
    requests = []

    def counted(name, method):
        async def wrapper(self, path, *args, **kwargs):
            requests.append(f"{name} s3://{self._strip_protocol(path)}")
            return await method(self, path, *args, **kwargs)

        return wrapper

    for name in ("_cat_file", "_info"):
        monkeypatch.setattr(S3FileSystem, name, counted(name, getattr(S3FileSystem, name)))
    # A file system binds its sync methods when it is made: only new ones count, and none
    # made here outlives the test.
    S3FileSystem.clear_instance_cache()
    yield requests
    S3FileSystem.clear_instance_cache()


def test_a_second_fingerprint_reads_no_object(copies, tmp_path, monkeypatch, object_requests):
    """The digests are cached in a local file named from the URL, keyed by size and ETag from
    the reader's one listing: the first run reads each object once (one GET, no HEAD), a new
    run reads nothing but the listing and the annotation files."""
    cache = tmp_path / "store" / "digests"
    reader = copies.reader()
    files = {name for split in SPLITS for item in reader.items(split) for name in item_files(item)}
    object_requests.clear()
    first = fingerprints(reader, FileDigests(cache))
    assert sorted(object_requests) == sorted(f"_cat_file {reader.root}/{f}" for f in files)
    header = FileDigests(cache).cache_file(reader.root).read_text().splitlines()[0]
    assert json.loads(header)["root"] == str(reader.root)  # a local file named from the URL

    again = copies.reader()
    for split in SPLITS:
        again.items(split)  # the listing and annotation files are read here
    object_requests.clear()
    monkeypatch.setattr(digests_module, "hash_file", refuse_hashing)
    assert fingerprints(again, FileDigests(cache)) == first
    assert object_requests == []


def item_files(item) -> list[str]:
    return [item.relpath] + ([item.mask] if item.mask is not None else [])


def refuse_hashing(path):
    raise AssertionError(f"{path} was hashed again")


def test_an_unreachable_store_is_named_with_what_to_check(monkeypatch):
    for name, value in S3_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    S3FileSystem.clear_instance_cache()
    try:
        with pytest.raises(DatasetError, match=r"s3://no-server/data at http://127\.0\.0\.1:9"):
            ImageFolderReader("s3://no-server/data").prepare()
    finally:
        S3FileSystem.clear_instance_cache()


def test_the_validation_of_a_bucket_is_the_disks(bucket, imagefolder, tmp_path):
    """Screening decodes the objects at their URLs (sweep/stages/validate.py): the same
    verdicts, and the same keys, so a dataset validated on the disk is not validated again."""
    (imagefolder / "train" / "cat" / "bad.jpg").write_bytes(b"not an image")
    fs = bucket.filesystem()
    fs.put(f"{imagefolder}/", f"{bucket.bucket}/screened/", recursive=True)
    store = open_store(tmp_path / "store")
    screenings = [
        validated(ImageFolderReader(root), store)
        for root in (f"{bucket.url}/screened", imagefolder)
    ]
    assert (
        screenings[0].quarantined
        == screenings[1].quarantined
        == [{"split": "train", "path": "train/cat/bad.jpg", "reason": "not an image"}]
    )
    assert screenings[0].fingerprints == screenings[1].fingerprints


def validated(reader: DatasetReader, store) -> Screening:
    """The reader's validation run inline, shard by shard, and applied."""
    plan = plan_validation(reader, 8, file_digests(store))
    context = StageContext(store, reader.root)
    for stage in plan.of_kind(VALIDATE).values():
        items = plan.splits[stage.split]
        for index, (start, stop) in enumerate(stage.shards):
            validate_shard(context, stage, index, items[start:stop])
        finalize_validation(context, stage)
    return screening_of(plan, store, reader.root)
