"""Faster R-CNN models: forward and backward on small inputs, weights from a local torch hub
cache (never downloaded), clear errors; the MMDetection backend when mmdet is installed."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torchvision.models import resnet50
from torchvision.models.detection import FasterRCNN, FasterRCNN_ResNet50_FPN_Weights
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.ops.misc import FrozenBatchNorm2d

from sweep.errors import OptionError
from sweep.models import faster_rcnn_mmdet
from sweep.models.errors import ModelUnavailableError
from sweep.models.faster_rcnn import FasterRCNNResNet50, TinyFasterRCNN, hub_checkpoint
from sweep.models.faster_rcnn_mmdet import MmdetFasterRCNN, mmdet_available
from tests.conftest import compose_config

COCO_FILE = "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth"
IMAGENET_FILE = "resnet50-0676ba61.pth"
SMALL_SIZES = {"train_sizes": [64], "test_size": 64, "max_size": 64}


def targets_for(num_images: int) -> list[dict]:
    """One object in the first image, none in the others (they must work too)."""
    targets = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    targets *= num_images
    targets[0] = {"boxes": torch.tensor([[8.0, 8.0, 40.0, 36.0]]), "labels": torch.tensor([2])}
    return targets


def run_forward_and_backward(module: torch.nn.Module, size: int) -> None:
    images = [torch.rand(3, size, size), torch.rand(3, size, size - 8)]
    module.train()
    losses = module(images, targets_for(2))
    assert {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"} <= set(losses)
    sum(losses.values()).backward()
    trained = [p for p in module.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None for p in trained)
    module.eval()
    with torch.no_grad():
        detections = module(images)
    assert len(detections) == 2
    assert set(detections[0]) == {"boxes", "labels", "scores"}
    assert detections[0]["boxes"].shape[1:] == (4,)


def test_tiny_model_from_config_runs_forward_and_backward():
    model = instantiate(compose_config("model=faster_rcnn_tiny").model, _convert_="all")
    assert model.task_kind == "detection"
    module = model.build(num_classes=3)
    assert module.roi_heads.box_predictor.cls_score.out_features == 4  # 3 classes + background
    run_forward_and_backward(module, model.test_size)


def test_r50_with_random_weights_runs_forward_and_backward_with_a_new_head():
    model = FasterRCNNResNet50(name="r50", weights="random", **SMALL_SIZES)
    model.check_available()
    module = model.build(num_classes=20)
    assert module.roi_heads.box_predictor.cls_score.out_features == 21
    # Random weights train every layer, batch norm included.
    assert isinstance(module.backbone.body.bn1, torch.nn.BatchNorm2d)
    run_forward_and_backward(module, 64)


def test_multi_scale_training_and_a_separate_test_size():
    model = FasterRCNNResNet50(
        name="r50", weights="random", train_sizes=[32, 48], test_size=64, max_size=100
    )
    transform = model.build(num_classes=2).transform
    transform.train()
    assert transform.min_size == (32, 48)
    transform.eval()
    assert transform.min_size == (64,)


@pytest.fixture
def hub_dir(tmp_path):
    """An empty torch hub cache; the real one is restored afterwards."""
    before = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    yield tmp_path / "hub" / "checkpoints"
    torch.hub.set_dir(before)


def test_the_weight_files_are_torchvisions():
    assert hub_checkpoint(FasterRCNN_ResNet50_FPN_Weights.COCO_V1).name == COCO_FILE
    assert FasterRCNNResNet50(name="r", weights="imagenet").checkpoint_path().name == IMAGENET_FILE


def test_coco_weights_load_from_the_hub_cache_with_a_new_box_predictor(hub_dir):
    # A detector shaped like torchvision's COCO checkpoint (91 outputs, frozen batch norm).
    coco = FasterRCNN(
        resnet_fpn_backbone(backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d),
        num_classes=91,
    )
    torch.save(coco.state_dict(), hub_dir / COCO_FILE)
    model = FasterRCNNResNet50(name="r50", weights="coco", **SMALL_SIZES)
    model.check_available()
    assert model.identity()["checkpoint"][0] == COCO_FILE
    module = model.build(num_classes=20)
    assert torch.equal(module.backbone.body.conv1.weight, coco.backbone.body.conv1.weight)
    assert torch.equal(
        module.rpn.head.conv[0][0].weight, coco.rpn.head.conv[0][0].weight
    )  # RPN and box head come from COCO too
    assert module.roi_heads.box_predictor.cls_score.out_features == 21
    assert isinstance(module.backbone.body.bn1, FrozenBatchNorm2d)
    # The lowest stages stay frozen (trainable_backbone_layers=3: layer2-4 train).
    assert not module.backbone.body.conv1.weight.requires_grad
    assert module.backbone.body.layer4[0].conv1.weight.requires_grad
    run_forward_and_backward(module, 64)
    # Evaluation rebuilds the same architecture without reading the file.
    (hub_dir / COCO_FILE).unlink()
    rebuilt = model.build(num_classes=20, load_pretrained=False)
    rebuilt.load_state_dict(module.state_dict())


def test_imagenet_weights_load_into_the_resnet_only(hub_dir):
    backbone = resnet50()
    torch.save(backbone.state_dict(), hub_dir / IMAGENET_FILE)
    module = FasterRCNNResNet50(name="r50", weights="imagenet", **SMALL_SIZES).build(20)
    assert torch.equal(module.backbone.body.layer3[1].conv2.weight, backbone.layer3[1].conv2.weight)
    assert module.roi_heads.box_predictor.cls_score.out_features == 21


def test_missing_weights_say_which_file_and_where(hub_dir):
    model = FasterRCNNResNet50(name="r50", weights="coco")
    with pytest.raises(ModelUnavailableError) as raised:
        model.check_available()
    message = str(raised.value)
    assert COCO_FILE in message and str(hub_dir) in message
    assert "fasterrcnn_resnet50_fpn(weights='COCO_V1')" in message
    assert "model.weights=random" in message
    with pytest.raises(ModelUnavailableError, match=IMAGENET_FILE):
        FasterRCNNResNet50(name="r50", weights="imagenet").build(20)


def test_a_foreign_weight_file_is_refused(hub_dir):
    torch.save({"conv1.weight": torch.zeros(1)}, hub_dir / COCO_FILE)
    with pytest.raises(ModelUnavailableError, match="is not torchvision's coco checkpoint"):
        FasterRCNNResNet50(name="r50", weights="coco", **SMALL_SIZES).build(20)


@pytest.mark.parametrize(
    ("model", "arguments", "option"),
    [
        (FasterRCNNResNet50, {"weights": "openimages"}, "model.weights"),
        (FasterRCNNResNet50, {"trainable_backbone_layers": 6}, "model.trainable_backbone_layers"),
        (FasterRCNNResNet50, {"train_sizes": [8]}, "model.train_sizes"),
        (FasterRCNNResNet50, {"max_size": 500}, "model.max_size"),
        (TinyFasterRCNN, {"widths": [8, 16]}, "model.widths"),
        (TinyFasterRCNN, {"anchor_sizes": [[16], [32, 48]]}, "model.anchor_sizes"),
        (MmdetFasterRCNN, {"scale": [1333]}, "model.scale"),
    ],
)
def test_bad_model_options_name_the_option(model, arguments, option):
    with pytest.raises(OptionError) as raised:
        model(name="m", **arguments)
    assert raised.value.option == option


def test_identity_leaves_out_the_name_and_holds_every_result_field():
    one = TinyFasterRCNN(name="a").identity()
    assert one == TinyFasterRCNN(name="b").identity()
    assert one != TinyFasterRCNN(name="a", train_sizes=[96, 128]).identity()


def test_mmdet_backend_without_mmdet_says_to_run_make_mmdet(monkeypatch):
    """Tested where mmdet is installed too: its absence is what mmdet_available says."""
    monkeypatch.setattr(faster_rcnn_mmdet, "mmdet_available", lambda: False)
    model = instantiate(compose_config("model=faster_rcnn_mmdet").model, _convert_="all")
    with pytest.raises(ModelUnavailableError, match="make mmdet"):
        model.check_available()


@pytest.mark.skipif(
    not mmdet_available(), reason="mmdet is not importable (opt-in: `make mmdet` builds it)"
)
def test_mmdet_backend_trains_and_detects_with_a_head_for_the_task():
    model = MmdetFasterRCNN(name="mmdet", weights="random", scale=(96, 64))
    model.check_available()
    module = model.build(num_classes=20)
    assert module.detector.roi_head.bbox_head.num_classes == 20
    images = [torch.rand(3, 64, 64), torch.rand(3, 48, 64)]
    module.train()
    losses = module(images, targets_for(2))
    assert all(name.startswith("loss") for name in losses)
    sum(losses.values()).backward()
    module.eval()
    with torch.no_grad():
        detections = module(images)
    assert len(detections) == 2 and set(detections[0]) == {"boxes", "labels", "scores"}
    assert (detections[0]["labels"] >= 1).all()


@pytest.mark.skipif(
    not mmdet_available(), reason="mmdet is not importable (opt-in: `make mmdet` builds it)"
)
def test_mmdet_backend_starts_from_torchvisions_resnet50_in_the_hub_cache(hub_dir):
    backbone = resnet50()
    torch.save(backbone.state_dict(), hub_dir / IMAGENET_FILE)
    model = MmdetFasterRCNN(name="mmdet", weights="imagenet", scale=(96, 64))
    model.check_available()
    module = model.build(num_classes=3)
    assert torch.equal(module.detector.backbone.conv1.weight, backbone.conv1.weight)
    assert model.identity()["checkpoint"] == [
        IMAGENET_FILE,
        (hub_dir / IMAGENET_FILE).stat().st_size,
    ]
