"""The budget experiment's report: budget.csv, budget_law.json, two figures, one MLflow run.

* budget.csv: per setting, budget and test setting: the budget in bytes, the images that fit
  (n), their bytes and bits per image (L), how many times the originals' count that is, the
  metric with its 95% interval (the paired bootstrap of sweep/analysis/: every cell drawn on
  the same test images), or why the cell has no model.
* budget_law.json: the scaling law fitted to the cells on the original test split, with
  intervals for E, alpha, beta and nu; per budget the best setting measured and the one the
  law predicts; and the sentences the run prints.
* budget_by_bytes.png (metric against budget per setting), budget_by_images.png (metric
  against n per setting, with the fitted law's curves).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sweep.analysis.bootstrap import percentile_interval, replicate_values
from sweep.analysis.outcomes import OUTCOMES_FILE, aligned, read_outcomes
from sweep.codecs.base import ORIGINAL
from sweep.experiments.budget.cells import BudgetCell
from sweep.experiments.budget.scaling_law import exponent_intervals, fit_law
from sweep.figures import save_figure
from sweep.report.summarize import describe_setting, json_safe, read_output
from sweep.spec import Sweep
from sweep.stages.graph import Plan
from sweep.stages.kind import digest
from sweep.store import write_json_atomic
from sweep.tables import write_csv

COLUMNS = [
    "task", "model", "codec", "setting", "budget", "budget_bytes", "images", "split_images",
    "bytes_used", "bits_per_image", "images_vs_original", "test_setting", "metric", "value",
    "ci_low", "ci_high", "status",
]  # fmt: skip

log = logging.getLogger(__name__)


def cell_replicates(sweep: Sweep, plan: Plan, metric: str) -> dict[tuple, np.ndarray] | None:
    """(setting, budget, test) -> B replicates of the metric, drawn on the same test images."""
    if sweep.task.resample is None:
        return None
    cells = {}
    for ident, stage in plan.of_kind("evaluate").items():
        if not sweep.store.has_file("evaluate", stage.key, OUTCOMES_FILE):
            return None
        cells[ident] = read_outcomes(sweep.store.file("evaluate", stage.key, OUTCOMES_FILE))
    values = replicate_values(aligned(cells), sweep.task.resample, sweep.intervals)
    return {ident: v[metric] for ident, v in values.items()}


def budget_rows(
    cells: list[BudgetCell], plan: Plan, sweep: Sweep, metric: str, replicates: dict | None
) -> list[dict]:
    """budget.csv's rows (see the module docstring)."""
    evaluations = plan.of_kind("evaluate")
    originals = {c.budget: c.images for c in cells if c.setting == ORIGINAL}
    rows = []
    for cell in cells:
        base = {
            "task": sweep.task_name,
            "model": sweep.model.name,
            "codec": sweep.codec.name,
            "setting": cell.setting,
            "budget": cell.budget,
            "budget_bytes": cell.budget_bytes,
            "images": cell.images,
            "split_images": cell.split_images,
            "bytes_used": cell.bytes_used,
            "bits_per_image": cell.bits_per_image,
            "images_vs_original": (
                cell.images / originals[cell.budget] if originals.get(cell.budget) else None
            ),
            "metric": metric,
        }
        tests = [ident[2] for ident in evaluations if ident[:2] == (cell.setting, cell.budget)]
        if cell.train is None:
            rows.append(base | {"status": cell.reason})
            continue
        for test in tests:
            ident = (cell.setting, cell.budget, test)
            value = read_output(sweep.store, evaluations[ident])[metric]
            row = base | {"test_setting": test, "value": value, "status": "trained"}
            if replicates is not None:
                low, high = percentile_interval(replicates[ident], sweep.intervals.confidence)
                row |= {"ci_low": low, "ci_high": high}
            rows.append(row)
    return rows


