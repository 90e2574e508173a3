"""Tests for mrcnn/evaluation/rle.py: decoding, runs and overlaps equal pycocotools / brute force."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from mrcnn.evaluation import rle


def random_masks(rng, h, w, n):
    masks = np.zeros((h, w, n), bool)
    for i in range(n):
        y, x = rng.integers(0, h), rng.integers(0, w)
        masks[y:y + rng.integers(1, h), x:x + rng.integers(1, w), i] = True
        if i % 3 == 0:  # ragged shapes: many runs, large and small counts
            masks[..., i] &= rng.random((h, w)) > 0.3
    masks[..., 0] = False  # empty
    masks[..., 1] = True  # full
    return masks


def test_counts_equal_pycocotools_and_decode_round_trips():
    rng = np.random.default_rng(0)
    masks = random_masks(rng, 37, 53, 12)
    rles = rle.encode(masks)
    counts, owner = rle.counts_of(rles)
    for i, r in enumerate(rles):
        # pycocotools' own uncompressed counts, for reference.
        full = mask_utils.encode(np.asfortranarray(masks[..., i:i + 1].astype(np.uint8)))[0]
        dense = masks[..., i].ravel(order="F").astype(np.int8)
        changes = np.flatnonzero(np.diff(np.concatenate([[0], dense, [1 - dense[-1]]])))
        expected = np.diff(np.concatenate([[0], changes]))
        assert full["counts"].decode() == r["counts"]
        np.testing.assert_array_equal(counts[owner == i][:len(expected)], expected)
    np.testing.assert_array_equal(rle.decode(rles, 37, 53), masks)


def test_foreground_runs_of_an_uncompressed_rle():
    starts, lengths, owner = rle.foreground_runs([{"size": [4, 5], "counts": [3, 4, 0, 2, 11]}])
    assert starts.tolist() == [3, 7] and lengths.tolist() == [4, 2] and owner.tolist() == [0, 0]


def test_overlap_counts_equal_brute_force():
    rng = np.random.default_rng(1)
    h, w = 40, 60
    labels = rng.choice([0, 7, 24001, 26000, 26001, 33005], size=(h, w))
    masks = random_masks(rng, h, w, 9)
    out = rle.overlap_counts(labels, rle.encode(masks))
    values = np.unique(labels)
    expected = np.array([[np.count_nonzero(masks[..., d] & (labels == v)) for v in values]
                         for d in range(9)])
    np.testing.assert_array_equal(out["values"], values)
    np.testing.assert_array_equal(out["value_pixels"], [np.count_nonzero(labels == v)
                                                        for v in values])
    np.testing.assert_array_equal(out["intersection"], expected)
    np.testing.assert_array_equal(out["areas"], masks.sum((0, 1)))


def test_overlap_counts_without_masks_and_with_a_wrong_size():
    labels = np.zeros((5, 6), np.int32)
    assert rle.overlap_counts(labels, [])["intersection"].shape == (0, 1)
    with pytest.raises(ValueError, match=r"RLE 0 has size \[6, 5\], the image is \[5, 6\]"):
        rle.overlap_counts(labels, rle.encode(np.zeros((6, 5, 1), bool)))


def test_encode_label_image_equals_encoding_each_mask():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, (31, 47))
    labels[:, :5] = 9
    values = [0, 1, 3, 9, 12]  # 12 is absent: an empty mask
    got = rle.encode_label_image(labels, values)
    want = rle.encode(np.stack([labels == v for v in values], axis=-1))
    assert [g["counts"] for g in got] == [x["counts"] for x in want]


def brute_force(labels, masks):
    values = np.unique(labels)
    return values, np.array([[np.count_nonzero(masks[..., d] & (labels == v)) for v in values]
                             for d in range(masks.shape[-1])]).reshape(masks.shape[-1], -1)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.int64])
def test_overlap_counts_with_runs_crossing_columns(dtype):
    """A run from the bottom of one column goes on at the top of the next."""
    rng = np.random.default_rng(5)
    h, w = 23, 31
    labels = rng.choice([0, 7, 26, 24000, 26000, 26001, 33000], size=(h, w)).astype(dtype)
    masks = rng.random((h, w, 6)) < 0.4
    masks[:, :, 1] = True
    masks[:, :, 2] = False
    masks[-3:, 4, 3] = masks[:2, 5, 3] = True
    out = rle.overlap_counts(labels, rle.encode(masks))
    values, expected = brute_force(labels, masks)
    np.testing.assert_array_equal(out["values"], values)
    np.testing.assert_array_equal(out["intersection"], expected)
    assert all(v.dtype == np.int64 for v in out.values())


def test_overlap_counts_of_negative_values_and_thin_images():
    labels = np.array([[-1, 26000], [26000, 7]])
    out = rle.overlap_counts(labels, rle.encode(np.array([[1, 1], [0, 1]], bool)[:, :, None]))
    np.testing.assert_array_equal(out["values"], [-1, 7, 26000])
    np.testing.assert_array_equal(out["value_pixels"], [1, 1, 2])
    np.testing.assert_array_equal(out["intersection"], [[1, 1, 1]])
    rng = np.random.default_rng(1)
    for shape in [(1, 9), (9, 1), (1, 1)]:
        labels = rng.choice([0, 26000, 24000], size=shape)
        masks = rng.random(shape + (3,)) < 0.5
        out = rle.overlap_counts(labels, rle.encode(masks))
        np.testing.assert_array_equal(out["intersection"], brute_force(labels, masks)[1])


def test_problems_accepts_valid_rles_of_both_kinds():
    rng = np.random.default_rng(1)
    rles = rle.encode(random_masks(rng, 37, 53, 12))
    rles.append({"size": [4, 5], "counts": [3, 4, 0, 2, 11]})
    rles.append({"size": [4, 5], "counts": [20]})
    assert rle.problems(rles) == {}
    assert rle.problems([]) == {}


def test_problems_names_each_bad_rle():
    good = rle.encode(np.ones((4, 5, 1), bool))[0]  # 20 foreground pixels
    bad = {
        1: ("0" + good["counts"] + "~", "outside COCO's alphabet"),
        2: ("0" + good["counts"] + "é", "outside COCO's alphabet"),
        3: (good["counts"] + "o", "end in the middle of a number"),  # 'o': continuation bit
        4: ("o" * 7 + "0", "more than 7 characters"),
        5: ("O", "negative run length"),  # 'O' is -1
        6: ([0, 21], "go past the end of the image: they cover 21 pixels, its size 4 x 5 has"),
        7: ([0, 19], "stop short of the image"),
        8: ("", "stop short of the image: they cover 0 pixels"),
        9: ([0, True], "something else than whole numbers"),
        10: ([0, 2.5], "something else than whole numbers"),
        11: ([0, 10 ** 30], "something else than whole numbers"),
        12: ([-1, 21], "negative run length"),
    }
    rles = [good] + [{"size": [4, 5], "counts": c} for c, _ in bad.values()] + [good]
    found = rle.problems(rles)
    assert list(found) == list(bad)
    for i, (_, message) in bad.items():
        assert message in found[i], (i, found[i])


def test_an_unfinished_number_does_not_spill_into_the_next_rle():
    good = rle.encode(np.eye(6, dtype=bool)[..., None])[0]
    assert rle.problems([dict(good, counts=good["counts"] + "o"), good, good]) == {
        0: "RLE counts end in the middle of a number"}


def test_problems_in_chunks_keep_the_indices(monkeypatch):
    monkeypatch.setattr(rle, "CHECK_CHUNK", 3)
    good = rle.encode(np.eye(6, dtype=bool)[..., None])[0]
    rles = [good] * 10
    rles[4] = dict(good, counts="~")
    rles[9] = dict(good, counts=[37])
    assert rle.problems(rles) == {4: "RLE counts hold characters outside COCO's alphabet "
                                     "('0' to 'o')", 9: rle.problems([rles[9]])[0]}
