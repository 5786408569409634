"""Where a codec's settings lie on a figure axis, and their tick marks.

Settings are strings ("original", a Butteraugli distance such as "0.5", a quality such as
"q90"); every figure and the results table order them by a numeric position that is 0 for the
original and grows with compression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.axis

ORIGINAL = "original"


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


def setting_position(setting: str) -> float:
    """Maps a codec setting string to its position on a numeric axis.

    Args:
        setting: ``"original"`` or a Butteraugli distance written as a string (``"0.5"``).

    Returns:
        0.0 for ``"original"`` (no re-encoding is the zero-distortion end), else the distance.
    """
    return 0.0 if setting == ORIGINAL else float(setting)


DEFAULT_AXIS = SettingAxis()


def setting_label(setting: str) -> str:
    """Returns the short tick label for a setting ("orig" keeps crowded axes readable)."""
    return "orig" if setting == ORIGINAL else setting


def min_gap_fraction(coords: np.ndarray) -> float:
    """Smallest gap between distinct coordinates as a fraction of their span (1.0 if < 2)."""
    unique = np.unique(coords)
    if len(unique) < 2:
        return 1.0
    return float(np.diff(unique).min() / (unique[-1] - unique[0]))


def set_setting_ticks(
    axis: matplotlib.axis.Axis, settings: list[str], setting_axis: SettingAxis
) -> None:
    """Puts one tick per observed setting, labelled with the setting string."""
    unique = sorted(set(settings), key=setting_axis.position)
    positions = [setting_axis.position(s) for s in unique]
    axis.set_ticks(positions, [setting_label(s) for s in unique])
    # Small distances crowd on a linear axis ("orig", "0.5", "1"); tilt x labels apart.
    if axis.axis_name == "x" and min_gap_fraction(np.array(positions)) < 0.08:
        axis.set_tick_params(labelrotation=45)
