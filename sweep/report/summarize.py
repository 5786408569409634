"""The summarize step: a finished plan's outputs, read from the store, as the report folder.

The grid's rows (one per cell, seed and metric) and DCRs, the report folder with results.csv
and its figures (results.py), the stage index, and the recommendation. Every output is read
through its stage kind's `read`, so this module needs no store layout of its own.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from sweep.analysis.intervals import REFERENCE, SweepIntervals
from sweep.analysis.recommendation import SCENARIOS, recommend
from sweep.codecs.base import MIXED, Codec
from sweep.report.axis import SettingAxis
from sweep.report.results import write_report
from sweep.report.tables import headline_rows, with_seed_means
from sweep.spec import Sweep
from sweep.stages.graph import SweepPlan
from sweep.stages.kind import Stage
from sweep.stages.table import STAGE_KINDS
from sweep.stages.validate import Screening
from sweep.store import ArtifactStore, write_json_atomic, write_text_atomic
from sweep.tables import write_csv

# Report files beside the results table and figures, logged to MLflow with them.
REPORT_EXTRAS = ("config.yaml", "stages.json", "classes.txt", "quarantine.csv", "conversions.csv")

log = logging.getLogger(__name__)

# The DCR of a train setting with no encode of its own (`mixed`).
NO_DCR = {"dcr": math.nan, "dcr_raw": math.nan}


def read_output(store: ArtifactStore, stage: Stage) -> dict:
    """A finished stage's summary, read the way its kind reads it."""
    return STAGE_KINDS[stage.kind].read(store, stage)


def report_dir(sweep: Sweep, plan: SweepPlan) -> Path:
    """One folder per distinct sweep, so that no sweep overwrites another's report."""
    name = f"{sweep.task_name}_{sweep.model.name}_{sweep.codec.name}_{plan.key[:8]}"
    return sweep.results_dir / "reports" / name


def collect_results(sweep: Sweep, plan: SweepPlan) -> tuple[list[dict], list[dict]]:
    """Result rows (one per cell, seed and metric, and with several seeds one per cell and
    metric with their mean; without 'relative') and DCR rows, from the store."""
    store = sweep.store
    dcr = {ident: read_output(store, stage) for ident, stage in plan.encodes.items()}
    dcr_rows = [
        {
            "split": split,
            "setting": setting,
            "dcr": s["dcr"],
            "dcr_raw": s["dcr_raw"],
            "original_bytes": s["original_bytes"],
            "encoded_bytes": s["encoded_bytes"],
        }
        for (split, setting), s in dcr.items()
    ]
    rows = []
    for (train_setting, test_setting, seed), stage in plan.replicate_evaluations.items():
        metrics = read_output(store, stage)
        # A mix reads several encodes and keeps every one: it saves no storage (NaN).
        train_dcr = dcr.get(("train", train_setting), NO_DCR)
        test_dcr = dcr[("test", test_setting)]
        for metric in sweep.task.metric_names:
            rows.append(
                {
                    "task": sweep.task_name,
                    "model": sweep.model.name,
                    "codec": sweep.codec.name,
                    "train_setting": train_setting,
                    "test_setting": test_setting,
                    "seed": seed,
                    "train_dcr": train_dcr["dcr"],
                    "test_dcr": test_dcr["dcr"],
                    "train_dcr_raw": train_dcr["dcr_raw"],
                    "test_dcr_raw": test_dcr["dcr_raw"],
                    "metric": metric,
                    "value": metrics[metric],
                }
            )
    return with_seed_means(rows), dcr_rows


def setting_axis(codec: Codec, plan: SweepPlan) -> SettingAxis:
    """The codec's settings as a figure axis (positions grow with compression)."""
    settings = {*plan.train_settings, *plan.test_settings} - {MIXED}
    positions = {s: codec.setting_position(s) for s in settings}
    if MIXED in plan.train_settings:  # a row of its own, one step beyond the last setting
        ordered = sorted(positions.values())
        step = (ordered[-1] - ordered[0]) / max(len(ordered) - 1, 1) or 1.0
        positions[MIXED] = ordered[-1] + step
    return SettingAxis(codec.axis_label, positions)


