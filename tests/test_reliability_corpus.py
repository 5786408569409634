"""The reliability corpus: imagefolder layout, one bad file per kind, deterministic bytes."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from PIL import Image

from reliability.corpus import (
    CLASSES,
    CONVERTED,
    KEPT,
    QUARANTINED,
    TEST_PER_CLASS,
    TRAIN_PER_CLASS,
    bad_kinds,
    can_make_unreadable,
    write_corpus,
)
from sweep.data.base import is_image_file


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("corpus")
    return root, write_corpus(root)


# The ordinary images are numbered; every other name is a bad file.
ORDINARY = re.compile(r"\d{3}\.jpg")


def is_ordinary(relpath: str | Path) -> bool:
    return ORDINARY.fullmatch(Path(relpath).name) is not None


def all_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_layout_is_an_imagefolder(corpus):
    root, expected = corpus
    assert sorted(p.name for p in root.iterdir()) == ["test", "train"]
    for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(CLASSES)
        for name in CLASSES:
            ordinary = [p for p in (root / split / name).iterdir() if is_ordinary(p)]
            assert len(ordinary) == count
    # Every file sits in a class folder of a split, with a suffix the readers list.
    for relpath in all_files(root):
        split, name, _ = relpath.split("/")
        assert split in ("train", "test") and name in CLASSES
        assert is_image_file(root / relpath)


def test_every_file_exists_and_every_bad_one_is_expected(corpus):
    root, expected = corpus
    for relpath in expected:
        assert (root / relpath).is_file()
    bad_on_disk = [p for p in all_files(root) if not is_ordinary(p)]
    assert sorted(bad_on_disk) == sorted(expected)
    kinds = {outcome.split(":", 1)[1] for outcome in expected.values()}
    wanted = set(bad_kinds()) - (set() if can_make_unreadable() else {"unreadable"})
    assert kinds == wanted
    # Bad files are spread over both splits.
    assert {relpath.split("/")[0] for relpath in expected} == {"train", "test"}


def test_converted_files_open_and_quarantined_ones_do_not(corpus):
    root, expected = corpus
    for relpath, outcome in expected.items():
        sort, kind = outcome.split(":", 1)
        path = root / relpath
        if sort in (CONVERTED, KEPT):
            with Image.open(path) as image:
                image.load()
                assert image.width >= 1 and image.height >= 1
        else:
            assert sort == QUARANTINED
            if path.stat().st_size == 0:
                continue
            with pytest.raises(Exception):  # noqa: B017,PT011 - each kind fails its own way
                with Image.open(path) as image:
                    image.load()


def test_ordinary_images_open_as_64x64_rgb(corpus):
    root, _ = corpus
    path = root / "train" / CLASSES[0] / "000.jpg"
    with Image.open(path) as image:
        assert image.mode == "RGB" and image.size == (64, 64)


def test_oddities_have_their_kind(corpus):
    root, expected = corpus
    by_kind = {outcome.split(":", 1)[1]: root / path for path, outcome in expected.items()}
    with Image.open(by_kind["format_mismatch"]) as image:
        assert image.format == "PNG" and by_kind["format_mismatch"].suffix == ".JPEG"
    modes = {"cmyk": "CMYK", "grayscale": "L", "16bit": "I;16", "palette": "P", "alpha": "RGBA"}
    for kind, mode in modes.items():
        with Image.open(by_kind[kind]) as image:
            assert image.mode == mode, kind
    with Image.open(by_kind["exif_orientation"]) as image:
        assert image.getexif()[0x0112] == 6
    with Image.open(by_kind["extreme_aspect"]) as image:
        assert image.size == (500, 32)
    with Image.open(by_kind["progressive"]) as image:
        assert image.info.get("progressive")
    data = by_kind["trailing_bytes"].read_bytes()
    assert data.endswith(b"\xff\xd9") and data[-130:-2] == bytes(range(16)) * 8
    tiny = sorted(
        Image.open(root / path).size
        for path, outcome in expected.items()
        if outcome.endswith("tiny")
    )
    assert tiny == [(1, 1), (20, 17)]
    assert len(by_kind["decompression_bomb"].read_bytes()) < 200


def test_unreadable_only_when_permissions_apply(corpus):
    root, expected = corpus
    unreadable = [path for path, outcome in expected.items() if outcome.endswith(":unreadable")]
    if can_make_unreadable():
        assert len(unreadable) == 1 and not os.access(root / unreadable[0], os.R_OK)
    else:
        assert unreadable == []


def test_writes_are_deterministic(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert write_corpus(first) == write_corpus(second)
    assert all_files(first) == all_files(second)
    for relpath in all_files(first):
        if not os.access(first / relpath, os.R_OK):
            continue  # the unreadable file; its twin is compared by size
        assert (first / relpath).read_bytes() == (second / relpath).read_bytes(), relpath
    # Rewriting a folder (the unreadable file included) works and gives the same map.
    assert write_corpus(first) == write_corpus(second)


def test_good_only_corpus_has_no_bad_files(tmp_path):
    assert write_corpus(tmp_path, bad=False) == {}
    assert all(is_ordinary(p) for p in all_files(tmp_path))


# The harness's pure helpers (the harness itself runs as `make reliability`).


def test_targets_hit_every_stage_equally(tmp_path):
    from reliability.stage_targets import kill_targets
    from reliability.trials import Harness

    harness = Harness(tmp_path, epochs=1, timeout=1, seed=3)
    harness.kinds = stages = kill_targets()[1:]  # the kinds a sweep plans
    count = 3 * len(stages) + 1
    order = harness.targets(count)
    assert sorted(order) == sorted([*stages * 3, stages[0]])


def test_worker_titles_are_the_functions_the_executor_hands_ray():
    from reliability.stage_targets import kill_at_once, task_titles
    from sweep.stages.table import STAGE_KINDS

    # Grouped evaluation: every evaluation runs in its group's task, never in evaluate_stage.
    assert task_titles("evaluate") == ("ray::evaluate_group",) and kill_at_once("evaluate")
    assert task_titles("encode") == ("ray::encode_shard", "ray::finalize_encode")
    assert task_titles("train") == ("ray::train_stage",) and not kill_at_once("train")
    for kind in STAGE_KINDS.values():
        roles = {"group"} if kind.grouped else {"shard", "run"} if kind.sharded else {"run"}
        assert set(kind.ray_workers) == roles, kind.name


def test_coverage_names_each_planned_kind_left_without_a_survived_kill():
    from reliability.stage_targets import coverage_problems, not_in_sweep

    planned = ("encode", "train")
    assert coverage_problems(planned, ["encode", "train"], ["train", "encode"]) == []
    assert coverage_problems(planned, ["encode"], ["encode", "train"]) == [
        "train: planned but no driver kill in it survived"
    ]
    assert "decoded" in not_in_sweep(planned) and "train" not in not_in_sweep(planned)


def test_targets_are_the_sweeps_stage_kinds_from_the_table():
    from reliability.stage_targets import kill_targets, store_patterns, task_title
    from sweep.stages.table import STAGE_KINDS

    assert set(kill_targets()) == {n for n, k in STAGE_KINDS.items() if k.plan is not None}
    assert {"encode", "train", "evaluate"} <= set(kill_targets())
    assert task_title("train") == "ray::train_stage"
    assert store_patterns("encode") == ("encode-shards/*/*", "encode/*")


def test_store_inspection_tells_writing_from_finished(tmp_path):
    from reliability.results_folder import (
        finished_outputs,
        stage_progress,
        stage_writers,
        temporaries,
    )

    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "DONE").write_text("{}")
    (tmp_path / "train" / "b.tmp-host-4242-abcd").mkdir()
    (tmp_path / "train" / "b.tmp-host-4242-abcd" / "DONE").write_text("{}")  # not yet renamed
    (tmp_path / "encode-shards" / "k" / "00000000-00000010").mkdir(parents=True)
    (tmp_path / "encode-shards" / "k" / "00000000-00000010" / "DONE").write_text("{}")
    progress = stage_progress(tmp_path)
    assert progress["encode"] == (0, 1) and progress["train"] == (1, 1)
    assert progress["evaluate"] == (0, 0)
    assert sorted(finished_outputs(tmp_path)) == ["encode-shards/k/00000000-00000010", "train/a"]
    assert stage_writers(tmp_path, "train") == {4242}
    assert temporaries(tmp_path) == ["train/b.tmp-host-4242-abcd"]


def test_policy_check_compares_reports_with_the_corpus():
    from reliability.checks import Reference, check_policy

    expected = {
        "train/red/empty.jpg": "quarantined:empty",
        "test/red/cmyk.jpg": "converted:cmyk",
    }
    files = {
        "results.csv": b"",
        "quarantine.csv": b"split,path,reason\ntrain,train/red/empty.jpg,empty file\n",
        "conversions.csv": b"split,path,kinds\ntest,test/red/cmyk.jpg,cmyk;tiny\n",
    }
    assert check_policy(Reference(files, 0.0), expected) == []
    files["conversions.csv"] = b"split,path,kinds\ntest,test/red/cmyk.jpg,grayscale\n"
    assert check_policy(Reference(files, 0.0), expected) == [
        "conversions.csv gives test/red/cmyk.jpg kinds ['grayscale'], not cmyk"
    ]


def test_a_killed_run_leaves_no_process_behind(tmp_path):
    import time

    from reliability.processes import SweepRun, is_running

    # A parent with a child in its group and a grandchild that leaves it (setsid): the kill
    # must reach both, the second through the process tree sampled before the kill.
    script = "sleep 60 & setsid sleep 60 & wait"
    run = SweepRun(["sh", "-c", script], tmp_path / "tree")
    deadline = time.monotonic() + 10
    while len(run.family()) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    family = run.family()
    assert len(family) == 3
    assert run.kill() == []
    assert not any(is_running(proc.ident) for proc in family.values())


def test_logging_errors_of_a_full_disk_are_no_traceback_of_the_sweep():
    from reliability.faults import without_logging_errors

    stderr = (
        "--- Logging error ---\nTraceback (most recent call last):\nOSError: [Errno 28]\n"
        "Arguments: ('x',)\nerror: no space left to write /d/store/a: No space left\n"
    )
    assert (
        without_logging_errors(stderr) == "error: no space left to write /d/store/a: No space left"
    )
    crash = "Traceback (most recent call last):\nKeyError: 'a'\n"
    assert "Traceback" in without_logging_errors(crash)


def test_a_sweep_that_reports_its_failure_is_told_from_an_uncaught_traceback():
    from reliability.faults import reported_itself

    logged = "ERROR mlflow: caught\nTraceback (most recent call last):\nOperationalError\n"
    assert reported_itself(logged + "error: no space left to write /d/a: No space left\n")
    uncaught = "error: a task failed\nTraceback (most recent call last):\nKeyError: 'a'\n"
    assert not reported_itself(uncaught)
    assert not reported_itself("Traceback (most recent call last):\nOSError: [Errno 28]\n")
