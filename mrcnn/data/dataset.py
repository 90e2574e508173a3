"""Dataset base class with Matterport's API.

Subclass `Dataset`, register classes with `add_class()` and images with
`add_image()`, override `load_mask()` (and `load_image()` when images are
not files), then call `prepare()` before use:

    class BalloonDataset(Dataset):
        def load_balloons(self, folder):
            self.add_class("balloon", 1, "balloon")
            for name in os.listdir(folder):
                self.add_image("balloon", image_id=name,
                               path=os.path.join(folder, name), polygons=...)

        def load_mask(self, image_id):
            ...  # -> mask [H, W, N] bool, class_ids [N] int32

Class ids are internal (0..num_classes-1, 0 = background "BG"); each class
also has a source ("coco", "balloon", ...) and an id within that source, so
several datasets can be merged. In `load_mask()`, a negative class id marks
a crowd region (a group of objects annotated as one mask, as in COCO
`iscrowd`): it is not a training target, and anchors / proposals that
overlap it are neither positives nor negatives.

`verify_images()` decodes every image once in full before training
(mrcnn/data/image_check.py), so a truncated file is an error, or a
skipped and listed image (`skipped`), before a model is built.
"""

import contextlib
import logging
import os

import numpy as np
from PIL import Image

from mrcnn.data import png_file

logger = logging.getLogger(__name__)


