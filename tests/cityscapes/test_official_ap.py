"""cityscapes.official_ap against cityscapesscripts' own instance evaluation.

Hand-made instanceIds scenes hit every rule of the script (IoU and ignore
shares exactly at thresholds, duplicates, groups, small instances, void,
other classes, labels not evaluated, empty masks, classes without gt or
without predictions, tied scores across images); synthetic scenes add
realistic shapes. Both sides score the same predictions: ours from the
RLEs, the official script from what cityscapes.export writes.
"""

import fnmatch
import os

import numpy as np
import pytest
from PIL import Image

from cityscapes import official_ap, official_script, synthetic
from cityscapes.export import read_cityscapes_results, write_cityscapes_results
from cityscapes.official_ap import (
    CLASS_NAMES,
    OVERLAPS,
    CityscapesInstanceEval,
    average_precision,
)
from cityscapes.rasterize import read_id_image
from mrcnn.evaluation import rle

CAR, PERSON, RIDER, TRUCK, BUS, CARAVAN, TRAILER, TRAIN, MOTORCYCLE, BICYCLE = (
    26, 24, 25, 27, 28, 29, 30, 31, 32, 33)
NAN = float("nan")


# ------------------------------------------------------------------ helpers
def box(shape, y0, y1, x0, x1):
    """[H, W] bool, True on rows y0..y1-1 and columns x0..x1-1."""
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def take(region, n):
    """The first n pixels (row-major) of a bool mask, as a new mask."""
    flat = np.flatnonzero(region)
    assert len(flat) >= n, (len(flat), n)
    out = np.zeros(region.size, bool)
    out[flat[:n]] = True
    return out.reshape(region.shape)


def iou(a, b):
    return float((a & b).sum()) / int((a | b).sum())


class Scene:
    """A ground-truth id image [H, W] and predictions (label, score, mask)."""

    def __init__(self, ids):
        self.ids = np.asarray(ids, np.int64)
        self.preds = []

    def add(self, label, score, mask):
        self.preds.append((label, float(score), np.asarray(mask, bool)))

    def where(self, value):
        return self.ids == value

    def arrays(self):
        h, w = self.ids.shape
        labels = np.array([p[0] for p in self.preds], np.int64)
        scores = np.array([p[1] for p in self.preds], np.float64)
        masks = (np.stack([p[2] for p in self.preds], -1) if self.preds
                 else np.zeros((h, w, 0), bool))
        return labels, scores, masks


def write_scenes(root, scenes, city="handcity", as_rles=True):
    """Write gt PNGs and exported predictions; returns (gt paths, results dir)."""
    gt_dir = os.path.join(root, "gtFine", "val", city)
    results = os.path.join(root, "results")
    os.makedirs(gt_dir, exist_ok=True)
    gt_paths = []
    for i, scene in enumerate(scenes):
        stem = f"{city}_{i:06d}_000019"
        path = os.path.join(gt_dir, stem + "_gtFine_instanceIds.png")
        Image.fromarray(scene.ids.astype(np.uint16)).save(path)
        gt_paths.append(path)
        labels, scores, masks = scene.arrays()
        write_cityscapes_results(results, stem, labels, scores,
                                 rle.encode(masks) if as_rles else masks)
    return gt_paths, results


def ours(scenes):
    ev = CityscapesInstanceEval()
    for scene in scenes:
        labels, scores, masks = scene.arrays()
        ev.add_image(scene.ids, labels, scores, rle.encode(masks))
    return ev.result()


