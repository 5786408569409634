"""model=timm: local weights only, the architecture's own preprocessing, the pretrained head
mapped to the dataset's classes, and train=none evaluating the classifier as loaded.

Every test runs timm's tiny test_vit on the CPU from weights saved to tmp_path; none may reach
the network (a connection attempt fails the test).
"""

from __future__ import annotations

import csv
import json
import logging
import socket

import pytest
import torch
from huggingface_hub import constants as hub_constants
from safetensors.torch import save_file
from timm.data import ImageNetInfo
from torchvision.transforms import v2

from sweep.config.build import build_sweep
from sweep.errors import OptionError
from sweep.inputs.rgb import eval_geometry, eval_transform
from sweep.models.errors import ModelUnavailableError
from sweep.models.swav import SwavResNet
from sweep.models.timm_classifier import TimmClassifier
from sweep.models.trained import WEIGHTS_FILE
from sweep.options import TrainOptions
from sweep.tasks.classification import ClassificationTask
from tests.conftest import compose_config, write_jpeg

TINY = "test_vit"  # timm's own test architecture: 160 px, bicubic, crop_pct 0.95
SIZE = 160
# ImageNet synsets of outputs 3 and 7.
SYNSETS = ImageNetInfo().label_names()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection is a download attempt: refuse it loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def source():
    """The tiny classifier with random weights and its ImageNet-sized head, in eval mode (seed
    1: on the generated images its outputs 3, 42 and 7 get some classes right, some wrong)."""
    torch.manual_seed(1)
    return TimmClassifier(name=TINY).build(1000).eval()


@pytest.fixture
def weights(source, tmp_path):
    path = tmp_path / "test_vit.pth"
    torch.save(source.state_dict(), path)
    return path


def images(count: int = 2) -> torch.Tensor:
    return torch.randn(count, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


# ---- weights ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_load_from_a_local_file_with_a_new_head(source, tmp_path, suffix):
    path = tmp_path / f"weights{suffix}"
    if suffix == ".safetensors":
        save_file(source.state_dict(), path)
    else:
        torch.save(source.state_dict(), path)
    model = TimmClassifier(name=TINY, weights=str(path))
    model.check_available()
    module = model.build(num_classes=3)
    assert module(images()).shape == (2, 3)
    embedding = "patch_embed.proj.weight"
    assert torch.equal(module.state_dict()[embedding], source.state_dict()[embedding])
    # Evaluation rebuilds the architecture without the file and loads the trained weights.
    rebuilt = model.build(3, load_pretrained=False)
    rebuilt.load_state_dict(module.state_dict())


def test_a_headless_file_is_fine_tuned_but_not_evaluated_as_loaded(tmp_path):
    path = tmp_path / "features.pth"
    torch.save(TimmClassifier(name=TINY).build(0).state_dict(), path)  # no head.weight
    model = TimmClassifier(name=TINY, weights=str(path))
    assert model.head_size() == 0 and model.build(3)(images()).shape == (2, 3)
    with pytest.raises(OptionError, match="holds no classifier head") as raised:
        model.as_loaded(["3"])
    assert raised.value.option == "train"


def test_a_missing_file_names_the_path_and_is_never_downloaded(tmp_path):
    model = TimmClassifier(name=TINY, weights=str(tmp_path / "nowhere.pth"))
    with pytest.raises(ModelUnavailableError, match="nowhere.pth") as raised:
        model.check_available()
    assert "model.weights" in str(raised.value)


def test_a_model_id_outside_the_local_cache_says_how_to_fill_it(tmp_path, monkeypatch):
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    model = TimmClassifier(name=TINY, weights="timm/test_vit.r160_in1k")
    with pytest.raises(ModelUnavailableError, match="hf download timm/test_vit.r160_in1k"):
        model.check_available()


def test_a_model_id_in_the_local_cache_is_read_from_it(source, tmp_path, monkeypatch):
    """The hub cache layout: refs/main names the snapshot that holds model.safetensors."""
    repo = tmp_path / "hub" / "models--timm--test_vit.r160_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0123abcd")
    (repo / "snapshots" / "0123abcd").mkdir(parents=True)
    save_file(source.state_dict(), repo / "snapshots" / "0123abcd" / "model.safetensors")
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    model = TimmClassifier(name=TINY, weights="timm/test_vit.r160_in1k")
    model.check_available()
    with torch.no_grad():
        assert torch.equal(
            model.as_loaded(["5"]).build(1).eval()(images()), source(images())[:, [5]]
        )
    assert model.identity()["weights_file"][0] == "model.safetensors"


def test_a_file_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(TimmClassifier(name="test_resnet").build(10).state_dict(), path)
    with pytest.raises(ModelUnavailableError, match="is not a state dict of timm's test_vit"):
        TimmClassifier(name=TINY, weights=str(path)).build(3)


