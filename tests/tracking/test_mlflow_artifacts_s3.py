"""A team's MLflow server keeping its artifacts in an S3 bucket (moto on loopback), and a sweep
that logs through it with no credentials of its own: the server holds the AWS environment, the
client uploads to the server (`mlflow-artifacts:`), the server writes into the bucket."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import FAST_SWEEP
from tests.test_mlflow_server import free_port, serving

REPO = Path(__file__).resolve().parents[2]
DESTINATION = "mlartifacts"


def without_credentials(home: Path) -> dict[str, str]:
    """This process's environment without any AWS_* variable (or MLflow's S3 endpoint), and a
    HOME with no ~/.aws: a client that could not reach the bucket even if it tried."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name != "MLFLOW_S3_ENDPOINT_URL"
    }
    home.mkdir()
    return environment | {"HOME": str(home)}


@pytest.mark.slow
def test_a_sweep_without_credentials_logs_artifacts_into_the_servers_bucket(
    imagefolder, tmp_path, s3_server, monkeypatch
):
    # The server's environment: the fixture's AWS_* variables (set in this process) and
    # MLflow's own name for the endpoint, as a team's server would have them.
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_server.endpoint)
    destination = f"{s3_server.url}/{DESTINATION}"
    arguments = [
        "server", "--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db",
        "--artifacts-destination", destination, "--workers", "1",
    ]  # fmt: skip
    with serving(arguments, free_port()) as url:
        command = [
            sys.executable, "-m", "sweep", "task=imagefolder", f"task.root={imagefolder}",
            f"results_dir={tmp_path / 'results'}", "cluster=inline", "cluster.torch_threads=1",
            "distortion.enabled=false", "sensitivity=off", f"tracking.uri={url}", *FAST_SWEEP,
        ]  # fmt: skip
        done = subprocess.run(
            command,
            cwd=REPO,
            env=without_credentials(tmp_path / "home"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]

        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("sweep-imagefolder")
        assert experiment.artifact_location.startswith("mlflow-artifacts:")
        [parent] = [
            run
            for run in client.search_runs([experiment.experiment_id])
            if "sweep.key" in run.data.tags
        ]
        assert parent.info.status == "FINISHED"
        # Listed and read back through the server.
        names = [a.path for a in client.list_artifacts(parent.info.run_id)]
        assert "results.csv" in names and "recommendation.json" in names
        local = client.download_artifacts(parent.info.run_id, "results.csv", str(tmp_path))
        listed = Path(local).read_text()
        assert listed.startswith("task,model,codec")

    # The objects lie in the bucket under the destination prefix, under the run's id.
    objects = s3_server.objects(DESTINATION)
    run = f"{s3_server.bucket}/{DESTINATION}/{experiment.experiment_id}/{parent.info.run_id}"
    stored = f"{run}/artifacts/results.csv"
    assert stored in objects, objects
    assert f"{run}/artifacts/recommendation.json" in objects
    with s3_server.filesystem().open(stored, "r") as stream:
        assert stream.read() == listed
    # Nothing went beside the sweep's results or into the bucket outside the prefix.
    assert not (tmp_path / "results" / DESTINATION).exists()
    assert all(key.startswith(f"{s3_server.bucket}/{DESTINATION}/") for key in s3_server.objects())
