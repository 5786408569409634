"""`python -m sweep [group=option ...] [key=value ...]`: compose, validate, run.

Mistakes in the command line or the config exit with code 2 before any work, with a message
that names the option and what is allowed. `--help` and `--cfg job` are Hydra's own.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sweep.config import build_sweep
from sweep.errors import OptionError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "conf"
USAGE_ERROR = 2
# Another driver holds results_dir's lock (sysexits' EX_TEMPFAIL: try again later).
LOCK_HELD = 75
RESUMES = (
    "every finished stage is kept in results_dir's store, and the same command resumes "
    "where this one stopped"
)
log = logging.getLogger("sweep")


def check_overrides(overrides: list[str]) -> None:
    """Composes the config once so that an unknown option or key exits 2, not Hydra's 1.

    Also checks results_dir: Hydra writes its run folder there before any of our code runs.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from sweep.store import ArtifactStore, StoreError

    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base=None):
            cfg = compose("config", overrides=overrides)
        ArtifactStore(Path(cfg.results_dir)).check_writable()
    except (HydraException, OmegaConfBaseException) as error:
        message = str(error).split("\nConfig search path")[0].strip()
        print(f"error: {message}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except StoreError as error:
        print(f"error: results_dir: {error}", file=sys.stderr)
        sys.exit(USAGE_ERROR)


def run_reporting_errors(work: Callable[[], Path]) -> Path:
    """Runs an entry point's work; a config mistake exits 2, a failed run 1, each with its
    message on stderr (finished stages are kept: the rerun resumes)."""
    from sweep.engine.execute import SweepFailedError
    from sweep.engine.lock import LockHeldError
    from sweep.models.errors import ModelUnavailableError
    from sweep.stages.shards import ImageReadError
    from sweep.store import StoreError

    try:
        return work()
    except OptionError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except LockHeldError as error:  # another driver runs on results_dir: try again later
        print(f"error: {error}", file=sys.stderr)
        sys.exit(LOCK_HELD)
    except (SweepFailedError, ModelUnavailableError, ImageReadError, StoreError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"interrupted: {RESUMES}", file=sys.stderr)
        sys.exit(128 + signal.SIGINT)
    except SystemExit as exit_:
        # Ray's driver turns SIGTERM into sys.exit(SIGTERM); ours does the same before Ray.
        if exit_.code != signal.SIGTERM:
            raise
        print(f"terminated (SIGTERM): {RESUMES}", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    from sweep.run import run_sweep

    sweep = run_reporting_errors(lambda: build_sweep(cfg))
    if sweep.dry_run:  # the bill before launch: runs nothing, writes nothing to the store
        from sweep.bill import bill_of, format_bill

        bill = run_reporting_errors(lambda: bill_of(sweep, sweep.dry_run_calibrate))
        print(format_bill(bill))
        return
    if sweep.budget is not None:  # experiment=budget
        from sweep.engine.lock import results_dir_lock
        from sweep.experiments.budget import run_budget

        def run_budget_locked() -> Path:  # one driver per results_dir, as run_sweep holds
            with results_dir_lock(sweep.results_dir, sweep.lock_wait):
                return run_budget(sweep)

        report = run_reporting_errors(run_budget_locked)
        print(f"results: {report / 'budget.csv'}")
        for sentence in json.loads((report / "budget_law.json").read_text())["sentences"]:
            print(f"budget: {sentence}")
        return
    if sweep.nightly is not None:  # experiment=nightly: the grid, its summary and changes
        from sweep.experiments.nightly import run_nightly

        sys.exit(run_reporting_errors(lambda: run_nightly(sweep)))
    report = run_reporting_errors(lambda: run_sweep(sweep))
    print(f"results: {report / 'results.csv'}")
    # What to do, in plain sentences (sweep/analysis/recommendation.py).
    from sweep.analysis.recommendation import SCENARIOS

    recommendation = json.loads((report / "recommendation.json").read_text())
    for scenario in SCENARIOS:
        print(f"recommendation: {recommendation['scenarios'][scenario.name]['sentence']}")
    from sweep.tracking_pending import LOGGING_DEFERRED_EXIT, report_logging_deferred

    if report_logging_deferred(sweep.results_dir, report):  # tracking.on_unreachable=defer
        print("warning: MLflow logging is deferred to the next run (see above)", file=sys.stderr)
        sys.exit(LOGGING_DEFERRED_EXIT)


def run_cli(entry: Callable[[], None]) -> None:
    """Checks plain overrides (exit 2 on a mistake), then hands over to a Hydra entry point.

    Flags (--help, --cfg, -m ...) are Hydra's own and go straight through.
    """
    arguments = sys.argv[1:]
    if not any(argument.startswith("-") for argument in arguments):
        check_overrides(arguments)
    entry()


def exit_on_sigterm(signum, frame) -> None:
    """SIGTERM ends the run the way Ray's driver handler does once Ray runs: sys.exit."""
    sys.exit(signum)


def main() -> None:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    run_cli(hydra_main)


if __name__ == "__main__":
    main()
