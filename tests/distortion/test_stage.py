"""The distortion stage of a sweep: every test image and setting measured, off when turned off,
never re-encoding, never changing an encoded byte."""

from __future__ import annotations

import json

import pytest

from sweep.codecs.base import ORIGINAL
from sweep.config.build import build_sweep
from sweep.distortion import DistortionOptions
from sweep.distortion.butteraugli import find_tool
from sweep.distortion.sampling import sampled_indices
from sweep.engine.execute import execute, is_done
from sweep.errors import OptionError
from sweep.session.planning import plan_sweep, stage_context
from sweep.stages.distortion import distortion_records
from sweep.stages.encode import encoded_files
from sweep.stages.table import STAGE_KINDS
from sweep.store.locations import read_location
from tests.conftest import compose_config


def sweep_of(imagefolder, results, *overrides: str):
    cfg = compose_config(
        "task=imagefolder",
        f"task.root={imagefolder}",
        f"results_dir={results}",
        "grid.train=[original,4]",
        "grid.test=[original,1,4]",
        "cluster=inline",
        "tracking=none",
        "progress=false",
        *overrides,
    )
    return build_sweep(cfg, check_data=False)


def plan_of(sweep):
    """The sweep's plan over every listed image, with its distortion options."""
    return plan_sweep(sweep)


def encode_and_measure(sweep):
    """Runs the encodes and measurements of a sweep inline (no training)."""
    plan = plan_of(sweep)
    plan = plan.narrowed_to([*plan.encodes.values(), *plan.distortions.values()])
    execute(plan, stage_context(sweep, plan), sweep.cluster, show_progress=False)
    return plan


def read_records(store, stage_name, key):
    with (store.path(stage_name, key) / "records.jsonl").open() as stream:
        return [json.loads(line) for line in stream]


def test_every_test_image_and_setting_has_every_measure(imagefolder, tmp_path):
    sweep = sweep_of(imagefolder, tmp_path, "cluster.encode_shard_size=4")
    plan = encode_and_measure(sweep)
    assert set(plan.distortions) == {("test", s) for s in ("original", "1", "4")}
    fields = ["psnr", "ssim", "ssimulacra2"]
    if find_tool() is not None:
        fields += ["butteraugli_max", "butteraugli_3norm"]
    medians = {}
    for (_, setting), stage in plan.distortions.items():
        records = distortion_records(sweep.store, stage)
        encoded = read_records(sweep.store, "encode", stage.encode.key)
        assert [r["source"] for r in records] == [r["source"] for r in encoded]
        assert len(records) == 9 and all(sorted(r["distortion"]) == sorted(fields) for r in records)
        assert not any("error" in record for record in records)
        summary = sweep.store.read_json("distortion", stage.key, "summary.json")
        assert summary["reference"] == (setting == ORIGINAL) and summary["errors"] == 0
        assert all(summary["measures"][name]["count"] == 9 for name in fields)
        medians[setting] = {name: summary["measures"][name]["median"] for name in fields}
    assert medians["original"]["ssimulacra2"] == 100.0 and medians["original"]["psnr"] is None
    for name in ("psnr", "ssim", "ssimulacra2"):
        assert medians["1"][name] > medians["4"][name], name
    if find_tool() is not None:
        assert 0 < medians["1"]["butteraugli_3norm"] < medians["4"]["butteraugli_3norm"]


def test_turning_measuring_off_or_on_never_re_encodes(imagefolder, tmp_path):
    off = sweep_of(imagefolder, tmp_path, "distortion.enabled=false")
    plan_off = encode_and_measure(off)
    assert plan_off.distortions == {}
    assert not off.store.path("distortion", "x").parent.exists()
    encode_keys = {k: s.key for k, s in plan_off.encodes.items()}

    on = sweep_of(imagefolder, tmp_path)
    plan_on = plan_of(on)
    assert {k: s.key for k, s in plan_on.encodes.items()} == encode_keys
    trains_off = plan_of(off).trains
    assert {k: s.key for k, s in plan_on.trains.items()} == {
        k: s.key for k, s in trains_off.items()
    }
    context = stage_context(on, plan_on)
    pending = [stage.kind for stage in plan_on.in_order(STAGE_KINDS) if not is_done(context, stage)]
    assert pending.count("encode") == 0 and pending.count("distortion") == 3


