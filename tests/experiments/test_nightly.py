"""Nightly runs: the results_dir lock, an MLflow outage, a full disk, the changes report.

The sweeps reuse one finished store (a module fixture copied into each test's results_dir), so
that each test runs only the stages it is about.
"""

from __future__ import annotations

import csv
import errno
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from sweep.cli import LOCK_HELD, run_reporting_errors
from sweep.config.build import build_launch, build_sweep
from sweep.engine.execute import describe_failure
from sweep.engine.lock import LockHeldError, lock_path, results_dir_lock
from sweep.experiments.nightly.changes import compare_results
from sweep.store import ArtifactStore, StoreError, atomic_write
from sweep.tracking.deferred import LOGGING_DEFERRED_EXIT, PENDING_FOLDER
from sweep.tracking.tracker import COMPLETE_TAG, Tracker
from tests.conftest import CLASSES, FAST_SWEEP, compose_config, run_sweep, write_jpeg

REPO = Path(__file__).resolve().parents[2]
# The fast sweep, without the stages no test here is about.
FAST = (
    *FAST_SWEEP,
    "cluster=inline",
    "cluster.torch_threads=1",
    "sensitivity=off",
    "distortion.enabled=false",
    "intervals.replicates=100",
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The imagefolder layout of tests/conftest.py, shared by the module's sweeps."""
    root = tmp_path_factory.mktemp("nightly") / "imagefolder"
    for label, name in enumerate(CLASSES):
        for index in range(6):
            write_jpeg(root / "train" / name / f"{index}.jpg", label, index)
        for index in range(3):
            write_jpeg(root / "test" / name / f"{index}.jpg", label, 100 + index)
    return root


@pytest.fixture(scope="module")
def finished_store(dataset, tmp_path_factory) -> Path:
    """A store that holds every stage of the 2 x 2 grid."""
    results = tmp_path_factory.mktemp("finished")
    run_sweep(sweep_of(dataset, results, "tracking=none"))
    return results / "store"


@pytest.fixture
def results(finished_store, tmp_path) -> Path:
    """A results_dir whose store holds the finished 2 x 2 grid."""
    folder = tmp_path / "results"
    shutil.copytree(finished_store, folder / "store")
    return folder


def config_of(dataset: Path, results: Path, *overrides: str):
    return compose_config(
        "task=imagefolder", f"task.root={dataset}", f"results_dir={results}", *FAST, *overrides
    )


def sweep_of(dataset: Path, results: Path, *overrides: str):
    return build_sweep(config_of(dataset, results, *overrides))


def launch_of(dataset: Path, results: Path, *overrides: str):
    """What `python -m sweep <overrides>` runs (with experiment=nightly: the nightly job)."""
    return build_launch(config_of(dataset, results, *overrides))


def run_nightly(launched) -> int:
    return launched.run()


def parent_runs(results: Path, uri: str | None = None) -> list:
    client = MlflowClient(uri or f"sqlite:///{results}/mlflow.db")
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], "tags.`sweep.key` != ''")


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def sweep_key(report: Path) -> str:
    return json.loads((report / "stages.json").read_text())["sweep"]


# The lock ---------------------------------------------------------------------------------

HOLD = """
import sys, time
from sweep.engine.lock import results_dir_lock
with results_dir_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock(results: Path, seconds: float) -> subprocess.Popen:
    """Another driver: a process that holds results_dir's lock for `seconds`."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(results), str(seconds)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_the_lock_names_its_holder_and_a_waiting_driver_gets_it_once_released(tmp_path):
    holder = hold_lock(tmp_path, 2.0)
    try:
        with pytest.raises(LockHeldError) as refused, results_dir_lock(tmp_path, 0):
            pass
        message = str(refused.value)
        assert f"pid {holder.pid}" in message and socket.gethostname() in message
        assert str(lock_path(tmp_path)) in message and "since 20" in message
        assert "lock_wait=SECONDS" in message
        # Waiting: the lock comes once the holder ends (the OS releases it, nothing to clean).
        started = time.monotonic()
        with results_dir_lock(tmp_path, 60) as path:
            assert time.monotonic() - started < 30
            held = json.loads(path.read_text())
            assert held["pid"] != holder.pid
            with results_dir_lock(tmp_path, 0):  # re-entrant in its own process
                pass
    finally:
        holder.kill()
        holder.wait()
    # A holder killed outright leaves no stale lock.
    killed = hold_lock(tmp_path, 600)
    killed.kill()
    killed.wait()
    with results_dir_lock(tmp_path, 0):
        pass


