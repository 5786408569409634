"""Stage keys change when, and only when, something that affects the stage changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sweep.config.build import build_sweep
from sweep.report.summarize import stage_index
from sweep.session.planning import plan_sweep
from tests.conftest import compose_config


def plan_keys(*overrides: str) -> dict[str, dict]:
    """{kind: {ident: key}} of every stage of the composed sweep's plan, and {"sweep": key}."""
    sweep = build_sweep(compose_config(*overrides), check_data=False)
    sweep.reader.prepare()  # generates a built-in demo's images
    plan = plan_sweep(sweep)
    index = stage_index(plan)
    return {**index, "sweep": {"sweep": index["sweep"]}}


def keys(imagefolder, tmp_path, *overrides: str) -> dict[str, dict]:
    return plan_keys(
        "task=imagefolder",
        f"task.root={imagefolder}",
        f"results_dir={tmp_path}",
        "grid.train=[original,1,4]",
        "grid.test=[original,1,4]",
        *overrides,
    )


def test_plan_has_one_training_per_train_setting_and_one_evaluation_per_cell(imagefolder, tmp_path):
    base = keys(imagefolder, tmp_path)
    assert len(base["train"]) == 3 and len(base["evaluate"]) == 9
    assert len(base["encode"]) == 6
    assert len(set(base["evaluate"].values())) == 9


def test_execution_and_tracking_options_change_no_key(imagefolder, tmp_path):
    base = keys(imagefolder, tmp_path)
    assert keys(imagefolder, tmp_path, "cluster=inline", "cluster.encode_shard_size=2") == base
    assert keys(imagefolder, tmp_path, "tracking=none", "progress=false") == base
    assert keys(imagefolder, tmp_path, "train.eval_batch_size=7") == base


def test_effort_changes_encodes_of_distances_but_not_original(imagefolder, tmp_path):
    base = keys(imagefolder, tmp_path)
    other = keys(imagefolder, tmp_path, "codec.effort=3")
    assert other["encode"]["train/original"] == base["encode"]["train/original"]
    assert other["encode"]["train/1"] != base["encode"]["train/1"]
    assert other["train"]["original"] == base["train"]["original"]
    assert other["train"]["1"] != base["train"]["1"]


def test_training_options_change_trainings_and_evaluations_only(imagefolder, tmp_path):
    base = keys(imagefolder, tmp_path)
    for override in (
        "train.lr=0.01",
        "seed=1",
        "train.epochs=5",
        "model.image_size=64",
        "train.loader_workers=2",
    ):
        other = keys(imagefolder, tmp_path, override)
        assert other["encode"] == base["encode"], override
        assert set(other["train"].values()).isdisjoint(base["train"].values()), override
        assert set(other["evaluate"].values()).isdisjoint(base["evaluate"].values()), override


def test_test_settings_do_not_change_trainings(imagefolder, tmp_path):
    base = keys(imagefolder, tmp_path)
    other = keys(imagefolder, tmp_path, "grid.test=[original,10]")
    assert other["train"] == base["train"]
    assert other["evaluate"]["1/original"] == base["evaluate"]["1/original"]
    assert other["sweep"] != base["sweep"]


def test_a_changed_image_changes_its_split_only(imagefolder, tmp_path):
    base = keys(imagefolder, tmp_path)
    changed = next((imagefolder / "test" / "cat").iterdir())
    changed.write_bytes(changed.read_bytes() + b"\0")
    os.utime(changed, ns=(1, 1))
    other = keys(imagefolder, tmp_path)
    assert other["encode"]["train/1"] == base["encode"]["train/1"]
    assert other["encode"]["test/1"] != base["encode"]["test/1"]
    assert other["train"] == base["train"]


def test_model_display_name_changes_no_key(imagefolder, tmp_path):
    assert keys(imagefolder, tmp_path, "model.name=renamed") == keys(imagefolder, tmp_path)


def test_a_copied_and_touched_dataset_shares_every_key(imagefolder, tmp_path):
    """Keys name files by relative path, size and content: not by the dataset's place (the
    original encode's records are resolved against the root of the run) nor by file times."""
    import shutil

    copy = Path(shutil.copytree(imagefolder, tmp_path / "elsewhere" / "copy"))
    for path in copy.rglob("*.jpg"):
        os.utime(path, ns=(1, 1))
    assert keys(copy, tmp_path) == keys(imagefolder, tmp_path)


def distortion_keys(imagefolder, tmp_path, *overrides: str) -> dict[str, dict]:
    """Keys of a plan built with the config's distortion options (as run.plan_sweep will)."""
    from tests.distortion.test_stage import plan_of, sweep_of

    plan = plan_of(sweep_of(imagefolder, tmp_path, *overrides))
    return {
        "encode": {f"{s.split}/{s.setting}": s.key for s in plan.encodes.values()},
        "train": {setting: stage.key for setting, stage in plan.trains.items()},
        "distortion": {f"{s.split}/{s.setting}": s.key for s in plan.distortions.values()},
    }


