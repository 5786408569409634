"""How often DCTNet's gate selects each frequency channel: 8x8 maps of Y, Cb and Cr.

An evaluation of a model with a dynamic gate stores, per test cell and channel (64 c + 8 i +
j), `gate_open`, the share of test images for which the gate opened it (the model's own
deterministic decision), and `gate_probability`, the mean probability of opening it: the
selection frequency of the paper's figure 5, whose inference samples the gate. The report draws
the selection frequency of the cells where the test data is stored like the training data
(train setting = test setting), one row per trained model, on a linear 0-1 scale, and writes
both statistics of every cell to a table. The report hook of DCTNet (`DctNet.report_figures`).

gate.csv is the gate's verdict per train setting, on the test data stored like its training
data (the original test data for a train setting that is no test setting): `open_channels`,
the channels (of 192) the model opens per test image on average, split into Y, Cb and Cr, the
mean selection frequency of Y, Cb and Cr and of the lowest and highest frequencies (the paper's
findings in numbers), and the cell's accuracy. Each trained model's own map goes to its child
run (gate/train=<setting>.png).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize

from sweep.codecs.base import ORIGINAL
from sweep.figures import save_figure
from sweep.sensitivity.figures import draw_map_grid
from sweep.sensitivity.options import CHANNELS
from sweep.tables import write_csv

STATISTICS = ("gate_open", "gate_probability")
COLUMNS = ["train_setting", "test_setting", "channel", "i", "j", *STATISTICS]
GATE_COLUMNS = [
    "train_setting", "test_setting", "open_channels", "open_y", "open_cb", "open_cr",
    "selection_y", "selection_cb", "selection_cr", "selection_low", "selection_high", "accuracy",
]  # fmt: skip
# The lowest and the highest frequencies: the 10 with i + j <= 3 and the 10 with i + j >= 11.
_I, _J = np.indices((8, 8))
LOW, HIGH = _I + _J <= 3, _I + _J >= 11
MAP_TITLE = (
    "DCTNet gate: selection frequency of each channel on the test images "
    "(mean probability of opening)"
)


def as_maps(values: list[float]) -> np.ndarray:
    """192 per-channel values -> (3, 8, 8): channel (Y, Cb, Cr), vertical i, horizontal j."""
    return np.asarray(values, dtype=np.float64).reshape(len(CHANNELS), 8, 8)


def verdict_cells(cells: dict[tuple[str, str], dict]) -> dict[str, tuple[str, dict]]:
    """Per train setting, (test setting, metrics) of its own setting's test data, or of the
    original test data when it is no test setting (e.g. the study's extra 0.5 row)."""
    chosen = {}
    for (train, test), metrics in cells.items():
        if test == train or (test == ORIGINAL and chosen.get(train, (None,))[0] != train):
            chosen[train] = (test, metrics)
    return chosen


def gate_row(train: str, test: str, metrics: dict) -> dict:
    """One line of gate.csv: what the gate of the train setting's model keeps."""
    opened, selected = as_maps(metrics["gate_open"]), as_maps(metrics["gate_probability"])
    row = {"train_setting": train, "test_setting": test, "open_channels": float(opened.sum())}
    for index, name in enumerate(("y", "cb", "cr")):
        row[f"open_{name}"] = float(opened[index].sum())
        row[f"selection_{name}"] = float(selected[index].mean())
    row["selection_low"] = float(selected[:, LOW].mean())
    row["selection_high"] = float(selected[:, HIGH].mean())
    return row | {"accuracy": metrics.get("accuracy")}


def write_gate_maps(verdicts: dict[str, tuple[str, dict]], out: Path) -> dict[str, list[Path]]:
    """gate/train=<setting>.png: each model's selection frequencies, for its child run."""
    figures = {}
    for train, (test, metrics) in verdicts.items():
        opened = sum(metrics["gate_open"])
        figure = draw_map_grid(
            [as_maps(metrics["gate_probability"])],
            None,
            f"{MAP_TITLE}\ntrain={train}, test={test}: {opened:.1f} of 192 channels open per image",
            "selection frequency",
            Normalize(0.0, 1.0),
        )
        path = out / "gate" / f"train={train}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figures[train] = [save_figure(figure, path)]
    return figures


def write_gate_report(cells: dict[tuple[str, str], dict], out: Path) -> dict[str, Path]:
    """gate.csv (per train setting), gate_frequencies.png (the diagonal cells) and
    gate_frequencies.csv (every cell).

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
    verdicts = [gate_row(train, *chosen) for train, chosen in verdict_cells(cells).items()]
    paths["gate.csv"] = write_csv(verdicts, GATE_COLUMNS, out / "gate.csv")
    diagonal = {train: by_name for (train, test), by_name in maps.items() if train == test}
    if diagonal:
        opened = ", ".join(
            f"{setting} {by_name['gate_open'].sum():.0f}" for setting, by_name in diagonal.items()
        )
        title = (
            f"{MAP_TITLE}\n"
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
