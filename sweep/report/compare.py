"""Sweeps side by side on one DCR axis: every codec of a task and model, every model of a task
and codec.

A sweep's report holds one codec and one model. Storage decisions compare codecs, and model
choices compare models (an RGB classifier against one that reads DCT coefficients), so after
each sweep the newest reports of the same task and model (one per codec) and of the same task
and codec (one per model) are read back from their results.csv and drawn together: relative
metric against the DCR of the training data, for a dataset stored compressed (train and test
at the same setting) and for a model trained on compressed data but used on originals. For
each line one number answers "how much can I save before the model loses 1%": the highest DCR
whose relative metric stays within 1% of original/original, interpolated between the two
cells around the crossing, which are named. The model comparison also draws the metric itself
(models differ in their original/original value) and writes every model's cells into one
results.csv.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: the driver may run on a cluster node

import matplotlib.pyplot as plt  # noqa: E402

from sweep.report.axis import ORIGINAL  # noqa: E402
from sweep.report.tables import headline_rows
from sweep.spec import Sweep  # noqa: E402
from sweep.store import atomic_write  # noqa: E402
from sweep.tables import write_csv

log = logging.getLogger(__name__)

# Folders of comparisons (compare_<task>_<model>, compare_models_<task>_<codec>) among the
# sweeps' reports.
COMPARISON_PREFIX = "compare_"
# Relative metrics at or above 1 - TOLERANCE count as "within 1% of the original".
TOLERANCE = 0.01
# Each curve: its id (in tables and MLflow metric names), the test setting of its cells and
# its title. "same" means the train setting: the diagonal, a dataset stored compressed.
CURVES = {
    "stored": ("same", "stored compressed: train and test at one setting"),
    "train_only": (ORIGINAL, "trained on compressed data, tested on originals"),
}
WITHIN_COLUMNS = [
    "task", "model", "codec", "metric", "curve", "dcr_within", "status",
    "last_cell_within", "last_cell_dcr", "last_cell_relative",
    "first_cell_beyond", "first_cell_dcr", "first_cell_relative", "report",
]  # fmt: skip


@dataclass(frozen=True)
class CurvePoint:
    """One cell on a curve: its settings, the train split's DCR, the relative value and the
    metric's value."""

    train_setting: str
    test_setting: str
    dcr: float
    relative: float
    value: float = math.nan

    @property
    def cell(self) -> str:
        return f"train={self.train_setting}/test={self.test_setting}"


def read_results(path: Path) -> list[dict]:
    """Rows of a report's results.csv with numbers parsed."""
    with Path(path).open(newline="", encoding="utf-8") as stream:
        rows = headline_rows(list(csv.DictReader(stream)))
    for row in rows:
        for key in ("train_dcr", "test_dcr", "value", "relative"):
            row[key] = float(row[key])
    return rows


def newest_reports(reports_dir: Path, fixed: dict[str, str], by: str) -> dict[str, Path]:
    """The newest results.csv of each value of column `by` among the reports whose columns
    hold the `fixed` values (e.g. fixed task and model, by codec).

    Reports are identified by their content (the task, model and codec columns), not their
    folder names, which may contain underscores of their own.
    """
    newest: dict[str, tuple[float, Path]] = {}
    for path in sorted(Path(reports_dir).glob("*/results.csv")):
        if path.parent.name.startswith(COMPARISON_PREFIX):  # a comparison's own table
            continue
        with path.open(newline="", encoding="utf-8") as stream:
            first = next(csv.DictReader(stream), None)
        if first is None or any(first[column] != value for column, value in fixed.items()):
            continue
        stamp = path.stat().st_mtime
        if first[by] not in newest or stamp > newest[first[by]][0]:
            newest[first[by]] = (stamp, path)
    return {name: path for name, (_, path) in sorted(newest.items())}


