"""cityscapes.stats against an independent count from load_mask on synthetic data."""

import json
import shutil
from collections import Counter

import numpy as np
import pytest

import cli
from cityscapes import rasterize, stats
from cityscapes.dataset import CityscapesDataError, CityscapesDataset
from cityscapes.labels import EVALUATED_CLASSES, INSTANCE_CLASSES, ClassMap
from cityscapes.rasterize import instances_from_id_image
from cityscapes.synthetic import generate
from tests.commands import exit_code

IMAGES = {"train": 4, "val": 2, "test": 0}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    # 256 x 512: big enough for instances in all three size buckets.
    path = tmp_path_factory.mktemp("synthetic")
    generate(path, seed=0, height=256, width=512, images=IMAGES)
    return path


def load(root, split, annotations="polygons", classes=INSTANCE_CLASSES, **kwargs):
    ds = CityscapesDataset(classes)
    ds.load_cityscapes(root, split=split, annotations=annotations, **kwargs)
    ds.prepare()
    return ds


def expected_stats(ds):
    """The numbers of dataset_stats, counted from load_mask's [H, W, N] masks."""
    names = ds.class_map.names
    inst, crowd, sizes, per_image = Counter(), Counter(), Counter(), []
    for i in ds.image_ids:
        masks, class_ids = ds.load_mask(i)
        areas = masks.sum(axis=(0, 1))
        n = 0
        for c, area in zip(class_ids, areas):
            name = names[abs(c) - 1]
            if c < 0:
                crowd[name] += 1
                continue
            n += 1
            inst[name] += 1
            sizes[name, "small" if area < 32 ** 2 else "medium" if area < 96 ** 2 else "large"] += 1
        per_image.append(n)
    top = int(np.argmax(per_image))
    return {
        "images": len(per_image),
        "instances": {c: inst[c] for c in names},
        "crowd": {c: crowd[c] for c in names},
        "sizes": {c: {z: sizes[c, z] for z in stats.SIZE_NAMES} for c in names},
        "total_instances": sum(per_image),
        "total_crowd": sum(crowd.values()),
        "without_instances": per_image.count(0),
        "max": max(per_image),
        "max_image": ds.image_info[top]["id"],
        "mean": sum(per_image) / len(per_image),
        "histogram": np.bincount(per_image).tolist(),
    }


def check_against_load_mask(got, ds):
    want = expected_stats(ds)
    per = got["instances_per_image"]
    for key in ("images", "instances", "crowd", "sizes", "total_instances", "total_crowd",
                "without_instances"):
        assert got[key] == want[key], key
    assert (per["max"], per["max_image"], per["histogram"]) == (
        want["max"], want["max_image"], want["histogram"])
    assert per["mean"] == pytest.approx(want["mean"])


@pytest.mark.parametrize("split", ["train", "val"])
def test_matches_load_mask_count(root, split):
    ds = load(root, split)
    got = stats.dataset_stats(ds, name=split, workers=1)
    check_against_load_mask(got, ds)
    assert got["split"] == split and got["annotations"] == "polygons"
    assert got["skipped"] == []


def test_data_covers_what_is_counted(root):
    """The synthetic images have crowd regions, an empty image and all three sizes."""
    s = stats.collect_stats(root, ["train", "val"], workers=1)["total"]
    assert s["total_crowd"] > 0 and s["without_instances"] > 0
    for size in stats.SIZE_NAMES:
        assert sum(v[size] for v in s["sizes"].values()) > 0, size


def test_instance_ids_and_evaluated_classes(root):
    ds = load(root, "train", annotations="instanceIds", classes=EVALUATED_CLASSES)
    got = stats.dataset_stats(ds, workers=1)
    check_against_load_mask(got, ds)
    assert got["classes"] == list(EVALUATED_CLASSES)
    polygons = stats.dataset_stats(load(root, "train", classes=EVALUATED_CLASSES), workers=1)
    for key in ("instances", "crowd", "sizes", "instances_per_image"):
        assert got[key] == polygons[key]


def test_process_pool_gives_the_same(root):
    ds = load(root, "train")
    assert stats.dataset_stats(ds, workers=2) == stats.dataset_stats(ds, workers=1)


def test_instance_areas_equal_label_map_bincount(root):
    ds = load(root, "train")
    for info in ds.image_info:
        ids = rasterize.read_id_image(info["annotation"], info["height"], info["width"])
        label_map, class_ids = instances_from_id_image(ids, ds.class_map)
        got_ids, areas = stats.instance_areas(ids, ds.class_map)
        np.testing.assert_array_equal(got_ids, class_ids)
        np.testing.assert_array_equal(areas, np.bincount(label_map.ravel())[1:])