def test_measuring_leaves_the_encoded_bytes_unchanged(imagefolder, tmp_path):
    measured = sweep_of(imagefolder, tmp_path / "on")
    unmeasured = sweep_of(imagefolder, tmp_path / "off", "distortion.enabled=false")
    plans = encode_and_measure(measured), encode_and_measure(unmeasured)
    for key, stage in plans[0].encodes.items():
        assert plans[1].encodes[key].key == stage.key
        # encoded_files: the original setting's records name files in the dataset.
        files = [
            [read_location(file.path) for file in encoded_files(store, stage)]
            for store in (measured.store, unmeasured.store)
        ]
        assert files[0] == files[1]


def test_measures_and_splits_choose_the_stages_and_their_keys(imagefolder, tmp_path):
    base = plan_of(sweep_of(imagefolder, tmp_path))
    fewer = plan_of(sweep_of(imagefolder, tmp_path, "distortion.measures=[psnr,ssim]"))
    assert {k: s.key for k, s in fewer.encodes.items()} == {
        k: s.key for k, s in base.encodes.items()
    }
    assert set(fewer.distortions) == set(base.distortions)
    assert all(fewer.distortions[k].key != s.key for k, s in base.distortions.items())
    both = plan_of(sweep_of(imagefolder, tmp_path, "distortion.splits=[train,test]"))
    assert set(both.distortions) == set(both.encodes)
    assert both.distortions[("test", "1")].key == base.distortions[("test", "1")].key


