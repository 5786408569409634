"""Every codec's config composes, instantiates, and sweeps the settings its YAML lists."""

from __future__ import annotations

import pytest

from sweep.config.build import build_sweep
from sweep.errors import OptionError
from tests.conftest import compose_config

QUALITIES = ["95", "90", "80", "70", "60", "50", "40", "30", "20", "10"]
FULL_GRIDS = {
    "jxl": ["original", "0.5", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"],
    "jpeg": ["original", *(f"q{q}-420" for q in QUALITIES)],
    "webp": ["original", *(f"q{q}" for q in QUALITIES)],
    "avif": ["original", *(f"q{q}" for q in QUALITIES)],
    "jxl_lossless_jpeg": ["original", "lossless"],
}


@pytest.mark.parametrize(("codec", "settings"), FULL_GRIDS.items())
def test_full_grid_sweeps_the_settings_of_the_yaml(codec, settings, tmp_path):
    overrides = [f"codec={codec}", "grid=full", f"results_dir={tmp_path}"]
    sweep = build_sweep(compose_config(*overrides), check_data=False)
    assert sweep.codec.name == codec
    assert sweep.train_settings == settings == sweep.test_settings


def test_a_grid_of_another_codec_is_refused_under_its_option(tmp_path):
    overrides = ["codec=jpeg", "grid=full", "grid.train=[original,1,4]", f"results_dir={tmp_path}"]
    with pytest.raises(OptionError, match="grid.train.*q90-420"):
        build_sweep(compose_config(*overrides), check_data=False)


@pytest.mark.parametrize(
    ("override", "option"),
    [
        ("codec.subsamplings=[4:1:1]", "codec.subsamplings"),
        ("codec.qualities=[0]", "codec.qualities"),
    ],
)
def test_bad_codec_options_are_reported_by_name(override, option, tmp_path):
    overrides = ["codec=jpeg", "grid=full", override, f"results_dir={tmp_path}"]
    with pytest.raises(OptionError, match=option):
        build_sweep(compose_config(*overrides), check_data=False)


def test_backend_and_its_distances_are_checked_when_composed(tmp_path):
    overrides = ["codec=jxl", "grid=full", "codec.backend=jxlpy", f"results_dir={tmp_path}"]
    with pytest.raises(OptionError, match="codec.distances.*0.46 \\(quality 96\\)"):
        build_sweep(compose_config(*overrides), check_data=False)
    distances = "codec.distances=[1,1.9,2.8,3.7,4.6,5.5,6.4,7.4]"
    sweep = build_sweep(compose_config(*overrides, distances), check_data=False)
    assert sweep.train_settings[-1] == "7.4"
