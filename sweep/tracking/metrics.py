"""What the tracker logs, as MLflow entities: metric and run names in the order of compression,
the metrics of a sweep's DCRs and of a model's cells, parameters, and the dashboard's pages."""

from __future__ import annotations

import math
import time
import urllib.parse

from mlflow.entities import Metric, Param
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

# Where `make ui` serves a local results_dir's runs.
LOCAL_UI = "http://127.0.0.1:5000"
# MLflow's limit on a parameter value.
PARAM_VALUE_LIMIT = 6000


def runs_url(uri: str, experiment_id: str, parent_id: str | None = None) -> str:
    """The dashboard's page of an experiment's runs: the server of an http(s) tracking URI,
    or `make ui`'s for a local database. MLflow 3's interface opens on its GenAI overview in a
    browser that has not chosen "Model training"; `workflowType` chooses it.

    With `parent_id`, the page of one sweep's models: its child runs, flat (MLflow nests
    children under their collapsed parent unless the page is filtered and sorted by other
    than start time) and sorted by `train_position`, so in the order of compression.
    """
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else LOCAL_UI
    url = f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    if parent_id is None:
        return url
    query = urllib.parse.urlencode(
        {
            "searchFilter": f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent_id}'",
            "orderByKey": "metrics.`train_position`",
            "orderByAsc": "true",
        },
        quote_via=urllib.parse.quote,
    )
    return f"{url}&{query}"


def params_of(params: dict[str, str]) -> list[Param]:
    return [Param(key, str(value)[:PARAM_VALUE_LIMIT]) for key, value in sorted(params.items())]


def metric(key: str, value: float, step: int = 0) -> Metric:
    return Metric(key, float(value), int(time.time() * 1000), step)


def finite_metrics(values: dict[str, float]) -> list[Metric]:
    """Metrics of the finite values, by name (MLflow refuses NaN and infinities)."""
    return [metric(key, value) for key, value in sorted(values.items()) if math.isfinite(value)]


def ordered_name(setting: str, positions: dict[str, float] | None) -> str:
    """A setting's part of a metric or run name, led by its position on the codec's axis so
    that names sort in the order of compression: "015.0_15" after "004.0_4", "010.0_q90"
    after "005.0_q95". The setting alone where its position is unknown."""
    position = (positions or {}).get(setting)
    if position is None or not math.isfinite(position):
        return setting
    return f"{max(position, 0.0):05.1f}_{setting}"


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


def flatten_config(node: dict, prefix: str = "") -> dict[str, str]:
    """{"task": {"name": "demo"}} -> {"task.name": "demo"}; lists stay one value."""
    flat = {}
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
