"""Atomic writes on a local disk: a file or folder renamed into place once it is whole.

A write that finds the disk full (or the quota spent) raises a StoreError that names the
output and says to free space and rerun; its temporary file is removed first.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

from sweep.errors import SweepError

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
