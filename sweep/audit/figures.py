"""What the audit's figures share: a headless backend, split colours, atomic PNG files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

# Audits run on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sweep.figures import save_figure  # noqa: E402

DPI = 110
WIDE_RANGE = 20.0  # max/min ratio beyond which a positive quantity gets a log axis
SPLIT_COLOURS = {"train": "C0", "test": "C1"}
SPLIT_MARKERS = {"train": "o", "test": "^"}


def draw_and_save(fig: plt.Figure, draw: Callable[[], None], path: Path) -> Path:
    """Runs ``draw``, saves ``fig`` as PNG atomically, and closes it even when drawing fails."""
    try:
        draw()
    except BaseException:
        plt.close(fig)
        raise
    return save_figure(fig, path, DPI)


def show_message(ax: plt.Axes, text: str) -> None:
    """Writes ``text`` in the middle of an empty panel instead of a plot."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


def split_colour(split: str, splits: list[str]) -> str:
    """Fixed colours for train/test so all figures agree; the next cycle colours otherwise."""
    return SPLIT_COLOURS.get(split, f"C{2 + splits.index(split) % 8}")


def is_wide(values: np.ndarray) -> bool:
    """Whether positive ``values`` span enough orders of magnitude to need a log axis."""
    return values.size > 0 and values.min() > 0 and values.max() / values.min() > WIDE_RANGE
