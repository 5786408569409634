"""The libraries that write JPEG XL for JxlCodec (`codec.backend`), and how each reaches a distance.

imagecodecs takes a Butteraugli distance. pillow-jxl-plugin and jxlpy take only a JPEG-style
integer quality and turn it into a distance themselves, each with its own formula:

* pillow-jxl-plugin calls libjxl's JxlEncoderDistanceFromQuality (libjxl lib/jxl/encode.cc):
  q >= 100 -> 0 (lossless); q >= 30 -> 0.1 + (100 - q) * 0.09;
  else 53/3000 q^2 - 23/20 q + 25.
* jxlpy uses its own get_distance (jxlpy _jxlpy/_jxl.pyx): the same line for q >= 30, but
  6.4 + 2.5^((30 - q) / 5) / 6.25 for 10 <= q < 30 and 12.65 + 0.235 (10 - q) below 10.

So a quality backend can reach only the distances of qualities 0-99 (100 is lossless), and a
distance that no integer quality reaches is refused, naming the nearest ones it can reach. A
distance "reaches" a setting when both print the same at the 6 significant digits that every
setting is written with (`format_number`); the float libjxl computes is what is compared.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from importlib import metadata

import imagecodecs
import numpy as np
from PIL import Image

from sweep.codecs.base import SettingError, format_number

QUALITIES = range(0, 100)  # 100 would be lossless, which a distance setting never asks for


class JxlBackend(ABC):
    """One library that encodes pixels to JPEG XL at a Butteraugli distance and decodes them."""

    name: str

    @abstractmethod
    def library_version(self) -> str:
        """Library and version that produce the bytes; part of every encode key."""

    def check_distance(self, distance: float) -> None:
        """Raises SettingError when this backend cannot encode at exactly this distance."""
        del distance  # a backend that takes the distance itself takes every one

    @abstractmethod
    def encode(self, pixels: np.ndarray, distance: float, effort: int, threads: int) -> bytes:
        """Encodes (H, W) grey or (H, W, 3) RGB uint8 pixels."""

    @abstractmethod
    def decode(self, data: bytes, threads: int) -> np.ndarray:
        """Decodes JPEG XL bytes (from any backend) to (H, W) or (H, W, 3) uint8 pixels."""


class ImagecodecsBackend(JxlBackend):
    """imagecodecs' libjxl binding: takes the distance itself. The default."""

    name = "imagecodecs"

    def library_version(self) -> str:
        # Unchanged since before backends existed, so that earlier encode keys stay valid.
        return f"imagecodecs {imagecodecs.__version__} / {imagecodecs.jpegxl_version()}"

    def encode(self, pixels: np.ndarray, distance: float, effort: int, threads: int) -> bytes:
        return bytes(
            imagecodecs.jpegxl_encode(
                np.ascontiguousarray(pixels), distance=distance, effort=effort, numthreads=threads
            )
        )

    def decode(self, data: bytes, threads: int) -> np.ndarray:
        return imagecodecs.jpegxl_decode(data, numthreads=threads)


class QualityBackend(JxlBackend):
    """A backend that takes an integer quality and maps it to a distance by its own formula."""

    formula: str  # the mapping in words, for error messages

    @staticmethod
    @abstractmethod
    def distance_of_quality(quality: int) -> float:
        """The distance, as the float32 that libjxl receives, that a quality encodes at."""

    def quality_for(self, distance: float) -> int:
        """The integer quality whose distance is `distance`; raises SettingError if none is."""
        wanted = format_number(distance)
        reached = {q: self.distance_of_quality(q) for q in QUALITIES}
        for quality, reached_distance in reached.items():
            if format_number(reached_distance) == wanted:
                return quality
        below = max(((d, q) for q, d in reached.items() if d < distance), default=None)
        above = min(((d, q) for q, d in reached.items() if d > distance), default=None)
        nearest = " and ".join(
            f"{format_number(d)} (quality {q})" for d, q in filter(None, (below, above))
        )
        raise SettingError(
            f"Butteraugli distance {wanted} cannot be expressed exactly by codec.backend="
            f"{self.name}, which takes an integer quality ({self.formula}); the nearest "
            f"distances it reaches are {nearest}: use one of those, or codec.backend=imagecodecs"
        )

    def check_distance(self, distance: float) -> None:
        self.quality_for(distance)


