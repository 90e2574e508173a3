"""cityscapes.dataset.CityscapesDataset on small datasets in the official layout."""

import logging
import os

import numpy as np
import pytest
from PIL import Image

from cityscapes.dataset import (
    CityscapesDataError,
    CityscapesDataset,
    check_split,
    find_splits,
)
from cityscapes.labels import EVALUATED_CLASSES, INSTANCE_CLASSES, ClassMap
from cityscapes.rasterize import instances_from_id_image, masks_from_label_map
from tests.cityscapes.test_rasterize import (
    EDGES,
    EMPTY_STREET,
    STREET,
    official_ids,
    random_scene,
    rect,
    write_ids_png,
    write_json,
)


def paths(root, split, city, stem):
    return {
        "image": root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png",
        "polygons": root / "gtFine" / split / city / f"{stem}_gtFine_polygons.json",
        "instanceIds": root / "gtFine" / split / city / f"{stem}_gtFine_instanceIds.png",
    }


def add_scene(root, split, city, index, scene, image_size=None):
    """Write image, polygons JSON and instanceIds PNG of one scene; return the stem."""
    stem = f"{city}_{index:06d}_000019"
    p = paths(root, split, city, stem)
    write_json(p["polygons"], scene)
    write_ids_png(p["instanceIds"], official_ids(p["polygons"]))
    h, w = image_size or (scene["imgHeight"], scene["imgWidth"])
    rng = np.random.default_rng(index)
    p["image"].parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p["image"])
    return stem


@pytest.fixture
def root(tmp_path):
    """train: aachen (street, empty, edges), bochum (2 random); val: frankfurt (2 random)."""
    r = tmp_path / "cityscapes"
    for i, scene in enumerate([STREET, EMPTY_STREET, EDGES]):
        add_scene(r, "train", "aachen", i, scene)
    for i in range(2):
        add_scene(r, "train", "bochum", i, random_scene(10 + i))
        add_scene(r, "val", "frankfurt", i, random_scene(20 + i))
    return r


def load(root, **kwargs):
    ds = CityscapesDataset(kwargs.pop("classes", INSTANCE_CLASSES))
    ds.load_cityscapes(root, **kwargs)
    ds.prepare()
    return ds


# ------------------------------------------------------------------- loading
def test_load_registers_images_in_order(root):
    ds = load(root, split="train")
    assert ds.num_images == 5
    assert [info["id"] for info in ds.image_info] == [
        "aachen_000000_000019", "aachen_000001_000019", "aachen_000002_000019",
        "bochum_000000_000019", "bochum_000001_000019"]
    info = ds.image_info[0]
    assert info["source"] == "cityscapes" and info["city"] == "aachen"
    assert (info["height"], info["width"]) == (40, 60)
    assert info["annotation"].endswith("aachen_000000_000019_gtFine_polygons.json")
    assert ds.image_reference(0) == info["path"]
    assert info["path"].endswith(os.path.join("leftImg8bit", "train", "aachen",
                                              "aachen_000000_000019_leftImg8bit.png"))
    assert ds.load_image(0).shape == (40, 60, 3)
    assert ds.class_names == ["BG", *INSTANCE_CLASSES]
    assert info["annotation_kind"] == "polygons"
    assert ds.load_report == {"images": 5, "skipped": 0, "without_instances": 1,
                              "annotations": "polygons",
                              "sources": {"polygons": 5, "instanceIds": 0}}
    assert ds.num_without_instances == 1 and ds.skipped == []


def test_empty_image_kept_and_counted(root):
    ds = load(root, split="train")
    masks, class_ids = ds.load_mask(1)  # EMPTY_STREET: road and a license plate
    assert masks.shape == (40, 60, 0) and masks.dtype == bool
    assert class_ids.shape == (0,) and class_ids.dtype == np.int32


