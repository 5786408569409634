"""The artifact store on a local or shared (NFS, Lustre, ...) disk: one folder per stage
output, written in a temporary folder, given its DONE manifest last and renamed into place.

    <root>/<stage>/<key>/                          a finished output (it holds DONE)
    <root>/<stage>/<key>.tmp-<host>-<pid>-<id>/    an output being written; never read

A rename is atomic on POSIX file systems, so a reader sees either no output or a complete one,
whenever the writer is killed. A stage whose output exists is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sweep.store.atomic import (
    StoreError,
    disk_full_error,
    disk_full_message,
    temporary_tag,
    writer_is_dead,
)
from sweep.store.cache import DEFAULT_CACHE_BYTES
from sweep.store.manifest import DONE, Manifest, manifest_of
from sweep.store.objects import is_url, local_path

# Temporary folders older than this belong to writers that died; younger ones may be in use.
STALE_SECONDS = 24 * 3600


class ArtifactStore:
    """Stage outputs under a local or shared folder (`open_store` picks `ObjectStore` for a
    URL).

    Args:
        root: Folder of the store. On a cluster every node must see it at the same path.
        cache_dir: Unused on a local disk (its files are read in place).
        cache_bytes: Unused on a local disk.
    """

    remote = False

    def __init__(
        self,
        root: str | Path,
        cache_dir: str | Path | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        if is_url(root):
            raise StoreError(f"store '{root}' is a URL: open it with sweep.store.open_store")
        self.root = local_path(root)
        del cache_dir, cache_bytes

    @property
    def url(self) -> str:
        return str(self.root)

    @property
    def local_dir(self) -> Path:
        """This node's folder for what the store keeps beside its outputs (file digests)."""
        return self.root

    def path(self, stage: str, key: str) -> Path:
        """The local folder of an output (only a finished one holds DONE)."""
        return self.root / stage / key

    def file(self, stage: str, key: str, name: str) -> Path:
        """A local file of a finished output."""
        return self.path(stage, key) / name

    def location(self, stage: str, key: str, name: str) -> str:
        """Where any node reads a file of a finished output (`sweep.store.locations`)."""
        return str(self.file(stage, key, name))

    def has_file(self, stage: str, key: str, name: str) -> bool:
        """Whether a finished output holds a file (an output of an older schema may not)."""
        return self.file(stage, key, name).is_file()

    def is_done(self, stage: str, key: str) -> bool:
        return (self.path(stage, key) / DONE).is_file()

    def manifest(self, stage: str, key: str) -> Manifest:
        return Manifest.from_json((self.path(stage, key) / DONE).read_text())

    def read_json(self, stage: str, key: str, name: str) -> dict:
        return json.loads(self.file(stage, key, name).read_text())

    @contextmanager
    def writing(self, stage: str, key: str) -> Iterator[Path]:
        """Yields a temporary folder; on a clean exit it becomes the stage output.

        On an exception the temporary folder is removed and nothing is published. If another
        writer published the same key first, its output is kept (keys are content addresses,
        so both hold the same result) and this one is discarded.
        """
        final = self.path(stage, key)
        staging = final.with_name(f"{final.name}.{temporary_tag()}-{uuid.uuid4().hex[:8]}")
        try:
            staging.mkdir(parents=True)
            yield staging
            (staging / DONE).write_text(manifest_of(staging, payload="").to_json())
            self._publish(staging, final)
        except Exception as error:
            full = disk_full_error(error)
            if full is None:
                raise
            raise StoreError(disk_full_message(final, full)) from error
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _publish(self, staging: Path, final: Path) -> None:
        if final.exists() and not (final / DONE).is_file():
            # Not written by this store (renames are atomic): keep it aside rather than lose it.
            final.rename(final.with_name(f"{final.name}.incomplete-{uuid.uuid4().hex[:8]}"))
        try:
            os.rename(staging, final)
        except OSError:
            if not (final / DONE).is_file():
                raise

    def remove_stale_temporaries(self, max_age_seconds: float = STALE_SECONDS) -> int:
        """Deletes temporary folders of writers that died; returns how many.

        A writer on this host is known dead when its process is gone; one on another host
        (a cluster node) only once its folder is older than max_age_seconds.
        """
        removed = 0
        now = time.time()
        for staging in [*self.root.glob("*/*.tmp-*"), *self.root.glob("*/*/*.tmp-*")]:
            try:
                age = now - staging.stat().st_mtime
            except FileNotFoundError:  # its writer published it meanwhile
                continue
            if writer_is_dead(staging.name) or age > max_age_seconds:
                shutil.rmtree(staging, ignore_errors=True)
                removed += 1
        return removed

    def check_writable(self) -> None:
        """Raises StoreError naming the folder if outputs cannot be written there."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{uuid.uuid4().hex[:8]}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as error:
            raise StoreError(
                f"cannot write to {self.root} ({error.strerror}): set results_dir to a "
                f"writable folder"
            ) from None
