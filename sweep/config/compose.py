"""Composing conf/ with overrides, as `python -m sweep` does (Hydra's compose API)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from sweep.errors import OptionError

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"


def composed(overrides: list[str], config_name: str = "config") -> DictConfig:
    """The config `config_name` of conf/ with the overrides; an unknown group, option or key
    is an OptionError with Hydra's message (without its search path)."""
    try:
        with initialize_config_dir(str(CONFIG_DIR), version_base=None):
            return compose(config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as error:
        raise OptionError(str(error).split("\nConfig search path")[0].strip()) from None
