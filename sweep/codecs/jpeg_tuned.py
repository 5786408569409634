"""JPEG whose quantisation tables follow a model's DCT sensitivity: coarse where it looks less.

The tables come from a `TuningMap` (sweep/codecs/tuning_map.py): either a JSON file named by
codec.map, or, with codec.map=null, the map the sweep measures and binds with
`with_sensitivity_map`. A setting "s<scale>" multiplies the tuned tables by the scale.
"""

from __future__ import annotations

import copy
import hashlib
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, features

from sweep.codecs.base import ORIGINAL, Codec, SettingError, canonical_settings, format_number
from sweep.codecs.jpeg import SUBSAMPLINGS, subsampling_text
from sweep.codecs.tuning_map import TuningMap
from sweep.errors import OptionError
from sweep.sensitivity.options import METHODS, STATISTICS

# libjpeg's standard tables, which it uses unscaled at quality 50: ITU-T T.81 (1992) Annex K,
# Table K.1 (luminance) and Table K.2 (chrominance), natural order [vertical][horizontal].
ANNEX_K_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ]
)
ANNEX_K_CHROMA = np.array(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
        *[[99] * 8] * 4,
    ]
)
# Sensitivities below this fraction of a map's maximum count as this fraction: a coefficient
# the model ignores gets a step 10^6 times the most sensitive one's, i.e. 255 after clipping,
# and nothing divides by zero.
SENSITIVITY_FLOOR = 1e-6
# Characters of a map's key that a bound codec's name carries.
MAP_ID_LENGTH = 8
MAX_SCALE = 255.0
# (method, statistic) the sweep can measure when codec.map is null.
MAP_METHODS, MAP_STATISTICS = METHODS, STATISTICS
NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?"
SETTING = re.compile(rf"s({NUMBER})")


def geometric_mean(values: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(values))))


def unrounded_steps(sensitivity: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Quantisation steps proportional to 1 / sensitivity with the geometric mean of `reference`.

    Args:
        sensitivity: 8x8 map, >= 0 and not all zero; entries under SENSITIVITY_FLOOR x its
            maximum are raised to that floor.
        reference: 8x8 table whose geometric mean the result takes.

    Returns:
        8x8 float steps q with q_ij * S'_ij constant and geomean(q) = geomean(reference).
    """
    floored = np.maximum(sensitivity, SENSITIVITY_FLOOR * sensitivity.max())
    inverse = 1.0 / floored
    return inverse * (geometric_mean(reference) / geometric_mean(inverse))


def quantisation_tables(tuning_map: TuningMap, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The luma and chroma tables of a tuning map at a scale, natural order, ints 1-255.

    For a map S (luma: S = Y; chroma: S = (Cb + Cr) / 2, element by element):

        S'_ij = max(S_ij, 1e-6 * max(S))                 (floor: no division by zero)
        q_ij  = clip(round(scale * G(K) * G(S') / S'_ij), 1, 255)

    where G is the geometric mean over the 64 entries and K the ITU-T T.81 Annex K table
    (K.1 for luma, K.2 for chroma) that libjpeg uses at quality 50. So steps are proportional
    to 1 / S, at scale 1 their geometric mean (before rounding and clipping) equals that of
    libjpeg's quality-50 table, and the scale multiplies every step.

    Raises:
        ValueError: for a scale that is not a finite number > 0.
    """
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"the scale must be a finite number > 0, got {scale!r}")
    chroma_map = (tuning_map.cb + tuning_map.cr) / 2
    return tuple(
        np.clip(np.rint(scale * unrounded_steps(sensitivity, reference)), 1, 255).astype(int)
        for sensitivity, reference in ((tuning_map.y, ANNEX_K_LUMA), (chroma_map, ANNEX_K_CHROMA))
    )


