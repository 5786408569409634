"""Sample test images before and after each trained learnable resizer (the reference tutorial's
figure), one figure per train setting, for the model's child run: the report hook of a
family with a learnable resizer (`ResizedFamily.report_figures`).

Each row is one test image of the train setting's own test encode (what that model meets
when the data is stored as it was trained): the input at the resizer's input size, the fixed
resize alone (the skip path), and the trained resizer's output, both at the backbone's size.
Outputs are shown as pixels after undoing the backbone's normalisation, clipped to [0, 1]; a
resizer that learned an offset or a contrast shows it, as in the tutorial.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sweep.codecs.base import ORIGINAL
from sweep.figures import plt, save_figure
from sweep.models.base import TrainedModels
from sweep.models.resizer import resized
from sweep.models.trained import load_trained

SAMPLES = 4


def pixels_of(normalised, mean, std):
    """(3, H, W) normalised -> (H, W, 3) in [0, 1] for imshow."""
    shape = (3, 1, 1)
    image = normalised * torch.tensor(std).view(shape) + torch.tensor(mean).view(shape)
    return image.clamp(0, 1).permute(1, 2, 0)


def plot_resizer_samples(module, inputs, mean, std, title: str, path: Path) -> Path:
    """Draws inputs (B, 3, h, w), normalised, beside the fixed and the learned resize."""
    resizer = module.resizer.eval()
    with torch.no_grad():
        fixed = resized(inputs, resizer.size, resizer.interpolation)
        learned = resizer(inputs)
    columns = (
        (f"input ({inputs.shape[-1]} px)", inputs),
        (f"{resizer.interpolation} resize ({resizer.size} px)", fixed),
        (f"learned resizer ({resizer.size} px)", learned),
    )
    fig, axes = plt.subplots(
        len(inputs), len(columns), figsize=(3.0 * len(columns), 3.0 * len(inputs)),
        layout="constrained", squeeze=False,
    )  # fmt: skip
    for row in range(len(inputs)):
        for column, (label, images) in enumerate(columns):
            ax = axes[row, column]
            ax.imshow(pixels_of(images[row], mean, std))
            ax.set_axis_off()
            if row == 0:
                ax.set_title(label)
    fig.suptitle(title)
    return save_figure(fig, path)


def write_resizer_figures(model, trained: TrainedModels, out: Path) -> dict[str, list[Path]]:
    """resizer/train=<setting>.png for every trained model of a family with a learnable
    resizer (`sweep.models.resized.ResizedFamily`), by train setting."""
    representation = model.input_representation()
    figures = {}
    for setting, weights in trained.weights.items():
        shown = setting if setting in trained.test_settings else ORIGINAL
        files = trained.test_files(shown)[:SAMPLES]
        dataset = representation.evaluation_dataset(files)
        inputs = torch.stack([dataset[index][0] for index in range(len(dataset))])
        module = load_trained(model, weights, trained.num_classes, torch.device("cpu"))
        title = f"{model.name}, train={setting}: test images at {shown} through the resizer"
        path = out / "resizer" / f"train={setting}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        figures[setting] = [
            plot_resizer_samples(module, inputs, model.mean, model.std, title, path)
        ]
    return figures
