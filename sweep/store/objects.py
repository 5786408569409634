"""Object storage through fsspec: which roots are URLs, their file systems, and the retries
that S3's conditional writes ask for.

Credentials and endpoints come from where each backend looks for them (for S3: the `AWS_*`
variables, `AWS_ENDPOINT_URL_S3`, `~/.aws/`), never from the sweep's config, so they are never
in a key, a log or a report.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import fsspec
from fsspec.core import url_to_fs

# How often a conditional write that S3 answers with 409 ConditionalRequestConflict (a write
# to the same key in flight) is tried again, and the first pause, doubled each time.
CONFLICT_TRIES = 6
CONFLICT_PAUSE_SECONDS = 0.2


def is_url(root: str | Path) -> bool:
    """True for an object-store URL (s3://, gs://, az://, memory://, ...); a plain path or a
    file:// URL is a local folder."""
    text = str(root)
    return "://" in text and not text.startswith("file://")


def local_path(root: str | Path) -> Path:
    """A local root as an absolute path (file:// stripped)."""
    text = str(root)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return Path(text).absolute()


def local_dir_of(results_dir: str) -> str:
    """This machine's own folder for a results_dir: the folder itself, or for a URL a folder
    named after it under ~/.cache/sweep/ (the lock, Hydra's runs, the local MLflow database,
    the demo data and the reports before they are uploaded)."""
    if not is_url(results_dir):
        return str(local_path(results_dir))
    scheme, _, rest = str(results_dir).partition("://")
    return str(Path.home() / ".cache" / "sweep" / "results" / scheme / rest.strip("/"))


def upload_folder(folder: Path, url: str) -> None:
    """Copies a local folder's files under a URL (a report beside an object-store store)."""
    fs, base = filesystem(url)
    names = [
        p.relative_to(folder).as_posix() for p in sorted(Path(folder).rglob("*")) if p.is_file()
    ]
    fs.put([str(Path(folder) / name) for name in names], [f"{base}/{name}" for name in names])


def join(url: str, *parts: str) -> str:
    return "/".join([url.rstrip("/"), *(part.strip("/") for part in parts if part)])


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system of a URL and the URL's path on it.

    Listings are not cached: another node may publish an output at any moment, and a cached
    listing would hide it.
    """
    return url_to_fs(url, use_listings_cache=False)


def object_path(url: str) -> str:
    """The URL's path on its file system (`bucket/prefix/...` for S3)."""
    return filesystem(url)[1]


def is_conflict(error: BaseException) -> bool:
    """S3's 409 ConditionalRequestConflict: a conditional write raced another write to the same
    key, and the request may be sent again."""
    text = f"{type(error).__name__} {error}"
    return "ConditionalRequestConflict" in text or "(409)" in text


def write_if_absent(url: str, data: bytes) -> bool:
    """Writes `data` to `url` only if nothing is there (`open(..., "xb")`, which s3fs sends as
    `If-None-Match: *`); returns False when an object was there already."""
    fs, path = filesystem(url)
    pause = CONFLICT_PAUSE_SECONDS
    for attempt in range(CONFLICT_TRIES):
        try:
            with fs.open(path, "xb") as stream:
                stream.write(data)
            return True
        except FileExistsError:
            return False
        except OSError as error:
            if not is_conflict(error) or attempt == CONFLICT_TRIES - 1:
                raise
            time.sleep(pause)
            pause *= 2
    raise AssertionError("unreachable")


def describe_error(url: str, error: BaseException) -> str:
    """What went wrong with an object store, and where to look: the endpoint and credentials
    come from the environment, so the message names those variables (never their values)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    where = f" at {endpoint}" if endpoint and url.startswith("s3://") else ""
    return (
        f"{url}{where}: {type(error).__name__}: {error}. Check that the object store is up and "
        f"reachable and that its credentials are set (for S3: AWS_ACCESS_KEY_ID, "
        f"AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3 or ~/.aws/), then rerun the same command: "
        f"every published stage is kept, and nothing half-written is ever read"
    )
