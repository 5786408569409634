"""Tuned JPEG: tables from a sensitivity map, the tables in the file, binding, the map file."""

from __future__ import annotations

import io
import json

import jpeglib
import numpy as np
import pytest
from PIL import Image
from skimage import data

from sweep.audit.jpeg_header import parse_jpeg_header
from sweep.codecs.base import ORIGINAL, SettingError
from sweep.codecs.jpeg import JpegCodec
from sweep.codecs.jpeg_tuned import (
    ANNEX_K_CHROMA,
    ANNEX_K_LUMA,
    TunedJpegCodec,
    geometric_mean,
    quantisation_tables,
    unrounded_steps,
)
from sweep.codecs.tuning_map import TuningMap
from sweep.config.build import build_sweep
from sweep.errors import OptionError
from tests.conftest import compose_config

FREQUENCY = np.add.outer(np.arange(8), np.arange(8))  # i + j


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255**2 / mse)


def make_map(y, cb=None, cr=None, key="0123456789abcdef0123", **fields) -> TuningMap:
    cb = y if cb is None else cb
    return TuningMap(
        key=key,
        label=fields.pop("label", "test map"),
        y=y,
        cb=cb,
        cr=cb if cr is None else cr,
        method=fields.pop("method", "gradient"),
        statistic=fields.pop("statistic", "clean_prob"),
        **fields,
    )


# Sensitivity falling with frequency, as a classifier's typically does.
LOW_PASS = make_map(np.exp(-0.15 * FREQUENCY))
# Sensitivity along horizontal frequencies j only: the table's transpose differs from it.
HORIZONTAL = make_map(
    np.exp(-0.5 * np.arange(8))[None, :].repeat(8, axis=0),
    cb=np.exp(-0.2 * np.arange(8))[:, None].repeat(8, axis=1),
    cr=np.exp(-0.4 * np.arange(8))[:, None].repeat(8, axis=1),
)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return data.astronaut()[100:228, 150:278]  # (128, 128, 3) uint8


@pytest.fixture(scope="module")
def codec() -> TunedJpegCodec:
    return TunedJpegCodec().with_sensitivity_map(LOW_PASS)


# --- tables -------------------------------------------------------------------------------


def test_steps_are_inverse_to_the_sensitivity():
    sensitivity = LOW_PASS.y
    steps = unrounded_steps(sensitivity, ANNEX_K_LUMA)
    product = steps * sensitivity
    np.testing.assert_allclose(product, product[0, 0], rtol=1e-12)
    luma, _ = quantisation_tables(LOW_PASS, 1)
    # More sensitive -> smaller (or equal, after rounding) step, for every pair of entries.
    order = np.argsort(-sensitivity, axis=None)
    assert np.all(np.diff(luma.ravel()[order]) >= 0)
    assert luma[0, 0] < luma[7, 7]


def test_geometric_mean_at_scale_one_is_libjpegs_quality_50():
    for table, reference in zip(
        quantisation_tables(LOW_PASS, 1), (ANNEX_K_LUMA, ANNEX_K_CHROMA), strict=True
    ):
        exact = unrounded_steps(LOW_PASS.y, reference)
        assert geometric_mean(exact) == pytest.approx(geometric_mean(reference), rel=1e-12)
        # Rounding moves it a little (no entry of this map is clipped).
        assert 1 < table.min() and table.max() < 255
        assert geometric_mean(table) == pytest.approx(geometric_mean(reference), rel=0.02)


def test_a_map_shaped_like_annex_k_gives_annex_k_and_libjpegs_quality_50(photo):
    annex_k = make_map(1 / ANNEX_K_LUMA, cb=1 / ANNEX_K_CHROMA)
    luma, chroma = quantisation_tables(annex_k, 1)
    assert np.array_equal(luma, ANNEX_K_LUMA) and np.array_equal(chroma, ANNEX_K_CHROMA)
    tuned = TunedJpegCodec().with_sensitivity_map(annex_k)
    expected = JpegCodec().encode(photo, "q50-420")
    assert np.array_equal(tuned.decode(tuned.encode(photo, "s1")), JpegCodec().decode(expected))


