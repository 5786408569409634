"""Segmentation: mIoU and mAcc on hand-made cases, inference modes, augmentation, training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.classification import MulticlassAccuracy

from sweep.data.files import LabelledFile
from sweep.errors import OptionError
from sweep.models.segformer import SegformerSegmenter
from sweep.models.trained import WEIGHTS_FILE
from sweep.options import TrainOptions
from sweep.tasks.segmentation import (
    SegmentationMetrics,
    SegmentationTask,
    resample_segmentation,
)
from sweep.tasks.segmentation_samples import TrainSample, load_labelled_image
from sweep.tasks.sliding_window import sliding_logits, window_starts

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """As in a Ray worker; on a busy machine threads that wait on each other are much slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def scores(predictions, labels, num_classes: int) -> dict:
    metrics = SegmentationMetrics(num_classes, CPU)
    for p, t in zip(predictions, labels, strict=True):
        metrics.update(torch.as_tensor(p), torch.as_tensor(t))
    return metrics.compute()


def test_perfect_prediction_scores_one():
    labels = [[[0, 1], [2, 2]]]
    result = scores(labels, labels, 3)
    assert result["miou"] == pytest.approx(1.0) and result["macc"] == pytest.approx(1.0)


def test_known_answer_with_ignored_pixels_and_an_absent_class():
    # Ignored pixels (255) count nowhere, whatever is predicted there (here class 3).
    labels = [0, 0, 0, 1, 1, 255, 255, 1]
    predictions = [0, 0, 1, 1, 2, 0, 3, 1]
    result = scores([predictions], [labels], 4)
    # Class 0: 2 hits, 1 miss -> IoU 2/3, acc 2/3. Class 1: 2 hits, 1 miss, 1 false alarm ->
    # IoU 2/4, acc 2/3. Class 2: only predicted -> IoU 0, no accuracy (not in the ground truth).
    # Class 3: in neither (its prediction is on an ignored pixel) -> left out of both means.
    assert result["miou"] == pytest.approx((2 / 3 + 2 / 4 + 0) / 3)
    assert result["macc"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert result["class_iou"] == pytest.approx([2 / 3, 0.5, 0.0, None])
    assert result["class_accuracy"][2:] == [None, None]
    assert result["labelled_pixels"] == 6


def test_macc_leaves_out_classes_absent_from_the_ground_truth_unlike_torchmetrics_macro():
    """torchmetrics' macro accuracy counts a class that is only predicted as 0; mmseg and the
    Cityscapes scripts leave it out, as SegmentationMetrics does."""
    labels, predictions = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 2, 1, 1])
    macro = MulticlassAccuracy(num_classes=3, average="macro", ignore_index=255)
    assert macro(predictions, labels).item() == pytest.approx((0.5 + 1 + 0) / 3)
    assert scores([predictions], [labels], 3)["macc"] == pytest.approx((0.5 + 1) / 2)


def test_metrics_are_accumulated_over_the_split_not_averaged_per_image():
    # Image 1: 8 pixels of class 0, all right. Image 2: 2 pixels of class 1, predicted 0.
    first = ([0] * 8, [0] * 8)
    second = ([0, 0], [1, 1])
    result = scores([first[0], second[0]], [first[1], second[1]], 2)
    # One confusion matrix: class 0 IoU 8/10, class 1 IoU 0; class 0 acc 1, class 1 acc 0.
    assert result["miou"] == pytest.approx(0.4)
    assert result["macc"] == pytest.approx(0.5)


