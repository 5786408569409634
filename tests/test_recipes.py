"""The reference study's recipes (conf/experiment/study_*.yaml): each composes the study's
task, model, recipe and grid, and its dry run bills the study's grid on a generated folder of
the dataset's layout (tests/study_layouts.py, a share of the real number of images)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from sweep.config.build import build_launch
from sweep.errors import OptionError
from sweep.experiments.bill.experiment import bill_of
from sweep.models import faster_rcnn_mmdet
from tests.conftest import compose_config
from tests.study_layouts import SIZES, scaled, study_layout

STUDY = ["original", "2", "4", "6", "8", "10"]
STUDY_VOC = ["original", "0.5", *STUDY[1:]]  # the study's extra model at distance 0.5
# recipe -> (task, model, train recipe, train settings, test settings)
RECIPES = {
    "study_food101_vit": ("food101", "vit", "finetune", STUDY, STUDY),
    "study_food101_swav": ("food101", "swav", "linear_probe", STUDY, STUDY),
    "study_voc_mmdet": ("voc", "faster_rcnn_mmdet", "detection", STUDY_VOC, STUDY),
    "study_cityscapes_segformer": ("cityscapes", "segformer", "segformer", STUDY, STUDY),
}  # fmt: skip
# The same networks with random weights, which this machine has: the bill counts stages and
# images, which no weight changes (ViT-B/16 is ViTConfig's default; SegFormer-B5's MiT-b5
# sizes; torchvision's Faster R-CNN R50-FPN for MMDetection's where mmdet is not installed).
STAND_INS = {
    "study_food101_vit": ("model.pretrained=null",),
    "study_food101_swav": ("model.weights=random",),
    "study_voc_mmdet": ("model=faster_rcnn", "model.weights=random"),
    "study_cityscapes_segformer": (
        "model.pretrained=null",
        "+model.architecture={hidden_sizes:[64,128,320,512],depths:[3,6,40,3],"
        "decoder_hidden_size:768}",
    ),
}
DATASET = {"study_food101_vit": "food101", "study_food101_swav": "food101",
           "study_voc_mmdet": "voc", "study_cityscapes_segformer": "cityscapes"}  # fmt: skip
SHARE = 0.01  # of the real number of images: 757 / 252 Food-101 images, 57 / 58 VOC, ...
HAS_MMDET = importlib.util.find_spec("mmdet") is not None


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_recipe_composes_the_studys_setup(recipe):
    task, model, train, train_settings, test_settings = RECIPES[recipe]
    cfg = compose_config(f"experiment={recipe}", "task.root=/data")
    assert (cfg.task.name, cfg.model.name, cfg.codec.name) == (task, model, "jxl")
    assert [str(s) for s in cfg.grid.train] == train_settings
    assert [str(s) for s in cfg.grid.test] == test_settings
    assert cfg.experiment._target_ == "sweep.experiments.grid.GridExperiment"
    # Each model brings its own recipe: fine-tune, linear probe, detection 1x, SegFormer.
    expected = compose_config(f"task={task}", f"model={model}", "task.root=/data").train
    assert cfg.train == expected, train


def test_the_study_grids_are_options_of_their_own():
    cfg = compose_config("grid=study_voc")
    assert [str(s) for s in cfg.grid.train] == STUDY_VOC
    assert [str(s) for s in compose_config("grid=study").grid.test] == STUDY


def bill_for(recipe: str, root: Path, results: Path, *overrides: str):
    cfg = compose_config(
        f"experiment={recipe}", f"task.root={root}", f"results_dir={results}",
        "tracking=none", "progress=false", "dry_run=true", "dry_run_calibrate=false",
        *overrides,
    )  # fmt: skip
    launched = build_launch(cfg)
    return bill_of(launched.session, launched.experiment.experiment, calibrate=False)


@pytest.mark.parametrize("recipe", RECIPES)
def test_a_recipes_dry_run_bills_the_studys_grid(recipe, tmp_path):
    dataset = DATASET[recipe]
    root = study_layout(dataset, tmp_path / dataset, SHARE)
    train_images, test_images = scaled(dataset, SHARE)
    bill = bill_for(recipe, root, tmp_path / "results", *STAND_INS[recipe])
    _, _, _, train_settings, test_settings = RECIPES[recipe]
    rows, columns = len(train_settings), len(test_settings)
    counts = {count.kind: (count.total, count.to_run) for count in bill.counts}
    assert counts["train"] == (rows, rows)
    assert counts["evaluate"] == (rows * columns, rows * columns)
    assert bill.runs["trainings"] == rows and bill.runs["evaluations"] == rows * columns
    # Every lossy setting re-encodes its split; the originals keep their files.
    lossy_train, lossy_test = rows - 1, columns - 1
    assert bill.images["encode"] == lossy_train * train_images + lossy_test * test_images
    epochs = compose_config(f"experiment={recipe}", "task.root=/data").train.epochs
    assert bill.images["train"] == rows * epochs * train_images


def test_the_generated_layouts_have_the_real_sizes_at_full_scale():
    assert scaled("food101", 1.0) == (75_750, 25_250)
    assert scaled("voc", 1.0) == (5_717, 5_823)
    assert scaled("cityscapes", 1.0) == (2_975, 500) == SIZES["cityscapes"]


def test_the_mmdet_recipe_without_mmdet_says_to_build_it(tmp_path, monkeypatch):
    """Tested where mmdet is installed too: its absence is what mmdet_available says."""
    monkeypatch.setattr(faster_rcnn_mmdet, "mmdet_available", lambda: False)
    root = study_layout("voc", tmp_path / "voc", SHARE)
    with pytest.raises(OptionError, match=r"make mmdet") as refused:
        bill_for("study_voc_mmdet", root, tmp_path / "results")
    assert refused.value.option == "model"


@pytest.mark.skipif(not HAS_MMDET, reason="needs mmdet (make mmdet)")
def test_the_mmdet_recipe_bills_with_mmdet(tmp_path):
    root = study_layout("voc", tmp_path / "voc", SHARE)
    # The counts do not depend on the weights (the ImageNet file is not in a test's hub cache).
    bill = bill_for("study_voc_mmdet", root, tmp_path / "results", "model.weights=random")
    assert bill.runs["trainings"] == 7 and bill.runs["evaluations"] == 42
