"""The sensitivity part of a sweep's report: tables, figures and map files, from the store.

Written under `<report>/sensitivity/`:

    sensitivity.csv            every map value with its bootstrap interval over images
    sensitivity_summary.csv    per model, method, statistic and channel: the high-frequency
                               sensitivity and its share of the total, with intervals
    agreement.csv              with both methods: Spearman correlation of their maps
    maps_train=<s>_<method>_<statistic>.png     Y, Cb, Cr of one model, one colour scale
    maps_by_setting_<method>_<statistic>.png    every train setting's maps side by side
    radius_<method>_<statistic>.png             sensitivity against frequency radius
    map_train=<s>_<method>_<statistic>.json     the mean map, as codec=jpeg_tuned reads it
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from sweep.codecs.tuning_map import TuningMap
from sweep.errors import OptionError
from sweep.sensitivity.figures import (
    RadiusProfile,
    plot_channel_maps,
    plot_maps_by_setting,
    plot_radius_profiles,
)
from sweep.sensitivity.options import CHANNELS, METHODS, SensitivityOptions
from sweep.sensitivity.statistics import (
    HIGH,
    RINGS,
    Estimate,
    bootstrap,
    high_frequency_share,
    radius_profiles,
)
from sweep.spec import Sweep
from sweep.stages.graph import SweepPlan
from sweep.stages.kind import digest
from sweep.stages.sensitivity import (
    KIND,
    SensitivityStage,
    read_maps,
    read_summary,
    sensitivity_stage,
)
from sweep.store import ArtifactStore, replace_folder, temporary_tag
from sweep.tables import write_csv

FOLDER = "sensitivity"
log = logging.getLogger(__name__)
MAP_COLUMNS = [
    "task", "model", "train_setting", "channel", "i", "j", "value", "ci_low", "ci_high",
    "method", "statistic", "n_images", "blocks_per_image", "epsilon", "chroma_subsampling",
    "stage_key",
]  # fmt: skip
SUMMARY_COLUMNS = [
    "task", "model", "train_setting", "method", "statistic", "channel", "n_images",
    "mean", "high_freq_mean", "high_freq_low", "high_freq_high",
    "high_freq_share", "share_low", "share_high",
]  # fmt: skip
AGREEMENT_COLUMNS = [
    "train_setting", "statistic", "spearman", "spearman_Y", "spearman_Cb", "spearman_Cr",
    "blocks_finite", "n_images",
]  # fmt: skip
UNIT = {
    "clean_prob": "|Δ p(clean class)| per unit coefficient",
    "l1": "Σ|Δ p| over classes per unit coefficient",
}


@dataclass(frozen=True)
class ModelMaps:
    """One model's per-image maps of one statistic by one method, with its stage."""

    stage: SensitivityStage
    statistic: str
    per_image: np.ndarray  # (n, 3, 8, 8)
    summary: dict

    @property
    def name(self) -> str:
        return f"train={self.stage.setting}_{self.stage.method}_{self.statistic}"


def finished_stages(sweep: Sweep, plan: SweepPlan) -> list[SensitivityStage]:
    """The finished maps of the plan's models by either method, with the sweep's options.

    A sweep that plans one method still reports the other's maps when they are in the store
    (`python -m sweep.sensitivity` measures both): a later sweep never drops them.
    """
    planned = list(plan.sensitivities.values())
    if not planned:
        return []
    encode, model = planned[0].encode, sweep.model.eval_identity()
    found = []
    for train in plan.trains.values():
        for method in METHODS:
            stage = sensitivity_stage(train, encode, method, sweep.sensitivity, sweep.seed, model)
            if sweep.store.is_done(KIND.name, stage.key):
                found.append(stage)
    return found


def collect_maps(store: ArtifactStore, stages: list[SensitivityStage]) -> list[ModelMaps]:
    """The maps of finished sensitivity stages, one entry per statistic."""
    found = []
    for stage in stages:
        summary = read_summary(store, stage)
        for statistic, per_image in read_maps(store, stage).items():
            found.append(ModelMaps(stage, statistic, per_image, summary))
    return found


def tuning_map(stage: SensitivityStage, statistic: str, mean: np.ndarray, model: str) -> TuningMap:
    """A model's mean map (3, 8, 8) of one statistic, as a tuned JPEG's tables come from it."""
    return TuningMap(
        key=stage.key,
        label=f"{model} trained on {stage.setting}, {stage.method}/{statistic}",
        y=mean[0],
        cb=mean[1],
        cr=mean[2],
        method=stage.method,
        statistic=statistic,
        chroma_subsampling=stage.options.chroma_subsampling,
    )