def test_resampling_per_image_confusions_reproduces_the_split_metrics():
    """Drawing every image once gives the split's mIoU and mAcc exactly; drawing one image
    twice weighs its pixels twice, as a split holding it twice would."""
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 4, (6, 5)) for _ in range(5)]
    labels[1][0, :] = 255
    predictions = [np.where(rng.random(t.shape) < 0.6, t, rng.integers(0, 4, t.shape)) % 255
                   for t in labels]  # fmt: skip
    metrics = SegmentationMetrics(4, CPU)
    for p, t in zip(predictions, labels, strict=True):
        metrics.update(torch.as_tensor(p), torch.as_tensor(t))
    outcomes = {"confusion": metrics.image_confusions()}
    assert outcomes["confusion"].shape == (5, 4, 4)
    counts = np.array([[1, 1, 1, 1, 1], [2, 0, 1, 1, 1]])
    drawn = resample_segmentation(outcomes, counts)
    split = metrics.compute()
    assert drawn["miou"][0] == pytest.approx(split["miou"])
    assert drawn["macc"][0] == pytest.approx(split["macc"])
    twice = scores([predictions[0], *predictions[:1], *predictions[2:]],
                   [labels[0], *labels[:1], *labels[2:]], 4)  # fmt: skip
    assert drawn["miou"][1] == pytest.approx(twice["miou"])
    assert drawn["macc"][1] == pytest.approx(twice["macc"])


def test_only_ignored_pixels_give_no_score():
    result = scores([[0, 1]], [[255, 255]], 2)
    assert np.isnan(result["miou"]) and np.isnan(result["macc"])


@pytest.mark.parametrize(
    ("length", "window", "stride", "starts"),
    [(10, 4, 3, [0, 3, 6]), (11, 4, 3, [0, 3, 6, 7]), (4, 4, 2, [0]), (3, 3, 2, [0])],
)
def test_windows_cover_the_axis_and_end_at_the_border(length, window, stride, starts):
    assert window_starts(length, window, stride) == starts


class PerPixel(torch.nn.Module):
    """A per-pixel model (1x1 convolution): its logits do not depend on the window."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, num_classes, 1)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.conv(pixels)


def test_sliding_windows_average_to_the_whole_image_logits_of_a_per_pixel_model():
    module, image = PerPixel(4), torch.randn(1, 3, 37, 50)
    whole = module(image)
    for window, stride, batch in (
        ((16, 16), (8, 8), 3),
        ((20, 24), (7, 11), 1),
        ((64, 64), (8, 8), 2),
    ):
        slid = sliding_logits(module, image, 4, window, stride, batch)
        assert slid.shape == whole.shape
        torch.testing.assert_close(slid, whole, rtol=1e-5, atol=1e-5)


def test_training_samples_are_cropped_padded_and_keep_labels_exact():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 20, 30), dtype=torch.uint8)
    mask = torch.tensor([0, 3, 7, 255])[torch.randint(0, 4, (20, 30))]
    sample = TrainSample((24, 24), (0.5, 2.0), None, True, (0.5,) * 3, (0.25,) * 3)
    for _ in range(20):
        pixels, labels = sample(image, mask)
        assert pixels.shape == (3, 24, 24) and pixels.dtype == torch.float32
        assert labels.shape == (24, 24)
        # Nearest-neighbour only: no in-between label ever appears.
        assert set(labels.unique().tolist()) <= {0, 3, 7, 255}
    # Without rescaling, a crop larger than the image pads with ignored labels and mean pixels.
    pixels, labels = TrainSample((24, 40), (1.0, 1.0), None, False, (0.5,) * 3, (0.25,) * 3)(
        image, torch.zeros(20, 30, dtype=torch.long)
    )
    assert (labels == 255).sum() == 24 * 40 - 20 * 30
    assert (pixels[:, labels == 255] == 0).all()


def test_flip_moves_pixels_and_labels_together():
    image = torch.arange(2 * 3, dtype=torch.uint8).view(1, 2, 3).repeat(3, 1, 1)
    mask = torch.arange(2 * 3).view(2, 3)
    sample = TrainSample((2, 3), (1.0, 1.0), None, True, (0.0,) * 3, (1 / 255,) * 3)
    seen = set()
    for seed in range(8):
        torch.manual_seed(seed)
        pixels, labels = sample(image, mask)
        assert torch.equal(pixels[0].round().long(), labels)
        seen.add(labels[0, 0].item())
    assert seen == {0, 2}  # both flipped and unflipped


def write_pair(tmp_path: Path, pixels: np.ndarray, mask: np.ndarray, name: str) -> LabelledFile:
    Image.fromarray(pixels).save(tmp_path / f"{name}.png")
    Image.fromarray(mask).save(tmp_path / f"{name}_mask.png")
    return LabelledFile(
        str(tmp_path / f"{name}.png"), {"label_ids": [1, 2]}, str(tmp_path / f"{name}_mask.png")
    )


def test_loading_maps_label_ids_and_checks_the_size(tmp_path):
    file = write_pair(
        tmp_path, np.zeros((2, 3, 3), np.uint8), np.array([[1, 2, 0], [9, 2, 1]], np.uint8), "a"
    )
    image, mask = load_labelled_image(file)
    assert image.shape == (3, 2, 3) and mask.tolist() == [[0, 1, 255], [255, 1, 0]]
    bad = write_pair(tmp_path, np.zeros((4, 3, 3), np.uint8), np.zeros((2, 3), np.uint8), "b")
    with pytest.raises(ValueError, match=r"b_mask.png is 3x2 but its image .*b.png is 3x4"):
        load_labelled_image(bad)
    with pytest.raises(ValueError, match="has no label mask"):
        load_labelled_image(LabelledFile(file.path, file.target, None))


class ConstantLogits(torch.nn.Module):
    """Predicts the class of its largest bias everywhere, at 1/4 resolution like SegFormer."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(num_classes))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = pixels.shape
        shape = (batch, len(self.bias), (height + 3) // 4, (width + 3) // 4)
        return self.bias.view(1, -1, 1, 1).expand(shape) + 0 * pixels.mean()


@dataclass
class ConstantModel:
    name: str = "constant"
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.5, 0.5, 0.5)

    def build(self, num_labels: int, load_pretrained: bool = True) -> torch.nn.Module:
        return ConstantLogits(num_labels)


