"""A whole sweep with results_dir=s3://... against moto's S3 server on loopback: the same
results as on a local disk, a rerun that does no stage work, packed shards (objects per stage,
not per image), and a server that dies mid-encode."""

from __future__ import annotations

import json

import pytest

from sweep.config.build import build_sweep
from sweep.stages.shards import shard_ranges
from sweep.stages.table import STAGE_KINDS
from sweep.store import StoreError
from tests.conftest import FAST_SWEEP, compose_config, record_calls, run_sweep
from tests.s3_server import start_s3_server


def sweep_into(results_dir, imagefolder, tmp_path, *overrides):
    return build_sweep(
        compose_config(
            "task=imagefolder",
            f"task.root={imagefolder}",
            f"results_dir={results_dir}",
            f"local_dir={tmp_path / 'local'}",
            f"store.cache_dir={tmp_path / 'cache'}",
            "cluster=inline",
            "cluster.torch_threads=1",
            "tracking=none",
            *FAST_SWEEP,
            *overrides,
        )
    )


def refuse_every_stage(monkeypatch):
    def refuse(stage):
        raise AssertionError(f"a finished {stage.kind} stage ran again")

    for name, kind in STAGE_KINDS.items():
        for role in ("run", "shard") if kind.sharded else ("run",):
            record_calls(monkeypatch, name, role, refuse)


@pytest.mark.slow
def test_a_sweep_on_s3_equals_the_local_one_and_its_rerun_does_no_work(
    s3_server, imagefolder, tmp_path, monkeypatch
):
    local = run_sweep(sweep_into(tmp_path / "disk", imagefolder, tmp_path / "d"))
    url = f"{s3_server.url}/sweep"
    report = run_sweep(sweep_into(url, imagefolder, tmp_path))
    assert (report / "results.csv").read_text() == (local / "results.csv").read_text()
    # The report is uploaded beside the store.
    fs = s3_server.filesystem()
    uploaded = f"{s3_server.bucket}/sweep/reports/{report.name}/results.csv"
    assert fs.cat_file(uploaded) == (report / "results.csv").read_bytes()
    # Packed: no object per image. 18 train and 9 test images at setting 4 are 2 packs.
    objects = s3_server.objects("sweep/store")
    assert not [o for o in objects if o.endswith(".jxl")]
    assert len([o for o in objects if o.endswith("/pack.bin")]) == 2
    # Nothing but published outputs: every payload is named by its output's manifest.
    assert all("payload-" in o or o.endswith("/DONE") for o in objects)

    # The rerun, from a fresh node cache: no stage runs, the same report.
    refuse_every_stage(monkeypatch)
    again = run_sweep(
        sweep_into(url, imagefolder, tmp_path, f"store.cache_dir={tmp_path / 'cache2'}")
    )
    assert (again / "results.csv").read_text() == (report / "results.csv").read_text()


@pytest.mark.slow
def test_the_server_dying_mid_encode_names_the_store_and_the_rerun_loses_nothing(
    s3_server, imagefolder, tmp_path, monkeypatch
):
    url = f"{s3_server.url}/sweep"
    shards_done = []

    def stop_after_two(stage):
        if len(shards_done) == 2:
            s3_server.stop()  # the server goes away between two shards
        shards_done.append(stage.key)

    with monkeypatch.context() as patched:
        record_calls(patched, "encode", "shard", stop_after_two)
        sweep = sweep_into(url, imagefolder, tmp_path, "cluster.encode_shard_size=5")
        with pytest.raises(StoreError) as raised:
            run_sweep(sweep)
    assert url in str(raised.value) and "AWS_ENDPOINT_URL_S3" in str(raised.value)

    # The same bucket comes back (moto keeps its state in this process) at a new port.
    revived = start_s3_server(monkeypatch, bucket=s3_server.bucket)
    objects = revived.objects("sweep/store")
    done = {o.rsplit("/", 1)[0] for o in objects if o.endswith("/DONE")}
    assert len([d for d in done if "/encode-shards/" in d]) == 2  # the two published shards
    # No stage is half published: every manifest names files that are all there, and every
    # other object lies under a writer's payload prefix (never read without a manifest).
    fs = revived.filesystem()
    for output in done:
        manifest = json.loads(fs.cat_file(f"{output}/DONE"))
        for name, entry in manifest["files"].items():
            assert fs.size(f"{output}/{manifest['payload']}/{name}") == entry["size"]
    assert all(o.endswith("/DONE") or "/payload-" in o for o in objects)
    reencoded = []
    record_calls(monkeypatch, "encode", "shard", reencoded.append)
    try:
        report = run_sweep(sweep_into(url, imagefolder, tmp_path, "cluster.encode_shard_size=5"))
    finally:
        revived.stop()
    assert (report / "results.csv").is_file()
    # Shards of the train and the test split, at original (records only) and at 4.
    encodes = 2 * (len(shard_ranges(18, 5)) + len(shard_ranges(9, 5)))
    assert len(reencoded) == encodes - 2  # the published shards were kept


@pytest.mark.slow
def test_a_dataset_in_the_bucket_sweeps_as_its_copy_on_disk_and_reruns_nothing(
    s3_server, imagefolder, tmp_path, monkeypatch
):
    """task.root=s3://...: the same results as the disk's copy; and, the dataset's content being
    its identity, the bucket's copy reuses every stage the disk's copy finished."""
    s3_server.filesystem().put(str(imagefolder), f"{s3_server.bucket}/data", recursive=True)
    results = tmp_path / "results"
    on_disk = run_sweep(sweep_into(results, imagefolder, tmp_path))
    # From nothing: every stage reads the bucket's images (validate, encode, train, evaluate).
    fresh = run_sweep(sweep_into(tmp_path / "fresh", f"{s3_server.url}/data", tmp_path))
    assert (fresh / "results.csv").read_text() == (on_disk / "results.csv").read_text()
    refuse_every_stage(monkeypatch)
    in_bucket = run_sweep(sweep_into(results, f"{s3_server.url}/data", tmp_path))
    assert (in_bucket / "results.csv").read_text() == (on_disk / "results.csv").read_text()