@pytest.mark.parametrize("classes", [INSTANCE_CLASSES, EVALUATED_CLASSES])
def test_polygons_and_instance_ids_give_the_same_masks(root, classes):
    for split in ("train", "val"):
        from_json = load(root, split=split, classes=classes)
        from_png = load(root, split=split, classes=classes, annotations="instanceIds")
        assert from_png.load_report["without_instances"] is None
        for i in from_json.image_ids:
            m1, c1 = from_json.load_mask(i)
            m2, c2 = from_png.load_mask(i)
            assert m1.dtype == bool and c1.dtype == np.int32
            np.testing.assert_array_equal(m1, m2)
            np.testing.assert_array_equal(c1, c2)
            # And both equal what cityscapesscripts' rasterisation implies.
            ids = official_ids(from_json.image_info[i]["annotation"])
            label_map, class_ids = instances_from_id_image(ids, ClassMap(classes))
            np.testing.assert_array_equal(m1, masks_from_label_map(label_map, len(class_ids)))
            np.testing.assert_array_equal(c1, class_ids)


def test_street_masks(root):
    ds = load(root, split="train")
    masks, class_ids = ds.load_mask(0)
    np.testing.assert_array_equal(class_ids, [1, 2, 3, 3, 6, 7, 10, -1, -3])
    assert masks.shape == (40, 60, 9)
    assert masks[:, :, 3].sum() > 0 and not masks[20, 29].any()  # car 1 behind the pole
    assert masks[26, 10, 2]  # car 0 under the (undrawn) license plate
    assert masks[36, 3, 8] and masks[36, 40, 8]  # two cargroups, one crowd region


def test_evaluated_classes(root):
    ds = load(root, split="train", classes=EVALUATED_CLASSES)
    assert ds.num_classes == 9
    assert ds.class_names == ["BG", "person", "rider", "car", "truck", "bus", "train",
                              "motorcycle", "bicycle"]
    assert [c["id"] for c in ds.class_info[1:]] == list(range(1, 9))
    _, class_ids = ds.load_mask(0)
    np.testing.assert_array_equal(class_ids, [1, 2, 3, 3, 8, -1, -3])  # no caravan, trailer


def test_classmap_instance_accepted(root):
    ds = CityscapesDataset(ClassMap(["car"]))
    ds.load_cityscapes(root, split="train")
    ds.prepare()
    assert ds.class_names == ["BG", "car"]
    _, class_ids = ds.load_mask(0)
    np.testing.assert_array_equal(class_ids, [1, 1, -1])


def test_environment_variable(root, monkeypatch):
    monkeypatch.setenv("CITYSCAPES_DATASET", str(root))
    ds = CityscapesDataset()
    ds.load_cityscapes(split="val")
    assert len(ds.image_info) == 2


def test_missing_root(tmp_path, monkeypatch):
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    with pytest.raises(CityscapesDataError, match="CITYSCAPES_DATASET") as info:
        CityscapesDataset().load_cityscapes()
    assert "python -m cityscapes.synthetic" in str(info.value)
    with pytest.raises(CityscapesDataError, match="leftImg8bit") as info:
        CityscapesDataset().load_cityscapes(tmp_path)  # exists, not Cityscapes
    assert "cityscapes.synthetic" in str(info.value)
    with pytest.raises(CityscapesDataError, match="no such folder"):
        CityscapesDataset().load_cityscapes(tmp_path / "absent")


def test_bad_arguments(root):
    with pytest.raises(ValueError, match="annotations"):
        CityscapesDataset().load_cityscapes(root, annotations="coarse")
    with pytest.raises(ValueError, match="split"):
        CityscapesDataset().load_cityscapes(root, split="extra", resplit=True)


def test_missing_split_lists_the_splits_found(root):
    with pytest.raises(CityscapesDataError) as info:
        CityscapesDataset().load_cityscapes(root, split="test")
    assert "'test' missing (splits found: train, val)" in str(info.value)
    assert "\n" not in str(info.value)
    assert find_splits(root) == ["train", "val"]
    check_split(root, "val")
    with pytest.raises(CityscapesDataError) as info:
        check_split(root, "test")
    assert str(info.value).endswith("splits found: train, val") and "\n" not in str(info.value)


