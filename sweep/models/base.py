"""The contract of a model family: what one file under sweep/models/ provides.

A model family is a small, picklable description of a network (a dataclass instantiated from
`conf/model/<name>.yaml` with explicit keyword arguments). It never sees the config object and
never trains itself: the task kind builds its module, feeds it and optimises it (see
`sweep/tasks/base.py`). Ray ships the family to every worker, so building the module happens
in the worker, not in `__init__`.

To add a family: write `sweep/models/<family>.py` with a dataclass that subclasses
`ModelFamily` and declares `name: str` and `task_kind: str = "<kind>"` as its own first fields
(the annotations below document them; a dataclass only makes fields of its own), and
`conf/model/<name>.yaml` (`_target_`, `name`, `task_kind`, its arguments, and a `*_tiny.yaml`
sibling with random weights that the tests build on the CPU). Raise
`sweep.errors.OptionError(message, option="model.<arg>")` from `__post_init__` for a bad
argument, and `sweep.models.errors.ModelUnavailableError` for weights that cannot be read here.
Fields that only change inference (a test-time resize, detections kept per image) go in
`eval_fields`: they enter the evaluation keys, not the training keys. A family with a
pretrained classifier of its own may implement `as_loaded` for train=none (epochs 0), and
a family with figures of its own (DCTNet's gate, a learnable resizer) `report_figures`: the
report calls it and knows no family.

What the module's forward takes and returns depends on the task kind it serves:

* classification: its input representation's batch (`input_representation`; by default
  (B, 3, image_size, image_size) float pixels normalised with `mean` and `std`) -> (B,
  num_classes) logits. A module with a training objective of its own sets `auxiliary_loss`
  (a scalar tensor) in each training forward pass; the task adds it to the cross-entropy.
  The family has `image_size` (for the default, also `mean` and `std`), and may have
  `interpolation` ("bilinear" or "bicubic": the resampling filter of every resize) and
  `crop_pct` (evaluation resizes the shorter side to int(image_size / crop_pct), then crops the
  centre image_size square). Without them a family is resized bilinearly with crop_pct 1.0.
* detection: torchvision's detection interface. In training mode a list of (3, H, W) float
  images in [0, 1] and a list of targets ({"boxes": (N, 4) xyxy pixels, "labels": (N,) in
  1..num_classes}) -> a dict of losses; in eval mode the images -> one {"boxes", "labels",
  "scores"} dict per image. Resizing and normalisation happen inside the module.
* segmentation: (B, 3, H, W) float pixels normalised with `mean` and `std` -> (B, num_classes,
  h, w) logits at any resolution (the task upsamples them to the label size). The family has
  `mean` and `std`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from sweep.data.files import LabelledFile

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # torch stays out of the imports of the config check and encode workers
    from torch import nn

    from sweep.inputs.base import InputRepresentation


@dataclass(frozen=True)
class TrainedModels:
    """What a family's report hook reads of a finished sweep (`ModelFamily.report_figures`).

    Attributes:
        weights: Train setting -> the folder of its (first seed's) training, as
            `sweep.models.trained.load_trained` reads it.
        cells: (train setting, test setting) -> the cell's metrics (metrics.json).
        test_settings: The sweep's test settings, in grid order.
        test_files: Test setting -> its encoded test files.
        num_classes: The classes the models were trained on.
    """

    weights: dict[str, Path]
    cells: dict[tuple[str, str], dict]
    test_settings: list[str]
    test_files: Callable[[str], list[LabelledFile]]
    num_classes: int


@dataclass
class FamilyFigures:
    """A family's own report files: for the sweep's parent run (by name) and for each trained
    model's child run (by train setting)."""

    parent: dict[str, Path] = field(default_factory=dict)
    children: dict[str, list[Path]] = field(default_factory=dict)


class ModelFamily(ABC):
    """A network the sweep trains once per train setting.

    Attributes:
        name: Display name in results, folders and MLflow (not part of any key).
        task_kind: The task kind it serves: "classification", "detection" or "segmentation"
            (`TaskKind.kind`); the config check refuses a family of another kind.
    """

    name: str
    task_kind: str
    # Fields that change names only, never weights or metrics.
    display_fields: ClassVar[tuple[str, ...]] = ("name",)
    # Fields that change only how a trained module infers: part of the evaluation keys.
    eval_fields: ClassVar[tuple[str, ...]] = ()

    def identity(self) -> dict:
        """What determines the trained weights (JSON data, part of every training key).

        The default is every dataclass field but the display and evaluation fields. A family
        that reads a weight file adds what identifies the file (its name and size, or its
        time), so that a replaced file gets new training keys.
        """
        if not is_dataclass(self):
            raise TypeError(f"{type(self).__name__} is no dataclass: override identity()")
        left_out = {*self.display_fields, *self.eval_fields}
        return {k: v for k, v in asdict(self).items() if k not in left_out}

    def eval_identity(self) -> dict:
        """What changes only the evaluation of trained weights (part of the evaluation keys)."""
        return {name: getattr(self, name) for name in self.eval_fields}

    @abstractmethod
    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        """A new module for `num_classes` classes, on the CPU, in training mode.

        Args:
            num_classes: Classes of the task (detection adds the background itself).
            load_pretrained: False builds the same architecture without reading pretrained
                weights: the evaluation loads trained weights right after.
        """

    def input_representation(self) -> InputRepresentation:
        """What a classification module of this family reads (`sweep/inputs/`).

        The default is RGB pixels from `image_size`, `mean`, `std` and the optional
        `interpolation` and `crop_pct`; a family that reads DCT coefficients returns its own.
        """
        from sweep.inputs.rgb import RgbPixels  # torch only where a module is fed

        return RgbPixels.of(self)

    def check_available(self) -> None:
        """Raises ModelUnavailableError, saying how to provide them, when pretrained weights
        cannot be read here. Runs before any work; the default has nothing to check."""
        return None

    def parameter_groups(self, module: nn.Module, lr: float, weight_decay: float) -> list[dict]:
        """The optimiser's parameter groups, each with its "params", "lr" and "weight_decay".

        The default is one group of every trainable parameter. A family with a recipe of its
        own (a new head at a higher rate, no decay on norms) overrides it.
        """
        trainable = [parameter for parameter in module.parameters() if parameter.requires_grad]
        return [{"params": trainable, "lr": lr, "weight_decay": weight_decay}]

    def as_loaded(self, class_names: list[str]) -> ModelFamily:
        """This family keeping its pretrained classifier, its outputs mapped to the classes.

        train=none (epochs 0) evaluates the module as built, with no training; the config check
        calls this once the dataset is read. A family with a pretrained head maps it to the
        classes (timm). The default has none: the module is evaluated as built, its head
        untrained, which is a baseline at chance. That is said here, before any work, and the
        report says so again (its chance check: the grid cannot answer).

        Args:
            class_names: The dataset's classes; a label is an index into this list.

        Raises:
            OptionError: A family whose head must be loaded, and cannot be, says why.
        """
        log.warning(
            "train=none (train.epochs=0): %s (%s) has no pretrained classifier for these "
            "classes, so it is evaluated as built, its head untrained: a baseline at chance, "
            "which the report flags. For a model that knows the classes use model=timm (its "
            "ImageNet head), or train it (train.epochs > 0)",
            type(self).__name__,
            self.name,
        )
        return self

    def report_figures(self, trained: TrainedModels, out: Path) -> FamilyFigures:
        """The family's own figures and tables of a finished sweep, written under the report
        folder `out` (e.g. DCTNet's gate frequencies, a learnable resizer's samples). The
        default has none."""
        del trained, out
        return FamilyFigures()