def assert_same(result, official):
    """Our result equals the script's dict to 1e-9, NaN where it has NaN."""
    matrix = np.asarray(official["resultApMatrix"], np.float64)[0]
    assert official["instLabels"] == list(CLASS_NAMES)
    np.testing.assert_array_equal(np.isnan(result["ap_matrix"]), np.isnan(matrix))
    np.testing.assert_allclose(result["ap_matrix"], matrix, rtol=0, atol=1e-9)
    avg = official["averages"]
    np.testing.assert_allclose(result["AP"], avg["allAp"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(result["AP50"], avg["allAp50%"], rtol=0, atol=1e-9)
    for name in CLASS_NAMES:
        np.testing.assert_allclose(result["classes"][name]["AP"],
                                   avg["classes"][name]["ap"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(result["classes"][name]["AP50"],
                                   np.ravel(avg["classes"][name]["ap50%"])[0], rtol=0, atol=1e-9)
    # The script's numbers in our layout, as official_script also returns them.
    np.testing.assert_array_equal(official["ap_matrix"], matrix)
    assert official["classes"].keys() == result["classes"].keys()
    for key in ("AP", "AP50"):
        np.testing.assert_allclose(official[key], result[key], rtol=0, atol=1e-9)


# ------------------------------------------------------------ rule scenes
def rule_scene_a():
    """60 x 100: every rule on one image. Comments: what the rule hits."""
    ids = np.full((60, 100), 7)                      # road
    s = (60, 100)
    ids[box(s, 5, 15, 5, 25)] = 26000                # car, 200 px
    ids[box(s, 5, 15, 30, 50)] = 26001               # car, 200 px
    ids[box(s, 20, 30, 5, 35)] = 26                  # car group, 300 px
    ids[box(s, 20, 25, 40, 50)] = 26002              # small car, 50 px
    ids[box(s, 35, 55, 5, 15)] = 24000               # person, 200 px
    ids[box(s, 35, 55, 20, 30)] = 24001              # person, 200 px
    ids[box(s, 35, 45, 40, 60)] = 29000              # caravan instance: not void
    ids[box(s, 45, 55, 40, 60)] = 29                 # caravan group: void
    ids[box(s, 30, 35, 60, 100)] = 0                 # unlabeled: void
    ids[box(s, 55, 60, 0, 100)] = 1                  # ego vehicle: void
    ids[box(s, 5, 25, 60, 70)] = 28000               # bus, 200 px, never predicted
    ids[box(s, 5, 15, 75, 95)] = 27000               # truck, 200 px
    ids[box(s, 40, 50, 70, 80)] = 32000              # motorcycle, 100 px (not small)
    ids[box(s, 25, 30, 60, 80)] = 25000              # rider, 100 px, only an empty mask
    sc = Scene(ids)
    car0, car1, group = sc.where(26000), sc.where(26001), sc.where(26)
    road = sc.where(7)
    sc.add(CAR, 0.9, car0)                           # TP
    sc.add(CAR, 0.9, car0)                           # duplicate, equal score: FP
    sc.add(CAR, 0.7, take(car0, 110))                # IoU 0.55 exactly: matched at 0.5 only
    assert iou(take(car0, 110), car0) == OVERLAPS[1]
    grown = car1 | take(road & box(s, 0, 60, 50, 60), 200)
    assert iou(grown, car1) == 0.5                   # not > 0.5: FP everywhere
    sc.add(CAR, 0.65, grown)
    sc.add(CAR, 0.6, take(car1, 150))                # IoU 0.75: matched below 0.75
    sc.add(CAR, 0.8, group)                          # IoU 1 with a group: ignored
    half = take(group, 150) | take(road & box(s, 0, 60, 35, 40), 150)
    sc.add(CAR, 0.85, half)                          # ignore share 0.5 exactly: FP
    void = take(sc.where(0), 60) | take(road & box(s, 30, 35, 0, 60), 40)
    sc.add(CAR, 0.55, void)                          # share 0.6: ignored at 0.5, 0.55
    sc.add(CAR, 0.5, sc.where(26002))                # IoU 1 with a small car: ignored
    sc.add(CAR, 0.45, take(sc.where(26002), 30) | take(road & box(s, 15, 20, 0, 100), 70))
    sc.add(CAR, 0.95, sc.where(24000))               # on a person: FP
    sc.add(CAR, 0.4, sc.where(29000))                # on a caravan instance: FP
    sc.add(CAR, 0.35, sc.where(29))                  # on a caravan group (void): ignored
    sc.add(CAR, 0.3, sc.where(1))                    # on the ego vehicle: ignored
    sc.add(CAR, 0.99, np.zeros(s, bool))             # empty: skipped
    sc.add(CARAVAN, 0.9, sc.where(29000))            # not evaluated: skipped
    sc.add(TRAILER, 0.9, road)                       # not evaluated: skipped
    sc.add(PERSON, 0.8, sc.where(24000))             # TP
    p1 = sc.where(24001)
    sc.add(PERSON, 0.8, take(p1, 120))               # IoU 0.6, tied score
    sc.add(PERSON, 0.3, p1)                          # duplicate, lower score
    sc.add(RIDER, 0.9, np.zeros(s, bool))            # rider: gt, only an empty mask -> 0
    sc.add(TRAIN, 0.9, take(road, 300))              # train: no gt -> NaN
    sc.add(TRUCK, 0.7, take(sc.where(27000), 180))   # IoU 0.9
    moto = take(sc.where(32000), 50) | take(sc.where(0), 50)
    sc.add(MOTORCYCLE, 0.6, moto)                    # IoU 1/3, share 0.5: FP, gt missed
    return sc


def rule_scene_b():
    """A group under 100 px counted twice; ties with scene A's scores."""
    s = (40, 60)
    ids = np.full(s, 11)                             # building
    ids[box(s, 2, 6, 2, 12)] = 26                    # car group, 40 px (small)
    ids[box(s, 10, 30, 2, 12)] = 26000               # car, 200 px
    ids[box(s, 10, 20, 20, 30)] = 33000              # bicycle, 100 px
    ids[box(s, 22, 26, 20, 30)] = 33001              # small bicycle, 40 px
    ids[box(s, 30, 38, 40, 58)] = 24000              # person, 144 px, missed
    sc = Scene(ids)
    small_group = sc.where(26) | take(sc.where(11) & box(s, 0, 8, 14, 60), 60)
    sc.add(CAR, 0.9, small_group)                    # share (2*40)/100 = 0.8
    sc.add(CAR, 0.9, sc.where(26000))                # TP, ties with scene A
    sc.add(BICYCLE, 0.8, sc.where(33000))            # TP
    sc.add(BICYCLE, 0.85, take(sc.where(33001), 30) | take(sc.where(11), 70))  # share 0.3: FP
    sc.add(PERSON, 0.8, take(sc.where(11) & box(s, 0, 10, 30, 60), 50))        # FP, tied
    return sc


def rule_scene_c():
    """Ground truth, no predictions at all."""
    s = (30, 40)
    ids = np.full(s, 7)
    ids[box(s, 2, 22, 2, 12)] = 26000
    ids[box(s, 2, 22, 20, 30)] = 24000
    return Scene(ids)


# -------------------------------------------------------- synthetic scenes
def synthetic_predictions(ids, rng, boxes=8):
    """Predictions made from a synthetic gt id image [H, W]: shifted, shrunk
    and grown copies of instances and groups, duplicates, wrong labels and
    random boxes, scores on a coarse grid so that ties are common."""
    h, w = ids.shape
    sc = Scene(ids)
    labels = list(range(24, 34))
    for value in np.unique(ids):
        if value < 24 or (value < 1000 and value > 33):
            continue
        label = value if value < 1000 else value // 1000
        gt = ids == value
        for _ in range(rng.integers(0, 3)):
            mask = np.roll(gt, (rng.integers(-3, 4), rng.integers(-3, 4)), (0, 1))
            if rng.random() < 0.3:
                mask = mask & np.roll(gt, (2, 2), (0, 1))
            if rng.random() < 0.3:
                mask = mask | np.roll(mask, (0, 3), (0, 1))
            if rng.random() < 0.1:
                mask = np.zeros_like(gt)
            pred_label = label if rng.random() < 0.85 else rng.choice(labels)
            sc.add(int(pred_label), round(rng.random(), 1), mask)
    for _ in range(boxes):
        y, x = rng.integers(0, h - 4), rng.integers(0, w - 4)
        mask = box((h, w), y, y + rng.integers(2, 30), x, x + rng.integers(2, 40))
        sc.add(int(rng.choice(labels)), round(rng.random(), 1), mask)
    return sc


@pytest.fixture(scope="module")
def synthetic_scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    synthetic.generate(root, seed=3, height=96, width=192, images={"val": 6}, cities=2)
    paths = sorted(str(p) for p in root.glob("gtFine/val/*/*_gtFine_instanceIds.png"))
    rng = np.random.default_rng(0)
    return [(p, synthetic_predictions(read_id_image(p, 96, 192), rng)) for p in paths]


# ------------------------------------------------------ against the script
def test_rule_scenes_equal_the_official_script(tmp_path):
    scenes = [rule_scene_a(), rule_scene_b(), rule_scene_c()]
    gt_paths, results = write_scenes(str(tmp_path), scenes)
    official = official_script.evaluate(results, gt_paths)
    result = ours(scenes)
    assert_same(result, official)
    m = result["ap_matrix"]
    names = list(CLASS_NAMES)
    assert np.isnan(m[names.index("train")]).all()        # predictions, no gt
    assert (m[names.index("bus")] == 0).all()             # gt, no predictions
    assert (m[names.index("rider")] == 0).all()           # gt, only an empty mask
    assert 0 < result["AP"] < 1


def test_rule_scenes_in_another_order_and_from_bool_masks(tmp_path):
    scenes = [rule_scene_c(), rule_scene_b(), rule_scene_a()]
    gt_paths, results = write_scenes(str(tmp_path), scenes, city="other", as_rles=False)
    assert_same(ours(scenes), official_script.evaluate(results, gt_paths))


def test_synthetic_scenes_equal_the_official_script(tmp_path, synthetic_scenes):
    results = str(tmp_path / "results")
    ev = CityscapesInstanceEval()
    for path, sc in synthetic_scenes:
        labels, scores, masks = sc.arrays()
        rles = rle.encode(masks)
        stem = os.path.basename(path)[: -len("_gtFine_instanceIds.png")]
        write_cityscapes_results(results, stem, labels, scores, rles)
        ev.add_image(read_id_image(path, 96, 192), labels, scores, rles)
    official = official_script.evaluate(results, [p for p, _ in synthetic_scenes])
    result = ev.result()
    assert_same(result, official)
    assert np.isfinite(result["ap_matrix"]).sum() >= 30   # several classes scored


def test_official_script_reads_polygon_annotations_too(tmp_path, synthetic_scenes):
    results = str(tmp_path / "results")
    pngs = [p for p, _ in synthetic_scenes[:3]]
    for path, sc in synthetic_scenes[:3]:
        labels, scores, masks = sc.arrays()
        stem = os.path.basename(path)[: -len("_gtFine_instanceIds.png")]
        write_cityscapes_results(results, stem, labels, scores, masks)
    jsons = [p.replace("_instanceIds.png", "_polygons.json") for p in pngs]
    from_png = official_script.evaluate(results, pngs)
    from_json = official_script.evaluate(results, jsons)
    np.testing.assert_array_equal(from_json["ap_matrix"], from_png["ap_matrix"])


def test_official_script_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gt_paths, results = write_scenes(str(tmp_path / "data"), [rule_scene_b()])
    official_script.evaluate(results, gt_paths)
    assert os.getcwd() == str(tmp_path)
    assert not hasattr(np, "in1d")
    assert not os.path.exists(tmp_path / "matches.json")
    package = os.path.dirname(official_script.official.__file__)
    assert not os.path.exists(os.path.join(package, "gtInstances.json"))


def test_official_script_without_a_prediction_file(tmp_path):
    gt_paths, results = write_scenes(str(tmp_path), [rule_scene_c()])
    os.remove(os.path.join(results, "handcity_000000_000019_pred.txt"))
    with pytest.raises(FileNotFoundError, match="handcity_000000_000019"):
        official_script.evaluate(results, gt_paths)


def test_no_true_or_false_positive_at_all(tmp_path):
    """Car gt and a car prediction, all on void: the script raises IndexError;
    we give 0.0 (the integration of the artificial point alone)."""
    s = (30, 40)
    ids = np.zeros(s, np.int64)
    ids[box(s, 2, 22, 2, 12)] = 26000
    sc = Scene(ids)
    sc.add(CAR, 0.9, box(s, 2, 22, 20, 30))
    gt_paths, results = write_scenes(str(tmp_path), [sc])
    with pytest.raises(IndexError):
        official_script.evaluate(results, gt_paths)
    assert (ours([sc])["ap_matrix"][CLASS_NAMES.index("car")] == 0).all()


# ---------------------------------------------------- exact small cases
def car_scene(*preds, extra=None):
    """40 x 60 road, car 26000 (200 px) and optionally more ids; preds:
    (score, mask function of the scene)."""
    s = (40, 60)
    ids = np.full(s, 7)
    ids[box(s, 2, 12, 2, 22)] = 26000
    for value, region in (extra or {}).items():
        ids[region] = value
    sc = Scene(ids)
    for score, make in preds:
        sc.add(CAR, score, make(sc))
    return sc


def car_row(result):
    return result["ap_matrix"][CLASS_NAMES.index("car")]


def test_one_perfect_prediction():
    result = ours([car_scene((0.9, lambda sc: sc.where(26000)))])
    assert (car_row(result) == 1).all()
    assert result["AP"] == 1 and result["AP50"] == 1
    assert result["classes"]["car"] == {"AP": 1.0, "AP50": 1.0}
    assert np.isnan(result["classes"]["person"]["AP"])
    assert result["ap_matrix"].shape == (8, 10)


def test_false_positive_above_the_true_positive_gives_a_quarter():
    # Half-step integration: precision 0.5 at recall 1, then 0 at recall 0.
    fp = lambda sc: box(sc.ids.shape, 20, 30, 30, 50)
    result = ours([car_scene((0.8, lambda sc: sc.where(26000)), (0.9, fp))])
    assert np.allclose(car_row(result), 0.25)
    assert average_precision(np.array([0.8, 0.9]), np.array([True, False]), 0) == 0.25
    # Below the true positive it costs nothing.
    assert average_precision(np.array([0.9, 0.8]), np.array([True, False]), 0) == 1.0


def test_a_missed_instance_halves_the_recall():
    s = (40, 60)
    result = ours([car_scene((0.9, lambda sc: sc.where(26000)),
                             extra={26001: box(s, 20, 30, 30, 50)})])
    assert np.allclose(car_row(result), 0.5)


def test_small_group_pixels_count_twice():
    """A prediction on a 40 px group + 60 road pixels: ignored share 0.8
    (40 counted as group and as small), so a false positive from 0.8 on."""
    s = (40, 60)
    on_group = lambda sc: sc.where(26) | take(sc.where(7) & box(s, 30, 40, 0, 60), 60)
    result = ours([car_scene((0.8, lambda sc: sc.where(26000)), (0.9, on_group),
                             extra={26: box(s, 20, 24, 30, 40)})])
    expected = np.where(OVERLAPS < 0.8, 1.0, 0.25)
    assert OVERLAPS[6] > 0.8 and np.allclose(car_row(result), expected)


def test_iou_exactly_at_a_threshold_does_not_match():
    # IoU 0.55 exactly: a true positive at 0.5, a false positive from 0.55 on.
    part = lambda sc: take(sc.where(26000), 110)
    result = ours([car_scene((0.9, part))])
    assert np.allclose(car_row(result), [1.0] + [0.0] * 9)


def test_ignore_share_exactly_at_the_threshold_is_a_false_positive():
    s = (40, 60)
    half_void = lambda sc: box(s, 30, 35, 0, 20) | box(s, 35, 40, 0, 20)
    result = ours([car_scene((0.8, lambda sc: sc.where(26000)), (0.9, half_void),
                             extra={0: box(s, 30, 35, 0, 60)})])
    assert np.allclose(car_row(result), 0.25)       # share 0.5 <= every threshold


def test_overlaps_can_be_passed_precomputed():
    sc = rule_scene_a()
    labels, scores, masks = sc.arrays()
    rles = rle.encode(masks)
    direct = CityscapesInstanceEval()
    direct.add_image(sc.ids, labels, scores, rles)
    given = CityscapesInstanceEval()
    given.add_image(None, labels, scores, None, overlaps=rle.overlap_counts(sc.ids, rles))
    np.testing.assert_array_equal(given.result()["ap_matrix"], direct.result()["ap_matrix"])


def test_no_images_gives_nan():
    result = CityscapesInstanceEval().result()
    assert np.isnan(result["AP"]) and np.isnan(result["ap_matrix"]).all()


# ------------------------------------------------------------ bad input
def test_rle_of_another_size_names_both_sizes():
    ev = CityscapesInstanceEval()
    rles = rle.encode(np.ones((20, 30, 1), bool))
    with pytest.raises(ValueError, match=r"\[20, 30\].*\[40, 60\]"):
        ev.add_image(np.zeros((40, 60), np.int64), [CAR], [0.9], rles)
    assert ev.images == 0 and np.isnan(ev.result()["AP"])


def test_mismatched_lengths_and_unknown_labels():
    ev = CityscapesInstanceEval()
    ids = np.zeros((10, 10), np.int64)
    rles = rle.encode(np.ones((10, 10, 1), bool))
    with pytest.raises(ValueError, match="label ids"):
        ev.add_image(ids, [CAR, CAR], [0.9, 0.8], rles)
    with pytest.raises(ValueError, match="unknown label ids"):
        ev.add_image(ids, [77], [0.9], rles)


# ---------------------------------------------------------------- export
def test_export_writes_the_official_format(tmp_path):
    s = (20, 30)
    masks = np.stack([box(s, 0, 5, 0, 5), box(s, 5, 20, 10, 30), np.zeros(s, bool)], -1)
    scores = np.array([0.123456789012345, 1 / 3, 0.5], np.float32)
    txt = write_cityscapes_results(tmp_path, "somecity_000001_000019", [26, 24, 33], scores,
                                   rle.encode(masks))
    assert fnmatch.fnmatch(os.path.basename(txt), "somecity_000001_000019*.txt")
    lines = open(txt).read().splitlines()
    assert len(lines) == 3
    for line, label, score, i in zip(lines, [26, 24, 33], scores, range(3)):
        fields = (line + "\n").split(" ")             # as readPredInfo splits
        assert len(fields) == 3 and not os.path.isabs(fields[0])
        assert int(float(fields[1])) == label and float(fields[2]) == float(score)
        with Image.open(os.path.join(tmp_path, fields[0])) as img:
            assert img.mode == "L"
            png = np.asarray(img)
        assert set(np.unique(png)) <= {0, 255}
        np.testing.assert_array_equal(png == 255, masks[:, :, i])
    labels, read_scores, read_masks = read_cityscapes_results(txt)
    np.testing.assert_array_equal(labels, [26, 24, 33])
    np.testing.assert_array_equal(read_scores, scores.astype(np.float64))
    np.testing.assert_array_equal(read_masks, masks)
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_export_without_predictions_and_bad_input(tmp_path):
    txt = write_cityscapes_results(tmp_path, "c_000000_000019", [], [], [])
    assert open(txt).read() == ""
    assert read_cityscapes_results(txt)[0].shape == (0,)
    with pytest.raises(ValueError, match="image_stem"):
        write_cityscapes_results(tmp_path, "a b", [26], [0.5], np.ones((4, 4, 1), bool))
    with pytest.raises(ValueError, match="masks"):
        write_cityscapes_results(tmp_path, "c_000000_000019", [26], [0.5], np.ones((4, 4, 2), bool))
    with pytest.raises(ValueError, match="scores"):
        write_cityscapes_results(tmp_path, "c_000000_000019", [26, 24], [0.5], [])
    mixed = rle.encode(np.ones((4, 4, 1), bool)) + rle.encode(np.ones((4, 5, 1), bool))
    with pytest.raises(ValueError, match="different sizes"):
        write_cityscapes_results(tmp_path, "c_000000_000019", [26, 24], [0.5, 0.6], mixed)


def test_module_constants_follow_the_script():
    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as script

    np.testing.assert_array_equal(OVERLAPS, script.args.overlaps)
    assert official_ap.MIN_REGION_SIZE == script.args.minRegionSizes[0]
    script_args = official_script._args(".", "/nonexistent/gt.json")
    script.setInstanceLabels(script_args)
    assert script_args.instLabels == list(CLASS_NAMES)
