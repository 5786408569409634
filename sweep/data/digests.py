"""Content digests of a dataset's files, each file hashed once and then taken from a cache.

A dataset's fingerprint (see `DatasetReader.fingerprint`) names its files by relative path,
size and content digest, so that a moved or re-synced copy gets the same stage keys. Hashing
every byte of a large dataset on every run would take minutes, so each digest is cached in the
results store, one file per dataset place:

    <store>/digests/<digest of the dataset's absolute root>.jsonl
        {"root": "/data/food-101", "hash": "blake2b-128"}        header
        ["images/apple_pie/1005649.jpg", 41233, 1700000000123456789, "9f0c..."]   per file

An entry is trusted while the file at that path keeps its size and modification time (the
trust `make` and `rsync` place in them). A file rewritten in place with the same size and
the same time is not noticed; change its time (`touch`) or delete the cache file to rehash.
A copy at another place is hashed once there, and gets the same digests.

A dataset on an object store (`task.root=s3://bucket/prefix`) is cached the same way, under a
file named from its URL, and its entries are trusted while the object keeps its size and its
ETag (which the store changes whenever the content does; both come from the one listing of
the root, not a request per file):

        {"root": "s3://bucket/food-101", "hash": "blake2b-128"}
        ["images/apple_pie/1005649.jpg", 41233, "ETag:\"5d41402a...\"", "9f0c..."]

The digests are of the content, so a dataset copied from a disk to a bucket keeps its
fingerprint (and reuses every stage) after being read once there.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sweep.data.roots import ObjectFiles, StoredObject, dataset_root
from sweep.store import write_text_atomic
from sweep.store.locations import join_location, member, read_location
from sweep.store.objects import is_url

log = logging.getLogger(__name__)

DIGEST_FOLDER = "digests"
ALGORITHM = "blake2b-128"
# Reads in flight when hashing the objects of a store (each waits tens of milliseconds).
OBJECT_WORKERS = 32
# A digest for a file that could not be read: such a file is quarantined by the validation,
# and its fingerprint entry (and so the keys) must still be stable. It is never cached.
UNREADABLE = "unreadable"


def hash_file(path: Path | str) -> str:
    """The content digest of one file or object (BLAKE2b, 128 bits: fast, and no accidental
    collision in any dataset's lifetime)."""
    if is_url(path):
        return hashlib.blake2b(read_location(str(path)), digest_size=16).hexdigest()
    with open(path, "rb") as stream:
        return hashlib.file_digest(
            stream, functools.partial(hashlib.blake2b, digest_size=16)
        ).hexdigest()


class FileDigests:
    """Content digests of files under dataset roots, cached by (path, size, mtime), or by
    (URL, size, ETag) for an object store's.

    Args:
        folder: Where the cache files live (`<store>/digests`); None keeps digests in memory
            only (every file is hashed once per object).
        workers: Threads that hash at once (hashlib and file reads release the GIL); default
            one per core.
    """

    def __init__(self, folder: Path | None = None, workers: int | None = None) -> None:
        self.folder = None if folder is None else Path(folder)
        self.workers = workers or os.cpu_count() or 1
        # absolute root or URL -> relpath -> (size, mtime_ns or the object's stamp, digest)
        self._tables: dict[Path | str, dict[str, tuple[int, int | str, str]]] = {}
        # What the last `of` call hashed, for the log and for tests.
        self.hashed_files = 0
        self.hashed_bytes = 0

    def of(
        self,
        root: Path | str,
        relpaths: Iterable[str],
        listing: Mapping[str, StoredObject] | None = None,
    ) -> dict[str, tuple[int, str]]:
        """relpath -> (size, content digest) of each file under `root`.

        A file whose size and modification time match its cached entry is not read; the others
        are hashed on all cores and cached. A file that exists but cannot be read gets the
        digest UNREADABLE (the validation quarantines it, naming the reason). Under an object
        store's URL, an object's size and ETag take the place of the size and time.

        Args:
            root: A local folder, or an object store's URL.
            relpaths: The files, relative to the root.
            listing: For a URL: the root's objects, relpath -> `StoredObject` (the reader's
                listing, `sweep.data.roots.ObjectFiles.listing`); None lists the root once.

        Raises:
            FileNotFoundError: a listed file does not exist.
        """
        if is_url(root):
            root = str(root).rstrip("/")
            stamp_of, location_of = object_stamps(root, listing), object_location(root)
            workers = max(self.workers, OBJECT_WORKERS)
        else:
            root = Path(root).absolute()
            stamp_of, location_of, workers = file_stamp(root), file_location(root), self.workers
        table = self._table(root)
        found: dict[str, tuple[int, str]] = {}
        stale: dict[str, tuple[int, int | str | None]] = {}
        for relpath in dict.fromkeys(relpaths):  # a mask shared by several images: once
            size, stamp = stamp_of(relpath)
            cached = table.get(relpath)
            if cached is not None and stamp is not None and cached[:2] == (size, stamp):
                found[relpath] = (size, cached[2])
            else:
                stale[relpath] = (size, stamp)
        self.hashed_files = len(stale)
        self.hashed_bytes = sum(size for size, _ in stale.values())
        if not stale:
            return found
        started = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            digests = list(
                pool.map(
                    lambda relpath: readable_digest(location_of(relpath, stale[relpath][0])), stale
                )
            )
        seconds = time.perf_counter() - started
        for (relpath, (size, stamp)), digest in zip(stale.items(), digests, strict=True):
            found[relpath] = (size, digest)
            if digest != UNREADABLE and stamp is not None:
                table[relpath] = (size, stamp, digest)
        log.info(
            "hashed %d file(s), %.1f MB, of %s in %.1f s (%.0f MB/s); %d from the cache",
            len(stale),
            self.hashed_bytes / 1e6,
            root,
            seconds,
            self.hashed_bytes / 1e6 / max(seconds, 1e-9),
            len(found) - len(stale),
        )
        self._save(root, table)
        return found

    def cache_file(self, root: Path | str) -> Path | None:
        """The cache file of a dataset root (one per place: the trust is per path or URL). It
        is a local file in `folder` for an object store's root too, named from the URL."""
        if self.folder is None:
            return None
        place = str(root).rstrip("/") if is_url(root) else str(Path(root).absolute())
        name = hashlib.sha256(place.encode()).hexdigest()[:20]
        return self.folder / f"{name}.jsonl"

    def _table(self, root: Path | str) -> dict[str, tuple[int, int | str, str]]:
        if root not in self._tables:
            self._tables[root] = self._load(root)
        return self._tables[root]

    def _load(self, root: Path | str) -> dict[str, tuple[int, int | str, str]]:
        path = self.cache_file(root)
        if path is None or not path.is_file():
            return {}
        try:
            lines = path.read_text().splitlines()
            header = json.loads(lines[0])
            if header != {"root": str(root), "hash": ALGORITHM}:
                return {}  # another root's file by a digest collision, or another hash
            return {entry[0]: tuple(entry[1:]) for entry in map(json.loads, lines[1:])}
        except (OSError, ValueError, IndexError, TypeError) as error:
            # Only a cache: the files are hashed again.
            log.warning("ignoring the digest cache %s (%s); rehashing", path, error)
            return {}

    def _save(self, root: Path | str, table: dict[str, tuple[int, int | str, str]]) -> None:
        """Rewrites the root's cache file atomically, over the entries another sweep may have
        saved meanwhile: a reader never sees half a file (appends on NFS could), and at worst
        a concurrent writer's new entries are lost, to be hashed again."""
        path = self.cache_file(root)
        if path is None:
            return
        table.update(self._load(root) | table)
        lines = [json.dumps({"root": str(root), "hash": ALGORITHM})]
        lines += [json.dumps([relpath, *entry]) for relpath, entry in sorted(table.items())]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, "\n".join(lines) + "\n")
        except OSError as error:
            log.warning(
                "cannot write the digest cache %s (%s): files will be hashed again next run",
                path,
                error,
            )


