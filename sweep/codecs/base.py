"""What every codec provides: settings to sweep, encode/decode, and an identity for stage keys.

A setting is a string everywhere in the sweep ("original", "0.5", "10"): it names a cell of the
grid, a column of results.csv and a part of a stage key. The codec parses and validates it.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from sweep.errors import OptionError

if TYPE_CHECKING:
    from sweep.codecs.tuning_map import TuningMap

ORIGINAL = "original"
# The train setting that draws each image of each epoch from several settings' encodes
# (grid.mixed; sweep/tasks/mixed.py): it has no encode and no DCR of its own.
MIXED = "mixed"


class SettingError(OptionError):
    """A codec setting that the codec cannot express; the message says what is allowed."""


def format_number(value: float) -> str:
    """Canonical text of a numeric setting: 1.0 -> "1", 0.50 -> "0.5" (one key per value)."""
    return f"{float(value):g}"


def canonical_settings(
    parse: Callable[[str], str], values: Sequence, option: str, what: str
) -> list[str]:
    """A codec argument that lists settings (codec.distances, codec.qualities), canonical.

    Raises SettingError under `option` for a bad value, an empty list or a repeated setting.
    """
    try:
        settings = [parse(value) for value in values]
    except SettingError as error:
        raise SettingError(str(error), option) from None
    if not settings or len(set(settings)) != len(settings):
        raise SettingError(f"{list(values)} must list at least one {what}, each once", option)
    return settings


def quality_list(values: Sequence, codec_label: str) -> list[int]:
    """The `qualities` argument of a quality codec; SettingError (codec.qualities) if not ints."""
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingError(
                f"{value!r} is not a {codec_label} quality: list whole numbers, e.g. [90, 50]",
                "codec.qualities",
            )
    return list(values)


# A quality setting is "q" and the quality: "q90". The letter keeps a quality apart from a
# distance, so that a grid written for JPEG XL distances ("1", "4") is refused, not misread.
QUALITY_SETTING = re.compile(r"q(\d{1,3})")


def parse_quality(setting: str | int, minimum: int, maximum: int, codec_label: str) -> int:
    """The quality of a setting "q<quality>"; raises SettingError naming what is allowed."""
    found = QUALITY_SETTING.fullmatch(str(setting).strip().lower())
    if found is None or not minimum <= int(found.group(1)) <= maximum:
        raise SettingError(
            f"'{setting}' is not a {codec_label} setting: use 'original' or 'q' and a quality "
            f"from {minimum} to {maximum}, e.g. 'q90' (a bare number would read as a JPEG XL "
            f"distance)"
        )
    return int(found.group(1))


def quality_position(quality: int) -> float:
    """Figure position of a quality: 100 - quality, so that it grows with compression.

    Quality 100 sits at 0.5, not 0, so that it never shares a place with the original.
    """
    return max(100.0 - quality, 0.5)


class Codec(ABC):
    """A lossy image codec swept over a list of settings.

    Subclasses encode pixels to bytes and back; the encode stage around them does the file
    handling, the bookkeeping of sizes and the DCR.
    """

    name: str
    extension: str
    # Axis title of this codec's settings in figures ("Butteraugli distance", "JPEG quality").
    axis_label: str = "setting"
    # The settings are target Butteraugli distances (figures draw measured = target).
    settings_are_distances: bool = False
    # The codec cannot encode until the sweep binds a model's DCT sensitivity map to it with
    # `with_sensitivity_map` (codec=jpeg_tuned with codec.map=null).
    needs_sensitivity_map: bool = False

    @abstractmethod
    def sweep_settings(self) -> list[str]:
        """The settings swept by `grid.train: all` / `grid.test: all`, "original" first."""

    @abstractmethod
    def parse_setting(self, setting: str) -> str:
        """Validates a setting and returns its canonical text; raises SettingError."""

    @abstractmethod
    def library_version(self) -> str:
        """Library and version that produce the bytes ("imagecodecs 2026.3.6 / libjxl 0.11.2")."""

    @abstractmethod
    def encode(self, pixels: np.ndarray, setting: str) -> bytes:
        """Encodes (H, W) grey or (H, W, 3) RGB uint8 pixels at a (non-original) setting."""

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decodes bytes written by `encode` to uint8 pixels."""

    def encode_source(self, source: bytes, pixels: np.ndarray, setting: str) -> bytes:
        """Encodes one dataset image given both its file bytes and its decoded pixels.

        Most codecs encode the pixels; a transcoder (JPEG -> JPEG XL) reads the source bytes.
        """
        del source
        return self.encode(pixels, setting)

    def setting_position(self, setting: str) -> float:
        """Where a setting lies on a figure axis: 0 for original, growing with compression.

        The default is the setting's number when it is one (a distance) and otherwise its
        rank in `sweep_settings()`; a codec whose numbers grow the other way (a quality)
        overrides this.
        """
        if setting == ORIGINAL:
            return 0.0
        try:
            return float(setting)
        except ValueError:
            return float(self.sweep_settings().index(setting))

    def encoder_parameters(self) -> dict:
        """Parameters other than the setting that change the bytes (part of the encode key)."""
        return {}

    @property
    def tuning_map(self) -> TuningMap | None:
        """The sensitivity map the codec encodes with; None for codecs that use none."""
        return None

    def with_sensitivity_map(self, tuning_map: TuningMap) -> Codec:
        """A copy of this codec that encodes with `tuning_map` (see `needs_sensitivity_map`).

        Raises:
            TypeError: for a codec that takes no sensitivity map (all but jpeg_tuned).
        """
        raise TypeError(f"codec {self.name} takes no sensitivity map")

    def identity(self, setting: str) -> dict:
        """Everything that determines the bytes of one setting: part of its encode key.

        The original setting copies no bytes through a codec, so it does not depend on the
        codec at all: sweeps of different codecs share its encode and its trained model.
        """
        if setting == ORIGINAL:
            return {"codec": ORIGINAL}
        return {
            "codec": self.name,
            "library": self.library_version(),
            "parameters": self.encoder_parameters(),
            "setting": setting,
        }


