"""Tables and figures for a dataset audit: what compression the image files already carry.

``write_audit_report`` turns the per-file ``FileAudit`` records into CSV tables (every file, the
anomalies, counts per split and bits-per-pixel statistics) and three figures (histograms of the
settings per split, a width x height heatmap, and a 2-D projection of the per-file settings).
``summarize`` gives the headline numbers to log as MLflow metrics. Every file is written
atomically so a crashed or concurrent run never leaves a half-written report behind.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import matplotlib

# Audits run on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sweep.audit.records import AUDIT_COLUMNS, FileAudit, anomalies  # noqa: E402
from sweep.store import atomic_write  # noqa: E402

log = logging.getLogger(__name__)

DPI = 110
SPLITS = ("train", "test")
ALL = "all"
SUMMARY_MEASURES = ("format", "jpeg_quality", "jpeg_subsampling", "jpeg_progressive", "mode")
SUMMARY_COLUMNS = ["split", "measure", "value", "count"]
BPP_COLUMNS = ["split", "count", "mean", "median", "p10", "p90"]
ANOMALY_COLUMNS = ["split", "path", "reason"]
# Ordered from full chroma resolution to none, so the ordinal code means "less chroma".
SUBSAMPLING_ORDER = ("4:4:4", "4:4:0", "4:2:2", "4:2:0", "4:1:1", "grey")
NOT_JPEG = "not JPEG"
UNKNOWN = "other"
ASPECT_RATIOS = ((1, 1), (4, 3), (3, 4), (3, 2), (2, 3))
# UMAP and a scatter of every file get slow on ImageNet-sized datasets; a fixed-seed sample
# shows the same structure.
MAX_PROJECTED = 20_000
MIN_PROJECTED = 3
WIDE_RANGE = 20.0  # max/min ratio beyond which a positive quantity gets a log axis

_SPLIT_COLOURS = {"train": "C0", "test": "C1"}
_SPLIT_MARKERS = {"train": "o", "test": "^"}


# --------------------------------------------------------------------------------------------
# Small helpers


def _write_csv(path: Path, columns: list[str], rows: Iterable[list[object]]) -> Path:
    """Writes a header and rows to ``path`` atomically."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows([_csv_cell(value) for value in row] for row in rows)

    return atomic_write(path, write)


def _csv_cell(value: object) -> object:
    """None as an empty cell, floats with ``repr`` so they round-trip exactly."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return value


def _draw_and_save(fig: plt.Figure, draw: Callable[[], None], path: Path) -> Path:
    """Runs ``draw``, saves ``fig`` as PNG atomically, and closes it even when drawing fails."""
    try:
        draw()
        # format is explicit because the temp name has no .png suffix to infer it from.
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    finally:
        plt.close(fig)


def _message(ax: plt.Axes, text: str) -> None:
    """Writes ``text`` in the middle of an empty panel instead of a plot."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


def _splits(records: list[FileAudit]) -> list[str]:
    """Splits present in ``records``: train and test first, any others after, sorted."""
    present = {r.split for r in records}
    return [s for s in SPLITS if s in present] + sorted(present - set(SPLITS))


def _split_colour(split: str, splits: list[str]) -> str:
    """Fixed colours for train/test so all figures agree; the next cycle colours otherwise."""
    return _SPLIT_COLOURS.get(split, f"C{2 + splits.index(split) % 8}")


def _readable(record: FileAudit) -> bool:
    """Whether the headers gave a usable size (unreadable files have no width/height)."""
    return not record.error and bool(record.width) and bool(record.height)


def _subsampling_category(record: FileAudit) -> str:
    """Subsampling for JPEGs, ``NOT_JPEG`` for other formats, ``UNKNOWN`` for odd layouts."""
    if record.format != "jpeg":
        return NOT_JPEG
    if record.jpeg_subsampling in SUBSAMPLING_ORDER:
        return record.jpeg_subsampling
    return UNKNOWN


def _subsampling_code(category: str) -> int:
    """Ordinal code: -1 for non-JPEGs (no chroma loss), 0 = 4:4:4 ... 5 = grey, 6 = other."""
    if category == NOT_JPEG:
        return -1
    if category in SUBSAMPLING_ORDER:
        return SUBSAMPLING_ORDER.index(category)
    return len(SUBSAMPLING_ORDER)


