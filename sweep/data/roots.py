"""Where a dataset lies: a local folder, or a prefix of an object store (`task.root=s3://...`).

A local root is a `pathlib.Path`, and its files are asked of the disk one by one, as they always
were. An object-store root (s3://, gs://, az://, any fsspec URL) is a `UPath` (universal_pathlib:
pathlib's API over fsspec), so readers join, name and read its files as they do a folder's; its
files are listed once (`ObjectFiles`: one paginated listing, about one request per 1,000
objects on S3), and every check of a file or folder is answered from that listing rather than
by a request per file. The same listing gives each object's size and ETag, which key the digest
cache (sweep/data/digests.py). Object stores have no folders: a folder is the prefix of some
object's name, so an empty folder does not exist there.

Readers ask their root's `DatasetFiles` (`files_of(root)`), never the path itself, whether a
file exists, what a folder holds and what an image's header says.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from PIL import Image
from upath import UPath

from sweep.data.errors import DatasetError
from sweep.store.locations import member, read_location
from sweep.store.objects import describe_error, filesystem, is_url, local_path

# Requests in flight to an object store when a reader reads many small files (annotations,
# image headers): each answers in tens of milliseconds, so one at a time would take minutes.
REQUESTS_IN_FLIGHT = 32
# The first bytes of an image fetched to read its header (mode and size); an image whose
# header runs longer (a large EXIF block) is fetched whole.
HEADER_BYTES = 64 * 1024

Entry = TypeVar("Entry")
Result = TypeVar("Result")


def dataset_root(root: str | Path) -> Path | UPath:
    """A dataset root as readers hold it: a local folder as an absolute Path (file:// is a
    local folder too), an object-store URL as a UPath (no trailing slash)."""
    if isinstance(root, UPath) and not isinstance(root, Path):
        return root
    if is_url(root):
        # Listings uncached, as `sweep.store.objects.filesystem` makes them.
        return UPath(str(root).rstrip("/"), use_listings_cache=False)
    return local_path(root)


def is_object_path(path: Path | UPath) -> bool:
    """True for a path on an object store (not a local file)."""
    return isinstance(path, UPath) and not isinstance(path, Path)


@dataclass(frozen=True)
class StoredObject:
    """One object of a listing.

    Attributes:
        size: Its size in bytes.
        stamp: What changes whenever its content does: the ETag (S3, GCS, Azure), or the
            modification time of a store that gives no ETag; None if the store gives neither.
    """

    size: int
    stamp: str | None


# Keys of a listing entry that change with the object's content, best first.
STAMP_KEYS = ("ETag", "etag", "md5Hash", "LastModified", "last_modified", "mtime", "updated")


def object_stamp(info: dict) -> str | None:
    """The content stamp of an fsspec listing entry (see `StoredObject.stamp`)."""
    for key in STAMP_KEYS:
        if info.get(key) is not None:
            return f"{key}:{info[key]}"
    return None


class DiskFiles:
    """A local root's files, each question asked of the disk (as readers always did)."""

    def is_file(self, path: Path) -> bool:
        return path.is_file()

    def is_dir(self, path: Path) -> bool:
        return path.is_dir()

    def exists(self, path: Path) -> bool:
        return path.exists()

    def iterdir(self, folder: Path) -> Iterable[Path]:
        return folder.iterdir()

    def glob(self, folder: Path, pattern: str) -> Iterable[Path]:
        return folder.glob(pattern)

    def walk(self, folder: Path) -> list[Path]:
        """The files under a folder and its sub-folders, sorted by relative path.

        Symlinked sub-folders are followed (a folder assembled from links to other disks),
        each real folder once, so a link back up the tree cannot loop.
        """
        found, visited = [], set()
        for current, folders, files in os.walk(folder, followlinks=True):
            real = os.path.realpath(current)
            if real in visited:
                folders.clear()
                continue
            visited.add(real)
            found += [path for name in files if (path := Path(current) / name).is_file()]
        return sorted(found, key=lambda path: path.relative_to(folder).as_posix())

    def image_header(self, path: Path) -> tuple[str, tuple[int, int]]:
        """(Pillow mode, (width, height)) from an image's header.

        Raises:
            OSError, SyntaxError, ValueError: As Image.open does for an unreadable header.
        """
        with Image.open(path) as image:
            return image.mode, image.size

    def map(self, function: Callable[[Entry], Result], entries: list[Entry]) -> list[Result]:
        """function(entry) for each entry, in order, one at a time."""
        return [function(entry) for entry in entries]

    def listing(self) -> dict[str, StoredObject] | None:
        """The objects of an object-store root (None: a local root is asked file by file)."""
        return None