# ----------------------------------------------------------------- bad files
def _break(root, kind, annotations):
    """Damage image 0 of train/aachen; return the path the error must name."""
    p = paths(root, "train", "aachen", "aachen_000000_000019")
    if kind == "missing json":
        p["polygons"].unlink()
        return p["polygons"]
    if kind == "unparsable json":
        p["polygons"].write_text('{"imgHeight": 40, "imgWidth"')
        return p["polygons"]
    if kind in ("two points", "unknown label"):
        scene = dict(STREET, objects=list(STREET["objects"]))
        bad = ({"label": "car", "polygon": [[1, 1], [5, 5]]} if kind == "two points"
               else {"label": "hovercraft", "polygon": rect(1, 1, 5, 5)})
        scene["objects"].append(bad)
        write_json(p["polygons"], scene)
        return p["polygons"]
    if kind == "size mismatch":  # named: the annotation (and the image)
        Image.new("RGB", (61, 40)).save(p["image"])
        return p[annotations]
    if kind == "unreadable image":
        p["image"].write_bytes(b"this is not a PNG")
        return p["image"]
    if kind == "missing image":
        p["image"].unlink()
        p["image"].symlink_to(p["image"].with_name("gone.png"))  # dangling link
        return p["image"]
    if kind == "missing ids png":
        p["instanceIds"].unlink()
        return p["instanceIds"]
    if kind == "rgb ids png":
        Image.new("RGB", (60, 40)).save(p["instanceIds"])
        return p["instanceIds"]
    if kind == "ids png size":
        write_ids_png(p["instanceIds"], np.zeros((41, 60), np.uint16))
        return p["instanceIds"]
    raise AssertionError(kind)


BAD = [("missing json", "polygons"), ("unparsable json", "polygons"),
       ("two points", "polygons"), ("unknown label", "polygons"),
       ("size mismatch", "polygons"), ("unreadable image", "polygons"),
       ("missing image", "polygons"), ("missing ids png", "instanceIds"),
       ("ids png size", "instanceIds"), ("rgb ids png", "instanceIds"),
       ("size mismatch", "instanceIds")]


def test_named_kind_missing_says_the_other_file_is_there(root):
    p = paths(root, "train", "aachen", "aachen_000000_000019")
    p["polygons"].unlink()
    with pytest.raises(CityscapesDataError, match="annotations='auto' or 'instanceIds'") as info:
        CityscapesDataset().load_cityscapes(root, split="train", annotations="polygons")
    assert info.value.path == str(p["polygons"])
    assert CityscapesDataset().load_cityscapes(root, split="train")["sources"] == {
        "polygons": 4, "instanceIds": 1}


@pytest.mark.parametrize("kind, annotations", BAD)
def test_bad_file_raises_naming_it(root, kind, annotations):
    bad_path = _break(root, kind, annotations)
    with pytest.raises(CityscapesDataError) as info:
        CityscapesDataset().load_cityscapes(root, split="train", annotations=annotations)
    assert str(bad_path) in str(info.value)
    assert info.value.path == str(bad_path)


@pytest.mark.parametrize("kind, annotations", BAD)
def test_skip_bad_counts_and_reports(root, kind, annotations, caplog):
    bad_path = _break(root, kind, annotations)
    ds = CityscapesDataset()
    with caplog.at_level(logging.WARNING, logger="cityscapes.dataset"):
        report = ds.load_cityscapes(root, split="train", annotations=annotations, skip_bad=True)
    assert report["images"] == 4 and report["skipped"] == 1
    assert [info["id"] for info in ds.image_info][0] == "aachen_000001_000019"
    assert len(ds.skipped) == 1 and ds.skipped[0][0] == str(bad_path)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 1 of 5" in warnings[0].getMessage()
    assert str(bad_path) in warnings[0].getMessage()