def readable_digest(path: Path | str) -> str:
    """`hash_file`, or UNREADABLE for a file that exists but cannot be read.

    An object store's other errors (unreachable, throttled) say nothing about the object, and
    are raised rather than taken for an unreadable file.
    """
    try:
        return hash_file(path)
    except FileNotFoundError:
        raise
    except PermissionError:
        return UNREADABLE
    except OSError:
        if is_url(path):
            raise
        return UNREADABLE


def file_stamp(root: Path) -> Callable[[str], tuple[int, int]]:
    """relpath -> (size, modification time in ns) of a file under a local root."""

    def stamp(relpath: str) -> tuple[int, int]:
        stat = os.stat(root / relpath)
        return stat.st_size, stat.st_mtime_ns

    return stamp


def file_location(root: Path) -> Callable[[str, int], Path]:
    """(relpath, size) -> the file under a local root."""
    return lambda relpath, _size: root / relpath


def object_location(url: str) -> Callable[[str, int], str]:
    """(relpath, listed size) -> the location that reads an object of a URL whole: its byte
    range, which one GET reads (s3fs asks a whole object's size with a HEAD first)."""

    def location(relpath: str, size: int) -> str:
        whole = join_location(url, relpath)
        return member(whole, 0, size) if size > 0 else whole

    return location


def object_stamps(
    url: str, listing: Mapping[str, StoredObject] | None
) -> Callable[[str], tuple[int, str | None]]:
    """relpath -> (size, ETag) of an object under a URL, from one listing of it."""
    objects = listing if listing is not None else ObjectFiles(dataset_root(url)).listing()

    def stamp(relpath: str) -> tuple[int, str | None]:
        found = objects.get(relpath)
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "no such object", join_location(url, relpath))
        return found.size, found.stamp

    return stamp
