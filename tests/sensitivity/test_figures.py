"""Tests for sweep.sensitivity.figures: DCT sensitivity maps and radius profiles."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.colors import LogNorm
from PIL import Image

from sweep import figures
from sweep.sensitivity import figures as sensitivity_figures
from sweep.sensitivity.figures import (
    RadiusProfile,
    plot_channel_maps,
    plot_maps_by_setting,
    plot_radius_profiles,
    shared_norm,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_maps(scale: float = 1.0) -> np.ndarray:
    """(3, 8, 8) maps falling over four orders of magnitude from DC, chroma weaker than luma."""
    i, j = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    base = scale * 10.0 ** (-(i + j) / 3.5)
    return np.stack([base, 0.1 * base, 0.05 * base])


def make_profiles(settings: list[str], channels=("Y", "Cb", "Cr")) -> list[RadiusProfile]:
    radius = np.sqrt(np.arange(10.0))
    profiles = []
    for k, setting in enumerate(settings):
        for c, channel in enumerate(channels):
            value = (1.0 + k) * 10.0 ** (-radius - c)
            profiles.append(
                RadiusProfile(setting, channel, radius, value, 0.8 * value, 1.2 * value)
            )
    return profiles


def _assert_png(path: Path, returned: Path) -> None:
    assert returned == path
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] > 100 and image.size[1] > 100


@pytest.fixture(autouse=True)
def no_leaked_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == []


@pytest.fixture
def saved_figures(monkeypatch):
    """Records, for every figure saved by the module, its images and colour bars, then saves."""
    # A low resolution keeps the suite fast; the layout does not depend on it.
    monkeypatch.setattr(figures, "DPI", 50)
    saved = []
    real_save = sensitivity_figures.save_figure

    def spy(fig, path):
        images = [im for ax in fig.axes for im in ax.get_images()]
        colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
        saved.append({"fig": fig, "images": images, "colorbars": colorbars})
        return real_save(fig, path)

    monkeypatch.setattr(sensitivity_figures, "save_figure", spy)
    return saved


def _assert_one_log_scale(record: dict, values: list[np.ndarray], panels: int) -> LogNorm:
    """Every panel uses the same LogNorm spanning the positive values of all panels."""
    images = record["images"]
    assert len(images) == panels
    norms = {id(im.norm) for im in images}
    assert len(norms) == 1
    norm = images[0].norm
    assert isinstance(norm, LogNorm)
    positive = np.concatenate([v.ravel() for v in values])
    positive = positive[positive > 0]
    assert norm.vmin == pytest.approx(positive.min())
    assert norm.vmax == pytest.approx(positive.max())
    assert len(record["colorbars"]) == 1
    return norm


def test_channel_maps_png_one_log_scale_labels_and_zeros(tmp_path, saved_figures):
    # Cr is a million times weaker than Y: per-panel scales would give each its own limits.
    maps = make_maps()
    maps[2] *= 1e-6
    maps[1, 7, 7] = 0.0
    maps[2, 4:, 4:] = 0.0
    path = tmp_path / "maps.png"
    _assert_png(path, plot_channel_maps(maps, path, "resnet, train=original", unit="my unit"))
    (record,) = saved_figures
    norm = _assert_one_log_scale(record, [maps], panels=3)
    assert norm.vmin == pytest.approx(maps[2][maps[2] > 0].min())
    assert norm.vmax == pytest.approx(maps[0].max())
    (colorbar_ax,) = record["colorbars"]
    assert colorbar_ax.get_ylabel() == "my unit"
    panels = [ax for ax in record["fig"].axes if ax.get_images()]
    assert [ax.get_title() for ax in panels] == ["Y", "Cb", "Cr"]
    assert list(panels[0].get_xticks()) == list(range(8))
    assert list(panels[0].get_yticks()) == list(range(8))
    assert panels[0].get_xlabel() == "j (horizontal frequency)"
    assert panels[0].get_ylabel() == "i (vertical frequency)"
    # DC at the top left: with origin "upper" the y axis runs from 7.5 down to -0.5.
    assert all(im.origin == "upper" for im in record["images"])
    bottom, top = panels[0].get_ylim()
    assert bottom > top
    # Zeros sit below vmin (the distinct "under" colour), neither masked as bad nor at vmin.
    cr = record["images"][2]
    drawn = cr.get_array()
    assert not np.ma.is_masked(drawn)
    assert np.all(drawn[4:, 4:] < norm.vmin) and np.all(drawn[:4, :4] >= norm.vmin)
    assert tuple(cr.cmap.get_under()) != tuple(cr.cmap(0.0))


@pytest.mark.parametrize(
    "maps",
    [np.zeros((3, 8, 8)), np.where(np.arange(192).reshape(3, 8, 8) % 3, 0.0, np.nan)],
    ids=["all-zero", "zero-and-nan"],
)
def test_channel_maps_without_positive_values_fall_back_to_linear(tmp_path, saved_figures, maps):
    maps = maps.copy()
    if np.isnan(maps).any():
        maps[0, 0, 1] = np.inf
    path = tmp_path / "maps.png"
    _assert_png(path, plot_channel_maps(maps, path, "nothing positive"))
    (record,) = saved_figures
    assert len({id(im.norm) for im in record["images"]}) == 1
    norm = record["images"][0].norm
    assert not isinstance(norm, LogNorm)
    # Zeros keep the "under" colour of the log scale; non-finite cells are masked ("bad").
    for im, channel in zip(record["images"], maps, strict=True):
        drawn = im.get_array()
        assert np.all(np.ma.getmaskarray(drawn) == ~np.isfinite(channel))
        assert np.all(drawn[channel == 0] < norm.vmin)


@pytest.mark.parametrize("shape", [(8, 8), (3, 8), (1, 8, 8), (3, 8, 8, 1), (8, 8, 3)])
def test_channel_maps_refuse_wrong_shape(tmp_path, shape):
    with pytest.raises(ValueError, match=r"\(3, 8, 8\)"):
        plot_channel_maps(np.ones(shape), tmp_path / "maps.png", "t")
    assert not (tmp_path / "maps.png").exists()


def test_channel_maps_refuse_negative_values(tmp_path):
    maps = make_maps()
    maps[0, 3, 3] = -1.0
    with pytest.raises(ValueError, match="negative"):
        plot_channel_maps(maps, tmp_path / "maps.png", "t")


@pytest.mark.parametrize("n_settings", [1, 6])
def test_maps_by_setting_one_row_per_setting_on_one_scale(tmp_path, saved_figures, n_settings):
    maps = {f"q{90 - 10 * k}": make_maps(scale=10.0**k) for k in range(n_settings)}
    if n_settings > 1:
        maps["q70"] = np.zeros((3, 8, 8))  # an all-zero setting next to positive ones
    path = tmp_path / "by_setting.png"
    _assert_png(path, plot_maps_by_setting(maps, path, "resnet"))
    (record,) = saved_figures
    norm = _assert_one_log_scale(record, list(maps.values()), panels=3 * n_settings)
    panels = [ax for ax in record["fig"].axes if ax.get_images()]
    row_labels = [ax.get_ylabel().split("\n")[0] for ax in panels[::3]]
    assert row_labels == [f"train={s}" for s in maps]
    if n_settings > 1:
        assert all(np.all(im.get_array() < norm.vmin) for im in record["images"][6:9])
    with Image.open(path) as image:
        height = image.size[1]
    assert height > 2 * figures.DPI * n_settings  # 2+ inches per row: height grows with rows


def test_maps_by_setting_refuses_wrong_shape_naming_the_setting(tmp_path):
    maps = {"original": make_maps(), "q90-420": np.ones((3, 4, 4))}
    with pytest.raises(ValueError, match=r"q90-420.*\(3, 8, 8\)"):
        plot_maps_by_setting(maps, tmp_path / "m.png", "t")
    with pytest.raises(ValueError, match="at least one"):
        plot_maps_by_setting({}, tmp_path / "m.png", "t")


def test_shared_norm_widens_a_single_value():
    norm = shared_norm([np.full((3, 8, 8), 0.5)])
    assert isinstance(norm, LogNorm)
    assert norm.vmin < 0.5 < norm.vmax


def _lines_by_panel(fig) -> dict[str, dict[str, str]]:
    """Per panel title: line label -> colour."""
    return {
        ax.get_title(): {line.get_label(): line.get_color() for line in ax.get_lines()}
        for ax in fig.axes
        if ax.get_title()
    }


def test_radius_profiles_panel_per_channel_and_colour_per_setting(tmp_path, saved_figures):
    settings = ["original", "q90-420", "4", "1", "0.5", "10"]
    path = tmp_path / "profiles.png"
    returned = plot_radius_profiles(make_profiles(settings), path, "t", radius_label="r")
    _assert_png(path, returned)
    (record,) = saved_figures
    fig = record["fig"]
    panels = _lines_by_panel(fig)
    assert list(panels) == ["Y", "Cb", "Cr"]
    for lines in panels.values():
        assert list(lines) == [f"train={s}" for s in settings]
        assert lines == panels["Y"]  # same colour for a setting in every panel
    assert len(set(panels["Y"].values())) == len(settings)
    assert all(ax.get_yscale() == "log" for ax in fig.axes if ax.get_title())
    assert all(ax.get_xlabel() == "r" for ax in fig.axes if ax.get_title())
    assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(panels["Y"])


def test_radius_profiles_one_setting_channels_in_order_and_non_positive_dropped(
    tmp_path, saved_figures
):
    profiles = make_profiles(["original"], channels=("Cr", "Y"))
    profiles[0] = RadiusProfile(
        "original", "Cr", profiles[0].radius, np.zeros(10), np.zeros(10), np.ones(10)
    )
    y = profiles[1]
    value = y.value.copy()
    value[2] = 0.0
    value[3] = -1.0
    profiles[1] = RadiusProfile("original", "Y", y.radius, value, y.low, y.high)
    path = tmp_path / "profiles.png"
    _assert_png(path, plot_radius_profiles(profiles, path, "t"))
    (record,) = saved_figures
    panels = [ax for ax in record["fig"].axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["Y", "Cr"]
    assert panels[0].get_xlabel() == "frequency radius √(i² + j²)"
    (line,) = panels[0].get_lines()
    drawn = np.asarray(line.get_ydata(), dtype=float)
    assert np.isnan(drawn[2]) and np.isnan(drawn[3])
    assert np.all(drawn[np.isfinite(drawn)] > 0)
    assert panels[1].get_lines() == []  # nothing positive in Cr
    assert any(t.get_text() == "no positive values" for t in panels[1].texts)
    assert [t.get_text() for t in record["fig"].legends[0].get_texts()] == ["train=original"]


def test_radius_profiles_refuse_bad_input(tmp_path):
    (profile,) = make_profiles(["original"], channels=("Y",))
    path = tmp_path / "p.png"
    with pytest.raises(ValueError, match="at least one"):
        plot_radius_profiles([], path, "t")
    with pytest.raises(ValueError, match="channel"):
        plot_radius_profiles([RadiusProfile("o", "R", *_arrays(profile))], path, "t")
    with pytest.raises(ValueError, match="same length"):
        short = RadiusProfile("o", "Y", profile.radius[:3], profile.value, profile.low,
                              profile.high)  # fmt: skip
        plot_radius_profiles([short], path, "t")
    with pytest.raises(ValueError, match="two profiles"):
        plot_radius_profiles([profile, profile], path, "t")
    assert not path.exists()


def _arrays(profile: RadiusProfile) -> tuple[np.ndarray, ...]:
    return profile.radius, profile.value, profile.low, profile.high