def _value_key(value: object) -> tuple:
    """Sorts numbers numerically, known subsamplings in chroma order, other text alphabetically."""
    if isinstance(value, bool):
        return (1, int(value), "")
    if isinstance(value, int | float):
        return (0, value, "")
    if value in SUBSAMPLING_ORDER:
        return (2, SUBSAMPLING_ORDER.index(value), "")
    return (3, 0, str(value))


def _is_wide(values: np.ndarray) -> bool:
    """Whether positive ``values`` span enough orders of magnitude to need a log axis."""
    return values.size > 0 and values.min() > 0 and values.max() / values.min() > WIDE_RANGE


# --------------------------------------------------------------------------------------------
# Tables


def write_files_csv(records: list[FileAudit], path: Path) -> Path:
    """Writes every record (``AUDIT_COLUMNS`` plus ``"; "``-joined ``anomalies``) to CSV."""
    columns = [*AUDIT_COLUMNS, "anomalies"]
    rows = ([*(getattr(r, c) for c in AUDIT_COLUMNS), "; ".join(anomalies(r))] for r in records)
    return _write_csv(path, columns, rows)


def write_anomalies_csv(records: list[FileAudit], path: Path) -> Path:
    """Writes one ``split, path, reason`` row per reason of every anomalous file."""
    rows = ([r.split, r.path, reason] for r in records for reason in anomalies(r))
    return _write_csv(path, ANOMALY_COLUMNS, rows)


def summary_rows(records: list[FileAudit]) -> list[list[object]]:
    """Counts of each value of each ``SUMMARY_MEASURES`` field, per split and over all files.

    Records whose field is None (e.g. the JPEG quality of a PNG, the mode of an unreadable
    file) are left out of that measure's counts, so each measure counts the files it applies to.

    Returns:
        ``[split, measure, value, count]`` rows; splits ordered train, test, others, ``"all"``.
    """
    rows: list[list[object]] = []
    groups = [(s, [r for r in records if r.split == s]) for s in _splits(records)]
    for split, members in [*groups, (ALL, records)]:
        if not members:
            continue
        for measure in SUMMARY_MEASURES:
            counts = Counter(getattr(r, measure) for r in members)
            counts.pop(None, None)
            for value in sorted(counts, key=_value_key):
                rows.append([split, measure, value, counts[value]])
    return rows


def bits_per_pixel_rows(records: list[FileAudit]) -> list[list[object]]:
    """Count, mean, median, 10th and 90th percentile of bits per pixel per split and overall.

    Returns:
        ``[split, count, mean, median, p10, p90]`` rows; statistics are NaN for a split
        without any readable file.
    """
    rows: list[list[object]] = []
    for split in [*_splits(records), ALL]:
        values = np.array(
            [
                r.bits_per_pixel
                for r in records
                if (split == ALL or r.split == split) and r.bits_per_pixel is not None
            ],
            dtype=float,
        )
        if values.size:
            p10, median, p90 = np.percentile(values, [10, 50, 90])
            stats = [float(values.mean()), float(median), float(p10), float(p90)]
        else:
            stats = [math.nan] * 4
        rows.append([split, int(values.size), *stats])
    return rows


def summarize(records: list[FileAudit]) -> dict[str, float]:
    """Headline numbers for MLflow metrics, per split (train and test always) and ``"all"``.

    Keys are ``"<split>/<name>"`` with name one of ``files``, ``unreadable``, ``anomalies``
    (files with at least one reason), ``format_mismatch``, ``jpeg_share`` (fraction of the
    split's files whose content is JPEG, unreadable ones included; NaN without files) and
    ``median_quality`` (of the JPEGs with a quality estimate; NaN if none).
    """
    out: dict[str, float] = {}
    splits = list(SPLITS) + [s for s in _splits(records) if s not in SPLITS]
    for split in [*splits, ALL]:
        members = [r for r in records if split == ALL or r.split == split]
        qualities = [r.jpeg_quality for r in members if r.jpeg_quality is not None]
        jpegs = sum(r.format == "jpeg" for r in members)
        out[f"{split}/files"] = float(len(members))
        out[f"{split}/unreadable"] = float(sum(bool(r.error) for r in members))
        out[f"{split}/anomalies"] = float(sum(bool(anomalies(r)) for r in members))
        out[f"{split}/format_mismatch"] = float(sum(bool(r.format_mismatch) for r in members))
        out[f"{split}/jpeg_share"] = jpegs / len(members) if members else math.nan
        out[f"{split}/median_quality"] = float(np.median(qualities)) if qualities else math.nan
    return out


