"""Faults beyond kills, each judged as the kills are: finished outputs kept, the end equal to
the uninterrupted reference, nothing half-published.

* lock race: two more drivers start on the results_dir of a running sweep; one without
  lock_wait must exit 75 naming the lock, one with it must wait and then find nothing to do;
  MLflow must hold one parent run.
* server outage: the sweep logs to an `mlflow server` that is killed (its process group) while
  the sweep trains; with tracking.on_unreachable=defer it must finish its stages and exit 69;
  the next run, with the server back, catches the logging up with no duplicate runs.
* disk full: results_dir is a small tmpfs that is filled up once encoding starts; the sweep
  must stop naming the path, publish nothing half-written, and complete once space is freed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from reliability.checks import Outcome, Reference, check_finished
from reliability.processes import SweepRun
from reliability.results_folder import finished_outputs, half_published, stage_progress
from reliability.stage_targets import kill_targets
from reliability.trials import Harness, Trial, poll_until
from sweep.cli import LOCK_HELD
from sweep.tracking.deferred import LOGGING_DEFERRED_EXIT, PENDING_FOLDER

LOCK_RELATIVE = "locks/sweep.lock"


# The faults of this module, by the family of the summary line.
FAULT_FAMILIES = ("lock", "server", "disk")


def run_faults(
    harness: Harness,
    reference: Reference,
    skip: Callable[[str, str], None],
    chosen: tuple[str, ...] = FAULT_FAMILIES,
) -> dict[str, list[Trial]]:
    """The chosen faults of this module: {family: [trial]}; a fault that cannot run here is
    skipped (`skip(family, why)`)."""
    trials = {}
    if "lock" in chosen:
        trials["lock"] = [lock_race(harness, reference)]
    if "server" in chosen:
        trials["server"] = [server_outage(harness, reference)]
    why = tmpfs_unavailable()
    if why and "disk" in chosen:
        skip("disk", why)
    elif "disk" in chosen:
        trials["disk"] = [disk_full(harness, reference)]
    for family in ("node", "s3"):
        skip(family, "not written yet")
    return trials


def any_stage_running(store: Path, kinds: tuple[str, ...]) -> Callable[[], bool]:
    """Whether an output of one of the kinds is being written."""

    def running() -> bool:
        return any(writing for writing, _ in stage_progress(store, kinds).values())

    return running


def lock_race(harness: Harness, reference: Reference) -> Trial:
    started = time.monotonic()
    results_dir = harness.workdir / "lock-race"
    first = harness.start(results_dir)
    store = results_dir / "store"
    poll_until(first, any_stage_running(store, ("train",)), harness.timeout)
    outcome = Outcome()
    # One that may not wait, one that waits: both after the first holds the lock.
    refused = SweepRun(harness.argv(results_dir), harness.logs / "lock-race-refused")
    waiting = SweepRun(harness.argv(results_dir, "lock_wait=600"), harness.logs / "lock-race-wait")
    code, _ = refused.wait(harness.timeout)
    stderr = refused.stderr_path.read_text(errors="replace")
    if code != LOCK_HELD:
        outcome.problems.append(
            f"the second driver exited {code}, not {LOCK_HELD}: {stderr[-600:]}"
        )
    elif LOCK_RELATIVE not in stderr or "Traceback" in stderr:
        outcome.problems.append(f"the second driver's message names no lock: {stderr[-600:]}")
    if waiting.exited() and not first.exited():
        outcome.problems.append("the waiting driver ended while the first still ran")
    first_code, leaked = first.wait(harness.timeout)
    harness.active = None
    before = finished_outputs(store)
    waited_code, waited_leaks = waiting.wait(harness.timeout)
    end = check_finished(results_dir, reference, before, first_code, leaked, first.stderr_tail)
    outcome.problems += end.problems
    outcome.lost, outcome.crashed = end.lost, end.crashed
    if waited_code != 0:
        outcome.problems.append(f"the waiting driver exited {waited_code}: {waiting.stderr_tail()}")
    if waited_leaks:
        outcome.problems.append(f"processes outlived the waiting driver: {waited_leaks}")
    said = waiting.stdout_path.read_text(errors="replace") + waiting.stderr_tail(100_000)
    if "waiting up to" not in said:
        outcome.problems.append("the waiting driver never said that it waits for the lock")
    note = (
        f"second driver exited {code} in {refused.seconds():.1f} s, the waiting one {waited_code} "
        f"after {waiting.seconds():.1f} s (first sweep {first.seconds():.1f} s)"
    )
    return Trial("lock-race", outcome, time.monotonic() - started, note)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class TrackingServer:
    """`mlflow server` on loopback with a sqlite backend, in its own process group (so that
    its workers die with it: MLflow 3's job consumers outlive a SIGTERM to the server)."""

    def __init__(self, root: Path, log: Path) -> None:
        self.root = root
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> Path:
        return self.root / "mlflow.db"

    def start(self, timeout: float = 120) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
            f"sqlite:///{self.database}", "--artifacts-destination", str(self.root / "artifacts"),
            "--workers", "1", "--host", "127.0.0.1", "--port", str(self.port),
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mlflow server did not start: see {self.log}")
            time.sleep(0.5)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """SIGKILLs the server's whole process group (a server that dies, not one that stops)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None


def server_outage(harness: Harness, reference: Reference) -> Trial:
    started = time.monotonic()
    results_dir = harness.workdir / "server-outage"
    store = results_dir / "store"
    server = TrackingServer(harness.workdir / "mlflow-server", harness.logs / "mlflow-server.log")
    extra = (f"tracking.uri={server.url}", "tracking.on_unreachable=defer")
    outcome = Outcome()
    try:
        server.start()
        run = harness.start(results_dir, *extra)
        landed = poll_until(run, any_stage_running(store, ("train",)), harness.timeout)
        at = run.seconds()
        server.stop()
        before = finished_outputs(store)
        code, leaked = run.wait(harness.timeout)
        harness.active = None
        if not landed:
            outcome.problems.append("no training was seen running before the sweep ended")
        if code != LOGGING_DEFERRED_EXIT:
            outcome.problems.append(
                f"exit code {code}, not {LOGGING_DEFERRED_EXIT}: {run.stderr_tail()}"
            )
        pending = sorted((results_dir / PENDING_FOLDER).glob("*.json"))
        if len(pending) != 1:
            outcome.problems.append(f"{len(pending)} deferred-logging markers, not 1")
        server.start()
        rerun, rerun_code, rerun_leaked = harness.run(results_dir, *extra, log="server-rerun")
        end = check_finished(results_dir, reference, before, rerun_code, rerun_leaked,
                             rerun.stderr_tail, server.database)  # fmt: skip
    finally:
        server.stop()
    outcome.problems += end.problems + ([f"leaked processes {leaked}"] if leaked else [])
    outcome.lost, outcome.crashed = end.lost, end.crashed
    if list((results_dir / PENDING_FOLDER).glob("*.json")):
        outcome.problems.append("the rerun left its deferred-logging marker")
    note = (
        f"server killed {at:.1f} s into the sweep, which exited {code} in "
        f"{run.seconds():.1f} s; the rerun with the server back exited {rerun_code} in "
        f"{rerun.seconds():.1f} s"
    )
    return Trial("server-outage", outcome, time.monotonic() - started, note)


# The disk-full fault's file system: room for a whole sweep (its models are most of it).
TMPFS_SIZE = "256m"
# Bytes left free before the sweep starts: enough for its validation and MLflow database.
PREFILL_LEAVES = 16 << 20


def tmpfs_unavailable() -> str:
    """Why a tmpfs cannot be mounted here ("" when it can)."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "no mount command"
    return ""


@contextlib.contextmanager
def small_disk(path: Path):
    """A tmpfs of TMPFS_SIZE mounted at path for the body."""
    path.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(path)]
    subprocess.run(mount, check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(disk: Path, leave: int = 0) -> int:
    """Takes the disk's free bytes but `leave` (filler files); returns the bytes written."""
    written = 0
    for index, size in enumerate((1 << 20, 1 << 10)):  # megabytes, then the last kilobytes
        block = b"\0" * size
        with contextlib.suppress(OSError), (disk / f"filler-{leave}-{index}").open("ab") as out:
            while shutil.disk_usage(disk).free - size >= leave:
                written += out.write(block)
                out.flush()
    return written


def disk_full(harness: Harness, reference: Reference) -> Trial:
    disk = harness.workdir / "disk-full"
    try:
        with small_disk(disk):
            return fill_mid_sweep(harness, reference, disk)
    except subprocess.CalledProcessError as error:
        why = f"cannot mount a tmpfs at {disk}: {error.stderr.decode(errors='replace')}"
        return Trial("disk-full", Outcome([why]), 0.0, "")


def fill_mid_sweep(harness: Harness, reference: Reference, disk: Path) -> Trial:
    """The sweep on the small disk, filled once encoding starts; the rerun once it is freed."""
    started = time.monotonic()
    results_dir = disk / "results"
    store = results_dir / "store"
    outcome = Outcome()
    # Most of the disk is taken before the start, the rest once encoding starts (at once).
    filled = fill(disk, leave=PREFILL_LEAVES)
    run = harness.start(results_dir, log="disk-full")
    encoding = any_stage_running(store, ("encode",))
    landed = poll_until(run, encoding, harness.timeout, harness.poll)
    at = run.seconds()
    filled += fill(disk)
    where = progress_note(stage_progress(store, kill_targets()))
    code, leaked = run.wait(harness.timeout)
    harness.active = None
    stderr = run.stderr_path.read_text(errors="replace")
    before = finished_outputs(store)
    if not landed:
        outcome.problems.append("no encode was seen running before the sweep ended")
    if code == 0:
        outcome.problems.append("the sweep succeeded on a full disk")
    elif not reported_itself(stderr):
        outcome.crashed = True
        outcome.problems.append(f"a traceback, not a message: {stderr[-1200:]}")
    elif "No space left" not in stderr or str(disk) not in stderr:
        outcome.problems.append(f"the message names no full disk and path: {stderr[-800:]}")
    broken = half_published(store)
    if broken:
        outcome.problems.append(f"half-written outputs published: {broken[:5]}")
    for filler in disk.glob("filler-*"):
        filler.unlink()
    rerun, rerun_code, rerun_leaked = harness.run(results_dir, log="disk-full-rerun")
    end = check_finished(results_dir, reference, before, rerun_code, rerun_leaked,
                         rerun.stderr_tail)  # fmt: skip
    outcome.problems += end.problems + ([f"leaked processes {leaked}"] if leaked else [])
    outcome.lost, outcome.crashed = end.lost, outcome.crashed or end.crashed
    lines = stderr.splitlines()
    message = next((line for line in lines if str(disk) in line and "No space" in line), "")
    note = (
        f"filled {filled >> 20} MiB at {at:.1f} s ({where}); exited {code}: "
        f"{message.strip()[:200]}; rerun after freeing it exited {rerun_code}"
    )
    return Trial("disk-full", outcome, time.monotonic() - started, note)


def reported_itself(stderr: str) -> bool:
    """Whether the sweep ended on its own message ("error: ..." from sweep/cli.py) rather than
    on an uncaught traceback. Tracebacks before that message are logged ones: Python's
    "--- Logging error ---" (a log file on the full disk) and MLflow's own report of the
    sqlite database it could not write."""
    text = without_logging_errors(stderr)
    message = text.rfind("\nerror: ")
    return message >= 0 and text.rfind("Traceback (most recent call last)") < message


def without_logging_errors(stderr: str) -> str:
    """stderr less the "--- Logging error ---" reports of Python's logging (a log file on the
    full disk cannot be flushed; the sweep's own message is elsewhere in stderr)."""
    kept, inside = [], False
    for line in stderr.splitlines():
        if line.startswith("--- Logging error ---"):
            inside = True
        elif inside and line.startswith("Arguments: "):
            inside = False
        elif not inside:
            kept.append(line)
    return "\n".join(kept)


def progress_note(progress: dict[str, tuple[int, int]]) -> str:
    return ", ".join(f"{kind} {done} done/{writing} writing" for kind, (writing, done) in
                     progress.items() if writing or done)  # fmt: skip
