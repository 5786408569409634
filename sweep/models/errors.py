"""Errors of model loading, importable without torch (the config check raises them early)."""


class ModelUnavailableError(RuntimeError):
    """Pretrained weights that cannot be loaded here; the message says how to provide them."""
