"""JPEG XL through imagecodecs (libjxl): a setting is a Butteraugli distance."""

from __future__ import annotations

from collections.abc import Sequence

import imagecodecs
import numpy as np

from sweep.codecs.base import ORIGINAL, Codec, SettingError, format_number

# libjxl's accepted distance range (0 is mathematically lossless, 25 its maximum).
MIN_DISTANCE = 0.0
MAX_DISTANCE = 25.0
# libjxl's effort range: 1 (fastest) .. 10 (slowest); 7 is cjxl's default.
EFFORTS = range(1, 11)


class JxlCodec(Codec):
    """Lossy JPEG XL at a target Butteraugli distance.

    Args:
        name: Codec name used in results and keys.
        distances: Distances swept by `grid.*: all`.
        effort: libjxl encoder effort, 1-10.
        threads: libjxl worker threads per encode; 1 because the sweep runs one encode task
            per core.
    """

    extension = ".jxl"
    axis_label = "Butteraugli distance (target)"

    def __init__(
        self,
        name: str = "jxl",
        distances: Sequence[float] = (1.0,),
        effort: int = 7,
        threads: int = 1,
    ) -> None:
        self.name = name
        if effort not in EFFORTS:
            raise SettingError(f"{effort} is outside libjxl's range 1-10", "codec.effort")
        self.effort = int(effort)
        self.threads = int(threads)
        try:
            self.distances = [self.parse_setting(d) for d in distances]
        except SettingError as error:
            raise SettingError(str(error), "codec.distances") from None
        if not self.distances or len(set(self.distances)) != len(self.distances):
            raise SettingError(
                f"{list(distances)} must list at least one distance, each once", "codec.distances"
            )

    def sweep_settings(self) -> list[str]:
        return [ORIGINAL, *self.distances]

    def parse_setting(self, setting: str | float) -> str:
        if setting == ORIGINAL:
            return ORIGINAL
        try:
            distance = float(setting)
        except (TypeError, ValueError):
            raise SettingError(
                f"'{setting}' is not a JPEG XL setting: use 'original' or a Butteraugli "
                f"distance from {MIN_DISTANCE:g} to {MAX_DISTANCE:g}"
            ) from None
        if not MIN_DISTANCE < distance <= MAX_DISTANCE:
            raise SettingError(
                f"Butteraugli distance {setting} is outside libjxl's range: use a distance "
                f"above {MIN_DISTANCE:g} and at most {MAX_DISTANCE:g} (0 would be lossless)"
            )
        return format_number(distance)

    def library_version(self) -> str:
        return f"imagecodecs {imagecodecs.__version__} / {imagecodecs.jpegxl_version()}"

    def encoder_parameters(self) -> dict:
        return {"effort": self.effort}

    def encode(self, pixels: np.ndarray, setting: str) -> bytes:
        return bytes(
            imagecodecs.jpegxl_encode(
                np.ascontiguousarray(pixels),
                distance=float(setting),
                effort=self.effort,
                numthreads=self.threads,
            )
        )

    def decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpegxl_decode(data, numthreads=self.threads)
