"""What a dataset reader returns: per split, the image files and their labels.

Readers only list files; they never decode pixels. The encode stage reads the files, so every
setting of the grid sees exactly the same list of images.
"""

from __future__ import annotations

import hashlib
import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upath import UPath

from sweep.data.digests import FileDigests
from sweep.data.errors import DatasetError
from sweep.data.roots import DISK_FILES, DatasetFiles, files_of, is_object_path

SPLITS = ("train", "test")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jxl"})


@dataclass(frozen=True)
class ImageItem:
    """One image of a split and its annotation.

    Attributes:
        relpath: The image file, relative to the dataset root. Only this file is re-encoded.
        target: JSON-serialisable annotation that passes through encoding untouched: a class
            index (classification) or {"boxes", "labels", "difficult"} (detection).
        mask: A per-pixel label file relative to the root (segmentation). It is never
            re-encoded: every setting's records point at the dataset's own mask file.
    """

    relpath: str
    target: Any
    mask: str | None = None


class DatasetReader(ABC):
    """Lists the images, annotations and classes of a dataset in a local folder or under an
    object-store URL (`sweep.data.roots`: a Path, or a UPath over fsspec)."""

    root: Path | UPath

    @property
    def files(self) -> DatasetFiles:
        """The root's files: asked of the disk, or of one listing of the object store."""
        held = self.__dict__.get("_files")
        if held is None or held[0] is not self.root:
            held = self.__dict__["_files"] = (self.root, files_of(self.root))
        return held[1]

    def prepare(self) -> None:
        """Checks the layout (and, for generated data, writes it). Raises DatasetError."""
        if not self.files.is_dir(self.root):
            if is_object_path(self.root):
                raise DatasetError(
                    f"dataset root {self.root} holds no objects: set task.root to the URL of "
                    f"the folder that holds the dataset (on an object store, the prefix of its "
                    f"files' names), or upload the dataset there"
                )
            raise DatasetError(f"dataset root {self.root} does not exist or is not a folder")

    @abstractmethod
    def class_names(self) -> list[str]:
        """Class names; a label is an index into this list."""

    @abstractmethod
    def read_split(self, split: str) -> list[ImageItem]:
        """The images of 'train' or 'test', in a stable order."""

    def items(self, split: str) -> list[ImageItem]:
        """`read_split`, listed once per reader: checks, screening and planning share it."""
        listed = self.__dict__.setdefault("_listed", {})
        if split not in listed:
            listed[split] = self.read_split(split)
        return listed[split]

    def fingerprint(self, items: list[ImageItem], digests: FileDigests | None = None) -> str:
        """Digest of a split's files by content: relative names, sizes, content digests, labels
        and masks, and the class names.

        Neither the dataset's place (its root) nor its files' modification times enter it: a
        moved, copied or re-synced dataset has the fingerprint of the same files elsewhere, so
        it reuses every stage. A changed file changes its digest, so it gets new stage keys.

        Args:
            items: The split's images (`items(split)`).
            digests: The content digests, cached in the results store (`FileDigests`), so that
                an unchanged file is read once; None hashes every file.
        """
        names = [item.relpath for item in items]
        names += [item.mask for item in items if item.mask is not None]
        found = (digests or FileDigests()).of(self.root, names, self.files.listing())
        digest = hashlib.sha256()
        for item in items:
            record = [item.relpath, item.target, *found[item.relpath]]
            if item.mask is not None:
                record += [item.mask, *found[item.mask]]
            digest.update(json.dumps(record).encode())
        digest.update(json.dumps(self.class_names()).encode())
        return digest.hexdigest()[:24]

    def resolve(self, relpath: str) -> Path | UPath:
        """Absolute path of an item under the root; refuses names that leave it lexically.

        Under an object-store root it is a UPath, whose str() is the object's full URL.

        The check is on the name only: a split-file entry with '../' or an absolute path is
        refused, while symlinks inside the root are followed wherever they point (a
        JPEGImages/ that links to another disk is the usual way to assemble a dataset).
        """
        normal = os.path.normpath(relpath)
        if os.path.isabs(normal) or normal == os.pardir or normal.startswith(os.pardir + os.sep):
            raise DatasetError(
                f"'{relpath}' points outside the dataset root {self.root}: a listed name may "
                f"not climb out of it with '../' or be absolute; link the files into the root "
                f"instead (symlinks inside it are followed)"
            )
        return self.root / normal


def is_image_file(path: Path | UPath, files: DatasetFiles = DISK_FILES) -> bool:
    """A file (of `files`, the root's) with an image's extension."""
    return files.is_file(path) and path.suffix.lower() in IMAGE_SUFFIXES
