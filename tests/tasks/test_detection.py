"""Detection: the metric on hand-made cases with known answers, the data path, training."""

from __future__ import annotations

import pytest
import torch

from sweep.data.demo_det import DemoDetReader
from sweep.data.files import LabelledFile
from sweep.errors import OptionError
from sweep.models.faster_rcnn import TinyFasterRCNN
from sweep.models.trained import WEIGHTS_FILE
from sweep.options import TrainOptions
from sweep.tasks.detection import (
    METRIC,
    DetectionDataset,
    DetectionTask,
    compute_metrics,
    mean_average_precision,
    metric_target,
    target_tensors,
)

A, B = [10.0, 10.0, 30.0, 30.0], [50.0, 50.0, 80.0, 90.0]
ELSEWHERE = [100.0, 0.0, 120.0, 20.0]


def score(images: list[tuple[list, list]]) -> dict[str, float]:
    """Metrics of [(detections [(box, class, score)], objects [(box, class, difficult)]), ...]."""
    metric = mean_average_precision()
    for detections, objects in images:
        metric.update(
            [
                {
                    "boxes": torch.tensor([d[0] for d in detections]).reshape(-1, 4),
                    "labels": torch.tensor([d[1] for d in detections], dtype=torch.int64),
                    "scores": torch.tensor([d[2] for d in detections]),
                }
            ],
            [
                metric_target(
                    target_tensors(
                        {
                            "boxes": [o[0] for o in objects],
                            "labels": [o[1] for o in objects],
                            "difficult": [o[2] for o in objects],
                        }
                    )
                )
            ],
        )
    return compute_metrics(metric)


def test_perfect_detections_score_one():
    values = score([([(A, 0, 0.9), (B, 1, 0.8)], [(A, 0, False), (B, 1, False)])])
    assert values["map_50"] == pytest.approx(1.0)
    assert values["map"] == pytest.approx(1.0)


def test_a_class_missed_entirely_halves_the_mean():
    values = score([([(A, 0, 0.9)], [(A, 0, False), (B, 1, False)])])
    assert values["map_50"] == pytest.approx(0.5)


def test_a_box_of_the_wrong_class_is_a_miss_and_a_false_positive():
    values = score([([(A, 0, 0.9), (B, 0, 0.8)], [(A, 0, False), (B, 1, False)])])
    assert values["map_50"] == pytest.approx(0.5)


def test_a_false_positive_scored_above_a_true_positive_gives_the_101_point_ap():
    """Ranked TP, FP, TP over two objects: precision 1 up to recall 0.5, then 2/3.

    COCO's 101-point interpolation averages 51 recall points at precision 1 and 50 at 2/3:
    (51 + 50 * 2/3) / 101 = 0.83498; VOC's all-point area would be 0.8333.
    """
    values = score(
        [([(A, 0, 0.9), (ELSEWHERE, 0, 0.8), (B, 0, 0.7)], [(A, 0, False), (B, 0, False)])]
    )
    assert values["map_50"] == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-4)


def test_a_shifted_box_counts_at_iou_50_but_not_at_higher_thresholds():
    # IoU of [10,10,30,30] and [14,10,34,30] is 16*20 / (24*20) = 2/3: a hit at 0.5 to 0.65.
    values = score([([([14.0, 10.0, 34.0, 30.0], 0, 0.9)], [(A, 0, False)])])
    assert values["map_50"] == pytest.approx(1.0)
    assert values["map"] == pytest.approx(4 / 10)  # thresholds 0.50, 0.55, 0.60, 0.65 of 10


def test_a_detection_on_a_difficult_object_is_not_a_false_positive():
    # Scored first: as a false positive it would drop AP to 0.5 (101-point: 0.5 everywhere).
    values = score([([(B, 0, 0.95), (A, 0, 0.9)], [(A, 0, False), (B, 0, True)])])
    assert values["map_50"] == pytest.approx(1.0)


