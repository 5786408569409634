"""What lies outside the config, checked before any work: the results folder, the dataset,
the model's weights and the tracking server."""

from __future__ import annotations

import logging

from sweep.data.base import DatasetError
from sweep.errors import OptionError
from sweep.models.base import ModelFamily
from sweep.models.errors import ModelUnavailableError
from sweep.spec import Sweep
from sweep.store import StoreError
from sweep.tracking.server import check_tracking_server

log = logging.getLogger(__name__)


def check_environment(sweep: Sweep) -> None:
    """Checks what lies outside the config: results folder, dataset, weights, server."""
    try:
        sweep.store.check_writable()
    except StoreError as error:
        raise OptionError(str(error), option="results_dir") from None
    try:
        sweep.reader.prepare()
        for split in ("train", "test"):
            sweep.reader.items(split)
    except DatasetError as error:
        raise error.under("task.root") from None
    check_model(sweep.model)
    if sweep.tracking.enabled:
        try:
            check_tracking_server(sweep.tracking.uri)
        except OptionError as error:
            if sweep.tracking.on_unreachable != "defer":
                raise
            log.warning("%s; tracking.on_unreachable=defer: the sweep runs, logging waits", error)


def check_model(model: ModelFamily) -> None:
    """The model family's pretrained weights are here (read from the local cache or a file,
    never downloaded); else an OptionError naming `model` that says how to provide them."""
    if not isinstance(model, ModelFamily):
        return  # the contract check names it
    try:
        model.check_available()
    except ModelUnavailableError as error:
        raise OptionError(str(error), option="model") from None


def model_as_loaded(sweep: Sweep) -> ModelFamily:
    """train=none: the model family keeping its pretrained head, mapped to the classes."""
    try:
        return sweep.model.as_loaded(sweep.reader.class_names())
    except OptionError as error:
        raise error.under("train") from None
    except ModelUnavailableError as error:  # the head is read from the weight file
        raise OptionError(str(error), option="model") from None
