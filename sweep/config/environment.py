"""What lies outside the config, checked before any work: the results folder, the dataset,
the model's weights and the tracking server."""

from __future__ import annotations

import logging

from sweep.data.base import DatasetError, DatasetReader
from sweep.errors import OptionError
from sweep.models.base import ModelFamily
from sweep.models.errors import ModelUnavailableError
from sweep.options import TrackingOptions
from sweep.spec import Sweep
from sweep.store import ArtifactStore, StoreError
from sweep.tracking.server import check_tracking_server

log = logging.getLogger(__name__)


def check_inputs(store: ArtifactStore, reader: DatasetReader, model: ModelFamily) -> None:
    """The results folder can be written, the dataset is where the reader looks and in its
    layout, and the model's pretrained weights are here; each checked before the task kind is
    built (whose metric libraries take seconds to import), so a refusal is immediate."""
    try:
        store.check_writable()
    except StoreError as error:
        raise OptionError(str(error), option="results_dir") from None
    try:
        reader.prepare()
        for split in ("train", "test"):
            reader.items(split)
    except DatasetError as error:
        raise error.under("task.root") from None
    check_model(model)


def check_tracking(tracking: TrackingOptions) -> None:
    """An MLflow server answers at tracking.uri, or (with tracking.on_unreachable=defer) the
    sweep runs and its logging waits, with a warning."""
    if not tracking.enabled:
        return
    try:
        check_tracking_server(tracking.uri)
    except OptionError as error:
        if tracking.on_unreachable != "defer":
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
