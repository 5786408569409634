"""Hugging Face models from local files only: a save_pretrained folder or the local cache.

Nothing here reaches the network, not even to learn that a model is missing: an air-gapped
machine would sit through timeouts and retries, and on a cluster every node would download.
The cache is read with `try_to_load_from_cache` (the file system only), and transformers is
given the snapshot folder itself: `from_pretrained(id, local_files_only=True)` still goes
through `hf_hub_download`, whose request headers make huggingface_hub (2.x) fetch a registry
from the Hub.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from huggingface_hub import constants as hub_constants
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import HFValidationError

from sweep.models.errors import ModelUnavailableError, hugging_face_unavailable

CONFIG_FILE = "config.json"
# The weight files of a transformers checkpoint (whole or sharded), one of which it reads.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)

T = TypeVar("T")


def pretrained_folder(pretrained: str, with_weights: bool = True) -> Path:
    """The folder from_pretrained reads: `pretrained` itself when it is a folder, else the
    snapshot of model id `pretrained` in the local Hugging Face cache.

    Args:
        pretrained: model.pretrained: a save_pretrained folder or a Hugging Face model id.
        with_weights: Require the cached snapshot to hold weights, not only its config.

    Raises:
        ModelUnavailableError: Neither is here; the message says how to provide the model.
    """
    path = Path(pretrained).expanduser()
    if path.is_dir():
        return path
    snapshot = cached_snapshot(pretrained, with_weights)
    if snapshot is None:
        cache = hub_constants.HF_HUB_CACHE
        raise ModelUnavailableError(hugging_face_unavailable(pretrained, cache=cache))
    return snapshot


def cached_snapshot(model_id: str, with_weights: bool = True) -> Path | None:
    """The snapshot folder of `model_id` (its main revision) in the local Hugging Face cache,
    holding its config and, with_weights, a weight file; None if the cache has no such one."""
    try:
        config = try_to_load_from_cache(model_id, CONFIG_FILE)
    except HFValidationError:  # no model id: a path (of no folder)
        return None
    if not isinstance(config, str):  # None, or the cache's note that the Hub has no such file
        return None
    snapshot = Path(config).parent
    if with_weights and not any((snapshot / name).is_file() for name in WEIGHT_FILES):
        return None
    return snapshot


def from_local_files(
    load: Callable[..., T], pretrained: str, with_weights: bool = True, **kwargs
) -> T:
    """`load(folder, local_files_only=True, **kwargs)` (a transformers `from_pretrained`) on
    the local folder of `pretrained` (see `pretrained_folder`).

    Raises:
        ModelUnavailableError: The model is not here, or its files cannot be read.
    """
    folder = pretrained_folder(pretrained, with_weights)
    try:
        return load(str(folder), local_files_only=True, **kwargs)
    except OSError as error:  # transformers' error for missing or unreadable files
        raise ModelUnavailableError(unreadable_message(pretrained, folder, error)) from None


def unreadable_message(pretrained: str, folder: Path, error: Exception) -> str:
    """What to do when transformers cannot read the folder that `pretrained` resolved to."""
    if Path(pretrained).expanduser().is_dir():
        return hugging_face_unavailable(pretrained, error)
    reason = " ".join(str(error).split())
    return (
        f"model.pretrained={pretrained}: its copy in the local Hugging Face cache ({folder}) "
        f"cannot be read ({reason}). On a machine with internet run `hf download "
        f"{pretrained}` again and copy the cache here, or pass a save_pretrained folder."
    )
