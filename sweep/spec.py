"""One sweep, validated: its components and options, as every driver and output reads them.

The config layer (sweep/config/) builds a `Sweep` from the composed config and nothing else
does; the engine never sees it (it takes plans, stage contexts and cluster options). `Sweep`
holds instantiated components (a codec, a dataset reader, a task kind, a model family), so it
sits above them, just below the engine; the plain option types it carries are the base's
(sweep/options.py) or their libraries'.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sweep.analysis.bootstrap import BootstrapOptions
from sweep.analysis.recommendation import RecommendOptions
from sweep.codecs.base import Codec
from sweep.data.base import DatasetReader
from sweep.distortion import DistortionOptions
from sweep.options import ClusterOptions, TrackingOptions, TrainOptions
from sweep.sensitivity.options import SensitivityOptions
from sweep.store import ArtifactStore

if TYPE_CHECKING:  # the task kinds import torch; this module is imported by every driver
    from sweep.models.base import ModelFamily
    from sweep.tasks.base import TaskKind


@dataclass
class Sweep:
    """Everything a sweep needs, validated (an experiment's own options are its own)."""

    task_name: str
    task: TaskKind
    reader: DatasetReader
    model: ModelFamily
    codec: Codec
    train_settings: list[str]
    test_settings: list[str]
    options: TrainOptions
    seed: int
    # This machine's own folder: results_dir, or local_dir when results_dir is a URL.
    results_dir: Path
    store: ArtifactStore
    cluster: ClusterOptions
    tracking: TrackingOptions
    progress: bool
    on_error: str
    config_yaml: str
    # Measured distortion of the encoded images (PSNR, SSIM, SSIMULACRA 2, Butteraugli).
    distortion: DistortionOptions = field(default_factory=DistortionOptions)
    # DCT sensitivity maps of the trained classifiers.
    sensitivity: SensitivityOptions = field(default_factory=SensitivityOptions)
    # The trainings' seeds (`seeds`, or the one `seed`); the first is `seed`.
    seeds: list[int] = field(default_factory=lambda: [0])
    # The paired bootstrap over test images behind every interval (sweep/analysis/).
    intervals: BootstrapOptions = field(default_factory=BootstrapOptions)
    # The recommendation's threshold: the share of original/original to keep.
    recommend: RecommendOptions = field(default_factory=RecommendOptions)
    # With `mixed` among the train settings: the settings it draws each image from.
    mixed_settings: tuple[str, ...] = ()
    # Seconds to wait for another driver holding results_dir's lock (sweep/engine/lock.py).
    lock_wait: float = 0.0
    # results_dir when it is an object-store URL (the store is under it, and the reports are
    # uploaded beside it); None for a local results_dir.
    results_url: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        """What MLflow runs are filtered and compared by across sweeps."""
        return {"task": self.task_name, "model": self.model.name, "codec": self.codec.name}
