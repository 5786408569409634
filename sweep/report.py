"""Results table and figures for a finished train x test compression sweep.

Turns the per-cell evaluation rows into ``results.csv`` (with each value relative to the
original/original cell), one interpolated heatmap per metric and axis kind, and a plot of the
data compression rate (DCR) per codec setting. Every file is written atomically so a
crashed or concurrent run never leaves a half-written report behind.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

# Reports are produced on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from scipy.interpolate import griddata  # noqa: E402
from scipy.spatial import QhullError  # noqa: E402

from sweep.store import atomic_write  # noqa: E402

RESULT_COLUMNS = [
    "task", "model", "codec", "train_setting", "test_setting",
    "train_dcr", "test_dcr", "train_dcr_raw", "test_dcr_raw",
    "metric", "value", "relative",
]  # fmt: skip

ORIGINAL = "original"
log = logging.getLogger(__name__)
DPI = 120
GRID_RESOLUTION = 200
CMAP = "viridis"


@dataclass(frozen=True)
class SettingAxis:
    """How a codec's settings lie on a figure axis.

    Args:
        label: Axis title ("Butteraugli distance (target)", "JPEG quality").
        positions: Position of each setting (0 for original, growing with compression); a
            setting missing here falls back to `setting_position`.
    """

    label: str = "Butteraugli distance"
    positions: Mapping[str, float] = field(default_factory=dict)

    def position(self, setting: str) -> float:
        if setting in self.positions:
            return float(self.positions[setting])
        return setting_position(setting)


DEFAULT_AXIS = SettingAxis()


def setting_position(setting: str) -> float:
    """Maps a codec setting string to its position on a numeric axis.

    Args:
        setting: ``"original"`` or a Butteraugli distance written as a string (``"0.5"``).

    Returns:
        0.0 for ``"original"`` (no re-encoding is the zero-distortion end), else the distance.
    """
    return 0.0 if setting == ORIGINAL else float(setting)


def _setting_label(setting: str) -> str:
    """Returns the short tick label for a setting ("orig" keeps crowded axes readable)."""
    return "orig" if setting == ORIGINAL else setting


def add_relative(rows: list[dict]) -> list[dict]:
    """Adds ``relative`` = value / value of the same metric's original/original cell.

    Args:
        rows: Result rows with every ``RESULT_COLUMNS`` key except ``relative``.

    Returns:
        New dicts (the inputs are not modified) with a float ``relative`` key. A metric whose
        original/original value is 0 or not finite (an mAP of 0 after a short training) has
        no relative values: they are NaN, with a warning, and every absolute value is kept.

    Raises:
        ValueError: If a metric has no original/original row.
    """
    references = {
        row["metric"]: float(row["value"])
        for row in rows
        if row["train_setting"] == ORIGINAL and row["test_setting"] == ORIGINAL
    }
    out = []
    for row in rows:
        metric = row["metric"]
        reference = references.get(metric)
        if reference is None:
            raise ValueError(f"metric {metric!r} has no original/original reference row")
        if reference == 0 or not math.isfinite(reference):
            out.append({**row, "relative": math.nan})
            continue
        out.append({**row, "relative": float(row["value"]) / reference})
    for metric, reference in sorted(references.items()):
        if reference == 0 or not math.isfinite(reference):
            log.warning(
                "%s is %r at original/original: relative values are undefined (NaN); the "
                "absolute values are in results.csv",
                metric,
                reference,
            )
    return out


def write_table(rows: list[dict], columns: list[str], path: Path) -> Path:
    """Writes rows as CSV with the given columns, atomically (a header only when empty)."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(path, write)


def _csv_cell(value: object) -> object:
    """Formats floats with ``repr`` so they round-trip exactly (numpy scalars included)."""
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return value


def write_results_csv(rows: list[dict], path: Path, axis: SettingAxis = DEFAULT_AXIS) -> Path:
    """Writes result rows to CSV, sorted by metric, train setting and test setting.

    Args:
        rows: Rows with every ``RESULT_COLUMNS`` key (including ``relative``).
        path: Destination file.
        axis: Orders the settings.

    Returns:
        ``path``.
    """
    ordered = sorted(
        rows,
        key=lambda r: (
            r["metric"],
            axis.position(r["train_setting"]),
            axis.position(r["test_setting"]),
        ),
    )

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(RESULT_COLUMNS)
            for row in ordered:
                writer.writerow([_csv_cell(row[col]) for col in RESULT_COLUMNS])

    return atomic_write(path, write)