def test_a_second_driver_exits_75_and_never_makes_a_second_parent_run(dataset, results):
    sweep = sweep_of(dataset, results)
    holder = hold_lock(results, 600)
    try:
        with pytest.raises(LockHeldError, match=f"pid {holder.pid}"):
            run_sweep(sweep)
        with pytest.raises(SystemExit) as exited:
            run_reporting_errors(lambda: run_sweep(sweep))
        assert exited.value.code == LOCK_HELD
    finally:
        holder.kill()
        holder.wait()
    assert parent_runs(results) == []  # refused before any MLflow run
    # With lock_wait, a second driver waits for the first and then runs.
    holder = hold_lock(results, 2.0)
    try:
        run_sweep(sweep_of(dataset, results, "lock_wait=60"))
        assert holder.poll() is not None  # it ran once the holder had ended
    finally:
        holder.kill()
        holder.wait()
    [parent] = parent_runs(results)
    assert parent.info.status == "FINISHED"
    run_sweep(sweep)
    assert len(parent_runs(results)) == 1


# MLflow outage ----------------------------------------------------------------------------


def test_an_mlflow_outage_defers_logging_and_the_next_run_catches_up(
    dataset, results, monkeypatch, capsys
):
    def server_gone(*args, **kwargs):
        raise MlflowException("API request to http://mlflow:5000 failed: Connection refused")

    monkeypatch.setattr(Tracker, "log_sweep", server_gone)
    nightly = launch_of(dataset, results, "experiment=nightly")
    assert nightly.session.sweep.tracking.on_unreachable == "defer"
    assert run_nightly(nightly) == LOGGING_DEFERRED_EXIT
    said = capsys.readouterr().out
    assert "MLflow: deferred (MlflowException" in said and "next run" in said
    [report] = (results / "reports").glob("imagefolder_*")
    key = sweep_key(report)
    assert len(read_rows(report / "results.csv")) == 4  # the results landed
    marker = results / PENDING_FOLDER / f"{key}.json"
    assert json.loads(marker.read_text())["sweep"] == key
    [parent] = parent_runs(results)  # RUNNING from its start; the rest waits for the server
    assert parent.data.tags.get(COMPLETE_TAG) != "true"

    # The server is back: another sweep of the results_dir logs itself and the deferred one.
    monkeypatch.undo()
    other = run_sweep(sweep_of(dataset, results, "grid.test=[original]"))
    assert not list((results / PENDING_FOLDER).glob("*.json"))
    parents = {p.data.tags["sweep.key"]: p for p in parent_runs(results)}
    assert set(parents) == {key, sweep_key(other)}
    assert all(p.info.status == "FINISHED" for p in parents.values())
    assert parents[key].data.tags[COMPLETE_TAG] == "true"
    assert parents[key].info.run_id == parent.info.run_id  # logged into the run it started
    # Rerunning logs nothing twice.
    assert run_nightly(launch_of(dataset, results, "experiment=nightly")) == 0
    assert len(parent_runs(results)) == 2


