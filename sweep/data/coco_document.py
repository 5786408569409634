"""A COCO annotation file as JSON, checked: its images, categories and annotations' ids.

Each refusal is a DatasetError naming the file (a path, or an object store's URL) and what is
wrong with it; sweep/data/coco.py reads the boxes and pairs the images with their targets.
"""

from __future__ import annotations

import json
from pathlib import Path

from upath import UPath

from sweep.data.base import DatasetError


def load_annotation_file(path: Path | UPath) -> dict:
    """A COCO annotation file (or object) as JSON: an object with images and categories."""
    try:
        with path.open(encoding="utf-8") as stream:
            document = json.load(stream)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path}: not a readable COCO annotation file ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise DatasetError(
            f"{path}: a COCO annotation file is a JSON object with 'images', 'annotations' "
            f"and 'categories' lists"
        )
    if not isinstance(document.get("annotations", []), list):
        raise DatasetError(f"{path}: 'annotations' must be a list")
    return document


def parse_categories(document: dict, path: Path) -> dict[int, str]:
    """id -> name of a file's categories, in id order; ids and names each once."""
    categories = document.get("categories")
    if not isinstance(categories, list):
        raise DatasetError(f"{path}: 'categories' must be a list of {{'id', 'name'}} objects")
    found: dict[int, str] = {}
    for number, category in enumerate(categories, start=1):
        cid = category.get("id") if isinstance(category, dict) else None
        name = category.get("name") if isinstance(category, dict) else None
        if not is_integer(cid) or not isinstance(name, str) or not name.strip():
            raise DatasetError(
                f"{path}: category {number} needs an integer 'id' and a 'name', got {category!r}"
            )
        if cid in found:
            raise DatasetError(f"{path}: category id {cid} is listed twice")
        found[int(cid)] = name.strip()
    names = list(found.values())
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        ids = {name: [cid for cid, other in found.items() if other == name] for name in repeated}
        raise DatasetError(
            f"{path}: category names {repeated} are used by several ids {ids}: a class is one "
            f"label, so merge them into one category"
        )
    return dict(sorted(found.items()))


def check_same_categories(
    test: dict[int, str], train: dict[int, str], test_path: Path, train_path: Path
) -> None:
    """The test file may list fewer categories, but an id it shares must mean the same class."""
    differ = {cid: (train[cid], name) for cid, name in test.items() if train.get(cid, name) != name}
    if differ:
        described = ", ".join(f"id {cid}: '{a}' vs '{b}'" for cid, (a, b) in differ.items())
        raise DatasetError(
            f"{test_path} and {train_path} give the same category ids different names "
            f"({described}): both files must use one category list"
        )


def parse_images(document: dict, path: Path) -> dict[int, tuple[str, int, int]]:
    """image id -> (file name, width, height), in id order (a stable order for the split)."""
    images: dict[int, tuple[str, int, int]] = {}
    for number, image in enumerate(document["images"], start=1):
        image = image if isinstance(image, dict) else {}
        image_id, file_name = image.get("id"), image.get("file_name")
        width, height = image.get("width"), image.get("height")
        given = {"id": image_id, "file_name": file_name, "width": width, "height": height}
        if not (
            is_integer(image_id)
            and isinstance(file_name, str)
            and file_name
            and is_integer(width)
            and is_integer(height)
            and width > 0
            and height > 0
        ):
            raise DatasetError(
                f"{path}: image {number} needs an integer 'id', a 'file_name' and positive "
                f"integer 'width' and 'height' (the boxes are checked against them), got "
                f"{given}"
            )
        if image_id in images:
            raise DatasetError(f"{path}: image id {image_id} is listed twice")
        images[int(image_id)] = (file_name, int(width), int(height))
    return dict(sorted(images.items()))


def annotation_ids(annotation: object, path: Path) -> tuple[int, int, int]:
    """(id, image_id, category_id) of an annotation, each an integer."""
    fields = ("id", "image_id", "category_id")
    values = [annotation.get(f) for f in fields] if isinstance(annotation, dict) else []
    if len(values) != 3 or not all(is_integer(v) for v in values):
        raise DatasetError(
            f"{path}: an annotation needs integer {', '.join(fields)}, got {annotation!r:.200}"
        )
    return int(values[0]), int(values[1]), int(values[2])


def is_integer(value: object) -> bool:
    """An int, or a float with an integral value (JSON writers differ); not a bool."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
