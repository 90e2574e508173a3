"""Predictions of a model on Cityscapes images, and their COCO-results files.

Shape shorthand:
    D: detections of an image; H, W: the image's original size

One image's predictions are a dict:
    class_ids [D] int32 (our class ids 1..K), scores [D] float64,
    rles: D COCO RLEs of [H, W] masks, boxes [D, (y1, x1, y2, x2)] or None.

COCO-results JSON (what `--predictions FILE` reads and `--export coco`
writes) is a list of
    {"image_id": "frankfurt_000000_000294", "category_id": 1..K,
     "segmentation": {"size": [H, W], "counts": "..."}, "score": 0.97}
with the image's file stem as image_id, our class id as category_id and
the mask as an RLE at the original resolution; "bbox" ([x, y, w, h]) is
optional.
"""

import json
import os

import numpy as np

from mrcnn import files
from mrcnn.evaluation import rle


class PredictionsError(ValueError):
    """A predictions file that cannot be scored; the message says why."""


def empty(height, width):
    """No detections."""
    return {"class_ids": np.zeros(0, np.int32), "scores": np.zeros(0), "rles": [],
            "boxes": None, "size": (height, width)}


def from_detections(result):
    """`MaskRCNN.detect` output for one image -> predictions."""
    masks = result["masks"]
    return {"class_ids": np.asarray(result["class_ids"], np.int32),
            "scores": np.asarray(result["scores"], np.float64),
            "rles": rle.encode(masks), "boxes": np.asarray(result["rois"]),
            "size": masks.shape[:2]}


def read_coco_results(path, sizes, num_classes):
    """Predictions per image from a COCO-results JSON.

    sizes: {image stem: (H, W)} of the images being scored; num_classes: K.
    Returns {stem: predictions} for every stem in sizes (empty when the file
    has none for it). Raises PredictionsError naming the file and listing
    unknown images, unknown classes, or malformed entries.
    """
    try:
        entries = files.read_json(path)
    except ValueError as e:
        raise PredictionsError(str(e))
    if not isinstance(entries, list):
        raise PredictionsError(f"{path}: expected a JSON list of detections")
    required = ("image_id", "category_id", "segmentation", "score")
    bad = [i for i, e in enumerate(entries)
           if not isinstance(e, dict) or any(k not in e for k in required)]
    if bad:
        raise PredictionsError(f"{path}: entries {_listing(bad)} lack one of {list(required)}")
    unknown_images = sorted({str(e["image_id"]) for e in entries} - set(sizes))
    if unknown_images:
        raise PredictionsError(f"{path}: {len(unknown_images)} image ids are not in the "
                               f"split being scored: {_listing(unknown_images)}")
    classes = {e["category_id"] for e in entries}
    unknown_classes = sorted((c for c in classes if not isinstance(c, int)
                              or not 1 <= c <= num_classes), key=str)
    if unknown_classes:
        raise PredictionsError(f"{path}: unknown category ids {_listing(unknown_classes)} "
                               f"(classes are 1..{num_classes})")
    wrong_size = sorted({str(e["image_id"]) for e in entries
                         if tuple(e["segmentation"].get("size", ())) != tuple(sizes[str(e["image_id"])])})
    if wrong_size:
        raise PredictionsError(f"{path}: masks of images {_listing(wrong_size)} do not have "
                               f"the images' size (RLEs must be at the original resolution)")
    by_image = {stem: [] for stem in sizes}
    for e in entries:
        by_image[str(e["image_id"])].append(e)
    out = {}
    for stem, items in by_image.items():
        if not items:
            out[stem] = empty(*sizes[stem])
            continue
        boxes = None
        if all("bbox" in e for e in items):
            x, y, w, h = np.asarray([e["bbox"] for e in items], np.float64).T
            boxes = np.stack([y, x, y + h, x + w], axis=1)
        out[stem] = {"class_ids": np.array([e["category_id"] for e in items], np.int32),
                     "scores": np.array([e["score"] for e in items], np.float64),
                     "rles": [e["segmentation"] for e in items], "boxes": boxes,
                     "size": tuple(sizes[stem])}
    return out


def coco_results(stem, predictions):
    """COCO-results entries of one image's predictions."""
    out = []
    boxes = predictions["boxes"]
    for i, (c, s, r) in enumerate(zip(predictions["class_ids"], predictions["scores"],
                                      predictions["rles"])):
        entry = {"image_id": stem, "category_id": int(c), "score": float(s),
                 "segmentation": {"size": [int(v) for v in r["size"]],
                                  "counts": r["counts"] if isinstance(r["counts"], str)
                                  else r["counts"].decode("ascii")}}
        if boxes is not None:
            y1, x1, y2, x2 = (float(v) for v in boxes[i])
            entry["bbox"] = [x1, y1, x2 - x1, y2 - y1]
        out.append(entry)
    return out


def write_coco_results(path, entries):
    """Write COCO-results entries atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    files.write_text(path, json.dumps(entries))


def _listing(items, limit=10):
    items = list(items)
    text = ", ".join(str(i) for i in items[:limit])
    return text + (f" (and {len(items) - limit} more)" if len(items) > limit else "")
