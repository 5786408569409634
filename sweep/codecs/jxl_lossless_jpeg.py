"""Lossless JPEG -> JPEG XL transcoding (imagecodecs / libjxl): the saving with no loss at all."""

from __future__ import annotations

import imagecodecs
import numpy as np

from sweep.codecs.base import ORIGINAL, Codec, SettingError
from sweep.data.formats import has_jpeg_reconstruction, sniff_format
from sweep.data.pixels import decode_bytes

LOSSLESS = "lossless"
# What to do with a source that cannot be transcoded (not a JPEG, or a CMYK, 12-bit or
# arithmetic-coded JPEG that libjxl does not take).
NON_JPEG_CHOICES = ("pixels", "refuse")
EFFORTS = range(1, 11)


class NotTranscodableError(ValueError):
    """A source that the transcoder cannot turn into JPEG XL bit-exactly."""


class JxlLosslessJpegCodec(Codec):
    """Repacks each JPEG's DCT coefficients into JPEG XL, keeping what rebuilds the file.

    The one setting besides "original" is "lossless": the .jxl holds the JPEG's coefficients and
    its reconstruction data, so that `imagecodecs.jpegxl_decode_jpeg` gives back the source
    file bit for bit (checked for every image when it is encoded). libjxl chooses the effort of
    a transcode (imagecodecs takes none).

    A source that cannot be transcoded (a PNG, or a CMYK, 12-bit or arithmetic-coded JPEG) is,
    with `non_jpeg="pixels"`, encoded as lossless JPEG XL from its decoded pixels: the pixels
    survive exactly, the file does not. With `non_jpeg="refuse"` it stops the sweep, naming the
    file.

    Pixels: `decode` rebuilds the JPEG and decodes it with Pillow, so a transcoded image decodes
    to exactly the pixels of its source. libjxl's own pixel decoder (`imagecodecs.jpegxl_decode`)
    renders the same coefficients differently from libjpeg-turbo: by up to 18 levels (mean 0.8)
    on the demo's JPEGs.

    Args:
        name: Codec name used in results and keys.
        non_jpeg: "pixels" or "refuse", for a source that cannot be transcoded.
        effort: libjxl effort (1-10) of lossless encodes from pixels.
        threads: libjxl worker threads per encode.
    """

    extension = ".jxl"
    axis_label = "lossless JPEG -> JPEG XL"

    def __init__(
        self,
        name: str = "jxl_lossless_jpeg",
        non_jpeg: str = "pixels",
        effort: int = 7,
        threads: int = 1,
    ) -> None:
        self.name = name
        if non_jpeg not in NON_JPEG_CHOICES:
            raise SettingError(
                f"'{non_jpeg}' is not one of {list(NON_JPEG_CHOICES)}", "codec.non_jpeg"
            )
        if effort not in EFFORTS:
            raise SettingError(f"{effort} is outside libjxl's range 1-10", "codec.effort")
        self.non_jpeg = non_jpeg
        self.effort = int(effort)
        self.threads = int(threads)

    def sweep_settings(self) -> list[str]:
        return [ORIGINAL, LOSSLESS]

    def parse_setting(self, setting: str) -> str:
        if setting not in (ORIGINAL, LOSSLESS):
            raise SettingError(
                f"'{setting}' is not a lossless-transcoding setting: use 'original' or "
                f"'{LOSSLESS}' (for lossy JPEG XL use codec=jxl)"
            )
        return setting

    def library_version(self) -> str:
        return f"imagecodecs {imagecodecs.__version__} / {imagecodecs.jpegxl_version()}"

    def encoder_parameters(self) -> dict:
        return {"non_jpeg": self.non_jpeg, "effort": self.effort}

    def encode_source(self, source: bytes, pixels: np.ndarray, setting: str) -> bytes:
        try:
            return self.transcode(source)
        except NotTranscodableError as error:
            if self.non_jpeg == "refuse":
                raise NotTranscodableError(
                    f"{error}; codec.non_jpeg=pixels encodes such images losslessly from "
                    f"their pixels instead"
                ) from None
            return self.encode(pixels, setting)

    def transcode(self, jpeg: bytes) -> bytes:
        """JPEG XL that rebuilds `jpeg` bit for bit; raises NotTranscodableError."""
        found = sniff_format(jpeg[:32])
        if found != "jpeg":
            raise NotTranscodableError(f"the source is {found}, not a JPEG")
        try:
            data = bytes(imagecodecs.jpegxl_encode_jpeg(jpeg, numthreads=self.threads))
        except imagecodecs.JpegxlError as error:
            raise NotTranscodableError(
                f"libjxl cannot transcode this JPEG (CMYK, 12-bit or arithmetic-coded?): {error}"
            ) from None
        if bytes(imagecodecs.jpegxl_decode_jpeg(data, numthreads=self.threads)) != jpeg:
            raise NotTranscodableError("libjxl's transcode does not rebuild this JPEG exactly")
        return data

    def encode(self, pixels: np.ndarray, setting: str) -> bytes:
        """Lossless JPEG XL from pixels: the fallback for sources that are not JPEG."""
        del setting
        return bytes(
            imagecodecs.jpegxl_encode(
                np.ascontiguousarray(pixels),
                lossless=True,
                effort=self.effort,
                numthreads=self.threads,
            )
        )

    def decode(self, data: bytes) -> np.ndarray:
        if not has_jpeg_reconstruction(data):
            # Encoded from pixels: no JPEG inside.
            return imagecodecs.jpegxl_decode(data, numthreads=self.threads)
        return decode_bytes(data)