def write_map_file(maps: ModelMaps, mean: np.ndarray, model: str, path: Path) -> Path | None:
    """The mean map as codec=jpeg_tuned reads it; None (logged) for a map no table can come
    from: a channel without any measured sensitivity (e.g. changes below float32's resolution
    of the probabilities, which the finite method can meet on a saturated model)."""
    try:
        tuning_map(maps.stage, maps.statistic, mean, model).to_json(path)
    except OptionError as error:
        log.warning("no map file for %s: %s", maps.name, error)
        return None
    return path


def map_rows(maps: ModelMaps, estimate: Estimate, task: str, model: str) -> list[dict]:
    summary = maps.summary
    blocks = summary["blocks_per_image"]
    rows = []
    for channel, name in enumerate(CHANNELS):
        for i in range(8):
            for j in range(8):
                rows.append(
                    {
                        "task": task,
                        "model": model,
                        "train_setting": maps.stage.setting,
                        "channel": name,
                        "i": i,
                        "j": j,
                        "value": estimate.value[channel, i, j],
                        "ci_low": estimate.low[channel, i, j],
                        "ci_high": estimate.high[channel, i, j],
                        "method": maps.stage.method,
                        "statistic": maps.statistic,
                        "n_images": summary["n_images"],
                        "blocks_per_image": blocks[name],
                        "epsilon": summary["epsilon"],
                        "chroma_subsampling": summary["chroma_subsampling"],
                        "stage_key": maps.stage.key,
                    }
                )
    return rows


def summary_rows(maps: ModelMaps, options: SensitivityOptions, task: str, model: str) -> list:
    high = bootstrap(maps.per_image[..., HIGH].mean(axis=-1), options.bootstrap)
    share = bootstrap(high_frequency_share(maps.per_image), options.bootstrap)
    mean = maps.per_image.mean(axis=(0, 2, 3))
    return [
        {
            "task": task,
            "model": model,
            "train_setting": maps.stage.setting,
            "method": maps.stage.method,
            "statistic": maps.statistic,
            "channel": name,
            "n_images": len(maps.per_image),
            "mean": mean[channel],
            "high_freq_mean": high.value[channel],
            "high_freq_low": high.low[channel],
            "high_freq_high": high.high[channel],
            "high_freq_share": share.value[channel],
            "share_low": share.low[channel],
            "share_high": share.high[channel],
        }
        for channel, name in enumerate(CHANNELS)
    ]


def agreement_rows(found: list[ModelMaps]) -> list[dict]:
    """Spearman correlation of the two methods' mean maps per model and statistic: over all
    192 values, and per channel over its 64 (the luma/chroma gap alone would lift the first).

    The finite maps average the blocks the finite method sampled (`blocks_finite`), the
    gradient maps every block: both estimate the mean over blocks, the finite one with
    sampling noise. `make bench` compares the two over every block.
    """
    by = {(m.stage.setting, m.stage.method, m.statistic): m for m in found}
    rows = []
    for (setting, method, statistic), gradient in by.items():
        finite = by.get((setting, "finite", statistic))
        if method != "gradient" or finite is None:
            continue
        a, b = gradient.per_image.mean(axis=0), finite.per_image.mean(axis=0)
        row = {
            "train_setting": setting,
            "statistic": statistic,
            "spearman": spearmanr(a.ravel(), b.ravel()).statistic,
            "blocks_finite": finite.summary["blocks_per_image"]["Y"],
            "n_images": min(len(gradient.per_image), len(finite.per_image)),
        }
        for channel, name in enumerate(CHANNELS):
            row[f"spearman_{name}"] = spearmanr(a[channel].ravel(), b[channel].ravel()).statistic
        rows.append(row)
    return rows


@dataclass
class SensitivityReport:
    """What the report wrote: files for the parent run, files and metrics per train setting."""

    parent_files: list[Path]
    files_by_setting: dict[str, list[Path]]
    metrics_by_setting: dict[str, dict[str, float]]
    parent_metrics: dict[str, float]
    # The sensitivity stages reported: MLflow holds them once (sweep/tracking/tracker.py).
    stage_keys: list[str]


