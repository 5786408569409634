"""Figures of the DCT sensitivity of trained classifiers: 8x8 maps per channel and radius profiles.

A sensitivity map ``S[c, i, j] >= 0`` is the mean absolute change of the prediction probability
per unit change of DCT coefficient ``(i, j)`` (i vertical, j horizontal frequency) of channel
``c`` (0 = Y, 1 = Cb, 2 = Cr). This module only draws; the statistics are computed elsewhere.

Sensitivities span orders of magnitude, so the maps share one logarithmic colour scale whose
limits are the smallest and largest positive values of the whole figure. Cells that are exactly
zero cannot sit on a log scale: they are drawn in a distinct grey "under" colour (the colour
bar's lower extension), not clipped to the lowest colour, so "no sensitivity at all" is never
mistaken for "the least sensitivity". Non-finite cells are drawn in red. When no cell is
positive and finite the figure falls back to a linear scale from 0 to 1 (zeros still grey).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

# Reports are produced on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402

from sweep.figures import save_figure
from sweep.sensitivity.options import CHANNELS  # noqa: E402

MAP_SHAPE = (len(CHANNELS), 8, 8)
DEFAULT_UNIT = "Δ probability per unit coefficient"
DEFAULT_RADIUS_LABEL = "frequency radius √(i² + j²)"
CMAP = "viridis"
# Exact zeros and non-finite cells must not look like any value of the viridis scale.
ZERO_COLOUR = "lightgrey"
NON_FINITE_COLOUR = "red"
PANEL_INCHES = 2.6


@dataclass(frozen=True)
class RadiusProfile:
    """Sensitivity of one classifier and channel against frequency radius.

    Attributes:
        setting: Train setting of the classifier, e.g. ``"original"`` or ``"q90-420"``.
        channel: ``"Y"``, ``"Cb"`` or ``"Cr"``.
        radius: Frequency radius of each point.
        value: Sensitivity at each radius.
        low: Lower end of the interval (e.g. bootstrap) at each radius.
        high: Upper end of the interval at each radius.
    """

    setting: str
    channel: str
    radius: np.ndarray
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _checked_maps(maps: np.ndarray, name: str) -> np.ndarray:
    """``maps`` as a float array of shape (3, 8, 8) with no negative values, or a ValueError."""
    array = np.asarray(maps, dtype=float)
    if array.shape != MAP_SHAPE:
        raise ValueError(
            f"{name}: expected sensitivity maps of shape {MAP_SHAPE} (channel Y/Cb/Cr, i, j), "
            f"got shape {array.shape}"
        )
    if np.any(array < 0):  # NaN compares False, so only real negatives land here
        raise ValueError(
            f"{name}: sensitivities are mean absolute changes and cannot be negative, "
            f"got minimum {np.nanmin(array)!r}"
        )
    return array


def shared_norm(arrays: list[np.ndarray]) -> Normalize:
    """One colour scale for all ``arrays``: log over their positive finite values, else linear.

    Args:
        arrays: Sensitivity values (any shapes) that will share the scale.

    Returns:
        A ``LogNorm`` from the smallest to the largest positive finite value (widened by a
        factor of 2 each way when they are equal), or ``Normalize(0, 1)`` when there is none.
    """
    values = np.concatenate([np.ravel(a) for a in arrays])
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return Normalize(vmin=0.0, vmax=1.0)
    vmin, vmax = float(positive.min()), float(positive.max())
    if vmin == vmax:  # a single value would give a zero-width colour scale
        vmin, vmax = vmin / 2, vmax * 2
    return LogNorm(vmin=vmin, vmax=vmax)


def _drawable(array: np.ndarray, norm: Normalize) -> np.ma.MaskedArray:
    """The values as imshow should get them: non-finite masked, zeros just below the scale."""
    # A value under vmin is drawn in the "under" colour; exact zeros get it on either scale.
    # (LogNorm would mask them instead, drawing them in the non-finite "bad" colour.)
    below = norm.vmin / 2 if isinstance(norm, LogNorm) else norm.vmin - 1
    return np.ma.masked_invalid(np.where(array == 0, below, array))


def draw_map_grid(
    rows: list[np.ndarray],
    row_labels: list[str] | None,
    title: str,
    unit: str,
    norm: Normalize | None = None,
) -> plt.Figure:
    """Draws one row of Y/Cb/Cr panels per (3, 8, 8) array, all on one colour scale.

    Args:
        rows: Checked maps, one per figure row.
        row_labels: Label of each row (shown left of its first panel), or None for none.
        title: Figure title.
        unit: Label of the colour bar.
        norm: The colour scale (default: `shared_norm` of the rows).

    Returns:
        The figure; the caller saves and closes it.
    """
    fallback = norm is None  # the caller's own scale needs no note
    norm = norm or shared_norm(rows)
    cmap = plt.get_cmap(CMAP).with_extremes(under=ZERO_COLOUR, bad=NON_FINITE_COLOUR)
    n_rows = len(rows)
    fig, axes = plt.subplots(
        n_rows,
        len(CHANNELS),
        # Room for the two-line title and the x labels on top of the rows of square panels.
        figsize=(PANEL_INCHES * len(CHANNELS) + 1.6, PANEL_INCHES * n_rows + 1.3),
        layout="constrained",
        sharex=True,
        sharey=True,  # tick labels on the outer panels only: all panels index the same 8x8
        squeeze=False,
    )
    image = None
    for r, maps in enumerate(rows):
        for c, channel in enumerate(CHANNELS):
            ax = axes[r, c]
            # origin="upper" puts the DC coefficient (0, 0) at the top left, as in DCT tables.
            image = ax.imshow(_drawable(maps[c], norm), cmap=cmap, norm=norm, origin="upper")
            if r == 0:
                ax.set_title(channel)
            if r == n_rows - 1:
                ax.set_xlabel("j (horizontal frequency)")
            if c == 0:
                ylabel = "i (vertical frequency)"
                ax.set_ylabel(ylabel if row_labels is None else f"{row_labels[r]}\n{ylabel}")
    axes[0, 0].set_xticks(range(8))  # shared by all panels
    axes[0, 0].set_yticks(range(8))
    has_zeros = any(np.any(m == 0) for m in rows)
    has_non_finite = any(not np.all(np.isfinite(m)) for m in rows)
    # The lower extension of the colour bar shows the zero colour; only draw it when used.
    fig.colorbar(image, ax=axes, label=unit, extend="min" if has_zeros else "neither")
    notes = [f"{ZERO_COLOUR}: exactly 0"] if has_zeros else []
    notes += [f"{NON_FINITE_COLOUR}: not finite"] if has_non_finite else []
    if fallback and not isinstance(norm, LogNorm):
        notes.append("linear scale: no positive finite value")
    fig.suptitle(title if not notes else f"{title}\n({'; '.join(notes)})")
    return fig


def plot_channel_maps(maps: np.ndarray, path: Path, title: str, unit: str = DEFAULT_UNIT) -> Path:
    """Draws one classifier's Y, Cb and Cr sensitivity maps side by side on one log scale.

    Args:
        maps: Sensitivities of shape (3, 8, 8): channel (Y, Cb, Cr), vertical i, horizontal j.
        path: Destination PNG.
        title: Figure title.
        unit: Label of the colour bar.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``maps`` is not of shape (3, 8, 8) or has negative values.
    """
    fig = draw_map_grid([_checked_maps(maps, "maps")], None, title, unit)
    return save_figure(fig, path)


def plot_maps_by_setting(
    maps: dict[str, np.ndarray], path: Path, title: str, unit: str = DEFAULT_UNIT
) -> Path:
    """Draws every train setting's sensitivity maps, one row per setting, on one log scale.

    Args:
        maps: Sensitivities of shape (3, 8, 8) per train setting; rows follow the dict order.
        path: Destination PNG.
        title: Figure title.
        unit: Label of the colour bar.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``maps`` is empty, or a setting's maps are not of shape (3, 8, 8) or
            have negative values.
    """
    if not maps:
        raise ValueError("maps: no train setting to draw; pass at least one setting's maps")
    rows = [_checked_maps(m, f"maps[{setting!r}]") for setting, m in maps.items()]
    labels = [f"train={setting}" for setting in maps]
    fig = draw_map_grid(rows, labels, title, unit)
    return save_figure(fig, path)


def _checked_profile(profile: RadiusProfile) -> tuple[np.ndarray, ...]:
    """The profile's radius, value, low and high as equal-length 1-D float arrays."""
    if profile.channel not in CHANNELS:
        raise ValueError(
            f"profile of train={profile.setting}: channel must be one of {CHANNELS}, "
            f"got {profile.channel!r}"
        )
    arrays = tuple(
        np.asarray(a, dtype=float).ravel()
        for a in (profile.radius, profile.value, profile.low, profile.high)
    )
    lengths = {a.size for a in arrays}
    if len(lengths) != 1:
        raise ValueError(
            f"profile of train={profile.setting}, channel {profile.channel}: radius, value, "
            f"low and high must have the same length, got {[a.size for a in arrays]}"
        )
    return arrays


