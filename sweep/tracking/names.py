"""Names and pages of the tracking, without MLflow: setting names in the order of compression,
a config as flat parameters, and the dashboard's pages of a sweep."""

from __future__ import annotations

import math
import urllib.parse

# MLflow's tag of a child run's parent (mlflow.utils.mlflow_tags.MLFLOW_PARENT_RUN_ID).
PARENT_RUN_TAG = "mlflow.parentRunId"
# Where `make ui` serves a local results_dir's runs.
LOCAL_UI = "http://127.0.0.1:5000"


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
            "searchFilter": f"tags.{PARENT_RUN_TAG} = '{parent_id}'",
            "orderByKey": "metrics.`train_position`",
            "orderByAsc": "true",
        },
        quote_via=urllib.parse.quote,
    )
    return f"{url}&{query}"


def artifact_url(uri: str, experiment_id: str, run_id: str, path: str) -> str:
    """The dashboard's page of a run with one of its artifacts open (a heatmap)."""
    base = runs_url(uri, experiment_id).split("/runs?", 1)[0]
    return f"{base}/runs/{run_id}/artifactPath/{urllib.parse.quote(path)}"


def ordered_name(setting: str, positions: dict[str, float] | None) -> str:
    """A setting's part of a metric or run name, led by its position on the codec's axis so
    that names sort in the order of compression: "015.0_15" after "004.0_4", "010.0_q90"
    after "005.0_q95". The setting alone where its position is unknown."""
    position = (positions or {}).get(setting)
    if position is None or not math.isfinite(position):
        return setting
    return f"{max(position, 0.0):05.1f}_{setting}"


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