def test_chroma_follows_the_mean_of_cb_and_cr():
    cb, cr = np.exp(-0.1 * FREQUENCY), np.exp(-0.5 * FREQUENCY)
    mixed = make_map(LOW_PASS.y, cb=cb, cr=cr)
    _, chroma = quantisation_tables(mixed, 1)
    expected = np.clip(np.rint(unrounded_steps((cb + cr) / 2, ANNEX_K_CHROMA)), 1, 255)
    assert np.array_equal(chroma, expected)


def test_the_scale_multiplies_the_steps():
    exact = unrounded_steps(LOW_PASS.y, ANNEX_K_LUMA)
    for scale in (0.5, 1, 2, 4):
        luma, _ = quantisation_tables(LOW_PASS, scale)
        unclipped = (scale * exact >= 1) & (scale * exact <= 255)
        assert np.all(np.abs(luma - scale * exact)[unclipped] <= 0.5)
    one, two = quantisation_tables(LOW_PASS, 1)[0], quantisation_tables(LOW_PASS, 2)[0]
    assert np.all(np.abs(two - 2 * one)[two < 255] <= 1)


def test_steps_are_clipped_to_1_255_and_zero_sensitivities_are_floored():
    steep = np.exp(-2.0 * FREQUENCY)  # spans e^28: far beyond 1..255
    steep[7, 7] = 0.0
    for scale in (0.01, 1, 255):
        for table in quantisation_tables(make_map(steep), scale):
            assert table.dtype.kind == "i" and table.min() >= 1 and table.max() <= 255
    luma, _ = quantisation_tables(make_map(steep), 1)
    assert luma[0, 0] == 1 and luma[7, 7] == 255
    floored = unrounded_steps(steep, ANNEX_K_LUMA)
    assert np.isfinite(floored).all() and floored[7, 7] == pytest.approx(1e6 * floored[0, 0])


def test_a_flat_map_gives_a_flat_table():
    luma, chroma = quantisation_tables(make_map(np.full((8, 8), 3.0)), 1)
    assert len(np.unique(luma)) == 1 and len(np.unique(chroma)) == 1
    assert luma[0, 0] == round(geometric_mean(ANNEX_K_LUMA))


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf")])
def test_a_bad_scale_is_refused(scale):
    with pytest.raises(ValueError, match="scale"):
        quantisation_tables(LOW_PASS, scale)


# --- the file -----------------------------------------------------------------------------


def test_the_file_holds_the_computed_tables_in_natural_order(photo, tmp_path):
    # Pillow's `qtables` take natural (row-major [i][j]) order; jpeglib's qt and Pillow's
    # `quantization` read natural order back. The map differs from its transpose, so a
    # zigzag or transposed table would fail here.
    codec = TunedJpegCodec(subsampling="4:4:4").with_sensitivity_map(HORIZONTAL)
    luma, chroma = codec.tables("s1")
    assert not np.array_equal(luma, luma.T) and not np.array_equal(chroma, chroma.T)
    assert luma[0, 0] < luma[0, 7] and luma[0, 7] > luma[7, 0]  # coarse along j, not i
    encoded = codec.encode(photo, "s1")
    path = tmp_path / "tuned.jpg"
    path.write_bytes(encoded)
    jpeg = jpeglib.read_dct(str(path))
    assert list(jpeg.quant_tbl_no) == [0, 1, 1]
    assert np.array_equal(jpeg.qt[0], luma) and np.array_equal(jpeg.qt[1], chroma)
    with Image.open(io.BytesIO(encoded)) as image:
        tables = {index: np.reshape(table, (8, 8)) for index, table in image.quantization.items()}
    assert np.array_equal(tables[0], luma) and np.array_equal(tables[1], chroma)
    # The first entries of the DQT segment are in zigzag order: (0,0), (0,1), (1,0), ...
    dqt = encoded.index(b"\xff\xdb") + 5
    assert list(encoded[dqt : dqt + 3]) == [luma[0, 0], luma[0, 1], luma[1, 0]]


def test_small_scales_decode_close_to_the_input(codec, photo):
    decoded = codec.decode(codec.encode(photo, "s0.25"))
    assert decoded.shape == photo.shape and decoded.dtype == np.uint8
    # About libjpeg's quality 88 (its q50 tables x 0.24): 37.0 dB on this crop at 4:2:0.
    assert psnr(photo, decoded) > 36


