"""Cityscapes fine annotations as a Matterport `Dataset`.

Layout (as distributed, under $CITYSCAPES_DATASET or `root`):

    leftImg8bit/{split}/{city}/{city}_{seq}_{frame}_leftImg8bit.png
    gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_polygons.json
    gtFine/{split}/{city}/{city}_{seq}_{frame}_gtFine_instanceIds.png

    ds = CityscapesDataset(EVALUATED_CLASSES)
    ds.load_cityscapes(split="train")          # or resplit=dict(...), subset=N
    ds.prepare()
    masks, class_ids = ds.load_mask(0)         # [H, W, N] bool, [N] int32

Instances come from the polygons (rasterised as the official tool does,
see `cityscapes.rasterize`) or from the instanceIds PNGs, chosen per image
(annotations="auto", the default: the JSON where it exists, else the PNG,
so copies of Cityscapes that kept only the PNGs load too); both give the
same masks in the same order: the instances by increasing encoded id
(labelId * 1000 + k), then one crowd region (negative class id) per class
holding that class's group polygons ("cargroup", ...). Instances and
groups of classes not in the dataset's ClassMap are dropped, i.e. they are
background (as detectron2 does when training on the 8 evaluated classes).
"""

import hashlib
import logging
import os

from PIL import Image

from cityscapes import rasterize, splits
from cityscapes.labels import INSTANCE_CLASSES, ClassMap
from cityscapes.rasterize import CityscapesDataError
from mrcnn.data.dataset import Dataset
from mrcnn.data.image_check import BadImageError

logger = logging.getLogger(__name__)

SOURCE = "cityscapes"
# Bump when load_mask's output for unchanged files changes (cache keys).
LOADER_VERSION = "1"
ANNOTATION_KINDS = ("polygons", "instanceIds")
# load_cityscapes' `annotations`: a kind, or "auto" (per image, polygons first).
ANNOTATION_CHOICES = ("auto", *ANNOTATION_KINDS)
IMAGE_SUFFIX = "_leftImg8bit.png"
ANNOTATION_SUFFIX = {"polygons": "_gtFine_polygons.json", "instanceIds": "_gtFine_instanceIds.png"}
ENV_VAR = "CITYSCAPES_DATASET"
HOW_TO_GET = (
    "Cityscapes is at https://www.cityscapes-dataset.com (free registration): unzip "
    "leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip into one folder and pass "
    f"root=... or set {ENV_VAR} to it. Without it, generate the small synthetic demo "
    "dataset in the same layout with `python -m cityscapes.synthetic`."
)
# How many skip reasons the end-of-load summary shows.
_SUMMARY_REASONS = 5


