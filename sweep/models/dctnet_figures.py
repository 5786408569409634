"""How often DCTNet's gate selects each frequency channel: 8x8 maps of Y, Cb and Cr.

An evaluation of a model with a dynamic gate stores, per test cell and channel (64 c + 8 i +
j), `gate_open`, the share of test images for which the gate opened it (the model's own
deterministic decision), and `gate_probability`, the mean probability of opening it: the
selection frequency of the paper's figure 5, whose inference samples the gate. The report draws
the selection frequency of the cells where the test data is stored like the training data
(train setting = test setting), one row per trained model, on a linear 0-1 scale, and writes
both statistics of every cell to a table. The report hook of DCTNet (`DctNet.report_figures`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize

from sweep.figures import save_figure
from sweep.sensitivity.figures import draw_map_grid
from sweep.sensitivity.options import CHANNELS
from sweep.tables import write_csv

STATISTICS = ("gate_open", "gate_probability")
COLUMNS = ["train_setting", "test_setting", "channel", "i", "j", *STATISTICS]


def as_maps(values: list[float]) -> np.ndarray:
    """192 per-channel values -> (3, 8, 8): channel (Y, Cb, Cr), vertical i, horizontal j."""
    return np.asarray(values, dtype=np.float64).reshape(len(CHANNELS), 8, 8)


def write_gate_report(cells: dict[tuple[str, str], dict], out: Path) -> dict[str, Path]:
    """gate_frequencies.png (the diagonal cells) and gate_frequencies.csv (every cell).

    Args:
        cells: Per (train setting, test setting), the evaluation's `gate_open` and
            `gate_probability` lists, in grid order.
        out: The report folder.
    """
    if not cells:
        return {}
    maps = {
        cell: {name: as_maps(values[name]) for name in STATISTICS} for cell, values in cells.items()
    }
    rows = [
        {"train_setting": train, "test_setting": test, "channel": channel, "i": i, "j": j}
        | {name: float(by_name[name][c, i, j]) for name in STATISTICS}
        for (train, test), by_name in maps.items()
        for c, channel in enumerate(CHANNELS)
        for i in range(8)
        for j in range(8)
    ]
    paths = {"gate_frequencies.csv": write_csv(rows, COLUMNS, out / "gate_frequencies.csv")}
    diagonal = {train: by_name for (train, test), by_name in maps.items() if train == test}
    if diagonal:
        opened = ", ".join(
            f"{setting} {by_name['gate_open'].sum():.0f}" for setting, by_name in diagonal.items()
        )
        title = (
            "DCTNet gate: selection frequency of each channel on the test images (mean "
            "probability of opening)\n"
            f"test data stored like the training data; channels the model opens per image: {opened}"
        )
        figure = draw_map_grid(
            [by_name["gate_probability"] for by_name in diagonal.values()],
            [f"train={setting}" for setting in diagonal],
            title,
            "selection frequency",
            Normalize(0.0, 1.0),
        )
        paths["gate_frequencies.png"] = save_figure(figure, out / "gate_frequencies.png")
    return paths
