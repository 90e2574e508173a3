"""Predictions in the official Cityscapes instance-level results format.

Shape shorthand:
    H, W: image height and width; N: predictions of one image

cityscapesscripts' `evalInstanceLevelSemanticLabeling` reads, for each
ground-truth image `{city}_{seq}_{frame}_gtFine_instanceIds.png`, the one
text file named `{city}_{seq}_{frame}*.txt` somewhere under the results
folder, with one line per prediction

    relative/path/to/mask.png <labelId> <confidence>

(three fields separated by single spaces; the path relative to the text
file's folder, without spaces, and inside the results folder; the official
label id, e.g. 26 for car, not a train id) and a binary mask image per
prediction where every non-zero pixel is part of the instance. Here:

    directory/<image_stem>_pred.txt
    directory/masks/<image_stem>_<i:04d>.png     uint8 0/255, mode "L"

The masks come as COCO RLEs (each PNG painted from the runs, one at a
time) or as a [H, W, N] array. The confidence is written with
`repr(float(score))`, so it reads back as the very same float64 and ties
stay ties. Every file is written under a temporary name and renamed
(`mrcnn.files.atomic_path`). About 1 s for 100 masks of 1024 x 2048,
nearly all of it PNG encoding.
"""

import os

import numpy as np
from PIL import Image

from mrcnn import files
from mrcnn.evaluation import rle

# The formats evaluate.py --export writes: this module's, and COCO results
# (cityscapes/predictions.py).
FORMATS = ("cityscapes", "coco")

MASK_FOLDER = "masks"
TXT_SUFFIX = "_pred.txt"


def check_stem(image_stem):
    """ValueError unless `image_stem` can name a results file (no spaces,
    no folders, not hidden)."""
    if (not image_stem or any(c.isspace() for c in image_stem)
            or "/" in image_stem or os.sep in image_stem or image_stem.startswith(".")):
        raise ValueError(f"image_stem must be a plain file name without spaces, got {image_stem!r}")


def _rle_images(rles, n):
    """Iterator over the [H, W] uint8 0/255 images of N RLEs, painted from
    the runs one at a time (no [H, W, N] array, no transposed copies).
    Checks the RLEs before the first image."""
    rles = list(rles)
    if len(rles) != n:
        raise ValueError(f"{len(rles)} masks for {n} predictions")
    sizes = sorted({tuple(int(v) for v in r["size"]) for r in rles})
    if len(sizes) > 1:
        raise ValueError(f"the RLEs of one image have different sizes: {sizes}")
    if not rles:
        return iter(())
    height, width = sizes[0]
    starts, lengths, owner = rle.foreground_runs(rles)
    if starts.size and int((starts + lengths).max()) > height * width:
        raise ValueError("RLE runs go past the end of the image")
    col, row = np.divmod(rle.expand_runs(starts, lengths), height)  # grouped by mask
    pixels = row * width + col  # row-major
    bounds = np.searchsorted(np.repeat(owner, lengths), np.arange(n + 1))

    def paint(i):
        image = np.zeros(height * width, np.uint8)
        image[pixels[bounds[i]:bounds[i + 1]]] = 255
        return image.reshape(height, width)

    return map(paint, range(n))


def _array_images(masks, n):
    """Iterator over the [H, W] uint8 0/255 images of masks [H, W, N] (any
    non-zero pixel is in the mask)."""
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[2] != n:
        raise ValueError(f"masks must be [H, W, {n}], got shape {masks.shape}")
    return (np.where(masks[:, :, i] != 0, np.uint8(255), np.uint8(0)) for i in range(n))


def _save_png(path, image):
    """An [H, W] uint8 image as an 8-bit grey PNG, atomically."""
    with files.atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG", compress_level=1)


def prediction_lines(image_stem, label_ids, scores):
    """The txt lines of one image: [N] "masks/<stem>_<i>.png <labelId> <score>"."""
    return [f"{MASK_FOLDER}/{image_stem}_{i:04d}.png {int(label)} {float(score)!r}"
            for i, (label, score) in enumerate(zip(label_ids, scores))]


def write_cityscapes_results(directory, image_stem, label_ids, scores, rles_or_masks):
    """Write one image's predictions in the official results format.

    directory: the results folder (created if needed); image_stem:
    "{city}_{seq}_{frame}" of the image (e.g. "aachen_000000_000019");
    label_ids [N] official label ids; scores [N] confidences; rles_or_masks:
    N COCO RLE dicts (see mrcnn.evaluation.rle) or masks [H, W, N] bool.
    Returns the path of the txt file. N = 0 writes an empty txt.
    """
    check_stem(image_stem)
    label_ids = np.asarray(label_ids).reshape(-1)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(label_ids) != len(scores):
        raise ValueError(f"{len(label_ids)} label ids but {len(scores)} scores")
    if label_ids.size and not np.all(label_ids == np.round(label_ids)):
        raise ValueError(f"label ids must be integers, got {label_ids}")
    n = len(scores)
    images = (_array_images(rles_or_masks, n) if isinstance(rles_or_masks, np.ndarray)
              else _rle_images(rles_or_masks, n))
    directory = os.fspath(directory)
    lines = prediction_lines(image_stem, label_ids, scores)
    for line, image in zip(lines, images, strict=True):
        _save_png(os.path.join(directory, line.split(" ")[0]), image)
    txt = os.path.join(directory, image_stem + TXT_SUFFIX)
    os.makedirs(directory, exist_ok=True)
    files.write_text(txt, "".join(line + "\n" for line in lines))
    return txt


def read_cityscapes_results(txt_path):
    """Read back one image's predictions: (label_ids [N] int64, scores [N]
    float64, masks [H, W, N] bool; [0, 0, 0] when N = 0).

    Parses the lines as the official readPredInfo does (split on " ", 3
    fields, the label id through float); a mask is every non-zero pixel.
    """
    folder = os.path.dirname(os.path.abspath(txt_path))
    labels, scores, masks = [], [], []
    with open(txt_path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            fields = line.split(" ")
            if len(fields) != 3:
                raise ValueError(f"{txt_path}:{number}: expected 'path labelId confidence', "
                                 f"got {line!r}")
            labels.append(int(float(fields[1])))
            scores.append(float(fields[2]))
            with Image.open(os.path.join(folder, fields[0])) as img:
                masks.append(np.asarray(img.convert("L")) != 0)
    stacked = np.stack(masks, axis=-1) if masks else np.zeros((0, 0, 0), bool)
    return np.asarray(labels, np.int64), np.asarray(scores, np.float64), stacked
