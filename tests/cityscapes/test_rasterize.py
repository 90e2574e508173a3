"""cityscapes.rasterize against cityscapesscripts' own rasteriser.

Also defines the hand-made scenes and file writers that test_dataset.py uses.
"""

import json

import numpy as np
import pytest
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from PIL import Image

from cityscapes.labels import EVALUATED_CLASSES, ClassMap
from cityscapes.rasterize import (
    CityscapesDataError,
    instance_id_image,
    instances_from_id_image,
    masks_from_label_map,
    parse_polygons,
    read_instance_ids_png,
)


def rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def obj(label, polygon, **extra):
    return {"label": label, "polygon": polygon, **extra}


# 40 x 60 (H x W). Comments give the encoded value each object is drawn with.
STREET = {
    "imgHeight": 40,
    "imgWidth": 60,
    "objects": [
        obj("road", rect(-5, 20, 70, 45)),                 # 7, crosses every border
        obj("sky", rect(0, 0, 59, 8)),                     # 23
        obj("car", rect(5, 15, 25, 30)),                   # 26000
        obj("car", rect(18, 18, 35, 32)),                  # 26001, occludes 26000
        obj("car", rect(40, 5, 44, 9), deleted=1),         # skipped, k not used
        obj("person", [[45, 10], [52, 10], [48, 35]]),     # 24000, a triangle
        obj("pole", rect(28, 0, 30, 39)),                  # 17, occludes 26001
        obj("car", rect(50, 30, 55, 34)),                  # 26002, hidden below
        obj("building", rect(49, 29, 56, 35)),             # 11, hides 26002
        obj("license plate", rect(8, 25, 14, 28)),         # -1, never drawn
        obj("cargroup", rect(0, 33, 6, 39)),               # 26
        obj("cargroup", rect(36, 33, 44, 39)),             # 26, the same crowd region
        obj("persongroup", rect(54, -3, 64, 6)),           # 24, past the right border
        obj("caravan", rect(36, 10, 42, 16)),              # 29000
        obj("trailer", rect(1, 1, 4, 4)),                  # 30000
        obj("bicycle", [[10, 5], [20, 5.5], [10, 6]]),     # 33000, thin sliver
        obj("rider", [[-8, -8], [3, -8], [3, 12]]),        # 25000, mostly outside
        obj("unicorn", [[0, 0]], deleted=True),            # deleted: not checked
        obj("ego vehicle", rect(0, 37, 59, 39)),           # 1
    ],
}

# Only stuff (and a license plate): no instances.
EMPTY_STREET = {
    "imgHeight": 40,
    "imgWidth": 60,
    "objects": [obj("road", rect(0, 20, 59, 39)), obj("license plate", rect(3, 3, 9, 9))],
}

# Degenerate and border cases.
EDGES = {
    "imgHeight": 17,
    "imgWidth": 23,
    "objects": [
        obj("car", [[0, 0], [0, 0], [0, 0]]),               # a single point
        obj("car", [[2, 2], [12, 2], [22, 2]]),              # collinear: a line
        obj("truck", [[-100, -100], [100, -100], [100, 0.4], [-100, 0.4]]),
        obj("bus", [[22, 16], [23, 16], [23, 17], [22, 17]]),  # the last pixel corner
        obj("train", [[5.5, 5.5], [9.49, 5.51], [7.2, 12.7], [6, 14], [4.4, 9.6]]),
        obj("motorcycle", [[15, 5], [22, 12], [15, 12], [22, 5]]),  # self-intersecting
        obj("person", [[30, 30], [40, 30], [35, 40]]),      # entirely outside
    ],
}

SCENES = {"street": STREET, "empty": EMPTY_STREET, "edges": EDGES}


def write_json(path, scene):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(scene))
    return path


def official_ids(json_path):
    """cityscapesscripts' rasterisation: [H, W] int32."""
    annotation = Annotation()
    annotation.fromJsonFile(str(json_path))
    return np.asarray(createInstanceImage(annotation, "ids"), dtype=np.int32)