def test_identity_holds_the_architecture_and_the_weight_file(weights):
    model = TimmClassifier(name=TINY, weights=str(weights))
    before = model.identity()
    name, size, content = before["weights_file"]
    assert before["name"] == TINY and (name, size) == (weights.name, weights.stat().st_size)
    assert len(content) == 16
    assert "crop_pct" not in before and model.eval_identity() == {"crop_pct": 0.95}
    torch.save({"other": torch.zeros(3)}, weights)
    assert model.identity() != before


def test_a_replaced_weight_file_of_the_same_size_gets_a_new_identity(weights):
    """Retrained weights of one architecture have the same size (and a cached Hugging Face
    file the same name): the content tells them apart."""
    model = TimmClassifier(name=TINY, weights=str(weights))
    before = model.identity()
    state = torch.load(weights, weights_only=True)
    first = next(key for key, value in state.items() if value.is_floating_point())
    state[first] = state[first] + 1
    torch.save(state, weights)
    after = model.identity()
    assert after["weights_file"][:2] == before["weights_file"][:2]
    assert after != before


# ---- architecture and preprocessing -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "close"), [("resnet5O", "resnet50"), ("test_vitt", TINY), ("resnet50.nope", "a1_in1k")]
)
def test_an_unknown_architecture_or_tag_names_model_name_and_close_ones(name, close):
    with pytest.raises(OptionError, match=close) as raised:
        TimmClassifier(name=name)
    assert raised.value.option == "model.name"


def test_preprocessing_comes_from_the_architecture():
    model = TimmClassifier(name="convit_base.fb_in1k")  # bicubic, crop_pct 0.875, 224 px
    assert (model.image_size, model.interpolation, model.crop_pct) == (224, "bicubic", 0.875)
    resize, crop, _ = eval_geometry(model).transforms
    assert resize.size == [256] and resize.interpolation == v2.InterpolationMode.BICUBIC
    assert crop.size == (224, 224)
    pixels = eval_geometry(model)(torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8))
    assert pixels.shape == (3, 224, 224) and pixels.dtype == torch.float32
    assert 0 <= pixels.min() and pixels.max() <= 1
    normalise = eval_transform(model).transforms[-1]
    assert tuple(normalise.mean) == model.mean and tuple(normalise.std) == model.std


def test_preprocessing_can_be_overridden():
    model = TimmClassifier(name=TINY, image_size=96, interpolation="bilinear", crop_pct=1.0)
    resize = eval_geometry(model).transforms[0]
    assert resize.size == [96] and resize.interpolation == v2.InterpolationMode.BILINEAR
    # A fixed-size architecture is built for the new size.
    assert model.build(2)(torch.randn(1, 3, 96, 96)).shape == (1, 2)
    with pytest.raises(OptionError) as raised:
        TimmClassifier(name=TINY, interpolation="lanczos")
    assert raised.value.option == "model.interpolation"


def test_families_without_interpolation_or_crop_keep_the_plain_resize():
    """Same transform as before the attributes existed: results and keys stay valid."""
    model = SwavResNet(name="tiny", weights="random", depth=10, image_size=48)
    image = torch.randint(0, 256, (3, 60, 80), dtype=torch.uint8)
    before = v2.Compose(
        [v2.Resize(48, antialias=True), v2.CenterCrop(48), v2.ToDtype(torch.float32, scale=True)]
    )
    assert torch.equal(eval_geometry(model)(image), before(image))


# ---- the pretrained head, as loaded --------------------------------------------------------


def test_index_folders_keep_those_outputs_of_the_head(source, weights):
    model = TimmClassifier(name=TINY, weights=str(weights)).as_loaded(["3", "7"])
    assert model.head_outputs == (3, 7) and model.identity()["head_outputs"] == (3, 7)
    module = model.build(2).eval()
    with torch.no_grad():
        assert torch.equal(module(images()), source(images())[:, [3, 7]])
        # The evaluation's round trip: build without the file, load the written state dict.
        rebuilt = model.build(2, load_pretrained=False)
        rebuilt.load_state_dict(module.state_dict())
        assert torch.equal(rebuilt.eval()(images()), module(images()))


def test_synset_folders_map_through_imagenet_info(weights):
    model = TimmClassifier(name=TINY, weights=str(weights))
    assert model.as_loaded([SYNSETS[7], SYNSETS[3], "12"]).head_outputs == (7, 3, 12)


@pytest.mark.parametrize(
    ("names", "words"),
    [
        (["3", "cat", "dog"], "'cat', 'dog'"),
        (["3", "1000"], "'1000'"),
        (["n99999999"], "n01440764"),
        (["3", "003"], "same head output"),
    ],
)
def test_classes_that_name_no_output_are_refused_saying_how_to_name_them(weights, names, words):
    with pytest.raises(OptionError, match=words) as raised:
        TimmClassifier(name=TINY, weights=str(weights)).as_loaded(names)
    assert raised.value.option == "task.root"


def test_families_without_a_pretrained_classifier_are_evaluated_as_built_and_say_so(caplog):
    """train=none on such a family is a baseline at chance (the report's chance check)."""
    family = SwavResNet(name="swav_tiny", weights="random", depth=10)
    assert family.as_loaded(["0", "1"]) is family
    assert "baseline at chance" in caplog.text and "model=timm" in caplog.text


