"""`python -m sweep.sensitivity [the sweep's overrides]`: the DCT sensitivity maps of a sweep's
models, training the models that are missing, without evaluating the grid.

The same Hydra config as `python -m sweep` (conf/sensitivity_maps.yaml adds both methods:
sensitivity=both). The maps land in the sweep's report folder, under sensitivity/, and in its
MLflow parent and child runs; a later `python -m sweep` with the same arguments reuses them.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from sweep.__main__ import CONFIG_DIR, USAGE_ERROR, run_cli
from sweep.config import ConfigError, Sweep, build_sweep

log = logging.getLogger("sweep.sensitivity")


def run_maps(sweep: Sweep) -> Path:
    """Measures and reports the maps of every trained model of the sweep; returns the
    sensitivity folder of its report."""
    from sweep.run import make_tracker, plan_sweep, shutdown_ray
    from sweep.screen import screen_images
    from sweep.sensitivity.pipeline import (
        bind_tuning_map,
        log_sensitivity,
        run_plan_part,
        sensitivity_only,
    )
    from sweep.sensitivity.report import write_sensitivity_report
    from sweep.summarize import report_dir

    if sweep.task.kind != "classification":
        raise ConfigError(
            "task", f"sensitivity maps are for classifiers; task={sweep.task_name} is "
            f"{sweep.task.kind}",
        )  # fmt: skip
    if not sweep.sensitivity.enabled:
        raise ConfigError("sensitivity.enabled", "is false: nothing to measure")
    tracker = make_tracker(sweep.tracking, sweep.results_dir)
    sweep.store.remove_stale_temporaries()
    try:
        screening = screen_images(sweep)
        if sweep.codec.needs_sensitivity_map:
            sweep.codec = bind_tuning_map(sweep, screening)
        plan = plan_sweep(sweep, screening)
        run_plan_part(sweep, sensitivity_only(plan))
    finally:
        shutdown_ray()
        sweep.store.remove_stale_temporaries()
    out = report_dir(sweep, plan)
    report = write_sensitivity_report(sweep, plan, out)
    log.info("sensitivity maps: %s", out / "sensitivity")
    if tracker is not None:
        log_sensitivity(tracker, plan, out, report)
    return out / "sensitivity"


@hydra.main(version_base=None, config_path=str(CONFIG_DIR), config_name="sensitivity_maps")
def hydra_main(cfg: DictConfig) -> None:
    from sweep.execute import SweepFailedError
    from sweep.models.errors import ModelUnavailableError
    from sweep.stages.shards import ImageReadError

    try:
        folder = run_maps(build_sweep(cfg))
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    except (SweepFailedError, ModelUnavailableError, ImageReadError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    print(f"sensitivity maps: {folder / 'sensitivity.csv'}")


def main() -> None:
    run_cli(hydra_main)


if __name__ == "__main__":
    main()
