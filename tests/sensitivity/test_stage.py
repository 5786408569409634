"""The sensitivity stage in a sweep: planned per model and method, keyed by what changes the
maps, run by `python -m sweep.sensitivity` without the grid, reported and logged."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from sweep.config.build import build_sweep
from sweep.errors import OptionError
from sweep.session.planning import plan_sweep
from tests.conftest import FAST_SWEEP, compose_config, record_calls


def sweep_of(imagefolder, results, *overrides: str, check_data: bool = False):
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={imagefolder}",
        f"results_dir={results}",
        *FAST_SWEEP,
        "cluster=inline",
        "distortion.enabled=false",
        *overrides,
    )
    return build_sweep(cfg, check_data=check_data)


def sensitivity_keys(imagefolder, tmp_path, *overrides: str) -> dict:
    plan = plan_sweep(sweep_of(imagefolder, tmp_path, *overrides))
    return {ident: stage.key for ident, stage in plan.sensitivities.items()}


def test_one_stage_per_trained_model_and_method(imagefolder, tmp_path):
    keys = sensitivity_keys(imagefolder, tmp_path, "sensitivity=both")
    assert set(keys) == {(s, m) for s in ("original", "4") for m in ("gradient", "finite")}
    assert len(set(keys.values())) == 4
    assert sensitivity_keys(imagefolder, tmp_path, "sensitivity=off") == {}


def test_options_change_the_keys_of_the_methods_they_affect(imagefolder, tmp_path):
    base = sensitivity_keys(imagefolder, tmp_path, "sensitivity=both")
    for override in ("sensitivity.epsilon=0.5", "sensitivity.blocks=all"):
        other = sensitivity_keys(imagefolder, tmp_path, "sensitivity=both", override)
        for (setting, method), key in base.items():
            assert (other[(setting, method)] == key) == (method == "gradient"), override
    for override in ("sensitivity.images=8", "sensitivity.statistic=[l1]", "seed=1",
                     "sensitivity.chroma_subsampling=4:4:4"):  # fmt: skip
        other = sensitivity_keys(imagefolder, tmp_path, "sensitivity=both", override)
        assert set(other.values()).isdisjoint(base.values()), override
    # The report's intervals and the test grid change no map.
    for override in ("sensitivity.bootstrap=10", "grid.test=[original]"):
        assert sensitivity_keys(imagefolder, tmp_path, "sensitivity=both", override) == base


def test_a_test_time_crop_changes_the_maps_not_the_trainings(imagefolder, tmp_path):
    """The maps are measured on the evaluation's input: the model's evaluation fields
    (timm's crop_pct) are part of their keys."""

    def plan(*overrides):
        common = (f"task.root={imagefolder}", f"results_dir={tmp_path}", "model=timm_tiny")
        cfg = compose_config("task=imagefolder", *common, *overrides)
        return plan_sweep(build_sweep(cfg, check_data=False))

    base, cropped = plan(), plan("model.crop_pct=0.8")
    assert [t.key for t in base.trains.values()] == [t.key for t in cropped.trains.values()]
    keys = {s.key for s in base.sensitivities.values()}
    assert keys and keys.isdisjoint(s.key for s in cropped.sensitivities.values())


def test_detection_sweeps_plan_no_maps(tmp_path):
    cfg = compose_config("task=demo_det", f"results_dir={tmp_path}", "sensitivity=both")
    sweep = build_sweep(cfg, check_data=False)
    sweep.reader.prepare()
    assert plan_sweep(sweep).sensitivities == {}


@pytest.mark.parametrize(
    ("override", "option"),
    [
        ("sensitivity.method=[adjoint]", "sensitivity.method"),
        ("sensitivity.statistic=[]", "sensitivity.statistic"),
        ("sensitivity.blocks=0", "sensitivity.blocks"),
        ("sensitivity.epsilon=0", "sensitivity.epsilon"),
        ("sensitivity.images=0", "sensitivity.images"),
        ("sensitivity.chroma_subsampling=4:2:2", "sensitivity.chroma_subsampling"),
        ("+sensitivity.colour=lab", "sensitivity.colour"),
    ],
)
def test_bad_options_name_the_option(imagefolder, tmp_path, override, option):
    with pytest.raises(OptionError) as error:
        sweep_of(imagefolder, tmp_path, override)
    assert error.value.option == option


def read_csv(path):
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.mark.slow
def test_maps_without_the_grid_then_the_sweep_reuses_them(imagefolder, tmp_path, monkeypatch):
    """`python -m sweep.sensitivity` trains what is missing and maps it with both methods,
    evaluating no cell; a sweep with the same arguments then reuses every map."""
    from mlflow.tracking import MlflowClient

    from sweep.experiments.sensitivity_maps import SensitivityMaps
    from sweep.session.experiment import Session
    from tests.conftest import run_sweep

    overrides = (
        "sensitivity=both",
        "sensitivity.images=4",
        "sensitivity.blocks=1",
        "sensitivity.bootstrap=50",
        "tracking=local",
    )
    calls = {"train": [], "evaluate": [], "sensitivity": []}
    for kind in calls:
        record_calls(monkeypatch, kind, "run", calls[kind].append)
    sweep = sweep_of(imagefolder, tmp_path, *overrides, check_data=True)
    folder = SensitivityMaps().bind(sweep).maps(Session(sweep))
    assert len(calls["train"]) == 2 and calls["evaluate"] == []
    assert len(calls["sensitivity"]) == 4

    rows = read_csv(folder / "sensitivity.csv")
    assert len(rows) == 2 * 2 * 2 * 3 * 64  # settings x methods x statistics x channels x 64
    for row in rows:
        value, low, high = (float(row[k]) for k in ("value", "ci_low", "ci_high"))
        assert value >= 0 and low <= value <= high
        assert row["n_images"] == "4"
    finite = [r for r in rows if r["method"] == "finite"]
    assert {r["blocks_per_image"] for r in finite} == {"1"}
    assert {r["epsilon"] for r in finite} == {"1.0"}
    agreement = read_csv(folder / "agreement.csv")
    assert {(r["train_setting"], r["statistic"]) for r in agreement} == {
        (s, t) for s in ("original", "4") for t in ("clean_prob", "l1")
    }
    for name in ("maps_train=original_gradient_clean_prob.png", "radius_finite_l1.png",
                 "maps_by_setting_gradient_l1.png", "map_train=4_gradient_clean_prob.json",
                 "sensitivity_summary.csv"):  # fmt: skip
        assert (folder / name).stat().st_size > 0, name

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("sweep-imagefolder").experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    parent_files = {f.path for f in client.list_artifacts(parents[0].info.run_id, "sensitivity")}
    assert "sensitivity/sensitivity.csv" in parent_files
    for child in children:
        files = {f.path for f in client.list_artifacts(child.info.run_id, "sensitivity")}
        setting = child.data.tags["mlflow.runName"].removeprefix("train=")
        assert f"sensitivity/maps_train={setting}_finite_l1.png" in files
        assert "sensitivity/gradient/clean_prob/Y/high_freq_share" in child.data.metrics

    for kind in calls:
        calls[kind].clear()
    # The sweep plans the gradient method only (the default) and still reports both.
    sweep = sweep_of(imagefolder, tmp_path, *overrides[1:], check_data=True)
    assert sweep.sensitivity.method == ("gradient",)
    report = run_sweep(sweep)
    # Nothing trained or measured again; only the grid's cells ran.
    assert calls["train"] == [] and calls["sensitivity"] == []
    assert len(calls["evaluate"]) == 4
    again = read_csv(report / "sensitivity" / "sensitivity.csv")
    assert [r["value"] for r in again] == [r["value"] for r in rows]
    runs = client.search_runs([parents[0].info.experiment_id])
    runs = [run for run in runs if "compare.key" not in run.data.tags]  # the codec comparison
    assert len(runs) == 3  # the sweep logged into the runs the maps created
    assert np.isfinite(float(client.get_run(children[0].info.run_id).data.metrics["train_dcr"]))
