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


def _one_box_picture(h, w):
    """draw_instances of one labelled box (no mask) on black: (picture, box)."""
    box = np.array([[h // 2, w // 4, h // 2 + h // 4, w // 2]])
    out = visualize.draw_instances(np.zeros((h, w, 3), np.uint8), box,
                                   np.zeros((h, w, 1), bool), np.array([1]), ["bg", "car"],
                                   np.array([0.9]), colors=np.array([[0, 255, 0]], np.uint8))
    return out, box[0]


def _run(line, color=(0, 255, 0)):
    """Length of the run of `color` pixels at the start of a line of pixels."""
    hits = (line == color).all(axis=-1)
    return int(np.argmin(hits)) if not hits.all() else len(hits)


def test_label_and_line_sizes_grow_with_the_image():
    small, big = visualize.picture_style((128, 256)), visualize.picture_style((1024, 2048, 3))
    assert small.font_size >= 10 and all(b > s for b, s in zip(big, small))
    measured = {}
    for h, w in ((128, 256), (1024, 2048)):
        out, (y1, x1, y2, _) = _one_box_picture(h, w)
        line = _run(out[(y1 + y2) // 2, x1:])          # box edge, left to right
        label = _run(out[y1 - 1::-1, x1 + 1])          # label patch above the box, upwards
        measured[h] = line, label
        style = visualize.picture_style((h, w))
        assert line == style.line_width
        assert label >= style.font_size                # text height + padding
    assert measured[1024][0] > measured[128][0] and measured[1024][1] > 2 * measured[128][1]


def test_outline_boxes_lines_and_caption_scale():
    for h, w in ((128, 256), (1024, 2048)):
        out = visualize.outline_boxes(np.zeros((h, w, 3), np.uint8), [[10, 10, h - 10, w - 10]],
                                      color=(0, 255, 0))
        assert _run(out[h // 2, 10:]) == visualize.picture_style((h, w)).line_width
        captioned = visualize.add_caption(out, "top 1 of 1")
        band = captioned.shape[0] - h
        assert captioned.shape[1:] == (w, 3) and band > visualize.picture_style((h, w)).font_size
        assert (captioned[band:] == out).all() and (captioned[:band] < 128).any()
