"""Labelled files: an image file with its annotation, and a decode cache's view of them.

Plain data, importable without torch: encode workers build them, and keeping torch out of
their imports saves each worker the seconds torch takes to load.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class LabelledFile(NamedTuple):
    """An encoded image file with its annotation (see `sweep.data.base.ImageItem`).

    `mask` is the absolute path of the dataset's own per-pixel label file, if any.
    """

    path: str
    target: Any
    mask: str | None = None


class DecodedFiles(list):
    """Labelled files whose decoded pixels a decode cache holds (sweep/stages/decoded.py).

    File i's pixels, (heights[i], widths[i], 3) uint8 RGB in row-major order, are the bytes
    [offsets[i], offsets[i] + heights[i] * widths[i] * 3) of the part file `pixels[parts[i]]`:
    exactly what decoding the file gives (`sweep.data.pixels.read_pixels`, then `to_rgb`).

    Args:
        files: The files, in the cache's order.
        pixels: The locations of the cache's part files (a path or a store's URL each).
        offsets: Each file's first byte in its part.
        heights: Each file's height in pixels.
        widths: Each file's width in pixels.
        parts: Each file's part (an index into `pixels`).
    """

    def __init__(
        self, files: list[LabelledFile], pixels: list[str], offsets, heights, widths, parts
    ):
        if not len(files) == len(offsets) == len(heights) == len(widths) == len(parts):
            raise ValueError(
                f"the decode cache {pixels[:1]} indexes {len(offsets)} images for {len(files)} "
                "files"
            )
        super().__init__(files)
        self.pixels, self.offsets, self.heights, self.widths = pixels, offsets, heights, widths
        self.parts = parts

    def subset(self, indices) -> DecodedFiles:
        """The files at `indices` (positions in this list), with their pixels' places."""
        chosen = list(indices)

        def pick(values) -> list[int]:
            return [int(values[index]) for index in chosen]

        return DecodedFiles(
            [self[index] for index in chosen],
            self.pixels,
            pick(self.offsets),
            pick(self.heights),
            pick(self.widths),
            pick(self.parts),
        )