def test_zero_epochs_write_the_module_as_loaded(weights, tmp_path):
    model = TimmClassifier(name=TINY, weights=str(weights)).as_loaded(["3", "7"])
    summary = ClassificationTask().train(model, [], 2, TrainOptions(epochs=0), 0, tmp_path)
    assert summary["as_loaded"] is True and summary["epochs"] == 0 and summary["train_loss"] == []
    written = torch.load(tmp_path / WEIGHTS_FILE, weights_only=True)
    expected = model.build(2).state_dict()
    assert written.keys() == expected.keys()
    assert all(torch.equal(written[key], expected[key]) for key in expected)


# ---- train=none in the config --------------------------------------------------------------


def index_folder(root, classes=("3", "7"), train=2, test=3):
    """<root>/{train,test}/<class>/*.jpg with class folders named by head output."""
    for label, name in enumerate(classes):
        for index in range(train):
            write_jpeg(root / "train" / name / f"{index}.jpg", label, index)
        for index in range(test):
            write_jpeg(root / "test" / name / f"{index}.jpg", label, 100 + index)
    return root


def test_train_none_composes_and_collapses_the_train_axis(tmp_path, caplog):
    cfg = compose_config(
        "model=timm_tiny", "train=none", "grid.train=[original,4]", f"results_dir={tmp_path}"
    )
    with caplog.at_level(logging.INFO, logger="sweep.config"):
        sweep = build_sweep(cfg, check_data=False)
    assert sweep.options.epochs == 0 and sweep.train_settings == ["original"]
    assert len(sweep.test_settings) > 1
    assert "grid.train" in caplog.text and "ignored" in caplog.text


def test_train_none_maps_the_class_folders_once_the_data_is_read(weights, tmp_path):
    root = index_folder(tmp_path / "data")
    common = ("task=imagefolder", f"task.root={root}", "tracking=none", f"results_dir={tmp_path}")
    sweep = build_sweep(
        compose_config(*common, "model=timm_tiny", f"model.weights={weights}", "train=none")
    )
    assert sweep.model.head_outputs == (3, 7)
    # A family with no pretrained head is evaluated as built: a baseline at chance, said so.
    untrained = build_sweep(compose_config(*common, "model=swav_tiny", "train=none"))
    assert untrained.model.name == "swav_tiny" and untrained.options.epochs == 0


def test_train_none_refuses_class_names_of_no_output_under_task_root(
    weights, imagefolder, tmp_path
):
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={imagefolder}",
        "model=timm_tiny",
        f"model.weights={weights}",
        "train=none",
        "tracking=none",
        f"results_dir={tmp_path}",
    )
    with pytest.raises(OptionError, match="'cat', 'dog', 'fish'") as raised:
        build_sweep(cfg)
    assert raised.value.option == "task.root"


@pytest.mark.slow
def test_a_train_none_sweep_scores_the_loaded_model_in_every_cell(source, weights, tmp_path):
    """No training happens: each cell's accuracy is the loaded model's on that cell's images."""
    from sweep.session.planning import plan_sweep, screen
    from sweep.stages.encode import encoded_files
    from tests.conftest import run_sweep

    root = index_folder(tmp_path / "data", classes=("3", "42", "7"))  # sorted: colour = label
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={root}",
        "model=timm_tiny",
        f"model.weights={weights}",
        "train=none",
        "cluster=inline",
        "cluster.torch_threads=1",
        "tracking=none",
        "distortion.enabled=false",
        "grid.test=[original,4]",
        "progress=false",
        f"results_dir={tmp_path / 'results'}",
    )
    sweep = build_sweep(cfg)
    report = run_sweep(sweep)
    with (report / "results.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["train_setting"], r["test_setting"]) for r in rows] == [
        ("original", "original"),
        ("original", "4"),
    ]
    plan = plan_sweep(sweep, screen(sweep))  # the finished sweep's own plan
    [train] = plan.trains.values()
    trained = sweep.store.path("train", train.key)
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["as_loaded"] is True and summary["train_loss"] == []
    written = torch.load(trained / WEIGHTS_FILE, weights_only=True)
    assert all(
        torch.equal(written[f"model.{key}"], value) for key, value in source.state_dict().items()
    )
    # The loaded model, run directly on each test setting's encoded images.
    module = TimmClassifier(name=TINY, weights=str(weights)).as_loaded(["3", "42", "7"])
    module = module.build(3).eval()
    transform = eval_transform(sweep.model)
    for row in rows:
        files = encoded_files(sweep.store, plan.encodes[("test", row["test_setting"])])
        dataset = [(transform(image), label) for image, label in load_images(files)]
        with torch.no_grad():
            logits = module(torch.stack([image for image, _ in dataset]))
        labels = torch.tensor([label for _, label in dataset])
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        assert float(row["value"]) == pytest.approx(accuracy)
    assert 0 < float(rows[0]["value"]) < 1  # some right, some wrong: the equality says much


def load_images(files):
    from sweep.inputs.files import ImageFileDataset

    return list(ImageFileDataset(files, lambda image: image))