def test_a_missed_difficult_object_is_not_a_false_negative():
    values = score([([(A, 0, 0.9)], [(A, 0, False), (B, 0, True)])])
    assert values["map_50"] == pytest.approx(1.0)
    # The same object not marked difficult is a miss: recall stops at 0.5.
    assert score([([(A, 0, 0.9)], [(A, 0, False), (B, 0, False)])])["map_50"] == pytest.approx(
        0.5, abs=0.01
    )


def test_images_without_objects():
    # Nothing found where nothing is: no effect.
    found = score([([(A, 0, 0.9)], [(A, 0, False)]), ([], [])])
    assert found["map_50"] == pytest.approx(1.0)
    # A detection in an empty image is a false positive; ranked first, precision is 0.5 at
    # the only recall level: AP 0.5.
    found = score([([(A, 0, 0.8)], [(A, 0, False)]), ([(A, 0, 0.9)], [])])
    assert found["map_50"] == pytest.approx(0.5)


@pytest.fixture
def image_file(tmp_path):
    from PIL import Image

    Image.new("RGB", (100, 60), (10, 20, 30)).save(tmp_path / "a.png")
    target = {"boxes": [[10.0, 5.0, 40.0, 25.0], B], "labels": [0, 2], "difficult": [False, True]}
    return LabelledFile(str(tmp_path / "a.png"), target)


def test_training_items_drop_difficult_objects_and_count_the_background(image_file):
    image, target = DetectionDataset([image_file], train=True)[0]
    assert image.shape == (3, 60, 100) and image.dtype == torch.float32
    assert target["boxes"].tolist() == [[10.0, 5.0, 40.0, 25.0]]
    assert target["labels"].tolist() == [1]  # class 0 is label 1: 0 is the background


def test_evaluation_items_keep_difficult_objects(image_file):
    _, target = DetectionDataset([image_file], train=False)[0]
    assert target["labels"].tolist() == [0, 2]
    assert target["difficult"].tolist() == [False, True]


def test_horizontal_flip_mirrors_the_boxes(image_file):
    torch.manual_seed(0)
    image, target = DetectionDataset([image_file], train=True, hflip=1.0)[0]
    assert target["boxes"].tolist() == [[60.0, 5.0, 90.0, 25.0]]  # x -> 100 - x


def test_boxes_leaving_the_image_are_clipped_or_dropped(tmp_path):
    from PIL import Image

    Image.new("RGB", (50, 40)).save(tmp_path / "b.png")
    target = {"boxes": [[-5.0, 2.0, 20.0, 45.0], [60.0, 0.0, 70.0, 10.0]], "labels": [1, 1]}
    _, tensors = DetectionDataset([LabelledFile(str(tmp_path / "b.png"), target)], train=True)[0]
    assert tensors["boxes"].tolist() == [[0.0, 2.0, 20.0, 40.0]]


def test_identity_and_metric_names():
    task = DetectionTask()
    assert task.metric_names == ("map_50", "map")
    assert task.identity()["kind"] == "detection"
    assert DetectionTask(hflip=0.0).identity() != task.identity()


def test_the_coco_metric_puts_map_first_and_changes_only_the_evaluation_key():
    voc, coco = DetectionTask(metric="voc"), DetectionTask(metric="coco")
    assert coco.metric_names == ("map", "map_50")
    assert voc.metric_names == DetectionTask.metric_names == ("map_50", "map")
    assert coco.eval_identity() != voc.eval_identity()
    assert coco.train_identity() == voc.train_identity()  # no retraining for another headline
    # VOC's metric identity is the one it had before COCO's existed; the stored outcomes
    # (match tables, for the intervals) are what changed detection's evaluation keys.
    assert voc.eval_identity() == {"metric": METRIC, "outcomes": 2}


def test_coco_metric_values_on_known_cases():
    """Perfect boxes score 1 on both; a box at IoU 2/3 is a hit at 0.50-0.65 only."""
    coco = DetectionTask(metric="coco")
    perfect = score([([(A, 0, 0.9), (B, 1, 0.8)], [(A, 0, False), (B, 1, False)])])
    assert [perfect[name] for name in coco.metric_names] == pytest.approx([1.0, 1.0])
    shifted = score([([([14.0, 10.0, 34.0, 30.0], 0, 0.9)], [(A, 0, False)])])
    assert [shifted[name] for name in coco.metric_names] == pytest.approx([0.4, 1.0])
    # A detection on a crowd region (COCO's iscrowd, carried as difficult) costs nothing.
    crowd = score([([(B, 0, 0.95), (A, 0, 0.9)], [(A, 0, False), (B, 0, True)])])
    assert crowd["map"] == pytest.approx(1.0)