@pytest.mark.parametrize(
    "task",
    [
        SegmentationTask(eval_mode="whole"),
        SegmentationTask(eval_mode="slide", window=8, stride=5),
        SegmentationTask(eval_mode="whole", resize_short_side=7),
    ],
    ids=["whole", "slide", "rescaled"],
)
def test_evaluation_of_a_majority_predictor_has_the_known_scores(tmp_path, task):
    """Always class 0, on masks of 3 classes with ignored pixels, at the masks' resolution."""
    masks = [
        np.array([[1] * 10] * 6 + [[2] * 10] * 4, np.uint8),  # 60 class 0, 40 class 1
        np.array([[1] * 10] * 5 + [[0] * 10] * 5, np.uint8),  # 50 class 0, 50 ignored (id 0)
    ]
    rng = np.random.default_rng(0)
    files = [
        write_pair(tmp_path, rng.integers(0, 255, (*m.shape, 3), dtype=np.uint8), m, f"im{i}")
        for i, m in enumerate(masks)
    ]
    module = ConstantLogits(3)
    with torch.no_grad():
        module.bias.copy_(torch.tensor([2.0, 0.0, 1.0]))
    torch.save(module.state_dict(), tmp_path / WEIGHTS_FILE)
    metrics = task.evaluate(ConstantModel(), tmp_path, files, 3, TrainOptions(eval_batch_size=2))
    # Class 0: IoU 110 / 150; class 1: IoU 0; class 2: absent from both, left out.
    assert metrics["miou"] == pytest.approx((110 / 150 + 0) / 2)
    assert metrics["macc"] == pytest.approx((1 + 0) / 2)
    assert metrics["images"] == 2 and metrics["labelled_pixels"] == 150


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        ({"eval_mode": "tiles"}, "task.kind.eval_mode"),
        ({"eval_mode": "slide", "window": 8, "stride": 9}, "task.kind.stride"),
        ({"crop_size": [0, 4]}, "task.kind.crop_size"),
        ({"scale_range": [2.0, 0.5]}, "task.kind.scale_range"),
        ({"resize_short_side": 0}, "task.kind.resize_short_side"),
    ],
)
def test_wrong_arguments_name_the_option(arguments, option):
    with pytest.raises(OptionError) as error:
        SegmentationTask(**arguments)
    assert error.value.option == option


