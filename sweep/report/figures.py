"""Saving the report's figures: a headless backend, one resolution, atomic PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

# Reports are produced on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from sweep.store import atomic_write  # noqa: E402

DPI = 120


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Saves ``fig`` as PNG atomically and always closes it so long sweeps do not leak figures."""
    try:
        # format is explicit because the temp name has no .png suffix to infer it from.
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    finally:
        plt.close(fig)
