"""A whole sweep: plan, run the unfinished stages, write the report, log to MLflow."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sweep.compare import write_comparison
from sweep.config import ConfigError, Sweep, TrackingOptions
from sweep.data.base import SPLITS, ImageItem
from sweep.data.validate import QUARANTINED, decoder_identity
from sweep.execute import SweepWork, execute, validate_splits
from sweep.plan import SweepPlan, build_plan, digest, validate_stage
from sweep.report import write_report
from sweep.report.axis import SettingAxis
from sweep.report.distortion_figure import plot_distortion
from sweep.report.tables import DISTORTION_COLUMNS, add_relative
from sweep.report.tables import write_csv as write_table
from sweep.stages import ImageReadError, read_verdicts
from sweep.store import ArtifactStore, write_json_atomic, write_text_atomic

# Report files beside the results table and figures, logged to MLflow with them.
REPORT_EXTRAS = ("config.yaml", "stages.json", "quarantine.csv", "conversions.csv")

log = logging.getLogger(__name__)


@dataclass
class Screening:
    """The images of each split after the bad-image policy, and what it found."""

    splits: dict[str, list[ImageItem]]
    # Identity of each split's kept images, derived from the validation: no second stat pass.
    fingerprints: dict[str, str] = field(default_factory=dict)
    quarantined: list[dict] = field(default_factory=list)
    converted: list[dict] = field(default_factory=list)

    def counts(self) -> dict[str, float]:
        counts = {}
        for split in SPLITS:
            counts[f"quarantined/{split}"] = sum(r["split"] == split for r in self.quarantined)
            counts[f"converted/{split}"] = sum(r["split"] == split for r in self.converted)
        return counts


def screen_images(sweep: Sweep) -> Screening:
    """Decodes every image once (cached by dataset fingerprint) and applies the policy."""
    listed = {split: sweep.reader.items(split) for split in SPLITS}
    shard_size = sweep.cluster.encode_shard_size
    validations = [
        validate_stage(sweep.reader, split, items, decoder_identity(), shard_size)
        for split, items in listed.items()
    ]
    fail_fast = sweep.on_error == "fail"
    validate_splits(
        sweep.store,
        validations,
        listed,
        sweep.reader.root,
        sweep.cluster,
        sweep.progress,
        fail_fast,
    )
    screening = Screening({})
    for stage in validations:
        verdicts = read_verdicts(sweep.store, stage)
        kept = []
        for item, found in zip(listed[stage.split], verdicts, strict=True):
            if found["status"] == QUARANTINED:
                if fail_fast:
                    raise ImageReadError(
                        f"{sweep.reader.root / item.relpath}: {found['reason']} "
                        f"(data.on_error=fail)"
                    )
                screening.quarantined.append(
                    {"split": stage.split, "path": item.relpath, "reason": found["reason"]}
                )
                continue
            if found["kinds"]:
                screening.converted.append(
                    {"split": stage.split, "path": item.relpath, "kinds": " ".join(found["kinds"])}
                )
            kept.append(item)
        screening.splits[stage.split] = kept
        dropped = [r["path"] for r in screening.quarantined if r["split"] == stage.split]
        screening.fingerprints[stage.split] = digest({"validated": stage.key, "dropped": dropped})
    if screening.quarantined:
        log.warning(
            "%d unreadable image(s) quarantined, left out of every cell (listed in "
            "quarantine.csv): %s",
            len(screening.quarantined),
            ", ".join(r["path"] for r in screening.quarantined[:5]),
        )
    return screening


def plan_sweep(sweep: Sweep, screening: Screening | None = None) -> SweepPlan:
    """The sweep's stages over the screened images (by default every listed image)."""
    if screening is None:
        splits = {split: sweep.reader.items(split) for split in SPLITS}
        screening = Screening(splits, {s: sweep.reader.fingerprint(i) for s, i in splits.items()})
    return build_plan(
        sweep.reader,
        screening.splits,
        screening.fingerprints,
        sweep.codec,
        sweep.task.identity(),
        sweep.model.identity(),
        sweep.options.__dict__,
        sweep.seed,
        sweep.train_settings,
        sweep.test_settings,
        sweep.cluster.encode_shard_size,
        distortion=sweep.distortion,
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


def make_tracker(tracking: TrackingOptions, results_dir: Path):
    """The MLflow tracker with its database and experiment created (before any worker)."""
    if not tracking.enabled:
        return None
    from sweep.track import Tracker

    tracker = Tracker(tracking.uri, tracking.experiment, results_dir / "mlartifacts")
    try:
        tracker.prepare()
    except Exception as error:  # MLflow raises many types for a bad store
        raise ConfigError("tracking.uri", f"MLflow cannot use {tracking.uri}: {error}") from None
    return tracker


def run_sweep(sweep: Sweep) -> Path:
    """Runs a validated sweep to the end; returns its report folder."""
    tracker = make_tracker(sweep.tracking, sweep.results_dir)
    sweep.store.remove_stale_temporaries()
    try:
        screening = screen_images(sweep)
        plan = plan_sweep(sweep, screening)
        log.info(
            "sweep %s: %d train x %d test settings, %d train / %d test images",
            plan.key,
            len(plan.train_settings),
            len(plan.test_settings),
            len(plan.splits["train"]),
            len(plan.splits["test"]),
        )
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
        execute(work, sweep.cluster, sweep.progress)
    finally:
        shutdown_ray()
        # A worker killed mid-write leaves its temporary folder; its task was retried.
        sweep.store.remove_stale_temporaries()
    rows, dcr_rows = collect_results(sweep, plan)
    out = report_dir(sweep, plan)
    paths = write_report(rows, dcr_rows, out, setting_axis(sweep.codec, plan))
    write_text_atomic(out / "config.yaml", sweep.config_yaml)
    write_json_atomic(out / "stages.json", stage_index(plan))
    write_table(screening.quarantined, ["split", "path", "reason"], out / "quarantine.csv")
    write_table(screening.converted, ["split", "path", "kinds"], out / "conversions.csv")
    distortion = distortion_rows(sweep.store, plan)
    paths |= write_distortion(distortion, out, sweep.codec, plan)
    comparison, within = compare_codecs(sweep)
    own = {
        f"dcr_within_1pct/{r['metric']}/{r['curve']}": r["dcr_within"]
        for r in within
        if r["codec"] == sweep.codec.name
    }
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
            [*paths.values(), *(out / name for name in REPORT_EXTRAS)],
            screening.counts() | own | distortion_metrics(distortion),
        )
        if comparison:
            tracker.log_comparison(sweep.task_name, sweep.model.name, within, comparison.values())
        log.info(
            "MLflow: %s, experiment '%s', run %s",
            sweep.tracking.uri,
            sweep.tracking.experiment,
            run_id,
        )
    log.info("report: %s", out)
    return out


