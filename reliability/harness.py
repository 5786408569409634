"""Kills sweeps mid-run and checks that every rerun ends with the reference's results.

A trial starts `python -m sweep` in its own session, waits until a target stage (encode, train
or evaluate) is in progress and then either SIGKILLs the driver and every process of its
session (Ray's GCS, raylet and workers) and reruns the command, or SIGKILLs the one Ray worker
running a task of that stage and lets the sweep retry it. Either way the finished sweep must
match an uninterrupted reference run: the same results.csv, quarantine.csv and conversions.csv
bytes, every stage output that was finished at the kill still in place and untouched, no
temporary folder left in the store, and one MLflow parent run with one child per trained model.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reliability.corpus import CONVERTED, QUARANTINED

REPO = Path(__file__).resolve().parent.parent
STAGES = ("encode", "train", "evaluate")
# Ray names a worker's process after the task it runs ("ray::IDLE" between tasks).
TASK_TITLES = {
    "encode": "ray::encode_shard",
    "train": "ray::train_stage",
    "evaluate": "ray::evaluate_stage",
}
EXPERIMENT = "sweep-imagefolder"
TRAIN_SETTINGS = ("original", "2", "8")
TEST_SETTINGS = ("original", "8")
REPORT_FILES = ("results.csv", "quarantine.csv", "conversions.csv")
# The codec comparison folders beside the sweep's report (see sweep/compare.py).
COMPARE_PREFIX = "compare_"
# Stage outputs in the store: <stage>/<key>/ or, for encode shards, encode-shards/<key>/<range>/.
STORE_PATTERNS = {
    "encode": ("encode-shards/*/*", "encode/*"),
    "train": ("train/*",),
    "evaluate": ("evaluate/*",),
}
POLL_SECONDS = 0.02
MAX_DELAY_SECONDS = 1.5
# Ray's processes exit within a second of the driver; anything still there after this leaked.
EXIT_GRACE_SECONDS = 15.0


def sweep_argv(corpus: Path, results_dir: Path, epochs: int, *extra: str) -> list[str]:
    """The sweep command of every run: a 3 x 2 grid of a tiny model on a local 2-CPU Ray."""
    return [
        sys.executable,
        "-m",
        "sweep",
        "task=imagefolder",
        f"task.root={corpus}",
        f"results_dir={results_dir}",
        "cluster=local",
        "cluster.num_cpus=2",
        "model=swav_tiny",
        "model.image_size=64",
        f"train.epochs={epochs}",
        "train.batch_size=8",
        f"grid.train=[{','.join(TRAIN_SETTINGS)}]",
        f"grid.test=[{','.join(TEST_SETTINGS)}]",
        "progress=false",
        *extra,
    ]


def sweep_env() -> dict[str, str]:
    """This interpreter's environment with the repository importable (no install needed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


# ----------------------------------------------------------------------------------------------
# Processes


@dataclass(frozen=True)
class Proc:
    """One process from /proc/<pid>/stat; (pid, start) names it even after pid reuse."""

    pid: int
    ppid: int
    pgid: int
    sid: int
    state: str
    start: int

    @property
    def ident(self) -> tuple[int, int]:
        return self.pid, self.start


