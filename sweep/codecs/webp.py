"""WebP through Pillow (libwebp): a setting is a lossy quality, "q80"."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import PIL
from PIL import Image, features

from sweep.codecs.base import QualityCodec, SettingError

# libwebp's compression method: 0 (fastest) .. 6 (smallest files); 4 is cwebp's default.
METHODS = range(0, 7)


class WebpCodec(QualityCodec):
    """Lossy WebP (VP8, YUV 4:2:0) at a quality 0-100; q100 is still lossy.

    WebP has no greyscale mode: grey (H, W) pixels are written as RGB with equal channels and
    decode to (H, W, 3), whose channels may then differ by 1 after the YUV round trip.

    Args:
        name: Codec name used in results and keys.
        qualities: Qualities swept by `grid.*: all`, 0-100.
        method: libwebp's method (effort), 0-6.
    """

    label = "WebP"
    extension = ".webp"
    axis_label = "100 - WebP quality"

    def __init__(
        self, name: str = "webp", qualities: Sequence[int] = (80,), method: int = 4
    ) -> None:
        self.name = name
        if method not in METHODS:
            raise SettingError(f"{method} is outside libwebp's methods 0-6", "codec.method")
        self.method = int(method)
        self.set_qualities(qualities)

    def library_version(self) -> str:
        return f"Pillow {PIL.__version__} / libwebp {features.version('webp')}"

    def encoder_parameters(self) -> dict:
        return {"method": self.method}

    def encode(self, pixels: np.ndarray, setting: str) -> bytes:
        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(
            out, format="WEBP", quality=self.quality(setting), method=self.method, lossless=False
        )
        return out.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as image:
            return np.array(image.convert("RGB"))
