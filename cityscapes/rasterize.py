"""Cityscapes polygon annotations -> instance id image -> instance masks.

Reproduces cityscapesscripts' `json2instanceImg.createInstanceImage(..., "ids")`
(the tool that made the official `*_gtFine_instanceIds.png`) pixel for pixel:

* an int32 image of the JSON's imgHeight x imgWidth, filled with the id of
  'unlabeled' (0);
* the objects drawn in file order with PIL `ImageDraw.polygon(points,
  fill=value)` (the same call, so boundary pixels and rounding are the
  same), later polygons overwriting earlier ones: stuff drawn after an
  instance (a pole, the ego vehicle, ...) occludes it;
* `deleted` objects skipped;
* a label the table does not know but that ends in "group" ("cargroup") is
  a group of its base label ("car"), see `labels.split_group`;
* labels with a negative id (license plate) are never drawn;
* the value drawn is labelId * 1000 + k for an instance of a label with
  instances (k counts that label's non-group objects in file order, from
  0), and the plain labelId for groups and for labels without instances.

`instances_from_id_image` then turns such an id image (rasterised here or
read from an instanceIds PNG; both are the same) into a label map in a
canonical order: the instances by increasing encoded value, then one crowd
region per class (its groups, merged as the id encoding merges them).

Shapes: H, W image size; N number of instances + crowd regions.
"""

import json
import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from cityscapes.labels import label_by_name, split_group
from mrcnn.data.label_image import present_values

# Value of pixels no polygon covers (the 'unlabeled' label id).
UNLABELED_ID = label_by_name("unlabeled").id
# Encoded instance values are labelId * INSTANCE_FACTOR + k.
INSTANCE_FACTOR = 1000
# PIL modes an instanceIds PNG may have (16-bit as shipped, 32-bit, 8-bit).
ID_PNG_MODES = ("I;16", "I;16B", "I;16L", "I", "L")


