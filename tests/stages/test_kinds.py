"""The table of stage kinds: complete, ordered, and the only place keys are made."""

from __future__ import annotations

import pytest

from sweep.stages.kind import ResourceNeeds, StageKind, digest
from sweep.stages.table import STAGE_KINDS


@pytest.mark.parametrize("name", list(STAGE_KINDS))
def test_every_kind_comes_after_the_kinds_it_reads(name):
    order = list(STAGE_KINDS)
    kind = STAGE_KINDS[name]
    assert kind.name == name
    for upstream in kind.inputs:
        assert upstream in STAGE_KINDS, f"{name} reads unknown kind {upstream}"
        assert order.index(upstream) < order.index(name)


@pytest.mark.parametrize("name", list(STAGE_KINDS))
def test_every_kind_declares_its_workers_folders_and_resources(name):
    kind = STAGE_KINDS[name]
    assert callable(kind.run) and callable(kind.read)
    assert kind.sharded == (kind.shard_folder is not None)
    for needs in (ResourceNeeds(), ResourceNeeds(loader_workers=3, has_gpu=True)):
        assert kind.resources(needs)["num_cpus"] >= 1
    # Ray names a worker's process after its function: the reliability harness finds it so.
    assert kind.task_name == (kind.shard or kind.run_group or kind.run).__name__
    assert set(kind.flat_fields) <= set(kind.key_fields)
    assert set(kind.optional_fields) <= set(kind.key_fields)


def test_store_folders_are_distinct():
    folders = [k.name for k in STAGE_KINDS.values()]
    folders += [k.shard_folder for k in STAGE_KINDS.values() if k.shard_folder]
    assert len(folders) == len(set(folders))


def test_a_key_takes_exactly_the_declared_fields():
    kind = StageKind("demo", 3, (), ("a", "b"), run=print, read=print)
    assert kind.key(a=1, b=[2]) == digest({"stage": "demo", "schema": 3, "a": 1, "b": [2]})
    with pytest.raises(TypeError, match=r"takes the fields \['a', 'b'\]"):
        kind.key(a=1)
    with pytest.raises(TypeError):
        kind.key(a=1, b=2, c=3)


def test_flat_fields_keep_the_keys_of_stores_written_before_the_table():
    """The encode key as schema 4 computes it (3's, with packed shards): codec identity at the
    top level, and never the dataset's place (records name dataset files relative to it)."""
    encode = STAGE_KINDS["encode"]
    codec = {"codec": "jxl", "library": "libjxl 0.11.2", "setting": "4"}
    flat = {"stage": "encode", "schema": 4, "split": "train", "dataset": "d", **codec}
    assert encode.key(split="train", dataset="d", codec=codec) == digest(flat)
    with pytest.raises(TypeError, match="takes the fields"):
        encode.key(split="train", dataset="d", codec=codec, root="/data")


def test_optional_fields_are_left_out_when_none():
    kind = StageKind("demo", 1, (), ("a", "b"), run=print, read=print, optional_fields=("b",))
    assert kind.key(a=1, b=None) == digest({"stage": "demo", "schema": 1, "a": 1})
    assert kind.key(a=1, b=2) == digest({"stage": "demo", "schema": 1, "a": 1, "b": 2})


def test_schema_is_part_of_every_key():
    base = StageKind("demo", 1, (), ("a",), run=print, read=print)
    bumped = StageKind("demo", 2, (), ("a",), run=print, read=print)
    assert base.key(a=1) != bumped.key(a=1)


@pytest.mark.parametrize("name", list(STAGE_KINDS))
def test_each_kind_module_has_one_stage_class_of_its_name(name):
    import importlib

    from sweep.stages.kind import Stage

    module = importlib.import_module(f"sweep.stages.{name}")
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, Stage)
        and value.__module__ == module.__name__
    ]
    assert [cls.kind for cls in classes] == [name]
    assert module.KIND is STAGE_KINDS[name]
