"""A model's DCT sensitivity map, the input of codec=jpeg_tuned, and its JSON file.

A map holds, per channel (Y, Cb, Cr), an 8x8 array `S[i][j]` in natural order (i: vertical
frequency, row; j: horizontal frequency, column; orthonormal 8x8 DCT-II as in JPEG): how much
a trained model's prediction changes when that coefficient of one block moves. S >= 0, larger
= more sensitive. The file:

    {"key": "<sensitivity stage key>", "label": "vit_tiny trained on original, ...",
     "method": "gradient", "statistic": "clean_prob", "chroma_subsampling": "4:2:0",
     "maps": {"Y": [[8 numbers] x 8], "Cb": [...], "Cr": [...]}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.errors import OptionError
from sweep.sensitivity.options import CHANNELS, CHROMA_SUBSAMPLINGS
from sweep.store import write_text_atomic

# The config option through which a user names a map file.
MAP_OPTION = "codec.map"
TEXT_FIELDS = ("key", "label", "method", "statistic")


@dataclass(frozen=True, eq=False)
class TuningMap:
    """One sensitivity map per channel, with where it came from; checked when built.

    The arrays are stored as read-only float64 copies, so a map cannot change after it was
    checked (or after a codec took it). Compare maps by `key` or by their arrays (eq=False:
    `==` on arrays has no single truth value).

    Attributes:
        key: Store key of the sensitivity stage that measured it (20 hex characters when made
            by the sweep); part of every encode key of a codec tuned with it.
        label: Human name of its origin, e.g. "vit_tiny trained on original, gradient/clean_prob".
        y: 8x8 sensitivity of luma coefficients, natural order `[i][j]`.
        cb: 8x8 sensitivity of Cb coefficients.
        cr: 8x8 sensitivity of Cr coefficients.
        method: How it was measured ("gradient", "finite").
        statistic: What change of the prediction it measures ("clean_prob", "l1").
        chroma_subsampling: Chroma sampling of the blocks it was measured on ("4:2:0", "4:4:4").

    Raises:
        OptionError: (under codec.map) for an empty text field, an unknown subsampling, a map
            that is not 8x8, holds a non-finite or negative value, or is zero everywhere.
    """

    key: str
    label: str
    y: np.ndarray
    cb: np.ndarray
    cr: np.ndarray
    method: str
    statistic: str
    chroma_subsampling: str = "4:2:0"

    def __post_init__(self) -> None:
        for name in TEXT_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise OptionError(f"'{name}' must be a non-empty string, got {value!r}", MAP_OPTION)
        if self.chroma_subsampling not in CHROMA_SUBSAMPLINGS:
            raise OptionError(
                f"'chroma_subsampling' is {self.chroma_subsampling!r}: use one of "
                f"{list(CHROMA_SUBSAMPLINGS)}",
                MAP_OPTION,
            )
        for channel, attribute in zip(CHANNELS, ("y", "cb", "cr"), strict=True):
            object.__setattr__(self, attribute, _checked_map(channel, getattr(self, attribute)))

    def channels(self) -> dict[str, np.ndarray]:
        """{"Y": y, "Cb": cb, "Cr": cr}."""
        return {"Y": self.y, "Cb": self.cb, "Cr": self.cr}

    def to_json(self, path: str | Path) -> None:
        """Writes the map as JSON (the format in this module's docstring)."""
        document = {name: getattr(self, name) for name in TEXT_FIELDS}
        document["chroma_subsampling"] = self.chroma_subsampling
        document["maps"] = {channel: array.tolist() for channel, array in self.channels().items()}
        write_text_atomic(Path(path), json.dumps(document, indent=1) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> TuningMap:
        """Reads a map written by `to_json` (or by hand in that format).

        Raises:
            OptionError: (under codec.map) naming the file, for a missing or unreadable file,
                invalid JSON, a missing field or any problem `TuningMap` checks.
        """
        path = Path(path).expanduser()
        where = f"tuning map {path.absolute()}"
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise OptionError(
                f"{where} does not exist: give the path of a JSON file written by "
                f"TuningMap.to_json, or codec.map=null to let the sweep measure one",
                MAP_OPTION,
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise OptionError(f"{where} cannot be read: {error}", MAP_OPTION) from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise OptionError(f"{where} is not valid JSON: {error}", MAP_OPTION) from None
        if not isinstance(document, dict):
            raise OptionError(f"{where} must hold a JSON object, not {document!r:.40}", MAP_OPTION)
        maps = document.get("maps")
        missing = [name for name in (*TEXT_FIELDS, "chroma_subsampling") if name not in document]
        if not isinstance(maps, dict):
            missing.append("maps")
        else:
            missing += [f"maps.{channel}" for channel in CHANNELS if channel not in maps]
        if missing:
            raise OptionError(
                f"{where} lacks {missing}: it needs key, label, method, statistic, "
                f"chroma_subsampling and maps {{Y, Cb, Cr}} (8x8 lists each)",
                MAP_OPTION,
            )
        try:
            return cls(
                key=document["key"],
                label=document["label"],
                y=maps["Y"],
                cb=maps["Cb"],
                cr=maps["Cr"],
                method=document["method"],
                statistic=document["statistic"],
                chroma_subsampling=document["chroma_subsampling"],
            )
        except OptionError as error:
            raise OptionError(f"{where}: {error}", MAP_OPTION) from None


def _checked_map(channel: str, values) -> np.ndarray:
    """An 8x8 array of finite values >= 0, not all zero, as a read-only float64 copy."""
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise OptionError(
            f"map {channel} is not an 8x8 array of numbers: {str(values)[:60]}", MAP_OPTION
        ) from None
    if array.shape != (8, 8):
        raise OptionError(
            f"map {channel} has shape {array.shape}: it must be 8x8 (8 rows of 8 numbers, "
            f"row = vertical frequency)",
            MAP_OPTION,
        )
    if not np.isfinite(array).all():
        raise OptionError(f"map {channel} holds a non-finite value (NaN or inf)", MAP_OPTION)
    if (array < 0).any():
        raise OptionError(
            f"map {channel} holds a negative value ({array.min():g}): sensitivities are >= 0",
            MAP_OPTION,
        )
    if not (array > 0).any():
        raise OptionError(
            f"map {channel} is zero everywhere: no table can be derived from it", MAP_OPTION
        )
    array.setflags(write=False)
    return array
