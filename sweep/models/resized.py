"""Any RGB classification family with a resizer in front of its backbone (`model.resizer`).

`model.resizer=none|bilinear|learnable` and `model.resizer_options` (input_size, filters,
blocks, interpolation) exist in every RGB classifier's yaml; the config check wraps the
family it instantiates in `ResizedFamily` unless the resizer is none. The loader then gives
images at `input_size` (the family's resize and crop, at that size), the resizer turns them
into the backbone's `image_size`, and the backbone is the family's own module, built first
from the same seed. `bilinear` is the skip path alone (a fixed resize from the same input
pixels), the fair baseline of `learnable` (sweep/models/resizer.py).

Imports no torch: the config check builds it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.errors import OptionError, require_choice
from sweep.models.base import FamilyFigures, ModelFamily, TrainedModels

if TYPE_CHECKING:
    from torch import nn

    from sweep.inputs.base import InputRepresentation

RESIZERS = ("none", "bilinear", "learnable")
INTERPOLATIONS = ("bilinear", "bicubic")


@dataclass(frozen=True)
class ResizerOptions:
    """The resizer's options (`model.resizer_options`).

    Args:
        input_size: Side of the images the resizer reads; None: twice the backbone's
            image_size (the reference reads 300 px for a 150 px backbone).
        filters: Channels of the learnable resizer's features (16 in the paper).
        blocks: Its residual blocks (r; 1 in the reference tutorial).
        interpolation: The fixed resize of the skip path and the bottleneck.
    """

    input_size: int | None = None
    filters: int = 16
    blocks: int = 1
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        for name in ("input_size", "filters", "blocks"):
            value = getattr(self, name)
            if not (value is None and name == "input_size") and (
                isinstance(value, bool) or not isinstance(value, int)
            ):
                raise OptionError(
                    f"must be an integer, got {value!r}", option=f"model.resizer_options.{name}"
                )
        if self.input_size is not None and self.input_size < 8:
            raise OptionError(
                "input_size must be at least 8 pixels, or null (twice the backbone's size)",
                option="model.resizer_options.input_size",
            )
        if self.filters < 1 or self.blocks < 0:
            raise OptionError(
                "filters must be at least 1 and blocks at least 0",
                option="model.resizer_options.filters",
            )
        require_choice(self.interpolation, INTERPOLATIONS, "model.resizer_options.interpolation")


@dataclass
class ResizedFamily(ModelFamily):
    """`backbone` behind a `kind` resizer ("bilinear" or "learnable").

    Named `<backbone>_<kind>_resizer`, so that a sweep with and without the resizer are two
    models on one comparison chart.
    """

    backbone: ModelFamily
    kind: str
    options: ResizerOptions = field(default_factory=ResizerOptions)
    name: str = ""
    task_kind: str = "classification"

    def __post_init__(self) -> None:
        require_choice(self.kind, RESIZERS[1:], "model.resizer")
        overridden = type(self.backbone).input_representation
        if self.backbone.task_kind != "classification" or (
            overridden is not ModelFamily.input_representation
        ):
            raise OptionError(
                f"model.resizer works in front of classifiers that read RGB pixels, and "
                f"{self.backbone.name} does not: set model.resizer=none",
                option="model.resizer",
            )
        self.name = f"{self.backbone.name}_{self.kind}_resizer"
        self.task_kind = self.backbone.task_kind

    # The family's fields the loader and evaluation read.
    @property
    def image_size(self) -> int:
        return self.backbone.image_size

    @property
    def input_size(self) -> int:
        return self.options.input_size or 2 * self.backbone.image_size

    @property
    def mean(self):
        return self.backbone.mean

    @property
    def std(self):
        return self.backbone.std

    def identity(self) -> dict:
        """The backbone's identity and the resizer's options (input size resolved)."""
        resizer = asdict(self.options) | {"kind": self.kind, "input_size": self.input_size}
        if self.kind == "bilinear":  # no learned layers: their shape changes nothing
            del resizer["filters"], resizer["blocks"]
        return self.backbone.identity() | {"resizer": resizer}

    def eval_identity(self) -> dict:
        return self.backbone.eval_identity()

    def input_representation(self) -> InputRepresentation:
        """The backbone's RGB input at `input_size`: its filter and crop, its normalisation."""
        from sweep.inputs.rgb import RgbPixels  # torch only where a module is fed

        backbone = RgbPixels.of(self.backbone)
        return RgbPixels(
            self.input_size, backbone.mean, backbone.std, backbone.interpolation, backbone.crop_pct
        )

    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        """The backbone first (the same seed gives it the same weights as without a resizer),
        then the resizer."""
        # torch only where a module is built (the config check imports this module).
        from sweep.models.resizer import FixedResizer, LearnableResizer, Resized

        backbone = self.backbone.build(num_classes, load_pretrained)
        size, interpolation = self.image_size, self.options.interpolation
        if self.kind == "learnable":
            resizer = LearnableResizer(
                size, self.options.filters, self.options.blocks, interpolation
            )
        else:
            resizer = FixedResizer(size, interpolation)
        return Resized(resizer, backbone)

    def check_available(self) -> None:
        self.backbone.check_available()

    def parameter_groups(self, module, lr: float, weight_decay: float) -> list[dict]:
        """The backbone's recipe for its parameters, one group for the resizer's."""
        groups = self.backbone.parameter_groups(module.backbone, lr, weight_decay)
        resizer = [p for p in module.resizer.parameters() if p.requires_grad]
        return groups + (
            [{"params": resizer, "lr": lr, "weight_decay": weight_decay}] if resizer else []
        )

    def as_loaded(self, class_names: list[str]) -> ModelFamily:
        if self.kind == "learnable":
            raise OptionError(
                "train=none evaluates the model as loaded, and a learnable resizer as built is "
                "untrained: use model.resizer=bilinear (a fixed resize) or a train recipe",
                option="model.resizer",
            )
        return ResizedFamily(self.backbone.as_loaded(class_names), self.kind, self.options)

    def report_figures(self, trained: TrainedModels, out: Path) -> FamilyFigures:
        """The backbone's figures, and a learnable resizer's samples per trained model."""
        figures = self.backbone.report_figures(trained, out)
        if self.kind == "learnable":
            # torch and matplotlib load only where the figures are drawn.
            from sweep.models.resizer_figures import write_resizer_figures

            figures.children |= write_resizer_figures(self, trained, out)
        return figures


def with_resizer(family: ModelFamily, kind: str, options: dict) -> ModelFamily:
    """The family behind the resizer `kind` (itself for "none")."""
    require_choice(kind, RESIZERS, "model.resizer")
    known = {name for name in ResizerOptions.__dataclass_fields__}
    unknown = sorted(set(options) - known)
    if unknown:
        raise OptionError(
            f"unknown option; known: {sorted(known)}",
            option=f"model.resizer_options.{unknown[0]}",
        )
    resizer_options = ResizerOptions(**options)
    if kind == "none" or not isinstance(family, ModelFamily):  # the contract check names it
        return family
    return ResizedFamily(family, kind, resizer_options)
