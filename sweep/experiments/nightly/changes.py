"""What changed between two nightly runs' results.csv: new cells, cells gone, and values that
moved beyond their intervals (or, without intervals, by more than a tolerance); changes.json
and changes.md."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from sweep.report.summarize import json_safe
from sweep.store import write_json_atomic, write_text_atomic

# A cell of results.csv: one metric of one train setting, test setting and seed.
CELL_FIELDS = ("metric", "train_setting", "test_setting", "seed")


def read_results(path: Path) -> list[dict] | None:
    """The rows of a results.csv, or None when there is none (a first nightly run)."""
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def number(text: str | None) -> float | None:
    """A CSV cell as a number: None when empty (no interval), NaN kept."""
    if text is None or text == "":
        return None
    return float(text)


def interval(row: dict) -> tuple[float, float] | None:
    low, high = number(row.get("ci_low")), number(row.get("ci_high"))
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return None
    return low, high


def cell_key(row: dict) -> tuple[str, ...]:
    return tuple(row.get(name, "") for name in CELL_FIELDS)


def cell_of(row: dict) -> dict:
    return {name: row.get(name, "") for name in CELL_FIELDS}


def compare_results(
    previous: list[dict] | None, current: list[dict], tolerance: float
) -> dict[str, list]:
    """What changed between two results.csv tables, cell by cell.

    A cell moved when its new value lies outside its previous interval, or its previous value
    outside its new interval (either way: a tighter interval around an old value counts too);
    where neither row has an interval, when the value changed by more than `tolerance`.

    Args:
        previous: The previous nightly run's rows (None: there is none, every cell is new).
        current: This run's rows.
        tolerance: The change that counts for values without intervals.

    Returns:
        {"new_cells", "gone_cells", "moved_cells", "unchanged_cells"}: lists of cells; new and
        gone cells carry their value, moved ones both values, intervals and how they moved.
    """
    before = {cell_key(row): row for row in previous or []}
    now = {cell_key(row): row for row in current}
    changes: dict[str, list] = {
        "new_cells": [],
        "gone_cells": [],
        "moved_cells": [],
        "unchanged_cells": [],
    }
    for cell, row in now.items():
        if cell not in before:
            changes["new_cells"].append(cell_of(row) | {"value": number(row["value"])})
            continue
        move = moved(before[cell], row, tolerance)
        changes["moved_cells" if move else "unchanged_cells"].append(cell_of(row) | (move or {}))
    for cell, row in before.items():
        if cell not in now:
            changes["gone_cells"].append(cell_of(row) | {"value": number(row["value"])})
    return changes


def moved(before: dict, after: dict, tolerance: float) -> dict | None:
    """How a cell's value moved between two rows, or None when it did not (see
    `compare_results`)."""
    old, new = number(before["value"]), number(after["value"])
    old_interval, new_interval = interval(before), interval(after)
    move = {
        "previous": old,
        "value": new,
        "previous_interval": old_interval,
        "interval": new_interval,
        "direction": "up" if (new or 0) > (old or 0) else "down",
    }
    if old is None or new is None or math.isnan(old) or math.isnan(new):
        both_missing = (old is None or math.isnan(old)) and (new is None or math.isnan(new))
        return None if both_missing else move | {"beyond": "value appeared or vanished"}
    if old_interval is None and new_interval is None:
        return move | {"beyond": "tolerance"} if abs(new - old) > tolerance else None
    outside_previous = old_interval is not None and not old_interval[0] <= new <= old_interval[1]
    outside_new = new_interval is not None and not new_interval[0] <= old <= new_interval[1]
    if not (outside_previous or outside_new):
        return None
    return move | {
        "beyond": "interval",
        "outside_previous_interval": outside_previous,
        "outside_new_interval": outside_new,
    }


def changes_sentence(counts: dict) -> str:
    if counts.get("previous_run") is None:
        return f"first nightly run: {counts['new_cells']} cells, nothing to compare with"
    return (
        f"{counts['new_cells']} new cell(s), {counts['gone_cells']} gone, "
        f"{counts['moved_cells']} moved beyond their intervals, "
        f"{counts['unchanged_cells']} unchanged"
    )


def describe_cell(cell: dict) -> str:
    return (
        f"{cell['metric']} train={cell['train_setting']} test={cell['test_setting']} "
        f"seed={cell['seed']}"
    )


def describe_value(value: float | None, bounds: list | tuple | None) -> str:
    text = "none" if value is None else f"{value:.4g}"
    return text if bounds is None else f"{text} [{bounds[0]:.4g}, {bounds[1]:.4g}]"


def describe_move(move: dict) -> str:
    return (
        f"moved {move['direction']}: {describe_cell(move)}: "
        f"{describe_value(move['previous'], move['previous_interval'])} -> "
        f"{describe_value(move['value'], move['interval'])}"
    )


def write_changes(changes: dict, report: Path) -> list[Path]:
    """changes.json (every cell) and changes.md (the counts and the cells that changed)."""
    counts = {k: len(v) if isinstance(v, list) else v for k, v in changes.items()}
    previous = changes.get("previous_run")
    when = previous["finished"] if previous else None
    title = f"Changes since the last nightly run ({when})" if when else "First nightly run"
    lines = [f"# {title}", "", changes_sentence(counts) + "."]
    if changes["moved_cells"]:
        lines += ["", "## Moved", ""]
        lines += [f"* {describe_move(m)}" for m in changes["moved_cells"]]
    for title, name in (("New", "new_cells"), ("Gone", "gone_cells")):
        if changes[name] and previous is not None:
            lines += ["", f"## {title}", ""]
            lines += [
                f"* {describe_cell(c)}: {describe_value(c['value'], None)}" for c in changes[name]
            ]
    content = {k: v for k, v in changes.items() if k != "unchanged_cells"}
    content["unchanged_cells"] = len(changes["unchanged_cells"])
    json_path, markdown_path = report / "changes.json", report / "changes.md"
    write_json_atomic(json_path, json_safe(content))
    write_text_atomic(markdown_path, "\n".join(lines) + "\n")
    return [json_path, markdown_path]


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
