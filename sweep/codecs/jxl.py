"""JPEG XL (libjxl): a setting is a Butteraugli distance; three libraries can write it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sweep.codecs.base import ORIGINAL, Codec, SettingError, canonical_settings, format_number
from sweep.codecs.jxl_backends import jxl_backend

# libjxl's accepted distance range (0 is mathematically lossless, 25 its maximum).
MIN_DISTANCE = 0.0
MAX_DISTANCE = 25.0
# libjxl's effort range: 1 (fastest) .. 10 (slowest); 7 is cjxl's default. Every backend
# accepts all of it.
EFFORTS = range(1, 11)


class JxlCodec(Codec):
    """Lossy JPEG XL at a target Butteraugli distance.

    The backend is the library that writes the bytes (sweep/codecs/jxl_backends.py):
    imagecodecs (the default) takes the distance itself; pillow_jxl and jxlpy take an integer
    quality, so they accept only the distances of some quality and refuse the others, naming
    the nearest ones they reach. Every backend's files decode with the others.

    Args:
        name: Codec name used in results and keys.
        distances: Distances swept by `grid.*: all`.
        effort: libjxl encoder effort, 1-10.
        threads: libjxl worker threads per encode; 1 because the sweep runs one encode task
            per core.
        backend: "imagecodecs", "pillow_jxl" or "jxlpy".
    """

    extension = ".jxl"
    axis_label = "Butteraugli distance (target)"
    settings_are_distances = True

    def __init__(
        self,
        name: str = "jxl",
        distances: Sequence[float] = (1.0,),
        effort: int = 7,
        threads: int = 1,
        backend: str = "imagecodecs",
    ) -> None:
        self.name = name
        if effort not in EFFORTS:
            raise SettingError(f"{effort} is outside libjxl's range 1-10", "codec.effort")
        self.effort = int(effort)
        self.threads = int(threads)
        self.backend = jxl_backend(backend)
        self.distances = canonical_settings(
            self.parse_setting, distances, "codec.distances", "distance"
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
        self.backend.check_distance(distance)
        return format_number(distance)

    def library_version(self) -> str:
        # Names the backend too: each bundles its own libjxl.
        return self.backend.library_version()

    def encoder_parameters(self) -> dict:
        return {"effort": self.effort}

    def encode(self, pixels: np.ndarray, setting: str) -> bytes:
        return self.backend.encode(pixels, float(setting), self.effort, self.threads)

    def decode(self, data: bytes) -> np.ndarray:
        return self.backend.decode(data, self.threads)
