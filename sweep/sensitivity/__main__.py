"""`python -m sweep.sensitivity [the sweep's overrides]`: the DCT sensitivity maps of a sweep's
models, training the models that are missing, without evaluating the grid.

The same Hydra config as `python -m sweep` (conf/sensitivity_maps.yaml adds both methods:
sensitivity=both). The maps land in the sweep's report folder, under sensitivity/, and in its
MLflow parent and child runs; a later `python -m sweep` with the same arguments reuses them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sweep.__main__ import CONFIG_DIR, run_cli, run_reporting_errors
from sweep.config import Sweep, build_sweep
from sweep.errors import OptionError
from sweep.sensitivity.options import TASK_KIND

log = logging.getLogger("sweep.sensitivity")


def run_maps(sweep: Sweep) -> Path:
    """Measures and reports the maps of every trained model of the sweep; returns the
    sensitivity folder of its report."""
    from sweep.run import make_tracker, screen_and_plan, workers_of
    from sweep.sensitivity.pipeline import log_sensitivity, run_plan_part, sensitivity_only
    from sweep.sensitivity.report import write_sensitivity_report
    from sweep.summarize import report_dir

    if sweep.task.kind != TASK_KIND:
        raise OptionError(f"sensitivity maps are for classifiers; task={sweep.task_name} is "
            f"{sweep.task.kind}", option="task")  # fmt: skip
    if not sweep.sensitivity.enabled:
        raise OptionError("is false: nothing to measure", option="sensitivity.enabled")
    tracker = make_tracker(sweep.tracking, sweep.results_dir)
    with workers_of(sweep):
        _, plan = screen_and_plan(sweep)
        run_plan_part(sweep, sensitivity_only(plan))
    out = report_dir(sweep, plan)
    report = write_sensitivity_report(sweep, plan, out)
    log.info("sensitivity maps: %s", out / "sensitivity")
    if tracker is not None:
        log_sensitivity(tracker, plan, out, report)
    return out / "sensitivity"


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="sensitivity_maps")
def hydra_main(cfg: DictConfig) -> None:
    folder = run_reporting_errors(lambda: run_maps(build_sweep(cfg)))
    print(f"sensitivity maps: {folder / 'sensitivity.csv'}")


def main() -> None:
    run_cli(hydra_main)


if __name__ == "__main__":
    main()