def test_skip_bad_summary_is_one_line_for_many(root, caplog):
    for i in range(3):
        paths(root, "train", "aachen", f"aachen_{i:06d}_000019")["polygons"].write_text("{")
    ds = CityscapesDataset()
    with caplog.at_level(logging.WARNING, logger="cityscapes.dataset"):
        ds.load_cityscapes(root, split="train", skip_bad=True)
    assert ds.load_report["skipped"] == 3 and ds.load_report["images"] == 2
    assert ds.load_report["without_instances"] == 0
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def truncate(path):
    """Keep the first half of a file: its header (and size) still read."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_png_is_found_at_load_time_naming_it(root):
    p = paths(root, "train", "aachen", "aachen_000001_000019")["image"]
    truncate(p)
    with pytest.raises(CityscapesDataError, match=f"{p}: cannot be decoded: image file is "
                                                  "truncated"):
        load(root, split="train")
    ds = load(root, split="train", verify=False)  # headers only: found when read
    with pytest.raises(OSError) as info:
        ds.load_image(1)
    assert str(p) in str(info.value)


def test_truncated_images_are_skipped_counted_and_named(root, caplog):
    image = paths(root, "train", "aachen", "aachen_000001_000019")["image"]
    ids_png = paths(root, "train", "bochum", "bochum_000000_000019")["instanceIds"]
    truncate(image)
    truncate(ids_png)
    with pytest.raises(CityscapesDataError, match=f"{image}: "):  # the first bad one
        load(root, split="train", annotations="instanceIds")
    with caplog.at_level(logging.WARNING, logger="cityscapes.dataset"):
        ds = load(root, split="train", annotations="instanceIds", skip_bad=True)
    assert ds.load_report["images"] == 3 and ds.load_report["skipped"] == 2
    assert ds.num_images == 3 and [p for p, _ in ds.skipped] == [str(image), str(ids_png)]
    # (Pillow's "image file is truncated"; the ids PNG's words depend on its decoder)
    assert ds.skipped[0][1] == "cannot be decoded: image file is truncated"
    assert ds.skipped[1][1].startswith("cannot read the instance id PNG: ")
    assert ds.load_report["sources"] == {"polygons": 0, "instanceIds": 3}
    assert "skipped 2 of 5" in caplog.records[-1].getMessage()
    for i in ds.image_ids:  # the ids after a skipped image moved up: nothing bad is left
        assert ds.load_image(i).shape[:2] == ds.load_mask(i)[0].shape[:2]
    # polygons: the JSONs are not images; only the image file is bad
    ds = load(root, split="train", skip_bad=True)
    assert [p for p, _ in ds.skipped] == [str(image)]
    assert ds.load_report["without_instances"] == 0  # the empty street was the skipped image


def test_decode_cache_decodes_each_good_file_once(root, tmp_path, monkeypatch):
    decoded = []
    check = CityscapesDataset.check_image
    monkeypatch.setattr(CityscapesDataset, "check_image",
                        lambda self, i: decoded.append(self.image_info[i]["id"]) or check(self, i))
    cache = tmp_path / "decoded.json"
    first = load(root, split="train", annotations="instanceIds", decode_cache=cache)
    assert len(decoded) == 5 and first.verify_report["decoded"] == 5
    again = load(root, split="train", annotations="instanceIds", decode_cache=cache)
    assert len(decoded) == 5 and again.verify_report == {
        "images": 5, "decoded": 0, "cached": 5, "skipped": [],
        "seconds": again.verify_report["seconds"]}
    # A changed file (size or mtime) is decoded again, and a bad one every time.
    ids_png = paths(root, "train", "bochum", "bochum_000001_000019")["instanceIds"]
    os.utime(ids_png, ns=(1, 1))
    load(root, split="train", annotations="instanceIds", decode_cache=cache)
    assert decoded[5:] == ["bochum_000001_000019"]
    truncate(paths(root, "train", "aachen", "aachen_000000_000019")["image"])
    for _ in range(2):
        load(root, split="train", annotations="instanceIds", decode_cache=cache, skip_bad=True)
    assert decoded[6:] == ["aachen_000000_000019"] * 2


def test_load_mask_names_annotation_changed_after_loading(root):
    ds = load(root, split="train")
    p = paths(root, "train", "aachen", "aachen_000000_000019")["polygons"]
    p.write_text("{")
    with pytest.raises(CityscapesDataError) as info:
        ds.load_mask(0)
    assert str(p) in str(info.value)


# -------------------------------------------------------------- cache version
def test_cache_version(root):
    ds = load(root, split="train")
    v = ds.cache_version(0)
    assert isinstance(v, str) and v == ds.cache_version(0) and v != ds.cache_version(1)
    p = paths(root, "train", "aachen", "aachen_000000_000019")
    st = os.stat(p["polygons"])
    os.utime(p["polygons"], ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    v_touched = ds.cache_version(0)
    assert v_touched != v
    os.utime(p["image"], ns=(st.st_atime_ns, os.stat(p["image"]).st_mtime_ns + 1000))
    assert ds.cache_version(0) != v_touched
    assert load(root, split="train", classes=EVALUATED_CLASSES).cache_version(0) \
        != load(root, split="train").cache_version(0)
    assert load(root, split="train", annotations="instanceIds").cache_version(0) \
        != load(root, split="train").cache_version(0)


def test_cache_version_follows_loader_version(root, monkeypatch):
    import cityscapes.dataset as module

    ds = load(root, split="train")
    v = ds.cache_version(0)
    monkeypatch.setattr(module, "LOADER_VERSION", module.LOADER_VERSION + "-next")
    assert ds.cache_version(0) != v


# ------------------------------------------------------------ resplit, subset
@pytest.fixture
def pooled_root(tmp_path):
    """Official train (4 cities) + val (2 cities), 3-6 tiny images each."""
    r = tmp_path / "pooled"
    scene = {"imgHeight": 8, "imgWidth": 12, "objects": [
        {"label": "car", "polygon": rect(1, 1, 6, 6)}]}
    cities = {"train": {"a": 3, "b": 4, "c": 5, "d": 6}, "val": {"e": 3, "f": 4}}
    for split, counts in cities.items():
        for city, n in counts.items():
            for i in range(n):
                add_scene(r, split, city, i, scene)
    return r


def test_resplit_by_city(pooled_root):
    sizes = dict(sizes=(10, 5), seed=0, by_city=True)
    parts = {s: load(pooled_root, split=s, resplit=sizes) for s in ("train", "val", "test")}
    ids = {s: [info["id"] for info in ds.image_info] for s, ds in parts.items()}
    assert sum(len(v) for v in ids.values()) == 25
    assert len(set().union(*ids.values())) == 25
    cities = {s: {i.split("_")[0] for i in v} for s, v in ids.items()}
    assert not (cities["train"] & cities["val"] or cities["train"] & cities["test"]
                or cities["val"] & cities["test"])
    # Annotations are found in each image's official folder.
    for ds in parts.values():
        for info in ds.image_info:
            official = os.path.basename(os.path.dirname(os.path.dirname(info["path"])))
            assert f"{os.sep}gtFine{os.sep}{official}{os.sep}" in info["annotation"]
            ds.load_mask(ds.image_from_source_map[f"cityscapes.{info['id']}"])
    again = load(pooled_root, split="val", resplit=sizes)
    assert [i["id"] for i in again.image_info] == ids["val"]


def test_resplit_exact_sizes(pooled_root):
    kwargs = dict(sizes=(12, 6), seed=1, by_city=False)
    counts = [len(load(pooled_root, split=s, resplit=kwargs).image_info)
              for s in ("train", "val", "test")]
    assert counts == [12, 6, 7]


def test_subset(pooled_root):
    a = load(pooled_root, split="train", subset=5, seed=0)
    b = load(pooled_root, split="train", subset=5, seed=0)
    c = load(pooled_root, split="train", subset=5, seed=1)
    ids = lambda ds: [i["id"] for i in ds.image_info]  # noqa: E731
    assert len(ids(a)) == 5 and ids(a) == ids(b) and ids(a) == sorted(ids(a))
    assert ids(a) != ids(c)
    resplit_subset = load(pooled_root, split="test", resplit=dict(sizes=(10, 5)), subset=3)
    assert len(resplit_subset.image_info) == 3
    with pytest.raises(ValueError, match="only 18"):
        load(pooled_root, split="train", subset=19)


def test_size_mismatch_names_image_and_annotation(root):
    p = paths(root, "train", "aachen", "aachen_000000_000019")
    Image.new("RGB", (61, 40)).save(p["image"])
    with pytest.raises(CityscapesDataError, match="differs") as info:
        CityscapesDataset().load_cityscapes(root, split="train")
    assert str(p["image"]) in str(info.value) and str(p["polygons"]) in str(info.value)


def test_images_of_other_sources_use_the_base_class(root, tmp_path):
    ds = CityscapesDataset()
    ds.load_cityscapes(root, split="val")
    Image.new("RGB", (7, 5)).save(tmp_path / "other.png")
    ds.add_image("other", image_id="x", path=str(tmp_path / "other.png"), height=5, width=7)
    ds.prepare()
    masks, class_ids = ds.load_mask(2)
    assert masks.shape == (5, 7, 0) and class_ids.shape == (0,)
    assert ds.cache_version(2) is None and ds.cache_version(0) is not None


# ------------------------------------------------------------ synthetic data
def test_synthetic_dataset_both_annotation_paths(tmp_path):
    synthetic = pytest.importorskip("cityscapes.synthetic")
    from cityscapes.rasterize import (
        instance_id_image,
        parse_polygons,
        read_instance_ids_png,
    )

    root = tmp_path / "synthetic"
    synthetic.generate(root, seed=0, height=64, width=128,
                       images={"train": 4, "val": 2, "test": 2}, cities=2)
    for split, n in (("train", 4), ("val", 2), ("test", 2)):
        from_json = load(root, split=split)
        from_png = load(root, split=split, annotations="instanceIds")
        assert from_json.num_images == from_png.num_images == n
        for i in from_json.image_ids:
            json_path = from_json.image_info[i]["annotation"]
            ids = instance_id_image(parse_polygons(json_path))
            np.testing.assert_array_equal(ids, official_ids(json_path))
            np.testing.assert_array_equal(
                ids, read_instance_ids_png(from_png.image_info[i]["annotation"]))
            m1, c1 = from_json.load_mask(i)
            m2, c2 = from_png.load_mask(i)
            np.testing.assert_array_equal(m1, m2)
            np.testing.assert_array_equal(c1, c2)
            assert from_json.load_image(i).shape == (64, 128, 3)


# ------------------------------------------- annotations="auto", instanceIds only
@pytest.fixture(scope="module")
def synthetic_pair(tmp_path_factory):
    """The same synthetic dataset twice: with the polygons JSONs, and without."""
    synthetic = pytest.importorskip("cityscapes.synthetic")
    base = tmp_path_factory.mktemp("pair")
    kwargs = dict(seed=0, height=64, width=128, images={"train": 4, "val": 2, "test": 0},
                  cities=2)
    synthetic.generate(base / "full", **kwargs)
    summary = synthetic.generate(base / "ids_only", polygons=False, **kwargs)
    assert summary["files"] == 3 * 6
    return base / "full", base / "ids_only"


def test_auto_on_instance_ids_only_equals_polygons(synthetic_pair):
    full, ids_only = synthetic_pair
    assert not list(ids_only.rglob("*_gtFine_polygons.json"))
    for split, n in (("train", 4), ("val", 2)):
        from_json = load(full, split=split, annotations="polygons")
        auto = load(ids_only, split=split)  # annotations="auto" by default
        assert auto.load_report == {"images": n, "skipped": 0, "without_instances": None,
                                    "annotations": "instanceIds",
                                    "sources": {"polygons": 0, "instanceIds": n}}
        assert auto.num_without_instances is None
        assert [i["id"] for i in auto.image_info] == [i["id"] for i in from_json.image_info]
        for i in from_json.image_ids:
            info = auto.image_info[i]
            assert info["annotation_kind"] == "instanceIds"
            assert info["annotation"].endswith("_gtFine_instanceIds.png")
            assert (info["height"], info["width"]) == (64, 128)
            m1, c1 = from_json.load_mask(i)
            m2, c2 = auto.load_mask(i)
            np.testing.assert_array_equal(m1, m2)
            np.testing.assert_array_equal(c1, c2)
            np.testing.assert_array_equal(from_json.load_instance_ids(i),
                                          auto.load_instance_ids(i))
        # auto on the full folder reads the JSONs.
        assert load(full, split=split).load_report["sources"] == {"polygons": n,
                                                                   "instanceIds": 0}
    with pytest.raises(CityscapesDataError, match="annotations='auto' or 'instanceIds'"):
        load(ids_only, split="train", annotations="polygons")
    assert find_splits(ids_only) == ["train", "val"]


def test_mixed_folder_counts_each_source(root):
    for stem in ("aachen_000000_000019", "bochum_000001_000019"):
        paths(root, "train", stem.split("_")[0], stem)["polygons"].unlink()
    want = load(root, split="train", annotations="instanceIds")
    ds = load(root, split="train")
    assert ds.load_report == {"images": 5, "skipped": 0, "without_instances": None,
                              "annotations": "mixed",
                              "sources": {"polygons": 3, "instanceIds": 2}}
    kinds = [info["annotation_kind"] for info in ds.image_info]
    assert kinds == ["instanceIds", "polygons", "polygons", "polygons", "instanceIds"]
    for i, info in enumerate(ds.image_info):
        assert info["annotation"].endswith(
            "_gtFine_polygons.json" if kinds[i] == "polygons" else "_gtFine_instanceIds.png")
        m1, c1 = ds.load_mask(i)
        m2, c2 = want.load_mask(i)
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_array_equal(c1, c2)


def test_cache_key_follows_the_annotation_file_used(root, tmp_path):
    from mrcnn.data.mask_cache import MiniMaskCache

    p = paths(root, "train", "aachen", "aachen_000000_000019")
    v_json = load(root, split="train").cache_version(0)
    p["polygons"].unlink()
    from_png = load(root, split="train")
    assert from_png.image_info[0]["annotation_kind"] == "instanceIds"
    v = from_png.cache_version(0)
    assert v != v_json
    cache = MiniMaskCache(tmp_path / "cache", (8, 8))
    np.testing.assert_array_equal(cache.get(from_png, 0)["class_ids"],
                                  [1, 2, 3, 3, 6, 7, 10, -1, -3])
    cache.get(from_png, 0)
    assert (cache.hits, cache.misses) == (1, 1)
    st = os.stat(p["instanceIds"])
    os.utime(p["instanceIds"], ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    assert from_png.cache_version(0) != v
    # A JSON appears (here another scene): loaded again, the image reads it
    # and the PNG's cache entry is not used.
    write_json(p["polygons"], EMPTY_STREET)
    from_json = load(root, split="train")
    assert from_json.image_info[0]["annotation_kind"] == "polygons"
    assert from_json.cache_version(0) != from_png.cache_version(0)
    assert len(cache.get(from_json, 0)["class_ids"]) == 0
    assert (cache.hits, cache.misses) == (1, 2)


def test_neither_annotation_file_names_both(root, caplog):
    p = paths(root, "train", "bochum", "bochum_000000_000019")
    p["polygons"].unlink()
    p["instanceIds"].unlink()
    with pytest.raises(CityscapesDataError) as info:
        CityscapesDataset().load_cityscapes(root, split="train")
    message = str(info.value)
    assert str(p["polygons"]) in message and str(p["instanceIds"]) in message
    assert info.value.path == str(p["polygons"])
    ds = CityscapesDataset()
    with caplog.at_level(logging.WARNING, logger="cityscapes.dataset"):
        report = ds.load_cityscapes(root, split="train", skip_bad=True)
    assert report["images"] == 4 and report["skipped"] == 1
    assert report["sources"] == {"polygons": 4, "instanceIds": 0}
    assert ds.skipped[0][0] == str(p["polygons"]) and str(p["instanceIds"]) in ds.skipped[0][1]
    assert str(p["instanceIds"]) in caplog.text
