"""An output's DONE manifest: the last object a writer puts, naming every file of the output
with its size and SHA-256, and the payload prefix they lie under.

Readers trust the manifest alone: a file is read from where the manifest says and checked
against its size. An output without a manifest does not exist, whatever objects lie there.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

DONE = "DONE"
MANIFEST_SCHEMA = 1
# Read in 8 MiB pieces: digests of multi-GB weights or packs never sit in memory whole.
CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class Manifest:
    """What a published output holds.

    Args:
        payload: The folder, relative to the output's, that holds its files: a writer's own
            prefix on an object store (`payload-<host>-<pid>-<id>`), "" on a local disk.
        files: Each file's path relative to the payload, with its "size" and "sha256".
        finished: When the writer published it (seconds since the epoch).
        writer: The host and process that published it.
    """

    payload: str
    files: dict[str, dict] = field(default_factory=dict)
    finished: float = 0.0
    writer: str = ""

    def to_json(self) -> str:
        body = {
            "schema": MANIFEST_SCHEMA,
            "finished": self.finished,
            "writer": self.writer,
            "payload": self.payload,
            "files": self.files,
        }
        return json.dumps(body, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        body = json.loads(text)
        # A DONE of the local store before manifests held only {"finished": ...}.
        return cls(
            payload=body.get("payload", ""),
            files=body.get("files", {}),
            finished=body.get("finished", 0.0),
            writer=body.get("writer", ""),
        )

    @property
    def total_bytes(self) -> int:
        return sum(entry["size"] for entry in self.files.values())


def manifest_of(folder: Path, payload: str) -> Manifest:
    """The manifest of every file under `folder` (sizes and digests), to be published under
    `payload`."""
    files = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        files[path.relative_to(folder).as_posix()] = {
            "size": path.stat().st_size,
            "sha256": file_digest(path),
        }
    return Manifest(payload, files, time.time(), f"{socket.gethostname()}:{os.getpid()}")


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