def write_ids_png(path, ids):
    """An instanceIds PNG as the dataset ships it (16-bit grey)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(ids).astype(np.uint16)).save(path)
    return path


def random_scene(seed, with_floats=True):
    """A random polygons JSON: random labels (groups, stuff, deleted), sizes, vertices."""
    rng = np.random.default_rng(seed)
    height, width = int(rng.integers(20, 70)), int(rng.integers(20, 90))
    labels = ["car", "car", "person", "person", "rider", "bicycle", "truck", "bus", "train",
              "motorcycle", "caravan", "trailer", "cargroup", "persongroup", "bicyclegroup",
              "ridergroup", "road", "building", "pole", "polegroup", "sky", "license plate",
              "ego vehicle", "out of roi", "vegetation"]
    objects = []
    for _ in range(int(rng.integers(5, 40))):
        n = int(rng.integers(3, 9))
        xs = rng.uniform(-0.2 * width, 1.2 * width, n)
        ys = rng.uniform(-0.2 * height, 1.2 * height, n)
        if rng.random() < 0.5:  # a compact blob rather than a star across the image
            cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.5, 12)
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            xs, ys = cx + r * np.cos(angles), cy + r * np.sin(angles)
        if not with_floats or rng.random() < 0.5:
            xs, ys = np.round(xs), np.round(ys)
            points = [[int(x), int(y)] for x, y in zip(xs, ys)]
        else:
            points = [[float(x), float(y)] for x, y in zip(xs, ys)]
        o = obj(str(rng.choice(labels)), points)
        if rng.random() < 0.1:
            o["deleted"] = 1
        objects.append(o)
    return {"imgHeight": height, "imgWidth": width, "objects": objects}


# ------------------------------------------------------------------ equality
@pytest.mark.parametrize("name", sorted(SCENES))
def test_hand_made_scenes_equal_official(tmp_path, name):
    path = write_json(tmp_path / f"{name}.json", SCENES[name])
    ids = instance_id_image(parse_polygons(path))
    assert ids.dtype == np.int32 and ids.shape == (SCENES[name]["imgHeight"],
                                                   SCENES[name]["imgWidth"])
    np.testing.assert_array_equal(ids, official_ids(path))


@pytest.mark.parametrize("seed", range(6))
def test_random_scenes_equal_official(tmp_path, seed):
    scene = random_scene(seed)
    path = write_json(tmp_path / "random.json", scene)
    np.testing.assert_array_equal(instance_id_image(parse_polygons(path)), official_ids(path))


def test_street_encoding(tmp_path):
    ids = instance_id_image(parse_polygons(write_json(tmp_path / "s.json", STREET)))
    assert ids[20, 10] == 26000               # car 0 left of car 1
    assert ids[20, 22] == 26001               # car 1 drawn over car 0
    assert ids[20, 29] == 17                  # the pole over car 1
    assert ids[26, 10] == 26000               # the license plate is not drawn
    assert ids[36, 3] == 26 and ids[36, 40] == 26  # two cargroup polygons
    assert ids[0, 59] == 24                   # persongroup clipped at the border
    assert ids[38, 30] == 1                   # ego vehicle drawn last
    assert 26002 not in ids                   # hidden by the building
    assert 26003 not in ids                   # the deleted car took no k
    assert 33000 in ids                       # the thin bicycle still has pixels
    assert ids[0, 0] == 25000                 # rider coming from outside


# ---------------------------------------------------------- instance extraction
def test_instances_from_street(tmp_path):
    ids = instance_id_image(parse_polygons(write_json(tmp_path / "s.json", STREET)))
    label_map, class_ids = instances_from_id_image(ids, ClassMap())
    # person 24000, rider 25000, cars 26000, 26001, caravan, trailer, bicycle,
    # then crowd regions person (24) and car (26).
    np.testing.assert_array_equal(class_ids, [1, 2, 3, 3, 6, 7, 10, -1, -3])
    assert class_ids.dtype == np.int32 and label_map.dtype == np.int32
    expected_values = [24000, 25000, 26000, 26001, 29000, 30000, 33000, 24, 26]
    for i, value in enumerate(expected_values, start=1):
        np.testing.assert_array_equal(label_map == i, ids == value)
    covered = np.isin(ids, expected_values)
    np.testing.assert_array_equal(label_map == 0, ~covered)


def test_evaluated_classes_drop_caravan_and_trailer(tmp_path):
    ids = instance_id_image(parse_polygons(write_json(tmp_path / "s.json", STREET)))
    cmap = ClassMap(EVALUATED_CLASSES)
    label_map, class_ids = instances_from_id_image(ids, cmap)
    # person 1, rider 2, car 3 (x2), bicycle 8; crowd person, car.
    np.testing.assert_array_equal(class_ids, [1, 2, 3, 3, 8, -1, -3])
    assert label_map.max() == len(class_ids)
    assert not label_map[np.isin(ids, [29000, 30000])].any()  # background now


def test_instances_order_is_by_encoded_value():
    ids = np.array([[0, 7, 26000, 26000],
                    [26002, 26002, 26, 7],
                    [24, 31000, 26, 24001]], dtype=np.int32)
    label_map, class_ids = instances_from_id_image(ids, ClassMap())
    np.testing.assert_array_equal(class_ids, [1, 3, 3, 8, -1, -3])
    np.testing.assert_array_equal(label_map, [[0, 0, 2, 2],
                                              [3, 3, 6, 0],
                                              [5, 4, 6, 1]])
    masks = masks_from_label_map(label_map, len(class_ids))
    assert masks.shape == (3, 4, 6) and masks.dtype == bool
    np.testing.assert_array_equal(masks.sum(axis=(0, 1)), [1, 2, 2, 1, 1, 2])
    assert not masks.any(axis=2)[label_map == 0].any()


def test_instances_unique_path_matches_lookup_path():
    rng = np.random.default_rng(0)
    values = np.array([0, 7, 17, 24, 26, 24000, 24003, 26000, 26001, 29000, 33000])
    ids = rng.choice(values, size=(30, 40)).astype(np.int32)
    fast = instances_from_id_image(ids, ClassMap())
    # A value outside the lookup table's range forces the np.unique path.
    big = ids.copy()
    big[0, 0] = 1 << 30
    slow = instances_from_id_image(big, ClassMap())
    np.testing.assert_array_equal(slow[1], fast[1])
    np.testing.assert_array_equal(slow[0][1:], fast[0][1:])
    np.testing.assert_array_equal(slow[0][0, 1:], fast[0][0, 1:])
    assert slow[0][0, 0] == 0


def test_no_instances():
    label_map, class_ids = instances_from_id_image(np.full((5, 6), 7, np.int32), ClassMap())
    assert class_ids.shape == (0,) and class_ids.dtype == np.int32
    assert not label_map.any()
    assert masks_from_label_map(label_map, 0).shape == (5, 6, 0)


# ---------------------------------------------------------------- file errors
@pytest.mark.parametrize("content, match", [
    ("{not json", "cannot read or parse"),
    ("[1, 2]", "top level"),
    (json.dumps({"imgHeight": 4, "objects": []}), "imgWidth"),
    (json.dumps({"imgHeight": 4, "imgWidth": 4, "objects": [{"label": "car"}]}), "polygon"),
    (json.dumps({"imgHeight": 4, "imgWidth": 4,
                 "objects": [obj("car", [[0, 0], [3, 3]])]}), "2 point"),
    (json.dumps({"imgHeight": 4, "imgWidth": 4,
                 "objects": [obj("unicorn", rect(0, 0, 2, 2))]}), "unknown label 'unicorn'"),
    (json.dumps({"imgHeight": 4, "imgWidth": 4,
                 "objects": [obj("unicorngroup", rect(0, 0, 2, 2))]}), "unicorngroup"),
    (json.dumps({"imgHeight": 4, "imgWidth": 4,
                 "objects": [obj("car", [[0, "a"], [1, 1], [2, 0]])]}), "not a list of"),
    (json.dumps({"imgHeight": 0, "imgWidth": 4, "objects": []}), "size"),
])
def test_parse_errors_name_the_file(tmp_path, content, match):
    path = tmp_path / "bad_gtFine_polygons.json"
    path.write_text(content)
    with pytest.raises(CityscapesDataError, match=match) as info:
        parse_polygons(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_json_names_the_file(tmp_path):
    with pytest.raises(CityscapesDataError, match="not found") as info:
        parse_polygons(tmp_path / "nope.json")
    assert "nope.json" in str(info.value)


@pytest.mark.parametrize("use_tensorflow", [False, True])
def test_read_instance_ids_png(tmp_path, use_tensorflow):
    path = tmp_path / "scene.json"
    ids = official_ids(write_json(path, STREET)).copy()
    ids[0, :3] = [65535, 33001, 1]  # the whole 16-bit range, unscaled
    png = write_ids_png(tmp_path / "x_gtFine_instanceIds.png", ids)
    read = read_instance_ids_png(png, use_tensorflow=use_tensorflow)
    assert read.dtype == np.int32
    np.testing.assert_array_equal(read, ids)


@pytest.mark.parametrize("use_tensorflow", [False, True])
@pytest.mark.parametrize("kind", ["garbage", "rgb", "missing", "truncated"])
def test_read_instance_ids_png_errors(tmp_path, kind, use_tensorflow):
    path = tmp_path / "x_gtFine_instanceIds.png"
    if kind == "garbage":
        path.write_bytes(b"\x89PNG not really")
    elif kind == "rgb":
        Image.new("RGB", (4, 3)).save(path)
    elif kind == "truncated":
        Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 7).save(path)
        path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(CityscapesDataError) as info:
        read_instance_ids_png(path, use_tensorflow=use_tensorflow)
    assert str(path) in str(info.value)


def test_masks_from_label_map_matches_comparison():
    rng = np.random.default_rng(1)
    label_map = rng.integers(0, 6, size=(13, 17)).astype(np.int32)
    masks = masks_from_label_map(label_map, 5)
    np.testing.assert_array_equal(masks, label_map[..., None] == np.arange(1, 6))
