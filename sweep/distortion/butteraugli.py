"""Butteraugli through libjxl's `butteraugli_main` (Debian: libjxl-devtools), when installed.

The tool reads two image files and prints the maximum distance on its first line and the
p-norm on a line "3-norm: <value>". Images are handed over as binary PPM/PGM, which the
tool reads as sRGB, in a private temporary folder. It measures nothing on images smaller
than 8x8 pixels (it prints 0); callers report None for those.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

TOOL = "butteraugli_main"
PACKAGE = "libjxl-devtools"
# Smallest side the tool measures.
MIN_SIDE = 8
PNORM = 3
INSTALL_HINT = f"on Debian/Ubuntu: apt-get install {PACKAGE} (`make install` tries it)"


class ButteraugliError(RuntimeError):
    """The tool failed or printed something unexpected; the message holds its output."""


def find_tool() -> str | None:
    return shutil.which(TOOL)


def tool_identity(path: str) -> dict:
    """What determines the tool's numbers: its binary and, where dpkg knows it, its package
    version (the library it loads is versioned with it)."""
    identity = {"tool": TOOL, "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]}
    if shutil.which("dpkg-query"):
        found = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", PACKAGE],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode == 0 and found.stdout.strip():
            identity["package"] = f"{PACKAGE} {found.stdout.strip()}"
    return identity


def write_pnm(path: Path, pixels: np.ndarray) -> None:
    """Binary PGM (grey) or PPM (RGB) of uint8 pixels."""
    height, width = pixels.shape[:2]
    magic = b"P5" if pixels.ndim == 2 else b"P6"
    path.write_bytes(b"%s\n%d %d\n255\n" % (magic, width, height) + pixels.tobytes())


def butteraugli(
    reference: np.ndarray, distorted: np.ndarray, tool: str, timeout: float = 600.0
) -> tuple[float, float]:
    """(maximum distance, 3-norm) of `distorted` against `reference`."""
    with tempfile.TemporaryDirectory(prefix="butteraugli-") as folder:
        suffix = ".pgm" if reference.ndim == 2 else ".ppm"
        paths = [Path(folder) / f"{name}{suffix}" for name in ("reference", "distorted")]
        write_pnm(paths[0], np.ascontiguousarray(reference))
        write_pnm(paths[1], np.ascontiguousarray(distorted))
        done = subprocess.run(
            [tool, str(paths[0]), str(paths[1]), "--pnorm", str(PNORM)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    return parse_output(done.returncode, done.stdout, done.stderr)


def parse_output(returncode: int, stdout: str, stderr: str) -> tuple[float, float]:
    lines = stdout.strip().splitlines()
    norm = re.search(rf"^{PNORM}-norm:\s*(\S+)\s*$", stdout, re.MULTILINE)
    try:
        if returncode != 0 or not lines or norm is None:
            raise ValueError
        return float(lines[0]), float(norm.group(1))
    except ValueError:
        output = " ".join((stdout + " " + stderr).split())[-300:]
        raise ButteraugliError(f"{TOOL} exited {returncode}: {output}") from None
