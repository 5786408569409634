"""`python -m sweep.audit task=<any task>`: what compression does a dataset already carry?

Reads the headers of every image file of the task's train and test splits (no pixel decoding),
writes tables and figures under `<results_dir>/audits/`, and logs them to MLflow.
"""

from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sweep.audit.report import write_audit_report
from sweep.audit.scan import audit_files
from sweep.audit.tables import summarize
from sweep.cli import main_of, run_reporting_errors
from sweep.config.build import instantiate_component
from sweep.config.values import local_dir_of, tracking_options
from sweep.data.base import SPLITS, DatasetError
from sweep.errors import OptionError
from sweep.store import ArtifactStore, StoreError
from sweep.tracking.deferred import make_tracker
from sweep.tracking.server import check_tracking_server

log = logging.getLogger("sweep.audit")


def run_audit(cfg: DictConfig) -> Path:
    """Audits the task's dataset; returns the report folder. Raises OptionError."""
    if "root" in cfg.task.keys() and OmegaConf.is_missing(cfg.task, "root"):
        raise OptionError("is required: the dataset folder to audit", option="task.root")
    OmegaConf.resolve(cfg)
    tracking = tracking_options(cfg.tracking)
    reader = instantiate_component("task.reader", cfg.task.reader)
    try:
        reader.prepare()
        files = [(split, item.relpath) for split in SPLITS for item in reader.items(split)]
    except DatasetError as error:
        raise error.under("task.root") from None
    results_dir = local_dir_of(cfg)
    try:
        ArtifactStore(results_dir / "audits").check_writable()
    except StoreError as error:
        raise OptionError(str(error), option="results_dir") from None
    if tracking.enabled:
        check_tracking_server(tracking.uri)
    tracker = make_tracker(tracking, results_dir)
    started = time.perf_counter()
    records = audit_files(reader.root, files)
    seconds = time.perf_counter() - started
    log.info(
        "audited %d files in %.2f s (%.0f files/s)",
        len(records),
        seconds,
        len(records) / max(seconds, 1e-9),
    )
    key = audit_key(reader.root, files)
    out = results_dir / "audits" / f"{cfg.task.name}_{key}"
    paths = write_audit_report(records, out)
    if tracker is not None:
        run_id = tracker.log_audit(
            f"{reader.root}:{key}",
            f"audit_{cfg.task.name}_{key}",
            {**summarize(records), "audit_seconds": seconds},
            list(paths.values()),
        )
        log.info("MLflow: %s, experiment '%s', run %s", tracking.uri, tracking.experiment, run_id)
    return out


def audit_key(root: Path, files: list[tuple[str, str]]) -> str:
    """Names an audit by its dataset folder and file list (same files, same report folder)."""
    digest = hashlib.sha256(str(root).encode())
    for split, relpath in files:
        digest.update(f"\n{split}/{relpath}".encode())
    return digest.hexdigest()[:8]


def audit(cfg: DictConfig) -> None:
    out = run_reporting_errors(lambda: run_audit(cfg))
    print(f"audit: {out}")


def main() -> None:
    main_of("config", audit)


if __name__ == "__main__":
    main()