class TunedJpegCodec(Codec):
    """Baseline JPEG with quantisation tables derived from a model's sensitivity map.

    A setting is "s<scale>", e.g. "s1", "s0.5": the tables of `quantisation_tables` at that
    scale (0 < scale <= 255). Grey pixels make a one-component JPEG with the luma table.
    Decodes to (H, W) or (H, W, 3) uint8.

    Without a map (map=None) the codec is unbound: it parses settings but cannot encode until
    the sweep binds the map named by map_method and map_statistic (`with_sensitivity_map`).

    Args:
        name: Codec name used in results and keys.
        scales: Scales swept by `grid.*: all`.
        subsampling: Chroma subsampling of colour images: "4:2:0", "4:2:2" or "4:4:4".
        optimize: Optimised Huffman tables (smaller files, same pixels).
        map: Path of a TuningMap JSON file; None lets the sweep supply the map.
        map_method: Measuring method of the map the sweep supplies: "gradient" or "finite".
        map_statistic: Statistic of the map the sweep supplies: "clean_prob" or "l1".
    """

    extension = ".jpg"
    axis_label = "quantisation scale (x tuned table)"

    def __init__(
        self,
        name: str = "jpeg_tuned",
        scales: Sequence[float] = (0.25, 0.5, 1, 2, 4, 8, 16),
        subsampling: str = "4:2:0",
        optimize: bool = True,
        map: str | None = None,
        map_method: str = "gradient",
        map_statistic: str = "clean_prob",
    ) -> None:
        self.name = self.base_name = name
        self.optimize = bool(optimize)
        try:
            self.subsampling = subsampling_text(subsampling)
        except SettingError as error:
            raise SettingError(str(error), "codec.subsampling") from None
        for option, value, allowed in (
            ("codec.map_method", map_method, MAP_METHODS),
            ("codec.map_statistic", map_statistic, MAP_STATISTICS),
        ):
            if value not in allowed:
                raise OptionError(f"'{value}' is not one of {list(allowed)}", option)
        self.map_method = map_method
        self.map_statistic = map_statistic
        for value in scales:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingError(
                    f"{value!r} is not a scale: list numbers, e.g. [0.5, 1, 4]", "codec.scales"
                )
        self.settings = canonical_settings(
            self.parse_setting, [f"s{value}" for value in scales], "codec.scales", "scale"
        )
        self.map_path = None if map is None else Path(map).expanduser()
        self._tuning_map = None
        self._tables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if self.map_path is not None:
            loaded = TuningMap.from_json(self.map_path)
            self._tuning_map = loaded
            self.name = f"{name}-{loaded.key[:MAP_ID_LENGTH]}"

    @property
    def tuning_map(self) -> TuningMap | None:
        return self._tuning_map

    @property
    def needs_sensitivity_map(self) -> bool:
        return self._tuning_map is None

    def with_sensitivity_map(self, tuning_map: TuningMap) -> TunedJpegCodec:
        """A copy of this codec that encodes with `tuning_map`; this one stays as it is.

        The copy's name ends with the map's key ("jpeg_tuned-3f9a2c1b"): results, reports and
        the codec comparison name the map every setting came from, and the sweeps of two
        maps are two codecs side by side on the comparison chart, never one replacing the
        other.

        Raises:
            ValueError: when the codec was configured without a map file and the map is not
                of the method and statistic it asked for (codec.map_method, map_statistic).
        """
        asked = (self.map_method, self.map_statistic)
        if self.map_path is None and (tuning_map.method, tuning_map.statistic) != asked:
            raise ValueError(
                f"codec {self.name} asked for a {'/'.join(asked)} sensitivity map, got "
                f"{tuning_map.method}/{tuning_map.statistic} ({tuning_map.label})"
            )
        bound = copy.copy(self)
        bound._tuning_map = tuning_map
        bound._tables = {}  # of this map
        bound.name = f"{self.base_name}-{tuning_map.key[:MAP_ID_LENGTH]}"
        return bound

    def sweep_settings(self) -> list[str]:
        return [ORIGINAL, *self.settings]

    def parse_setting(self, setting: str) -> str:
        if setting == ORIGINAL:
            return ORIGINAL
        found = SETTING.fullmatch(str(setting).strip().lower())
        if found is None or not 0 < float(found.group(1)) <= MAX_SCALE:
            raise SettingError(
                f"'{setting}' is not a jpeg_tuned setting: use 'original' or 's' and a scale of "
                f"the tuned tables above 0 and up to {MAX_SCALE:g}, e.g. 's1', 's0.5' (a bare "
                f"number would read as a JPEG XL distance, 'q<quality>' as a JPEG quality)"
            )
        return f"s{format_number(float(found.group(1)))}"

    @staticmethod
    def scale(setting: str) -> float:
        """The scale of a canonical setting: "s0.5" -> 0.5."""
        return float(setting[1:])

    def setting_position(self, setting: str) -> float:
        """The scale: steps, and so compression, grow with it."""
        return 0.0 if setting == ORIGINAL else self.scale(setting)

    def tables(self, setting: str) -> tuple[np.ndarray, np.ndarray]:
        """(luma, chroma) 8x8 tables, natural order, that `encode` writes for a setting;
        derived once per setting (about 0.2 ms, a sizeable part of a small image's encode)."""
        if setting not in self._tables:
            self._tables[setting] = quantisation_tables(self._bound_map(), self.scale(setting))
        return self._tables[setting]

    def library_version(self) -> str:
        return f"Pillow {PIL.__version__} / libjpeg-turbo {features.version('libjpeg_turbo')}"

    def encoder_parameters(self) -> dict:
        tuning_map = self._bound_map()
        return {
            "map_key": tuning_map.key,
            "map_label": tuning_map.label,
            "map_method": tuning_map.method,
            "map_statistic": tuning_map.statistic,
            "map_chroma_subsampling": tuning_map.chroma_subsampling,
            "subsampling": self.subsampling,
            "optimize": self.optimize,
        }

    def identity(self, setting: str) -> dict:
        """The base identity plus a digest of the two tables the setting writes."""
        identity = super().identity(setting)
        if setting != ORIGINAL:
            luma, chroma = self.tables(setting)
            tables = np.concatenate([luma, chroma]).astype("<u2").tobytes()
            identity["tables"] = hashlib.sha256(tables).hexdigest()[:16]
        return identity

    def encode(self, pixels: np.ndarray, setting: str) -> bytes:
        luma, chroma = self.tables(setting)
        # Pillow's `qtables` are in natural (row-major) order, as are the arrays: it hands
        # them to libjpeg's jpeg_add_quant_table, which writes them zigzagged into the file.
        qtables = [luma.ravel().tolist()]
        if pixels.ndim == 3:
            qtables.append(chroma.ravel().tolist())
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(
            out,
            format="JPEG",
            qtables=qtables,
            subsampling=SUBSAMPLINGS[self.subsampling],
            optimize=self.optimize,
        )
        return out.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.array(image if image.mode == "L" else image.convert("RGB"))

    def _bound_map(self) -> TuningMap:
        if self._tuning_map is None:
            raise RuntimeError(
                f"codec {self.name} has no sensitivity map yet: give codec.map=<file.json>, or "
                f"let the sweep bind its {self.map_method}/{self.map_statistic} map with "
                f"with_sensitivity_map() before encoding"
            )
        return self._tuning_map
