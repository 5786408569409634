"""Composition and instantiation of every config option; validation with clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from sweep.codecs.base import Codec
from sweep.config.build import DEMO_TASKS, build_sweep
from sweep.errors import OptionError
from sweep.models.base import ModelFamily
from sweep.options import TrainOptions
from sweep.tasks.base import TaskKind
from sweep.tasks.classification import ClassificationTask
from tests.conftest import CONFIG_DIR, compose_config

REPO = Path(__file__).resolve().parent.parent
# Every config group: a folder of conf/ (a new group or option is tested without listing it).
GROUPS = sorted(path.name for path in CONFIG_DIR.iterdir() if path.is_dir())


def options_of(group: str) -> list[str]:
    return sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))


def picks_a_task(experiment: str) -> bool:
    """The experiment's yaml chooses the task (the study's recipes, conf/experiment/study_*)."""
    defaults = OmegaConf.load(CONFIG_DIR / "experiment" / f"{experiment}.yaml").get("defaults")
    return any("/task" in str(entry) for entry in defaults or [])


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in options_of(g)])
def test_every_option_composes_and_instantiates(group, option, tmp_path):
    overrides = [f"{group}={option}", f"results_dir={tmp_path}"]
    if group == "grid_codec":
        # Chosen by the defaults list as <grid>_<codec>: compose that grid and codec.
        grid, codec = option.split("_", 1)
        overrides = [f"grid={grid}", f"codec={codec}", f"results_dir={tmp_path}"]
    if group == "task" and option != "demo":
        overrides.append(f"task.root={tmp_path}")
    if group == "experiment" and picks_a_task(option):  # a recipe: its dataset's folder
        overrides.append(f"task.root={tmp_path}")
    if group == "model":
        # A model runs with the demo task of its kind.
        kind = OmegaConf.load(CONFIG_DIR / "model" / f"{option}.yaml").task_kind
        overrides.append(f"task={DEMO_TASKS[kind]}")
    sweep = build_sweep(compose_config(*overrides), check_data=False)
    assert isinstance(sweep.codec, Codec)
    assert isinstance(sweep.options, TrainOptions)
    assert sweep.train_settings[0] == "original"
    assert isinstance(sweep.task, TaskKind) and isinstance(sweep.model, ModelFamily)
    assert sweep.model.task_kind == sweep.task.kind
    if group == "model":
        # A family whose name is its architecture (model=timm: "resnet50.a1_in1k") keeps it.
        # Any other is named after its yaml, with the options that tell its variants apart
        # appended (model=dct_resnet50: "dct_resnet50_late_concat_rfa_thinner").
        if "name" in type(sweep.model).display_fields:
            assert sweep.model.name.startswith(option)
        else:
            assert sweep.model.name == OmegaConf.load(CONFIG_DIR / group / f"{option}.yaml").name


@pytest.mark.parametrize(
    ("task", "model"),
    [("demo_det", "faster_rcnn_tiny"), ("voc", "faster_rcnn"), ("demo_seg", "segformer_tiny"),
     ("cityscapes", "segformer"), ("voc_seg", "segformer"), ("coco", "faster_rcnn"),
     ("seg_folder", "segformer")],
)  # fmt: skip
def test_each_task_picks_a_model_of_its_kind(task, model, tmp_path):
    sweep = build_sweep(
        compose_config(f"task={task}", f"task.root={tmp_path}", f"results_dir={tmp_path}"),
        check_data=False,
    )
    assert sweep.model.name == model


def test_a_model_of_another_kind_names_the_task_to_use(tmp_path):
    cfg = compose_config("task=demo", "model=faster_rcnn_tiny", f"results_dir={tmp_path}")
    with pytest.raises(OptionError, match="task=demo_det") as error:
        build_sweep(cfg, check_data=False)
    assert error.value.option == "model"


def test_default_is_the_demo_on_a_small_grid(tmp_path):
    sweep = build_sweep(compose_config(f"results_dir={tmp_path}"), check_data=False)
    assert sweep.task_name == "demo"
    assert sweep.cluster.mode == "ray"
    assert 3 <= len(sweep.train_settings) < len(sweep.codec.sweep_settings())
    assert sweep.tracking.uri == f"sqlite:///{tmp_path}/mlflow.db"


def test_full_grid_is_original_and_every_distance(tmp_path):
    sweep = build_sweep(compose_config("grid=full", f"results_dir={tmp_path}"), check_data=False)
    expected = ["original", "0.5", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    assert sweep.train_settings == expected
    assert sweep.test_settings == expected


def test_model_chooses_its_training_recipe():
    assert compose_config("model=vit").train.lr == pytest.approx(5e-5)
    assert compose_config("model=swav").train.weight_decay == 0
    assert compose_config("model=vit", "train.lr=0.1").train.lr == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("override", "option", "words"),
    [
        ("codec.distances=[-1]", "codec.distances", "outside libjxl's range"),
        ("codec.distances=[26]", "codec.distances", "at most 25"),
        ("codec.distances=[1,1]", "codec.distances", "each once"),
        ("codec.effort=11", "codec.effort", "1-10"),
        ("grid.train=[original,1,1]", "grid.train", "more than once"),
        ("grid.test=[1,2]", "grid.test", "must include 'original'"),
        ("grid.train=[]", "grid.train", "non-empty"),
        ("grid.test=[original,fast]", "grid.test", "not a JPEG XL setting"),
        ("train.amp=fp8", "train.amp", "'auto'"),
        ("train.epochs=-1", "train.epochs", ">= 0"),
        ("train.lr=-1", "train.lr", "positive"),
        ("cluster.mode=slurm", "cluster.mode", "'inline'"),
        ("cluster.encode_shard_size=0", "cluster.encode_shard_size", ">= 1"),
        ("tracking.uri=./mlruns", "tracking.uri", "sqlite:///"),
        ("model.depth=7", "model", "10, 18, 34, 50"),
        ("+cluster.workers=3", "cluster.workers", "unknown option"),
        ("train.lr=fast", "train.lr", "must be float"),
        ("codec._target_=sweep.codecs.nope.Codec", "codec", "nope"),
        ("model.name=../../elsewhere", "model.name", "letters, digits"),
    ],
)
def test_wrong_values_name_the_option_and_the_allowed_values(override, option, words, tmp_path):
    overrides = [override, f"results_dir={tmp_path}"]
    if override.startswith("model.depth"):
        overrides.insert(0, "model=swav_tiny")
    with pytest.raises(OptionError) as raised:
        build_sweep(compose_config(*overrides), check_data=False)
    assert raised.value.option == option
    assert words in str(raised.value)


def test_missing_dataset_root_is_named(tmp_path):
    with pytest.raises(OptionError, match=r"task.root: is required"):
        build_sweep(compose_config("task=food101", f"results_dir={tmp_path}"))
    with pytest.raises(OptionError, match=r"task.root: .*nowhere.* does not exist"):
        build_sweep(
            compose_config(
                "task=imagefolder", f"task.root={tmp_path}/nowhere", f"results_dir={tmp_path}"
            )
        )


def test_unwritable_results_dir_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OptionError, match="results_dir: cannot write"):
        build_sweep(compose_config(f"results_dir={blocker}/sub", "tracking=none"))


def test_unreachable_tracking_server_is_named(tmp_path):
    with pytest.raises(OptionError, match=r"tracking.uri: no MLflow server answers"):
        build_sweep(
            compose_config(
                "tracking.uri=http://127.0.0.1:9",
                f"results_dir={tmp_path}",
                f"task.root={tmp_path}/demo",
            )
        )


def test_missing_pretrained_weights_say_how_to_provide_them(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(OptionError) as raised:
        build_sweep(compose_config("model=vit", f"results_dir={tmp_path}", "tracking=none"))
    assert "model.pretrained=google/vit-base-patch16-224-in21k" in str(raised.value)
    assert "save_pretrained" in str(raised.value)


def run_cli(*arguments: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sweep", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_unknown_group_option_exits_2_listing_the_options(tmp_path):
    result = run_cli("task=nope", f"results_dir={tmp_path}")
    assert result.returncode == 2
    assert "task/nope" in result.stderr and "food101" in result.stderr
    assert not (tmp_path / "store").exists()


def test_cli_wrong_value_exits_2_before_any_work(tmp_path):
    result = run_cli("codec.distances=[-1]", f"results_dir={tmp_path}")
    assert result.returncode == 2
    assert "codec.distances" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "store").exists()


def test_cli_help_lists_groups_and_cfg_prints_the_config():
    help_text = run_cli("--help").stdout
    for group in GROUPS:
        assert f"{group}:" in help_text
    assert "food101" in help_text and "vit_tiny" in help_text
    job = run_cli("task=food101", "task.root=/data/food-101", "--cfg", "job").stdout
    assert "root: /data/food-101" in job and "results_dir: results" in job


def test_cli_unwritable_results_dir_exits_2_before_hydra(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli(f"results_dir={blocker}/results")
    assert result.returncode == 2 and "results_dir" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_target_outside_the_contracts_is_named(tmp_path):
    cfg = compose_config("task.kind._target_=builtins.dict", f"results_dir={tmp_path}")
    with pytest.raises(OptionError, match="builtins.dict is not a TaskKind") as error:
        build_sweep(cfg, check_data=False)
    assert error.value.option == "task.kind._target_"


class OptionlessTask(ClassificationTask):
    """A task kind that names a training option nobody defined."""

    option_fields = ("min_crop_scale", "crop_jitter")


def test_a_task_kind_naming_an_unknown_training_option_is_refused(tmp_path):
    cfg = compose_config(
        "task.kind._target_=tests.test_config.OptionlessTask", f"results_dir={tmp_path}"
    )
    with pytest.raises(OptionError, match=r"\['crop_jitter'\], which are not train options"):
        build_sweep(cfg, check_data=False)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("intervals.replicates=1", r"intervals.replicates: must be at least 2"),
        ("intervals.confidence=95", r"intervals.confidence: must lie between 0 and 1"),
        ("+intervals.method=bca", r"intervals.method: unknown option"),
        ("recommend.threshold=99", r"recommend.threshold: is a share .* 0.99 for 99%"),
        ("seeds=[0,0]", r"seeds: lists a seed more than once"),
        ("seeds=[]", r"seeds: must be a non-empty list such as \[0,1,2\]"),
        ("seeds=[-1]", r"seeds: must be an integer >= 0"),
    ],
)
def test_bad_interval_recommendation_and_seed_options_name_themselves(override, message):
    with pytest.raises(OptionError, match=message):
        build_sweep(compose_config(override), check_data=False)
