"""Packed shards: many small files (encoded images) appended into one large file, each
then read by its byte range (`sweep.store.locations.member`).

A Food-101 grid stores 101,000 images at 11 settings: one object per image would be 1.1
million PUTs and a GET per image per epoch on object storage, and a folder that takes minutes
to list on a disk. Packed, a stage is a few objects of tens of MB, read sequentially.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

PACK_FILE = "pack.bin"


class PackWriter:
    """Appends files' bytes to `<folder>/pack.bin`, opened on the first append.

    Args:
        folder: Where the pack is written (a stage output being written).
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / PACK_FILE
        self._stream: BinaryIO | None = None
        self.size = 0

    def append(self, data: bytes) -> int:
        """Writes `data` at the end of the pack; returns its first byte's offset."""
        if self._stream is None:
            self._stream = open(self.path, "wb")  # noqa: SIM115 (closed by close())
        offset = self.size
        self._stream.write(data)
        self.size += len(data)
        return offset

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
