"""Each node's bounded read cache of an object store's outputs (`store.cache_dir`,
`store.cache_bytes`).

A stage's outputs never change once published (their key is a content address and their
payload a writer's own prefix), so a copy is valid for as long as it is kept: the second
epoch of a training reads its shards from the local disk, not from the store again. Copies
mirror the object's path (`<cache_dir>/objects/<bucket>/<prefix>/...`), are written under a
temporary name and renamed into place, so that the loader workers of one node share them, and
the least recently used are removed once the cache holds more than `cache_bytes`.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sweep.store.objects import filesystem, object_path

# Where a node keeps its copies when store.cache_dir is null: its own temporary folder, which a
# Ray node (or a container) has to itself.
DEFAULT_CACHE_NAME = "sweep-store-cache"
DEFAULT_CACHE_BYTES = 50 * 10**9
# A copy's "recently used" time is refreshed at most this often by one process: a pack is read
# once per image, and eviction needs minutes of resolution, not a metadata write per image.
TOUCH_SECONDS = 60.0


def default_cache_dir() -> Path:
    return Path(tempfile.gettempdir()) / DEFAULT_CACHE_NAME


class ReadCache:
    """Copies of objects on this node's disk, at most `max_bytes` of them.

    Args:
        folder: The cache's folder on this node; None: the node's temporary folder.
        max_bytes: The most bytes it keeps; an object larger than that is never copied (it is
            read by byte range instead).
    """

    def __init__(self, folder: str | Path | None, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.configured = None if folder is None else str(folder)
        self.max_bytes = int(max_bytes)
        self._ahead: dict[str, Future] = {}
        self._paths: dict[str, Path] = {}  # URL -> its copy's path (url_to_fs is not free)
        self._touched: dict[Path, float] = {}

    def __getstate__(self) -> dict:
        return {"configured": self.configured, "max_bytes": self.max_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._ahead, self._paths, self._touched = {}, {}, {}

    @property
    def folder(self) -> Path:
        """Resolved on the node that reads, not on the driver that configured it."""
        return Path(self.configured) if self.configured else default_cache_dir()

    def path_of(self, url: str) -> Path:
        """Where this node keeps its copy of an object (it mirrors the object's path)."""
        if url not in self._paths:
            self._paths[url] = self.folder / "objects" / object_path(url)
        return self._paths[url]

    def copy_of(self, url: str, size: int | None = None) -> Path | None:
        """The local copy of an object, fetched whole if it is not here; None when the object
        is larger than the whole cache."""
        target = self.path_of(url)
        if target.is_file() and (size is None or target.stat().st_size == size):
            self._touch(target)
            return target
        if size is not None and size > self.max_bytes:
            return None
        fs, path = filesystem(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.part-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            fs.get_file(path, str(partial))
            if size is not None and partial.stat().st_size != size:
                raise OSError(
                    f"{url}: {partial.stat().st_size} bytes read, its manifest says {size}"
                )
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        self.evict(keep=target)
        self._touched[target] = time.monotonic()
        return target

    def _touch(self, target: Path) -> None:
        """Marks a copy recently used (for eviction), at most once a TOUCH_SECONDS."""
        now = time.monotonic()
        if now - self._touched.get(target, -TOUCH_SECONDS) >= TOUCH_SECONDS:
            os.utime(target)
            self._touched[target] = now

    def read_ahead(self, url: str, size: int | None = None) -> None:
        """Starts fetching an object in the background (the next shard of a sequential read)."""
        if url in self._ahead or self.path_of(url).is_file():
            return
        self._ahead[url] = _fetcher().submit(self.copy_of, url, size)

    def evict(self, keep: Path | None = None) -> int:
        """Removes the least recently used copies until the cache fits; returns bytes freed."""
        entries = []
        for path in (self.folder / "objects").rglob("*"):
            try:
                if path.is_file() and ".part-" not in path.name:
                    stat = path.stat()
                    entries.append((stat.st_mtime, stat.st_size, path))
            except FileNotFoundError:  # another process evicted it
                continue
        total = sum(size for _, size, _ in entries)
        freed = 0
        for _, size, path in sorted(entries, key=lambda entry: entry[0]):
            if total - freed <= self.max_bytes:
                break
            if path == keep:
                continue
            path.unlink(missing_ok=True)  # a reader that has it open keeps reading it
            freed += size
        return freed


_FETCHER: list[ThreadPoolExecutor] = []
_FETCHER_LOCK = threading.Lock()


def _fetcher() -> ThreadPoolExecutor:
    """One background thread per process for read-ahead (made after a fork, not before)."""
    with _FETCHER_LOCK:
        if not _FETCHER or _FETCHER[0]._pid != os.getpid():  # type: ignore[attr-defined]
            pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
            pool._pid = os.getpid()  # type: ignore[attr-defined]
            _FETCHER[:] = [pool]
        return _FETCHER[0]
