"""Tests for cityscapes/synthetic.py: the synthetic dataset in the Cityscapes layout."""

import json
import os
import re

import numpy as np
import pytest
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.helpers.labels import name2label
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image

from cityscapes import synthetic
from cityscapes.labels import INSTANCE_CLASSES

H, W = 128, 256
IMAGES = {"train": 4, "val": 2, "test": 2}
SUFFIXES = ("_leftImg8bit.png", "_gtFine_polygons.json", "_gtFine_instanceIds.png",
            "_gtFine_labelIds.png")
GROUPS = {"cargroup", "persongroup", "bicyclegroup"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    summary = synthetic.generate(root, seed=0, height=H, width=W, images=IMAGES, cities=2)
    return root, summary


def all_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


def examples(root):
    """(split, city, stem) of every image, from the leftImg8bit folder."""
    out = []
    for path in all_files(os.path.join(root, "leftImg8bit")):
        split, city, name = path.split(os.sep)
        out.append((split, city, name[: -len("_leftImg8bit.png")]))
    return out


def gt_path(root, split, city, stem, kind):
    return os.path.join(root, "gtFine", split, city, f"{stem}_gtFine_{kind}")


def test_layout_and_file_names(dataset):
    root, summary = dataset
    files = all_files(root)
    assert len(files) == 4 * 8 == summary["files"]
    assert summary["images"] == IMAGES
    cities = {split: set() for split in IMAGES}
    for split, city, stem in examples(root):
        assert re.fullmatch(r"[a-z]+_\d{6}_000019", stem) and stem.startswith(city + "_")
        cities[split].add(city)
        for suffix in SUFFIXES:
            folder = "leftImg8bit" if suffix == "_leftImg8bit.png" else "gtFine"
            assert os.path.join(folder, split, city, stem + suffix) in files
        image = os.path.join(root, "leftImg8bit", split, city, stem + "_leftImg8bit.png")
        image = Image.open(image)
        assert image.mode == "RGB" and image.size == (W, H)
        with open(gt_path(root, split, city, stem, "polygons.json")) as f:
            ann = json.load(f)
        assert (ann["imgHeight"], ann["imgWidth"]) == (H, W)
        for obj in ann["objects"]:
            assert set(obj) <= {"label", "polygon", "deleted"} and obj.get("deleted", 1) == 1
            assert len(obj["polygon"]) >= 3
            assert all(type(v) is int for point in obj["polygon"] for v in point)
    assert all(len(c) == 2 for c in cities.values())  # 2 cities per split...
    assert not (cities["train"] & cities["val"] or cities["train"] & cities["test"]
                or cities["val"] & cities["test"])  # ...different in each split


def test_label_images_are_what_cityscapesscripts_makes(dataset):
    root, _ = dataset
    for split, city, stem in examples(root):
        ann = Annotation()
        ann.fromJsonFile(gt_path(root, split, city, stem, "polygons.json"))
        inst = Image.open(gt_path(root, split, city, stem, "instanceIds.png"))
        inst = np.asarray(inst)
        assert inst.dtype == np.uint16
        np.testing.assert_array_equal(inst, np.asarray(createInstanceImage(ann, "ids")))
        labels = np.asarray(Image.open(gt_path(root, split, city, stem, "labelIds.png")))
        assert labels.dtype == np.uint8
        np.testing.assert_array_equal(labels, np.asarray(createLabelImage(ann, "ids")))


def read_all(root):
    return {path: open(os.path.join(root, path), "rb").read() for path in all_files(root)}


def test_same_seed_same_bytes_other_seed_other_images(dataset, tmp_path):
    root, _ = dataset
    first = read_all(root)
    again = synthetic.generate(tmp_path / "again", seed=0, height=H, width=W, images=IMAGES,
                               cities=2, workers=2)  # two processes: the same files
    assert read_all(tmp_path / "again") == first
    assert again["instances"] == dataset[1]["instances"]
    # An image does not depend on how many others are generated.
    synthetic.generate(tmp_path / "fewer", seed=0, height=H, width=W, images={"train": 2}, cities=2)
    fewer = read_all(tmp_path / "fewer")
    assert len(fewer) == 8 and all(first[path] == data for path, data in fewer.items())
    synthetic.generate(tmp_path / "other", seed=1, height=H, width=W, images=IMAGES, cities=2)
    other = read_all(tmp_path / "other")
    assert other.keys() == first.keys()
    assert all(other[p] != first[p] for p in first if p.endswith(("_leftImg8bit.png", ".json")))


def test_without_polygons_the_other_files_are_the_same(dataset, tmp_path):
    root, _ = dataset
    first = read_all(root)
    out = tmp_path / "ids_only"
    city, stem = synthetic.image_stem("train", 0, 2)
    stale = out / "gtFine" / "train" / city / f"{stem}_gtFine_polygons.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")  # of an image written again: removed, else it would be read
    got = synthetic.generate(out, seed=0, height=H, width=W, images={"train": 2, "val": 1},
                             cities=2, polygons=False)
    files = read_all(out)
    assert got["files"] == len(files) == 3 * 3 and not stale.exists()
    assert not any(path.endswith(".json") for path in files)
    assert all(first[path] == data for path, data in files.items())


