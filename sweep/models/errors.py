"""Errors of model loading, importable without torch (the config check raises them early)."""

from __future__ import annotations

from pathlib import Path

from sweep.errors import SweepError


class ModelUnavailableError(SweepError):
    """Pretrained weights that cannot be loaded here; the message says how to provide them."""


def hugging_face_unavailable(
    pretrained: str, error: Exception | None = None, cache: str | None = None
) -> str:
    """What to do when `from_pretrained(pretrained)` cannot read a model from local files.

    Args:
        pretrained: model.pretrained: a save_pretrained folder or a Hugging Face model id.
        error: What transformers raised reading the folder, when it got that far.
        cache: The Hugging Face cache folder that was searched for the model id.
    """
    path = Path(pretrained).expanduser()
    if path.exists():
        return f"model.pretrained={pretrained} is not a save_pretrained folder: {error}"
    if path.is_absolute() or pretrained.startswith((".", "~")) or pretrained.count("/") > 1:
        return (
            f"model.pretrained={pretrained}: there is no folder {path.absolute()}. Pass a "
            f"folder written by save_pretrained, or a Hugging Face model id in the local cache."
        )
    where = f" ({cache})" if cache else ""
    return (
        f"model.pretrained={pretrained} is not in the local Hugging Face cache{where}, and "
        f"nothing is downloaded at run time. On a machine with internet run "
        f"`hf download {pretrained}` (it fills ~/.cache/huggingface; copy that folder "
        f"or set HF_HOME to it), or save the model with save_pretrained and pass "
        f"model.pretrained=/path/to/folder."
    )
