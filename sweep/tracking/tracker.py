"""MLflow logging, from the driver only: a parent run per sweep, a child run per trained model.

Runs are found again by tags (the sweep key on the parent, the train key on a child), so a
rerun or a resumed sweep logs into the runs it created before instead of duplicating them. A
run is marked complete only after everything is logged; a sweep killed while logging finishes
its logging on the next run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path

from mlflow.entities import Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from sweep.tracking.description import DESCRIPTION_TAG, RunDescription, render_description
from sweep.tracking.metrics import (
    PARAM_VALUE_LIMIT,
    child_metrics,
    dcr_metrics,
    finite_metrics,
    metric,
    params_of,
)
from sweep.tracking.names import ordered_name

log = logging.getLogger(__name__)

SWEEP_KEY_TAG = "sweep.key"
TRAIN_KEY_TAG = "train.key"
COMPLETE_TAG = "sweep.logged"
COMPARE_KEY_TAG = "compare.key"
SENSITIVITY_TAG = "sensitivity.logged"
# Why a sweep's parent run ended before the sweep did (FAILED or KILLED).
ERROR_TAG = "sweep.error"
# MLflow 3 opens an experiment of this kind on its runs, not on the GenAI overview (traces).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# Config keys that say how a sweep ran, not what it measured: tags "ops.<key>", kept apart
# from the parameters (the science) so that runs compare on what changes results.
OPERATIONS = ("cluster.", "tracking.", "progress", "results_dir", "data.on_error")


class Tracker:
    """Logs sweeps to one MLflow experiment.

    Args:
        uri: Tracking URI (sqlite:///... or http://...).
        experiment: Experiment name; created if missing.
        artifact_root: Where a new experiment of a database store keeps its artifacts.
    """

    def __init__(self, uri: str, experiment: str, artifact_root: Path | None = None) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        self.uri = uri
        self.experiment = experiment
        self.artifact_root = artifact_root
        self.experiment_id: str | None = None

    def prepare(self) -> str:
        """Creates the database tables and the experiment; call before any worker starts."""
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            location = None
            if self.artifact_root is not None and self.uri.startswith("sqlite:"):
                self.artifact_root.mkdir(parents=True, exist_ok=True)
                location = self.artifact_root.absolute().as_uri()
            self.experiment_id = self.client.create_experiment(self.experiment, location)
        self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        return self.experiment_id

    def _find(self, filter_string: str):
        runs = self.client.search_runs([self.experiment_id], filter_string, max_results=10)
        return runs[0] if runs else None

    def log_sweep(
        self,
        sweep_key: str,
        run_name: str,
        params: dict[str, str],
        rows: list[dict],
        dcr_rows: list[dict],
        train_summaries: dict[str, dict],
        train_keys: dict[str, str],
        artifacts: Iterable[Path],
        metrics: dict[str, float] | None = None,
        child_files: dict[str, list[Path]] | None = None,
        labels: dict[str, str] | None = None,
        positions: dict[str, float] | None = None,
        started_at: float | None = None,
        description: RunDescription | None = None,
    ) -> str:
        """Logs a finished sweep (idempotent); returns the parent run id. `child_files` are
        logged into the child run of their train setting (e.g. a resizer's figure).

        `labels` (task, model, codec) tag the parent and every child, so that runs filter
        and compare across sweeps (`tags.codec = 'jxl'`); `positions` place each train and
        test setting on the codec's axis (0 for original, growing with compression): each
        child logs its own as the number `train_position`, and metric and run names carry
        them (`ordered_name`), so that the dashboard lists settings in the order of
        compression, not of their strings (15 before 4); `started_at` (epoch seconds) is
        the sweep's start, so the parent's duration is the sweep's and not its logging's;
        `description` becomes the parent's description (Markdown, `render_description`).
        """
        labels = labels or {}
        parent = self._parent(sweep_key, run_name, labels, started_at)
        if parent.data.tags.get(COMPLETE_TAG) == "true":
            log.info("MLflow run %s already holds this sweep", parent.info.run_id)
            return parent.info.run_id
        parent_id = parent.info.run_id
        science = {k: v for k, v in params.items() if not k.startswith(OPERATIONS)}
        operations = [RunTag(f"ops.{k}", str(v)[:PARAM_VALUE_LIMIT]) for k, v in params.items()
                      if k.startswith(OPERATIONS)]  # fmt: skip
        # Repeated on a resumed run: MLflow accepts a parameter again with the same value.
        self.client.log_batch(parent_id, params=params_of(science), tags=operations)
        extra = [metric(key, value) for key, value in sorted((metrics or {}).items())]
        self.client.log_batch(parent_id, metrics=dcr_metrics(dcr_rows, positions) + extra)
        for path in artifacts:
            self.client.log_artifact(parent_id, str(path))
        if description is not None:
            text = render_description(description, self.uri, self.experiment_id, parent_id)
            self.client.set_tag(parent_id, DESCRIPTION_TAG, text)
        for setting, train_key in train_keys.items():
            cells = [r for r in rows if r["train_setting"] == setting]
            self._log_child(
                parent_id,
                setting,
                train_key,
                cells,
                train_summaries.get(setting, {}),
                (child_files or {}).get(setting, []),
                labels,
                positions or {},
            )
        self.client.set_tag(parent_id, COMPLETE_TAG, "true")
        if ERROR_TAG in parent.data.tags:  # an earlier try's failure, resumed to the end
            self.client.delete_tag(parent_id, ERROR_TAG)
        self.client.set_terminated(parent_id, "FINISHED")
        return parent_id

    def start_sweep(
        self, sweep_key: str, run_name: str, labels: dict[str, str], started_at: float
    ) -> None:
        """The sweep's parent run, RUNNING while the sweep works (untouched once complete)."""
        parent = self._parent(sweep_key, run_name, labels, started_at)
        if parent.data.tags.get(COMPLETE_TAG) != "true" and parent.info.status != "RUNNING":
            self.client.update_run(parent.info.run_id, status="RUNNING")

    def end_sweep(self, sweep_key: str, error: BaseException, interrupted: bool) -> None:
        """Ends a sweep's parent run that stopped before its end: KILLED when interrupted,
        FAILED otherwise, with the error's message as the tag `sweep.error`."""
        parent = self._find(f"tags.`{SWEEP_KEY_TAG}` = '{sweep_key}'")
        if parent is None or parent.data.tags.get(COMPLETE_TAG) == "true":
            return
        message = "interrupted" if interrupted else f"{type(error).__name__}: {error}"
        self.client.set_tag(parent.info.run_id, ERROR_TAG, message[:PARAM_VALUE_LIMIT])
        self.client.set_terminated(parent.info.run_id, "KILLED" if interrupted else "FAILED")

    def log_to_sweep(
        self, sweep_key: str, metrics: dict[str, float], artifacts: Iterable[Path], folder: str
    ) -> str | None:
        """Adds metrics, and files under `folder`, to a logged sweep's parent run (a nightly
        run's changes), leaving its status and times alone; None when it has no run."""
        parent = self._find(f"tags.`{SWEEP_KEY_TAG}` = '{sweep_key}'")
        if parent is None:
            return None
        self.client.log_batch(parent.info.run_id, metrics=finite_metrics(metrics))
        for path in artifacts:
            self.client.log_artifact(parent.info.run_id, str(path), artifact_path=folder)
        return parent.info.run_id

    def log_audit(
        self, audit_key: str, run_name: str, metrics: dict[str, float], artifacts: list[Path]
    ) -> str:
        """Logs a dataset audit as one run; the same dataset's audit logs into the same run."""
        return self.log_keyed_run("audit.key", audit_key, run_name, metrics, artifacts)

    def log_keyed_run(
        self, tag: str, key: str, run_name: str, metrics: dict[str, float], artifacts: list[Path]
    ) -> str:
        """Logs a result as one run found by its tag (an audit, a budget experiment): the
        same key logs into the same run."""
        found = self._find(f"tags.`{tag}` = '{key}'")
        run = found or self.client.create_run(
            self.experiment_id, run_name=run_name, tags={tag: key}
        )
        self.client.log_batch(run.info.run_id, metrics=finite_metrics(metrics))
        for path in artifacts:
            self.client.log_artifact(run.info.run_id, str(path))
        self.client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    def log_comparison(
        self, key: str, run_name: str, line: str, table: list[dict], artifacts: Iterable[Path]
    ) -> str:
        """Logs a comparison of sweeps into its one run (found by `key`), updated each time.

        Metrics `dcr_within_1pct/<line>/<metric>/<curve>` hold the latest table, `line` naming
        the column its lines differ in ("codec" or "model"); the chart and table files replace
        the previous ones.
        """
        found = self._find(f"tags.`{COMPARE_KEY_TAG}` = '{key}'")
        run = found or self.client.create_run(
            self.experiment_id, run_name=run_name, tags={COMPARE_KEY_TAG: key}
        )
        metrics = [
            metric(f"dcr_within_1pct/{r[line]}/{r['metric']}/{r['curve']}", r["dcr_within"])
            for r in table
        ]
        self.client.log_batch(run.info.run_id, metrics=metrics)
        for path in artifacts:
            self.client.log_artifact(run.info.run_id, str(path))
        self.client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    def log_sensitivity(
        self,
        sweep_key: str,
        run_name: str,
        maps_key: str,
        train_keys: dict[str, str],
        files_by_setting: dict[str, list[Path]],
        metrics_by_setting: dict[str, dict[str, float]],
        parent_files: Iterable[Path],
        parent_metrics: dict[str, float],
    ) -> str:
        """Logs sensitivity maps into the sweep's parent run and its models' child runs,
        under the artifact folder "sensitivity"; creates the runs a sweep has not logged
        yet (a sweep logs its cells into them later). `maps_key` names the set of maps: the
        runs hold each set once (a rerun logs nothing). Returns the parent run id."""
        parent = self._parent(sweep_key, run_name)
        if parent.data.tags.get(SENSITIVITY_TAG) == maps_key:
            log.info("MLflow run %s already holds these sensitivity maps", parent.info.run_id)
            return parent.info.run_id
        parent_id = parent.info.run_id
        self.client.log_batch(parent_id, metrics=finite_metrics(parent_metrics))
        for path in parent_files:
            self.client.log_artifact(parent_id, str(path), artifact_path="sensitivity")
        for setting, train_key in train_keys.items():
            child = self._child(parent_id, setting, train_key)
            metrics = metrics_by_setting.get(setting, {})
            self.client.log_batch(child.info.run_id, metrics=finite_metrics(metrics))
            for path in files_by_setting.get(setting, []):
                self.client.log_artifact(child.info.run_id, str(path), artifact_path="sensitivity")
            # Finished runs take more logging: the sweep still logs its cells into them.
            self.client.set_terminated(child.info.run_id, "FINISHED")
        self.client.set_tag(parent_id, SENSITIVITY_TAG, maps_key)
        self.client.set_terminated(parent_id, "FINISHED")
        return parent_id

    def _parent(
        self,
        sweep_key: str,
        run_name: str,
        labels: dict[str, str] | None = None,
        started_at: float | None = None,
    ):
        """The parent run of a sweep (found by its key), created if missing."""
        parent = self._find(f"tags.`{SWEEP_KEY_TAG}` = '{sweep_key}'")
        if parent is None:
            parent = self.client.create_run(
                self.experiment_id,
                run_name=run_name,
                tags={SWEEP_KEY_TAG: sweep_key, **(labels or {})},
                start_time=None if started_at is None else int(started_at * 1000),
            )
        return parent

    def _child(self, parent_id: str, setting: str, train_key: str):
        """The child run of a trained model under a parent, created if missing."""
        child = self._find(
            f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{parent_id}' and tags.`{TRAIN_KEY_TAG}` = "
            f"'{train_key}'"
        )
        if child is None:
            child = self.client.create_run(
                self.experiment_id,
                tags={
                    MLFLOW_PARENT_RUN_ID: parent_id,
                    TRAIN_KEY_TAG: train_key,
                    MLFLOW_RUN_NAME: f"train={setting}",
                },
            )
        return child

    def _log_child(
        self,
        parent_id: str,
        setting: str,
        train_key: str,
        cells: list[dict],
        summary: dict,
        files: list[Path],
        labels: dict[str, str],
        positions: dict[str, float],
    ) -> None:
        child = self._child(parent_id, setting, train_key)
        if child.data.tags.get(COMPLETE_TAG) == "true":
            return
        for path in files:  # before the completion tag: a rerun logs what is missing
            self.client.log_artifact(child.info.run_id, str(path))
        metrics = child_metrics(cells, summary, positions)
        position = positions.get(setting)
        if position is not None and math.isfinite(position):
            metrics.append(metric("train_position", position))
        identity = {"train_setting": setting, **labels}
        # Runs sort by name in the runs table and the compare view: in compression order.
        name = RunTag(MLFLOW_RUN_NAME, f"train_{ordered_name(setting, positions)}")
        # Metrics, parameters and the completion tag in one request: no half-logged child.
        self.client.log_batch(
            child.info.run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in identity.items()],
            tags=[RunTag(COMPLETE_TAG, "true"), name, *(RunTag(k, v) for k, v in identity.items())],
        )
        self.client.set_terminated(child.info.run_id, "FINISHED")
