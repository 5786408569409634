"""Mixed-compression training: each image of each epoch at a setting drawn at random.

Mentzer & Montanari (2024, "Scaling Training Data with Lossy Image Compression") also train
on randomly varied compression levels. The `mixed` train setting (grid.train, with its
settings in grid.mixed) does that over encodes the sweep already has: the training reads the
same split at every one of its settings, and each time the loader asks for image i it gets
image i at one of them, drawn uniformly. The draw uses torch's generator, which the training
loop seeds (and the loader reseeds in each worker, per epoch), so a seed gives the same
draws, and every epoch draws anew. With train.decode_cache each setting's files carry that
setting's decode cache (`DecodedFiles`), and its dataset reads the pixels from there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from sweep.data.files import LabelledFile


class MixedFiles(list):
    """The split's files at its first setting (what summaries count), with the same images
    at every setting of the mix, in the same order.

    Args:
        settings: The settings drawn from.
        per_setting: For each setting, its encode's files in split order.
    """

    def __init__(self, settings: Sequence[str], per_setting: Sequence[list[LabelledFile]]):
        if len(settings) != len(per_setting) or len(settings) < 2:
            raise ValueError("a mix needs two or more settings, each with its files")
        counts = {len(files) for files in per_setting}
        if len(counts) != 1:
            raise ValueError(f"the mix's encodes hold different numbers of images: {counts}")
        super().__init__(per_setting[0])
        self.settings = tuple(settings)
        # Kept as given: a setting's `DecodedFiles` reads its decode cache (train.decode_cache).
        self.per_setting = tuple(per_setting)


class MixedDataset(Dataset):
    """Item i is item i of one of the datasets (one per setting), drawn uniformly each time."""

    def __init__(self, datasets: Sequence[Dataset]):
        self.datasets = list(datasets)

    def __len__(self) -> int:
        return len(self.datasets[0])

    def __getitem__(self, index: int):
        choice = int(torch.randint(len(self.datasets), ()))
        return self.datasets[choice][index]


def training_dataset(task, model, files: list[LabelledFile], options) -> Dataset:
    """The task's training dataset of the files; for a mix, one per setting, drawn from."""
    if isinstance(files, MixedFiles):
        return MixedDataset(
            [task.training_dataset(model, chosen, options) for chosen in files.per_setting]
        )
    return task.training_dataset(model, files, options)
