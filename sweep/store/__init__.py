"""The artifact store: stage outputs, published whole or not at all, on a local disk
(`local.py`) or object storage (`remote.py`), read through each node's cache (`cache.py`).

`open_store` picks the kind from the root: a URL (s3://, gs://, az://) is an object store, a
path or file:// URL a local folder.
"""

from __future__ import annotations

from pathlib import Path

from sweep.store.atomic import (
    StoreError,
    atomic_write,
    disk_full_error,
    replace_folder,
    temporary_tag,
    write_json_atomic,
    write_text_atomic,
)
from sweep.store.cache import DEFAULT_CACHE_BYTES
from sweep.store.local import ArtifactStore
from sweep.store.manifest import DONE
from sweep.store.objects import is_url
from sweep.store.remote import ObjectStore

__all__ = [
    "DONE",
    "ArtifactStore",
    "ObjectStore",
    "StoreError",
    "atomic_write",
    "disk_full_error",
    "open_store",
    "replace_folder",
    "temporary_tag",
    "write_json_atomic",
    "write_text_atomic",
]


def open_store(
    root: str | Path, cache_dir: str | Path | None = None, cache_bytes: int = DEFAULT_CACHE_BYTES
) -> ArtifactStore:
    """The store at `root`: an ObjectStore for a URL, else a local ArtifactStore."""
    if is_url(root):
        return ObjectStore(root, cache_dir, cache_bytes)
    return ArtifactStore(root, cache_dir, cache_bytes)
