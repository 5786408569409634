"""What the harness reads from a sweep's results folder, while the sweep runs and after it.

The store (stage outputs, being written or finished), the report files and the MLflow runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from reliability.stage_targets import kill_targets, store_patterns
from reliability.sweep_command import EXPERIMENT

REPORT_FILES = ("results.csv", "quarantine.csv", "conversions.csv")
# The codec comparison folders beside the sweep's report (see sweep/compare.py).
COMPARE_PREFIX = "compare_"


def stage_progress(
    store: Path, stages: tuple[str, ...] | None = None
) -> dict[str, tuple[int, int]]:
    """Per stage (by default every kill target): (outputs being written, outputs finished)."""
    progress = {}
    for stage in kill_targets() if stages is None else stages:
        writing = done = 0
        for pattern in store_patterns(stage):
            for path in store.glob(pattern):
                if ".tmp-" in path.name:
                    writing += 1
                elif (path / "DONE").is_file():
                    done += 1
        progress[stage] = (writing, done)
    return progress


def describe_progress(progress: dict[str, tuple[int, int]]) -> str:
    return ", ".join(
        f"{stage} {done} done/{writing} writing" for stage, (writing, done) in progress.items()
    )


def finished_outputs(store: Path) -> dict[str, tuple[int, int]]:
    """Every finished stage output (a folder holding DONE): (folder mtime, DONE mtime) in ns."""
    outputs = {}
    for done in store.rglob("DONE"):
        folder = done.parent
        relative = folder.relative_to(store)
        if any(".tmp-" in part for part in relative.parts):
            continue  # DONE is written just before the rename: not published yet
        try:
            outputs[str(relative)] = (folder.stat().st_mtime_ns, done.stat().st_mtime_ns)
        except FileNotFoundError:
            continue
    return outputs


def stage_writers(store: Path, stage: str) -> set[int]:
    """Processes writing an output of the stage.

    A temporary folder is named <key>.tmp-<host>-<pid>-<id> after its writer (see
    sweep.store.temporary_tag).
    """
    writers = set()
    for pattern in store_patterns(stage):
        for path in store.glob(pattern):
            parts = path.name.rsplit(".tmp-", 1)[-1].split("-") if ".tmp-" in path.name else []
            if len(parts) == 3 and parts[1].isdigit():
                writers.add(int(parts[1]))
    return writers


def temporaries(store: Path) -> list[str]:
    return sorted(str(path.relative_to(store)) for path in store.rglob("*.tmp-*"))


def report_folder(results_dir: Path) -> Path | None:
    folders = [
        f
        for f in sorted((results_dir / "reports").glob("*/"))
        if not f.name.startswith(COMPARE_PREFIX)
    ]
    return folders[0] if len(folders) == 1 else None


def report_files(results_dir: Path) -> dict[str, bytes | None]:
    folder = report_folder(results_dir)
    if folder is None:
        return dict.fromkeys(REPORT_FILES)
    return {name: _read(folder / name) for name in REPORT_FILES}


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def half_published(store: Path) -> list[str]:
    """Published outputs (DONE outside a temporary folder) with a file that their manifest
    lists missing or of another size."""
    broken = []
    for output in finished_outputs(store):
        folder = store / output
        try:
            listed = json.loads((folder / "DONE").read_text()).get("files", {})
        except (OSError, ValueError):
            broken.append(f"{output} (unreadable DONE)")
            continue
        for name, entry in listed.items():
            path = folder / name
            if not path.is_file() or path.stat().st_size != entry.get("size"):
                broken.append(f"{output}/{name}")
    return broken


def mlflow_runs(database: Path) -> tuple[int, int]:
    """(parent runs, child runs) of the sweep's experiment in an MLflow sqlite database."""
    from mlflow.tracking import MlflowClient  # MLflow takes seconds to import: only here

    client = MlflowClient(f"sqlite:///{database}")
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return 0, 0
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    children = sum("mlflow.parentRunId" in run.data.tags for run in runs)
    return sum("sweep.key" in run.data.tags for run in runs), children
