"""The measured distortion of the encoded images per codec setting: distortion.csv, one
2 x 2 figure, and MLflow metrics, read from the sweep's distortion stages."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np

# Reports are produced on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from sweep.codecs.base import Codec
from sweep.figures import save_figure
from sweep.report.axis import DEFAULT_AXIS, SettingAxis, set_setting_ticks  # noqa: E402
from sweep.report.summarize import read_output, setting_axis
from sweep.report.tables import DISTORTION_COLUMNS
from sweep.spec import Sweep
from sweep.stages.graph import SweepPlan
from sweep.tables import write_csv

# Panels of the distortion figure: (title, measures drawn in it).
DISTORTION_PANELS = (
    ("Butteraugli distance (measured)", ("butteraugli_3norm", "butteraugli_max")),
    ("SSIMULACRA2 (100 = identical)", ("ssimulacra2",)),
    ("PSNR (dB)", ("psnr",)),
    ("SSIM", ("ssim",)),
)
# Measures where more is worse: their worst tenth of the images is above the 90th percentile.
HIGHER_IS_WORSE = ("butteraugli_max", "butteraugli_3norm")
SIDES = ("low", "high")


def none_as_nan(value: float | None) -> float:
    return math.nan if value is None else value


def worst_tenth(row: dict) -> float | None:
    """The boundary of the worst 10% of images: p90 of Butteraugli, p10 of the others."""
    return row.get("p90") if row["measure"] in HIGHER_IS_WORSE else row.get("p10")


def plot_distortion(
    rows: list[dict], path: Path, axis: SettingAxis = DEFAULT_AXIS, target_is_distance: bool = False
) -> Path:
    """Measured distortion per setting: the median as a line in its 95% interval (shaded,
    where the rows have one), the worst 10% dotted.

    Args:
        rows: Dicts with ``setting``, ``measure``, ``median``, ``p10`` and ``p90`` (one split),
            optionally ``median_ci_low`` and ``median_ci_high``.
        path: Destination PNG.
        axis: Positions and title of the codec's settings.
        target_is_distance: The settings are target Butteraugli distances: draw measured =
            target in the Butteraugli panel, so overshoot shows as the gap above it.
    """
    fig, axes = plt.subplots(2, 2, figsize=(11.0, 8.0), layout="constrained")
    for ax, (title, measures) in zip(axes.flat, DISTORTION_PANELS, strict=True):
        drawn = False
        for index, measure in enumerate(measures):
            points = sorted(
                (r for r in rows if r["measure"] == measure and r["median"] is not None),
                key=lambda r: axis.position(r["setting"]),
            )
            if not points:
                continue
            xs = [axis.position(r["setting"]) for r in points]
            colour = f"C{index}"
            ax.plot(
                xs, [r["median"] for r in points], "o-", color=colour, label=f"{measure} median"
            )
            band = [[none_as_nan(r.get(f"median_ci_{side}")) for r in points] for side in SIDES]
            if np.isfinite(band).any():
                ax.fill_between(
                    xs, *band, color=colour, alpha=0.2, label=f"{measure} median, 95% CI"
                )
            worst = [worst_tenth(r) for r in points]
            ax.plot(xs, worst, ":", color=colour, label=f"{measure}, worst 10%")
            set_setting_ticks(ax.xaxis, [r["setting"] for r in points], axis)
            drawn = True
        if target_is_distance and measures[0].startswith("butteraugli") and drawn:
            limit = max(axis.position(r["setting"]) for r in rows)
            ax.plot([0, limit], [0, limit], "--", color="grey", label="measured = target")
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
        ax.set(title=title, xlabel=axis.label)
        ax.grid(True, alpha=0.4)
    fig.suptitle("Measured distortion of the encoded images, per setting")
    return save_figure(fig, path)


# distortion.csv: DISTORTION_COLUMNS, then the mean, the 95% intervals of the median and the
# mean (bootstrap over the measured images), and how many of the split's images were measured.
DISTORTION_EXTRA_COLUMNS = [
    "mean",
    "median_ci_low",
    "median_ci_high",
    "mean_ci_low",
    "mean_ci_high",
    "measured",
    "images",
]
# MLflow metrics of each split, setting and measure (finite values only).
DISTORTION_METRIC_STATS = ("median", "p10", "p90", "mean", *DISTORTION_EXTRA_COLUMNS[1:5])


def distortion_rows(sweep: Sweep, plan: SweepPlan) -> list[dict]:
    """Per split, setting and measure: median, p10, p90, mean, the intervals of the median
    and the mean, and counts, of the measured images (`measured` of the split's `images`)."""
    rows = []
    for (split, setting), stage in plan.distortions.items():
        summary = read_output(sweep.store, stage)
        sampled = {"measured": summary.get("measured"), "images": summary.get("images")}
        for measure, stats in summary["measures"].items():
            rows.append(
                {"split": split, "setting": setting, "measure": measure, **stats, **sampled}
            )
    return rows


def write_distortion(rows: list[dict], out: Path, codec: Codec, plan: SweepPlan) -> dict[str, Path]:
    """distortion.csv and the figure of the test split (the first measured split otherwise)."""
    if not rows:
        return {}
    columns = [*DISTORTION_COLUMNS, *DISTORTION_EXTRA_COLUMNS]
    paths = {"distortion.csv": write_csv(rows, columns, out / "distortion.csv")}
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
    """MLflow metrics distortion/<split>/<setting>/<measure>/<stat> (finite only): median,
    p10, p90, mean and the bounds of the median's and the mean's intervals."""
    metrics = {}
    for row in rows:
        for stat in DISTORTION_METRIC_STATS:
            value = row.get(stat)
            if value is not None:
                name = f"distortion/{row['split']}/{row['setting']}/{row['measure']}/{stat}"
                metrics[name] = value
    return metrics
