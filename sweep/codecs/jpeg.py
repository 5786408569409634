"""JPEG through Pillow (libjpeg-turbo): a setting is a quality and a chroma subsampling."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np
import PIL
from PIL import Image, features

from sweep.codecs.base import (
    ORIGINAL,
    Codec,
    SettingError,
    canonical_settings,
    quality_list,
    quality_position,
)

MIN_QUALITY, MAX_QUALITY = 1, 100
# Chroma subsampling, as written in a setting -> Pillow's `subsampling` argument. Ordered from
# the most chroma kept to the least.
SUBSAMPLINGS = {"444": 0, "422": 1, "420": 2}
# libjpeg's own default, used when a setting names only the quality ("q90" -> "q90-420").
DEFAULT_SUBSAMPLING = "420"
SETTING = re.compile(r"q(\d{1,3})(?:-(\d{3}|\d:\d:\d))?")


def subsampling_text(value: str | int) -> str:
    """ "4:2:0", "420" or 420 -> "420"; raises SettingError for any other subsampling."""
    text = str(value).replace(":", "")
    if text not in SUBSAMPLINGS:
        raise SettingError(f"'{value}' is not a JPEG chroma subsampling: use 4:4:4, 4:2:2 or 4:2:0")
    return text


class JpegCodec(Codec):
    """Baseline JPEG at a quality (1-100) and a chroma subsampling, with libjpeg's tables.

    A setting is "q<quality>-<subsampling>", e.g. "q90-420", "q75-444" ("q90" alone means
    4:2:0), so that one grid can sweep quality and subsampling together. Grey pixels make a
    one-component JPEG, in which the subsampling has no effect. Decodes to (H, W) or (H, W, 3).

    Args:
        name: Codec name used in results and keys.
        qualities: Qualities swept by `grid.*: all`, 1-100.
        subsamplings: Chroma subsamplings swept by `grid.*: all` ("4:4:4", "4:2:2", "4:2:0");
            every quality is swept at each.
        optimize: Optimised Huffman tables (smaller files, same pixels), as `cjpeg -optimize`.
        progressive: Progressive rather than sequential scans (same pixels, other size).
    """

    extension = ".jpg"
    axis_label = "100 - JPEG quality"

    def __init__(
        self,
        name: str = "jpeg",
        qualities: Sequence[int] = (90,),
        subsamplings: Sequence[str] = ("4:2:0",),
        optimize: bool = True,
        progressive: bool = False,
    ) -> None:
        self.name = name
        self.optimize = bool(optimize)
        self.progressive = bool(progressive)
        try:
            chroma = [subsampling_text(value) for value in subsamplings]
        except SettingError as error:
            raise SettingError(str(error), "codec.subsamplings") from None
        if not chroma or len(set(chroma)) != len(chroma):
            raise SettingError(
                f"{list(subsamplings)} must list at least one subsampling, each once",
                "codec.subsamplings",
            )
        self.settings = canonical_settings(
            self.parse_setting,
            [f"q{quality}-{sub}" for quality in quality_list(qualities, "JPEG") for sub in chroma],
            "codec.qualities",
            "quality",
        )

    def sweep_settings(self) -> list[str]:
        return [ORIGINAL, *self.settings]

    def parse_setting(self, setting: str) -> str:
        if setting == ORIGINAL:
            return ORIGINAL
        found = SETTING.fullmatch(str(setting).strip().lower())
        chroma = (found.group(2) or DEFAULT_SUBSAMPLING).replace(":", "") if found else None
        if (
            found is None
            or not MIN_QUALITY <= int(found.group(1)) <= MAX_QUALITY
            or chroma not in SUBSAMPLINGS
        ):
            raise SettingError(
                f"'{setting}' is not a JPEG setting: use 'original' or q<quality>-<subsampling> "
                f"with a quality from {MIN_QUALITY} to {MAX_QUALITY} and a subsampling 444, 422 "
                f"or 420, e.g. 'q90-420' ('q90' means 4:2:0; a bare number would read as a "
                f"JPEG XL distance)"
            )
        return f"q{int(found.group(1))}-{chroma}"

    @staticmethod
    def quality_and_subsampling(setting: str) -> tuple[int, str]:
        """(90, "420") for the canonical setting "q90-420"."""
        quality, chroma = setting[1:].split("-")
        return int(quality), chroma

    def setting_position(self, setting: str) -> float:
        """100 - quality; at one quality, 4:4:4 (-0.4) < 4:2:2 (-0.2) < 4:2:0 (0)."""
        if setting == ORIGINAL:
            return 0.0
        quality, chroma = self.quality_and_subsampling(setting)
        chroma_steps_kept = 2 - SUBSAMPLINGS[chroma]
        return quality_position(quality) - 0.2 * chroma_steps_kept

    def library_version(self) -> str:
        return f"Pillow {PIL.__version__} / libjpeg-turbo {features.version('libjpeg_turbo')}"

    def encoder_parameters(self) -> dict:
        return {"optimize": self.optimize, "progressive": self.progressive}

    def encode(self, pixels: np.ndarray, setting: str) -> bytes:
        quality, chroma = self.quality_and_subsampling(setting)
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(
            out,
            format="JPEG",
            quality=quality,
            subsampling=SUBSAMPLINGS[chroma],
            optimize=self.optimize,
            progressive=self.progressive,
        )
        return out.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.array(image if image.mode == "L" else image.convert("RGB"))