def read_proc(pid: int) -> Proc | None:
    """The process's stat fields, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), fields[0], int(fields[19]))


def list_processes() -> dict[int, Proc]:
    processes = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            proc = read_proc(int(entry.name))
            if proc is not None:
                processes[proc.pid] = proc
    return processes


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def is_running(ident: tuple[int, int]) -> bool:
    """Whether that very process still runs; a zombie has finished (its parent reaps it)."""
    proc = read_proc(ident[0])
    return proc is not None and proc.start == ident[1] and proc.state not in ("Z", "X")


class SweepRun:
    """One `python -m sweep` in a new session, with every process it starts tracked.

    The driver leads its own session and process group, which Ray's processes inherit. A
    process that left the group would still be a descendant of the driver while the driver
    lives, so the tree is sampled at every poll: after the kill, orphans are reparented and
    the tree no longer shows them.

    Args:
        argv: The command.
        log_prefix: Its stdout and stderr go to <log_prefix>.out and <log_prefix>.err.
    """

    def __init__(self, argv: list[str], log_prefix: Path) -> None:
        self.stdout_path = log_prefix.with_suffix(".out")
        self.stderr_path = log_prefix.with_suffix(".err")
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            # Files, not pipes: nobody reads a pipe while we wait, and a full one blocks Ray.
            self.process = subprocess.Popen(
                argv, cwd=REPO, env=sweep_env(), stdout=out, stderr=err, start_new_session=True
            )
        self.started = time.monotonic()
        self.group = self.process.pid
        driver = read_proc(self.process.pid)
        self.known: set[tuple[int, int]] = {driver.ident} if driver else set()

    def family(self) -> dict[int, Proc]:
        """The live processes of this sweep: its group, its session, the driver's descendants."""
        processes = list_processes()
        children: dict[int, list[int]] = {}
        for proc in processes.values():
            children.setdefault(proc.ppid, []).append(proc.pid)
        members = {
            pid
            for pid, proc in processes.items()
            if self.group in (proc.pgid, proc.sid) or proc.ident in self.known
        }
        stack = list(members)
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in members:
                    members.add(child)
                    stack.append(child)
        family = {pid: processes[pid] for pid in members if processes[pid].state not in ("Z", "X")}
        self.known |= {proc.ident for proc in family.values()}
        return family

    def exited(self) -> bool:
        return self.process.poll() is not None

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def survivors(self) -> list[int]:
        alive = {ident for ident in self.known if is_running(ident)}
        return sorted({pid for pid, _ in alive} | set(self.family()))

    def kill(self) -> list[int]:
        """SIGKILLs the driver, then its process group and every tracked process until none runs.

        Returns:
            The processes still running after EXIT_GRACE_SECONDS (should be none).
        """
        self.family()
        if not self.exited():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return self.reap(kill=True)

    def reap(self, kill: bool) -> list[int]:
        """Waits until no process of the sweep runs, SIGKILLing them when kill is set.

        Without kill, the survivors get EXIT_GRACE_SECONDS to exit on their own first (Ray
        stops its processes on a clean shutdown); those still there are killed and returned.
        """
        deadline = time.monotonic() + EXIT_GRACE_SECONDS
        leaked: list[int] = []
        while survivors := self.survivors():
            if kill or time.monotonic() > deadline:
                if not kill:
                    leaked = survivors
                    kill = True
                try:
                    os.killpg(self.group, signal.SIGKILL)
                except ProcessLookupError:
                    pass  # the group is empty; tracked processes may have left it
                for pid in survivors:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                if time.monotonic() > deadline + EXIT_GRACE_SECONDS:
                    return survivors
            time.sleep(0.05)
        return leaked

    def wait(self, timeout: float) -> tuple[int, list[int]]:
        """Waits for the sweep to exit on its own (killing it after timeout seconds).

        Returns:
            The exit code (-9 when it had to be killed) and the processes that outlived it.
        """
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() > deadline:
                self.kill()
                return -signal.SIGKILL, []
            self.family()
            time.sleep(0.2)
        return self.process.returncode, self.reap(kill=False)

    def stderr_tail(self, chars: int = 1500) -> str:
        return self.stderr_path.read_text(errors="replace")[-chars:]


# ----------------------------------------------------------------------------------------------
# The store


def stage_progress(store: Path) -> dict[str, tuple[int, int]]:
    """Per stage: (outputs being written, outputs finished)."""
    progress = {}
    for stage, patterns in STORE_PATTERNS.items():
        writing = done = 0
        for pattern in patterns:
            for path in store.glob(pattern):
                if ".tmp-" in path.name:
                    writing += 1
                elif (path / "DONE").is_file():
                    done += 1
        progress[stage] = (writing, done)
    return progress


def describe_progress(progress: dict[str, tuple[int, int]]) -> str:
    return ", ".join(
        f"{stage} {done} done/{writing} writing" for stage, (writing, done) in progress.items()
    )


def finished_outputs(store: Path) -> dict[str, tuple[int, int]]:
    """Every finished stage output (a folder holding DONE): (folder mtime, DONE mtime) in ns."""
    outputs = {}
    for done in store.rglob("DONE"):
        folder = done.parent
        relative = folder.relative_to(store)
        if any(".tmp-" in part for part in relative.parts):
            continue  # DONE is written just before the rename: not published yet
        try:
            outputs[str(relative)] = (folder.stat().st_mtime_ns, done.stat().st_mtime_ns)
        except FileNotFoundError:
            continue
    return outputs


