"""Tests for mrcnn/visualize.py."""

import numpy as np

from mrcnn import visualize


def test_draw_instances_tints_masks_and_keeps_the_rest():
    image = np.full((40, 60, 3), 100, np.uint8)
    masks = np.zeros((40, 60, 2), bool)
    masks[5:15, 5:15, 0] = True
    masks[10:20, 10:30, 1] = True  # overlaps instance 0: drawn on top
    out = visualize.draw_instances(image, np.array([[5, 5, 15, 15], [10, 10, 20, 30]]), masks,
                                   np.array([1, -1]), ["bg", "car"], np.array([0.9, 1.0]))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert (out[30:, 40:] == 100).all()                       # untouched background
    assert (out[17, 20] == np.round(0.55 * 100 + 0.45 * 128)).all()  # crowd: grey
    assert not (out[7, 7] == 100).all()                       # instance 0 tinted


def test_no_instances_and_side_by_side():
    image = np.zeros((8, 6, 3), np.uint8)
    out = visualize.draw_instances(image, np.zeros((0, 4)), np.zeros((8, 6, 0), bool),
                                   np.zeros(0, int), ["bg"])
    assert (out == 0).all()
    both = visualize.side_by_side(out, np.zeros((5, 4, 3), np.uint8), gap=2)
    assert both.shape == (8, 12, 3) and (both[:, 6:8] == 255).all() and (both[5:, 8:] == 255).all()