def test_identity_names_every_parameter_that_changes_results():
    whole, slide = SegmentationTask(), SegmentationTask(eval_mode="slide", window=64, stride=32)
    assert whole.identity()["kind"] == "segmentation"
    assert "window" not in whole.identity() and slide.identity()["window"] == [64, 64]
    assert SegmentationTask(crop_size=256).identity() != whole.identity()
    assert SegmentationTask.metric_names == ("miou", "macc")


TINY = SegformerSegmenter(
    name="tiny",
    architecture={
        "hidden_sizes": [8, 16, 16, 16],
        "depths": [1, 1, 1, 1],
        "num_attention_heads": [1, 1, 1, 1],
        "decoder_hidden_size": 16,
    },
)


def demo_files(tmp_path: Path, count: int = 6) -> list[LabelledFile]:
    """Images whose red channel tells the class of each pixel: left half 0, right half 1."""
    files = []
    for index in range(count):
        rng = np.random.default_rng(index)
        mask = np.ones((32, 32), np.uint8)
        mask[:, 16:] = 2
        pixels = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8)
        pixels[:, 16:, 0] += 150
        files.append(write_pair(tmp_path, pixels, mask, f"train{index}"))
    return files


def test_training_is_reproducible_and_reports_its_summary(tmp_path):
    files = demo_files(tmp_path)
    options = TrainOptions(epochs=2, batch_size=4, lr=1e-3, warmup_fraction=0.0)
    # SegFormer needs 32 pixels at least: its first stage (1/4) is reduced 8x for attention.
    task = SegmentationTask(crop_size=32, scale_range=(0.75, 1.25))
    weights = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        summary = task.train(TINY, files, 2, options, seed=0, out_dir=tmp_path / name)
        weights.append(torch.load(tmp_path / name / WEIGHTS_FILE, weights_only=True))
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert len(summary["train_loss"]) == 2 and summary["images"] == 6
    assert summary["device"] == "cpu" and summary["precision"] == "torch.float32"
    assert summary["images_per_second"] > 0
    (tmp_path / "c").mkdir()
    task.train(TINY, files, 2, options, seed=1, out_dir=tmp_path / "c")
    other = torch.load(tmp_path / "c" / WEIGHTS_FILE, weights_only=True)
    assert not all(torch.equal(weights[0][k], other[k]) for k in other)


def test_training_learns_an_easy_split(tmp_path):
    """Class by colour: a few epochs are enough to beat the majority class by far."""
    files = demo_files(tmp_path, count=8)
    options = TrainOptions(epochs=10, batch_size=2, lr=5e-3, warmup_fraction=0.0)
    task = SegmentationTask(crop_size=32, scale_range=(1.0, 1.0))
    summary = task.train(TINY, files, 2, options, seed=0, out_dir=tmp_path)
    assert summary["train_loss"][-1] < summary["train_loss"][0] / 2
    metrics = task.evaluate(TINY, tmp_path, files, 2, options)
    assert metrics["miou"] > 0.9 and metrics["macc"] > 0.9


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mixed_precision_training_and_sliding_evaluation_on_a_gpu(tmp_path):
    files = demo_files(tmp_path)
    options = TrainOptions(epochs=2, batch_size=2, lr=1e-3, amp="auto")
    task = SegmentationTask(
        crop_size=32, scale_range=(0.75, 1.25), eval_mode="slide", window=32, stride=16
    )
    summary = task.train(TINY, files, 2, options, seed=0, out_dir=tmp_path)
    assert summary["device"] == "cuda" and summary["precision"] in (
        "torch.bfloat16",
        "torch.float16",
    )
    assert all(np.isfinite(summary["train_loss"]))
    metrics = task.evaluate(TINY, tmp_path, files, 2, options)
    assert 0 <= metrics["miou"] <= 1 and metrics["images"] == len(files)
