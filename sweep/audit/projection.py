"""A 2-D projection of the per-file settings (UMAP when installed, PCA otherwise).

Each file becomes [subsampling code, log2 width, log2 height, JPEG quality]; the standardised
features are projected to 2-D and drawn four times, coloured by each setting.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import matplotlib

# Audits run on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from sweep.audit.categories import (  # noqa: E402
    is_readable,
    splits_of,
    subsampling_category,
    subsampling_code,
)
from sweep.audit.figures import SPLIT_MARKERS, draw_and_save, is_wide, show_message  # noqa: E402
from sweep.audit.records import FileAudit  # noqa: E402

log = logging.getLogger(__name__)

# UMAP and a scatter of every file get slow on ImageNet-sized datasets; a fixed-seed sample
# shows the same structure.
MAX_PROJECTED = 20_000
MIN_PROJECTED = 3


def settings_features(records: list[FileAudit]) -> tuple[list[FileAudit], np.ndarray]:
    """Per-file settings as rows [subsampling code, log2 width, log2 height, quality].

    Unreadable files (no size) are left out. Files without a JPEG quality estimate (PNGs and
    other non-JPEGs) are kept with quality 0, and non-JPEGs get subsampling code -1, so they
    form their own group instead of vanishing. Sizes enter as log2 because image sizes are
    heavily skewed and one huge file would otherwise flatten everyone else.

    Returns:
        The records used and their unstandardised ``(n, 4)`` feature matrix.
    """
    used = [r for r in records if is_readable(r)]
    features = np.array(
        [
            [
                subsampling_code(subsampling_category(r)),
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
    if is_wide(values):
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
                show_message(
                    ax, f"{len(used)} readable file(s): a projection needs {MIN_PROJECTED}"
                )
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
        splits = splits_of(sample)
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
                        marker=SPLIT_MARKERS.get(split, "s"),
                        s=size,
                        linewidths=0.3,
                        edgecolors="0.2",
                        **own,
                    )
            return artist

        everyone = np.ones(len(sample), bool)
        categories = np.array([subsampling_category(r) for r in sample])
        ax = flat[0]
        present = sorted(set(categories), key=subsampling_code)
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
                    Line2D([], [], ls="", marker=SPLIT_MARKERS.get(s, "s"), color="0.3")
                    for s in splits
                ],
                splits,
                loc="outside lower center",
                ncols=len(splits),
                title="split (marker)",
            )

    return draw_and_save(fig, draw, path)
