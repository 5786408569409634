"""Every `*_tiny` model family in conf/model/ trains one step on random input on the CPU.

The list comes from the config folder, so a new tiny model is tested without being named
here. Each is driven through the loss of the task kind it serves (`TaskKind.training_loss`),
the very code the fit loop runs, and must give every trainable parameter a gradient.
"""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from sweep.config.build import DEMO_TASKS, model_family
from sweep.models.base import ModelFamily
from sweep.tasks.base import TaskKind
from tests.conftest import CONFIG_DIR, compose_config

TINY_MODELS = sorted(path.stem for path in (CONFIG_DIR / "model").glob("*_tiny.yaml"))
CLASSES = 3
CPU = torch.device("cpu")


def random_batch(kind: str, model: ModelFamily, generator: torch.Generator):
    """Two random training samples as the task kind's loader batches them."""
    if kind == "classification":  # the family's own input (RGB pixels, DCT planes, ...)
        representation = model.input_representation()
        images = torch.randint(0, 256, (2, 3, 100, 120), dtype=torch.uint8, generator=generator)
        pixels = torch.stack([representation.evaluation_pixels(image) for image in images])
        return representation.from_pixels(pixels), torch.tensor([0, 2])
    if kind == "detection":
        images = [torch.rand(3, 64, 80, generator=generator) for _ in range(2)]
        targets = [
            {"boxes": torch.tensor([[4.0, 6.0, 40.0, 50.0]]), "labels": torch.tensor([1])},
            {"boxes": torch.tensor([[10.0, 8.0, 30.0, 60.0]]), "labels": torch.tensor([3])},
        ]
        return images, targets
    if kind == "segmentation":
        labels = torch.randint(0, CLASSES, (2, 64, 64), generator=generator)
        labels[:, :4] = 255  # ignored pixels count in no loss
        return torch.randn(2, 3, 64, 64, generator=generator), labels
    raise AssertionError(f"no random batch for task kind {kind!r}: add one here")


def test_every_task_kind_has_a_tiny_model():
    kinds = {OmegaConf.load(CONFIG_DIR / "model" / f"{n}.yaml").task_kind for n in TINY_MODELS}
    assert kinds == set(DEMO_TASKS)


@pytest.mark.parametrize("name", TINY_MODELS)
def test_tiny_model_trains_one_step_through_its_task_kinds_loss(name):
    kind = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml").task_kind
    cfg = compose_config(f"task={DEMO_TASKS[kind]}", f"model={name}")
    model = model_family(cfg.model)
    task = instantiate(cfg.task.kind, _convert_="all")
    assert isinstance(model, ModelFamily) and isinstance(task, TaskKind)
    torch.manual_seed(0)
    module = model.build(CLASSES).train()
    batch = random_batch(kind, model, torch.Generator().manual_seed(0))
    loss, images = task.training_loss(module, batch, CPU)
    assert images == 2 and loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    groups = model.parameter_groups(module, lr=1e-3, weight_decay=0.01)
    trainable = [p for group in groups for p in group["params"]]
    assert trainable and all(p.grad is not None for p in trainable)
    assert {id(p) for p in trainable} == {id(p) for p in module.parameters() if p.requires_grad}