class CityscapesDataset(Dataset):
    """Cityscapes instance segmentation with Matterport's Dataset API.

    classes: a `ClassMap` or instance class names (default all 10); our
        class ids are 1..K in label id order, registered as
        ("cityscapes", 1..K).

    After `load_cityscapes`: `skipped` lists (path, reason) of the images
    left out with skip_bad=True (all loads), `num_without_instances` counts
    the images of the last load without instances (None when an image's
    annotation is an instanceIds PNG), and `load_report` sums up the last
    load. Each image's `image_info` has "annotation" (the file its masks
    come from) and "annotation_kind" ("polygons" or "instanceIds").
    """

    def __init__(self, classes=INSTANCE_CLASSES):
        super().__init__()
        self.class_map = classes if isinstance(classes, ClassMap) else ClassMap(classes)
        for i, name in enumerate(self.class_map.names, start=1):
            self.add_class(SOURCE, i, name)
        self.num_without_instances = 0
        self.load_report = {}

    # ---------------------------------------------------------------- loading
    def load_cityscapes(self, root=None, split="train", annotations="auto",
                        skip_bad=False, subset=None, seed=0, resplit=None, verify=True,
                        decode_cache=None, workers=None):
        """Register the images of one split, checking each one.

        root: the folder holding leftImg8bit/ and gtFine/; default
            $CITYSCAPES_DATASET.
        split: an official split folder ("train", "val"; "test" has no
            public labels), or with `resplit` a new split "train" / "val" /
            "test".
        annotations: where each image's instances come from:
            "auto" (default): decided per image (a folder may mix), the
                polygons JSON where it exists, else the instanceIds PNG;
            "polygons": the JSONs, rasterised (a missing JSON is an error);
            "instanceIds": the PNGs.
            Both give the same masks. The kind each image used is in its
            image_info ("annotation_kind") and counted in the load report.
        skip_bad: False: the first bad image raises CityscapesDataError.
            True: bad images are left out, listed in `self.skipped` as
            (path, reason), and one warning sums them up at the end.
        subset: None for all images, or N: a seeded choice of N of the
            split's images (`splits.subset`, taken before the checks, so
            skipped images make it fewer).
        seed: the seed of `subset`.
        resplit: None, or the keyword arguments of `splits.resplit` (e.g.
            dict(sizes=(1403, 326), seed=0, by_city=True); True = the
            defaults): pools the official train and val images and keeps
            the new split named by `split`. It depends on the file names
            only, not on which images turn out bad.
        verify: decode every image PNG (and instanceIds PNG) in full
            (`Dataset.verify_images`), so a truncated file is found now,
            not in the middle of training. False: headers only.
        decode_cache: None, or the file (or an image_check.DecodeCache)
            remembering the files that decoded fine by path, size and
            mtime, so that a second load decodes only what changed.
        workers: decoding threads (default one per CPU).

        Checks: the image PNG exists and its header reads; the annotation
        exists (with "auto": the JSON or the PNG; the error for an image
        with neither names both files) and parses (JSON: keys, polygons of
        >= 3 points, known labels; PNG: header); the image size equals the
        annotation's; then (verify) the PNGs decode in full. Images without
        instances are kept and counted: for polygons, no drawn non-group
        object of a class in the ClassMap (an instance hidden by later
        polygons still counts); for instanceIds it is not known without
        decoding the PNGs, so the count is None when any image used one.

        Returns the load report (also `self.load_report`; the decoding's
        is `self.verify_report`): {"images":
        number added, "skipped": number left out, "without_instances":
        number or None, "annotations": the kind every added image used
        ("polygons" or "instanceIds"), "mixed" when both were used, or the
        `annotations` argument when no image was added, "sources":
        {"polygons": n, "instanceIds": m} images added per kind}.
        """
        if annotations not in ANNOTATION_CHOICES:
            raise ValueError(f"annotations must be one of {ANNOTATION_CHOICES}, "
                             f"got {annotations!r}")
        root = _dataset_root(root)
        candidates = _candidates(root, split, resplit, subset, seed)

        skipped, has_instances, first = [], {}, len(self.image_info)
        for item in candidates:
            ann_base = os.path.join(root, "gtFine", item["split"], item["city"], item["stem"])
            try:
                height, width, kind, ann_path, has_instances[item["stem"]] = _check_image(
                    item["path"], ann_base, annotations, self.class_map)
            except CityscapesDataError as e:
                if not skip_bad:
                    raise
                skipped.append((e.path, e.reason))
                continue
            self.add_image(SOURCE, image_id=item["stem"], path=item["path"],
                           annotation=ann_path, annotation_kind=kind, city=item["city"],
                           height=height, width=width)
        self.skipped.extend(skipped)
        if verify:
            try:
                report = self.verify_images(range(first, len(self.image_info)), skip_bad,
                                            decode_cache, workers)
            except BadImageError as e:
                raise CityscapesDataError(e.path, e.reason) from None
            skipped += report["skipped"]
        added = self.image_info[first:]
        sources = {kind: sum(info["annotation_kind"] == kind for info in added)
                   for kind in ANNOTATION_KINDS}
        without = None if sources["instanceIds"] else sum(
            has_instances[info["id"]] is False for info in added)
        used = [kind for kind, n in sources.items() if n]
        summary = used[0] if len(used) == 1 else "mixed" if used else annotations
        added = len(added)
        self.num_without_instances = without
        self.load_report = {"images": added, "skipped": len(skipped),
                            "without_instances": without, "annotations": summary,
                            "sources": sources}
        if skipped:
            reasons = "; ".join(f"{p}: {r}" for p, r in skipped[:_SUMMARY_REASONS])
            more = f" (and {len(skipped) - _SUMMARY_REASONS} more)" \
                if len(skipped) > _SUMMARY_REASONS else ""
            logger.warning("Cityscapes %s: skipped %d of %d images: %s%s",
                           split, len(skipped), len(candidates), reasons, more)
        logger.info("Cityscapes %s (%s): %d images (%s), %s without instances, %d skipped",
                    split, annotations, added,
                    ", ".join(f"{k} {n}" for k, n in sources.items()), without, len(skipped))
        return {**self.load_report, "sources": dict(sources)}

    def load_mask(self, image_id):
        """Instance masks [H, W, N] bool and class ids [N] int32.

        The instances (class ids 1..K) by increasing encoded id, then one
        crowd region per class with group pixels (class id -class_id).
        Instances hidden entirely by later polygons, and classes outside
        the ClassMap, are left out. Raises CityscapesDataError naming the
        annotation file when it cannot be read or its size is not the
        image's.
        """
        if self.image_info[image_id]["source"] != SOURCE:
            return super().load_mask(image_id)
        ids = self.load_instance_ids(image_id)
        label_map, class_ids = rasterize.instances_from_id_image(ids, self.class_map)
        return rasterize.masks_from_label_map(label_map, len(class_ids)), class_ids

    def load_instance_ids(self, image_id):
        """The official instance id image [H, W] int32 of an image
        (labelId * 1000 + k for instances, labelId elsewhere), rasterised
        from the polygons or read from instanceIds.png, whichever the image
        was loaded with (image_info's "annotation_kind"). Raises
        CityscapesDataError naming the annotation file when it cannot be
        read or its size is not the image's."""
        info = self.image_info[image_id]
        return rasterize.read_id_image(info["annotation"], info["height"], info["width"])

    def image_files(self, image_id):
        """The image PNG, and the instanceIds PNG when the masks come from
        one: the files `check_image` decodes (the polygons JSON is parsed
        in full at every load already)."""
        info = self.image_info[image_id]
        if info["source"] != SOURCE or info["annotation_kind"] != "instanceIds":
            return super().image_files(image_id)
        return [info["path"], info["annotation"]]

    def check_image(self, image_id):
        """Decode the image, and its instanceIds PNG, in full; an error names the file."""
        super().check_image(image_id)
        if self.image_files(image_id)[1:]:
            self.load_instance_ids(image_id)

    def cache_version(self, image_id):
        """A key that changes when load_mask's output may change.

        Hex digest of: LOADER_VERSION, the annotation file's name (so its
        kind: with "auto", an image whose masks come from the PNG has
        another key than from the JSON, and gets a new one when a JSON
        appears and the dataset is loaded again), the ClassMap, the image
        id, and the mtime_ns and size of the image and of the annotation
        file the masks come from. Images of other sources: the base class's
        answer (None, do not cache). Raises FileNotFoundError when a file
        has gone.
        """
        info = self.image_info[image_id]
        if info["source"] != SOURCE:
            return super().cache_version(image_id)
        parts = [LOADER_VERSION, os.path.basename(info["annotation"]),
                 ",".join(self.class_map.names), str(info["id"])]
        for path in (info["path"], info["annotation"]):
            st = os.stat(path)
            parts.append(f"{st.st_mtime_ns}:{st.st_size}")
        return hashlib.sha1("|".join(parts).encode("utf-8")).hexdigest()

    def image_reference(self, image_id):
        """The image's path."""
        return self.image_info[image_id]["path"]