def curve_points(rows: list[dict], metric: str, curve: str) -> list[CurvePoint]:
    """The cells of one curve, ordered by DCR; original/original always comes first."""
    test_of = CURVES[curve][0]
    points = [
        CurvePoint(r["train_setting"], r["test_setting"], r["train_dcr"], r["relative"], r["value"])
        for r in rows
        if r["metric"] == metric
        and r["test_setting"] == (r["train_setting"] if test_of == "same" else test_of)
        and math.isfinite(r["relative"])  # NaN when the original/original value is 0
        and math.isfinite(r["train_dcr"])  # NaN for a mix, which saves no storage
    ]
    # Original first whatever its DCR (0 by definition), then by growing compression.
    return sorted(points, key=lambda p: (p.train_setting != ORIGINAL, p.dcr))


def dcr_within(points: list[CurvePoint], tolerance: float = TOLERANCE) -> dict:
    """Highest DCR along the curve before the relative metric first drops below 1 - tolerance.

    Walking from the original towards more compression, the first cell below the threshold
    ends the curve; the DCR where the straight line between it and the cell before crosses
    the threshold is the answer. If no cell drops below it, the answer is the DCR of the most
    compressed cell and the status says it is a lower bound.
    """
    threshold = 1.0 - tolerance
    within = [p for p in points if p.train_setting == ORIGINAL]
    if not within:
        raise ValueError("the curve has no original cell to start from")
    for point in points:
        if point in within:
            continue
        if point.relative < threshold:
            last = within[-1]
            share = (last.relative - threshold) / (last.relative - point.relative)
            crossing = last.dcr + share * (point.dcr - last.dcr)
            return _within_row(crossing, "crossed (interpolated)", last, point)
        within.append(point)
    return _within_row(within[-1].dcr, "within at every cell (lower bound)", within[-1], None)


def _within_row(dcr: float, status: str, last: CurvePoint, beyond: CurvePoint | None) -> dict:
    return {
        "dcr_within": dcr,
        "status": status,
        "last_cell_within": last.cell,
        "last_cell_dcr": last.dcr,
        "last_cell_relative": last.relative,
        "first_cell_beyond": beyond.cell if beyond else "",
        "first_cell_dcr": beyond.dcr if beyond else math.nan,
        "first_cell_relative": beyond.relative if beyond else math.nan,
    }


def plot_against_dcr(
    curves: dict[str, dict[str, list[CurvePoint]]],
    metric: str,
    title: str,
    path: Path,
    field: str = "relative",
) -> Path:
    """One panel per curve kind, one line per compared sweep: the relative metric (%, with
    the 1% line) or the metric's value (field="value") against the training data's DCR (%)."""
    fig, axes = plt.subplots(
        1, len(CURVES), figsize=(6.0 * len(CURVES), 5.0), layout="constrained", sharey=True
    )
    for ax, curve in zip(axes, CURVES, strict=True):
        for index, (label, by_curve) in enumerate(curves.items()):
            points = by_curve[curve]
            ax.plot(
                [100 * p.dcr for p in points],
                [100 * getattr(p, field) for p in points],
                marker="os^vD<>ph*"[index % 10],
                color=f"C{index % 10}",
                label=label,
            )
        if field == "relative":
            ax.axhline(
                100 * (1 - TOLERANCE), color="grey", linestyle=":", label="1% below original"
            )
        ax.set(xlabel="DCR of the training data (%)", title=CURVES[curve][1])
        ax.grid(True, alpha=0.4)
    relative = f"relative {metric} (% of original/original)"
    axes[0].set_ylabel(relative if field == "relative" else f"{metric} (%)")
    axes[-1].legend()
    fig.suptitle(title)
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(fig)


def write_comparison(reports_dir: Path, task: str, model: str) -> tuple[dict[str, Path], list]:
    """Draws every codec's newest sweep of a task and model together; writes the table.

    Returns:
        The written files keyed by name, and the rows of dcr_within_1pct.csv.
    """
    reports = newest_reports(reports_dir, {"task": task, "model": model}, by="codec")
    out = Path(reports_dir) / f"{COMPARISON_PREFIX}{task}_{model}"
    return compare(reports, out, f"{task}, {model}", "codec", with_values=False)