class QualityCodec(Codec):
    """A codec whose settings are "q<quality>" (WebP, AVIF): parsing, sweep and axis position.

    Subclasses set `label` (in messages), `min_quality` and `max_quality`, and call
    `set_qualities` from their constructor.
    """

    label: str
    min_quality: int = 0
    max_quality: int = 100

    def set_qualities(self, qualities: Sequence) -> None:
        """The qualities swept by `grid.*: all` (the `qualities` argument), checked."""
        self.settings = canonical_settings(
            self.parse_setting,
            [f"q{q}" for q in quality_list(qualities, self.label)],
            "codec.qualities",
            "quality",
        )

    def sweep_settings(self) -> list[str]:
        return [ORIGINAL, *self.settings]

    def parse_setting(self, setting: str) -> str:
        if setting == ORIGINAL:
            return ORIGINAL
        return f"q{parse_quality(setting, self.min_quality, self.max_quality, self.label)}"

    def setting_position(self, setting: str) -> float:
        return 0.0 if setting == ORIGINAL else quality_position(self.quality(setting))

    @staticmethod
    def quality(setting: str) -> int:
        """The quality of a canonical setting: "q90" -> 90."""
        return int(setting[1:])


def grid_settings(option: str, value, codec: Codec) -> list[str]:
    """`all` or a list of the codec's settings, canonical, without duplicates, with original
    (grid.train, grid.test, an experiment's settings); an OptionError names `option`."""
    if value == "all":
        return codec.sweep_settings()
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) == 0:
        raise OptionError(
            f"must be 'all' or a non-empty list of settings, got {value!r}", option=option
        )
    try:
        settings = [codec.parse_setting(setting) for setting in value]
    except SettingError as error:
        raise error.under(option) from None
    duplicated = sorted({s for s in settings if settings.count(s) > 1})
    if duplicated:
        raise OptionError(f"lists {duplicated} more than once", option=option)
    if ORIGINAL not in settings:
        raise OptionError(
            "must include 'original': relative metrics divide by the original cell", option=option
        )
    return settings