# -------------------------------------------------------------------- helpers
def _dataset_root(root):
    """The dataset folder from `root` or $CITYSCAPES_DATASET, or a clear error."""
    root = root or os.environ.get(ENV_VAR)
    if not root:
        raise CityscapesDataError("<no root>", f"no Cityscapes folder given. {HOW_TO_GET}")
    if not os.path.isdir(root):
        raise CityscapesDataError(root, f"no such folder. {HOW_TO_GET}")
    return os.fspath(root)


def _list_images(root, split):
    """The images of an official split folder, as dicts (split, city, stem, path)."""
    image_dir = os.path.join(root, "leftImg8bit", split)
    if not os.path.isdir(image_dir):
        found = find_splits(root)
        if found:
            raise CityscapesDataError(image_dir, f"no such folder: split {split!r} missing "
                                                 f"(splits found: {', '.join(found)})")
        raise CityscapesDataError(image_dir, f"no such folder (not a Cityscapes folder, or split "
                                             f"{split!r} missing). {HOW_TO_GET}")
    if not os.path.isdir(os.path.join(root, "gtFine", split)):
        raise CityscapesDataError(os.path.join(root, "gtFine", split),
                                  f"no such folder: the fine annotations are missing. {HOW_TO_GET}")
    items = []
    for city in sorted(os.listdir(image_dir)):
        city_dir = os.path.join(image_dir, city)
        if not os.path.isdir(city_dir):
            continue
        for name in sorted(os.listdir(city_dir)):
            if name.endswith(IMAGE_SUFFIX):
                items.append({"split": split, "city": city, "stem": name[:-len(IMAGE_SUFFIX)],
                              "path": os.path.join(city_dir, name)})
    if not items:
        raise CityscapesDataError(image_dir, f"no *{IMAGE_SUFFIX} images in its city folders")
    return items