def plot_radius_profiles(
    profiles: list[RadiusProfile],
    path: Path,
    title: str,
    unit: str = DEFAULT_UNIT,
    radius_label: str = DEFAULT_RADIUS_LABEL,
) -> Path:
    """Plots sensitivity against frequency radius: one panel per channel, one line per setting.

    Each line is the profile's ``value`` with a shaded band from ``low`` to ``high``. The y axis
    is logarithmic, so non-positive and non-finite points are left out (the line has a gap).
    A setting keeps its colour in every panel; the legend is drawn once for the figure.

    Args:
        profiles: Profiles to draw; panels are the channels present, in the order Y, Cb, Cr.
        path: Destination PNG.
        title: Figure title.
        unit: Label of the y axis.
        radius_label: Label of the x axis: what ``radius`` measures.

    Returns:
        ``path``.

    Raises:
        ValueError: If ``profiles`` is empty, names an unknown channel, has arrays of different
            lengths, or has two profiles of the same setting and channel.
    """
    if not profiles:
        raise ValueError("profiles: nothing to draw; pass at least one RadiusProfile")
    checked = {}
    for profile in profiles:
        key = (profile.setting, profile.channel)
        if key in checked:
            raise ValueError(
                f"profiles: two profiles for train={profile.setting}, channel {profile.channel}"
            )
        checked[key] = _checked_profile(profile)
    channels = [c for c in CHANNELS if any(channel == c for _, channel in checked)]
    settings = list(dict.fromkeys(setting for setting, _ in checked))
    # Ten cycle colours; beyond ten settings the dashed line style tells the repeats apart.
    styles = {s: (f"C{k % 10}", "-" if k < 10 else "--") for k, s in enumerate(settings)}

    fig, axes = plt.subplots(
        1,
        len(channels),
        figsize=(4.2 * len(channels) + 1.8, 4.2),
        layout="constrained",
        sharey=True,
        squeeze=False,
    )
    handles = {}
    for ax, channel in zip(axes[0], channels, strict=True):
        drawn = False
        for setting in settings:
            if (setting, channel) not in checked:
                continue
            radius, value, low, high = checked[setting, channel]
            order = np.argsort(radius, kind="stable")
            radius, value, low, high = radius[order], value[order], low[order], high[order]
            colour, line = styles[setting]
            shown = np.isfinite(value) & (value > 0)
            band = np.isfinite(low) & np.isfinite(high) & (low > 0) & (high > 0)
            if not shown.any() and not band.any():
                continue
            (handles[setting],) = ax.plot(
                radius, np.where(shown, value, np.nan), line, marker="o", markersize=3,
                color=colour, label=f"train={setting}",
            )  # fmt: skip
            ax.fill_between(radius, low, high, where=band, color=colour, alpha=0.2, linewidth=0)
            drawn = True
        if drawn:
            ax.set_yscale("log")
        else:
            ax.text(0.5, 0.5, "no positive values", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
        ax.set(title=channel, xlabel=radius_label)
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel(unit)
    if handles:
        ordered = [handles[s] for s in settings if s in handles]
        fig.legend(handles=ordered, loc="outside right upper", fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)
