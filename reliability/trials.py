"""Kills sweeps mid-run and checks that every rerun ends with the reference's results.

A trial starts `python -m sweep` in its own session, waits until a target stage (a kind that
the harness's sweep plans: stage_targets.planned_kinds) is in progress and then either SIGKILLs
the driver and every process of its session (Ray's GCS, raylet and workers) and reruns the
command, or SIGKILLs the one Ray worker running a task of that stage (found by its process
title, stage_targets.task_titles) and lets the sweep retry it. The chained trials of the quick
run do the same for every planned kind in one results folder (driver kills) or one sweep
(worker kills). Either way the finished sweep must match an uninterrupted reference run: the
same results.csv, quarantine.csv and conversions.csv bytes, every stage output that was
finished at the kill still in place and untouched, no temporary folder left in the store, no
published output unlike its DONE manifest, and one MLflow parent run with one child per
trained model.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reliability.checks import Outcome, Reference, check_finished
from reliability.corpus import QUARANTINED
from reliability.processes import SweepRun, command_line
from reliability.results_folder import (
    describe_progress,
    finished_outputs,
    report_files,
    stage_progress,
    stage_writers,
)
from reliability.stage_targets import kill_at_once, planned_kinds, task_title, task_titles
from reliability.sweep_command import sweep_argv, sweep_overrides

POLL_SECONDS = 0.02
MAX_DELAY_SECONDS = 1.5


def say(message: str) -> None:
    print(message, flush=True)


def poll_until(
    run: SweepRun, condition: Callable[[], bool], timeout: float, every: float = POLL_SECONDS
) -> bool:
    """Polls condition (tracking the sweep's processes) until it holds, the run exits or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not run.exited():
        run.family()
        if condition():
            return True
        time.sleep(every)
    return False


def stage_started(store: Path, stage: str) -> Callable[[], bool]:
    def started() -> bool:
        writing, done = stage_progress(store, (stage,))[stage]
        return writing + done > 0

    return started


def stage_in_flight(run: SweepRun, store: Path, stage: str) -> Callable[[], bool]:
    """Whether the stage has begun: a worker runs one of its tasks (by title), or an output of
    it is being written or finished."""
    started = stage_started(store, stage)

    def in_flight() -> bool:
        return started() or bool(workers_of(running_titles(run), stage))

    return in_flight


def running_titles(run: SweepRun) -> dict[int, str]:
    """The sweep's Ray workers and the task each runs now (its process title)."""
    titles = {}
    for pid in run.family():
        title = command_line(pid).split(" ", 1)[0]
        if title.startswith("ray::"):
            titles[pid] = title
    return titles


def workers_of(titles: dict[int, str], stage: str) -> list[int]:
    """The workers, of `running_titles`, that run a task of the stage."""
    wanted = set(task_titles(stage))
    return sorted(pid for pid, title in titles.items() if title in wanted)


def kill_process(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
        return True
    except ProcessLookupError:
        return False  # its task ended meanwhile


@dataclass
class Trial:
    """What one kill trial did and how it ended."""

    name: str
    outcome: Outcome
    seconds: float
    note: str
    # The stage kind it killed in (none for a fault that is not aimed at a kind).
    target: str = ""


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
        # Seconds between two looks at a sweep's processes (each reads /proc).
        self.poll = POLL_SECONDS
        # The kinds the sweep plans (set by plan(), once the corpus is written).
        self.kinds: tuple[str, ...] = ()

    def plan(self) -> tuple[str, ...]:
        """Reads the kill targets from the plan of the harness's own sweep."""
        overrides = sweep_overrides(self.corpus, self.workdir / "plan", self.epochs)
        self.kinds = planned_kinds(overrides)
        return self.kinds

    def argv(self, results_dir: Path, *extra: str) -> list[str]:
        return sweep_argv(self.corpus, results_dir, self.epochs, *extra)

    def start(self, results_dir: Path, *extra: str, log: str = "") -> SweepRun:
        """Starts the sweep; its output goes to logs/<log or the results folder's name>.*."""
        log_prefix = self.logs / (log or results_dir.name)
        self.active = SweepRun(self.argv(results_dir, *extra), log_prefix)
        return self.active

    def run(self, results_dir: Path, *extra: str, log: str = "") -> tuple[SweepRun, int, list[int]]:
        run = self.start(results_dir, *extra, log=log)
        code, leaked = run.wait(self.timeout)
        self.active = None
        return run, code, leaked

    def abort(self) -> None:
        """Kills the sweep in flight, if any (the harness itself was interrupted)."""
        if self.active is not None and not self.active.exited():
            self.active.kill()

    def reference(self) -> tuple[Reference | None, str]:
        """The uninterrupted sweep, with the Ray task titles seen running and when."""
        run = self.start(self.workdir / "reference")
        seen: dict[str, float] = {}

        def record() -> bool:
            for title in running_titles(run).values():
                seen.setdefault(title, run.seconds())
            return False

        poll_until(run, record, self.timeout, self.poll)
        code, leaked = run.wait(self.timeout)
        self.active = None
        if code != 0:
            return None, f"exit code {code}: {run.stderr_tail()}"
        files = report_files(self.workdir / "reference")
        if files["results.csv"] is None:
            return None, "no results.csv"
        note = f"leaked processes {leaked}" if leaked else ""
        return Reference(files, run.seconds(), seen), note

    def in_order_seen(self, reference: Reference) -> tuple[str, ...]:
        """The planned kinds in the order their tasks first ran in the reference (a kind
        never seen last): the order in which chained kills can still find each running."""
        never = float("inf")

        def first_seen(kind: str) -> float:
            return min((reference.titles.get(t, never) for t in task_titles(kind)), default=never)

        return tuple(sorted(self.kinds, key=first_seen))

    def fail_fast(self, expected: dict[str, str], *extra: str) -> tuple[bool, bool, str]:
        """The sweep with data.on_error=fail: (stopped as it should, crashed, note)."""
        run, code, _ = self.run(self.workdir / "on-error-fail", "data.on_error=fail", *extra)
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
            poll_until(run, stage_in_flight(run, store, target), self.timeout)
            # A second attempt kills at once: the first one's delay outlasted the sweep. So
            # does a brief kind's (stage_targets.kill_at_once): its tasks end within a delay.
            at_once = attempt > 0 or kill_at_once(target)
            delay = 0.0 if at_once else self.rng.uniform(0, MAX_DELAY_SECONDS)
            poll_until(run, lambda: False, delay)
            if not run.exited():
                break
            run.kill()
            say(f"  {results_dir.name}: the sweep ended before the kill; again without delay")
            remove_tree(results_dir)
        else:
            outcome = Outcome(["every attempt ended before the kill"])
            return Trial(results_dir.name, outcome, 0, "", target)
        progress = stage_progress(store, self.kinds)
        working = workers_of(running_titles(run), target)
        at = run.seconds()
        processes = len(run.family())
        survivors = run.kill()
        self.active = None
        before = finished_outputs(store)
        # A short stage may be over when the delay ends: say where the kill really landed.
        landed = "mid-write" if progress[target][0] else f"no {target} output in flight"
        if working and not progress[target][0]:
            landed = f"mid-task ({len(working)} {target} worker(s) running)"
        note = (
            f"killed {processes} processes {delay:.2f} s into {target} at {at:.1f} s, "
            f"{landed} ({describe_progress(progress)})"
        )
        rerun, code, leaked = self.run(results_dir)
        outcome = check_finished(results_dir, reference, before, code, leaked, rerun.stderr_tail)
        if survivors:
            outcome.problems.append(f"processes survived the kill: {survivors}")
        note += f"; {len(before)} finished outputs kept; rerun {rerun.seconds():.1f} s"
        return Trial(results_dir.name, outcome, time.monotonic() - started, note, target)

    def worker_kill(self, index: int, target: str, reference: Reference) -> Trial:
        """Kills the Ray worker running a target task once; the sweep must finish on its own."""
        started = time.monotonic()
        results_dir = self.workdir / f"worker-kill-{index:02d}-{target}"
        run = self.start(results_dir)
        title = task_title(target)
        store = results_dir / "store"
        found: list[int] = []
        how = ""

        def worker_running() -> bool:
            # By the process title the executor gives the kind's tasks; failing that, by the
            # temporary folder the worker writes, which says the titles are stale.
            nonlocal how
            found[:] = workers_of(running_titles(run), target)
            how = "title"
            if not found:
                family = run.family()
                found[:] = sorted(pid for pid in stage_writers(store, target) if pid in family)
                how = "store"
            return bool(found)

        killed = None
        # A brief task (see stage_targets.kill_at_once) is killed as soon as it is seen.
        delay = 0.0 if kill_at_once(target) else self.rng.uniform(0, MAX_DELAY_SECONDS / 3)
        if poll_until(run, worker_running, self.timeout):
            # Let the task get going, then kill a worker that still runs it.
            poll_until(run, lambda: False, delay)
            if worker_running() or poll_until(run, worker_running, self.timeout):
                killed = found[0] if kill_process(found[0]) else None
        at = run.seconds()
        progress = stage_progress(store, self.kinds)
        before = finished_outputs(store)
        code, leaked = run.wait(self.timeout)
        self.active = None
        outcome = check_finished(results_dir, reference, before, code, leaked, run.stderr_tail)
        if killed is None:
            outcome.problems.append(f"no {title} worker was seen running")
            note = "no worker killed"
        elif how != "title":
            outcome.problems.append(
                f"the {target} worker ran under none of the titles {task_titles(target)}: "
                f"found by its temporary folder in the store"
            )
        else:
            note = (
                f"killed the {target} worker (pid {killed}, found by {how}) at {at:.1f} s "
                f"({describe_progress(progress)}); "
                f"sweep finished in {run.seconds():.1f} s"
            )
        return Trial(results_dir.name, outcome, time.monotonic() - started, note, target)

    def targets(self, count: int) -> list[str]:
        """count stages of the planned kinds in random order, each as often as the others
        (+-1)."""
        stages = self.kinds
        order = [stages[index % len(stages)] for index in range(count)]
        self.rng.shuffle(order)
        return order


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