def split_size(root, split):
    """The number of images of an official split folder (listed, not checked);
    CityscapesDataError when the split is missing."""
    return len(_list_images(os.fspath(root), split))


def _candidates(root, split, resplit, subset, seed):
    """The images load_cityscapes will check, as dicts (split, city, stem, path), sorted."""
    if resplit is None:
        items = _list_images(root, split)
    else:
        if split not in splits.SPLIT_NAMES:
            raise ValueError(f"with resplit, split must be one of {splits.SPLIT_NAMES}, "
                             f"got {split!r}")
        kwargs = {} if resplit is True else dict(resplit)
        pooled = _list_images(root, "train") + _list_images(root, "val")
        by_city = {}
        for item in pooled:
            by_city.setdefault(item["city"], []).append(item["stem"])
        keep = set(splits.resplit(by_city, **kwargs)[split])
        items = [item for item in pooled if item["stem"] in keep]
    items.sort(key=lambda item: (item["city"], item["stem"]))
    if subset is not None:
        chosen = set(splits.subset([item["stem"] for item in items], subset, seed))
        items = [item for item in items if item["stem"] in chosen]
    return items


def _image_header(path, what):
    """(height, width, PIL mode) from an image file's header, or CityscapesDataError."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            mode = img.mode
    except FileNotFoundError:
        raise CityscapesDataError(path, f"{what} not found") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise CityscapesDataError(path, f"cannot read {what}: {e}") from e
    return height, width, mode


def find_splits(root, names=splits.SPLIT_NAMES):
    """The official split folders of `names` (in that order) that have
    images and ground truth: a *_leftImg8bit.png in a city folder of
    leftImg8bit/{split}/ and a *_gtFine_polygons.json or
    *_gtFine_instanceIds.png in one of gtFine/{split}/. Stops at the first
    file found per split, so it is quick on the full dataset."""
    root = os.fspath(root)
    image_suffixes = (IMAGE_SUFFIX,)
    gt_suffixes = tuple(ANNOTATION_SUFFIX.values())
    return [split for split in names
            if _any_file(os.path.join(root, "leftImg8bit", split), image_suffixes)
            and _any_file(os.path.join(root, "gtFine", split), gt_suffixes)]


def _any_file(folder, suffixes):
    """Whether a city folder of `folder` holds a file ending in one of `suffixes`."""
    try:
        cities = sorted(e.path for e in os.scandir(folder) if e.is_dir())
    except OSError:
        return False
    for city in cities:
        try:
            with os.scandir(city) as entries:
                if any(e.name.endswith(suffixes) for e in entries):
                    return True
        except OSError:
            continue
    return False


def check_split(root, split):
    """CityscapesDataError (one line, listing the splits found) unless the
    official split folder `split` of `root` has images and ground truth
    (`find_splits`: a polygons JSON or an instanceIds PNG). A `root` that
    is not a folder is the error of load_cityscapes."""
    root = _dataset_root(root)
    if split in find_splits(root, (split,)):
        return
    found = find_splits(root)
    where = f"splits found: {', '.join(found)}" if found else \
        f"no split with images and ground truth found. {HOW_TO_GET}"
    raise CityscapesDataError(root, f"no split {split!r} with images (leftImg8bit/{split}/) and "
                                    f"ground truth (gtFine/{split}/); {where}")


def _annotation_file(ann_base, annotations):
    """(kind, path) of the annotation an image uses, or CityscapesDataError.

    ann_base: gtFine/{split}/{city}/{stem}. "auto": the polygons JSON if it
    exists, else the instanceIds PNG; neither: an error naming both. A
    named kind whose file is missing: an error naming it (and saying so
    when the other kind's file is there).
    """
    paths = {kind: ann_base + suffix for kind, suffix in ANNOTATION_SUFFIX.items()}
    if annotations == "auto":
        for kind in ANNOTATION_KINDS:
            if os.path.isfile(paths[kind]):
                return kind, paths[kind]
        raise CityscapesDataError(
            paths["polygons"], f"annotation file not found, nor the instanceIds PNG "
                               f"{paths['instanceIds']} (looked for both)")
    path = paths[annotations]
    if not os.path.isfile(path):
        what = "annotation file" if annotations == "polygons" else "instance id PNG"
        other = ANNOTATION_KINDS[annotations == "polygons"]
        hint = (f" (the {other} file {os.path.basename(paths[other])} is there: "
                f"annotations='auto' or {other!r} reads it)") \
            if os.path.isfile(paths[other]) else ""
        raise CityscapesDataError(path, f"{what} not found{hint}")
    return annotations, path


def _check_image(image_path, ann_base, annotations, class_map):
    """Validate one image and its annotation.

    ann_base: gtFine/{split}/{city}/{stem}; annotations: as load_cityscapes.
    Returns (height, width, kind, annotation path, has_instances), where
    has_instances is, for polygons, whether a drawn non-group object has a
    class of class_map, and None for instanceIds (unknown without decoding).
    """
    height, width, _ = _image_header(image_path, "image")
    kind, ann_path = _annotation_file(ann_base, annotations)
    if kind == "polygons":
        ann = rasterize.parse_polygons(ann_path)
        ann_size = (ann.height, ann.width)
        factor = rasterize.INSTANCE_FACTOR
        has_instances = any(v is not None and v >= factor and class_map.class_id(v // factor) > 0
                            for v in rasterize.object_values(ann))
    else:
        *ann_size, mode = _image_header(ann_path, "instance id PNG")
        ann_size = tuple(ann_size)
        if mode not in rasterize.ID_PNG_MODES:
            raise CityscapesDataError(
                ann_path, f"instance id PNG has mode {mode!r}, expected a 16- or 32-bit grey image")
        has_instances = None
    if ann_size != (height, width):
        raise CityscapesDataError(
            ann_path, f"annotation size {ann_size[0]}x{ann_size[1]} (HxW) differs from the "
                      f"image's {height}x{width} ({image_path})")
    return height, width, kind, ann_path, has_instances