def test_larger_scales_make_smaller_files_and_worse_pixels(codec, photo):
    sizes, qualities = [], []
    for setting in ["s0.25", "s0.5", "s1", "s2", "s4", "s16"]:
        encoded = codec.encode(photo, setting)
        sizes.append(len(encoded))
        qualities.append(psnr(photo, codec.decode(encoded)))
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    assert qualities == sorted(qualities, reverse=True)


@pytest.mark.parametrize(("subsampling", "sampling"), [("4:4:4", (1, 1)), ("4:2:0", (2, 2))])
def test_the_subsampling_is_written_in_the_frame_header(photo, subsampling, sampling):
    codec = TunedJpegCodec(subsampling=subsampling).with_sensitivity_map(LOW_PASS)
    header = parse_jpeg_header(io.BytesIO(codec.encode(photo, "s1")))
    assert header.sampling == (sampling, (1, 1), (1, 1))


def test_grey_stays_one_component_with_the_luma_table(codec, photo, tmp_path):
    grey = photo[..., 0].copy()
    encoded = codec.encode(grey, "s2")
    assert len(parse_jpeg_header(io.BytesIO(encoded)).components) == 1
    assert codec.decode(encoded).shape == grey.shape
    path = tmp_path / "grey.jpg"
    path.write_bytes(encoded)
    assert np.array_equal(jpeglib.read_dct(str(path)).qt[0], codec.tables("s2")[0])


# --- settings and identity ----------------------------------------------------------------


def test_settings_are_canonical():
    codec = TunedJpegCodec(scales=[0.25, 1.0, 16])
    assert codec.sweep_settings() == ["original", "s0.25", "s1", "s16"]
    assert codec.parse_setting(" S1.50 ") == "s1.5"
    assert codec.parse_setting("s.5") == "s0.5"
    assert codec.parse_setting("s255") == "s255"
    assert codec.parse_setting("s1e-05") == "s1e-05"
    assert codec.parse_setting(ORIGINAL) == ORIGINAL
    assert [codec.setting_position(s) for s in codec.sweep_settings()] == [0, 0.25, 1, 16]
    assert codec.axis_label == "quantisation scale (x tuned table)"


@pytest.mark.parametrize(
    "bad", ["1", 1, "q90", "q90-420", "s0", "s-1", "s256", "s", "s1_0", "snan", "sinf", None]
)
def test_bad_settings_are_refused_naming_the_syntax(bad):
    with pytest.raises(SettingError, match="original.*'s1'.*JPEG XL distance"):
        TunedJpegCodec().parse_setting(bad)


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        ({"scales": [0]}, "codec.scales"),
        ({"scales": [300]}, "codec.scales"),
        ({"scales": ["s1"]}, "codec.scales"),
        ({"scales": [True]}, "codec.scales"),
        ({"scales": [1, 1.0]}, "codec.scales"),
        ({"scales": []}, "codec.scales"),
        ({"subsampling": "4:1:1"}, "codec.subsampling"),
        ({"map_method": "guess"}, "codec.map_method"),
        ({"map_statistic": "accuracy"}, "codec.map_statistic"),
        ({"map": "/nonexistent/map.json"}, "codec.map"),
    ],
)
def test_bad_arguments_name_their_option(arguments, option):
    with pytest.raises(OptionError) as raised:
        TunedJpegCodec(**arguments)
    assert raised.value.option == option


def test_identity_holds_the_map_and_the_tables(codec):
    identity = codec.identity("s1")
    assert "libjpeg-turbo" in identity["library"] and "Pillow" in identity["library"]
    assert identity["parameters"]["map_key"] == LOW_PASS.key
    assert identity["parameters"]["map_label"] == LOW_PASS.label
    assert identity != codec.identity("s2")
    other_key = make_map(LOW_PASS.y, key="ffffffffffffffffffff")
    assert TunedJpegCodec().with_sensitivity_map(other_key).identity("s1") != identity
    # Same key, other values (a hand-edited file): the table digest tells them apart.
    edited = make_map(LOW_PASS.y * np.exp(-0.1 * FREQUENCY))
    edited_identity = TunedJpegCodec().with_sensitivity_map(edited).identity("s1")
    assert edited_identity["parameters"] == identity["parameters"]
    assert edited_identity["tables"] != identity["tables"]
    for changed in ({"subsampling": "4:4:4"}, {"optimize": False}):
        assert TunedJpegCodec(**changed).with_sensitivity_map(LOW_PASS).identity("s1") != identity
    assert codec.identity(ORIGINAL) == {"codec": ORIGINAL}


