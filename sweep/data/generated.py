"""Built-in datasets generated on first use: one folder per parameter set, written atomically."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path


def generated_folder(root: str | Path, parameters: dict) -> Path:
    """root/v<version>-<digest of the parameters>: other parameters never reuse a folder."""
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()
    return Path(root).absolute() / f"v{parameters['version']}-{digest[:12]}"


def generate_once(folder: Path, parameters: dict, write: Callable[[Path], None]) -> None:
    """Runs `write(staging)` unless `folder` is complete, then renames staging to `folder`.

    Written under a temporary name with a DONE marker last, so a killed run never leaves a
    half dataset that a later run would read.
    """
    if (folder / "DONE").exists():
        return
    staging = folder.with_name(f"{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    staging.mkdir(parents=True)
    write(staging)
    (staging / "DONE").write_text(json.dumps(parameters) + "\n")
    try:
        os.rename(staging, folder)
    except OSError:
        # Another process generated the same parameters first: its copy is identical.
        shutil.rmtree(staging, ignore_errors=True)