def test_value_counts_fallback_for_negative_ids():
    ids = np.array([[26000, -1, 26000], [7, 26001, -1]])
    values, counts = rasterize.value_counts(ids)
    np.testing.assert_array_equal(values, [-1, 7, 26000, 26001])
    np.testing.assert_array_equal(counts, [2, 1, 2, 1])
    class_ids, areas = stats.instance_areas(ids, ClassMap())
    np.testing.assert_array_equal(class_ids, [3, 3])
    np.testing.assert_array_equal(areas, [2, 1])


def test_size_bucket_boundaries():
    areas = np.array([1, 1023, 1024, 9215, 9216, 10 ** 6])
    np.testing.assert_array_equal(stats.size_buckets(areas), [0, 0, 1, 1, 2, 2])
    s = stats.summarize(np.array([1, 1, 2, 2, 2, -1]), np.array([1023, 1024, 9215, 9216, 5, 9]),
                        np.array([0, 0, 1, 1, 1, 2]), ["a", "b", "c"], ["person", "rider"], "x")
    assert s["sizes"] == {"person": {"small": 1, "medium": 1, "large": 0},
                          "rider": {"small": 1, "medium": 1, "large": 1}}
    assert s["crowd"] == {"person": 1, "rider": 0}
    assert s["without_instances"] == 1  # image "c" has a crowd region only
    assert s["instances_per_image"] == {"mean": 5 / 3, "max": 3, "max_image": "b",
                                        "histogram": [1, 0, 1, 1]}


def test_combine_sums_splits(root):
    total = stats.collect_stats(root, ["train", "val"], workers=1)
    train, val, t = total["splits"]["train"], total["splits"]["val"], total["total"]
    assert t["images"] == train["images"] + val["images"] == 6
    assert t["instances"] == {c: train["instances"][c] + val["instances"][c]
                              for c in INSTANCE_CLASSES}
    best = max(train, val, key=lambda s: s["instances_per_image"]["max"])
    assert t["instances_per_image"]["max_split"] == best["split"]
    assert t["instances_per_image"]["mean"] == pytest.approx(t["total_instances"] / 6)
    hist = t["instances_per_image"]["histogram"]
    assert sum(hist) == 6 and hist[0] == t["without_instances"]


def corrupt_copy(root, tmp_path, split="train"):
    """A copy of the dataset and the polygons JSON of its first `split` image."""
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    first = sorted((copy / "gtFine" / split).rglob("*_gtFine_polygons.json"))[0]
    return copy, first


def test_annotation_broken_after_loading(root, tmp_path):
    copy, broken = corrupt_copy(root, tmp_path)
    ds = load(copy, "train")
    broken.write_text("{ not json")
    with pytest.raises(CityscapesDataError, match="polygons.json"):
        stats.dataset_stats(ds, workers=1)
    got = stats.dataset_stats(ds, workers=2, skip_bad=True)
    assert got["images"] == IMAGES["train"] - 1
    assert [s["path"] for s in got["skipped"]] == [str(broken)]


def test_cli_writes_report_and_reports_skips(root, tmp_path, capsys):
    copy, broken = corrupt_copy(root, tmp_path)
    broken.write_text("{ not json")
    out = tmp_path / "out"
    argv = ["--dataset", str(copy), "--out", str(out), "--workers", "2"]
    assert exit_code(stats.main, argv) == 2
    assert "polygons.json" in capsys.readouterr().err

    assert stats.main(["--dataset", str(copy), "--out", str(out), "--workers", "2",
                       "--skip-bad"]) == 0
    printed = capsys.readouterr().out
    md = (out / "stats.md").read_text()
    assert printed == md
    assert "| train | 3 | 1 |" in md and "## Skipped images (1)" in md and broken.name in md
    for name in ("## Overview", "## train", "## val", "## total", "| person |"):
        assert name in md
    data = json.loads((out / "stats.json").read_text())
    assert set(data["splits"]) == {"train", "val"}
    assert data["total"]["skipped"][0]["path"] == str(broken)
    assert data["splits"]["val"] == stats.dataset_stats(load(copy, "val"), "val", workers=1)
    for name in stats.PLOT_FILES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_options(root, tmp_path, capsys):
    out = tmp_path / "out"
    assert stats.main(["--dataset", str(root), "--out", str(out), "--workers", "1",
                       "--splits", "val", "--classes", "evaluated",
                       "--annotations", "instanceIds"]) == 0
    data = json.loads((out / "stats.json").read_text())
    assert list(data["splits"]) == ["val"] and data["annotations"] == "instanceIds"
    assert data["classes"] == list(EVALUATED_CLASSES)
    capsys.readouterr()
    assert stats.main(["--dataset", str(root), "--out", str(out), "--workers", "1",
                       "--resplit", "3,2"]) == 0
    data = json.loads((out / "stats.json").read_text())
    assert list(data["splits"]) == ["train", "val", "test"]  # re-split by city: sizes approximate
    assert sum(v["images"] for v in data["splits"].values()) == 6
    assert data["resplit"] is True
    with pytest.raises(SystemExit):
        stats.main(["--dataset", str(root), "--resplit", "3"])


