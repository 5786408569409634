"""Stage keys change when, and only when, something that affects the stage changes."""

from __future__ import annotations

import os

from sweep.config import build_sweep
from sweep.run import plan_sweep
from tests.conftest import compose_config


def keys(imagefolder, tmp_path, *overrides: str) -> dict[str, dict]:
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={imagefolder}",
        f"results_dir={tmp_path}",
        "grid.train=[original,1,4]",
        "grid.test=[original,1,4]",
        *overrides,
    )
    plan = plan_sweep(build_sweep(cfg, check_data=False))
    return {
        "encode": {f"{s.split}/{s.setting}": s.key for s in plan.encodes.values()},
        "train": {setting: stage.key for setting, stage in plan.trains.items()},
        "evaluate": {f"{a}/{b}": s.key for (a, b), s in plan.evaluations.items()},
        "sweep": {"sweep": plan.key},
    }


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


def test_original_encode_is_tied_to_its_dataset_folder(imagefolder, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(imagefolder, copy)  # copies modification times too
    base, other = keys(imagefolder, tmp_path), keys(copy, tmp_path)
    assert other["encode"]["train/original"] != base["encode"]["train/original"]
    assert other["encode"]["train/1"] == base["encode"]["train/1"]


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
