"""One driver per results_dir at a time: an OS file lock held for a whole run.

Two drivers on one results_dir would run the same stages twice, redraw the same comparison
folders, write the same MLflow database and could each create the sweep's parent run. Every
`python -m sweep` run therefore holds `<results_dir>/locks/sweep.lock` (`fcntl.flock`) from
before its first stage to its end. The OS releases the lock when the holder's process ends,
however it ends (SIGKILL, power cut on the holder's host with NFS's lock recovery), so a lock
is never stale and never needs deleting. The holder writes its pid, host, start time and
command into the file, and a driver that finds the lock taken names them.

Why the whole results_dir and not one sweep's key: the key is known only after screening (and,
for a codec tuned to a sensitivity map, after training a classifier), and besides the
content-keyed store (safe for concurrent writers) a results_dir holds files that every sweep of
it rewrites: the MLflow database of `tracking=local`, the comparison folders, the nightly
snapshots and the deferred-logging markers. Sweeps of one results_dir therefore run one after
the other; `lock_wait` makes the second wait for the first.

The lock is re-entrant within a process (a nightly run holds it around the sweep it runs).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sweep.errors import SweepError
from sweep.store import StoreError

log = logging.getLogger(__name__)

LOCK_FOLDER = "locks"
LOCK_NAME = "sweep.lock"
# How often a waiting driver tries the lock again.
POLL_SECONDS = 0.5
# The locks this process holds, with how many times each is entered (re-entrant).
_held: dict[Path, int] = {}


class LockHeldError(SweepError):
    """Another driver holds the results_dir's lock; the message names the lock file and its
    holder (pid, host, start time, command)."""


def lock_path(results_dir: Path) -> Path:
    return Path(results_dir).absolute() / LOCK_FOLDER / LOCK_NAME


@contextmanager
def results_dir_lock(results_dir: Path, wait_seconds: float = 0.0) -> Iterator[Path]:
    """Holds the results_dir's lock for the body; yields the lock file's path.

    Args:
        results_dir: The folder whose runs exclude each other.
        wait_seconds: How long to wait for a driver that holds the lock (0: not at all).

    Raises:
        LockHeldError: The lock is still held after `wait_seconds`.
        StoreError: The folder's file system cannot lock (e.g. Lustre without `-o flock`).
    """
    path = lock_path(results_dir)
    if path in _held:  # this process holds it already
        _held[path] += 1
        try:
            yield path
        finally:
            _held[path] -= 1
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise StoreError(f"cannot open the lock file {path} ({error.strerror})") from None
    try:
        acquire(descriptor, path, wait_seconds)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, (json.dumps(holder_record()) + "\n").encode(), 0)
        _held[path] = 1
        try:
            yield path
        finally:
            del _held[path]
            os.ftruncate(descriptor, 0)  # still held: nobody reads a finished holder
    finally:
        os.close(descriptor)  # releases the lock


def acquire(descriptor: int, path: Path, wait_seconds: float) -> None:
    """Takes the lock, trying again every POLL_SECONDS for up to `wait_seconds`."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    announced = False
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as error:  # ENOLCK: NFS without lockd, Lustre without -o flock
            raise StoreError(
                f"cannot lock {path} ({error.strerror}): results_dir's file system must "
                f"support file locks (NFS: run lockd / mount without 'nolock'; Lustre: mount "
                f"with -o flock)"
            ) from None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            waited = f" after waiting {wait_seconds:g} s" if wait_seconds > 0 else ""
            raise LockHeldError(
                f"another sweep driver is running on results_dir {path.parent.parent}"
                f"{waited}: {describe_holder(path)}; lock file {path}. Two drivers on one "
                f"results_dir would run the same stages twice and could log duplicate MLflow "
                f"runs: wait for it to finish, set lock_wait=SECONDS to wait for it, or give "
                f"this sweep another results_dir"
            )
        if not announced:
            log.warning(
                "waiting up to %g s for the driver holding %s: %s",
                wait_seconds,
                path,
                describe_holder(path),
            )
            announced = True
        time.sleep(min(POLL_SECONDS, remaining))


def holder_record() -> dict:
    """What a waiting driver is told about the holder."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }


def read_holder(path: Path) -> dict | None:
    """The holder's record, or None while it is being written (or by an older version)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def describe_holder(path: Path) -> str:
    holder = read_holder(path)
    if not holder:
        return "held by a process that has not said who it is yet"
    return (
        f"held by pid {holder.get('pid')} on host {holder.get('host')} since "
        f"{holder.get('started')} ({holder.get('command')})"
    )
