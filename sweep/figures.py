"""Saving figures: a headless backend, one resolution, atomic PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

# Figures are drawn on headless machines (a cluster node, CI): never let pyplot pick an
# interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from sweep.store import atomic_write  # noqa: E402

DPI = 120


def save_figure(fig: plt.Figure, path: Path, dpi: int = DPI) -> Path:
    """Saves ``fig`` as PNG atomically and always closes it so long sweeps do not leak figures."""
    try:
        # format is explicit because the temp name has no .png suffix to infer it from.
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(fig)