def test_write_report_takes_one_split(root, tmp_path):
    one = stats.dataset_stats(load(root, "val"), "val", workers=1)
    text = stats.write_report(one, tmp_path / "one")
    assert "## val" in text and (tmp_path / "one" / "sizes_per_class.png").exists()


def test_images_of_other_sources_use_load_mask(root):
    ds = CityscapesDataset()
    ds.load_cityscapes(root, split="val")
    ds.add_image("other", image_id="x", path="nowhere.png", height=8, width=8)
    ds.prepare()
    got = stats.dataset_stats(ds, workers=1)
    want = stats.dataset_stats(load(root, "val"), workers=1)
    assert got["images"] == want["images"] + 1
    assert got["without_instances"] == want["without_instances"] + 1
    assert got["instances"] == want["instances"]


def test_demo_means_the_synthetic_demo(root, monkeypatch):
    from cityscapes import synthetic

    monkeypatch.setattr(synthetic, "ensure_demo", lambda: str(root))
    assert cli.dataset_root("demo") == str(root)
    assert cli.dataset_root(str(root)) == str(root)
    with pytest.raises(cli.UsageError, match="/some/where: no such folder"):
        cli.dataset_root("/some/where")


# ------------------------------------------- instanceIds only, split discovery
@pytest.fixture(scope="module")
def ids_only(tmp_path_factory):
    """root's images without the polygons JSONs, plus a test split."""
    path = tmp_path_factory.mktemp("ids_only")
    generate(path, seed=0, height=256, width=512, images={**IMAGES, "test": 1}, polygons=False)
    return path


def test_cli_defaults_on_an_instance_ids_only_folder(root, ids_only, tmp_path, capsys):
    out = tmp_path / "out"
    assert stats.main(["--dataset", str(ids_only), "--out", str(out), "--workers", "1"]) == 0
    md = capsys.readouterr().out
    data = json.loads((out / "stats.json").read_text())
    assert list(data["splits"]) == ["train", "val", "test"]  # every split found
    assert data["annotations"] == "auto" and data["total"]["annotations"] == "instanceIds"
    assert data["total"]["annotation_sources"] == {"polygons": 0, "instanceIds": 7}
    assert "auto annotations (instanceIds 7)" in md
    for split in ("train", "val"):  # the numbers of the polygons
        got, want = data["splits"][split], stats.dataset_stats(load(root, split), workers=1)
        assert got["annotations"] == "instanceIds" and want["annotations"] == "polygons"
        for key in ("images", "instances", "crowd", "sizes", "total_instances", "total_crowd",
                    "without_instances", "instances_per_image"):
            assert got[key] == want[key], key


def test_mixed_folder_and_missing_split(root, tmp_path, capsys):
    copy = tmp_path / "mixed"
    shutil.copytree(root, copy)
    for path in (copy / "gtFine" / "val").rglob("*_gtFine_polygons.json"):
        path.unlink()
    got = stats.collect_stats(copy, workers=1)
    assert list(got["splits"]) == ["train", "val"]
    assert got["splits"]["train"]["annotations"] == "polygons"
    assert got["splits"]["val"]["annotations"] == "instanceIds"
    assert got["total"]["annotations"] == "mixed"
    assert got["total"]["annotation_sources"] == {"polygons": 4, "instanceIds": 2}
    out = str(tmp_path / "out")
    argv = ["--dataset", str(copy), "--out", out, "--splits", "val,test"]
    assert exit_code(stats.main, argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'test'" in err and "splits found: train, val" in err
    with pytest.raises(CityscapesDataError, match="splits found: train, val"):
        stats.collect_stats(copy, ["extra"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CityscapesDataError, match="no split with images and ground truth"):
        stats.collect_stats(empty)