def setting_axis(codec, plan: SweepPlan) -> SettingAxis:
    """The codec's settings as a figure axis (positions grow with compression)."""
    settings = {*plan.train_settings, *plan.test_settings}
    return SettingAxis(codec.axis_label, {s: codec.setting_position(s) for s in settings})


def distortion_rows(store: ArtifactStore, plan: SweepPlan) -> list[dict]:
    """Per split, setting and measure: median, p10, p90 and counts of the measured images."""
    rows = []
    for (split, setting), stage in plan.distortions.items():
        summary = store.read_json("distortion", stage.key, "summary.json")
        for measure, stats in summary["measures"].items():
            rows.append({"split": split, "setting": setting, "measure": measure, **stats})
    return rows


def write_distortion(rows: list[dict], out: Path, codec, plan: SweepPlan) -> dict[str, Path]:
    """distortion.csv and the figure of the test split (the first measured split otherwise)."""
    if not rows:
        return {}
    paths = {"distortion.csv": write_table(rows, DISTORTION_COLUMNS, out / "distortion.csv")}
    splits = [r["split"] for r in rows]
    split = "test" if "test" in splits else splits[0]
    paths["distortion_by_setting"] = plot_distortion(
        [r for r in rows if r["split"] == split],
        out / "distortion_by_setting.png",
        setting_axis(codec, plan),
        target_is_distance=codec.settings_are_distances,
    )
    return paths


def distortion_metrics(rows: list[dict]) -> dict[str, float]:
    """MLflow metrics distortion/<split>/<setting>/<measure>/{median,p10,p90} (finite only)."""
    metrics = {}
    for row in rows:
        for stat in ("median", "p10", "p90"):
            value = row.get(stat)
            if value is not None:
                name = f"distortion/{row['split']}/{row['setting']}/{row['measure']}/{stat}"
                metrics[name] = value
    return metrics


def compare_codecs(sweep: Sweep) -> tuple[dict[str, Path], list[dict]]:
    """Redraws every codec's newest sweep of this task and model together (see compare.py).

    The sweep's own report is complete before this runs; a sibling report that cannot be
    read is named in a warning and leaves this sweep's results untouched.
    """
    reports = sweep.results_dir / "reports"
    try:
        paths, table = write_comparison(reports, sweep.task_name, sweep.model.name)
    except (OSError, ValueError, KeyError) as error:
        log.warning("codec comparison under %s not updated: %s", reports, error)
        return {}, []
    folder = next(iter(paths.values())).parent
    log.info("codec comparison (%d codec(s)): %s", len({r["codec"] for r in table}), folder)
    return paths, table


def stage_index(plan: SweepPlan) -> dict:
    """Where each cell's outputs are in the store, for people and tools reading the report."""
    return {
        "sweep": plan.key,
        "encode": {f"{s.split}/{s.setting}": s.key for s in plan.encodes.values()},
        "train": {setting: stage.key for setting, stage in plan.trains.items()},
        "evaluate": {f"{a}/{b}": stage.key for (a, b), stage in plan.evaluations.items()},
        "distortion": {f"{s.split}/{s.setting}": s.key for s in plan.distortions.values()},
    }


def read_train_summary(store: ArtifactStore, key: str) -> dict:
    return json.loads((store.path("train", key) / "summary.json").read_text())


def shutdown_ray() -> None:
    import sys

    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