# --------------------------------------------------------------------------------------------
# Histograms


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
            color=_split_colour(split, splits),
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
        _message(ax, "no files")
        return
    _grouped_bars(ax, categories, by_split, splits)
    ax.legend(fontsize=8)


def _plot_subsampling(ax: plt.Axes, records: list[FileAudit], splits: list[str]) -> None:
    """Chroma subsampling of the JPEGs per split, in order of decreasing chroma resolution."""
    jpegs = [r for r in records if r.format == "jpeg" and r.jpeg_subsampling is not None]
    by_split = {s: Counter(r.jpeg_subsampling for r in jpegs if r.split == s) for s in splits}
    categories = sorted({r.jpeg_subsampling for r in jpegs}, key=_value_key)
    ax.set(title="JPEG chroma subsampling", xlabel="subsampling", ylabel="% of the split's JPEGs")
    if not categories:
        _message(ax, "no JPEG files")
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
        _message(ax, "no JPEG files with a quality estimate")
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
            color=_split_colour(split, splits),
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
        _message(ax, "no readable files")
        return
    lo, hi = float(pooled.min()), float(pooled.max())
    if _is_wide(pooled):
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
            color=_split_colour(split, splits),
            edgecolor=_split_colour(split, splits),
            linewidth=1.5,
            label=f"{split} (n={v.size}, median {np.median(v):.2f})",
        )
    ax.legend(fontsize=8)


def plot_histograms(records: list[FileAudit], path: Path) -> Path:
    """Draws JPEG quality, format, subsampling and bits-per-pixel histograms, train vs test.

    Bars show each split's share (%) so splits of different sizes compare directly; legends
    give each split's file count.
    """
    splits = _splits(records) or list(SPLITS)
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

    return _draw_and_save(fig, draw, path)


# --------------------------------------------------------------------------------------------
# Size heatmap


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
    readable = [r for r in records if _readable(r)]
    splits = _splits(readable) or ["all files"]
    fig, axes = plt.subplots(
        1, len(splits), figsize=(6.5 * len(splits) + 1.0, 6), layout="constrained", squeeze=False
    )

    def draw() -> None:
        fig.suptitle("Image sizes (width x height), files per bin")
        if not readable:
            axes[0, 0].set(xlabel="width (px)", ylabel="height (px)")
            _message(axes[0, 0], "no readable files")
            return
        widths = np.array([r.width for r in readable], dtype=float)
        heights = np.array([r.height for r in readable], dtype=float)
        # Same scale on both axes so a ratio line's angle means the same in every panel.
        log = _is_wide(np.concatenate([widths, heights]))
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

    return _draw_and_save(fig, draw, path)


# --------------------------------------------------------------------------------------------
# Projection


def settings_features(records: list[FileAudit]) -> tuple[list[FileAudit], np.ndarray]:
    """Per-file settings as rows [subsampling code, log2 width, log2 height, quality].

    Unreadable files (no size) are left out. Files without a JPEG quality estimate (PNGs and
    other non-JPEGs) are kept with quality 0, and non-JPEGs get subsampling code -1, so they
    form their own group instead of vanishing. Sizes enter as log2 because image sizes are
    heavily skewed and one huge file would otherwise flatten everyone else.

    Returns:
        The records used and their unstandardised ``(n, 4)`` feature matrix.
    """
    used = [r for r in records if _readable(r)]
    features = np.array(
        [
            [
                _subsampling_code(_subsampling_category(r)),
                math.log2(r.width),
                math.log2(r.height),
                r.jpeg_quality or 0,
            ]
            for r in used
        ],
        dtype=float,
    ).reshape(len(used), 4)
    return used, features