def stage_writers(store: Path, stage: str) -> set[int]:
    """Processes writing an output of the stage: a temporary folder is named
    <key>.tmp-<host>-<pid>-<id> after its writer (see sweep.store.temporary_tag)."""
    writers = set()
    for pattern in STORE_PATTERNS[stage]:
        for path in store.glob(pattern):
            parts = path.name.rsplit(".tmp-", 1)[-1].split("-") if ".tmp-" in path.name else []
            if len(parts) == 3 and parts[1].isdigit():
                writers.add(int(parts[1]))
    return writers


def temporaries(store: Path) -> list[str]:
    return sorted(str(path.relative_to(store)) for path in store.rglob("*.tmp-*"))


# ----------------------------------------------------------------------------------------------
# Checks


@dataclass
class Reference:
    """What every run must reproduce: the report files of the uninterrupted sweep."""

    files: dict[str, bytes | None]
    seconds: float


def report_folder(results_dir: Path) -> Path | None:
    folders = [
        f
        for f in sorted((results_dir / "reports").glob("*/"))
        if not f.name.startswith(COMPARE_PREFIX)
    ]
    return folders[0] if len(folders) == 1 else None


def report_files(results_dir: Path) -> dict[str, bytes | None]:
    folder = report_folder(results_dir)
    if folder is None:
        return dict.fromkeys(REPORT_FILES)
    return {name: _read(folder / name) for name in REPORT_FILES}


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def mlflow_runs(results_dir: Path) -> tuple[int, int]:
    """(parent runs, child runs) of the sweep's experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{results_dir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return 0, 0
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    children = sum("mlflow.parentRunId" in run.data.tags for run in runs)
    return sum("sweep.key" in run.data.tags for run in runs), children


@dataclass
class Outcome:
    """The verdict of one trial."""

    problems: list[str] = field(default_factory=list)
    lost: int = 0
    crashed: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and not self.lost and not self.crashed


def check_finished(
    results_dir: Path,
    reference: Reference,
    before: dict[str, tuple[int, int]],
    returncode: int,
    leaked: list[int],
    stderr: Callable[[], str],
) -> Outcome:
    """Checks a finished sweep against the reference and the outputs finished at the kill."""
    outcome = Outcome()
    if returncode != 0:
        outcome.crashed = True
        outcome.problems.append(f"exit code {returncode}: {stderr()}")
        return outcome
    if leaked:
        outcome.problems.append(f"processes outlived the sweep: {leaked}")
    files = report_files(results_dir)
    for name in REPORT_FILES:
        if files[name] != reference.files[name]:
            outcome.problems.append(f"{name} differs from the reference's")
    store = results_dir / "store"
    after = finished_outputs(store)
    for output, stamps in sorted(before.items()):
        if output not in after:
            outcome.lost += 1
            outcome.problems.append(f"lost: {output} is gone")
        elif after[output] != stamps:
            outcome.lost += 1
            outcome.problems.append(f"lost: {output} was rewritten")
    left = temporaries(store)
    if left:
        outcome.problems.append(f"temporary folders left in the store: {left[:5]}")
    parents, children = mlflow_runs(results_dir)
    if (parents, children) != (1, len(TRAIN_SETTINGS)):
        outcome.problems.append(
            f"MLflow holds {parents} parent and {children} child runs, "
            f"not 1 and {len(TRAIN_SETTINGS)}"
        )
    return outcome


def split_kinds(text: str) -> set[str]:
    return {kind for kind in re.split(r"[;,|\s]+", text) if kind}


def read_csv_rows(data: bytes | None) -> list[dict[str, str]] | None:
    import csv
    import io

    if data is None:
        return None
    return list(csv.DictReader(io.StringIO(data.decode())))


def check_policy(reference: Reference, expected: dict[str, str]) -> list[str]:
    """Whether the reference's quarantine.csv and conversions.csv list exactly the bad files."""
    problems = []
    want_out = {path for path, outcome in expected.items() if outcome.startswith(QUARANTINED)}
    want_kinds = {
        path: outcome.split(":", 1)[1]
        for path, outcome in expected.items()
        if outcome.startswith(CONVERTED)
    }
    quarantine = read_csv_rows(reference.files["quarantine.csv"])
    conversions = read_csv_rows(reference.files["conversions.csv"])
    if quarantine is None or conversions is None:
        return ["the report has no quarantine.csv or conversions.csv"]
    listed_out = {row["path"] for row in quarantine}
    for path in sorted(want_out - listed_out):
        problems.append(f"not quarantined: {path} ({expected[path]})")
    for path in sorted(listed_out - want_out):
        problems.append(f"quarantined but readable: {path}")
    listed_kinds = {row["path"]: split_kinds(row["kinds"]) for row in conversions}
    for path, kind in sorted(want_kinds.items()):
        if path not in listed_kinds:
            problems.append(f"not in conversions.csv: {path} ({kind})")
        elif kind not in listed_kinds[path]:
            problems.append(
                f"conversions.csv gives {path} kinds {sorted(listed_kinds[path])}, not {kind}"
            )
    ordinary = sorted(set(listed_kinds) - set(want_kinds))
    if ordinary:
        problems.append(f"ordinary images listed as converted: {ordinary[:5]}")
    for row in quarantine + conversions:
        if row["split"] != row["path"].split("/", 1)[0]:
            problems.append(f"{row['path']} is listed under split {row['split']}")
    return problems