class Dataset:
    """Images and classes from one or more sources."""

    def __init__(self, class_map=None):
        # `class_map` is accepted for Matterport compatibility; unused.
        self._image_ids = []
        self.image_info = []
        self.class_info = [{"source": "", "id": 0, "name": "BG"}]
        self.source_class_ids = {}
        # (path, reason) of the images left out as bad (verify_images(skip_bad=True)).
        self.skipped = []
        self.verify_report = None

    # ------------------------------------------------------------ registering
    def add_class(self, source, class_id, class_name):
        """Register a class; a (source, class_id) pair seen before is ignored."""
        if "." in source:
            raise ValueError(f"source name {source!r} must not contain a dot")
        for info in self.class_info:
            if info["source"] == source and info["id"] == class_id:
                return
        self.class_info.append({"source": source, "id": class_id, "name": class_name})

    def add_image(self, source, image_id, path, **kwargs):
        """Register an image; extra keyword arguments are kept in its info."""
        info = {"id": image_id, "source": source, "path": path}
        info.update(kwargs)
        self.image_info.append(info)

    def image_reference(self, image_id):
        """A string identifying the image (a URL, a path); override as needed."""
        return ""

    def prepare(self, class_map=None):
        """Build the lookup tables; call after the last add_class / add_image.

        `class_map` is accepted for Matterport compatibility; unused.
        """
        self.num_classes = len(self.class_info)
        self.class_ids = np.arange(self.num_classes)
        self.class_names = [_clean_name(c["name"]) for c in self.class_info]
        self.num_images = len(self.image_info)
        self._image_ids = np.arange(self.num_images)
        self.class_from_source_map = {
            f"{info['source']}.{info['id']}": i for i, info in enumerate(self.class_info)
        }
        self.image_from_source_map = {
            f"{info['source']}.{info['id']}": i for i, info in enumerate(self.image_info)
        }
        self.sources = sorted({info["source"] for info in self.class_info})
        # Every source's list starts with the background class 0.
        self.source_class_ids = {
            source: [i for i, info in enumerate(self.class_info)
                     if i == 0 or info["source"] == source]
            for source in self.sources
        }

    # ---------------------------------------------------------------- lookups
    @property
    def image_ids(self):
        """[num_images] internal image ids (after prepare())."""
        return self._image_ids

    def map_source_class_id(self, source_class_id):
        """Internal class id of "source.id", e.g. "coco.12" -> 23."""
        return self.class_from_source_map[source_class_id]

    def get_source_class_id(self, class_id, source):
        """The id within `source` of internal class `class_id`."""
        info = self.class_info[class_id]
        if info["source"] != source:
            raise ValueError(
                f"class {class_id} ({info['name']!r}) is from source "
                f"{info['source']!r}, not {source!r}"
            )
        return info["id"]

    def source_image_link(self, image_id):
        """Path or URL of the image."""
        return self.image_info[image_id]["path"]

    # ---------------------------------------------------------------- loading
    def load_image(self, image_id):
        """Image as uint8 RGB [H, W, 3].

        Gray, palette and CMYK images are converted to RGB; an alpha channel
        is dropped. EXIF orientation is not applied (annotations refer to
        the stored pixels). Raises FileNotFoundError / OSError naming the file.
        """
        path = self.image_info[image_id]["path"]
        with _file_errors(image_id, path), Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8)

    def load_image_file(self, image_id):
        """The image as an undecoded PNG, for the input pipeline's graph, or None.

        A `png_file.PngFile` (contents, height, width) when `load_image` is
        this class's own (it decodes the file at "path" as stored) and that
        file is an 8-bit PNG, which `tf.io.decode_png` decodes to the same
        pixels outside the GIL; None otherwise, and the pipeline calls
        `load_image`. A subclass whose `load_image` decodes such files the
        same way may override this to return them. Raises what load_image
        raises for a missing, truncated or damaged file.
        """
        if getattr(self.load_image, "__func__", None) is not Dataset.load_image:
            return None
        path = self.image_info[image_id].get("path")
        if not isinstance(path, (str, os.PathLike)):
            return None
        with _file_errors(image_id, path):
            return png_file.read_png(path)

    # ------------------------------------------------------------ checking
    def image_files(self, image_id):
        """The files `check_image` reads, by which `verify_images` remembers
        a good image: the image's "path" when it is a file name, else none
        (images generated in memory are not checked). Override to add, e.g.,
        annotation images."""
        path = self.image_info[image_id].get("path")
        return [path] if isinstance(path, (str, os.PathLike)) else []

    def check_image(self, image_id):
        """Decode the image in full (`load_image`); raise what it raises for a
        bad file (OSError, ValueError, ...). Override to decode more."""
        self.load_image(image_id)

    def verify_images(self, image_ids=None, skip_bad=False, cache=None, workers=None):
        """Decode every image once in full (`check_image`), in threads, those a
        decode cache does not know; call it before `prepare()` (after it,
        prepare() runs again, and image ids after a skipped image change).

        image_ids: indices into image_info (default all). skip_bad: False
        raises image_check.BadImageError naming the first bad file; True
        leaves bad images out and adds them to `skipped` as (path, reason).
        cache: None, an image_check.DecodeCache or its file, remembering
        good files by path, size and mtime. -> `verify_report`: {"images",
        "decoded", "cached", "skipped": [(path, reason)], "seconds"}.
        """
        from mrcnn.data import image_check

        ids = range(len(self.image_info)) if image_ids is None else image_ids
        report = image_check.verify(self, ids, cache=cache, workers=workers, skip_bad=skip_bad)
        bad = report.pop("bad")
        report["skipped"] = [(path, reason) for _, path, reason in bad]
        if bad:
            gone = {image_id for image_id, _, _ in bad}
            self.image_info = [info for i, info in enumerate(self.image_info) if i not in gone]
            self.skipped.extend(report["skipped"])
            if hasattr(self, "num_images"):
                self.prepare()
        self.verify_report = report
        return report

    def cache_version(self, image_id):
        """A string that changes whenever `load_mask(image_id)` would change.

        `mrcnn.data.mask_cache.MiniMaskCache` keys its files with it. None (the
        default) means "do not cache this image": override it, e.g. with the
        modification times of the annotation files, to enable the cache.
        """
        return None

    def load_mask(self, image_id):
        """Instance masks [H, W, N] bool and class ids [N] int32.

        Override this: the base class has no annotations and returns N = 0
        (H, W from the image info's "height" / "width", else from the image).
        Negative class ids mark crowd regions (see the module docstring).
        """
        logger.warning("Dataset.load_mask() is not overridden: image %s has no instances",
                       image_id)
        info = self.image_info[image_id]
        if "height" in info and "width" in info:
            height, width = info["height"], info["width"]
        else:
            height, width = self.load_image(image_id).shape[:2]
        return np.zeros((height, width, 0), dtype=bool), np.zeros((0,), dtype=np.int32)


@contextlib.contextmanager
def _file_errors(image_id, path):
    """Re-raise a failed read of image `image_id`'s file naming the image and file."""
    try:
        yield
    except FileNotFoundError as e:
        raise FileNotFoundError(f"image {image_id}: no such file: {path}") from e
    except OSError as e:
        raise OSError(f"image {image_id}: cannot read image file {path}: {e}") from e


def _clean_name(name):
    """First part of a comma-separated name: "person, human" -> "person"."""
    return name.split(",")[0]
