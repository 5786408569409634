"""A tiny COCO export (annotations/instances_<split>.json and <split>/*.jpg), written without
torch, for the COCO reader's tests and the object-store tests of every reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 64, 48
# Listed out of id order, with COCO's gaps: labels must follow the ids (2, 7, 18).
CATEGORIES = [{"id": 18, "name": "bird"}, {"id": 2, "name": "cat"}, {"id": 7, "name": "dog"}]
# split -> [(image id, file name, [(annotation id, category id, [x, y, w, h], iscrowd)])]
COCO_IMAGES = {
    "train2017": [
        (3, "000003.jpg", [(31, 7, [4, 6, 26, 34], 0), (32, 2, [32, 1, 28, 44], 0)]),
        (1, "000001.jpg", [(11, 2, [10, 10, 40, 30], 1), (12, 18, [2, 2, 8, 8], 0)]),
        (5, "000005.jpg", []),  # an image without annotations
    ],
    "val2017": [
        (10, "000010.jpg", [(101, 7, [20, 5, 35, 30], 0), (102, 2, [0, 0, 10, 10], 0)]),
        (11, "000011.jpg", []),
    ],
}


def write_coco(
    root: Path, images: dict = COCO_IMAGES, categories: list = CATEGORIES, size=(WIDTH, HEIGHT)
) -> Path:
    """A COCO-layout folder: annotations/instances_<split>.json and noisy JPEGs in <split>/,
    each object a bright rectangle where its box is (so that a detector can learn them)."""
    width, height = size
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, listed in images.items():
        (root / split).mkdir(exist_ok=True)
        document = {"info": {"description": "test"}, "images": [], "annotations": []}
        document["categories"] = [dict(c, supercategory="thing") for c in categories]
        for image_id, file_name, objects in listed:
            rng = np.random.default_rng(image_id)
            pixels = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
            for _, category, (x, y, w, h), _ in objects:
                left, top = max(int(x), 0), max(int(y), 0)
                pixels[top : int(y + h), left : int(x + w)] = 100 + 7 * category
            Image.fromarray(pixels).save(root / split / file_name, quality=95)
            document["images"].append(
                {"id": image_id, "file_name": file_name, "width": width, "height": height}
            )
            for annotation_id, category, bbox, crowd in objects:
                document["annotations"].append(
                    {
                        "id": annotation_id,
                        "image_id": image_id,
                        "category_id": category,
                        "bbox": bbox,
                        "area": bbox[2] * bbox[3],
                        "iscrowd": crowd,
                        "segmentation": [[bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1]]],
                    }
                )
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(document))
    return root