# ----------------------------------------------------------------------------------------------
# Trials


def say(message: str) -> None:
    print(message, flush=True)


def poll_until(run: SweepRun, condition: Callable[[], bool], timeout: float) -> bool:
    """Polls condition (tracking the sweep's processes) until it holds, the run exits or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not run.exited():
        run.family()
        if condition():
            return True
        time.sleep(POLL_SECONDS)
    return False


def stage_started(store: Path, stage: str) -> Callable[[], bool]:
    def started() -> bool:
        writing, done = stage_progress(store)[stage]
        return writing + done > 0

    return started


@dataclass
class Trial:
    """What one kill trial did and how it ended."""

    name: str
    outcome: Outcome
    seconds: float
    note: str


class Harness:
    """Runs the reference sweep and the trials in a work folder.

    Args:
        workdir: Where the corpus, the results folders and the logs go.
        epochs: Training epochs of every sweep.
        timeout: Seconds any one sweep may take before it counts as hung.
        seed: Seed of the target order and the kill delays.
    """

    def __init__(self, workdir: Path, epochs: int, timeout: float, seed: int) -> None:
        self.workdir = workdir
        self.corpus = workdir / "corpus"
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.epochs = epochs
        self.timeout = timeout
        self.rng = random.Random(seed)
        self.active: SweepRun | None = None

    def start(self, results_dir: Path, *extra: str) -> SweepRun:
        argv = sweep_argv(self.corpus, results_dir, self.epochs, *extra)
        self.active = SweepRun(argv, self.logs / results_dir.name)
        return self.active

    def run(self, results_dir: Path, *extra: str) -> tuple[SweepRun, int, list[int]]:
        run = self.start(results_dir, *extra)
        code, leaked = run.wait(self.timeout)
        self.active = None
        return run, code, leaked

    def abort(self) -> None:
        """Kills the sweep in flight, if any (the harness itself was interrupted)."""
        if self.active is not None and not self.active.exited():
            self.active.kill()

    def reference(self) -> tuple[Reference | None, str]:
        run, code, leaked = self.run(self.workdir / "reference")
        if code != 0:
            return None, f"exit code {code}: {run.stderr_tail()}"
        files = report_files(self.workdir / "reference")
        if files["results.csv"] is None:
            return None, "no results.csv"
        note = f"leaked processes {leaked}" if leaked else ""
        return Reference(files, run.seconds()), note

    def fail_fast(self, expected: dict[str, str]) -> tuple[bool, bool, str]:
        """The sweep with data.on_error=fail: (stopped as it should, crashed, note)."""
        run, code, _ = self.run(self.workdir / "on-error-fail", "data.on_error=fail")
        stderr = run.stderr_path.read_text(errors="replace")
        named = [p for p, o in expected.items() if o.startswith(QUARANTINED) and p in stderr]
        crashed = "Traceback (most recent call last)" in stderr or code not in (0, 1)
        if code == 0:
            return False, False, "exit code 0: the bad files did not stop the sweep"
        if not named:
            return False, crashed, f"exit code {code}, no bad file named: {stderr[-800:]}"
        line = next((line for line in stderr.splitlines() if named[0] in line), "")
        return (
            not crashed,
            crashed,
            f"exit code {code}, {run.seconds():.1f} s: {line.strip()[:160]}",
        )

    def driver_kill(self, index: int, target: str, reference: Reference) -> Trial:
        """Kills the driver and its processes while target runs, then reruns to the end."""
        started = time.monotonic()
        results_dir = self.workdir / f"kill-{index:02d}-{target}"
        for attempt in range(2):
            run = self.start(results_dir)
            store = results_dir / "store"
            poll_until(run, stage_started(store, target), self.timeout)
            # A second attempt kills at once: the first one's delay outlasted the sweep.
            delay = self.rng.uniform(0, MAX_DELAY_SECONDS) if attempt == 0 else 0.0
            poll_until(run, lambda: False, delay)
            if not run.exited():
                break
            run.kill()
            say(f"  {results_dir.name}: the sweep ended before the kill; again without delay")
            remove_tree(results_dir)
        else:
            return Trial(results_dir.name, Outcome(["every attempt ended before the kill"]), 0, "")
        progress = stage_progress(store)
        at = run.seconds()
        processes = len(run.family())
        survivors = run.kill()
        self.active = None
        before = finished_outputs(store)
        # A short stage may be over when the delay ends: say where the kill really landed.
        landed = "mid-write" if progress[target][0] else f"no {target} output in flight"
        note = (
            f"killed {processes} processes {delay:.2f} s into {target} at {at:.1f} s, "
            f"{landed} ({describe_progress(progress)})"
        )
        rerun, code, leaked = self.run(results_dir)
        outcome = check_finished(results_dir, reference, before, code, leaked, rerun.stderr_tail)
        if survivors:
            outcome.problems.append(f"processes survived the kill: {survivors}")
        note += f"; {len(before)} finished outputs kept; rerun {rerun.seconds():.1f} s"
        return Trial(results_dir.name, outcome, time.monotonic() - started, note)

    def worker_kill(self, index: int, target: str, reference: Reference) -> Trial:
        """Kills the Ray worker running a target task once; the sweep must finish on its own."""
        started = time.monotonic()
        results_dir = self.workdir / f"worker-kill-{index:02d}-{target}"
        run = self.start(results_dir)
        title = TASK_TITLES[target]
        store = results_dir / "store"
        found: list[int] = []
        how = ""

        def worker_running() -> bool:
            # By the process title, or else by the temporary folder the worker writes: Ray
            # titles a task by its function's name, which a wrapper may hide ("ray::run").
            nonlocal how
            family = run.family()
            found[:] = [pid for pid in family if command_line(pid).startswith(title)]
            how = "title"
            if not found:
                found[:] = sorted(pid for pid in stage_writers(store, target) if pid in family)
                how = "store"
            return bool(found)

        killed = None
        # An encode shard takes a fraction of a second here: kill it as soon as it is seen.
        delay = 0.0 if target == "encode" else self.rng.uniform(0, MAX_DELAY_SECONDS / 3)
        if poll_until(run, worker_running, self.timeout):
            # Let the task get going, then kill a worker that still runs it.
            poll_until(run, lambda: False, delay)
            if worker_running() or poll_until(run, worker_running, self.timeout):
                try:
                    os.kill(found[0], signal.SIGKILL)
                    killed = found[0]
                except ProcessLookupError:
                    pass  # its task ended meanwhile
        at = run.seconds()
        progress = stage_progress(store)
        before = finished_outputs(store)
        code, leaked = run.wait(self.timeout)
        self.active = None
        outcome = check_finished(results_dir, reference, before, code, leaked, run.stderr_tail)
        if killed is None:
            outcome.problems.append(f"no {title} worker was seen running")
            note = "no worker killed"
        else:
            note = (
                f"killed the {target} worker (pid {killed}, found by {how}) at {at:.1f} s "
                f"({describe_progress(progress)}); "
                f"sweep finished in {run.seconds():.1f} s"
            )
        return Trial(results_dir.name, outcome, time.monotonic() - started, note)

    def targets(self, count: int) -> list[str]:
        """count stages in random order, each of the three as often as the others (+-1)."""
        order = [STAGES[index % len(STAGES)] for index in range(count)]
        self.rng.shuffle(order)
        return order


def remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