def test_distortion_options_change_distortion_keys_only(imagefolder, tmp_path):
    base = distortion_keys(imagefolder, tmp_path)
    assert set(base["distortion"]) == {f"test/{s}" for s in ("original", "1", "4")}
    for override in ("distortion.measures=[psnr]", "distortion.enabled=false"):
        other = distortion_keys(imagefolder, tmp_path, override)
        assert other["encode"] == base["encode"] and other["train"] == base["train"], override
        assert set(other["distortion"].values()).isdisjoint(base["distortion"].values())


def test_a_new_encode_gets_a_new_distortion_key(imagefolder, tmp_path):
    base = distortion_keys(imagefolder, tmp_path)
    other = distortion_keys(imagefolder, tmp_path, "codec.effort=3")
    assert other["distortion"]["test/original"] == base["distortion"]["test/original"]
    assert other["distortion"]["test/1"] != base["distortion"]["test/1"]


def demo_keys(task: str, tmp_path, *overrides: str) -> dict[str, dict]:
    """Keys of a built-in demo task's plan, on a few generated images."""
    small = ("task.reader.train_images=4", "task.reader.test_images=2")
    return plan_keys(f"task={task}", f"results_dir={tmp_path}", *small, *overrides)


def test_classification_only_options_leave_other_kinds_keys_alone(tmp_path, imagefolder):
    for task in ("demo_det", "demo_seg"):
        base = demo_keys(task, tmp_path)
        assert demo_keys(task, tmp_path, "train.min_crop_scale=0.3") == base, task
    # ... and change a classifier's trainings.
    base = keys(imagefolder, tmp_path)
    other = keys(imagefolder, tmp_path, "train.min_crop_scale=0.3")
    assert set(other["train"].values()).isdisjoint(base["train"].values())


@pytest.mark.parametrize(
    "override",
    ["task.kind.eval_mode=slide", "task.kind.resize_short_side=96"],
)
def test_segmentation_evaluation_options_re_evaluate_without_retraining(tmp_path, override):
    base = demo_keys("demo_seg", tmp_path)
    other = demo_keys("demo_seg", tmp_path, override)
    assert other["encode"] == base["encode"]
    if override.endswith("eval_mode=slide"):
        assert other["train"] == base["train"]
    else:  # the short side is rescaled in training too
        assert set(other["train"].values()).isdisjoint(base["train"].values())
    assert set(other["evaluate"].values()).isdisjoint(base["evaluate"].values())


def test_sliding_window_options_change_evaluations_only_when_sliding(tmp_path):
    whole = demo_keys("demo_seg", tmp_path)
    assert demo_keys("demo_seg", tmp_path, "task.kind.window=64", "task.kind.stride=32") == whole
    slide = demo_keys("demo_seg", tmp_path, "task.kind.eval_mode=slide")
    smaller = demo_keys(
        "demo_seg", tmp_path, "task.kind.eval_mode=slide", "task.kind.window=64",
        "task.kind.stride=32",
    )  # fmt: skip
    assert smaller["train"] == slide["train"] == whole["train"]
    assert set(smaller["evaluate"].values()).isdisjoint(slide["evaluate"].values())


def test_training_recipe_of_a_task_kind_changes_its_trainings(tmp_path):
    base = demo_keys("demo_det", tmp_path)
    other = demo_keys("demo_det", tmp_path, "task.kind.hflip=0.0")
    assert other["encode"] == base["encode"]
    assert set(other["train"].values()).isdisjoint(base["train"].values())


def test_every_stage_reads_only_its_kinds_inputs(imagefolder, tmp_path):
    from sweep.stages.table import STAGE_KINDS

    sweep = build_sweep(
        compose_config("task=imagefolder", f"task.root={imagefolder}", f"results_dir={tmp_path}"),
        check_data=False,
    )
    plan = plan_sweep(sweep)
    for stage in plan.in_order(STAGE_KINDS):
        inputs = STAGE_KINDS[stage.kind].inputs
        assert {upstream.kind for upstream in stage.upstream()} <= set(inputs), stage.kind
        assert all(
            upstream.key in {s.key for s in plan.in_order(STAGE_KINDS)}
            for upstream in stage.upstream()
        )


def test_model_inference_options_re_evaluate_without_retraining(tmp_path):
    base = demo_keys("demo_det", tmp_path)
    for override in ("model.test_size=160", "model.detections_per_image=20"):
        other = demo_keys("demo_det", tmp_path, override, "model.max_size=160")
        wider = demo_keys("demo_det", tmp_path, "model.max_size=160")
        assert other["train"] == wider["train"], override
        assert set(other["evaluate"].values()).isdisjoint(wider["evaluate"].values()), override
    assert demo_keys("demo_det", tmp_path, "model.max_size=160")["train"] != base["train"]
