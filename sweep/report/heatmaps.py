"""The relative metric over train x test as heatmaps, and the DCR of each codec setting.

A heatmap draws each cell as a labelled circle on a diverging colour scale centred on 100%
(noise stays pale), marks the cells whose interval excludes 100%, and on codec-setting axes
interpolates between them.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

# Reports are produced on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import Normalize, TwoSlopeNorm  # noqa: E402
from scipy.interpolate import griddata  # noqa: E402
from scipy.spatial import QhullError  # noqa: E402

from sweep.analysis.intervals import AT_CHANCE  # noqa: E402
from sweep.codecs.base import MIXED  # noqa: E402
from sweep.figures import save_figure
from sweep.report.axis import (  # noqa: E402
    DEFAULT_AXIS,
    SettingAxis,
    min_gap_fraction,
    set_setting_ticks,
)

GRID_RESOLUTION = 200
# Diverging, pale at 100% (original/original): red below, blue above.
CMAP = "RdBu"
# The colour scale spans at least 100 +- MIN_SPAN points, so that noise-level cells stay pale.
MIN_SPAN = 10.0


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


def _draw_cells(
    ax: plt.Axes,
    xs: np.ndarray,
    ys: np.ndarray,
    percent: np.ndarray,
    norm: Normalize,
    sure: np.ndarray,
) -> matplotlib.collections.PathCollection:
    """Draws the observed cells as labelled circles sized to not overlap their neighbours.

    `sure` marks the cells whose interval excludes 100% (a solid ring and a bold label);
    the others, within noise of original/original, get a dashed ring. Where cells are too
    close for a label inside their circle, the labels go beside them, alternately above and
    below, so that neighbours' labels never print over each other.
    """
    # ~400 pt of axes per direction at this figure size; the padding adds 16 % to each span.
    gap = min(min_gap_fraction(xs), min_gap_fraction(ys)) / 1.16 * 400
    diameter = float(np.clip(0.9 * gap, 6.0, 26.0))
    inside = diameter >= 16.0
    scatter = ax.scatter(xs, ys, c=percent, cmap=CMAP, norm=norm, s=diameter**2,
                         edgecolors="black", linewidths=np.where(sure, 1.6, 0.8),
                         linestyles=[("solid" if s else "dashed") for s in sure],
                         zorder=3)  # fmt: skip
    cmap = scatter.get_cmap()
    order = np.argsort(xs, kind="stable")
    for rank, i in enumerate(order):
        x, y, p = xs[i], ys[i], percent[i]
        weight = "bold" if sure[i] else "normal"
        if inside:
            # Dark text on the light part of the colormap, white on the dark ends.
            r, g, b, _ = cmap(norm(p))
            color = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
            ax.annotate(f"{p:.1f}", (x, y), ha="center", va="center", color=color, zorder=4,
                        fontsize=float(np.clip(diameter / 3.3, 5.5, 7.5)),
                        fontweight=weight)  # fmt: skip
        else:
            offset = (diameter / 2 + 5) * (1 if rank % 2 == 0 else -1)
            ax.annotate(f"{p:.1f}", (x, y), xytext=(0, offset), textcoords="offset points",
                        ha="center", va="center", fontsize=6.5, fontweight=weight, zorder=4,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.8})  # fmt: skip
    return scatter


def relative_norm(percent: np.ndarray, span: float = MIN_SPAN) -> Normalize:
    """A diverging scale centred on 100%: near 100% is pale whatever the spread of the cells,
    losses and gains darken only beyond `span` points (or the farthest cell, if farther)."""
    low = min(float(np.nanmin(percent)), 100.0 - span)
    high = max(float(np.nanmax(percent)), 100.0 + span)
    return TwoSlopeNorm(vcenter=100.0, vmin=low, vmax=high)


def within_noise(cells: list[dict]) -> np.ndarray:
    """Per cell: does its relative interval exclude 100%? (False where it has no interval.)"""
    sure = []
    for r in cells:
        low, high = r.get("relative_ci_low"), r.get("relative_ci_high")
        sure.append(low is not None and high is not None and not (low <= 1.0 <= high))
    return np.array(sure, dtype=bool)


def plot_relative_heatmap(
    rows: list[dict],
    metric: str,
    path: Path,
    axes: str = "setting",
    axis: SettingAxis = DEFAULT_AXIS,
) -> Path:
    """Draws the relative metric over train x test as cells on a diverging scale.

    On setting axes the grid between cells is interpolated; on DCR axes, where cells lie
    unevenly (several at 85-92% DCR, none below 40%), only the cells are drawn, so that no
    colour stands where there is no measurement.

    Args:
        rows: Rows with ``relative`` (see ``add_relative``) and, where the sweep has them,
            ``relative_ci_low``/``relative_ci_high``; other metrics are ignored. A row with
            ``at_chance`` (``with_intervals``) puts it in the title: the grid cannot answer.
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
    if not cells:
        raise ValueError(f"no rows for metric {metric!r}")
    if axes == "dcr":  # a mix keeps every encode it reads: no DCR, no place on this axis
        cells = [r for r in cells if np.isfinite(float(r["train_dcr"]))]
    xs, ys, xlabel, ylabel = _cell_coordinates(cells, axes, axis)
    percent = np.array([100.0 * float(r["relative"]) for r in cells])
    norm = relative_norm(percent)
    sure = within_noise(cells)
    has_intervals = any("relative_ci_low" in r for r in cells)

    fig, ax = plt.subplots(figsize=(7.5, 6.0), layout="constrained")
    # griddata needs a 2-D hull: with < 3 distinct positions on an axis show only the cells.
    # Colour between the settings' cells only: the `mixed` row is not between any two.
    graded = np.array([r["train_setting"] != MIXED for r in cells])
    gxs, gys = xs[graded], ys[graded]
    if axes == "setting" and len(np.unique(gxs)) >= 3 and len(np.unique(gys)) >= 3:
        try:
            gx, gy, grid = interpolate_grid(gxs, gys, percent[graded])
            ax.imshow(grid, origin="lower", aspect="auto", cmap=CMAP, norm=norm, alpha=0.85,
                      extent=(gx[0], gx[-1], gy[0], gy[-1]))  # fmt: skip
        except QhullError:  # collinear cells (e.g. equal DCRs): the circles still tell it all
            pass
    if not graded.all() and graded.any():  # set the mixed row apart from the settings' grid
        ax.axhline((ys[graded].max() + ys[~graded].min()) / 2, color="0.5", lw=0.8, ls=":")
    scatter = _draw_cells(ax, xs, ys, percent, norm, sure)
    fig.colorbar(scatter, ax=ax, label=f"relative {metric} (%)")
    if axes == "setting":
        set_setting_ticks(ax.xaxis, [r["test_setting"] for r in cells], axis)
        set_setting_ticks(ax.yaxis, [r["train_setting"] for r in cells], axis)
    ax.set_xlim(*_padded_limits(xs))
    ax.set_ylim(*_padded_limits(ys))
    ax.set(xlabel=xlabel, ylabel=ylabel)
    # A metric whose original/original is at chance (sweep/analysis/chance.py) says so.
    at_chance = next((r[AT_CHANCE] for r in cells if r.get(AT_CHANCE)), None)
    if at_chance:
        ax.set_title(f"Relative {metric}: {at_chance}", fontsize=10, color="C3")
    else:
        ax.set_title(f"Relative {metric} (train x test, % of original/original)")
    if has_intervals:
        ax.text(0.0, -0.13 if axes == "setting" else -0.11,
                "bold, solid ring: the interval excludes 100%; dashed: within noise of 100%",
                transform=ax.transAxes, fontsize=7.5, color="0.3")  # fmt: skip
    return save_figure(fig, path)


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
    set_setting_ticks(ax.xaxis, [r["setting"] for r in dcr_rows], axis)
    ax.set_xlabel(axis.label)
    ax.set_ylabel("DCR (%)")
    ax.set_title("Data compression rate by setting")
    ax.grid(True, alpha=0.4)
    ax.legend()
    return save_figure(fig, path)
