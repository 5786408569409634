"""AVIF through Pillow (libavif with the aom encoder): a setting is a quality, "q60"."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import PIL
from PIL import AvifImagePlugin, Image, features

from sweep.codecs.base import QualityCodec, SettingError

# libavif's speed: 0 (slowest, smallest) .. 10 (fastest); 6 is Pillow's and avifenc's default.
SPEEDS = range(0, 11)
# Chroma subsampling of colour images; grey images are always 4:0:0 (luma only).
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
# The AV1 encoder inside libavif, named so that another build's choice cannot change the bytes.
ENCODER = "aom"


class AvifCodec(QualityCodec):
    """Lossy AVIF (AV1 intra) at a quality 0-100, encoded by aom through Pillow.

    Grey (H, W) pixels are written as monochrome (4:0:0) AVIF and decode to (H, W); RGB uses
    `subsampling`. Decodes to (H, W) or (H, W, 3).

    Args:
        name: Codec name used in results and keys.
        qualities: Qualities swept by `grid.*: all`, 0-100.
        speed: libavif speed, 0-10.
        subsampling: Chroma subsampling of colour images: "4:4:4", "4:2:2" or "4:2:0".
        threads: Encoder threads per image; 1 because the sweep runs one encode task per core.
    """

    label = "AVIF"
    extension = ".avif"
    axis_label = "100 - AVIF quality"

    def __init__(
        self,
        name: str = "avif",
        qualities: Sequence[int] = (60,),
        speed: int = 6,
        subsampling: str = "4:2:0",
        threads: int = 1,
    ) -> None:
        self.name = name
        if speed not in SPEEDS:
            raise SettingError(f"{speed} is outside libavif's speeds 0-10", "codec.speed")
        # "4:2:0", "420" or 420 (as a command line gives it) -> "4:2:0".
        digits = str(subsampling).replace(":", "")
        if digits not in {s.replace(":", "") for s in SUBSAMPLINGS}:
            raise SettingError(
                f"'{subsampling}' is not an AVIF chroma subsampling: use one of {SUBSAMPLINGS} "
                f"(quote it in YAML: an unquoted 4:2:0 reads as a number)",
                "codec.subsampling",
            )
        self.speed = int(speed)
        self.subsampling = ":".join(digits)
        self.threads = int(threads)
        self.set_qualities(qualities)

    def library_version(self) -> str:
        return (
            f"Pillow {PIL.__version__} / libavif {features.version('avif')} / "
            f"{ENCODER} {AvifImagePlugin.get_codec_version(ENCODER)}"
        )

    def encoder_parameters(self) -> dict:
        return {"speed": self.speed, "subsampling": self.subsampling}

    def encode(self, pixels: np.ndarray, setting: str) -> bytes:
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(
            out,
            format="AVIF",
            quality=self.quality(setting),
            speed=self.speed,
            subsampling="4:0:0" if pixels.ndim == 2 else self.subsampling,
            codec=ENCODER,
            range="full",
            max_threads=self.threads,
        )
        return out.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.array(image if image.mode == "L" else image.convert("RGB"))
