"""Instance records (boxes + mini-masks) per image, cached on disk.

Shape shorthand:
    H, W: original image size; N: instances; h, w: MINI_MASK_SHAPE

An instance record is what training needs of an image's annotations, at
the image's original resolution, before any resizing or augmentation:

    class_ids: [N] int32 (negative: crowd region)
    boxes:     [N, (y1, x1, y2, x2)] int32 pixels, tight, (y2, x2) exclusive
    mini:      [N, h, w] bool, each mask resampled inside its box
    shape:     [2] int32 (H, W)

Rasterising full-size masks (Cityscapes polygons at 2048 x 1024) costs far
more than reading a few kilobytes of mini-masks, so `MiniMaskCache` keeps a
record per image in a folder, one file per image. Each file holds its key:
the Dataset's `cache_version(image_id)` (it changes when the image or its
annotations change), the mini-mask shape and RECORD_VERSION; a file with
another key is recomputed and replaced, and a dataset whose
`cache_version` is None is never cached. Files are written atomically and
an unreadable one is recomputed, so an interrupted run leaves no bad entry.

Records are computed in NumPy (mrcnn/data/instances.py: the same boxes and
mini-masks as the TensorFlow functions of masks.py, and at 1024 x 2048 tens
of milliseconds instead of hundreds), so this module runs without
TensorFlow, as the PyDataset feeder's worker processes need.
"""

import logging
import os
import re
import threading

import numpy as np

from mrcnn import files
from mrcnn.data import instances

logger = logging.getLogger(__name__)

# Bump when the record's content or layout changes.
RECORD_VERSION = 1


def instance_record(masks, class_ids, mini_shape):
    """Record of one image from its full-size masks (empty masks dropped).

    masks: [H, W, N] bool, class_ids: [N] -> dict (see module docstring).
    """
    masks = np.asarray(masks, bool)
    class_ids = np.asarray(class_ids, np.int32)
    height, width = masks.shape[:2]
    nonempty = masks.any(axis=(0, 1))
    masks, class_ids = masks[:, :, nonempty], class_ids[nonempty]
    boxes = instances.boxes_from_masks(masks)
    mini = instances.mini_masks(masks, boxes, tuple(mini_shape))
    return {
        "class_ids": class_ids,
        "boxes": np.asarray(boxes, np.int32).reshape(-1, 4),
        "mini": np.asarray(mini, bool).reshape(-1, *mini_shape),
        "shape": np.array([height, width], np.int32),
    }


def dataset_record(dataset, image_id, mini_shape):
    """instance_record() of a Dataset image, from its `load_mask`."""
    masks, class_ids = dataset.load_mask(image_id)
    masks = np.asarray(masks)
    if masks.ndim != 3 or len(class_ids) != masks.shape[2]:
        raise ValueError(
            f"image {image_id} ({dataset.image_reference(image_id)}): load_mask returned "
            f"masks {list(masks.shape)} and {len(class_ids)} class ids; expected bool "
            f"[H, W, N] and int32 [N]"
        )
    return instance_record(masks, class_ids, mini_shape)


class MiniMaskCache:
    """Instance records of Dataset images, kept as files in `directory`.

    directory: a folder (created when missing); mini_shape: (h, w).
    `get(dataset, image_id)` returns the record, computing and saving it on
    a miss. `hits` and `misses` count lookups (misses include images whose
    dataset gives no cache_version).
    """

    def __init__(self, directory, mini_shape=(56, 56)):
        self.directory = os.fspath(directory)
        self.mini_shape = tuple(int(s) for s in mini_shape)
        os.makedirs(self.directory, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def __repr__(self):
        return f"MiniMaskCache({self.directory!r}, mini_shape={self.mini_shape})"

    def __getstate__(self):  # to worker processes (the PyDataset feeder): no lock
        return {key: value for key, value in self.__dict__.items() if key != "_lock"}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock())

    def path(self, dataset, image_id):
        """File of an image's record."""
        info = dataset.image_info[image_id]
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{info['source']}-{info['id']}")
        return os.path.join(self.directory, name + ".npz")

    def key(self, dataset, image_id):
        """What a valid file of this image holds as its key, or None: no caching."""
        version = dataset.cache_version(image_id)
        if version is None:
            return None
        return f"{RECORD_VERSION}|{self.mini_shape}|{version}"

    def get(self, dataset, image_id):
        """The record of `image_id` (see module docstring)."""
        key = self.key(dataset, image_id)
        path = self.path(dataset, image_id)
        if key is not None and os.path.exists(path):
            record = self._read(path, key)
            if record is not None:
                self._count(hit=True)
                return record
        self._count(hit=False)
        record = dataset_record(dataset, image_id, self.mini_shape)
        if key is not None:
            self._write(path, record, key)
        return record

    def _count(self, hit):
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1

    def _read(self, path, key):
        """The record in `path`, or None when its key differs or it is damaged."""
        try:
            with np.load(path) as f:
                if str(f["key"]) != key:
                    return None
                n = int(f["count"])
                record = {
                    "class_ids": f["class_ids"].astype(np.int32),
                    "boxes": f["boxes"].astype(np.int32).reshape(n, 4),
                    "mini": np.unpackbits(f["mini"], count=n * int(np.prod(self.mini_shape)))
                    .astype(bool).reshape(n, *self.mini_shape),
                    "shape": f["shape"].astype(np.int32),
                }
        except Exception as e:  # a damaged file: recompute it
            logger.warning("mini-mask cache: cannot read %s (%s); recomputing", path, e)
            return None
        return record

    def _write(self, path, record, key):
        """Save atomically (files.atomic_path)."""
        with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, key=np.array(key), count=len(record["class_ids"]),
                     class_ids=record["class_ids"], boxes=record["boxes"],
                     mini=np.packbits(record["mini"]), shape=record["shape"])
