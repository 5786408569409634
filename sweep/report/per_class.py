"""per_class.csv and the figure of the classes that lose most at each test setting.

Rows from `sweep.analysis.per_class.per_class_rows`: every cell's metric per class, with its
interval, relative to original/original's same class. The figure reads the headline seed (the
seeds' mean where there are several): per compressed test setting, a panel of the classes
with the lowest relative value for the model trained on originals, and below it the same for
the model trained at that setting (the diagonal, storing both splits compressed).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

# Reports are produced on headless workers; never let pyplot pick an interactive backend.
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from sweep.analysis.per_class import losing_most, surely_hurt  # noqa: E402
from sweep.codecs.base import ORIGINAL  # noqa: E402
from sweep.figures import save_figure  # noqa: E402
from sweep.tables import write_csv  # noqa: E402

PER_CLASS_COLUMNS = [
    "train_setting", "test_setting", "seed", "class_index", "class_name", "metric",
    "value", "ci_low", "ci_high", "relative", "relative_ci_low", "relative_ci_high",
]  # fmt: skip
PER_CLASS_FILE = "per_class.csv"
PER_CLASS_FIGURE = "per_class_worst.png"
# Classes per panel of the figure.
WORST_CLASSES = 5


def write_per_class_csv(rows: list[dict], out_dir: Path) -> Path:
    """per_class.csv: the rows (empty cells where a bound or relative value is undefined)."""
    return write_csv(rows, PER_CLASS_COLUMNS, Path(out_dir) / PER_CLASS_FILE)


def plot_classes_losing_most(
    rows: list[dict], test_settings: list[str], path: Path, count: int = WORST_CLASSES
) -> Path | None:
    """The figure: one column per compressed test setting (in the order of compression),
    the `count` classes with the lowest relative value of the headline metric, bars with
    their relative interval; solid bars for a class whose interval lies below 100%. Row 1:
    trained on originals; row 2: trained at the same setting. None when no cell has a
    relative value (no original/original cell)."""
    metric = rows[0]["metric"] if rows else None
    rows = [row for row in rows if row["metric"] == metric]
    trains = {row["train_setting"] for row in rows}
    settings = [s for s in test_settings if s != ORIGINAL]
    lines = [("trained on originals", lambda s: ORIGINAL)]
    if any(s in trains for s in settings):
        lines.append(("trained at the same setting", lambda s: s))
    panels = {
        (line, setting): losing_most(rows, train_of(setting), setting, count)
        for line, (_, train_of) in enumerate(lines)
        for setting in settings
    }
    if not any(panels.values()):
        return None
    fig, axes = plt.subplots(
        len(lines),
        len(settings),
        figsize=(3.2 * len(settings), 0.45 * count * len(lines) + 1.6),
        squeeze=False,
        sharex=True,
    )
    for (line, setting), chosen in panels.items():
        ax = axes[line][settings.index(setting)]
        draw_panel(ax, chosen)
        title = f"test {setting}" if line == 0 else f"train = test = {setting}"
        ax.set_title(title, fontsize=9)
        if settings.index(setting) == 0:
            ax.set_ylabel(lines[line][0], fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel(f"{metric}, relative to original/original (%)", fontsize=8)
    fig.suptitle(
        f"Classes that lose most {metric} per test setting (solid: surely below 100%)",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, path)


def draw_panel(ax, chosen: list[dict]) -> None:
    """Horizontal bars of the classes' relative values, the lowest on top."""
    ax.axvline(100, color="0.4", linewidth=0.8)
    if not chosen:
        ax.text(0.5, 0.5, "no such cell", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
        return
    positions = range(len(chosen))
    values = [100 * row["relative"] for row in chosen]
    errors = [error_bar(row, value) for row, value in zip(chosen, values, strict=True)]
    colors = ["#b2182b" if surely_hurt(row) else "#f4a582" for row in chosen]
    ax.barh(positions, values, color=colors, xerr=list(zip(*errors, strict=True)), capsize=2)
    ax.set_yticks(list(positions), [row["class_name"] for row in chosen], fontsize=8)
    ax.invert_yaxis()
    for position, value in zip(positions, values, strict=True):
        inside = value > 20  # a short bar has its label beside it
        ax.text(1 if inside else max(value, 0) + 1, position, f"{value:.0f}%", va="center",
                fontsize=7, color="white" if inside else "0.2")  # fmt: skip


def error_bar(row: dict, value: float) -> tuple[float, float]:
    """The distances from a bar's value (%) to its interval's bounds; 0 for a missing one."""
    low = 100 * row.get("relative_ci_low", math.nan)
    high = 100 * row.get("relative_ci_high", math.nan)
    return (
        max(0.0, value - low) if math.isfinite(low) else 0.0,
        max(0.0, high - value) if math.isfinite(high) else 0.0,
    )
