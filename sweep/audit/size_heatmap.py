"""A width x height 2-D histogram of the readable files per split, with aspect-ratio lines."""

from __future__ import annotations

from pathlib import Path

import matplotlib

# Audits run on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from sweep.audit.categories import is_readable, splits_of  # noqa: E402
from sweep.audit.figures import draw_and_save, is_wide, show_message  # noqa: E402
from sweep.audit.records import FileAudit  # noqa: E402

ASPECT_RATIOS = ((1, 1), (4, 3), (3, 4), (3, 2), (2, 3))


def _draw_aspect_lines(ax: plt.Axes, xlim: tuple, ylim: tuple) -> None:
    """Draws height = width x h/w for the common aspect ratios, named in a legend.

    A legend rather than labels on the lines: 4:3 and 3:2 (and 3:4, 2:3) run so close that
    labels at the line ends overlap each other and the busiest bins.
    """
    # Colour pairs a ratio with its transpose; dashed = landscape, dotted = portrait.
    colours = {1.0: "black", 0.75: "tab:red", 4 / 3: "tab:red"}
    xs = np.geomspace(max(xlim[0], 1e-9), xlim[1], 200)
    for w, h in ASPECT_RATIOS:
        slope = h / w
        style = "-" if slope == 1 else ("--" if slope < 1 else ":")
        label = f"{w}:{h}" + ("" if slope == 1 else " landscape" if slope < 1 else " portrait")
        ax.plot(xs, slope * xs, style, color=colours.get(slope, "tab:blue"), linewidth=1.2,
                label=label)  # fmt: skip
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    # Top left is the region of very tall images, empty in almost every dataset.
    ax.legend(title="width:height", loc="upper left", fontsize=8, title_fontsize=8)


def _size_bins(values: np.ndarray, log: bool) -> np.ndarray:
    """Bin edges covering ``values`` with a margin (geometric when ``log``)."""
    lo, hi = float(values.min()), float(values.max())
    if log:
        return np.geomspace(lo / 1.1, hi * 1.1, 51)
    return np.linspace(max(lo - 0.05 * hi - 1, 0), hi + 0.05 * hi + 1, 51)


def plot_size_heatmap(records: list[FileAudit], path: Path) -> Path:
    """Draws a width x height 2-D histogram per split on shared bins and colour scale.

    Axes are logarithmic when sizes span a wide range (aspect-ratio lines stay straight on
    both kinds of axes); counts use a log colour scale so single outliers stay visible.
    """
    readable = [r for r in records if is_readable(r)]
    splits = splits_of(readable) or ["all files"]
    fig, axes = plt.subplots(
        1, len(splits), figsize=(6.5 * len(splits) + 1.0, 6), layout="constrained", squeeze=False
    )

    def draw() -> None:
        fig.suptitle("Image sizes (width x height), files per bin")
        if not readable:
            axes[0, 0].set(xlabel="width (px)", ylabel="height (px)")
            show_message(axes[0, 0], "no readable files")
            return
        widths = np.array([r.width for r in readable], dtype=float)
        heights = np.array([r.height for r in readable], dtype=float)
        # Same scale on both axes so a ratio line's angle means the same in every panel.
        log = is_wide(np.concatenate([widths, heights]))
        x_bins, y_bins = _size_bins(widths, log), _size_bins(heights, log)
        histograms = []
        for split in splits:
            mask = np.array([r.split == split for r in readable])
            counts, _, _ = np.histogram2d(widths[mask], heights[mask], bins=[x_bins, y_bins])
            histograms.append((split, int(mask.sum()), counts))
        peak = max(float(c.max()) for _, _, c in histograms)
        norm = LogNorm(vmin=1, vmax=max(peak, 2.0))
        mesh = None
        for ax, (split, n, counts) in zip(axes[0], histograms, strict=True):
            # Empty bins are masked so they stay white instead of the colour map's low end.
            mesh = ax.pcolormesh(
                x_bins, y_bins, np.ma.masked_equal(counts.T, 0), norm=norm, cmap="viridis"
            )
            if log:
                ax.set_xscale("log")
                ax.set_yscale("log")
                # Plain pixel counts on both axes, without crowded minor labels.
                for axis in (ax.xaxis, ax.yaxis):
                    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
                    axis.set_minor_formatter(ticker.NullFormatter())
            _draw_aspect_lines(ax, (x_bins[0], x_bins[-1]), (y_bins[0], y_bins[-1]))
            ax.set(xlabel="width (px)", ylabel="height (px)", title=f"{split} (n={n})")
            ax.grid(True, which="major", alpha=0.25)
        fig.colorbar(mesh, ax=axes[0].tolist(), label="files per bin (log scale)")

    return draw_and_save(fig, draw, path)
