"""DCTNet's dynamic gate: its own learning rate, a training that closes gates and keeps the
channel that carries the label, and the report's gate.csv and selection maps."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from matplotlib.colors import Normalize
from transformers import get_cosine_schedule_with_warmup

from sweep.errors import OptionError
from sweep.models.dctnet import DctNet
from sweep.models.dctnet_figures import verdict_cells, write_gate_maps, write_gate_report
from sweep.sensitivity.figures import draw_map_grid

TINY = {"image_size": 24, "width": 0.125, "depths": (1, 1, 1, 1), "crop_pct": 1.0}


def gated(**options) -> DctNet:
    return DctNet("gated", selection="dynamic", channels=192, **TINY, **options)


def test_the_gate_learns_at_its_own_rate_without_weight_decay():
    model = gated(gate_lr_multiplier=20.0)
    module = model.build(num_classes=3)
    network, gate = model.parameter_groups(module, lr=1e-3, weight_decay=0.05)
    assert (network["lr"], network["weight_decay"]) == (1e-3, 0.05)
    assert gate["lr"] == pytest.approx(2e-2) and gate["weight_decay"] == 0.0
    grouped = [id(p) for group in (network, gate) for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in module.parameters())  # each once
    assert {id(p) for p in gate["params"]} == {id(p) for p in module.gate.parameters()}
    # A static selection has no gate: one group, and the gate's options are in no key.
    static = DctNet("static", channels=24, **TINY)
    assert len(static.parameter_groups(static.build(3), 1e-3, 0.05)) == 1
    assert "gate_lr_multiplier" not in static.identity()
    assert gated(gate_lr_multiplier=2.0).identity() != gated(gate_lr_multiplier=3.0).identity()


def test_a_gate_rate_of_zero_is_refused():
    with pytest.raises(OptionError, match="gate_lr_multiplier") as refused:
        gated(gate_lr_multiplier=0.0)
    assert refused.value.option == "model.gate_lr_multiplier"


def informative_batches(steps: int, batch: int = 8, seed: int = 0):
    """(B, 192, 6, 6) noise whose channel 0 (Y's DC) alone carries the label: its sign."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        frequencies = torch.randn(batch, 192, 6, 6, generator=generator)
        labels = torch.randint(0, 2, (batch,), generator=generator)
        frequencies[:, 0] += (labels.float() * 2 - 1)[:, None, None] * 2.0
        yield frequencies, labels


def opened_after_training(gate_lr_multiplier: float, steps: int = 60) -> list[float]:
    """Per channel, the share of held-out images whose gate is open after a short training
    (AdamW, warm-up and cosine decay, as the classification task trains)."""
    torch.manual_seed(0)
    model = gated(gate_loss_weight=0.05, gate_lr_multiplier=gate_lr_multiplier)
    module = model.build(num_classes=2).train()
    optimizer = torch.optim.AdamW(model.parameter_groups(module, lr=3e-3, weight_decay=0.05))
    schedule = get_cosine_schedule_with_warmup(optimizer, steps // 10, steps)
    for frequencies, labels in informative_batches(steps):
        loss = torch.nn.functional.cross_entropy(module(frequencies), labels)
        (loss + module.auxiliary_loss).backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
    module.eval()
    with torch.no_grad():
        for frequencies, _ in informative_batches(4, seed=1):
            module(frequencies)
    return module.gate_statistics()["gate_open"]


@pytest.mark.slow  # two trainings of 60 steps: ~5 s alone, a minute on a busy machine
def test_training_closes_gates_and_keeps_the_channel_that_matters():
    opened = opened_after_training(gate_lr_multiplier=30.0)
    assert sum(opened) < 64  # most of the 191 noise channels shut
    assert opened[0] == 1.0  # the label's channel open for every image
    # At the network's own rate the logits never cross within the steps: every gate open.
    assert sum(opened_after_training(gate_lr_multiplier=1.0)) > 180


def metrics_of(opened: list[float], accuracy: float) -> dict:
    return {
        "gate_open": opened,
        "gate_probability": [v * 0.9 for v in opened],
        "accuracy": accuracy,
    }


def test_gate_csv_gives_the_channels_each_model_keeps(tmp_path):
    low = [1.0] * 10 + [0.0] * 54  # per component: the first 10 channels of 8 i + j
    y_only = [*low, *[0.0] * 64, *[0.0] * 64]
    everything = [1.0] * 192
    cells = {
        ("original", "original"): metrics_of(everything, 0.5),
        ("original", "4"): metrics_of(y_only, 0.2),
        ("4", "original"): metrics_of(everything, 0.3),
        ("4", "4"): metrics_of(y_only, 0.4),
        ("0.5", "original"): metrics_of(y_only, 0.45),  # a train setting tested only elsewhere
        ("0.5", "4"): metrics_of(everything, 0.1),
    }
    paths = write_gate_report(cells, tmp_path)
    with paths["gate.csv"].open() as stream:
        rows = {row["train_setting"]: row for row in csv.DictReader(stream)}
    assert {s: rows[s]["test_setting"] for s in rows} == {
        "original": "original", "4": "4", "0.5": "original",
    }  # fmt: skip
    assert float(rows["original"]["open_channels"]) == 192
    four = rows["4"]
    assert (float(four["open_channels"]), float(four["open_y"]), float(four["open_cb"])) == (
        10, 10, 0,
    )  # fmt: skip
    assert float(four["accuracy"]) == pytest.approx(0.4)
    assert float(four["selection_y"]) == pytest.approx(0.9 * 10 / 64)
    # i + j <= 3 (10 frequencies a component, 30 in all) holds 0-3 and 8, 9 of the open 0-9.
    assert float(four["selection_low"]) == pytest.approx(0.9 * 6 / 30)
    assert float(four["selection_high"]) == 0.0
    assert (tmp_path / "gate_frequencies.png").is_file()
    children = write_gate_maps(verdict_cells(cells), tmp_path)
    assert sorted(children) == ["0.5", "4", "original"]
    assert children["4"][0] == tmp_path / "gate" / "train=4.png" and children["4"][0].is_file()


def test_a_map_on_the_callers_linear_scale_says_no_fallback():
    maps = [np.full((3, 8, 8), 0.5)]
    title = draw_map_grid(maps, None, "gate", "selection frequency", Normalize(0, 1))._suptitle
    assert "no positive finite value" not in title.get_text()
    # Without a scale of the caller's, an all-zero map falls back to linear and says so.
    fallback = draw_map_grid([np.zeros((3, 8, 8))], None, "zeros", "unit")._suptitle
    assert "linear scale: no positive finite value" in fallback.get_text()
