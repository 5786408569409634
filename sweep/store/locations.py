"""Where an image's bytes lie: a local path, an object's URL, or a byte range of either (a
packed shard's member, `<path or URL>#bytes=<start>-<stop>`).

Every reader of images (the codecs' decode, the torch Datasets, the distortion measures) reads
through `read_location`, so a file on a local disk, an object on S3 and an image packed in a
shard read alike. An object of a store is read from this node's copy of it (`ReadCache`),
fetched whole on first use; any other object (a dataset's file on S3) is read directly.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

from sweep.store.cache import ReadCache
from sweep.store.objects import filesystem, is_url

RANGE_MARK = "#bytes="
_RANGE = re.compile(r"^(?P<base>.+)#bytes=(?P<start>\d+)-(?P<stop>\d+)$")
# Open files kept per process (os.pread needs no shared position, so forks share them safely).
OPEN_FILES = 64

# URL prefix of a store -> its read cache; each store registers itself where it is built or
# unpickled (the driver, a Ray worker, a loader worker forked from either).
_CACHES: dict[str, ReadCache] = {}
_OPEN: OrderedDict[str, int] = OrderedDict()
_OPEN_LOCK = threading.Lock()


def member(location: str, start: int, size: int) -> str:
    """The location of `size` bytes from `start` of a file or object."""
    return f"{location}{RANGE_MARK}{start}-{start + size}"


def split_location(location: str | Path) -> tuple[str, int, int | None]:
    """(file or URL, first byte, end byte or None for the whole) of a location."""
    text = str(location)
    found = _RANGE.match(text) if RANGE_MARK in text else None
    if found is None:
        return text, 0, None
    return found["base"], int(found["start"]), int(found["stop"])


def register_cache(prefix: str, cache: ReadCache) -> None:
    _CACHES[prefix.rstrip("/") + "/"] = cache


def cache_of(url: str) -> ReadCache | None:
    for prefix, cache in _CACHES.items():
        if url.startswith(prefix):
            return cache
    return None


def join_location(root: str | Path, relpath: str) -> str:
    """A dataset file's location: its root (a folder or a URL) joined with its relative name."""
    text = str(root)
    if is_url(text):
        return text.rstrip("/") + "/" + relpath.lstrip("/")
    return str(Path(text) / relpath)


def size_of(location: str | Path) -> int:
    """The size in bytes of a location (its range, or the whole file or object)."""
    base, start, stop = split_location(location)
    if stop is not None:
        return stop - start
    if not is_url(base):
        return Path(base).stat().st_size
    fs, path = filesystem(base)
    return int(fs.size(path))


def read_location(location: str | Path) -> bytes:
    """The bytes at a location (the whole file, or its range)."""
    base, start, stop = split_location(location)
    if not is_url(base):
        return _read_local(base, start, stop)
    cache = cache_of(base)
    copy = cache.copy_of(base) if cache is not None else None
    if copy is not None:
        return _read_local(str(copy), start, stop)
    fs, path = filesystem(base)
    return fs.cat_file(path, start=start if stop is not None else None, end=stop)


def local_file(location: str | Path) -> Path:
    """A local file holding the whole of a location's file or object (for readers that need a
    path: a memory map, jpeglib); a range is not a file of its own and is refused."""
    base, _, stop = split_location(location)
    if stop is not None:
        raise ValueError(f"{location} is part of a file; read it with read_location")
    if not is_url(base):
        return Path(base)
    cache = cache_of(base)
    copy = cache.copy_of(base) if cache is not None else None
    if copy is None:
        raise OSError(
            f"{base} is not in a store with a read cache large enough to hold it: raise "
            f"store.cache_bytes"
        )
    return copy


def read_ahead(location: str | Path) -> None:
    """Starts fetching the object behind a location, if it is a store's and not here yet."""
    base, _, _ = split_location(location)
    if is_url(base) and (cache := cache_of(base)) is not None:
        cache.read_ahead(base)


def same_object(first: str | Path, second: str | Path) -> bool:
    return split_location(first)[0] == split_location(second)[0]


def _read_local(path: str, start: int, stop: int | None) -> bytes:
    if stop is None:
        return Path(path).read_bytes()
    data = os.pread(_descriptor(path), stop - start, start)
    if len(data) != stop - start:
        end = start + len(data)
        raise OSError(f"{path}: bytes {start}-{stop} asked for, the file ends at {end}")
    return data


def _descriptor(path: str) -> int:
    with _OPEN_LOCK:
        key = f"{os.getpid()}:{path}"
        if key in _OPEN:
            _OPEN.move_to_end(key)
            return _OPEN[key]
        descriptor = os.open(path, os.O_RDONLY)
        _OPEN[key] = descriptor
        while len(_OPEN) > OPEN_FILES:
            os.close(_OPEN.popitem(last=False)[1])
        return descriptor
