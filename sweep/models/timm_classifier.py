"""Any timm (pytorch-image-models) classifier, with its own input size and preprocessing.

The weights come from a local file or the local Hugging Face cache and are never downloaded.
Fine-tuning replaces the head; `as_loaded` keeps the pretrained head and maps the dataset's
classes to its outputs, so that train=none evaluates the classifier exactly as it was published.
"""

from __future__ import annotations

import difflib
import functools
import logging
import pickle
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import timm
import torch
from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache
from safetensors import SafetensorError, safe_open
from timm.data import (
    DEFAULT_CROP_PCT,
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    ImageNetInfo,
    infer_imagenet_subset,
)
from timm.models import get_pretrained_cfg, split_model_name_tag
from torch import nn

from sweep.errors import OptionError
from sweep.models.base import ModelFamily
from sweep.models.errors import ModelUnavailableError
from sweep.models.weight_files import weights_file_identity

INTERPOLATIONS = ("bilinear", "bicubic")
# Suffixes that make model.weights a file path rather than a Hugging Face model id.
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".tar", ".ckpt")
# The weight files of a timm repository on the Hugging Face hub, in the order timm reads them.
HUB_FILES = ("model.safetensors", "pytorch_model.bin")
HUB_PREFIX = "hf-hub:"
# What torch, safetensors and timm raise for a file that is no state dict of the network.
UNREADABLE = (RuntimeError, OSError, ValueError, KeyError, pickle.UnpicklingError, SafetensorError)
# Class names shown when some cannot be mapped to the head.
SHOWN_NAMES = 5

log = logging.getLogger(__name__)