class CityscapesDataError(ValueError):
    """A dataset file that cannot be used; the message names the file and the problem."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class PolygonObject:
    """One object of a polygons JSON.

    label: the name as written ("car", "cargroup", "license plate").
    polygon: [P, 2] float64 (x, y) vertices, P >= 3 unless deleted.
    deleted: the JSON's `deleted` flag (such objects are not drawn).
    """

    label: str
    polygon: np.ndarray
    deleted: bool


@dataclass(frozen=True)
class PolygonAnnotation:
    """A parsed `*_gtFine_polygons.json`: image size and objects in file order."""

    height: int
    width: int
    objects: tuple


def parse_polygons(path):
    """Read a Cityscapes polygons JSON into a `PolygonAnnotation`.

    Raises `CityscapesDataError` (a ValueError) naming the file when it cannot
    be read or parsed as JSON, lacks imgHeight / imgWidth / objects or an
    object's label / polygon (as the official reader requires), has a
    non-positive size, or when an object that is not deleted has a polygon
    of fewer than 3 finite (x, y) points or a label unknown to the label
    table even after removing a "group" suffix. Deleted objects are never
    drawn by the official tool, so only their keys are checked.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise CityscapesDataError(path, "annotation file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CityscapesDataError(path, f"cannot read or parse the JSON: {e}") from e
    if not isinstance(data, dict):
        raise CityscapesDataError(
            path, "not a Cityscapes polygons JSON (top level is not an object)")
    missing = [k for k in ("imgHeight", "imgWidth", "objects") if k not in data]
    if missing:
        raise CityscapesDataError(path, f"missing key(s) {missing}")
    try:
        height, width = int(data["imgHeight"]), int(data["imgWidth"])
    except (TypeError, ValueError):
        raise CityscapesDataError(
            path, f"bad image size imgHeight={data['imgHeight']!r} imgWidth={data['imgWidth']!r}"
        ) from None
    if height <= 0 or width <= 0:
        raise CityscapesDataError(path, f"bad image size {height}x{width}")
    if not isinstance(data["objects"], list):
        raise CityscapesDataError(path, "'objects' is not a list")
    objects = tuple(_parse_object(path, i, obj) for i, obj in enumerate(data["objects"]))
    return PolygonAnnotation(height=height, width=width, objects=objects)


def _parse_object(path, index, obj):
    """One entry of `objects` -> PolygonObject, or CityscapesDataError."""
    if not isinstance(obj, dict) or "label" not in obj or "polygon" not in obj:
        raise CityscapesDataError(path, f"object {index} lacks a 'label' or a 'polygon'")
    label = str(obj["label"])
    deleted = bool(obj.get("deleted", 0))
    try:
        polygon = np.asarray(obj["polygon"], dtype=np.float64)
    except (TypeError, ValueError):
        polygon = None
    if deleted:
        return PolygonObject(label, polygon if polygon is not None else np.zeros((0, 2)), True)
    if polygon is None or polygon.ndim != 2 or polygon.shape[1] != 2 \
            or not np.isfinite(polygon).all():
        raise CityscapesDataError(
            path, f"object {index} ({label!r}): polygon is not a list of [x, y] numbers")
    if len(polygon) < 3:
        raise CityscapesDataError(
            path, f"object {index} ({label!r}): polygon has {len(polygon)} point(s), needs 3")
    base, _ = split_group(label)
    if label_by_name(base) is None:
        raise CityscapesDataError(path, f"object {index}: unknown label {label!r}")
    return PolygonObject(label, polygon, False)


def object_values(annotation):
    """The value each object is drawn with, in file order.

    Returns a list with one int per object, None for objects not drawn
    (deleted, or a label with a negative id such as 'license plate').
    Instance counters follow json2instanceImg: they count the non-group,
    non-deleted objects of each label with instances.
    """
    counts = {}
    values = []
    for obj in annotation.objects:
        if obj.deleted:
            values.append(None)
            continue
        name, is_group = split_group(obj.label)
        label = label_by_name(name)
        value = label.id
        if label.hasInstances and not is_group:
            k = counts.get(name, 0)
            counts[name] = k + 1
            value = value * INSTANCE_FACTOR + k
        values.append(value if value >= 0 else None)
    return values


def instance_id_image(annotation):
    """Rasterise a `PolygonAnnotation` with the official encoding.

    Returns ids: [H, W] int32, equal to cityscapesscripts'
    `createInstanceImage(annotation, "ids")` (and so to the dataset's
    `*_gtFine_instanceIds.png`).
    """
    image = Image.new("I", (annotation.width, annotation.height), UNLABELED_ID)
    draw = ImageDraw.Draw(image)
    for obj, value in zip(annotation.objects, object_values(annotation)):
        if value is not None:
            draw.polygon(obj.polygon.ravel().tolist(), fill=value)
    return np.asarray(image, dtype=np.int32)


def label_of_value(values):
    """Label id of each id-image value [U]: v // 1000 for an instance
    (v >= 1000), v itself for a group or stuff (instance.py's rule)."""
    values = np.asarray(values, np.int64)
    return np.where(values < INSTANCE_FACTOR, values, values // INSTANCE_FACTOR)


def value_classes(values, class_map):
    """What each value of an instance id image is for a class map.

    values: [U]. Returns (instance [U] bool: an instance of a mapped class,
    crowd [U] bool: a group region of a mapped class (its label id, < 1000),
    class_ids [U] int32: our class id of the value's label, 0 if unmapped).
    """
    values = np.asarray(values, np.int64)
    class_ids = np.array([class_map.class_id(v) for v in label_of_value(values)],
                         dtype=np.int32).reshape(-1)
    is_instance = values >= INSTANCE_FACTOR
    return is_instance & (class_ids > 0), ~is_instance & (class_ids > 0), class_ids


def instances_from_id_image(ids, class_map):
    """Instance id image -> label map of instances and crowd regions.

    ids: [H, W] int, official encoding (labelId * 1000 + k for instances,
        labelId for groups and stuff).
    class_map: `labels.ClassMap`; instances and groups of labels outside it
        are dropped (they become background).

    Returns:
        label_map: [H, W] int32, 0 = nothing, i = object i - 1.
        class_ids: [N] int32. First the instances (values >= 1000 whose
            labelId is in class_map), in increasing encoded value, with
            their class id 1..K; then one crowd region per class that has
            group pixels (values equal to the class's label id), in
            increasing class id, with class id -class_id. Instances with no
            visible pixel (hidden by later polygons) do not appear.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be [H, W], got shape {ids.shape}")
    values, _, inverse = present_values(ids)
    keep_instance, crowd, class_of = value_classes(values, class_map)
    order = np.concatenate([np.flatnonzero(keep_instance), np.flatnonzero(crowd)])
    # `values` is sorted, so crowd regions come in label id = class id order.
    class_ids = np.concatenate([class_of[keep_instance], -class_of[crowd]]).astype(np.int32)
    lut = np.zeros(len(values), dtype=np.int32)
    lut[order] = np.arange(1, len(order) + 1, dtype=np.int32)
    label_map = inverse(lut)
    return label_map, class_ids


def value_counts(ids):
    """Distinct values of ids [H, W] (sorted, [U] int64) and their pixel counts [U]."""
    values, counts, _ = present_values(ids)
    return values, counts


def read_instance_ids_png(path, use_tensorflow=None):
    """Read a `*_gtFine_instanceIds.png` (16-bit or 32-bit grey PNG).

    Returns ids: [H, W] int32. Raises `CityscapesDataError` naming the file when
    it is missing, unreadable, or not a single-channel integer image.
    use_tensorflow: decode a 16-bit PNG with `tf.io.decode_png` (about 1.5x
    faster than PIL on a 1024 x 2048 frame; same values). None: when
    TensorFlow is already imported (training, evaluation), so that tools
    without it (the statistics' process pool) do not load it.
    """
    if use_tensorflow is None:
        use_tensorflow = "tensorflow" in sys.modules
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode not in ID_PNG_MODES:
                raise CityscapesDataError(
                    path, f"instance id PNG has mode {mode!r}, expected a 16- or 32-bit grey image")
            if use_tensorflow and mode.startswith("I;16"):
                array = _decode_png16(path)
            else:
                array = np.asarray(img)
    except FileNotFoundError:
        raise CityscapesDataError(path, "instance id PNG not found") from None
    except CityscapesDataError:
        raise
    except (OSError, ValueError, SyntaxError) as e:
        raise CityscapesDataError(path, f"cannot read the instance id PNG: {e}") from e
    if array.ndim != 2:
        raise CityscapesDataError(
            path, f"instance id PNG is not single-channel (shape {array.shape})")
    return array.astype(np.int32)


def _decode_png16(path):
    import tensorflow as tf

    try:
        with open(path, "rb") as f:
            data = f.read()
        return tf.io.decode_png(data, channels=1, dtype=tf.uint16).numpy()[..., 0]
    except tf.errors.OpError as e:
        raise ValueError(e.message) from None


def read_id_image(path, height, width):
    """[H, W] int32 official instance id image of a polygons JSON or instanceIds PNG.

    Raises CityscapesDataError naming the file when it cannot be read or is
    not height x width (the image's size).
    """
    if path.endswith(".json"):
        ids = instance_id_image(parse_polygons(path))
    else:
        ids = read_instance_ids_png(path)
    if ids.shape != (height, width):
        raise CityscapesDataError(path, f"annotation is {ids.shape[0]}x{ids.shape[1]}, "
                                        f"image is {height}x{width}")
    return ids


def masks_from_label_map(label_map, n):
    """Label map [H, W] int (0 = nothing, i = object i - 1) -> masks [H, W, n] bool."""
    label_map = np.asarray(label_map)
    h, w = label_map.shape
    masks = np.zeros((h * w, n), dtype=bool)
    pixels = np.flatnonzero(label_map)
    masks[pixels, label_map.ravel()[pixels] - 1] = True
    return masks.reshape(h, w, n)