# --- binding ------------------------------------------------------------------------------


def test_an_unbound_codec_parses_settings_but_refuses_to_encode(photo):
    unbound = TunedJpegCodec()
    assert unbound.needs_sensitivity_map and unbound.tuning_map is None
    assert unbound.parse_setting("s2") == "s2"
    assert unbound.identity(ORIGINAL) == {"codec": ORIGINAL}
    for attempt in (lambda: unbound.encode(photo, "s1"), lambda: unbound.identity("s1")):
        with pytest.raises(RuntimeError, match="no sensitivity map.*codec.map"):
            attempt()


def test_binding_returns_a_bound_copy(photo):
    unbound = TunedJpegCodec(scales=[1, 2])
    bound = unbound.with_sensitivity_map(LOW_PASS)
    assert not bound.needs_sensitivity_map and bound.tuning_map is LOW_PASS
    assert unbound.needs_sensitivity_map and unbound.tuning_map is None
    assert bound.sweep_settings() == unbound.sweep_settings()
    assert bound.decode(bound.encode(photo, "s1")).shape == photo.shape


def test_binding_refuses_a_map_of_another_method_or_statistic():
    with pytest.raises(ValueError, match="gradient/clean_prob.*finite/l1"):
        TunedJpegCodec().with_sensitivity_map(make_map(LOW_PASS.y, method="finite", statistic="l1"))
    asked = TunedJpegCodec(map_method="finite", map_statistic="l1")
    finite = make_map(LOW_PASS.y, method="finite", statistic="l1")
    assert asked.with_sensitivity_map(finite).tuning_map is finite


def test_other_codecs_take_no_map():
    jpeg = JpegCodec()
    assert not jpeg.needs_sensitivity_map and jpeg.tuning_map is None
    with pytest.raises(TypeError, match="jpeg takes no sensitivity map"):
        jpeg.with_sensitivity_map(LOW_PASS)


def test_a_map_file_binds_the_codec_when_it_is_built(tmp_path, photo):
    path = tmp_path / "map.json"
    HORIZONTAL.to_json(path)
    codec = TunedJpegCodec(map=str(path))
    assert not codec.needs_sensitivity_map
    assert np.array_equal(codec.tuning_map.y, HORIZONTAL.y)
    from_file = codec.identity("s1")
    assert from_file == TunedJpegCodec().with_sensitivity_map(HORIZONTAL).identity("s1")


# --- the map file -------------------------------------------------------------------------


def test_a_map_survives_its_json_file(tmp_path):
    path = tmp_path / "map.json"
    original = make_map(
        LOW_PASS.y, cb=HORIZONTAL.cb, cr=HORIZONTAL.cr, label="vit_tiny on original",
        method="finite", statistic="l1", chroma_subsampling="4:4:4",
    )  # fmt: skip
    original.to_json(path)
    document = json.loads(path.read_text())
    assert set(document) == {"key", "label", "method", "statistic", "chroma_subsampling", "maps"}
    assert set(document["maps"]) == {"Y", "Cb", "Cr"}
    loaded = TuningMap.from_json(path)
    for name in ("key", "label", "method", "statistic", "chroma_subsampling"):
        assert getattr(loaded, name) == getattr(original, name)
    for name in ("y", "cb", "cr"):
        assert np.array_equal(getattr(loaded, name), getattr(original, name))
    assert not loaded.y.flags.writeable


def write_document(path, **changes) -> None:
    document = {
        "key": "0123456789abcdef0123",
        "label": "test",
        "method": "gradient",
        "statistic": "clean_prob",
        "chroma_subsampling": "4:2:0",
        "maps": {channel: LOW_PASS.y.tolist() for channel in ("Y", "Cb", "Cr")},
    }
    for name, value in changes.items():
        if name in ("Y", "Cb", "Cr"):
            document["maps"][name] = value
        elif value is None:
            del document[name]
        else:
            document[name] = value
    path.write_text(json.dumps(document))


def negative() -> list:
    values = LOW_PASS.y.copy()
    values[3, 4] = -0.5
    return values.tolist()