class ObjectFiles:
    """An object-store root's files, from one listing of every object under the root.

    The listing is taken at the first question and kept (as a reader keeps its items). A path
    outside the root is asked of the store directly. An error of the store (unreachable, no
    credentials) is a DatasetError that names the URL and what to check.

    Args:
        root: The root, a UPath (`dataset_root`).
    """

    def __init__(self, root: UPath) -> None:
        self.root = root

    @cached_property
    def _tree(self) -> tuple[dict[str, StoredObject], dict[str, set[str]]]:
        """(relpath -> object, folder relpath -> the names it holds); the root is ""."""
        url = str(self.root)
        fs, base = filesystem(url)
        base = base.rstrip("/")
        try:
            entries = fs.find(base, withdirs=True, detail=True)
        except FileNotFoundError:  # a bucket that does not exist holds nothing
            entries = {}
        except Exception as error:  # the store's own errors are not all OSErrors
            raise DatasetError(
                f"cannot list the dataset root {describe_error(url, error)}"
            ) from error
        objects: dict[str, StoredObject] = {}
        children: dict[str, set[str]] = {}
        for name, info in entries.items():
            relpath = name.rstrip("/")[len(base) + 1 :]
            if not name.startswith(base + "/") or not relpath:
                continue  # the root itself
            if info.get("type") != "directory":
                objects[relpath] = StoredObject(int(info.get("size") or 0), object_stamp(info))
            parts = relpath.split("/")
            for depth in range(len(parts)):
                children.setdefault("/".join(parts[:depth]), set()).add(parts[depth])
            if info.get("type") == "directory":
                children.setdefault(relpath, set())
        return objects, children

    def relpath(self, path: UPath) -> str | None:
        """A path's name relative to the root, or None for a path outside it."""
        root, text = str(self.root), str(path).rstrip("/")
        if text == root:
            return ""
        return text[len(root) + 1 :] if text.startswith(root + "/") else None

    def listing(self) -> dict[str, StoredObject]:
        return self._tree[0]

    def is_file(self, path: UPath) -> bool:
        relpath = self.relpath(path)
        return path.is_file() if relpath is None else relpath in self._tree[0]

    def is_dir(self, path: UPath) -> bool:
        relpath = self.relpath(path)
        return path.is_dir() if relpath is None else relpath in self._tree[1]

    def exists(self, path: UPath) -> bool:
        return self.is_file(path) or self.is_dir(path)

    def iterdir(self, folder: UPath) -> Iterator[UPath]:
        relpath = self.relpath(folder)
        if relpath is None:
            yield from folder.iterdir()
            return
        for name in sorted(self._tree[1].get(relpath, ())):
            yield folder / name

    def glob(self, folder: UPath, pattern: str) -> Iterator[UPath]:
        """The files and folders under `folder` whose relative names match `pattern` part by
        part (`*`, `?`, `[...]` within a part; no `**`), as Path.glob matches them."""
        parts = pattern.split("/")
        start = self.relpath(folder)
        if start is None or "**" in parts:
            raise ValueError(f"cannot glob {pattern!r} under {folder} from the root's listing")
        prefix = f"{start}/" if start else ""
        names = [*self._tree[0], *self._tree[1]]
        for name in dict.fromkeys(names):
            if not name.startswith(prefix) or not name[len(prefix) :]:
                continue
            relative = name[len(prefix) :].split("/")
            if len(relative) == len(parts) and all(map(fnmatchcase, relative, parts)):
                yield folder / "/".join(relative)

    def walk(self, folder: UPath) -> list[UPath]:
        """The files under a folder and its sub-folders, sorted by relative path."""
        start = self.relpath(folder)
        if start is None:
            return sorted(folder.rglob("*"), key=str)
        prefix = f"{start}/" if start else ""
        found = sorted(name[len(prefix) :] for name in self._tree[0] if name.startswith(prefix))
        return [folder / name for name in found]

    def image_header(self, path: UPath) -> tuple[str, tuple[int, int]]:
        """(Pillow mode, (width, height)) from the first HEADER_BYTES of an image (the whole
        object if its header runs longer).

        A listed object is read by byte range, which is one GET (a whole object's read asks
        its size with a HEAD first).
        """
        location, relpath = str(path), self.relpath(path)
        listed = None if relpath is None else self._tree[0].get(relpath)
        if listed is None:
            return header_of(read_location(location))
        if listed.size == 0:
            return header_of(b"")  # refused as Pillow refuses an empty file
        head = read_location(member(location, 0, min(listed.size, HEADER_BYTES)))
        try:
            return header_of(head)
        except (OSError, SyntaxError, ValueError):
            if listed.size <= HEADER_BYTES:
                raise
        return header_of(read_location(member(location, 0, listed.size)))

    def map(self, function: Callable[[Entry], Result], entries: list[Entry]) -> list[Result]:
        """function(entry) for each entry, REQUESTS_IN_FLIGHT at once; results in order, and
        the first entry (in order) that raises raises."""
        with ThreadPoolExecutor(REQUESTS_IN_FLIGHT) as pool:
            return list(pool.map(function, entries))


def header_of(data: bytes) -> tuple[str, tuple[int, int]]:
    """(Pillow mode, (width, height)) of an image's first bytes."""
    with Image.open(io.BytesIO(data)) as image:
        return image.mode, image.size


DatasetFiles = DiskFiles | ObjectFiles
DISK_FILES = DiskFiles()


def files_of(root: Path | UPath) -> DatasetFiles:
    """The files of a dataset root: asked of the disk, or of one listing of the store."""
    return ObjectFiles(root) if is_object_path(root) else DISK_FILES