def _float32(value: float) -> float:
    """The value as the C float that libjxl's JxlEncoderSetFrameDistance receives."""
    return float(np.float32(value))


class PillowJxlBackend(QualityBackend):
    """pillow-jxl-plugin (libjxl through jpegxl-rs), through Pillow's save and open."""

    name = "pillow_jxl"
    formula = "libjxl's JxlEncoderDistanceFromQuality"

    @staticmethod
    def distance_of_quality(quality: int) -> float:
        # libjxl computes in double from a float quality and returns a float.
        if quality >= 30:
            return _float32(0.1 + (100 - quality) * 0.09)
        return _float32(53.0 / 3000.0 * quality * quality - 23.0 / 20.0 * quality + 25.0)

    def library_version(self) -> str:
        # The wheel bundles its own libjxl (0.12 for 1.3.8), fixed by the plugin's version.
        return f"pillow-jxl-plugin {metadata.version('pillow-jxl-plugin')}"

    def encode(self, pixels: np.ndarray, distance: float, effort: int, threads: int) -> bytes:
        import pillow_jxl  # noqa: F401  (registers the JXL format with Pillow)

        out = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(
            out,
            format="JXL",
            quality=self.quality_for(distance),
            effort=effort,
            num_threads=threads,
        )
        return out.getvalue()

    def decode(self, data: bytes, threads: int) -> np.ndarray:
        import pillow_jxl  # noqa: F401

        del threads  # the plugin's decoder takes its thread count from a module global
        with Image.open(io.BytesIO(data)) as image:
            return np.array(image)


class JxlpyBackend(QualityBackend):
    """jxlpy's own libjxl binding (JXLPyEncoder and JXLPyDecoder)."""

    name = "jxlpy"
    formula = "jxlpy's get_distance"

    @staticmethod
    def distance_of_quality(quality: int) -> float:
        import jxlpy

        return _float32(jxlpy.get_distance(quality))

    def library_version(self) -> str:
        import jxlpy

        return f"jxlpy {jxlpy.__version__} / libjxl {jxlpy._jxl_version}"

    def encode(self, pixels: np.ndarray, distance: float, effort: int, threads: int) -> bytes:
        import jxlpy

        encoder = jxlpy.JXLPyEncoder(
            quality=self.quality_for(distance),
            size=(pixels.shape[1], pixels.shape[0]),
            colorspace="L" if pixels.ndim == 2 else "RGB",
            effort=effort,
            num_threads=threads,
            # A bare codestream, as the other backends write: the container adds ~40 bytes.
            use_container=False,
        )
        encoder.add_frame(np.ascontiguousarray(pixels).tobytes())
        return bytes(encoder.get_output())

    def decode(self, data: bytes, threads: int) -> np.ndarray:
        import jxlpy

        decoder = jxlpy.JXLPyDecoder(data, num_threads=threads)
        info = decoder.get_info()
        if info["bits_per_sample"] != 8:
            raise ValueError(f"jxlpy decodes 8-bit samples here, not {info['bits_per_sample']}")
        channels = info["num_color_channels"] + info["num_extra_channels"]
        pixels = np.frombuffer(decoder.get_frame(), np.uint8)
        pixels = pixels.reshape(info["ysize"], info["xsize"], channels)
        return pixels[..., 0] if channels == 1 else pixels


BACKENDS: dict[str, type[JxlBackend]] = {
    backend.name: backend for backend in (ImagecodecsBackend, PillowJxlBackend, JxlpyBackend)
}


def jxl_backend(name: str) -> JxlBackend:
    """The backend called `name`; raises SettingError (codec.backend) listing the known ones."""
    if name not in BACKENDS:
        raise SettingError(
            f"'{name}' is not a JPEG XL backend: use one of {sorted(BACKENDS)}", "codec.backend"
        )
    return BACKENDS[name]()