def test_an_unknown_metric_names_the_option():
    with pytest.raises(OptionError, match=r"'f1' is not one of \['voc', 'coco'\]") as raised:
        DetectionTask(metric="f1")
    assert raised.value.option == "task.kind.metric"


@pytest.mark.parametrize(
    ("arguments", "option"),
    [({"momentum": 1.0}, "task.kind.momentum"), ({"hflip": 2}, "task.kind.hflip"),
     ({"grad_clip": 0}, "task.kind.grad_clip"), ({"metric": "coco50"}, "task.kind.metric")],
)  # fmt: skip
def test_bad_options_name_the_option(arguments, option):
    with pytest.raises(OptionError) as raised:
        DetectionTask(**arguments)
    assert raised.value.option == option


SMALL = TinyFasterRCNN(name="t", widths=(8, 16, 32, 32), fpn_channels=32, representation_size=64)
OPTIONS = TrainOptions(epochs=2, batch_size=4, lr=0.02, weight_decay=1e-4, eval_batch_size=8)


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory):
    reader = DemoDetReader(tmp_path_factory.mktemp("demo_det"), train_images=12, test_images=6)
    reader.prepare()
    return {
        split: [LabelledFile(str(reader.root / i.relpath), i.target) for i in reader.items(split)]
        for split in ("train", "test")
    }


def test_training_is_reproducible_and_evaluation_reports_every_metric(demo_files, tmp_path):
    task = DetectionTask(grad_clip=10.0)
    weights = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        summary = task.train(
            SMALL, demo_files["train"], 3, OPTIONS, seed=0, out_dir=tmp_path / name
        )
        weights.append(torch.load(tmp_path / name / WEIGHTS_FILE, weights_only=True))
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    assert len(summary["train_loss"]) == 2 and summary["images"] == 12
    assert summary["device"] == "cpu" and summary["images_per_second"] > 0
    metrics = task.evaluate(SMALL, tmp_path / "a", demo_files["test"], 3, OPTIONS)
    assert metrics["images"] == 6
    for name in task.metric_names:
        assert 0 <= metrics[name] <= 1


def test_other_seed_gives_other_weights(demo_files, tmp_path):
    task = DetectionTask(grad_clip=10.0)
    options = TrainOptions(epochs=1, batch_size=4, lr=0.02, weight_decay=1e-4)
    for seed in (0, 1):
        (tmp_path / str(seed)).mkdir()
        task.train(SMALL, demo_files["train"], 3, options, seed=seed, out_dir=tmp_path / str(seed))
    a, b = (torch.load(tmp_path / s / WEIGHTS_FILE, weights_only=True) for s in ("0", "1"))
    key = "roi_heads.box_predictor.cls_score.weight"
    assert not torch.equal(a[key], b[key])


def test_evaluation_matches_the_metric_on_the_models_own_detections(demo_files, tmp_path):
    """The task's evaluate = MeanAveragePrecision over the model's detections, label - 1."""
    task = DetectionTask()
    module = SMALL.build(3)
    torch.save(module.state_dict(), tmp_path / WEIGHTS_FILE)
    metrics = task.evaluate(SMALL, tmp_path, demo_files["test"], 3, OPTIONS)
    module.eval()
    metric = mean_average_precision()
    with torch.no_grad():
        for image, target in DetectionDataset(demo_files["test"], train=False):
            [found] = module([image])
            found["labels"] = found["labels"] - 1
            metric.update([found], [metric_target(target)])
    expected = compute_metrics(metric)
    assert metrics["map_50"] == pytest.approx(expected["map_50"])
    assert metrics["map"] == pytest.approx(expected["map"])
