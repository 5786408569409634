"""The words of the parent run's description: the headline, the recommendation's sentences,
the classes hurt first and the heatmaps to open (rendered by `sweep.tracking.description`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from sweep.analysis.per_class import ClassesHurt
from sweep.analysis.recommendation import SCENARIOS
from sweep.codecs.base import ORIGINAL
from sweep.report.axis import SettingAxis
from sweep.report.tables import headline_rows
from sweep.tracking.description import RunDescription


def percent(value: float) -> str:
    return f"{100 * value:.1f}%" if math.isfinite(value) else "undefined"


def bracket(row: dict, low: str, high: str) -> str:
    """ " [45.0, 57.9]" of a row's interval in percent, "" without one."""
    if low not in row or high not in row:
        return ""
    bounds = (float(row[low]), float(row[high]))
    if not all(math.isfinite(b) for b in bounds):
        return ""
    return f" [{100 * bounds[0]:.1f}, {100 * bounds[1]:.1f}]"


def headline(
    rows: list[dict], metric: str, axis: SettingAxis, describe: Callable[[str], str]
) -> str:
    """original/original's value of the headline metric, and the relative value of the model
    trained on originals at the most compressed test setting, each with its interval."""
    cells = {
        (row["train_setting"], row["test_setting"]): row
        for row in headline_rows(rows)
        if row["metric"] == metric
    }
    reference = cells.get((ORIGINAL, ORIGINAL))
    if reference is None:
        return f"{metric}: the grid has no original/original cell"
    text = f"{metric} {percent(float(reference['value']))}{bracket(reference, 'ci_low', 'ci_high')}"
    text += " on originals"
    tests = sorted((t for tr, t in cells if tr == ORIGINAL and t != ORIGINAL), key=axis.position)
    if tests and "relative" in cells[(ORIGINAL, tests[-1])]:
        row = cells[(ORIGINAL, tests[-1])]
        kept = percent(float(row["relative"])) + bracket(row, "relative_ci_low", "relative_ci_high")
        text += f"; tested at {describe(tests[-1])}, the model trained on originals keeps {kept}"
        text += " of it"
    return text


def classes_lines(
    hurt: ClassesHurt | None, describe: Callable[[str], str]
) -> tuple[str, list[str]]:
    """(heading, one line per class) of the classes hurt first; ("", []) without."""
    if hurt is None or not hurt.rows:
        return "", []
    metric = hurt.rows[0]["metric"]
    where = describe(hurt.test_setting)
    heading = (
        f"Trained on originals and tested at {where}, the first setting where a class is "
        f"surely below its {metric} on originals (95% interval below 100%):"
        if hurt.surely
        else f"No class is surely hurt at any test setting; the lowest at {where}:"
    )
    lines = [
        f"**{row['class_name']}**: {percent(row['relative'])}"
        f"{bracket(row, 'relative_ci_low', 'relative_ci_high')} of its {metric} on originals"
        for row in hurt.rows
    ]
    return heading, lines


def run_description(
    rows: list[dict],
    metric: str,
    recommendation: dict,
    hurt: ClassesHurt | None,
    artifact_names: Iterable[str],
    axis: SettingAxis,
    describe: Callable[[str], str],
) -> RunDescription:
    """The parent run's description of a finished grid.

    Args:
        rows: results.csv's rows (with intervals where the task kind has them).
        metric: The headline metric.
        recommendation: recommendation.json's content.
        hurt: The classes hurt first (`sweep.analysis.per_class.classes_hurt_first`).
        artifact_names: The parent run's artifact names; the heatmaps among them are linked.
        axis: The codec's settings on an axis (their order of compression).
        describe: A setting in words ("distance 4").
    """
    heading, classes = classes_lines(hurt, describe)
    scenarios = recommendation.get("scenarios", {})
    return RunDescription(
        headline=headline(rows, metric, axis, describe),
        recommendation=[scenarios[s.name]["sentence"] for s in SCENARIOS if s.name in scenarios],
        classes_heading=heading,
        classes=classes,
        heatmaps=sorted(name for name in artifact_names if name.startswith("heatmap_")),
    )