def test_a_server_down_at_the_start_defers_logging_and_exits_69(dataset, results):
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    command = [
        sys.executable, "-m", "sweep", "task=imagefolder", f"task.root={dataset}",
        f"results_dir={results}", *FAST, "experiment=nightly", f"tracking.uri={uri}",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == LOGGING_DEFERRED_EXIT, result.stderr[-2000:]
    assert "cells: 4 total, 4 reused, 0 newly run, 0 failed" in result.stdout
    assert "MLflow: deferred (tracking.uri: no MLflow server answers" in result.stdout
    [marker] = (results / PENDING_FOLDER).glob("*.json")
    assert json.loads(marker.read_text())["uri"] == uri


# A full disk ------------------------------------------------------------------------------


def test_a_full_disk_during_encode_names_the_path_and_leaves_nothing_half_written(
    dataset, results, monkeypatch, capsys
):
    import sweep.stages.encode as encode_module

    encode_image = encode_module.encode_image

    def disk_full(setting, index, item, root, codec, pack, *args, **kwargs):
        if setting == "10":
            pack.append(b"half an ima")  # the shard's pack, in the folder being written
            raise OSError(errno.ENOSPC, "No space left on device")
        return encode_image(setting, index, item, root, codec, pack, *args, **kwargs)

    monkeypatch.setattr(encode_module, "encode_image", disk_full)
    store = results / "store"
    sweep = sweep_of(dataset, results, "grid.test=[original,10]")
    with pytest.raises(StoreError) as full:
        run_sweep(sweep)
    message = str(full.value)
    assert f"no space left to write {store / 'encode-shards'}" in message
    assert "Free space" in message and "rerun the same command" in message
    assert not list(store.rglob("*.tmp-*"))
    # Every pack left in the store is a published shard's, with its whole manifest.
    for pack in store.rglob("pack.bin"):
        manifest = json.loads((pack.parent / "DONE").read_text())
        assert manifest["files"]["pack.bin"]["size"] == pack.stat().st_size
    # No shard of the failed encode was published, nor the encode.
    published = {p.parent.parent.name for p in store.glob("encode-shards/*/*/DONE")}
    assert published <= {p.parent.name for p in store.glob("encode/*/DONE")}
    with pytest.raises(SystemExit) as exited:
        run_reporting_errors(lambda: run_sweep(sweep))
    assert exited.value.code == 1 and "no space left" in capsys.readouterr().err

    # Space freed: the same command completes, reusing what was finished.
    monkeypatch.undo()
    assert (
        run_nightly(launch_of(dataset, results, "grid.test=[original,10]", "experiment=nightly"))
        == 0
    )
    said = capsys.readouterr().out
    assert "cells: 4 total, 2 reused, 2 newly run, 0 failed" in said


def test_a_full_disk_in_the_store_helpers(tmp_path):
    store = ArtifactStore(tmp_path)
    with pytest.raises(StoreError, match=r"no space left to write .*train/abc"):
        with store.writing("train", "abc") as out:
            (out / "model.pt").write_text("half")
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
    assert not store.path("train", "abc").exists() and list((tmp_path / "train").iterdir()) == []

    def full(staging: Path) -> None:
        staging.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(StoreError, match=str(tmp_path / "report.csv")):
        atomic_write(tmp_path / "report.csv", full)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train"]


def test_a_store_error_of_a_ray_task_carries_its_message():
    from ray.exceptions import RayTaskError

    error = RayTaskError("encode_shard", "Traceback ...", StoreError("no space left to write X"))
    assert describe_failure(error) == "StoreError: no space left to write X"


# The summary and the changes ------------------------------------------------------------


def test_a_failed_nightly_run_exits_1_with_its_summary(dataset, results, monkeypatch, capsys):
    from tests.conftest import record_calls

    def broken(stage):
        raise RuntimeError(f"CUDA error on {stage.encode.setting}")

    record_calls(monkeypatch, "evaluate", "run", broken)
    sweep = launch_of(dataset, results, "grid.test=[original,10]", "experiment=nightly")
    with pytest.raises(SystemExit) as exited:
        run_reporting_errors(lambda: run_nightly(sweep))
    said = capsys.readouterr().err
    assert exited.value.code == 1 and "nightly run failed: RuntimeError: CUDA error" in said
    assert "cells: 4 total, 2 reused, 0 newly run, 2 failed" in said
    [record] = (results / "nightly" / "imagefolder_vit_tiny_jxl" / "runs").glob("*.json")
    assert json.loads(record.read_text())["cells"]["failed"] == 2


def test_a_nightly_run_reports_new_and_moved_cells(dataset, results, capsys):
    first = run_nightly(launch_of(dataset, results, "experiment=nightly"))
    assert first == 0 and "first nightly run: 4 cells" in capsys.readouterr().out
    snapshot = results / "nightly" / "imagefolder_vit_tiny_jxl" / "last_results.csv"
    rows = read_rows(snapshot)
    # As if the last run had measured original/4 far above its interval today.
    moved = next(r for r in rows if (r["train_setting"], r["test_setting"]) == ("original", "4"))
    high = float(moved["ci_high"])
    moved |= {"value": str(high + 0.2), "ci_low": str(high + 0.1), "ci_high": str(high + 0.3)}
    with snapshot.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    # Tonight's grid has a new test setting: its cells are new, the others reused.
    code = run_nightly(
        launch_of(dataset, results, "experiment=nightly", "grid.test=[original,4,10]")
    )
    said = capsys.readouterr().out
    assert code == 0
    assert "cells: 6 total, 4 reused, 2 newly run, 0 failed" in said
    assert "2 new cell(s), 0 gone, 1 moved beyond their intervals, 3 unchanged" in said
    assert "moved down: accuracy train=original test=4 seed=0" in said
    [report] = [
        p for p in (results / "reports").glob("imagefolder_*")
        if len(read_rows(p / "results.csv")) == 6
    ]  # fmt: skip
    changes = json.loads((report / "changes.json").read_text())
    assert {(c["train_setting"], c["test_setting"]) for c in changes["new_cells"]} == {
        ("original", "10"), ("4", "10"),
    }  # fmt: skip
    [move] = changes["moved_cells"]
    assert move["outside_previous_interval"] and move["outside_new_interval"]
    assert move["direction"] == "down"
    assert "## Moved" in (report / "changes.md").read_text()
    [parent] = [p for p in parent_runs(results) if p.data.tags["sweep.key"] == sweep_key(report)]
    assert parent.data.metrics["nightly/new_cells"] == 2
    assert parent.data.metrics["nightly/moved_cells"] == 1
    assert parent.data.metrics["nightly/cells_run"] == 2
    client = MlflowClient(f"sqlite:///{results}/mlflow.db")
    logged = [a.path for a in client.list_artifacts(parent.info.run_id, "nightly")]
    assert logged == ["nightly/changes.json", "nightly/changes.md"]
    # The snapshot moved on: the next run finds nothing new.
    run_nightly(launch_of(dataset, results, "experiment=nightly", "grid.test=[original,4,10]"))
    assert "0 new cell(s), 0 gone, 0 moved beyond their intervals, 6 unchanged" in (
        capsys.readouterr().out
    )


def row(train: str, test: str, value: float, low: float | None, high: float | None) -> dict:
    bounds = {
        "ci_low": "" if low is None else str(low),
        "ci_high": "" if high is None else str(high),
    }
    return {
        "metric": "accuracy", "train_setting": train, "test_setting": test, "seed": "0",
        "value": str(value), **bounds,
    }  # fmt: skip


def test_values_move_beyond_their_intervals_either_way_or_beyond_the_tolerance():
    previous = [
        row("original", "original", 0.80, 0.75, 0.85),
        row("original", "4", 0.70, 0.65, 0.75),  # a new value inside: unchanged
        row("4", "original", 0.60, 0.50, 0.70),  # new interval tight and away from 0.60
        row("4", "4", 0.50, None, None),
        row("4", "15", 0.40, None, None),  # gone
    ]
    current = [
        row("original", "original", 0.90, 0.86, 0.94),  # above the previous interval
        row("original", "4", 0.72, 0.68, 0.76),
        row("4", "original", 0.68, 0.66, 0.69),
        row("4", "4", 0.5001, None, None),
        row("15", "4", 0.3, 0.2, 0.4),  # new
    ]
    changes = compare_results(previous, current, tolerance=0.001)
    moved = {(m["train_setting"], m["test_setting"]): m for m in changes["moved_cells"]}
    assert set(moved) == {("original", "original"), ("4", "original")}
    assert moved["original", "original"]["outside_previous_interval"]
    assert moved["original", "original"]["direction"] == "up"
    assert not moved["4", "original"]["outside_previous_interval"]
    assert moved["4", "original"]["outside_new_interval"]
    assert [c["test_setting"] for c in changes["gone_cells"]] == ["15"]
    assert [c["train_setting"] for c in changes["new_cells"]] == ["15"]
    assert len(changes["unchanged_cells"]) == 2
    # Without intervals, any change beyond the tolerance.
    strict = compare_results(previous, current, tolerance=0.0)
    assert ("4", "4") in {(m["train_setting"], m["test_setting"]) for m in strict["moved_cells"]}
    # A first run: every cell is new.
    assert len(compare_results(None, current, 0.0)["new_cells"]) == 5