def write_sensitivity_report(sweep: Sweep, plan: SweepPlan, out: Path) -> SensitivityReport | None:
    """Writes the sensitivity folder of a report, in full then in place of the previous
    one; None when the plan has no sensitivity stage."""
    options, task, model = sweep.sensitivity, sweep.task_name, sweep.model.name
    stages = finished_stages(sweep, plan)
    found = collect_maps(sweep.store, stages)
    if not found:
        return None
    folder = Path(out) / FOLDER
    staging = Path(out) / f".{FOLDER}.{temporary_tag()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    rows, summary, files = [], [], {}
    metrics: dict[str, dict[str, float]] = {}
    for maps in found:
        setting = maps.stage.setting
        estimate = bootstrap(maps.per_image, options.bootstrap)
        rows += map_rows(maps, estimate, task, model)
        summary += (model_summary := summary_rows(maps, options, task, model))
        title = f"{model} trained on {setting}: {maps.stage.method}, {maps.statistic}"
        figure = plot_channel_maps(
            estimate.value, staging / f"maps_{maps.name}.png", title, UNIT[maps.statistic]
        )
        files.setdefault(setting, []).append(figure)
        map_file = write_map_file(maps, estimate.value, model, staging / f"map_{maps.name}.json")
        if map_file is not None:
            files[setting].append(map_file)
        prefix = f"sensitivity/{maps.stage.method}/{maps.statistic}"
        for row in model_summary:
            channel_metrics = metrics.setdefault(setting, {})
            channel_metrics[f"{prefix}/{row['channel']}/high_freq_share"] = row["high_freq_share"]
            channel_metrics[f"{prefix}/{row['channel']}/mean"] = row["mean"]
    parent = [
        write_csv(rows, MAP_COLUMNS, staging / "sensitivity.csv"),
        write_csv(summary, SUMMARY_COLUMNS, staging / "sensitivity_summary.csv"),
    ]
    agreement = agreement_rows(found)
    parent_metrics = {}
    if agreement:
        parent.append(write_csv(agreement, AGREEMENT_COLUMNS, staging / "agreement.csv"))
        for row in agreement:
            name = f"sensitivity/agreement/{row['statistic']}/train_{row['train_setting']}"
            parent_metrics[name] = row["spearman"]
    parent += grid_figures(found, options, staging, model)
    replace_folder(staging, folder)
    return SensitivityReport(
        [folder / path.name for path in parent],
        {s: [folder / path.name for path in paths] for s, paths in files.items()},
        metrics,
        parent_metrics,
        sorted(stage.key for stage in stages),
    )


def grid_figures(
    found: list[ModelMaps], options: SensitivityOptions, folder: Path, model: str
) -> list[Path]:
    """Across the grid, per method and statistic: the maps side by side, and the radius
    profiles with their intervals."""
    paths = []
    groups: dict[tuple[str, str], list[ModelMaps]] = {}
    for maps in found:
        groups.setdefault((maps.stage.method, maps.statistic), []).append(maps)
    for (method, statistic), members in groups.items():
        suffix = f"{method}_{statistic}"
        means = {f"{m.stage.setting}": m.per_image.mean(axis=0) for m in members}
        paths.append(
            plot_maps_by_setting(
                means,
                folder / f"maps_by_setting_{suffix}.png",
                f"{model}: sensitivity maps by train setting ({method}, {statistic})",
                UNIT[statistic],
            )
        )
        profiles = []
        for maps in members:
            estimate = bootstrap(radius_profiles(maps.per_image), options.bootstrap)
            for channel, name in enumerate(CHANNELS):
                profiles.append(
                    RadiusProfile(
                        maps.stage.setting,
                        name,
                        RINGS,
                        estimate.value[channel],
                        estimate.low[channel],
                        estimate.high[channel],
                    )
                )
        paths.append(
            plot_radius_profiles(
                profiles,
                folder / f"radius_{suffix}.png",
                f"{model}: sensitivity by frequency radius ({method}, {statistic}; 95% bootstrap)",
                UNIT[statistic],
            )
        )
    return paths


def log_sensitivity(tracker, plan: SweepPlan, out: Path, report: SensitivityReport | None) -> None:
    """Logs a written sensitivity report to the sweep's MLflow parent and child runs
    (`tracker`: a `sweep.tracking.tracker.Tracker`, or a deferring one)."""
    if report is None:
        return
    tracker.log_sensitivity(
        plan.key,
        out.name,
        digest(report.stage_keys),
        {setting: stage.key for setting, stage in plan.trains.items()},
        report.files_by_setting,
        report.metrics_by_setting,
        report.parent_files,
        report.parent_metrics,
    )
