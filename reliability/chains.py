"""The quick run's chained kills: one driver kill and one worker kill in every planned kind, in
as few sweeps as that takes.

The driver kills share one results folder: the sweep is started, killed (driver, Ray and all)
as soon as a task of the next planned kind runs, started again, and so on through the plan;
the last start runs to the end. Every output finished at any of the kills must still be in
place, untouched, and the end must equal the reference. The worker kills share one sweep: the
first worker seen under each planned kind's Ray title is SIGKILLed, and the sweep must retry
its task and finish with the reference's results.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from reliability.checks import Outcome, Reference, check_finished
from reliability.processes import SweepRun
from reliability.results_folder import describe_progress, finished_outputs, stage_progress
from reliability.stage_targets import task_titles
from reliability.trials import (
    Harness,
    Trial,
    kill_process,
    poll_until,
    running_titles,
    workers_of,
)


def kind_running(run: SweepRun, store: Path, stage: str) -> Callable[[], bool]:
    """Whether a task of the stage runs: its worker by title, or an output being written."""

    def running() -> bool:
        writing = stage_progress(store, (stage,))[stage][0]
        return bool(writing or workers_of(running_titles(run), stage))

    return running


def driver_kill_chain(harness: Harness, reference: Reference) -> list[Trial]:
    """A driver kill in each planned kind, in the order their tasks ran in the reference, in
    one results folder; each trial carries the verdict of the rerun to the end."""
    results_dir = harness.workdir / "chain-driver-kills"
    store = results_dir / "store"
    before: dict[str, tuple[int, int]] = {}
    trials = []
    for target in harness.in_order_seen(reference):
        if any(trial.target == target for trial in trials):
            continue  # a kill aimed at another kind landed in this one too
        started = time.monotonic()
        run = harness.start(results_dir)
        seen = poll_until(run, kind_running(run, store, target), harness.timeout, harness.poll)
        at, processes = run.seconds(), len(run.family())
        covered = {trial.target for trial in trials} | {target}
        also = [k for k in harness.kinds if k not in covered and kind_running(run, store, k)()]
        progress = stage_progress(store, harness.kinds)
        survivors = run.kill()
        harness.active = None
        kept = finished_outputs(store)
        before |= kept
        outcome = Outcome()
        if not seen:
            outcome.problems.append(f"no {target} task was seen running before the sweep ended")
        if survivors:
            outcome.problems.append(f"processes survived the kill: {survivors}")
        note = (
            f"killed {processes} processes in {target} at {at:.1f} s "
            f"({describe_progress(progress)}); {len(kept)} finished outputs"
        )
        seconds = time.monotonic() - started
        trials.append(Trial(f"chain-kill-{target}", outcome, seconds, note, target))
        for kind in also if seen else []:
            note = f"running at the kill aimed at {target}, {at:.1f} s"
            trials.append(Trial(f"chain-kill-{kind}", Outcome(), 0.0, note, kind))
    rerun, code, leaked = harness.run(results_dir)
    end = check_finished(results_dir, reference, before, code, leaked, rerun.stderr_tail)
    rerun_note = f"; the rerun kept {len(before)} outputs, {rerun.seconds():.1f} s"
    return with_verdict(trials, end, rerun_note)


def with_verdict(trials: list[Trial], end: Outcome, note: str = "") -> list[Trial]:
    """The trials of one chain, each with the verdict of its sweep's end (lost results
    counted once, on the first)."""
    merged = []
    for index, trial in enumerate(trials):
        outcome = Outcome(
            trial.outcome.problems + end.problems,
            lost=end.lost if index == 0 else 0,
            crashed=end.crashed,
        )
        merged.append(replace(trial, outcome=outcome, note=trial.note + note))
    return merged


def worker_kill_chain(harness: Harness, reference: Reference) -> list[Trial]:
    """A worker kill in each planned kind, in one sweep; a trial per kind, each with the
    verdict of the sweep's end."""
    started = time.monotonic()
    results_dir = harness.workdir / "chain-worker-kills"
    run = harness.start(results_dir)
    pending = list(harness.kinds)
    killed: dict[str, tuple[int, str, float]] = {}

    def kill_one_of_each() -> bool:
        titles = running_titles(run)
        for target in list(pending):
            pids = workers_of(titles, target)
            if pids and kill_process(pids[0]):
                killed[target] = (pids[0], titles[pids[0]], run.seconds())
                pending.remove(target)
        return not pending

    poll_until(run, kill_one_of_each, harness.timeout, harness.poll)
    before = finished_outputs(results_dir / "store")
    code, leaked = run.wait(harness.timeout)
    harness.active = None
    end = check_finished(results_dir, reference, before, code, leaked, run.stderr_tail)
    trials = []
    for target in harness.kinds:
        outcome = Outcome()
        if target in killed:
            pid, title, at = killed[target]
            note = f"killed {title} (pid {pid}) at {at:.1f} s"
        else:
            outcome.problems.append(f"no worker titled {task_titles(target)} was seen running")
            note = "no worker killed"
        trials.append(Trial(f"chain-worker-kill-{target}", outcome, 0.0, note, target))
    seconds = time.monotonic() - started
    return [
        replace(trial, seconds=seconds)
        for trial in with_verdict(trials, end, f"; sweep {run.seconds():.1f} s")
    ]
