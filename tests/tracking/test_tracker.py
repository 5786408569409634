"""MLflow logging to a temporary SQLite database: runs, metrics, no duplicates on rerun."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from sweep.report.tables import add_relative
from sweep.tracking.names import flatten_config, ordered_name
from sweep.tracking.tracker import COMPLETE_TAG, Tracker


def sweep_rows() -> tuple[list[dict], list[dict]]:
    rows = []
    for train in ("original", "4"):
        for test in ("original", "4"):
            value = 0.8 if (train, test) == ("original", "original") else 0.6
            rows.append(
                {
                    "task": "demo",
                    "model": "m",
                    "codec": "jxl",
                    "train_setting": train,
                    "test_setting": test,
                    "train_dcr": 0.0 if train == "original" else 0.9,
                    "test_dcr": 0.0 if test == "original" else 0.9,
                    "train_dcr_raw": 0.8,
                    "test_dcr_raw": 0.8,
                    "metric": "accuracy",
                    "value": value,
                }
            )
    dcr = [
        {"split": s, "setting": t, "dcr": 0.5, "dcr_raw": 0.9}
        for s in ("train", "test")
        for t in ("original", "4")
    ]
    return add_relative(rows), dcr


def log(tracker: Tracker, artifact, positions: dict[str, float] | None = None) -> str:
    rows, dcr = sweep_rows()
    return tracker.log_sweep(
        "sweepkey",
        "demo_m_jxl",
        {"task.name": "demo", "seed": "0"},
        rows,
        dcr,
        {"original": {"train_loss": [1.0, 0.5], "images_per_second": 10.0}},
        {"original": "trainkey0", "4": "trainkey4"},
        [artifact],
        positions=positions,
    )


def test_parent_and_one_child_per_trained_model(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    artifact = tmp_path / "results.csv"
    artifact.write_text("a,b\n")
    tracker = Tracker(uri, "sweep-demo", tmp_path / "artifacts")
    tracker.prepare()
    parent_id = log(tracker, artifact)
    client = MlflowClient(uri)
    parent = client.get_run(parent_id)
    assert parent.data.params["task.name"] == "demo"
    assert parent.data.metrics["dcr/test/4"] == 0.5
    assert parent.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(parent_id)] == ["results.csv"]
    children = client.search_runs(
        [tracker.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert sorted(c.data.tags["train_setting"] for c in children) == ["4", "original"]
    child = next(c for c in children if c.data.tags["train_setting"] == "original")
    assert child.data.metrics["accuracy/test_original"] == 0.8
    assert child.data.metrics["relative_accuracy/test_4"] == 0.6 / 0.8
    assert child.data.metrics["train_dcr"] == 0.0
    assert [m.value for m in client.get_metric_history(child.info.run_id, "train_loss")] == [
        1.0,
        0.5,
    ]


def test_logging_again_creates_no_duplicate_runs(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    artifact = tmp_path / "results.csv"
    artifact.write_text("a\n")
    tracker = Tracker(uri, "sweep-demo", tmp_path / "artifacts")
    tracker.prepare()
    first = log(tracker, artifact)
    second_tracker = Tracker(uri, "sweep-demo", tmp_path / "artifacts")
    second_tracker.prepare()
    assert log(second_tracker, artifact) == first
    runs = MlflowClient(uri).search_runs([tracker.experiment_id])
    assert len(runs) == 3


def test_interrupted_logging_is_finished_without_duplicates(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    artifact = tmp_path / "results.csv"
    artifact.write_text("a\n")
    tracker = Tracker(uri, "sweep-demo", tmp_path / "artifacts")
    tracker.prepare()
    parent_id = log(tracker, artifact)
    client = MlflowClient(uri)
    # As if the driver died before the parent was marked complete.
    client.set_tag(parent_id, COMPLETE_TAG, "false")
    assert log(tracker, artifact) == parent_id
    runs = client.search_runs([tracker.experiment_id])
    assert len(runs) == 3
    child = next(r for r in runs if r.info.run_id != parent_id)
    history = client.get_metric_history(child.info.run_id, "accuracy/test_4")
    assert len(history) == 1


def test_names_sort_in_the_order_of_compression(tmp_path):
    """Settings as strings sort 15 before 4; names led by the axis position do not."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    artifact = tmp_path / "results.csv"
    artifact.write_text("a\n")
    tracker = Tracker(uri, "sweep-demo", tmp_path / "artifacts")
    tracker.prepare()
    parent_id = log(tracker, artifact, {"original": 0.0, "4": 4.0, "15": 15.0})
    client = MlflowClient(uri)
    assert client.get_run(parent_id).data.metrics["dcr/test/004.0_4"] == 0.5
    children = client.search_runs(
        [tracker.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    names = sorted(c.info.run_name for c in children)
    assert names == ["train_000.0_original", "train_004.0_4"]
    child = next(c for c in children if c.data.tags["train_setting"] == "4")
    assert child.data.metrics["train_position"] == 4.0
    tests = sorted(k for k in child.data.metrics if k.startswith("accuracy/"))
    assert tests == ["accuracy/test_000.0_original", "accuracy/test_004.0_4"]
    names = [ordered_name(s, {"original": 0, "4": 4, "15": 15, "0.5": 0.5}) for s in
             ("15", "original", "4", "0.5")]  # fmt: skip
    assert sorted(names) == ["000.0_original", "000.5_0.5", "004.0_4", "015.0_15"]
    jpeg = {"q95": 5.0, "q90": 10.0, "q100-444": -0.4}  # 100 - quality; 4:4:4 below 0
    assert sorted(ordered_name(s, jpeg) for s in jpeg) == [
        "000.0_q100-444",
        "005.0_q95",
        "010.0_q90",
    ]
    assert ordered_name("7", None) == "7"


def test_flatten_config():
    assert flatten_config({"a": {"b": 1, "c": [1, 2]}, "d": "x"}) == {
        "a.b": "1",
        "a.c": "[1, 2]",
        "d": "x",
    }


def test_codec_comparison_logs_into_one_run_updated_each_time(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "exp", tmp_path / "artifacts")
    tracker.prepare()
    chart = tmp_path / "relative_vs_dcr_accuracy.png"
    chart.write_bytes(b"png")
    first = [{"codec": "jxl", "metric": "accuracy", "curve": "stored", "dcr_within": 0.8}]
    run_id = tracker.log_comparison("demo/m", "compare_demo_m", "codec", first, [chart])
    second = first + [{"codec": "jpeg", "metric": "accuracy", "curve": "stored", "dcr_within": 0.5}]
    assert tracker.log_comparison("demo/m", "compare_demo_m", "codec", second, [chart]) == run_id
    metrics = MlflowClient(tracker.uri).get_run(run_id).data.metrics
    assert metrics == {
        "dcr_within_1pct/jxl/accuracy/stored": 0.8,
        "dcr_within_1pct/jpeg/accuracy/stored": 0.5,
    }
    # Another model of the same task gets its own comparison run.
    assert tracker.log_comparison("demo/other", "compare_demo_other", "codec", first, []) != run_id


def test_the_parent_run_tag_is_mlflows():
    """sweep/tracking/names.py spells MLflow's tag without importing MLflow."""
    from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

    from sweep.tracking.names import PARENT_RUN_TAG

    assert PARENT_RUN_TAG == MLFLOW_PARENT_RUN_ID
