"""benchmarks/storage.py runs end to end on a few images and counts what each layout holds."""

from __future__ import annotations

import pytest

from benchmarks import storage


@pytest.mark.slow
def test_the_storage_benchmark_counts_files_packs_and_objects(monkeypatch):
    monkeypatch.setattr(storage, "SHARD_SIZE", 4)
    figures = storage.run(rounds=1, count=8)
    counts = figures["counts"]
    assert counts["files"]["files"] == 8 and counts["objects_s3"]["objects"] == 8
    # Two shards: a pack, its records and its manifest each, and the merged stage's three.
    assert counts["packed_local"] == {
        "files": 9,
        "packs": 2,
        "bytes": counts["packed_local"]["bytes"],
    }
    assert counts["packed_s3"]["objects"] == 9
    assert figures["layouts"]["packed_s3"]["objects_read"] == 2
    assert all(rates["second"] > 0 for rates in figures["layouts"].values())
    assert "packed_s3" in storage.report(figures)