def check_contents(root, height, width):
    """What the dataset must show somewhere; returns the visible instances per class."""
    visible = dict.fromkeys(INSTANCE_CLASSES, 0)
    found = set()
    for split, city, stem in examples(root):
        with open(gt_path(root, split, city, stem, "polygons.json")) as f:
            objects = json.load(f)["objects"]
        ids = np.asarray(Image.open(gt_path(root, split, city, stem, "instanceIds.png")))
        present = set(np.unique(ids).tolist())
        counts = dict.fromkeys(INSTANCE_CLASSES, 0)
        instances = 0
        for obj in objects:
            label, poly = obj["label"], np.array(obj["polygon"])
            if obj.get("deleted"):
                found.add("deleted")
                continue
            if label == "license plate":
                found.add("license plate")
            if label in GROUPS and name2label[label[: -len("group")]].id in present:
                found.add("group")
            if label not in INSTANCE_CLASSES:
                continue
            instances += 1
            # The encoded id createInstanceImage gives this polygon.
            value = name2label[label].id * 1000 + counts[label]
            counts[label] += 1
            if value not in present:
                found.add("hidden")
                continue
            visible[label] += 1
            if np.ptp(poly[:, 0]) <= 15 and np.ptp(poly[:, 1]) <= 15:
                found.add("tiny")
            if (poly < 0).any() or (poly[:, 0] >= width).any() or (poly[:, 1] >= height).any():
                found.add("beyond border")
            if (poly[:, 0] == 0).any() or (poly[:, 0] == width - 1).any() \
                    or (poly[:, 1] == height - 1).any():
                found.add("on border")
        if instances == 0 and not any(o["label"] in GROUPS for o in objects):
            assert ids.max() < 1000
            found.add("no instances")
    assert found == {"deleted", "license plate", "group", "hidden", "tiny", "beyond border",
                     "on border", "no instances"}
    assert all(visible.values()), visible
    return visible


def test_dataset_shows_every_class_and_the_hard_cases(dataset):
    root, summary = dataset
    assert check_contents(root, H, W) == summary["instances"]


def test_generate_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="train_extra"):
        synthetic.generate(tmp_path, images={"train_extra": 1})
    with pytest.raises(ValueError, match="at least"):
        synthetic.generate(tmp_path, height=16, width=16)
    with pytest.raises(ValueError, match="seed"):
        synthetic.generate(tmp_path, seed=-1)


def test_interrupted_write_leaves_no_file(tmp_path):
    path = str(tmp_path / "x_leftImg8bit.png")

    def fail(f):
        f.write(b"half a png")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        synthetic._write_atomic(path, fail)
    assert os.listdir(tmp_path) == []


def test_ensure_demo_generates_once(tmp_path, monkeypatch):
    root = tmp_path / "demo"
    monkeypatch.setenv(synthetic.DEMO_ENV_VAR, str(root))
    monkeypatch.setattr(synthetic, "DEMO_IMAGES", {"train": 3, "val": 2, "test": 1})
    assert synthetic.ensure_demo() == str(root)
    files = all_files(root)
    assert synthetic.MARKER in files
    assert len(files) == 1 + 4 * sum(synthetic.DEMO_IMAGES.values())
    check_contents(root, synthetic.DEFAULT_HEIGHT, synthetic.DEFAULT_WIDTH)
    stamps = {p: os.stat(os.path.join(root, p)).st_mtime_ns for p in files}

    def no_generate(*args, **kwargs):
        raise AssertionError("ensure_demo regenerated a complete dataset")

    monkeypatch.setattr(synthetic, "generate", no_generate)
    assert synthetic.ensure_demo() == str(root)
    assert synthetic.ensure_demo(root) == str(root)
    assert {p: os.stat(os.path.join(root, p)).st_mtime_ns for p in all_files(root)} == stamps
    # Without the marker (an interrupted run) it generates again.
    os.remove(root / synthetic.MARKER)
    with pytest.raises(AssertionError, match="regenerated"):
        synthetic.ensure_demo()


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    assert synthetic.main(["--out", str(out), "--height", "64", "--width", "128", "--train", "2",
                           "--val", "1", "--test", "0", "--cities", "1", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "train 2, val 1, test 0" in printed and "instances: person" in printed
    assert len(all_files(out)) == 12
    assert os.path.isdir(out / "gtFine" / "val") and not os.path.exists(out / "gtFine" / "test")
    with pytest.raises(SystemExit):
        synthetic.main(["--out", str(out), "--train", "-1"])


def test_small_odd_sizes_work():
    for height, width in ((32, 32), (45, 97)):
        for index in range(3):
            rgb, ann = synthetic.make_example(5, "val", index, height, width)
            assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8
            assert ann["imgHeight"] == height and ann["objects"]


def test_tiny_things_per_image_can_be_set(monkeypatch):
    calls = []
    original = synthetic._tiny

    def counting(rng, scene):
        calls.append(1)
        return original(rng, scene)

    monkeypatch.setattr(synthetic, "_tiny", counting)
    for tiny, low, high in (((0, 0), 0, 0), ((2, 2), 2, 2), (synthetic.DEFAULT_TINY_THINGS, 1, 3)):
        calls.clear()
        synthetic.make_example(0, "train", 0, 64, 128, tiny=tiny)  # index 0: not empty
        assert low <= len(calls) <= high, tiny