def standardize(features: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column; constant columns become 0 instead of NaN."""
    std = features.std(axis=0)
    std[std == 0] = 1.0
    return (features - features.mean(axis=0)) / std


def pca_2d(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First two principal components of centred ``z`` via SVD.

    Returns:
        ``(coords, explained)``: ``(n, 2)`` coordinates and the variance fraction per axis.
        Signs are fixed so each axis's largest loading is positive (reproducible plots).
    """
    z = z - z.mean(axis=0)
    _, s, vt = np.linalg.svd(z, full_matrices=False)
    components = vt[:2]
    if components.shape[0] < 2:  # a single feature column; pad so callers always get 2-D
        components = np.vstack([components, np.zeros((2 - components.shape[0], z.shape[1]))])
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    variance = s**2
    total = variance.sum()
    explained = np.zeros(2)
    k = min(2, variance.size)
    if total > 0:
        explained[:k] = variance[:k] / total
    return z @ components.T, explained


def project(z: np.ndarray, seed: int = 0) -> tuple[np.ndarray, str, tuple[str, str]]:
    """Projects standardised features to 2-D with UMAP when installed, PCA otherwise.

    Args:
        z: ``(n, d)`` standardised features, ``n >= MIN_PROJECTED``.
        seed: Random state for UMAP.

    Returns:
        ``(coords, method, axis_labels)`` with method ``"UMAP"`` or ``"PCA"``.
    """
    try:
        import umap  # optional: heavy (numba) and not a project dependency
    except ImportError:
        umap = None
    if umap is not None:
        try:
            reducer = umap.UMAP(
                n_components=2, n_neighbors=max(2, min(15, len(z) - 1)), random_state=seed
            )
            coords = np.asarray(reducer.fit_transform(z), dtype=float)
            return coords, "UMAP", ("UMAP 1", "UMAP 2")
        except Exception as exc:  # noqa: BLE001 - UMAP fails on tiny/degenerate inputs
            log.warning("UMAP failed (%s); falling back to PCA", exc)
    coords, explained = pca_2d(z)
    return coords, "PCA", (f"PC 1 ({explained[0]:.0%})", f"PC 2 ({explained[1]:.0%})")


def _numeric_norm(values: np.ndarray) -> Normalize:
    """Log colour scale for widely spread positive values, linear otherwise, never zero-width."""
    lo, hi = float(values.min()), float(values.max())
    if _is_wide(values):
        return LogNorm(vmin=lo, vmax=hi)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return Normalize(vmin=lo, vmax=hi)


def plot_projection(records: list[FileAudit], path: Path, seed: int = 0) -> Path:
    """Draws a 2-D projection of per-file settings, one panel coloured by each setting.

    See ``settings_features`` for the features. At most ``MAX_PROJECTED`` files (a fixed-seed
    sample) are projected. Marker shape tells the split apart.
    """
    used, features = settings_features(records)
    fig, axes = plt.subplots(2, 2, figsize=(13, 11), layout="constrained")
    flat = axes.ravel()

    def draw() -> None:
        if len(used) < MIN_PROJECTED:
            fig.suptitle("Per-file settings projection")
            for ax in flat:
                _message(ax, f"{len(used)} readable file(s): a projection needs {MIN_PROJECTED}")
            return
        chosen = np.arange(len(used))
        sampled = ""
        if len(used) > MAX_PROJECTED:
            rng = np.random.default_rng(seed)
            chosen = np.sort(rng.choice(len(used), MAX_PROJECTED, replace=False))
            sampled = f", random sample of {MAX_PROJECTED:,} of {len(used):,} files"
        sample = [used[i] for i in chosen]
        coords, method, (xlabel, ylabel) = project(standardize(features[chosen]), seed)
        fig.suptitle(
            f"{method} projection of per-file settings [subsampling, log2 width, log2 height, "
            f"quality] (standardised; non-JPEGs: quality 0{sampled})"
        )
        splits = _splits(sample)
        split_of = np.array([r.split for r in sample])
        size = float(np.clip(4000 / len(sample), 6, 40))

        def scatter(ax: plt.Axes, mask: np.ndarray, **kwargs: object) -> object:
            """One scatter per split so marker shape encodes the split; returns the last."""
            artist = None
            for split in splits:
                m = mask & (split_of == split)
                if m.any():
                    # Per-point arrays (colour values) follow the split's mask; scalars pass.
                    own = {k: v[m] if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
                    artist = ax.scatter(
                        coords[m, 0],
                        coords[m, 1],
                        marker=_SPLIT_MARKERS.get(split, "s"),
                        s=size,
                        linewidths=0.3,
                        edgecolors="0.2",
                        **own,
                    )
            return artist

        everyone = np.ones(len(sample), bool)
        categories = np.array([_subsampling_category(r) for r in sample])
        ax = flat[0]
        present = sorted(set(categories), key=_subsampling_code)
        for i, category in enumerate(present):
            scatter(ax, categories == category, color=f"C{i % 10}")
        ax.legend(
            [Line2D([], [], ls="", marker="o", color=f"C{i % 10}") for i in range(len(present))],
            present,
            title="subsampling",
            fontsize=8,
        )
        ax.set_title("coloured by chroma subsampling")

        for ax, name, values in (
            (flat[1], "width (px)", np.array([r.width for r in sample], float)),
            (flat[2], "height (px)", np.array([r.height for r in sample], float)),
        ):
            artist = scatter(ax, everyone, c=values, cmap="viridis", norm=_numeric_norm(values))
            fig.colorbar(artist, ax=ax, label=name)
            ax.set_title(f"coloured by {name.split()[0]}")

        ax = flat[3]
        quality = np.array([r.jpeg_quality or 0 for r in sample], float)
        has_quality = quality > 0
        # Non-JPEGs sit at quality 0 in the features; grey keeps them off the JPEG colour scale.
        if (~has_quality).any():
            scatter(ax, ~has_quality, color="0.8")
        if has_quality.any():
            artist = scatter(
                ax, has_quality, c=quality, cmap="plasma", norm=_numeric_norm(quality[has_quality])
            )
            fig.colorbar(artist, ax=ax, label="JPEG quality")
        if (~has_quality).any():
            ax.legend(
                [Line2D([], [], ls="", marker="o", color="0.8")],
                ["no JPEG quality (used as 0)"],
                fontsize=8,
            )
        ax.set_title("coloured by JPEG quality")

        for ax in flat:
            ax.set(xlabel=xlabel, ylabel=ylabel)
            ax.grid(True, alpha=0.25)
        if len(splits) > 1:
            fig.legend(
                [
                    Line2D([], [], ls="", marker=_SPLIT_MARKERS.get(s, "s"), color="0.3")
                    for s in splits
                ],
                splits,
                loc="outside lower center",
                ncols=len(splits),
                title="split (marker)",
            )

    return _draw_and_save(fig, draw, path)


# --------------------------------------------------------------------------------------------
# Entry point


def write_audit_report(records: list[FileAudit], out_dir: Path) -> dict[str, Path]:
    """Writes the audit tables and figures into ``out_dir`` (created if missing).

    Args:
        records: One ``FileAudit`` per file of the dataset, any splits.
        out_dir: Output folder.

    Returns:
        Paths keyed by file name: ``files.csv``, ``anomalies.csv``, ``summary.csv``,
        ``bits_per_pixel.csv``, ``histograms.png``, ``size_heatmap.png``, ``projection.png``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "files.csv": write_files_csv(records, out_dir / "files.csv"),
        "anomalies.csv": write_anomalies_csv(records, out_dir / "anomalies.csv"),
        "summary.csv": _write_csv(out_dir / "summary.csv", SUMMARY_COLUMNS, summary_rows(records)),
        "bits_per_pixel.csv": _write_csv(
            out_dir / "bits_per_pixel.csv", BPP_COLUMNS, bits_per_pixel_rows(records)
        ),
        "histograms.png": plot_histograms(records, out_dir / "histograms.png"),
        "size_heatmap.png": plot_size_heatmap(records, out_dir / "size_heatmap.png"),
        "projection.png": plot_projection(records, out_dir / "projection.png"),
    }
