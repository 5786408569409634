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
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sweep.store import write_text_atomic

log = logging.getLogger(__name__)

DIGEST_FOLDER = "digests"
ALGORITHM = "blake2b-128"
# A digest for a file that could not be read: such a file is quarantined by the validation,
# and its fingerprint entry (and so the keys) must still be stable. It is never cached.
UNREADABLE = "unreadable"


def hash_file(path: Path) -> str:
    """The content digest of one file (BLAKE2b, 128 bits: fast, and no accidental collision
    in any dataset's lifetime)."""
    with open(path, "rb") as stream:
        return hashlib.file_digest(
            stream, functools.partial(hashlib.blake2b, digest_size=16)
        ).hexdigest()


class FileDigests:
    """Content digests of files under dataset roots, cached by (path, size, mtime).

    Args:
        folder: Where the cache files live (`<store>/digests`); None keeps digests in memory
            only (every file is hashed once per object).
        workers: Threads that hash at once (hashlib and file reads release the GIL); default
            one per core.
    """

    def __init__(self, folder: Path | None = None, workers: int | None = None) -> None:
        self.folder = None if folder is None else Path(folder)
        self.workers = workers or os.cpu_count() or 1
        # absolute root -> relpath -> (size, mtime_ns, digest)
        self._tables: dict[Path, dict[str, tuple[int, int, str]]] = {}
        # What the last `of` call hashed, for the log and for tests.
        self.hashed_files = 0
        self.hashed_bytes = 0

    def of(self, root: Path, relpaths: Iterable[str]) -> dict[str, tuple[int, str]]:
        """relpath -> (size, content digest) of each file under `root`.

        A file whose size and modification time match its cached entry is not read; the others
        are hashed on all cores and cached. A file that exists but cannot be read gets the
        digest UNREADABLE (the validation quarantines it, naming the reason).

        Raises:
            FileNotFoundError: a listed file does not exist.
        """
        root = Path(root).absolute()
        table = self._table(root)
        found: dict[str, tuple[int, str]] = {}
        stale: dict[str, os.stat_result] = {}
        for relpath in dict.fromkeys(relpaths):  # a mask shared by several images: once
            stat = os.stat(root / relpath)
            cached = table.get(relpath)
            if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
                found[relpath] = (stat.st_size, cached[2])
            else:
                stale[relpath] = stat
        self.hashed_files = len(stale)
        self.hashed_bytes = sum(stat.st_size for stat in stale.values())
        if not stale:
            return found
        started = time.perf_counter()
        with ThreadPoolExecutor(self.workers) as pool:
            digests = list(pool.map(lambda relpath: readable_digest(root / relpath), stale))
        seconds = time.perf_counter() - started
        for (relpath, stat), digest in zip(stale.items(), digests, strict=True):
            found[relpath] = (stat.st_size, digest)
            if digest != UNREADABLE:
                table[relpath] = (stat.st_size, stat.st_mtime_ns, digest)
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

    def cache_file(self, root: Path) -> Path | None:
        """The cache file of a dataset root (one per place: the trust is per path)."""
        if self.folder is None:
            return None
        name = hashlib.sha256(str(Path(root).absolute()).encode()).hexdigest()[:20]
        return self.folder / f"{name}.jsonl"

    def _table(self, root: Path) -> dict[str, tuple[int, int, str]]:
        if root not in self._tables:
            self._tables[root] = self._load(root)
        return self._tables[root]

    def _load(self, root: Path) -> dict[str, tuple[int, int, str]]:
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

    def _save(self, root: Path, table: dict[str, tuple[int, int, str]]) -> None:
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


def readable_digest(path: Path) -> str:
    """`hash_file`, or UNREADABLE for a file that exists but cannot be read."""
    try:
        return hash_file(path)
    except FileNotFoundError:
        raise
    except OSError:
        return UNREADABLE
