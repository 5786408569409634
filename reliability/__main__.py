"""`python -m reliability` (`make reliability`): bad inputs, driver kills and worker kills.

Writes the corpus (ordinary images plus one file of every bad kind), runs an uninterrupted
reference sweep, checks its quarantine.csv and conversions.csv and a data.on_error=fail run,
then kills sweeps mid-run (--kills driver kills, --worker-kills worker kills) and checks every
one against the reference. Ends with one summary line; the exit code is 1 on any crash, lost
result or failed check.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from reliability.checks import check_policy
from reliability.corpus import write_corpus
from reliability.sweep_command import REPO
from reliability.trials import Harness, Trial, say

# The policy (quarantine and conversions) lives here; without it only good images can be swept.
POLICY_MODULE = REPO / "sweep" / "data" / "validate.py"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m reliability", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workdir", type=Path, help="work folder, kept (default: a temporary one)")
    parser.add_argument("--kills", type=int, default=10, help="driver kills (default 10)")
    parser.add_argument(
        "--worker-kills", type=int, default=4, help="Ray worker kills (default 4: one per kind)"
    )
    # 10 epochs: about 3 s per training on 2 cores, a window the kills can land in.
    parser.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of targets and delays")
    parser.add_argument("--timeout", type=float, default=300, help="seconds one sweep may take")
    parser.add_argument(
        "--good-only",
        action="store_true",
        help="a corpus without bad files (automatic while sweep/data/validate.py is missing)",
    )
    return parser.parse_args(argv)


def report_trial(trial: Trial) -> None:
    verdict = "ok" if trial.outcome.ok else "FAILED"
    say(f"  {trial.name}: {verdict} in {trial.seconds:.1f} s: {trial.note}")
    for problem in trial.outcome.problems:
        say(f"    - {problem}")


def run(args: argparse.Namespace, workdir: Path) -> int:
    harness = Harness(workdir, args.epochs, args.timeout, args.seed)
    try:
        return run_all(args, harness)
    finally:
        harness.abort()  # interrupted (Ctrl-C): leave no sweep running


def run_all(args: argparse.Namespace, harness: Harness) -> int:
    started = time.monotonic()
    bad = not args.good_only and POLICY_MODULE.is_file()
    if not bad and not args.good_only:
        say(f"reliability: {POLICY_MODULE.relative_to(REPO)} is missing: good images only")
    expected = write_corpus(harness.corpus, bad=bad)
    images = sum(1 for path in harness.corpus.rglob("*") if path.is_file())
    say(f"reliability: corpus of {images} files ({len(expected)} bad) in {harness.corpus}")

    crashes = 0
    failures: list[str] = []
    say("reference: an uninterrupted sweep")
    reference, note = harness.reference()
    if reference is None:
        say(f"  reference FAILED: {note}")
        crashes += 1
        summary(len(expected), crashes, [], [], args, extra=["no reference"])
        return 1
    say(f"  reference: {reference.seconds:.1f} s {note}".rstrip())

    if expected:
        say("bad inputs: the reference's quarantine.csv and conversions.csv, data.on_error=fail")
        problems = check_policy(reference, expected)
        for problem in problems:
            say(f"  - {problem}")
        failures += problems
        stopped, crashed, note = harness.fail_fast(expected)
        say(f"  data.on_error=fail: {'ok' if stopped else 'FAILED'}: {note}")
        crashes += crashed
        if not stopped:
            failures.append("data.on_error=fail")

    kills: list[Trial] = []
    say(f"driver kills: {args.kills}")
    for index, target in enumerate(harness.targets(args.kills), start=1):
        kills.append(harness.driver_kill(index, target, reference))
        report_trial(kills[-1])
    workers: list[Trial] = []
    say(f"worker kills: {args.worker_kills}")
    for index, target in enumerate(harness.targets(args.worker_kills), start=1):
        workers.append(harness.worker_kill(index, target, reference))
        report_trial(workers[-1])

    trials = kills + workers
    crashes += sum(trial.outcome.crashed for trial in trials)
    extra = [f"failed checks {len(failures)}"] if failures else []
    say(
        f"total {time.monotonic() - started:.0f} s: reference {reference.seconds:.1f} s, "
        f"driver-kill trials {mean_seconds(kills)}, worker-kill trials {mean_seconds(workers)}"
    )
    lost = summary(len(expected), crashes, kills, workers, args, extra)
    return (
        0 if not crashes and not lost and not failures and all(t.outcome.ok for t in trials) else 1
    )


def mean_seconds(trials: list[Trial]) -> str:
    if not trials:
        return "none"
    seconds = [trial.seconds for trial in trials]
    return f"{sum(seconds) / len(seconds):.1f} s on average ({min(seconds):.1f}-{max(seconds):.1f})"


def summary(
    bad: int, crashes: int, kills: list[Trial], workers: list[Trial], args, extra: list[str]
) -> int:
    """Prints the summary line; returns the number of lost results."""
    lost = sum(trial.outcome.lost for trial in kills + workers)
    survived = sum(trial.outcome.ok for trial in kills)
    workers_survived = sum(trial.outcome.ok for trial in workers)
    fields = [
        f"bad inputs tried {bad}",
        f"crashes {crashes}",
        f"kills survived {survived}/{args.kills}",
        f"worker kills survived {workers_survived}/{args.worker_kills}",
        f"results lost {lost}",
        *extra,
    ]
    say("reliability: " + ", ".join(fields))
    return lost


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reliability-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return run(args, workdir.absolute())
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