def best_by_budget(rows: list[dict], law, sweep: Sweep) -> list[dict]:
    """Per budget: the best setting measured on original test images, and the law's pick."""
    out = []
    for budget in sorted({r["budget"] for r in rows}):
        measured = [
            r for r in rows
            if r["budget"] == budget and r.get("test_setting") == ORIGINAL and "value" in r
        ]  # fmt: skip
        if not measured:
            continue
        best = max(measured, key=lambda r: r["value"])
        original = next((r for r in measured if r["setting"] == ORIGINAL), None)
        entry = {
            "budget": budget,
            "budget_bytes": best["budget_bytes"],
            "best_setting": best["setting"],
            "best_value": best["value"],
            "best_ci": [best.get("ci_low"), best.get("ci_high")],
            "best_images": best["images"],
            "images_vs_original": best["images_vs_original"],
            "original_value": original and original["value"],
            "original_ci": original and [original.get("ci_low"), original.get("ci_high")],
        }
        if law is not None:
            bits = {r["setting"]: r["bits_per_image"] for r in measured}
            predicted = {
                s: float(law.error(8 * best["budget_bytes"] / b, b)) for s, b in bits.items()
            }
            entry["law_best_setting"] = min(predicted, key=predicted.get)
            entry["law_error_by_setting"] = predicted
        entry["sentence"] = budget_sentence(entry, sweep)
        out.append(entry)
    return out


def budget_sentence(entry: dict, sweep: Sweep) -> str:
    """E.g. "at 0.1 of the original bytes, distance 4 holds 5.2x the images and scores 48.3%
    [42.1, 54.6] against 40.0% [33.8, 46.3] for originals"."""
    metric = sweep.task.metric_names[0]
    budget = entry["budget"]
    size = f"{budget:g} of the original bytes" if budget <= 1 else f"{budget:.3g} bytes"

    def scored(value, ci):
        bounds = f" [{ci[0] * 100:.1f}, {ci[1] * 100:.1f}]" if ci and None not in ci else ""
        return f"{value:.1%}{bounds}"

    best = entry["best_setting"]
    if best == ORIGINAL:
        score = scored(entry["best_value"], entry["best_ci"])
        return f"at {size}, the originals score best: {metric} {score}"
    versus = ""
    if entry["original_value"] is not None:
        versus = f" against {scored(entry['original_value'], entry['original_ci'])} for originals"
    times = entry["images_vs_original"]
    holds = f" holds {times:.1f}x the images and" if times else ""
    return (
        f"at {size}, {describe_setting(sweep.codec, best)}{holds} scores "
        f"{metric} {scored(entry['best_value'], entry['best_ci'])}{versus}"
    )


def fitted_law(rows: list[dict], replicates: dict | None, sweep: Sweep) -> tuple:
    """The law fitted to the cells on original test images (err = 1 - metric), and the
    intervals of its constants from refits on the bootstrap replicates."""
    cells = [r for r in rows if r.get("test_setting") == ORIGINAL and "value" in r]
    n = [r["images"] for r in cells]
    bits = [r["bits_per_image"] for r in cells]
    law = fit_law(n, bits, [1 - r["value"] for r in cells])
    if law is None:
        log.warning("budget: %d cells, fewer than the law's 5 constants: no fit", len(cells))
        return None, {}
    intervals = {}
    if replicates is not None:
        errors = np.stack(
            [1 - replicates[(r["setting"], r["budget"], ORIGINAL)] for r in cells], axis=1
        )
        intervals = exponent_intervals(n, bits, errors, sweep.intervals.confidence)
    return law, intervals


