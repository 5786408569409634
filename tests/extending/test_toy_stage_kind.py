"""A stage kind is its module, one table entry and its tests: a toy kind, written to a
temporary module and added to the table, is planned, run, resumed, indexed, billed and made a
kill target with no edit anywhere else."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import pytest

from sweep.config.build import build_launch
from sweep.experiments.bill.experiment import bill_of
from sweep.experiments.bill.pricing import format_bill
from sweep.stages.table import STAGE_KINDS
from tests.conftest import FAST_SWEEP, compose_config, run_sweep

# A kind that counts each test encode's bytes: it reads the encodes, writes summary.json.
TOY_KIND = '''
"""Counts the encoded bytes of each test setting (a toy kind for tests/extending/)."""

import json
from dataclasses import dataclass

from sweep.stages.billing import BillScope
from sweep.stages.encode import EncodeStage, encoded_files
from sweep.stages.graph import PlanInputs, SweepPlan
from sweep.stages.kind import Cost, Stage, StageContext, StageKind

NAME = "bytecount"


@dataclass(frozen=True)
class ByteCountStage(Stage):
    kind = NAME
    encode: EncodeStage

    def upstream(self):
        return (self.encode,)


def plan_counts(plan: SweepPlan, inputs: PlanInputs) -> None:
    for setting in plan.test_settings:
        encode = plan.encodes[("test", setting)]
        plan.add(ByteCountStage(KIND.key(encode=encode.key), encode), setting)


def count_bytes(context: StageContext, stage: ByteCountStage, *upstream) -> dict:
    from sweep.store.locations import size_of

    if context.store.is_done(NAME, stage.key):
        return read(context.store, stage)
    files = encoded_files(context.store, stage.encode)
    summary = {"files": len(files), "bytes": sum(size_of(f.path) for f in files)}
    with context.store.writing(NAME, stage.key) as out:
        (out / "summary.json").write_text(json.dumps(summary))
    return summary


def read(store, stage) -> dict:
    return store.read_json(NAME, stage.key, "summary.json")


def bill_counts(stages: list, scope: BillScope) -> Cost:
    return Cost(f"{len(stages)} test settings to count", runs={"counts": len(stages)})


KIND = StageKind(
    name=NAME, schema=1, inputs=("encode",), key_fields=("encode",), run=count_bytes,
    read=read, plan=plan_counts, bill=bill_counts,
)
'''


@pytest.fixture
def toy_kind(tmp_path, monkeypatch):
    """The toy kind's module, importable, and its one entry in the table."""
    (tmp_path / "toy_kind.py").write_text(textwrap.dedent(TOY_KIND))
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("toy_kind")
    monkeypatch.setitem(STAGE_KINDS, module.NAME, module.KIND)
    yield module
    sys.modules.pop("toy_kind", None)


def test_a_toy_stage_kind_plugs_in_with_one_table_entry(toy_kind, imagefolder, tmp_path):
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={imagefolder}",
        f"results_dir={tmp_path / 'results'}",
        "cluster=inline",
        "tracking=none",
        "sensitivity=off",
        "distortion.enabled=false",
        *FAST_SWEEP,
    )
    launched = build_launch(cfg)
    sweep = launched.session.sweep
    # The bill counts it before it runs: its own Cost, in the table's order.
    bill = bill_of(launched.session, launched.experiment, calibrate=False)
    assert {c.kind: c.to_run for c in bill.counts}["bytecount"] == 2
    assert "2 test settings to count" in format_bill(bill)
    assert bill.runs["counts"] == 2

    report = run_sweep(sweep)
    index = json.loads((report / "stages.json").read_text())
    assert set(index["bytecount"]) == {"original", "4"}
    for setting, key in index["bytecount"].items():
        summary = sweep.store.read_json("bytecount", key, "summary.json")
        assert summary["files"] == 9 and summary["bytes"] > 0, setting
    # The lossy setting's encode is smaller than the original files.
    sizes = {s: sweep.store.read_json("bytecount", k, "summary.json")["bytes"]
             for s, k in index["bytecount"].items()}  # fmt: skip
    assert sizes["4"] < sizes["original"]

    # Finished, it is never run again; the bill counts it as cached.
    again = bill_of(launched.session, launched.experiment, calibrate=False)
    assert {c.kind: c.cached for c in again.counts}["bytecount"] == 2

    # The reliability harness can aim at it: a kill target, with its worker's title.
    from reliability.stage_targets import kill_targets, task_title

    assert "bytecount" in kill_targets() and task_title("bytecount") == "ray::count_bytes"
