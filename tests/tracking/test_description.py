"""The parent run's description: Markdown with the headline, recommendation, classes, links."""

from __future__ import annotations

import urllib.parse

from mlflow.tracking import MlflowClient

from sweep.analysis.per_class import ClassesHurt
from sweep.report.axis import SettingAxis
from sweep.report.description import run_description
from sweep.tracking.description import (
    DESCRIPTION_LIMIT,
    DESCRIPTION_TAG,
    RunDescription,
    render_description,
)
from sweep.tracking.names import artifact_url
from sweep.tracking.tracker import Tracker
from tests.tracking.test_tracker import sweep_rows

AXIS = SettingAxis("Butteraugli distance", {"original": 0.0, "4": 4.0})
RECOMMENDATION = {
    "scenarios": {
        "store_compressed": {"sentence": "store train and test at distance 4"},
        "train_compressed": {"sentence": "train at distance 4, test on originals"},
        "deploy_compressed": {"sentence": "no setting keeps 99% of accuracy; keep originals"},
    }
}
HURT = ClassesHurt(
    "4",
    True,
    [
        {"class_name": "owl", "metric": "accuracy", "relative": 0.42,
         "relative_ci_low": 0.3, "relative_ci_high": 0.55},
        {"class_name": "fox", "metric": "accuracy", "relative": 0.9},
    ],
)  # fmt: skip


def describe(setting: str) -> str:
    return f"distance {setting}"


def description() -> RunDescription:
    rows, _ = sweep_rows()
    rows[0] |= {"ci_low": 0.75, "ci_high": 0.85}
    rows[1] |= {"relative_ci_low": 0.6, "relative_ci_high": 0.9}
    names = ["results.csv", "heatmap_accuracy_setting.png", "heatmap_accuracy_dcr.png"]
    return run_description(rows, "accuracy", RECOMMENDATION, HURT, names, AXIS, describe)


def test_the_description_is_worded_from_the_report():
    words = description()
    assert words.headline == (
        "accuracy 80.0% [75.0, 85.0] on originals; tested at distance 4, the model trained on "
        "originals keeps 75.0% [60.0, 90.0] of it"
    )
    assert words.recommendation[2] == "no setting keeps 99% of accuracy; keep originals"
    assert words.classes[0] == "**owl**: 42.0% [30.0, 55.0] of its accuracy on originals"
    assert words.classes[1] == "**fox**: 90.0% of its accuracy on originals"
    assert "tested at distance 4" in words.classes_heading
    assert words.heatmaps == ["heatmap_accuracy_dcr.png", "heatmap_accuracy_setting.png"]
    unsure = run_description([], "accuracy", {}, ClassesHurt("4", False, HURT.rows), [], AXIS,
                             describe)  # fmt: skip
    assert unsure.classes_heading.startswith("No class is surely hurt")
    assert unsure.headline == "accuracy: the grid has no original/original cell"


def test_the_markdown_links_each_heatmap_to_its_artifact_page():
    text = render_description(description(), "http://mlflow:5000", "7", "abc")
    assert text.startswith("**accuracy 80.0% [75.0, 85.0] on originals;")
    assert "#### Recommendation\n\n- store train and test at distance 4\n" in text
    assert "- **owl**: 42.0% [30.0, 55.0]" in text
    page = "http://mlflow:5000/#/experiments/7/runs/abc/artifactPath/heatmap_accuracy_dcr.png"
    assert f"[heatmap_accuracy_dcr.png]({page})" in text
    assert artifact_url("sqlite:///x.db", "1", "r", "a b.png").endswith("artifactPath/a%20b.png")
    models = text.rsplit("(", 1)[1]
    assert urllib.parse.unquote(models).count("tags.mlflow.parentRunId = 'abc'") == 1


def test_a_long_description_is_cut_to_what_mlflow_stores_keeping_the_headline():
    many = RunDescription("headline", classes=[f"class {i} " + "x" * 80 for i in range(200)])
    text = render_description(many, "sqlite:///x.db", "1", "r")
    assert len(text) <= DESCRIPTION_LIMIT and text.startswith("**headline**")
    assert text.endswith("…")


def test_the_parent_run_gets_the_description_as_its_mlflow_note(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "sweep-demo", tmp_path / "artifacts")
    tracker.prepare()
    rows, dcr = sweep_rows()
    parent_id = tracker.log_sweep(
        "sweepkey", "demo_m_jxl", {"task.name": "demo"}, rows, dcr, {},
        {"original": "trainkey0"}, [], description=description(),
    )  # fmt: skip
    client = MlflowClient(uri)
    note = client.get_run(parent_id).data.tags[DESCRIPTION_TAG]
    assert note.startswith("**accuracy 80.0%")
    assert f"/runs/{parent_id}/artifactPath/heatmap_accuracy_setting.png" in note
    children = client.search_runs(
        [tracker.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert DESCRIPTION_TAG not in children[0].data.tags