def plot_budget(rows: list[dict], law, out: Path, sweep: Sweep) -> dict[str, Path]:
    """The metric against the budget and against the number of images, per setting. A hollow
    marker is a cell whose whole split fit: the budget did not bind, so more bytes cannot
    help that setting."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    metric = sweep.task.metric_names[0]
    measured = [r for r in rows if r.get("test_setting") == ORIGINAL and "value" in r]
    settings = sorted({r["setting"] for r in measured}, key=sweep.codec.setting_position)
    paths = {}
    for name, x_of, xlabel in (
        ("budget_by_bytes", lambda r: r["budget_bytes"] / 1e6, "train split budget (MB)"),
        ("budget_by_images", lambda r: r["images"], "train images that fit (n)"),
    ):
        fig, ax = plt.subplots(figsize=(7.0, 4.8), layout="constrained")
        for setting in settings:
            mine = sorted((r for r in measured if r["setting"] == setting), key=x_of)
            xs = np.array([x_of(r) for r in mine])
            ys = np.array([100 * r["value"] for r in mine])
            low = np.array([100 * r.get("ci_low", r["value"]) for r in mine])
            high = np.array([100 * r.get("ci_high", r["value"]) for r in mine])
            label = "originals" if setting == ORIGINAL else describe_setting(sweep.codec, setting)
            line = ax.errorbar(xs, ys, yerr=[ys - low, high - ys], marker="o", capsize=3,
                               label=label)  # fmt: skip
            colour = line.lines[0].get_color()
            whole = [i for i, r in enumerate(mine) if r["images"] == r["split_images"]]
            # Above errorbar's own markers (its data line is drawn at zorder 2.1).
            ax.plot(xs[whole], ys[whole], "o", markerfacecolor="white", color=colour, zorder=3)
            if law is not None and name == "budget_by_images" and len(xs):
                grid = np.geomspace(xs.min() * 0.8, mine[0]["split_images"], 50)
                ax.plot(grid, 100 * (1 - law.error(grid, mine[0]["bits_per_image"])),
                        color=colour, alpha=0.5, linestyle="--")  # fmt: skip
        ax.set_xscale("log")
        if name == "budget_by_bytes":  # a tick at each budget
            ax.set_xticks(sorted({x_of(r) for r in measured}))
        else:
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.3g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel=xlabel, ylabel=f"{metric} on original test images (%)")
        title = "Fixed storage: fewer originals or more compressed images?"
        if law is not None and name == "budget_by_images":
            title += (
                f"\ndashed: fitted err = E + A n^-{law.alpha:.2f} + B L^-{law.beta:.2f}; "
                "hollow: the whole split fit"
            )
        else:
            title += "\nhollow: the whole split fit (the budget did not bind)"
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        paths[name] = save_figure(fig, out / f"{name}.png")
    return paths


def write_budget_report(sweep: Sweep, plan: Plan, cells: list[BudgetCell], tracker) -> Path:
    """Writes the report folder; logs it to MLflow when tracking is on; returns the folder."""
    metric = sweep.task.metric_names[0]
    key = digest(sorted(stage.key for stage in plan.of_kind("evaluate").values()))
    out = (
        sweep.results_dir
        / "reports"
        / (f"{sweep.task_name}_{sweep.model.name}_{sweep.codec.name}_budget_{key[:8]}")
    )
    out.mkdir(parents=True, exist_ok=True)
    replicates = cell_replicates(sweep, plan, metric)
    rows = budget_rows(cells, plan, sweep, metric, replicates)
    law, intervals = fitted_law(rows, replicates, sweep)
    best = best_by_budget(rows, law, sweep)
    paths = {"budget.csv": write_csv(rows, COLUMNS, out / "budget.csv")}
    paths |= plot_budget(rows, law, out, sweep)
    summary = {
        "metric": metric,
        "law": law and law.to_dict(),
        "law_intervals": intervals,
        "confidence": sweep.intervals.confidence,
        "best_by_budget": best,
        "sentences": [entry["sentence"] for entry in best],
    }
    write_json_atomic(out / "budget_law.json", json_safe(summary))
    paths["budget_law.json"] = out / "budget_law.json"
    for sentence in summary["sentences"]:
        log.info("budget: %s", sentence)
    if tracker is not None:
        metrics = {
            f"budget/{r['setting']}/{r['budget']:g}/{r['test_setting']}/{metric}": r["value"]
            for r in rows
            if "value" in r
        }
        if law is not None:
            metrics |= {f"law/{name}": getattr(law, name) for name in ("E", "alpha", "beta", "nu")}
        tracker.log_keyed_run("budget.key", key, out.name, metrics, list(paths.values()))
    log.info("report: %s", out)
    return out
