"""Tests for cityscapes/predictions.py: reading COCO-results files, every
malformed entry refused with its index and problem."""

import json

import numpy as np
import pytest

from cityscapes import predictions
from mrcnn.evaluation import rle

SIZES = {"a_000000_000001": (8, 10), "b_000000_000002": (6, 4)}


def mask_rle(size, region):
    m = np.zeros(size + (1,), bool)
    m[region] = True
    return rle.encode(m)[0]


def valid_entries():
    return [
        {"image_id": "a_000000_000001", "category_id": 3, "score": 0.9,
         "segmentation": mask_rle((8, 10), np.s_[1:4, 2:6]), "bbox": [2, 1, 4, 3]},
        {"image_id": "a_000000_000001", "category_id": 1, "score": 1,
         "segmentation": mask_rle((8, 10), np.s_[5:8, 0:2])},
        {"image_id": "b_000000_000002", "category_id": 10, "score": 0.25,
         "segmentation": {"size": [6, 4], "counts": [2, 3, 19]}, "id": 7},
    ]


def read(tmp_path, entries, num_classes=10):
    path = tmp_path / "p.json"
    path.write_text(entries if isinstance(entries, str) else json.dumps(entries))
    return predictions.read_coco_results(str(path), SIZES, num_classes)


def test_valid_entries_are_read_per_image(tmp_path):
    out = read(tmp_path, valid_entries())
    a, b = out["a_000000_000001"], out["b_000000_000002"]
    assert a["class_ids"].tolist() == [3, 1] and a["scores"].tolist() == [0.9, 1.0]
    # The second entry has no bbox: it gets its mask's ([x, y, w, h] -> y1, x1, y2, x2).
    np.testing.assert_array_equal(a["boxes"], [[1, 2, 4, 6], [5, 0, 8, 2]])
    assert b["boxes"] is None and b["size"] == (6, 4)
    assert rle.decode(b["rles"], 6, 4)[..., 0].ravel(order="F").tolist() == [0] * 2 + [1] * 3 + [0] * 19
    assert read(tmp_path, [])["a_000000_000001"]["class_ids"].tolist() == []


def test_bbox_null_is_no_bbox(tmp_path):
    entries = valid_entries()
    entries[0]["bbox"] = None
    assert read(tmp_path, entries)["a_000000_000001"]["boxes"] is None


def _set(key, value):
    def change(e):
        e[key] = value
    return change


def _seg(key, value):
    def change(e):
        if value is KeyError:
            del e["segmentation"][key]
        else:
            e["segmentation"][key] = value
    return change


def _drop(key):
    def change(e):
        del e[key]
    return change


# (change of entry 1, the problem named). The first rows are the cases of
# issue 17 that crashed with a traceback, or passed silently.
BAD = [
    (_set("score", "high"), 'score "high" is not a number'),
    (_set("segmentation", [[1, 1, 5, 1, 5, 5]]), "segmentation is a polygon list"),
    (_seg("counts", "0~~"), "characters outside COCO's alphabet"),
    (_seg("counts", [0, 81]), "RLE runs go past the end of the image"),
    (_set("bbox", [1, 2, 3]), "bbox [1, 2, 3] is not 4 finite numbers"),
    (_seg("size", KeyError), "segmentation has no size (the image's [H, W])"),
    (_set("score", float("nan")), "score NaN is not finite"),
    (_set("score", float("inf")), "score Infinity is not finite"),
    (_set("score", float("-inf")), "score -Infinity is not finite"),
    (_set("score", 10 ** 400), "is not finite"),
    (_set("score", True), "score true is not a number"),
    (_set("score", None), "score null is not a number"),
    (_set("category_id", 11), "category_id 11 is not a class id 1..10"),
    (_set("category_id", 0), "category_id 0 is not a class id 1..10"),
    (_set("category_id", 2.0), "category_id 2.0 is not a class id"),
    (_set("category_id", True), "category_id true is not a class id"),
    (_set("image_id", 5), "image_id 5 is not a string"),
    (_set("image_id", "c_000000_000003"), '"c_000000_000003" is not an image of the split'),
    (_drop("score"), "has no score"),
    (_drop("segmentation"), "has no segmentation"),
    (_set("segmentation", "abc"), 'segmentation "abc" is not an RLE'),
    (_seg("counts", KeyError), "segmentation has no counts"),
    (_seg("counts", {"a": 1}), "counts {\"a\": 1} is neither a string nor a list"),
    (_seg("size", [10, 8]), "size [10, 8] is not the image's [8, 10]"),
    (_seg("size", [8.0, 10.0]), "size [8.0, 10.0] is not [H, W]"),
    (_seg("size", [8]), "size [8] is not [H, W]"),
    (_seg("counts", "0"), "stop short of the image"),
    (_seg("counts", "0" + "o" * 8), "end in the middle of a number"),
    (_set("bbox", [1, 2, -3, 4]), "negative width or height"),
    (_set("bbox", [1, 2, "3", 4]), "is not 4 finite numbers"),
    (_set("bbox", [1, 2, float("nan"), 4]), "is not 4 finite numbers"),
    (_set("bbox", {"x": 1}), "is not 4 finite numbers"),
]


@pytest.mark.parametrize("change, problem", BAD)
def test_a_malformed_entry_is_named_by_index_with_its_problem(tmp_path, change, problem):
    entries = valid_entries()
    change(entries[1])
    with pytest.raises(predictions.PredictionsError) as e:
        read(tmp_path, entries)
    message = str(e.value)
    assert message.startswith(f"{tmp_path / 'p.json'}: entry 1: ")
    assert problem in message
    assert "\n" not in message and "more malformed" not in message


def test_non_objects_and_the_count_of_the_others(tmp_path):
    entries = valid_entries() * 5
    entries[3], entries[4] = "x", [1]
    for i in range(6, 15):
        entries[i] = dict(entries[i], score="no")
    with pytest.raises(predictions.PredictionsError) as e:
        read(tmp_path, entries)
    message = str(e.value)
    assert ": entry 3: is a string, not an object with image_id" in message
    assert message.endswith("; 10 more malformed entries: 4, 6, 7, 8, 9, 10, 11, 12, 13, 14")


@pytest.mark.parametrize("text, problem", [
    ('{"image_id": 1}', "expected a JSON list of detections, found an object"),
    ("[" * 100000, "not valid JSON"),
    ("[{", "not valid JSON"),
])
def test_a_file_that_is_no_list_of_entries(tmp_path, text, problem):
    with pytest.raises(predictions.PredictionsError, match=problem):
        read(tmp_path, text)


def test_fewer_classes(tmp_path):
    with pytest.raises(predictions.PredictionsError, match="category_id 3 is not a class id 1..2"):
        read(tmp_path, valid_entries(), num_classes=2)