def write_model_comparison(
    reports_dir: Path, task: str, codec: str
) -> tuple[dict[str, Path], list]:
    """Draws every model's newest sweep of a task and codec together (relative and absolute),
    writes their cells into one results.csv and the table of DCR within 1%; nothing (empty
    results) while the task and codec have sweeps of one model only."""
    reports = newest_reports(reports_dir, {"task": task, "codec": codec}, by="model")
    if len(reports) < 2:
        return {}, []
    out = Path(reports_dir) / f"{COMPARISON_PREFIX}models_{task}_{codec}"
    paths, table = compare(reports, out, f"{task}, {codec}", "model", with_values=True)
    with next(iter(reports.values())).open(newline="", encoding="utf-8") as stream:
        columns = next(csv.reader(stream))
    cells = [row for path in reports.values() for row in read_results(path)]
    paths["results.csv"] = write_csv(cells, columns, out / "results.csv")
    return paths, table


def compare(
    reports: dict[str, Path], out: Path, subject: str, by: str, with_values: bool
) -> tuple[dict[str, Path], list]:
    """The charts and the DCR-within table of the reports, one line per `by` value."""
    out.mkdir(parents=True, exist_ok=True)
    results = {name: read_results(path) for name, path in reports.items()}
    metrics = sorted({r["metric"] for rows in results.values() for r in rows})
    paths, table = {}, []
    for metric in metrics:
        curves = {
            name: {curve: curve_points(rows, metric, curve) for curve in CURVES}
            for name, rows in results.items()
        }
        name = f"relative_vs_dcr_{metric}"
        title = f"{subject}: relative {metric} against DCR, every {by}"
        paths[name] = plot_against_dcr(curves, metric, title, out / f"{name}.png")
        if with_values:
            name = f"{metric}_vs_dcr"
            title = f"{subject}: {metric} against DCR, every {by}"
            paths[name] = plot_against_dcr(curves, metric, title, out / f"{name}.png", "value")
        for label, by_curve in curves.items():
            first = results[label][0]
            for curve, points in by_curve.items():
                if not points:
                    continue
                row = {key: first[key] for key in ("task", "model", "codec")}
                row |= {"metric": metric, "curve": curve, **dcr_within(points)}
                table.append(row | {"report": reports[label].parent.name})
    paths["dcr_within_1pct.csv"] = write_csv(table, WITHIN_COLUMNS, out / "dcr_within_1pct.csv")
    return paths, table


@dataclass(frozen=True)
class Comparison:
    """A comparison of sweeps redrawn after this one: its MLflow key and run name, the column
    its lines differ in ("codec" or "model"), its files and its dcr_within_1pct.csv rows."""

    key: str
    run_name: str
    line: str
    paths: dict[str, Path]
    table: list[dict]


def compare_sweeps(sweep: Sweep) -> list[Comparison]:
    """Redraws every codec's newest sweep of this task and model together, and every model's
    newest sweep of this task and codec (see compare.py).

    The sweep's own report is complete before this runs; a sibling report that cannot be
    read is named in a warning and leaves this sweep's results untouched.
    """
    reports = sweep.results_dir / "reports"
    task, model, codec = sweep.task_name, sweep.model.name, sweep.codec.name
    comparisons = []
    for line, key, write in (
        ("codec", f"{task}/{model}", lambda: write_comparison(reports, task, model)),
        ("model", f"models/{task}/{codec}", lambda: write_model_comparison(reports, task, codec)),
    ):
        try:
            paths, table = write()
        except (OSError, ValueError, KeyError) as error:
            log.warning("%s comparison under %s not updated: %s", line, reports, error)
            continue
        if not paths:  # nothing to compare yet
            continue
        folder = next(iter(paths.values())).parent
        lines = len({r[line] for r in table})
        log.info("%s comparison (%d %s(s)): %s", line, lines, line, folder)
        comparisons.append(Comparison(key, folder.name, line, paths, table))
    return comparisons
