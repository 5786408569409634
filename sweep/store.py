"""The artifact store: one folder per stage output, written atomically, marked DONE last.

    <root>/<stage>/<key>/            a finished output (it holds DONE)
    <root>/<stage>/<key>.tmp-<host>-<pid>-<id>/   an output being written; never read

An output is written into a temporary folder that gets its DONE marker last and is then renamed
into place. A rename is atomic on POSIX file systems, so a reader sees either no output or a
complete one, whenever the writer is killed. A stage whose output exists is skipped.

A write that finds the disk full (or the quota spent) raises a StoreError that names the
output and says to free space and rerun; its temporary folder or file is removed first.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sweep.errors import SweepError

DONE = "DONE"
# Temporary folders older than this belong to writers that died; younger ones may be in use.
STALE_SECONDS = 24 * 3600


# A write that fails for want of space: the disk, or the user's quota on it.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class StoreError(SweepError):
    """The store folder cannot be used; the message names it."""


def disk_full_error(error: BaseException) -> OSError | None:
    """The disk-full OSError behind an error, if any: a stage may have wrapped it (an encode
    names the image it was writing), and the original stays its cause or context."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return error
        error = error.__cause__ or error.__context__
    return None


def disk_full_message(path: Path, error: OSError) -> str:
    """Says which output could not be written, and what to do."""
    target = f" ({error.filename})" if error.filename and str(error.filename) != str(path) else ""
    return (
        f"no space left to write {path}{target}: {error.strerror}. Free space on that disk "
        f"(or raise the quota) and rerun the same command: every finished stage is kept, and "
        f"this output was discarded, not left half-written"
    )


class ArtifactStore:
    """Stage outputs under a local or shared (NFS, Lustre, ...) folder.

    Args:
        root: Folder of the store. On a cluster every node must see it at the same path.
    """

    def __init__(self, root: str | Path) -> None:
        text = str(root)
        if "://" in text:
            raise StoreError(
                f"store '{text}' is a URL: the store needs a file system with atomic renames; "
                f"mount the bucket or share (e.g. NFS) on every node and give its path"
            )
        self.root = Path(root).absolute()

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def is_done(self, stage: str, key: str) -> bool:
        return (self.path(stage, key) / DONE).is_file()

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
            (staging / DONE).write_text(json.dumps({"finished": time.time()}) + "\n")
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

    def read_json(self, stage: str, key: str, name: str) -> dict:
        return json.loads((self.path(stage, key) / name).read_text())

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


def temporary_tag() -> str:
    """Marks a temporary name with its writer: host and process id."""
    return f"tmp-{socket.gethostname().replace('-', '_')}-{os.getpid()}"


def writer_is_dead(name: str) -> bool:
    """True when a temporary name was written by a process of this host that has exited."""
    parts = name.rsplit(".tmp-", 1)[-1].split("-")
    if len(parts) != 3 or parts[0] != socket.gethostname().replace("-", "_"):
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError):
        return False
    return False


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Calls `write` on a temporary file next to `path`, then renames it into place.

    In the same folder the rename is atomic; the name is unique per writer, so concurrent
    writers never clobber each other's partial output, and a failed write leaves nothing.
    """
    path = Path(path)
    staging = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        write(staging)
        os.replace(staging, path)
    except OSError as error:
        if error.errno not in DISK_FULL:
            raise
        raise StoreError(disk_full_message(path, error)) from error
    finally:
        staging.unlink(missing_ok=True)
    return path


def write_text_atomic(path: Path, text: str) -> None:
    atomic_write(path, lambda staging: staging.write_text(text))


def write_json_atomic(path: Path, payload: object) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def replace_folder(staging: Path, final: Path) -> Path:
    """Puts a fully written folder in the place of `final` (a report's subfolder that every
    run rewrites): the old one is renamed aside first and removed after, so that a reader
    sees the old folder or the new one, and a run killed in between leaves both on disk."""
    final = Path(final)
    old = final.with_name(f"{final.name}.old-{temporary_tag()}")
    if final.exists():
        final.rename(old)
    Path(staging).rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final
