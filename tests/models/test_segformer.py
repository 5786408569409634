"""SegFormer: the tiny model runs forward and backward; pretrained loading from local files only."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from transformers import (
    SegformerConfig,
    SegformerForImageClassification,
    SegformerForSemanticSegmentation,
)

from sweep.errors import OptionError
from sweep.models.errors import ModelUnavailableError
from sweep.models.segformer import SegformerSegmenter
from tests.conftest import compose_config

TINY = {
    "hidden_sizes": [8, 16, 16, 16],
    "depths": [1, 1, 1, 1],
    "num_attention_heads": [1, 1, 1, 1],
    "decoder_hidden_size": 16,
}
PATCH_EMBEDDING = "model.segformer.stages.0.patch_embeddings.proj.weight"


@pytest.fixture(autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_model_from_config_runs_forward_and_backward():
    model = instantiate(compose_config("model=segformer_tiny").model, _convert_="all")
    assert model.task_kind == "segmentation" and model.pretrained is None
    module = model.build(num_classes=5)
    logits = module(torch.randn(2, 3, 64, 96))
    assert logits.shape == (2, 5, 16, 24)  # 1/4 resolution
    logits.sum().backward()
    assert all(p.grad is not None for p in module.parameters() if p.requires_grad)


def test_an_encoder_only_checkpoint_gets_a_new_decode_head(tmp_path):
    """Like nvidia/mit-b5: an ImageNet classifier, saved in the hub's format."""
    encoder = SegformerForImageClassification(SegformerConfig(num_labels=1000, **TINY))
    encoder.save_pretrained(tmp_path / "mit")
    model = SegformerSegmenter(name="segformer", pretrained=str(tmp_path / "mit"))
    model.check_available()
    module = model.build(num_classes=3)
    assert torch.equal(
        module.state_dict()[PATCH_EMBEDDING],
        encoder.segformer.stages[0].patch_embeddings.proj.weight,
    )
    assert module(torch.randn(1, 3, 64, 64)).shape == (1, 3, 16, 16)
    # Evaluation rebuilds the architecture without reading the pretrained weights.
    rebuilt = model.build(3, load_pretrained=False)
    assert rebuilt(torch.randn(1, 3, 64, 64)).shape == (1, 3, 16, 16)
    assert rebuilt.state_dict().keys() == module.state_dict().keys()


def test_a_segmenter_of_other_classes_gets_a_new_classifier(tmp_path):
    trained = SegformerForSemanticSegmentation(SegformerConfig(num_labels=19, **TINY))
    trained.save_pretrained(tmp_path / "segformer")
    module = SegformerSegmenter(name="s", pretrained=str(tmp_path / "segformer")).build(5)
    state = module.state_dict()
    assert state["model.decode_head.classifier.weight"].shape[0] == 5
    assert torch.equal(
        state["model.decode_head.linear_fuse.weight"], trained.decode_head.linear_fuse.weight
    )


def test_not_available_offline_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    model = SegformerSegmenter(name="segformer", pretrained="nvidia/mit-b5")
    with pytest.raises(ModelUnavailableError, match="hf download nvidia/mit-b5"):
        model.check_available()
    with pytest.raises(ModelUnavailableError, match="save_pretrained"):
        model.build(3)


def test_a_folder_of_another_model_is_refused(tmp_path):
    from transformers import ViTConfig

    ViTConfig().save_pretrained(tmp_path / "vit")
    model = SegformerSegmenter(name="segformer", pretrained=str(tmp_path / "vit"))
    with pytest.raises(ModelUnavailableError, match="is a vit model, not a SegFormer"):
        model.check_available()


def test_decode_head_learns_faster_and_norms_are_not_decayed():
    model = SegformerSegmenter(name="s", architecture=TINY, head_lr_multiplier=10.0)
    module = model.build(3)
    groups = model.parameter_groups(module, lr=1e-4, weight_decay=0.01)
    names = {id(p): n for n, p in module.named_parameters()}
    for group in groups:
        for parameter in group["params"]:
            name = names[id(parameter)]
            head = name.startswith("model.decode_head.")
            assert group["lr"] == pytest.approx(1e-3 if head else 1e-4), name
            assert group["weight_decay"] == (0.01 if parameter.ndim > 1 else 0.0), name
    assert sum(len(g["params"]) for g in groups) == len(list(module.parameters()))


def test_wrong_arguments_name_the_option():
    with pytest.raises(OptionError) as error:
        SegformerSegmenter(name="s", architecture={"hidden_sizes": 3, "unknown_field": 1})
    assert error.value.option == "model.architecture"
    with pytest.raises(OptionError) as error:
        SegformerSegmenter(name="s", head_lr_multiplier=0)
    assert error.value.option == "model.head_lr_multiplier"


def test_identity_leaves_out_the_display_name():
    a = SegformerSegmenter(name="a", architecture=TINY)
    b = SegformerSegmenter(name="b", architecture=TINY)
    assert a.identity() == b.identity() and "name" not in a.identity()
    assert (
        a.identity()
        != SegformerSegmenter(name="a", architecture=TINY, head_lr_multiplier=2).identity()
    )
