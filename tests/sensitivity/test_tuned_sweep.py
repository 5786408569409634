"""codec=jpeg_tuned in a sweep: its map measured first (on the model trained on originals,
shared with every codec), its key in every encode key, its sweep on the comparison chart."""

from __future__ import annotations

import csv

import pytest

from sweep.codecs.base import ORIGINAL
from sweep.codecs.tuning_map import TuningMap
from sweep.session.planning import bind_tuning_map
from sweep.stages.validate import file_digests, listed_screening
from tests.conftest import record_calls, run_sweep
from tests.sensitivity.test_stage import sweep_of

TUNED = ("codec=jpeg_tuned", "grid.train=[original,s1]", "grid.test=[original,s1,s8]")


@pytest.mark.slow
def test_a_tuned_sweep_measures_its_map_first_and_reuses_the_original_model(
    imagefolder, tmp_path, monkeypatch
):
    calls = {"train": [], "sensitivity": []}
    for kind in calls:
        record_calls(monkeypatch, kind, "run", calls[kind].append)
    plain = sweep_of(imagefolder, tmp_path, "tracking=none", "sensitivity=off", check_data=True)
    run_sweep(plain)
    trained = {stage.setting: stage.key for stage in calls["train"]}

    for kind in calls:
        calls[kind].clear()
    sweep = sweep_of(imagefolder, tmp_path, *TUNED, "tracking=none", check_data=True)
    assert sweep.codec.needs_sensitivity_map
    report = run_sweep(sweep)
    # The model trained on originals is the plain sweep's: only s1 is trained.
    assert [stage.setting for stage in calls["train"]] == ["s1"]
    assert calls["sensitivity"][0].setting == ORIGINAL  # the map, before any tuned encode
    assert calls["sensitivity"][0].train.key == trained[ORIGINAL]

    bound = sweep.codec
    assert not bound.needs_sensitivity_map
    assert bound.tuning_map.key == calls["sensitivity"][0].key
    assert bound.tuning_map.key in str(bound.identity("s1"))
    with (report / "results.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert {row["codec"] for row in rows} == {bound.name}
    assert {row["test_setting"] for row in rows} == {"original", "s1", "s8"}
    comparison = (
        tmp_path / "reports" / f"compare_imagefolder_{sweep.model.name}" / "dcr_within_1pct.csv"
    )
    with comparison.open() as stream:
        codecs = {row["codec"] for row in csv.DictReader(stream)}
    assert codecs == {"jxl", bound.name}
    assert bound.name.startswith("jpeg_tuned-")
    assert (report / "codec_map.json").is_file()


def test_the_bound_map_is_the_mean_map_of_the_original_model(imagefolder, tmp_path):
    """The map read back from the store: the sensitivity stage's mean over its images."""
    import numpy as np

    from sweep.stages.sensitivity import MAPS_FILE

    sweep = sweep_of(
        imagefolder, tmp_path, *TUNED, "tracking=none", "sensitivity.images=3", check_data=True
    )
    bound = bind_tuning_map(sweep, listed_screening(sweep.reader, file_digests(sweep.store)))
    assert isinstance(bound.tuning_map, TuningMap)
    with np.load(sweep.store.path("sensitivity", bound.tuning_map.key) / MAPS_FILE) as maps:
        mean = maps["clean_prob"].mean(axis=0)
    np.testing.assert_allclose(bound.tuning_map.y, mean[0])
    np.testing.assert_allclose(bound.tuning_map.cb, mean[1])
    assert "trained on original" in bound.tuning_map.label