class HeadOutputs(nn.Module):
    """A classifier that keeps some outputs of its head: class j is head output `outputs[j]`.

    The outputs are a non-persistent buffer: the state dict is the wrapped model's (under
    "model."), and the family's identity holds the outputs.
    """

    def __init__(self, model: nn.Module, outputs: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("outputs", torch.tensor(outputs, dtype=torch.long), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:  # (B, 3, S, S) -> (B, C)
        return self.model(images)[:, self.outputs]  # (B, head outputs) -> (B, C)


@dataclass
class TimmClassifier(ModelFamily):
    """A timm classifier: fine-tuned with a new head, or evaluated as loaded (train=none).

    Every preprocessing field left None takes the value of timm's pretrained config for `name`.

    Args:
        name: A timm architecture, optionally with its pretrained tag ("resnet50",
            "resnet50.a1_in1k"; `timm.list_models()`, `timm.list_pretrained()`). Part of the
            identity: it is the network.
        task_kind: The task kind it serves ("classification").
        weights: A local state-dict file (.pth, .pt, .bin, .safetensors), a Hugging Face model id
            read from the local cache only ("timm/resnet50.a1_in1k"), or None for random weights.
        image_size: Side of the square input.
        mean: Per-channel normalisation mean.
        std: Per-channel normalisation standard deviation.
        interpolation: Resampling filter of the resize: "bilinear" or "bicubic".
        crop_pct: Share of the resized image that the centre crop keeps (evaluation resizes the
            shorter side to image_size / crop_pct). Changes evaluation only.
        head_outputs: The pretrained head's output of each class (set by `as_loaded`); None
            trains a new head.
    """

    name: str
    task_kind: str = "classification"
    weights: str | None = None
    image_size: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str | None = None
    crop_pct: float | None = None
    head_outputs: tuple[int, ...] | None = None

    # The name is the architecture: it changes the weights, so it is no display field.
    display_fields: ClassVar[tuple[str, ...]] = ()
    eval_fields: ClassVar[tuple[str, ...]] = ("crop_pct",)

    def __post_init__(self) -> None:
        config = pretrained_config(self.name)
        if self.image_size is None:
            self.image_size = int(config.get("input_size", (3, 224, 224))[-1])
        self.mean = tuple(self.mean or config.get("mean") or IMAGENET_DEFAULT_MEAN)
        self.std = tuple(self.std or config.get("std") or IMAGENET_DEFAULT_STD)
        self.interpolation = self.interpolation or config.get("interpolation") or "bicubic"
        if self.crop_pct is None:
            self.crop_pct = float(config.get("crop_pct") or DEFAULT_CROP_PCT)
        if self.head_outputs is not None:
            self.head_outputs = tuple(int(output) for output in self.head_outputs)
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int):
            raise OptionError(
                f"must be a whole number of pixels, got {self.image_size!r}",
                option="model.image_size",
            )
        if self.image_size < 1:
            raise OptionError(f"must be >= 1, got {self.image_size}", option="model.image_size")
        for option, values in (("mean", self.mean), ("std", self.std)):
            if len(values) != 3:
                raise OptionError(
                    f"needs one value per RGB channel, got {list(values)}", option=f"model.{option}"
                )
        if self.interpolation not in INTERPOLATIONS:
            raise OptionError(
                f"'{self.interpolation}' is not one of {list(INTERPOLATIONS)}",
                option="model.interpolation",
            )
        if not 0 < self.crop_pct <= 1:
            raise OptionError(f"must be in (0, 1], got {self.crop_pct}", option="model.crop_pct")

    # ---- weights ---------------------------------------------------------------------------

    def weights_path(self) -> Path | None:
        """The weight file (model.weights, or its file in the local Hugging Face cache); None
        for random weights. Raises ModelUnavailableError, saying how to provide it."""
        if self.weights is None:
            return None
        hub_id = hub_model_id(self.weights)
        if hub_id is None:
            path = Path(self.weights).expanduser().absolute()
            if not path.is_file():
                raise ModelUnavailableError(
                    f"model.weights={self.weights}: no file at {path}. Pass the path of a "
                    f"state-dict file of timm's {self.name} (.pth, .pt, .bin or .safetensors, "
                    f"e.g. torch.save(model.state_dict(), path)), a Hugging Face model id in the "
                    f"local cache such as {default_hub_id(self.name)}, or model.weights=null "
                    f"for random weights."
                )
            return path
        path = cached_hub_file(hub_id)
        if path is None:
            raise ModelUnavailableError(self.not_cached_message(hub_id))
        return path

    def not_cached_message(self, hub_id: str) -> str:
        default = default_hub_id(self.name)
        hint = f" (timm's weights of {self.name} are {default})" if default != hub_id else ""
        return (
            f"model.weights={self.weights}: {hub_id} is not in the local Hugging Face cache "
            f"({hub_constants.HF_HUB_CACHE}){hint}, and nothing is downloaded here. On a machine "
            f"with internet run `hf download {hub_id}` (it fills ~/.cache/huggingface: copy "
            f"that folder here, or set HF_HOME to where it lies), or pass the weight file "
            f"itself: model.weights=/path/to/model.safetensors."
        )

    def check_available(self) -> None:
        """Raises ModelUnavailableError before any work if the weight file cannot be found."""
        self.weights_path()

    def identity(self) -> dict:
        """The fields (the name included: it is the architecture) and, with weights, the
        resolved file's name, size and content digest, so that a replaced file (even one of
        the same size and name, as Hugging Face's model.safetensors always is) gets new
        training keys."""
        identity = super().identity()
        try:
            path = self.weights_path()
        except ModelUnavailableError:
            path = None  # the config check has refused it already
        if path is not None:
            identity["weights_file"] = weights_file_identity(path)
        return identity

    def head_size(self) -> int:
        """Outputs of the pretrained head: the rows of its weight in the file, 0 for a file
        without a head (a feature extractor), the architecture's default without weights."""
        path = self.weights_path()
        if path is None:
            return int(pretrained_config(self.name).get("num_classes") or 1000)
        stat = path.stat()
        rows = checkpoint_rows(str(path), stat.st_size, stat.st_mtime_ns, self.classifier_key())
        return rows or 0

    def classifier_key(self) -> str:
        """The state-dict key of the head's weight (the first head of a distilled model)."""
        classifier = pretrained_config(self.name).get("classifier") or "head"
        if not isinstance(classifier, str):
            classifier = classifier[0]
        return f"{classifier}.weight"

    # ---- the module ------------------------------------------------------------------------

    def build(self, num_classes: int, load_pretrained: bool = True) -> nn.Module:
        """The timm model with a new head of `num_classes` outputs, or, after `as_loaded`, with
        its pretrained head reduced to the classes' outputs.

        Args:
            num_classes: Number of classes (after `as_loaded`: len(head_outputs)).
            load_pretrained: False builds the architecture without reading the weight file
                (its head size only), for loading trained weights right after.
        """
        keep_head = self.head_outputs is not None
        if keep_head and num_classes != len(self.head_outputs):
            raise ValueError(
                f"{num_classes} classes but {len(self.head_outputs)} head outputs: as_loaded "
                f"was given another class list"
            )
        path = self.weights_path() if load_pretrained else None
        if path is None:
            outputs = self.head_size() if keep_head else num_classes
            model = timm.create_model(self.name, num_classes=outputs, **self.size_arguments())
        else:
            model = self.load(path)
            if not keep_head:
                model.reset_classifier(num_classes)
        return HeadOutputs(model, self.head_outputs) if keep_head else model

    def load(self, path: Path) -> nn.Module:
        """The timm model with every weight of the file, its head included (strict)."""
        head = self.head_size()
        # timm reads `file` before any other source: it never looks for a download.
        overlay = {"file": str(path), "num_classes": head}
        try:
            return timm.create_model(
                self.name,
                pretrained=True,
                pretrained_cfg_overlay=overlay,
                num_classes=head,
                **self.size_arguments(),
            )
        except UNREADABLE as error:
            reason = " ".join(str(error).split())[:300]  # the first keys that differ
            raise ModelUnavailableError(
                f"model.weights={self.weights}: {path} is not a state dict of timm's "
                f"{self.name} ({reason}). Pass the weights of this architecture, or the "
                f"architecture of these weights as model.name."
            ) from None

    def size_arguments(self) -> dict:
        """img_size for an architecture of fixed input size when image_size is not its own."""
        config = pretrained_config(self.name)
        own_size = config.get("input_size", (3, 224, 224))[-1]
        if config.get("fixed_input_size") and self.image_size != own_size:
            return {"img_size": self.image_size}
        return {}

    # ---- evaluation as loaded (train=none) -------------------------------------------------

    def as_loaded(self, class_names: list[str]) -> TimmClassifier:
        """This family keeping its pretrained head, class i being the head's output named by
        class_names[i]: its index ("0", "1", ...) or its ImageNet synset id ("n01440764").

        Raises:
            OptionError: A class that names no output (option "task.root").
        """
        head = self.head_size()
        if head == 0:
            raise OptionError(
                f"model.weights={self.weights} holds no classifier head of {self.name} (no "
                f"{self.classifier_key()}): train=none evaluates the head as loaded. Pass the "
                f"weights of a classifier, or train a head with a recipe such as train=finetune.",
                option="train",
            )
        synsets = imagenet_synsets(head)
        outputs = [head_output(name, head, synsets) for name in class_names]
        refused = [
            name for name, output in zip(class_names, outputs, strict=True) if output is None
        ]
        if refused:
            shown = ", ".join(repr(name) for name in refused[:SHOWN_NAMES])
            more = f" and {len(refused) - SHOWN_NAMES} more" if len(refused) > SHOWN_NAMES else ""
            example = next(iter(synsets), None) if synsets else None
            synset_hint = f" or its ImageNet synset id (e.g. {example})" if example else ""
            raise OptionError(
                f"train=none evaluates {self.name} with its own head of {head} outputs, so each "
                f"class must be named by the output it is: its index (0..{head - 1})"
                f"{synset_hint}. These classes name no output: {shown}{more}. Rename the class "
                f"folders, or train a new head with a train recipe such as train=finetune.",
                option="task.root",
            )
        named_twice = {output for output, count in Counter(outputs).items() if count > 1}
        if named_twice:
            names = [n for n, o in zip(class_names, outputs, strict=True) if o in named_twice]
            raise OptionError(
                f"train=none: classes {names} name the same head output of {self.name}: "
                f"give each class a folder of its own output",
                option="task.root",
            )
        if self.weights is None:
            log.warning(
                "train=none with model.weights=null evaluates %s with a random head", self.name
            )
        return replace(self, head_outputs=tuple(outputs))


def pretrained_config(name: str) -> dict:
    """timm's pretrained config of an architecture (its default tag without one), as a dict.

    Raises:
        OptionError: An unknown architecture or tag (option "model.name"), naming close ones.
    """
    architecture, tag = split_model_name_tag(name)
    if not timm.is_model(architecture):
        close = difflib.get_close_matches(architecture, timm.list_models(), n=5, cutoff=0.6)
        suggestion = f"close ones: {close}" if close else "timm.list_models() lists them all"
        raise OptionError(
            f"'{architecture}' is not a timm architecture ({suggestion}; a pretrained tag "
            f"follows a dot, as in resnet50.a1_in1k)",
            option="model.name",
        )
    try:
        config = get_pretrained_cfg(name)
    except RuntimeError:
        tags = timm.list_pretrained(f"{architecture}.*")
        raise OptionError(
            f"'{tag}' is not a pretrained tag of {architecture}; its tags: {tags}",
            option="model.name",
        ) from None
    return config.to_dict() if config is not None else {}


def default_hub_id(name: str) -> str:
    """The Hugging Face id of timm's weights of `name` (of its default tag without one)."""
    return pretrained_config(name).get("hf_hub_id") or f"timm/{name}"


def hub_model_id(weights: str) -> str | None:
    """The Hugging Face model id that `weights` names, or None when it names a file."""
    if weights.startswith(HUB_PREFIX):
        return weights.removeprefix(HUB_PREFIX)
    path = Path(weights).expanduser()
    looks_like_id = re.fullmatch(r"[\w.-]+/[\w.-]+", weights) is not None
    if path.exists() or path.is_absolute() or weights.startswith((".", "~")):
        return None
    if weights.lower().endswith(WEIGHT_SUFFIXES) or not looks_like_id:
        return None
    return weights


def cached_hub_file(hub_id: str) -> Path | None:
    """The weight file of a Hugging Face model in the local cache; None if it is not there.

    `try_to_load_from_cache` only looks in the cache folder: it never reaches the network.
    """
    for filename in HUB_FILES:
        cached = try_to_load_from_cache(hub_id, filename)
        if isinstance(cached, str):
            return Path(cached)
    return None


@functools.lru_cache(maxsize=8)
def checkpoint_rows(path: str, size: int, mtime_ns: int, key: str) -> int | None:
    """Rows of tensor `key` in a weight file (None without it). Size and time key the cache,
    so that each process reads a file once and a replaced file again."""
    del size, mtime_ns
    try:
        if path.endswith(".safetensors"):
            with safe_open(path, framework="pt") as weights:  # reads the header only
                return weights.get_slice(key).get_shape()[0] if key in weights.keys() else None
        state = timm.models.load_state_dict(path)
    except UNREADABLE as error:
        raise ModelUnavailableError(f"cannot read the weight file {path}: {error}") from None
    return state[key].shape[0] if key in state else None


def imagenet_synsets(head: int) -> dict[str, int] | None:
    """Synset id -> output of an ImageNet head of that size (timm's bundled lists of
    ImageNet-1k, -12k, -21k and -22k, offline); None for a head of another size."""
    subset = infer_imagenet_subset({"num_classes": head})
    if subset is None:
        return None
    return {synset: output for output, synset in enumerate(ImageNetInfo(subset).label_names())}


def head_output(name: str, head: int, synsets: dict[str, int] | None) -> int | None:
    """The head output a class name names (its index or its synset id), or None."""
    if re.fullmatch(r"[0-9]+", name):
        return int(name) if int(name) < head else None
    return (synsets or {}).get(name)
