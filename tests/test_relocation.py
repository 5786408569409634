"""Keys that survive a move: a dataset moved (or re-synced) to another place, every file's time
changed, reuses every finished stage of the same results store, and reads its files at the
new place."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

from sweep.config.build import build_sweep
from sweep.session.planning import plan_sweep, screen
from sweep.stages.encode import encoded_files
from sweep.stages.table import STAGE_KINDS
from sweep.store.locations import split_location
from tests.conftest import FAST_SWEEP, compose_config, record_calls, run_sweep
from tests.data.test_digests import count_hashes
from tests.data.test_voc_seg import write_voc_seg
from tests.test_segmentation_sweep import FAST_SEGMENTATION

LATER_NS = 2_000_000_000 * 10**9


def move_and_touch(root: Path, to: Path) -> Path:
    """Moves a dataset (the old place is gone) and sets every file's times to one new time."""
    moved = Path(shutil.move(root, to))
    for path in moved.rglob("*"):
        if path.is_file():
            os.utime(path, ns=(LATER_NS, LATER_NS))
    return moved


def refuse_all_stage_work(monkeypatch) -> None:
    def refuse(stage):
        raise AssertionError(f"a finished {stage.kind} stage ran again after the move")

    # Every worker of every kind, validation and measuring included.
    for name, kind in STAGE_KINDS.items():
        for role in ("run", "shard") if kind.sharded else ("run",):
            record_calls(monkeypatch, name, role, refuse)


def finished_plan(sweep):
    """The plan a run of the sweep works on (over the screened images)."""
    return plan_sweep(sweep, screen(sweep))


def read_rows(report: Path) -> list[dict]:
    with (report / "results.csv").open() as stream:
        return list(csv.DictReader(stream))


def imagefolder_sweep(root: Path, results: Path, *overrides: str):
    return build_sweep(
        compose_config(
            "task=imagefolder",
            f"task.root={root}",
            f"results_dir={results}",
            "cluster=inline",
            "cluster.torch_threads=1",
            "tracking=none",
            *FAST_SWEEP,
            *overrides,
        )
    )


def test_a_moved_and_touched_dataset_reuses_every_stage(imagefolder, tmp_path, monkeypatch):
    results = tmp_path / "results"
    first = run_sweep(imagefolder_sweep(imagefolder, results))
    before = (first / "results.csv").read_text()
    moved = move_and_touch(imagefolder, tmp_path / "mounted" / "elsewhere")

    with monkeypatch.context() as patched:
        refuse_all_stage_work(patched)
        hashed = count_hashes(patched)
        second = run_sweep(imagefolder_sweep(moved, results))
    # Only cheap checks: each file hashed once at its new place; same sweep, same results.
    assert len(hashed) == 27 and all(moved in path.parents for path in hashed)
    assert second == first and (second / "results.csv").read_text() == before

    # The original encodes' records are read at the new place: a new seed trains on them.
    sweep = imagefolder_sweep(moved, results, "seeds=[0,1]")
    for encode in finished_plan(sweep).encodes.values():
        for file in encoded_files(sweep.store, encode):
            assert Path(split_location(file.path)[0]).is_file()
            assert str(imagefolder) not in file.path
    ran = {"train": [], "encode": [], "validate": []}
    for kind in ran:
        record_calls(monkeypatch, kind, "run", lambda stage: ran[stage.kind].append(stage))
    run_sweep(sweep)
    assert sorted((t.setting, t.seed) for t in ran["train"]) == [("4", 1), ("original", 1)]
    assert ran["encode"] == [] and ran["validate"] == []


def test_a_changed_file_re_encodes_its_split_only(imagefolder, tmp_path):
    results = tmp_path / "results"
    before = plan_sweep(imagefolder_sweep(imagefolder, results))
    moved = move_and_touch(imagefolder, tmp_path / "moved")
    same = plan_sweep(imagefolder_sweep(moved, results))
    assert {i: s.key for i, s in same.encodes.items()} == {
        i: s.key for i, s in before.encodes.items()
    }
    assert same.key == before.key  # every evaluation's key, so every training's too
    changed = moved / "train" / "dog" / "2.jpg"
    changed.write_bytes(changed.read_bytes() + b"\0")  # new content, size and time
    after = plan_sweep(imagefolder_sweep(moved, results))
    for (split, setting), stage in after.encodes.items():
        assert (stage.key == before.encodes[(split, setting)].key) == (split == "test")


def test_a_moved_segmentation_dataset_reuses_every_stage_and_reads_its_masks_there(
    tmp_path, monkeypatch
):
    """Masks were the other reason a key held the dataset's root: every encode's records
    point at them."""
    root = write_voc_seg(tmp_path / "VOC2012")
    results = tmp_path / "results"

    def segmentation_sweep(at: Path, *overrides: str):
        return build_sweep(
            compose_config(
                "task=voc_seg",
                f"task.root={at}",
                f"results_dir={results}",
                *FAST_SEGMENTATION,
                "task.kind.resize_short_side=32",
                *overrides,
            )
        )

    first = run_sweep(segmentation_sweep(root))
    moved = move_and_touch(root, tmp_path / "mnt" / "VOC2012")
    with monkeypatch.context() as patched:
        refuse_all_stage_work(patched)
        second = run_sweep(segmentation_sweep(moved))
    assert second == first and read_rows(second) == read_rows(first)

    sweep = segmentation_sweep(moved, "seeds=[0,1]")
    for encode in finished_plan(sweep).encodes.values():
        files = encoded_files(sweep.store, encode)
        assert files and all(Path(file.mask).is_file() for file in files)
        assert all(Path(file.mask).is_relative_to(moved) for file in files)
    trained = []
    record_calls(monkeypatch, "train", "run", lambda stage: trained.append(stage.seed))
    run_sweep(sweep)  # seed 1 trains on the moved images and masks
    assert trained == [1, 1]
