"""What the tracker logs, as MLflow entities: the metrics of a sweep's DCRs and of a model's
cells, and parameters."""

from __future__ import annotations

import math
import time

from mlflow.entities import Metric, Param

from sweep.tracking.names import ordered_name

# MLflow's limit on a parameter value.
PARAM_VALUE_LIMIT = 6000


def params_of(params: dict[str, str]) -> list[Param]:
    return [Param(key, str(value)[:PARAM_VALUE_LIMIT]) for key, value in sorted(params.items())]


def metric(key: str, value: float, step: int = 0) -> Metric:
    return Metric(key, float(value), int(time.time() * 1000), step)


def finite_metrics(values: dict[str, float]) -> list[Metric]:
    """Metrics of the finite values, by name (MLflow refuses NaN and infinities)."""
    return [metric(key, value) for key, value in sorted(values.items()) if math.isfinite(value)]


def dcr_metrics(dcr_rows: list[dict], positions: dict[str, float] | None = None) -> list[Metric]:
    metrics = []
    for row in dcr_rows:
        setting = ordered_name(row["setting"], positions)
        metrics.append(metric(f"dcr/{row['split']}/{setting}", row["dcr"]))
        metrics.append(metric(f"dcr_raw/{row['split']}/{setting}", row["dcr_raw"]))
    return metrics


def child_metrics(
    cells: list[dict], summary: dict, positions: dict[str, float] | None = None
) -> list[Metric]:
    metrics = []
    if cells and math.isfinite(cells[0]["train_dcr"]):  # NaN: a mix, with no DCR of its own
        metrics.append(metric("train_dcr", cells[0]["train_dcr"]))
        metrics.append(metric("train_dcr_raw", cells[0]["train_dcr_raw"]))
    for cell in cells:
        test, name = ordered_name(cell["test_setting"], positions), cell["metric"]
        metrics.append(metric(f"{name}/test_{test}", cell["value"]))
        if math.isfinite(cell["relative"]):  # NaN when the original/original value is 0
            metrics.append(metric(f"relative_{name}/test_{test}", cell["relative"]))
        metrics.append(metric(f"test_dcr/test_{test}", cell["test_dcr"]))
        # The cell's intervals (sweep/analysis/intervals.py), where the task kind has them.
        for bound in ("ci_low", "ci_high"):
            if bound in cell:
                metrics.append(metric(f"{name}_{bound}/test_{test}", cell[bound]))
            if f"relative_{bound}" in cell:
                metrics.append(
                    metric(f"relative_{name}_{bound}/test_{test}", cell[f"relative_{bound}"])
                )
    for epoch, loss in enumerate(summary.get("train_loss", [])):
        metrics.append(metric("train_loss", loss, step=epoch))
    if "images_per_second" in summary:
        metrics.append(metric("train_images_per_second", summary["images_per_second"]))
    for part, count in summary.get("parameters", {}).items():
        metrics.append(metric(f"parameters/{part}", count))
    return metrics