def stage_index(plan: SweepPlan) -> dict:
    """Where each stage's outputs are in the store, by kind, for people and tools reading the
    report: {"sweep": key, <kind>: {"<ident>": key}} (idents of cells and splits joined by /)."""
    index: dict = {"sweep": plan.key}
    for name, kind in STAGE_KINDS.items():
        if kind.plan is not None:  # the sweep's own kinds (validation is screening's)
            index[name] = {
                index_ident(ident, name, plan): stage.key
                for ident, stage in plan.of_kind(name).items()
            }
    return index


def index_ident(ident, kind: str, plan: SweepPlan) -> str:
    """ "original/4" for a cell; a training's or cell's seed only when the sweep has several
    ("original/4/seed=1")."""
    parts = list(ident) if isinstance(ident, tuple) else [ident]
    if kind in ("train", "evaluate"):
        seed = parts.pop()
        if len(plan.seeds) > 1:
            parts.append(f"seed={seed}")
    return "/".join(str(part) for part in parts)


def write_sweep_report(
    sweep: Sweep, plan: SweepPlan, screening: Screening, rows: list[dict], dcr_rows: list[dict]
) -> tuple[Path, dict[str, Path]]:
    """The sweep's report folder, with results.csv, its figures, the config, the stage
    index, the class list and the screening's tables; returns it and its files."""
    out = report_dir(sweep, plan)
    paths = write_report(rows, dcr_rows, out, setting_axis(sweep.codec, plan))
    write_text_atomic(out / "config.yaml", sweep.config_yaml)
    write_json_atomic(out / "stages.json", stage_index(plan))
    # The class list in label order (given, read from a file, or discovered), in the form
    # task.reader.classes=<file> reads back.
    write_text_atomic(out / "classes.txt", "".join(f"{name}\n" for name in plan.class_names))
    write_csv(screening.quarantined, ["split", "path", "reason"], out / "quarantine.csv")
    write_csv(screening.converted, ["split", "path", "kinds"], out / "conversions.csv")
    if sweep.codec.tuning_map is not None:  # a codec tuned to a sensitivity map names it
        sweep.codec.tuning_map.to_json(out / "codec_map.json")
        paths["codec_map.json"] = out / "codec_map.json"
    return out, paths


def describe_setting(codec: Codec, setting: str) -> str:
    """A setting in words: "distance 2" for a codec of distances, "jpeg q80" otherwise."""
    return f"distance {setting}" if codec.settings_are_distances else f"{codec.name} {setting}"


def write_recommendation(
    sweep: Sweep,
    rows: list[dict],
    dcr_rows: list[dict],
    intervals: SweepIntervals | None,
    out: Path,
) -> tuple[dict, Path]:
    """recommendation.json (sweep/analysis/recommendation.py) for the headline metric; without
    intervals, every scenario says why there is none; with original/original at chance, that
    the grid cannot answer."""
    metric = sweep.task.metric_names[0]
    values = {
        (r["train_setting"], r["test_setting"]): float(r["value"])
        for r in headline_rows(rows)
        if r["metric"] == metric
    }
    if intervals is None or intervals.relative is None or REFERENCE not in values:
        reason = (
            f"no recommendation: {metric} has no intervals in this sweep (see the log), and a "
            f"setting is recommended only when it is surely within the threshold"
        )
        content = {
            "metric": metric,
            "threshold": sweep.recommend.threshold,
            "scenarios": {
                scenario.name: {"recommended": None, "sentence": reason, "candidates": []}
                for scenario in SCENARIOS
            },
        }
    else:
        reference = values[REFERENCE]
        relative = {
            cell: v / reference if reference else float("nan") for cell, v in values.items()
        }
        content = recommend(
            metric,
            values,
            relative,
            intervals.headline_relative(metric),
            dcr_rows,
            lambda setting: describe_setting(sweep.codec, setting),
            sweep.recommend,
            sweep.intervals.confidence,
            intervals.chance.get(metric),
        )
    path = out / "recommendation.json"
    write_json_atomic(path, json_safe(content))
    return content, path


def json_safe(value):
    """NaN and infinities as null (JSON has no NaN), in nested dicts and lists."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
