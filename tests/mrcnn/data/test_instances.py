"""mrcnn/data/instances.py, the NumPy twins of mrcnn/data/masks.py: the same
boxes, mini-masks and moved instances as the TensorFlow functions."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mrcnn.data import instances, masks


def ellipses(height, width, count, seed):
    """[H, W, count] bool random ellipses, some cut by the border, one empty."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:height, :width] + 0.5
    out = []
    for _ in range(count):
        cy, cx = rng.uniform(-0.1, 1.1) * height, rng.uniform(-0.1, 1.1) * width
        ry, rx = rng.uniform(1, height / 3), rng.uniform(1, width / 3)
        out.append(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1)
    out.append(np.zeros((height, width), bool))
    return np.stack(out, axis=-1)


@pytest.mark.parametrize("seed", range(3))
def test_boxes_and_mini_masks_equal_the_tensorflow_ones(seed):
    full = ellipses(97, 173, 12, seed)
    boxes = instances.boxes_from_masks(full)
    np.testing.assert_array_equal(boxes, masks.boxes_from_masks(full).numpy())
    assert boxes.dtype == np.int32
    nonempty = boxes[:-1]
    for shape in [(56, 56), (28, 14), (1, 1)]:
        mini = instances.mini_masks(full[..., :-1], nonempty, shape)
        np.testing.assert_array_equal(mini, masks.mini_masks(full[..., :-1], nonempty,
                                                             shape).numpy())


def test_mini_masks_of_boxes_whose_samples_fall_on_half_pixels():
    # A 112-pixel box sampled at 56 cells: every sample is halfway between two
    # rows, where crop_and_resize's float32 rounding decides a tie at 0.5.
    full = np.zeros((300, 300, 2), bool)
    full[37:149, 11:123, 0] = True
    full[40:140, 13:100, 0] = False
    full[:, :, 1] = np.add.outer(np.arange(300), np.arange(300)) % 3 == 0
    boxes = np.array([[37, 11, 149, 123], [5, 3, 229, 227]], np.int32)
    np.testing.assert_array_equal(instances.mini_masks(full, boxes, (56, 56)),
                                  masks.mini_masks(full, boxes, (56, 56)).numpy())


def test_no_instances():
    empty = np.zeros((10, 12, 0), bool)
    assert instances.boxes_from_masks(empty).shape == (0, 4)
    assert instances.mini_masks(empty, np.zeros([0, 4]), (56, 56)).shape == (0, 56, 56)
    out, mini, keep = instances.transform_instances(np.zeros([0, 4]), np.zeros([0, 56, 56]),
                                                    [0, 0, 10, 10], (20, 20), flip=True)
    assert out.shape == (0, 4) and mini.shape == (0, 56, 56) and keep.shape == (0,)


# ----------------------------------------------------------------- paste_masks
def random_boxes(rng, count, low, high, integer=False):
    corners = np.sort(rng.uniform(low, high, (count, 2, 2)), axis=1)
    boxes = corners.reshape(count, 4)[:, [0, 2, 1, 3]].astype(np.float32)
    return np.round(boxes) if integer else boxes


@pytest.mark.parametrize("seed", range(4))
def test_paste_masks_equals_the_tensorflow_one(seed):
    # Probabilities and 0/1 masks (ties at 0.5 on half-way samples), integer
    # and fractional boxes, boxes partly or wholly off the image, thin ones.
    rng = np.random.default_rng(seed)
    mini = rng.uniform(0, 1, (24, 28, 28)).astype(np.float32)
    mini[12:] = mini[12:] > 0.5
    boxes = random_boxes(rng, 24, -15, 95, integer=seed % 2 == 0)
    boxes[0] = [5, 5, 5.5, 60]
    boxes[1] = [-30, -30, -10, -5]
    boxes[2] = [0, 0, 64, 80]
    for threshold in (0.5, 0.3):
        got = instances.paste_masks(mini, boxes, (64, 80), threshold)
        expected = masks.paste_masks(mini, boxes, (64, 80), threshold).numpy()
        assert got.shape == (64, 80, 24) and got.dtype == bool
        np.testing.assert_array_equal(got, expected)
    assert got[..., 1].sum() == 0 and got[..., 2].any()


def test_paste_masks_round_trip_and_edge_cases():
    full = ellipses(97, 173, 12, 5)[..., :-1]
    boxes = instances.boxes_from_masks(full)
    mini = instances.mini_masks(full, boxes, (56, 56))
    back = instances.paste_masks(mini, boxes, (97, 173))
    np.testing.assert_array_equal(back, masks.paste_masks(mini, boxes, (97, 173)).numpy())
    assert (back == full).mean() > 0.99
    assert instances.paste_masks(np.zeros((0, 28, 28)), np.zeros((0, 4)), (10, 12)).shape == (
        10, 12, 0)
    with pytest.raises(ValueError, match="threshold"):
        instances.paste_masks(mini, boxes, (97, 173), threshold=0.0)



def test_zeros_in_small_pages():
    out = instances.zeros_in_small_pages((7, 5, 3))
    assert out.shape == (7, 5, 3) and out.dtype == bool and not out.any()
    out[2, 3, 1] = True  # writable, and one element at a time
    assert out.sum() == 1 and out[2, 3, 1]
    assert instances.zeros_in_small_pages((4, 0, 2)).shape == (4, 0, 2)
    if hasattr(os, "fork"):  # a forked child's writes stay its own
        pid = os.fork()
        if pid == 0:
            out[0, 0, 0] = True
            os._exit(0)
        os.waitpid(pid, 0)
        assert not out[0, 0, 0]

WINDOWS = [([0, 0, 97, 173], (97, 173), False), ([0, 0, 97, 173], (97, 173), True),
           ([-10, -20, 107, 193], (234, 426), False), ([20, 31.5, 80, 140], (97, 173), True),
           ([3.25, 0, 60.75, 99], (120, 200), False), ([50, 90, 51, 91], (40, 40), True)]


@pytest.mark.parametrize("window, out_size, flip", WINDOWS)
def test_transform_instances_equals_the_tensorflow_one(window, out_size, flip):
    full = ellipses(97, 173, 16, seed=7)[..., :-1]
    boxes = instances.boxes_from_masks(full)
    mini = instances.mini_masks(full, boxes, (56, 56))
    got = instances.transform_instances(boxes, mini, window, out_size, flip)
    expected = masks.transform_instances(boxes, mini, window, out_size, tf.constant(flip))
    for a, b, name in zip(got, expected, ("boxes", "mini", "keep")):
        np.testing.assert_array_equal(a, b.numpy(), err_msg=name)
    assert got[2].any()


def test_normalize_boxes_equals_box_ops():
    from mrcnn.modeling import box_ops

    boxes = np.array([[0, 0, 97, 173], [3.5, 7, 20, 21.25], [96, 172, 97, 173]], np.float32)
    got = instances.normalize_boxes(boxes, (97, 173, 3))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, np.asarray(box_ops.normalize(boxes, (97, 173))))
    np.testing.assert_array_equal(got[0], [0, 0, 1, 1])
