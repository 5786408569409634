"""A whole sweep: plan, run the unfinished stages, write the report, log to MLflow."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sweep.config import ConfigError, Sweep
from sweep.execute import SweepWork, execute
from sweep.plan import SweepPlan, build_plan
from sweep.report import add_relative, write_report
from sweep.store import ArtifactStore, write_json_atomic

log = logging.getLogger(__name__)


def plan_sweep(sweep: Sweep) -> SweepPlan:
    return build_plan(
        sweep.reader,
        sweep.codec,
        sweep.task.identity(),
        sweep.model.identity(),
        sweep.options.__dict__,
        sweep.seed,
        sweep.train_settings,
        sweep.test_settings,
        sweep.cluster.encode_shard_size,
    )


def report_dir(sweep: Sweep, plan: SweepPlan) -> Path:
    """One folder per distinct sweep, so that no sweep overwrites another's report."""
    name = f"{sweep.task_name}_{sweep.model.name}_{sweep.codec.name}_{plan.key[:8]}"
    return sweep.results_dir / "reports" / name


def collect_results(sweep: Sweep, plan: SweepPlan) -> tuple[list[dict], list[dict]]:
    """Result rows (one per cell and metric, without 'relative') and DCR rows, from the store."""
    store = sweep.store
    dcr = {
        (stage.split, stage.setting): store.read_json("encode", stage.key, "summary.json")
        for stage in plan.encodes.values()
    }
    dcr_rows = [
        {"split": split, "setting": setting, "dcr": s["dcr"], "dcr_raw": s["dcr_raw"]}
        for (split, setting), s in dcr.items()
    ]
    rows = []
    for (train_setting, test_setting), stage in plan.evaluations.items():
        metrics = store.read_json("evaluate", stage.key, "metrics.json")
        train_dcr, test_dcr = dcr[("train", train_setting)], dcr[("test", test_setting)]
        for metric in sweep.task.metric_names:
            rows.append(
                {
                    "task": sweep.task_name,
                    "model": sweep.model.name,
                    "codec": sweep.codec.name,
                    "train_setting": train_setting,
                    "test_setting": test_setting,
                    "train_dcr": train_dcr["dcr"],
                    "test_dcr": test_dcr["dcr"],
                    "train_dcr_raw": train_dcr["dcr_raw"],
                    "test_dcr_raw": test_dcr["dcr_raw"],
                    "metric": metric,
                    "value": metrics[metric],
                }
            )
    return rows, dcr_rows


def make_tracker(sweep: Sweep):
    """The MLflow tracker with its database and experiment created (before any worker)."""
    if not sweep.tracking.enabled:
        return None
    from sweep.track import Tracker

    tracker = Tracker(
        sweep.tracking.uri, sweep.tracking.experiment, sweep.results_dir / "mlartifacts"
    )
    try:
        tracker.prepare()
    except Exception as error:  # MLflow raises many types for a bad store
        raise ConfigError(
            "tracking.uri", f"MLflow cannot use {sweep.tracking.uri}: {error}"
        ) from None
    return tracker


def run_sweep(sweep: Sweep) -> Path:
    """Runs a validated sweep to the end; returns its report folder."""
    plan = plan_sweep(sweep)
    log.info(
        "sweep %s: %d train x %d test settings, %d train / %d test images",
        plan.key,
        len(plan.train_settings),
        len(plan.test_settings),
        len(plan.splits["train"]),
        len(plan.splits["test"]),
    )
    tracker = make_tracker(sweep)
    sweep.store.remove_stale_temporaries()
    work = SweepWork(
        plan,
        sweep.store,
        sweep.reader.root,
        sweep.codec,
        sweep.task,
        sweep.model,
        sweep.options,
        sweep.seed,
    )
    try:
        execute(work, sweep.cluster, sweep.progress)
    finally:
        shutdown_ray()
    rows, dcr_rows = collect_results(sweep, plan)
    out = report_dir(sweep, plan)
    paths = write_report(rows, dcr_rows, out)
    (out / "config.yaml").write_text(sweep.config_yaml)
    write_json_atomic(out / "stages.json", stage_index(plan))
    if tracker is not None:
        summaries = {s: read_train_summary(sweep.store, t.key) for s, t in plan.trains.items()}
        from omegaconf import OmegaConf

        from sweep.track import flatten_config

        run_id = tracker.log_sweep(
            plan.key,
            out.name,
            flatten_config(OmegaConf.to_container(OmegaConf.create(sweep.config_yaml))),
            add_relative(rows),
            dcr_rows,
            summaries,
            {s: t.key for s, t in plan.trains.items()},
            [*paths.values(), out / "config.yaml", out / "stages.json"],
        )
        log.info(
            "MLflow: %s, experiment '%s', run %s",
            sweep.tracking.uri,
            sweep.tracking.experiment,
            run_id,
        )
    log.info("report: %s", out)
    return out


def stage_index(plan: SweepPlan) -> dict:
    """Where each cell's outputs are in the store, for people and tools reading the report."""
    return {
        "sweep": plan.key,
        "encode": {f"{s.split}/{s.setting}": s.key for s in plan.encodes.values()},
        "train": {setting: stage.key for setting, stage in plan.trains.items()},
        "evaluate": {f"{a}/{b}": stage.key for (a, b), stage in plan.evaluations.items()},
    }


def read_train_summary(store: ArtifactStore, key: str) -> dict:
    return json.loads((store.path("train", key) / "summary.json").read_text())


def shutdown_ray() -> None:
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
