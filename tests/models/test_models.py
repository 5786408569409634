"""Every model family: forward and backward on random input, real loading from local files."""

from __future__ import annotations

import pytest
import torch
from transformers import ViTConfig, ViTForImageClassification

from sweep.models.errors import ModelUnavailableError
from sweep.models.swav import SwavResNet, load_backbone_weights
from sweep.models.vit import VitClassifier

TINY_VIT = {
    "patch_size": 8,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def test_vit_loads_a_local_pretrained_folder_with_a_new_head(tmp_path):
    config = ViTConfig(image_size=32, num_labels=10, **TINY_VIT)
    pretrained = ViTForImageClassification(config)
    pretrained.save_pretrained(tmp_path / "vit")
    model = VitClassifier(name="vit", pretrained=str(tmp_path / "vit"), image_size=32)
    model.check_available()
    module = model.build(num_classes=3)
    assert module(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    embedding = "model.vit.embeddings.patch_embeddings.projection.weight"
    assert torch.equal(
        module.state_dict()[embedding],
        pretrained.vit.embeddings.patch_embeddings.projection.weight,
    )
    # Evaluation rebuilds the architecture without reading the pretrained weights.
    assert model.build(3, load_pretrained=False)(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_vit_not_available_offline_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    model = VitClassifier(name="vit", pretrained="google/vit-base-patch16-224-in21k")
    with pytest.raises(ModelUnavailableError, match="hf download google/vit-base"):
        model.check_available()


def test_swav_linear_probe_loads_a_hub_style_checkpoint_and_freezes_it(tmp_path):
    source = SwavResNet(name="s", weights="random", depth=10).build(4).backbone
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    state["module.projection_head.0.weight"] = torch.zeros(3)  # SwAV extras are ignored
    torch.save(state, tmp_path / "swav.pth.tar")
    model = SwavResNet(name="s", weights=str(tmp_path / "swav.pth.tar"), depth=10)
    module = model.build(num_classes=4)
    assert torch.equal(module.backbone.conv1.weight, source.conv1.weight)
    assert not any(p.requires_grad for p in module.backbone.parameters())
    module.train()
    assert not module.backbone.training and module.head.training
    before = module.backbone.layer1[0].bn1.running_mean.clone()
    module(torch.randn(4, 3, 64, 64))
    assert torch.equal(module.backbone.layer1[0].bn1.running_mean, before)


def test_swav_checkpoint_of_another_network_is_refused(tmp_path):
    torch.save({"module.conv1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ModelUnavailableError, match="is not a checkpoint of this ResNet"):
        load_backbone_weights(
            SwavResNet(name="s", weights="random", depth=10).build(2).backbone,
            tmp_path / "other.pth",
        )


def test_swav_without_weights_names_the_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ModelUnavailableError, match="swav_800ep_pretrain.pth.tar"):
        SwavResNet(name="swav").check_available()


def test_replacing_the_swav_checkpoint_changes_the_identity(tmp_path):
    path = tmp_path / "swav.pth.tar"
    torch.save({"module.conv1.weight": torch.zeros(1)}, path)
    model = SwavResNet(name="swav", weights=str(path))
    before = model.identity()
    torch.save({"module.conv1.weight": torch.zeros(2)}, path)
    assert model.identity() != before
    assert "name" not in before
