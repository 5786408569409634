"""What identifies a local weight file in a training key: its name, size and content."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path


@functools.lru_cache(maxsize=16)
def file_digest(path: str, size: int, mtime_ns: int) -> str:
    """SHA-256 prefix of a file's bytes, computed once per (path, size, mtime) in a process."""
    del size, mtime_ns  # part of the cache key only: a rewritten file is read again
    sha = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 22), b""):
            sha.update(chunk)
    return sha.hexdigest()[:16]


def weights_file_identity(path: Path) -> list:
    """[name, size, content digest]: a replaced file, even of the same name and size, gets new
    training keys."""
    stat = path.stat()
    return [
        path.name,
        stat.st_size,
        file_digest(str(path.resolve()), stat.st_size, stat.st_mtime_ns),
    ]