def _save_figure(fig: plt.Figure, path: Path) -> Path:
    """Saves ``fig`` as PNG atomically and always closes it so long sweeps do not leak figures."""
    try:
        # format is explicit because the temp name has no .png suffix to infer it from.
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    finally:
        plt.close(fig)


def interpolate_grid(
    xs: np.ndarray, ys: np.ndarray, values: np.ndarray, resolution: int = GRID_RESOLUTION
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linearly interpolates scattered cells onto a regular grid over their bounding box.

    Args:
        xs: X coordinate of each observed cell.
        ys: Y coordinate of each observed cell.
        values: Observed value of each cell.
        resolution: Number of grid samples along each axis.

    Returns:
        ``(grid_x, grid_y, grid)`` where ``grid[i, j]`` is the value at ``(grid_x[j], grid_y[i])``
        (NaN outside the convex hull of the observed cells).
    """
    xs, ys, values = (np.asarray(a, dtype=float) for a in (xs, ys, values))
    grid_x = np.linspace(xs.min(), xs.max(), resolution)
    grid_y = np.linspace(ys.min(), ys.max(), resolution)
    mesh_x, mesh_y = np.meshgrid(grid_x, grid_y)
    grid = griddata((xs, ys), values, (mesh_x, mesh_y), method="linear")
    return grid_x, grid_y, grid


def _padded_limits(coords: np.ndarray) -> tuple[float, float]:
    """Axis limits with a margin so circles on the outermost cells are not clipped."""
    lo, hi = float(coords.min()), float(coords.max())
    pad = 0.08 * (hi - lo) if hi > lo else 0.5
    return lo - pad, hi + pad


def _min_gap_fraction(coords: np.ndarray) -> float:
    """Smallest gap between distinct coordinates as a fraction of their span (1.0 if < 2)."""
    unique = np.unique(coords)
    if len(unique) < 2:
        return 1.0
    return float(np.diff(unique).min() / (unique[-1] - unique[0]))


def _set_setting_ticks(
    axis: matplotlib.axis.Axis, settings: list[str], setting_axis: SettingAxis
) -> None:
    """Puts one tick per observed setting, labelled with the setting string."""
    unique = sorted(set(settings), key=setting_axis.position)
    positions = [setting_axis.position(s) for s in unique]
    axis.set_ticks(positions, [_setting_label(s) for s in unique])
    # Small distances crowd on a linear axis ("orig", "0.5", "1"); tilt x labels apart.
    if axis.axis_name == "x" and _min_gap_fraction(np.array(positions)) < 0.08:
        axis.set_tick_params(labelrotation=45)


def _cell_coordinates(
    cells: list[dict], axes: str, axis: SettingAxis
) -> tuple[np.ndarray, np.ndarray, str, str]:
    """Returns x (test) and y (train) coordinates of each cell plus the two axis labels."""
    if axes == "setting":
        xs = np.array([axis.position(r["test_setting"]) for r in cells])
        ys = np.array([axis.position(r["train_setting"]) for r in cells])
        return xs, ys, f"test {axis.label}", f"train {axis.label}"
    if axes == "dcr":
        xs = np.array([100.0 * float(r["test_dcr"]) for r in cells])
        ys = np.array([100.0 * float(r["train_dcr"]) for r in cells])
        return xs, ys, "test DCR (%)", "train DCR (%)"
    raise ValueError(f"axes must be 'setting' or 'dcr', got {axes!r}")


def _draw_cells(ax: plt.Axes, xs: np.ndarray, ys: np.ndarray, percent: np.ndarray,
                norm: Normalize) -> matplotlib.collections.PathCollection:  # fmt: skip
    """Draws the observed cells as labelled circles sized to not overlap their neighbours."""
    # ~400 pt of axes per direction at this figure size; the padding adds 16 % to each span.
    gap = min(_min_gap_fraction(xs), _min_gap_fraction(ys)) / 1.16 * 400
    diameter = float(np.clip(0.9 * gap, 16.0, 26.0))
    scatter = ax.scatter(xs, ys, c=percent, cmap=CMAP, norm=norm, s=diameter**2,
                         edgecolors="black", linewidths=1.0, zorder=3)  # fmt: skip
    cmap = scatter.get_cmap()
    for x, y, p in zip(xs, ys, percent, strict=True):
        # Dark text on the light end of the colormap, white on the dark end.
        r, g, b, _ = cmap(norm(p))
        color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
        ax.annotate(f"{p:.1f}", (x, y), ha="center", va="center", color=color, zorder=4,
                    fontsize=float(np.clip(diameter / 3.3, 5.5, 7.5)))  # fmt: skip
    return scatter


def plot_relative_heatmap(
    rows: list[dict],
    metric: str,
    path: Path,
    axes: str = "setting",
    axis: SettingAxis = DEFAULT_AXIS,
) -> Path:
    """Draws the relative metric over train x test as an interpolated heatmap with cell markers.

    Args:
        rows: Rows with ``relative`` (see ``add_relative``); other metrics are ignored.
        metric: Metric to plot.
        path: Destination PNG.
        axes: ``"setting"`` for codec-setting coordinates, ``"dcr"`` for DCR in percent.
        axis: Positions and title of the codec's settings.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``axes`` is unknown or ``metric`` has no rows.
    """
    cells = [r for r in rows if r["metric"] == metric]
    xs, ys, xlabel, ylabel = _cell_coordinates(cells, axes, axis)
    if not cells:
        raise ValueError(f"no rows for metric {metric!r}")
    percent = np.array([100.0 * float(r["relative"]) for r in cells])
    vmin, vmax = float(percent.min()), float(percent.max())
    if vmin == vmax:  # a single value (e.g. 1x1 grid) would give a zero-width colour scale
        vmin, vmax = vmin - 0.5, vmax + 0.5
    norm = Normalize(vmin=vmin, vmax=vmax)

    fig, ax = plt.subplots(figsize=(7.5, 6.0), layout="constrained")
    # griddata needs a 2-D hull: with < 3 distinct positions on an axis show only the cells.
    if len(np.unique(xs)) >= 3 and len(np.unique(ys)) >= 3:
        try:
            gx, gy, grid = interpolate_grid(xs, ys, percent)
            ax.imshow(grid, origin="lower", aspect="auto", cmap=CMAP, norm=norm,
                      extent=(gx[0], gx[-1], gy[0], gy[-1]))  # fmt: skip
        except QhullError:  # collinear cells (e.g. equal DCRs): the circles still tell it all
            pass
    scatter = _draw_cells(ax, xs, ys, percent, norm)
    fig.colorbar(scatter, ax=ax, label=f"relative {metric} (%)")
    if axes == "setting":
        _set_setting_ticks(ax.xaxis, [r["test_setting"] for r in cells], axis)
        _set_setting_ticks(ax.yaxis, [r["train_setting"] for r in cells], axis)
    ax.set_xlim(*_padded_limits(xs))
    ax.set_ylim(*_padded_limits(ys))
    ax.set(xlabel=xlabel, ylabel=ylabel)
    ax.set_title(f"Relative {metric} (train x test, % of original/original)")
    return _save_figure(fig, path)


def plot_dcr_curves(dcr_rows: list[dict], path: Path, axis: SettingAxis = DEFAULT_AXIS) -> Path:
    """Plots DCR per codec setting, one line per split and DCR definition.

    Args:
        dcr_rows: Dicts with ``split``, ``setting``, ``dcr`` and ``dcr_raw`` (fractions 0..1).
        path: Destination PNG.
        axis: Positions and title of the codec's settings.

    Returns:
        ``path``.
    """
    fig, ax = plt.subplots(figsize=(7.5, 5.0), layout="constrained")
    definitions = (("dcr", "vs original files", "C0"), ("dcr_raw", "vs raw pixels", "C3"))
    # Colour = DCR definition, line style = split: train and test often coincide, and a
    # dashed test line over a solid train line keeps both visible.
    styles = {"train": ("-", "o", 9, 4.0, 0.4), "test": ("--", "s", 4, 1.5, 1.0)}
    for split in sorted({r["split"] for r in dcr_rows}, reverse=True):
        points = sorted(
            (r for r in dcr_rows if r["split"] == split),
            key=lambda r: axis.position(r["setting"]),
        )
        xs = [axis.position(r["setting"]) for r in points]
        line, marker, size, width, alpha = styles.get(split, ("-.", "^", 5, 1.5, 1.0))
        for key, name, colour in definitions:
            ys = [100.0 * float(r[key]) for r in points]
            ax.plot(
                xs,
                ys,
                line,
                marker=marker,
                markersize=size,
                color=colour,
                linewidth=width,
                alpha=alpha,
                label=f"{split}, {name}",
            )
    _set_setting_ticks(ax.xaxis, [r["setting"] for r in dcr_rows], axis)
    ax.set_xlabel(axis.label)
    ax.set_ylabel("DCR (%)")
    ax.set_title("Data compression rate by setting")
    ax.grid(True, alpha=0.4)
    ax.legend()
    return _save_figure(fig, path)


def write_report(
    rows: list[dict], dcr_rows: list[dict], out_dir: Path, axis: SettingAxis = DEFAULT_AXIS
) -> dict[str, Path]:
    """Writes the results CSV, two heatmaps per metric and the DCR plot into ``out_dir``.

    Args:
        rows: Result rows without ``relative`` (it is computed here).
        dcr_rows: Rows for ``plot_dcr_curves``.
        out_dir: Output folder; created if missing.
        axis: Positions and title of the codec's settings.

    Returns:
        Paths keyed ``"results.csv"``, ``"heatmap_<metric>_setting"``,
        ``"heatmap_<metric>_dcr"`` and ``"dcr_by_setting"``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    relative = add_relative(rows)
    paths = {"results.csv": write_results_csv(relative, out_dir / "results.csv", axis)}
    for metric in sorted({r["metric"] for r in relative}):
        if all(math.isnan(r["relative"]) for r in relative if r["metric"] == metric):
            continue  # nothing to draw; add_relative has warned
        for axes in ("setting", "dcr"):
            name = f"heatmap_{metric}_{axes}"
            path = out_dir / f"{name}.png"
            paths[name] = plot_relative_heatmap(relative, metric, path, axes, axis)
    paths["dcr_by_setting"] = plot_dcr_curves(dcr_rows, out_dir / "dcr_by_setting.png", axis)
    return paths


# Panels of the distortion figure: (title, measures drawn in it).
DISTORTION_PANELS = (
    ("Butteraugli distance (measured)", ("butteraugli_3norm", "butteraugli_max")),
    ("SSIMULACRA2 (100 = identical)", ("ssimulacra2",)),
    ("PSNR (dB)", ("psnr",)),
    ("SSIM", ("ssim",)),
)
DISTORTION_COLUMNS = ["split", "setting", "measure", "median", "p10", "p90", "count", "undefined"]
# Measures where more is worse: their worst tenth of the images is above the 90th percentile.
HIGHER_IS_WORSE = ("butteraugli_max", "butteraugli_3norm")


def worst_tenth(row: dict) -> float | None:
    """The boundary of the worst 10% of images: p90 of Butteraugli, p10 of the others."""
    return row.get("p90") if row["measure"] in HIGHER_IS_WORSE else row.get("p10")


def plot_distortion(
    rows: list[dict], path: Path, axis: SettingAxis = DEFAULT_AXIS, target_is_distance: bool = False
) -> Path:
    """Measured distortion per setting: the median as a line, the worst 10% dotted.

    Args:
        rows: Dicts with ``setting``, ``measure``, ``median``, ``p10`` and ``p90`` (one split).
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
            worst = [worst_tenth(r) for r in points]
            ax.plot(xs, worst, ":", color=colour, label=f"{measure}, worst 10%")
            _set_setting_ticks(ax.xaxis, [r["setting"] for r in points], axis)
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
    return _save_figure(fig, path)