def with_nan() -> list:
    values = LOW_PASS.y.copy()
    values[0, 1] = np.nan
    return values.tolist()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Y": [[1.0] * 8] * 7}, r"map Y has shape \(7, 8\)"),
        ({"Cb": [[1.0] * 7] * 8}, r"map Cb has shape \(8, 7\)"),
        ({"Cr": [[1, 2], [3]]}, "map Cr is not an 8x8 array"),
        ({"Y": with_nan()}, "map Y holds a non-finite value"),
        ({"Cr": negative()}, "map Cr holds a negative value"),
        ({"Y": [[0.0] * 8] * 8}, "map Y is zero everywhere"),
        ({"maps": None}, "lacks.*maps"),
        ({"key": None}, r"lacks \['key'\]"),
        ({"label": ""}, "'label' must be a non-empty string"),
        ({"chroma_subsampling": "4:1:1"}, "'chroma_subsampling' is '4:1:1'"),
    ],
)
def test_a_bad_map_file_is_refused_naming_the_file(tmp_path, changes, message):
    path = tmp_path / "bad map.json"
    write_document(path, **changes)
    with pytest.raises(OptionError, match=message) as raised:
        TuningMap.from_json(path)
    assert raised.value.option == "codec.map" and str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "does not exist"), ("{not json", "is not valid JSON"), ("[1, 2]", "JSON object")],
)
def test_a_missing_or_unreadable_map_file_is_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "map.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(OptionError, match=message) as raised:
        TuningMap.from_json(path)
    assert raised.value.option == "codec.map" and str(path) in str(raised.value)


# --- config -------------------------------------------------------------------------------


def test_the_yaml_composes_to_an_unbound_codec_sweeping_its_scales(tmp_path):
    overrides = ["codec=jpeg_tuned", "grid=full", f"results_dir={tmp_path}"]
    sweep = build_sweep(compose_config(*overrides), check_data=False)
    assert isinstance(sweep.codec, TunedJpegCodec) and sweep.codec.needs_sensitivity_map
    scales = ["s0.25", "s0.5", "s1", "s2", "s4", "s8", "s16"]
    assert sweep.train_settings == ["original", *scales] == sweep.test_settings
    demo = build_sweep(
        compose_config("codec=jpeg_tuned", "grid=demo", f"results_dir={tmp_path}"),
        check_data=False,
    )
    assert demo.train_settings == ["original", "s0.1", "s0.5", "s2"] == demo.test_settings


def test_the_yaml_reads_a_map_file_and_names_codec_map_when_it_is_bad(tmp_path):
    path = tmp_path / "map.json"
    LOW_PASS.to_json(path)
    overrides = ["codec=jpeg_tuned", "grid=full", f"results_dir={tmp_path}"]
    sweep = build_sweep(compose_config(*overrides, f"codec.map={path}"), check_data=False)
    assert sweep.codec.tuning_map.key == LOW_PASS.key and not sweep.codec.needs_sensitivity_map
    with pytest.raises(OptionError, match="codec.map.*does not exist"):
        build_sweep(compose_config(*overrides, f"codec.map={tmp_path}/no.json"), check_data=False)
    with pytest.raises(OptionError, match="grid.train.*'s1'"):
        build_sweep(compose_config(*overrides, "grid.train=[original,q90]"), check_data=False)


def test_a_bound_codec_is_named_after_its_map(tmp_path):
    """Results, reports and the comparison chart name the map a tuned JPEG came from."""
    unbound = TunedJpegCodec()
    assert unbound.name == "jpeg_tuned"
    bound = unbound.with_sensitivity_map(make_map(np.ones((8, 8)), key="3f9a2c1b" + "0" * 12))
    assert bound.name == "jpeg_tuned-3f9a2c1b" and unbound.name == "jpeg_tuned"
    other = bound.with_sensitivity_map(make_map(np.ones((8, 8)), key="77aa2c1b" + "0" * 12))
    assert other.name == "jpeg_tuned-77aa2c1b"
    path = tmp_path / "map.json"
    make_map(np.ones((8, 8)), key="5e5e5e5e" + "0" * 12).to_json(path)
    assert TunedJpegCodec(map=str(path)).name == "jpeg_tuned-5e5e5e5e"
