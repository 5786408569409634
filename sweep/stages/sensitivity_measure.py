"""One trained classifier's sensitivity maps: load it, read its input images, run a method
(sweep/sensitivity/methods.py). The sensitivity stage's worker imports it, with torch."""

from __future__ import annotations

from pathlib import Path

import torch

from sweep.data.files import LabelledFile
from sweep.inputs.files import ImageFileDataset
from sweep.models.base import ModelFamily
from sweep.models.trained import load_trained
from sweep.sensitivity.methods import Classifier, Measured, finite_maps, gradient_maps
from sweep.sensitivity.options import SensitivityOptions
from sweep.tasks.runtime import pick_device


def model_inputs(model: ModelFamily, files: list[LabelledFile]) -> torch.Tensor:
    """(n, 3, S, S) float RGB in [0, 1]: the images as the evaluation resizes and crops them,
    before the family's representation makes its input from them."""
    dataset = ImageFileDataset(files, model.input_representation().evaluation_pixels)
    return torch.stack([dataset[index][0] for index in range(len(dataset))])


def classifier_of(model: ModelFamily, module: torch.nn.Module) -> Classifier:
    """The trained module fed the way its family's representation feeds it."""
    return Classifier(module, model.input_representation().from_pixels)


def measure_model(
    model: ModelFamily,
    weights_dir: Path,
    files: list[LabelledFile],
    num_classes: int,
    method: str,
    options: SensitivityOptions,
    seed: int,
    batch_size: int,
) -> Measured:
    """The per-image maps of the weights a training wrote to weights_dir (full precision,
    the evaluation's device)."""
    device = pick_device()
    module = load_trained(model, weights_dir, num_classes, device).requires_grad_(False)
    classifier = classifier_of(model, module)
    images = model_inputs(model, files)
    if method == "finite":
        return finite_maps(
            classifier,
            images,
            options.statistic,
            options.epsilon,
            options.chroma_subsampling,
            blocks=options.sampled_blocks,
            seed=seed,
            batch_size=batch_size,
        )
    return gradient_maps(
        classifier, images, options.statistic, options.chroma_subsampling, batch_size=batch_size
    )