def test_missing_butteraugli_is_named_in_the_summary(imagefolder, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no butteraugli_main on it
    sweep = sweep_of(imagefolder, tmp_path, "grid.test=[original,4]")
    plan = encode_and_measure(sweep)
    assert "butteraugli" in plan.skipped_measures
    summary = sweep.store.read_json(
        "distortion", plan.distortions[("test", "4")].key, "summary.json"
    )
    assert "libjxl-devtools" in summary["skipped"]["butteraugli"]
    assert "butteraugli_max" not in summary["measures"] and "ssimulacra2" in summary["measures"]


def test_an_image_that_cannot_be_measured_is_recorded_not_fatal(imagefolder, tmp_path):
    sweep = sweep_of(imagefolder, tmp_path, "grid.test=[original,4]", "distortion.measures=[psnr]")
    plan = plan_of(sweep)
    stage = plan.distortions[("test", "4")]
    context = stage_context(sweep, plan)
    encodes = plan.narrowed_to([stage.encode])
    execute(encodes, context, sweep.cluster, show_progress=False)  # encodes only
    first = read_records(sweep.store, "encode", stage.encode.key)[0]
    # Its bytes in the shard's pack spoiled in place; the other images stay readable.
    pack = sweep.store.file("encode-shards", first["shard"], "pack.bin")
    with open(pack, "r+b") as stream:
        stream.seek(first["offset"])
        stream.write(b"\0" * first["size"])
    execute(plan.narrowed_to([stage]), context, sweep.cluster, show_progress=False)
    records = read_records(sweep.store, "distortion", stage.key)
    assert records[0]["distortion"] == {"psnr": None} and first["source"] in records[0]["error"]
    summary = sweep.store.read_json("distortion", stage.key, "summary.json")
    assert summary["errors"] == 1 and summary["measures"]["psnr"]["count"] == 8


@pytest.mark.parametrize(
    ("override", "option"),
    [
        ("distortion.splits=[valid]", "distortion.splits"),
        ("distortion.measures=[psnr,vmaf]", "distortion.measures"),
        ("distortion.measures=[]", "distortion.measures"),
        ("distortion.measures=[psnr,psnr]", "distortion.measures"),
        ("distortion.enabled=maybe", "distortion.enabled"),
        ("+distortion.every=2", "distortion.every"),
        ("distortion.sample=0", "distortion.sample"),
        ("distortion.sample=some", "distortion.sample"),
        ("distortion.sample=2.5", "distortion.sample"),
        ("distortion.sample=true", "distortion.sample"),
        ("distortion.seed=-1", "distortion.seed"),
        ("distortion.seed=x", "distortion.seed"),
    ],
)
def test_bad_options_name_the_option(imagefolder, tmp_path, override, option):
    with pytest.raises(OptionError) as raised:
        sweep_of(imagefolder, tmp_path, override)
    assert raised.value.option == option


def test_a_bad_sample_says_what_it_takes(imagefolder, tmp_path):
    with pytest.raises(OptionError, match="number of images >= 1.*'all'"):
        sweep_of(imagefolder, tmp_path, "distortion.sample=-5")


def test_a_sample_measures_the_same_images_at_every_setting(imagefolder, tmp_path):
    sweep = sweep_of(
        imagefolder,
        tmp_path,
        "distortion.sample=4",
        "distortion.seed=3",
        "cluster.encode_shard_size=3",
    )
    plan = encode_and_measure(sweep)
    sampled = sampled_indices(9, 4, 3)
    assert len(sampled) == 4 and list(sampled) == sorted(set(sampled))
    for stage in plan.distortions.values():
        # Shards cover the sampled images only: 4 in shards of at most 3.
        assert stage.shards == ((0, 2), (2, 4)) and stage.indices == sampled
        records = distortion_records(sweep.store, stage)
        encoded = read_records(sweep.store, "encode", stage.encode.key)
        assert [r["index"] for r in records] == list(sampled)
        assert [r["source"] for r in records] == [encoded[i]["source"] for i in sampled]
        assert not any("error" in record for record in records)
        summary = sweep.store.read_json("distortion", stage.key, "summary.json")
        assert summary["measured"] == 4 and summary["images"] == 9
        assert summary["sample"] == {"images": 4, "seed": 3}
        assert summary["measures"]["ssim"]["count"] == 4


def test_all_measures_every_image_and_a_sample_as_large_as_the_split_is_all(imagefolder, tmp_path):
    every = plan_of(sweep_of(imagefolder, tmp_path, "distortion.sample=all"))
    large = plan_of(sweep_of(imagefolder, tmp_path, "distortion.sample=9"))
    # The seed still draws the summary's intervals.
    seeded = plan_of(sweep_of(imagefolder, tmp_path, "distortion.sample=all", "distortion.seed=5"))
    for ident, stage in every.distortions.items():
        assert stage.indices == tuple(range(9)) and stage.shards[-1][1] == 9
        assert large.distortions[ident].key == stage.key != seeded.distortions[ident].key


def test_the_sample_size_and_seed_change_the_distortion_keys_only(imagefolder, tmp_path):
    def keys(*overrides):
        plan = plan_of(sweep_of(imagefolder, tmp_path, *overrides))
        return {k: s.key for k, s in plan.encodes.items()}, {
            k: s.key for k, s in plan.distortions.items()
        }

    encodes, base = keys("distortion.sample=4")
    for overrides in (("distortion.sample=5",), ("distortion.sample=4", "distortion.seed=1")):
        other_encodes, other = keys(*overrides)
        assert other_encodes == encodes
        assert set(other.values()).isdisjoint(base.values()), overrides
    assert keys("distortion.sample=4")[1] == base


def test_the_summary_carries_intervals_that_hold_the_estimates(imagefolder, tmp_path):
    sweep = sweep_of(
        imagefolder, tmp_path, "grid.test=[original,4]", "distortion.measures=[psnr,ssim]"
    )
    plan = encode_and_measure(sweep)
    summary = sweep.store.read_json(
        "distortion", plan.distortions[("test", "4")].key, "summary.json"
    )
    for name in ("psnr", "ssim"):
        stats = summary["measures"][name]
        for stat in ("median", "mean"):
            low, high = stats[f"{stat}_ci_low"], stats[f"{stat}_ci_high"]
            assert low <= stats[stat] <= high, (name, stat, stats)
        assert low < high  # nine different images
    reference = sweep.store.read_json(
        "distortion", plan.distortions[("test", "original")].key, "summary.json"
    )
    assert reference["measures"]["ssim"]["median_ci_low"] == 1.0
    assert reference["measures"]["psnr"]["median_ci_high"] is None  # identical: infinite


def test_defaults_measure_the_test_split_with_every_measure(imagefolder, tmp_path):
    assert sweep_of(imagefolder, tmp_path).distortion == DistortionOptions(
        True, ("test",), ("psnr", "ssim", "ssimulacra2", "butteraugli"), sample=1000, seed=0
    )
    assert sweep_of(imagefolder, tmp_path, "distortion.enabled=false").distortion.enabled is False
