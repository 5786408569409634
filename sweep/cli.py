"""What the entry points share: checking the command line, running under Hydra, and turning
errors into messages and exit codes. Only entry points import this module.

Exit codes: 0 done; 1 a failure whose message says what failed (`SweepError`: finished stages
are kept, the same command resumes); 2 a bad option or input, before any work
(`OptionError`); 69 results kept but MLflow logging deferred; 75 another driver holds
results_dir's lock (try again later); 130 and 143 interrupted by Ctrl-C or SIGTERM (finished
stages kept).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import TypeVar

import hydra
from omegaconf import DictConfig

from sweep.config.build import build_launch
from sweep.config.compose import CONFIG_DIR, composed
from sweep.config.values import local_dir_of, store_of
from sweep.engine.lock import LockHeldError
from sweep.errors import OptionError, SweepError
from sweep.store import ArtifactStore, StoreError
from sweep.store.objects import is_url

USAGE_ERROR = 2
# Another driver holds results_dir's lock (sysexits' EX_TEMPFAIL: try again later).
LOCK_HELD = 75
RESUMES = (
    "every finished stage is kept in results_dir's store, and the same command resumes "
    "where this one stopped"
)
Result = TypeVar("Result")


def check_overrides(overrides: list[str], config_name: str = "config") -> None:
    """Composes the config once so that an unknown option or key exits 2, not Hydra's 1.

    Also checks results_dir: Hydra writes its run folder there before any of our code runs.
    """
    try:
        cfg = composed(overrides, config_name)
        ArtifactStore(local_dir_of(cfg)).check_writable()  # Hydra's run folder goes there
        if is_url(cfg.results_dir):
            store_of(cfg).check_writable()
    except OptionError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except StoreError as error:
        print(f"error: results_dir: {error}", file=sys.stderr)
        sys.exit(USAGE_ERROR)


def run_reporting_errors(work: Callable[[], Result]) -> Result:
    """Runs an entry point's work; a bad option exits 2, a held lock 75, a failure 1, each
    with its message on stderr (finished stages are kept: the rerun resumes)."""
    try:
        return work()
    except OptionError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except LockHeldError as error:  # another driver runs on results_dir: try again later
        print(f"error: {error}", file=sys.stderr)
        sys.exit(LOCK_HELD)
    except SweepError as error:
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


def launch(cfg: DictConfig) -> None:
    """Builds the config's experiment and runs it; exits with its code."""
    experiment = run_reporting_errors(lambda: build_launch(cfg))
    sys.exit(run_reporting_errors(experiment.run))


def exit_on_sigterm(signum, frame) -> None:
    """SIGTERM ends the run the way Ray's driver handler does once Ray runs: sys.exit."""
    sys.exit(signum)


def main_of(config_name: str, run: Callable[[DictConfig], None] = launch) -> None:
    """The `python -m` entry of a config of conf/: checks plain overrides (exit 2 on a
    mistake), then hands over to Hydra, which composes the config for `run`.

    Flags (--help, --cfg, -m ...) are Hydra's own and go straight through.
    """
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    arguments = sys.argv[1:]
    if not any(argument.startswith("-") for argument in arguments):
        check_overrides(arguments, config_name)
    hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name=config_name)(run)()
