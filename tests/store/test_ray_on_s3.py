"""A two-node Ray cluster on this machine whose nodes share no results path: each node has
its own temporary folder (so its own read cache), the sweep's results_dir is an S3 bucket on
loopback, and results.csv equals an inline run's on a local disk."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.engine.test_cluster import (
    inline_results,
    results_of,
    run,
    sweep_command,
    two_node_cluster,
    wait_for_both_nodes,
)
from tests.s3_server import start_s3_server


@pytest.fixture(scope="module")
def s3_module():
    with pytest.MonkeyPatch.context() as patch:
        server = start_s3_server(patch)
        yield server
        server.stop()


@pytest.fixture(scope="module")
def nodes_without_a_shared_path(s3_module, tmp_path_factory):
    temps = {name: Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp")) for name in ("h", "w")}
    s3 = s3_module.environment()
    log = tmp_path_factory.mktemp("ray_logs") / "ray_start.log"
    with two_node_cluster(
        log, head_env=s3 | {"TMPDIR": str(temps["h"])}, worker_env=s3 | {"TMPDIR": str(temps["w"])}
    ) as cluster:
        try:
            yield cluster, temps
        finally:
            for temp in temps.values():
                shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_two_nodes_sweep_into_s3_as_an_inline_run_does(
    nodes_without_a_shared_path, s3_module, imagefolder, tmp_path
):
    cluster, temps = nodes_without_a_shared_path
    before = cluster.finished_tasks()
    grid = ("grid.train=[original,4]", "grid.test=[original,4]")
    url = f"{s3_module.url}/cluster"
    joined = run(
        sweep_command(
            *grid,
            f"task.root={imagefolder}",
            f"results_dir={url}",
            f"local_dir={tmp_path / 'driver'}",
            f"cluster.address={cluster.address}",
        ),
        env=cluster.env | s3_module.environment(),
    )
    assert joined.returncode == 0, joined.stderr[-3000:]
    assert results_of(tmp_path / "driver") == inline_results(imagefolder, tmp_path, grid)
    # Nothing of the store on any node's disk but its own cache; the store is the bucket.
    assert s3_module.objects("cluster/store")
    assert not (tmp_path / "driver" / "store").exists()

    wait_for_both_nodes(cluster, before)
    # Both nodes read the store's objects through their own cache, in their own temp folder
    # (store.cache_dir is null: each node's own).
    for name, temp in temps.items():
        cached = list((temp / "sweep-store-cache" / "objects").rglob("*"))
        assert any(path.is_file() for path in cached), f"node {name} cached nothing"
