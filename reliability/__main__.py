"""`python -m reliability` (`make reliability`): bad inputs, driver and worker kills, faults.

Writes the corpus (ordinary images plus one file of every bad kind), reads the kill targets
from the plan of its own sweep (the kinds it plans; the others are "not in this sweep"), runs
an uninterrupted reference sweep, checks its quarantine.csv and conversions.csv and a
data.on_error=fail run, then kills sweeps mid-run (--kills driver kills, --worker-kills worker
kills) and checks every one against the reference, then the faults of reliability/faults.py.
`--quick` (the test suite's run) kills the driver once and a worker once in every planned kind,
in two chained sweeps, and tries no other fault. Ends with one summary line; the exit code is
1 on any crash, lost result or failed check.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from reliability.chains import driver_kill_chain, worker_kill_chain
from reliability.checks import Reference, check_policy, title_problems
from reliability.corpus import write_corpus
from reliability.faults import FAULT_FAMILIES, run_faults
from reliability.figures import Figures
from reliability.stage_targets import coverage_problems, not_in_sweep
from reliability.sweep_command import REPO
from reliability.trials import Harness, Trial, say

# The policy (quarantine and conversions) lives here; without it only good images can be swept.
POLICY_MODULE = REPO / "sweep" / "data" / "validate.py"
# The quick run kills a task as soon as it is seen: looking less often spends less CPU, and a
# shard or an evaluation group still runs for several looks.
QUICK_POLL_SECONDS = 0.05
# The figures as JSON, in the work folder.
FIGURES_FILE = "figures.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reliability", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workdir", type=Path, help="work folder, kept (default: a temporary one)")
    parser.add_argument("--kills", type=int, default=10, help="driver kills (default 10)")
    parser.add_argument(
        "--worker-kills", type=int, help="Ray worker kills (default: one per planned kind)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one driver and one worker kill per planned kind, chained; no other fault",
    )
    # 10 epochs: about 3 s per training on 2 cores, a window the kills can land in.
    parser.add_argument("--epochs", type=int, help="training epochs (default 10; --quick 2)")
    parser.add_argument(
        "--faults",
        default=",".join(FAULT_FAMILIES),
        help=f"faults after the kills, comma-separated (default {','.join(FAULT_FAMILIES)})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of targets and delays")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one sweep may take")
    parser.add_argument(
        "--good-only",
        action="store_true",
        help="a corpus without bad files (automatic while sweep/data/validate.py is missing)",
    )
    args = parser.parse_args(argv)
    if args.epochs is None:
        args.epochs = 2 if args.quick else 10
    return args


def report_trial(trial: Trial) -> None:
    verdict = "ok" if trial.outcome.ok else "FAILED"
    say(f"  {trial.name}: {verdict} in {trial.seconds:.1f} s: {trial.note}")
    for problem in trial.outcome.problems:
        say(f"    - {problem}")


def run(args: argparse.Namespace, workdir: Path) -> Figures:
    harness = Harness(workdir, args.epochs, args.timeout, args.seed)
    if args.quick:
        harness.poll = QUICK_POLL_SECONDS
    try:
        return run_all(args, harness)
    finally:
        harness.abort()  # interrupted (Ctrl-C): leave no sweep running


def run_all(args: argparse.Namespace, harness: Harness) -> Figures:
    started = time.monotonic()
    figures = Figures()
    bad = not args.good_only and POLICY_MODULE.is_file()
    if not bad and not args.good_only:
        say(f"reliability: {POLICY_MODULE.relative_to(REPO)} is missing: good images only")
    expected = write_corpus(harness.corpus, bad=bad)
    figures.bad_inputs = len(expected)
    images = sum(1 for path in harness.corpus.rglob("*") if path.is_file())
    say(f"reliability: corpus of {images} files ({len(expected)} bad) in {harness.corpus}")
    kinds = figures.kinds = harness.plan()
    say(f"kill targets (the kinds the sweep plans): {', '.join(kinds)}")
    for name in not_in_sweep(kinds):
        say(f"  {name}: not in this sweep")

    say("reference: an uninterrupted sweep")
    reference, note = harness.reference()
    if reference is None:
        say(f"  reference FAILED: {note}")
        figures.crashes += 1
        figures.failed_checks.append("no reference")
        return figures
    say(f"  reference: {reference.seconds:.1f} s {note}".rstrip())
    figures.titles = reference.titles
    check(figures, "worker titles", title_problems(kinds, reference.titles))

    if expected:
        say("bad inputs: the reference's quarantine.csv and conversions.csv, data.on_error=fail")
        check(figures, "bad-input reports", check_policy(reference, expected))
        # Quick: in the driver's process (cluster.mode=inline), without a Ray to start.
        stopped, crashed, note = harness.fail_fast(
            expected, *(["cluster.mode=inline"] if args.quick else [])
        )
        say(f"  data.on_error=fail: {'ok' if stopped else 'FAILED'}: {note}")
        figures.crashes += crashed
        if not stopped:
            figures.failed_checks.append("data.on_error=fail")

    if args.quick:
        kill_chains(harness, reference, figures)
    else:
        independent_kills(args, harness, reference, figures)
        faults = run_faults(harness, reference, figures.skip, tuple(args.faults.split(",")))
        for family, trials in faults.items():
            figures.add(family, trials)
            for trial in trials:
                report_trial(trial)
    covered = coverage_problems(kinds, figures.covered("driver"), figures.covered("worker"))
    check(figures, "coverage", covered)
    say(f"total {time.monotonic() - started:.0f} s: reference {reference.seconds:.1f} s")
    return figures


def check(figures: Figures, what: str, problems: list[str]) -> None:
    say(f"{what}: {'ok' if not problems else 'FAILED'}")
    for problem in problems:
        say(f"  - {problem}")
    figures.failed_checks += problems


def kill_chains(harness: Harness, reference: Reference, figures: Figures) -> None:
    say(f"driver kills: one per planned kind, chained in one results folder ({len(harness.kinds)})")
    figures.add("driver", driver_kill_chain(harness, reference))
    say(f"worker kills: one per planned kind, in one sweep ({len(harness.kinds)})")
    figures.add("worker", worker_kill_chain(harness, reference))
    for trial in figures.every_trial:
        report_trial(trial)


def independent_kills(
    args: argparse.Namespace, harness: Harness, reference: Reference, figures: Figures
) -> None:
    say(f"driver kills: {args.kills}")
    for index, target in enumerate(harness.targets(args.kills), start=1):
        figures.add("driver", [harness.driver_kill(index, target, reference)])
        report_trial(figures.trials["driver"][-1])
    workers = len(harness.kinds) if args.worker_kills is None else args.worker_kills
    say(f"worker kills: {workers}")
    for index, target in enumerate(harness.targets(workers), start=1):
        figures.add("worker", [harness.worker_kill(index, target, reference)])
        report_trial(figures.trials["worker"][-1])
    say(f"driver-kill trials {mean_seconds(figures.trials.get('driver', []))}, "
        f"worker-kill trials {mean_seconds(figures.trials.get('worker', []))}")  # fmt: skip


def mean_seconds(trials: list[Trial]) -> str:
    if not trials:
        return "none"
    seconds = [trial.seconds for trial in trials]
    return f"{sum(seconds) / len(seconds):.1f} s on average ({min(seconds):.1f}-{max(seconds):.1f})"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reliability-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        figures = run(args, workdir.absolute())
        figures.write(workdir / FIGURES_FILE)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    say(figures.line())
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
