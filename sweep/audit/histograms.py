"""Histograms of the settings the dataset's files carry, train against test.

One figure: estimated JPEG quality across the top, format, chroma subsampling and bits per
pixel below. Bars show each split's share so splits of different sizes compare directly.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import matplotlib

# Audits run on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sweep.audit.categories import SPLITS, splits_of, value_key  # noqa: E402
from sweep.audit.figures import draw_and_save, is_wide, show_message, split_colour  # noqa: E402
from sweep.audit.records import FileAudit  # noqa: E402


def _grouped_bars(
    ax: plt.Axes, categories: list[str], by_split: dict[str, Counter], splits: list[str]
) -> None:
    """Side-by-side bars of each split's share per category, with the count above each bar."""
    width = 0.8 / len(splits)
    x = np.arange(len(categories))
    for i, split in enumerate(splits):
        counts = by_split[split]
        total = sum(counts.values())
        shares = [100.0 * counts[c] / total if total else 0.0 for c in categories]
        bars = ax.bar(
            x + (i - (len(splits) - 1) / 2) * width,
            shares,
            width,
            color=split_colour(split, splits),
            label=f"{split} (n={total})",
        )
        ax.bar_label(bars, [str(counts[c]) if counts[c] else "" for c in categories], fontsize=7)
    ax.set_xticks(x, categories)
    ax.margins(y=0.12)  # room for the count labels above the tallest bar


def _plot_formats(ax: plt.Axes, records: list[FileAudit], splits: list[str]) -> None:
    """Format (from the magic bytes) per split, most common first."""
    by_split = {s: Counter(r.format for r in records if r.split == s) for s in splits}
    categories = [f for f, _ in Counter(r.format for r in records).most_common()]
    ax.set(title="Format", xlabel="format (from content)", ylabel="% of the split's files")
    if not categories:
        show_message(ax, "no files")
        return
    _grouped_bars(ax, categories, by_split, splits)
    ax.legend(fontsize=8)


def _plot_subsampling(ax: plt.Axes, records: list[FileAudit], splits: list[str]) -> None:
    """Chroma subsampling of the JPEGs per split, in order of decreasing chroma resolution."""
    jpegs = [r for r in records if r.format == "jpeg" and r.jpeg_subsampling is not None]
    by_split = {s: Counter(r.jpeg_subsampling for r in jpegs if r.split == s) for s in splits}
    categories = sorted({r.jpeg_subsampling for r in jpegs}, key=value_key)
    ax.set(title="JPEG chroma subsampling", xlabel="subsampling", ylabel="% of the split's JPEGs")
    if not categories:
        show_message(ax, "no JPEG files")
        return
    _grouped_bars(ax, categories, by_split, splits)
    ax.legend(fontsize=8)


def _plot_quality(ax: plt.Axes, records: list[FileAudit], splits: list[str]) -> None:
    """Estimated JPEG quality in bins of 1 over 1-100, one narrow bar per split and bin."""
    ax.set(
        title="Estimated JPEG quality (IJG scale)",
        xlabel="JPEG quality",
        ylabel="% of the split's JPEGs",
        xlim=(0.5, 100.5),
    )
    ax.set_xticks(range(0, 101, 5))
    qualities = {
        s: np.array([r.jpeg_quality for r in records if r.split == s and r.jpeg_quality], int)
        for s in splits
    }
    if not any(q.size for q in qualities.values()):
        show_message(ax, "no JPEG files with a quality estimate")
        return
    width = 0.9 / len(splits)
    bins = np.arange(1, 101)
    for i, split in enumerate(splits):
        q = np.clip(qualities[split], 1, 100)
        if not q.size:
            continue
        counts = np.bincount(q, minlength=101)[1:]
        ax.bar(
            bins + (i - (len(splits) - 1) / 2) * width,
            100.0 * counts / q.size,
            width,
            color=split_colour(split, splits),
            label=f"{split} (n={q.size})",
        )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def _plot_bpp(ax: plt.Axes, records: list[FileAudit], splits: list[str]) -> None:
    """Histogram of bits per pixel per split, overlaid; log-spaced bins when the range is wide."""
    ax.set(title="Bits per pixel (file size / pixels)", ylabel="% of the split's files")
    values = {
        s: np.array(
            [r.bits_per_pixel for r in records if r.split == s and r.bits_per_pixel is not None],
            dtype=float,
        )
        for s in splits
    }
    pooled = np.concatenate([np.empty(0), *values.values()])
    if not pooled.size:
        ax.set_xlabel("bits per pixel")
        show_message(ax, "no readable files")
        return
    lo, hi = float(pooled.min()), float(pooled.max())
    if is_wide(pooled):
        bins = np.geomspace(lo, hi, 41)
        ax.set_xscale("log")
        ax.set_xlabel("bits per pixel (log scale)")
    else:
        pad = 0.05 * (hi - lo) if hi > lo else max(0.05 * abs(lo), 0.05)
        bins = np.linspace(lo - pad, hi + pad, 41)
        ax.set_xlabel("bits per pixel")
    for split in splits:
        v = values[split]
        if not v.size:
            continue
        # Overlaid filled steps with an opaque outline: both splits stay visible where they meet.
        ax.hist(
            v,
            bins=bins,
            weights=np.full(v.size, 100.0 / v.size),
            histtype="stepfilled",
            alpha=0.35,
            color=split_colour(split, splits),
            edgecolor=split_colour(split, splits),
            linewidth=1.5,
            label=f"{split} (n={v.size}, median {np.median(v):.2f})",
        )
    ax.legend(fontsize=8)


def plot_histograms(records: list[FileAudit], path: Path) -> Path:
    """Draws JPEG quality, format, subsampling and bits-per-pixel histograms, train vs test.

    Bars show each split's share (%) so splits of different sizes compare directly; legends
    give each split's file count.
    """
    splits = splits_of(records) or list(SPLITS)
    fig, axes = plt.subplot_mosaic(
        [["quality"] * 3, ["format", "subsampling", "bpp"]],
        figsize=(15, 9),
        layout="constrained",
    )

    def draw() -> None:
        _plot_quality(axes["quality"], records, splits)
        _plot_formats(axes["format"], records, splits)
        _plot_subsampling(axes["subsampling"], records, splits)
        _plot_bpp(axes["bpp"], records, splits)
        fig.suptitle(f"Dataset audit: {len(records)} files", fontsize=14)

    return draw_and_save(fig, draw, path)
