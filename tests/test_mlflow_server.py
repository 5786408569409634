"""A sweep logged to a real MLflow tracking server on loopback, artifacts served through it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweep.config.build import build_sweep
from tests.conftest import FAST_SWEEP, compose_config, run_sweep


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(arguments: list[str], port: int) -> Iterator[str]:
    """`python -m mlflow <arguments>` on loopback at `port`, in its own process group, until
    its /health answers; yields its address. At the end the whole group goes (MLflow 3's job
    consumers outlive a SIGTERM to the server, so the group is then killed)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", *arguments, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.time() > deadline:
                    raise RuntimeError(process.stderr.read().decode()[-2000:]) from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def mlflow_server(tmp_path: Path):
    """`mlflow server` as a team runs it (sqlite backend, artifacts served by the server)."""
    root = tmp_path / "server"
    root.mkdir()
    arguments = [
        "server", "--backend-store-uri", f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination", str(root / "artifacts"), "--workers", "1",
    ]  # fmt: skip
    with serving(arguments, free_port()) as url:
        yield url, root / "artifacts"


def test_a_sweep_logs_through_a_tracking_server_and_a_rerun_makes_no_duplicates(
    imagefolder, tmp_path, mlflow_server
):
    url, served = mlflow_server
    sweep = build_sweep(
        compose_config(
            "task=imagefolder",
            f"task.root={imagefolder}",
            f"results_dir={tmp_path / 'results'}",
            "cluster=inline",
            "cluster.torch_threads=1",
            f"tracking.uri={url}",
            *FAST_SWEEP,
        )
    )
    run_sweep(sweep)
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("sweep-imagefolder")
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if "sweep.key" in r.data.tags]
    assert parent.info.status == "FINISHED"
    # Artifacts went through the server into its own folder, not into results_dir.
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    names = [a.path for a in client.list_artifacts(parent.info.run_id)]
    assert "results.csv" in names and "recommendation.json" in names
    assert list(served.rglob("results.csv"))
    assert not (tmp_path / "results" / "mlartifacts").exists()
    local = client.download_artifacts(parent.info.run_id, "results.csv", str(tmp_path))
    assert Path(local).read_text().startswith("task,model,codec")

    run_sweep(sweep)  # the rerun finds its runs by their tags
    assert len(client.search_runs([experiment.experiment_id])) == len(runs)
