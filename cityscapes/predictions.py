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
optional (an entry without one gets its mask's box). Reading checks every
entry (`entry_problems`): a file with a malformed one is refused as a
whole, naming the first by its index and its problem.
"""

import json
import math
import os

import numpy as np
from pycocotools import mask as mask_utils

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

    sizes: {image stem: (H, W)} of the split's images; num_classes: K.
    Returns {stem: predictions} for every stem in sizes (empty when the file
    has none for it). Raises PredictionsError naming the file, the first
    malformed entry (its index) and its problem, and how many more there
    are (`entry_problems` says what is checked).
    """
    try:
        entries = files.read_json(path)
    except ValueError as e:
        raise PredictionsError(str(e))
    if not isinstance(entries, list):
        raise PredictionsError(f"{path}: expected a JSON list of detections, found "
                               f"{_kind(entries)}")
    problems = entry_problems(entries, sizes, num_classes)
    if problems:
        (first, problem), rest = next(iter(problems.items())), list(problems)[1:]
        more = (f"; {len(rest)} more malformed {'entry' if len(rest) == 1 else 'entries'}: "
                f"{_listing(rest)}" if rest else "")
        raise PredictionsError(f"{path}: entry {first}: {problem}{more}")
    by_image = {stem: [] for stem in sizes}
    for e in entries:
        by_image[e["image_id"]].append(e)
    return {stem: _image_predictions(items, sizes[stem]) for stem, items in by_image.items()}


def entry_problems(entries, sizes, num_classes):
    """{index: one-line problem} of the entries that cannot be scored, in
    index order (the first problem of each).

    An entry is an object with image_id (a stem in sizes), category_id (an
    int 1..K), score (a finite number), segmentation (an RLE: {"size": the
    image's [H, W], "counts": a compressed string or a list of run lengths
    covering the H * W pixels, see `rle.problems`}) and, optionally, bbox
    (4 finite numbers [x, y, w, h], w and h >= 0). Other keys are ignored.
    Bools are not numbers here. The RLEs are checked together, vectorised.
    """
    out = {}
    for i, e in enumerate(entries):
        problem = _entry_problem(e, sizes, num_classes)
        if problem:
            out[i] = problem
    valid = [i for i in range(len(entries)) if i not in out]
    bad_rles = rle.problems([entries[i]["segmentation"] for i in valid])
    out.update({valid[k]: problem for k, problem in bad_rles.items()})
    return dict(sorted(out.items()))


REQUIRED = ("image_id", "category_id", "segmentation", "score")


def _entry_problem(e, sizes, num_classes):
    """The first problem of one entry, apart from its RLE's runs, or None."""
    if not isinstance(e, dict):
        return f"is {_kind(e)}, not an object with {', '.join(REQUIRED)}"
    missing = [k for k in REQUIRED if k not in e]
    if missing:
        return "has no " + ", ".join(missing)
    image_id, category, seg, score = (e[k] for k in REQUIRED)
    if not isinstance(image_id, str):
        return f"image_id {_show(image_id)} is not a string (an image file stem)"
    if image_id not in sizes:
        return f"image_id {_show(image_id)} is not an image of the split being scored"
    if type(category) is not int or not 1 <= category <= num_classes:
        return f"category_id {_show(category)} is not a class id 1..{num_classes}"
    if not _is_number(score):
        return f"score {_show(score)} is not a number"
    if not _is_finite(score):
        return f"score {_show(score)} is not finite"
    if isinstance(seg, list):
        return ('segmentation is a polygon list: expected an RLE {"size": [H, W], '
                '"counts": "..."} (pycocotools.mask.frPyObjects makes one)')
    if not isinstance(seg, dict):
        return f'segmentation {_show(seg)} is not an RLE {{"size": [H, W], "counts": ...}}'
    if "size" not in seg:
        return "segmentation has no size (the image's [H, W])"
    if "counts" not in seg:
        return "segmentation has no counts"
    size, counts = seg["size"], seg["counts"]
    height_width = [int(v) for v in sizes[image_id]]
    if (not isinstance(size, list) or len(size) != 2
            or not all(type(v) is int for v in size)):
        return f"segmentation size {_show(size)} is not [H, W]"
    if size != height_width:
        return (f"segmentation size {size} is not the image's {height_width} (RLEs "
                f"must be at the original resolution)")
    if not isinstance(counts, (str, list)):
        return f"segmentation counts {_show(counts)} is neither a string nor a list"
    box = e.get("bbox")  # optional; null is none
    if box is not None and (not isinstance(box, list) or len(box) != 4
                            or not all(_is_number(v) and _is_finite(v) for v in box)):
        return f"bbox {_show(box)} is not 4 finite numbers [x, y, w, h]"
    if box is not None and min(box[2:]) < 0:
        return f"bbox {_show(box)} has a negative width or height"
    return None


def _image_predictions(items, size):
    """One image's predictions from its (valid) entries. Boxes: the given
    ones, the masks' boxes for entries without; None when no entry has one."""
    if not items:
        return empty(*size)
    rles = [e["segmentation"] for e in items]
    boxes = None
    if any(e.get("bbox") is not None for e in items):
        mask_boxes = mask_utils.toBbox([rle.for_pycocotools(r) for r in rles])
        x, y, w, h = np.asarray([b if e.get("bbox") is None else e["bbox"]
                                 for e, b in zip(items, mask_boxes)], np.float64).T
        boxes = np.stack([y, x, y + h, x + w], axis=1)
    return {"class_ids": np.array([e["category_id"] for e in items], np.int32),
            "scores": np.array([e["score"] for e in items], np.float64),
            "rles": rles, "boxes": boxes, "size": tuple(size)}


def _is_number(v):
    return type(v) in (int, float)


def _is_finite(v):
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond float's range
        return False


def _kind(v):
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(v), "a number")


def _show(v, limit=40):
    """v as JSON, shortened to one short line."""
    text = json.dumps(v)
    return text if len(text) <= limit else text[:limit - 3] + "..."


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
