"""Image files decoded to tensors, or read from their decode cache: what every input
representation reads its samples from."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from sweep.data.files import DecodedFiles, LabelledFile
from sweep.data.pixels import read_pixels, to_rgb
from sweep.store.locations import local_file, read_ahead, same_object


class ImageFileDataset(Dataset):
    """Decodes image files of any format the sweep writes (JPEG, PNG, JPEG XL) to tensors."""

    def __init__(self, files: list[LabelledFile], transform) -> None:
        self.files = files
        self.transform = transform

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label, _ = self.files[index]
        if index + 1 < len(self.files) and not same_object(path, self.files[index + 1].path):
            read_ahead(self.files[index + 1].path)  # a packed shard's next pack, on a store
        pixels = to_rgb(read_pixels(path))  # (H, W, 3) uint8
        image = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)  # (3, H, W)
        return self.transform(image), label


class DecodedImageDataset(Dataset):
    """`ImageFileDataset`'s samples read from a decode cache instead of decoding the files:
    the same (3, H, W) uint8 tensor goes through the transform (see `DecodedFiles`).

    Each process maps each of the cache's part files itself on its first read of it, so that
    loader workers share the page cache and a pickled dataset never carries the pixels.
    """

    def __init__(self, files: DecodedFiles, transform) -> None:
        self.files = files
        self.transform = transform
        self.mapped: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.files)

    def __getstate__(self) -> dict:
        return self.__dict__ | {"mapped": {}}  # a worker maps the parts again

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        files = self.files
        part = int(files.parts[index])
        if part not in self.mapped:
            # This node's copy when the cache is on object storage (fetched once).
            location = local_file(files.pixels[part])
            self.mapped[part] = np.memmap(location, dtype=np.uint8, mode="r")
        start = int(files.offsets[index])
        height, width = int(files.heights[index]), int(files.widths[index])
        mapped = self.mapped[part]
        pixels = mapped[start : start + height * width * 3].reshape(height, width, 3)
        # Copied out of the read-only map: (H, W, 3) -> (3, H, W), as ImageFileDataset gives.
        image = torch.from_numpy(np.array(pixels)).permute(2, 0, 1)
        return self.transform(image), files[index].target


def image_dataset(files: list[LabelledFile], transform) -> Dataset:
    """The files' (3, H, W) uint8 pixels through `transform`: read from their decode cache
    when they carry one (`DecodedFiles`), else decoded from the files."""
    if isinstance(files, DecodedFiles):
        return DecodedImageDataset(files, transform)
    return ImageFileDataset(files, transform)
