"""The artifact store on object storage (S3, GCS, Azure Blob: any fsspec URL), which has no
atomic rename.

    <url>/<stage>/<key>/DONE                            the manifest, written last, create-only
    <url>/<stage>/<key>/payload-<host>-<pid>-<id>/...   the files of the writer that published

A writer builds the output in a local folder, uploads its files under a prefix of its own,
then writes the manifest with a create-only write (`open(path, "xb")`: `If-None-Match: *` on
S3). A writer that loses that race removes its own prefix and keeps the winner's output: the
key is a content address of the inputs, so both hold the same result. Readers trust the
manifest alone, so a writer killed at any moment leaves at most an unnamed prefix, which
`python -m sweep.store clean` removes once it is older than a set age. Safety never rests on
the server making conditional writes atomic: two writers that both "win" each publish a
complete payload, and the manifest names one of them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sweep.store.atomic import StoreError, temporary_tag
from sweep.store.cache import DEFAULT_CACHE_BYTES, ReadCache
from sweep.store.local import STALE_SECONDS, ArtifactStore
from sweep.store.locations import register_cache
from sweep.store.manifest import DONE, Manifest, manifest_of
from sweep.store.objects import describe_error, filesystem, join, object_path, write_if_absent

PAYLOAD_PREFIX = "payload-"


class ObjectStore(ArtifactStore):
    """Stage outputs under an object-store URL, read through each node's bounded cache.

    Args:
        root: The store's URL, e.g. s3://bucket/sweep/store.
        cache_dir: This node's cache folder (None: its temporary folder).
        cache_bytes: The most the cache keeps on each node.
    """

    remote = True

    def __init__(
        self,
        root: str | Path,
        cache_dir: str | Path | None = None,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.root = str(root).rstrip("/")
        self.cache = ReadCache(cache_dir, cache_bytes)
        self._manifests: dict[tuple[str, str], Manifest] = {}
        register_cache(self.root, self.cache)

    def __getstate__(self) -> dict:
        return {"root": self.root, "cache": self.cache}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"], state["cache"].configured, state["cache"].max_bytes)

    @property
    def url(self) -> str:
        return self.root

    @property
    def local_dir(self) -> Path:
        return self.cache.folder / "stores" / object_path(self.root)

    def output_url(self, stage: str, key: str) -> str:
        return join(self.root, stage, key)

    def is_done(self, stage: str, key: str) -> bool:
        if (stage, key) in self._manifests:
            return True
        with self._reporting(self.output_url(stage, key)):
            fs, path = filesystem(join(self.output_url(stage, key), DONE))
            return fs.exists(path)

    def manifest(self, stage: str, key: str) -> Manifest:
        if (stage, key) not in self._manifests:
            url = join(self.output_url(stage, key), DONE)
            with self._reporting(url):
                fs, path = filesystem(url)
                text = fs.cat_file(path).decode()
            self._manifests[stage, key] = Manifest.from_json(text)
        return self._manifests[stage, key]

    def location(self, stage: str, key: str, name: str) -> str:
        manifest = self.manifest(stage, key)
        if name not in manifest.files:
            raise FileNotFoundError(f"{self.output_url(stage, key)} holds no {name}")
        return join(self.output_url(stage, key), manifest.payload, name)

    def has_file(self, stage: str, key: str, name: str) -> bool:
        return name in self.manifest(stage, key).files

    def file(self, stage: str, key: str, name: str) -> Path:
        """This node's copy of a file of a finished output (fetched once, then cached)."""
        url = self.location(stage, key, name)
        size = self.manifest(stage, key).files[name]["size"]
        with self._reporting(url):
            copy = self.cache.copy_of(url, size)
        if copy is None:
            raise StoreError(
                f"{url} ({size} bytes) is larger than this node's read cache "
                f"(store.cache_bytes={self.cache.max_bytes}): raise store.cache_bytes"
            )
        return copy

    def path(self, stage: str, key: str) -> Path:
        """A local folder holding every file of a finished output (this node's copies)."""
        manifest = self.manifest(stage, key)
        for name in manifest.files:
            self.file(stage, key, name)
        return self.cache.path_of(join(self.output_url(stage, key), manifest.payload))

    @contextmanager
    def writing(self, stage: str, key: str) -> Iterator[Path]:
        """Yields a local folder; on a clean exit its files become the stage's output.

        On an exception nothing is uploaded. If another writer published the key first, its
        output is kept and this one's uploaded files are removed.
        """
        self.cache.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="writing-", dir=self.cache.folder))
        try:
            yield staging
            self._publish(stage, key, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _publish(self, stage: str, key: str, staging: Path) -> None:
        output = self.output_url(stage, key)
        payload = f"{PAYLOAD_PREFIX}{temporary_tag()[len('tmp-') :]}-{uuid.uuid4().hex[:8]}"
        with self._reporting(output):
            if self.is_done(stage, key):
                return  # published meanwhile by another writer: keep theirs
            manifest = manifest_of(staging, payload)
            fs, base = filesystem(join(output, payload))
            names = list(manifest.files)
            fs.put([str(staging / name) for name in names], [f"{base}/{name}" for name in names])
            if write_if_absent(join(output, DONE), manifest.to_json().encode()):
                self._manifests[stage, key] = manifest
            else:
                fs.rm(base, recursive=True)  # lost the race: the winner's output stands

    def remove_stale_temporaries(self, max_age_seconds: float = STALE_SECONDS) -> int:
        """Deletes payload prefixes that no manifest names and that are older than
        max_age_seconds (their writers died or lost a race); returns how many."""
        with self._reporting(self.root):
            fs, root = filesystem(self.root)
            objects = fs.find(root, detail=True) if fs.exists(root) else {}
            prefixes: dict[str, float] = {}
            manifests: dict[str, str] = {}
            for path, info in objects.items():
                parts = path.split("/")
                if parts[-1] == DONE:
                    manifests["/".join(parts[:-1])] = path
                found = next((i for i, p in enumerate(parts) if p.startswith(PAYLOAD_PREFIX)), None)
                if found is not None:
                    prefix = "/".join(parts[: found + 1])
                    prefixes[prefix] = max(prefixes.get(prefix, 0.0), modified(info))
            removed = 0
            now = time.time()
            by_output: dict[str, list[str]] = {}
            for prefix in prefixes:
                by_output.setdefault(prefix.rsplit("/", 1)[0], []).append(prefix)
            for output, own in by_output.items():
                stale = [p for p in own if now - prefixes[p] > max_age_seconds]
                if not stale or (len(own) == 1 and output in manifests):
                    # A published output with one prefix: its manifest names that one (a
                    # payload is uploaded before the manifest, and only unnamed ones go).
                    continue
                named = None
                if output in manifests:  # a published output: its manifest names one prefix
                    text = fs.cat_file(manifests[output]).decode()
                    named = f"{output}/{Manifest.from_json(text).payload}"
                for prefix in stale:
                    if prefix != named:
                        fs.rm(prefix, recursive=True)
                        removed += 1
            return removed

    def check_writable(self) -> None:
        """Raises StoreError if this node's cache folder or the store cannot be written."""
        try:
            self.cache.folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=self.cache.folder).close()
        except OSError as error:
            raise StoreError(
                f"cannot write to this node's read cache {self.cache.folder} "
                f"({error.strerror}): set store.cache_dir to a writable folder"
            ) from None
        probe = join(self.root, f".write-test-{uuid.uuid4().hex[:8]}")
        with self._reporting(self.root, "cannot write to "):
            fs, path = filesystem(probe)
            fs.pipe_file(path, b"ok")
            fs.rm_file(path)

    @contextmanager
    def _reporting(self, url: str, lead: str = "object store: ") -> Iterator[None]:
        """An error of the object store becomes a StoreError naming the URL."""
        try:
            yield
        except (StoreError, FileNotFoundError):
            raise
        except Exception as error:
            raise StoreError(lead + describe_error(url, error)) from error


def modified(info: dict) -> float:
    """An object's last-modified time in seconds, whatever the backend calls it."""
    value = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or 0
    return value.timestamp() if hasattr(value, "timestamp") else float(value)
