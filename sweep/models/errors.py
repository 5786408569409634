"""Errors of model loading, importable without torch (the config check raises them early)."""

from sweep.errors import SweepError


class ModelUnavailableError(SweepError):
    """Pretrained weights that cannot be loaded here; the message says how to provide them."""


def hugging_face_unavailable(pretrained: str, error: Exception) -> str:
    """What to do when `from_pretrained(pretrained)` cannot read a model offline."""
    from pathlib import Path

    if Path(pretrained).exists():
        return f"model.pretrained={pretrained} is not a save_pretrained folder: {error}"
    return (
        f"model.pretrained={pretrained} is not in the local Hugging Face cache and "
        f"cannot be downloaded here. On a machine with internet run "
        f"`hf download {pretrained}` (it fills ~/.cache/huggingface; copy that folder "
        f"or set HF_HOME to it), or save the model with save_pretrained and pass "
        f"model.pretrained=/path/to/folder."
    )
