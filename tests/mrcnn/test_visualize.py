"""Tests for mrcnn/visualize.py."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Polygon, Rectangle

from mrcnn import visualize

matplotlib.use("Agg")


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


# Matterport's matplotlib functions (mrcnn/visualize_matplotlib.py), headless (Agg).


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _scene():
    """A 40 x 60 grey image with two square instances: (image, boxes, masks, class_ids)."""
    image = np.full((40, 60, 3), 100, np.uint8)
    boxes = np.array([[5, 5, 15, 15], [20, 30, 35, 50]])
    masks = np.zeros((40, 60, 2), bool)
    for i, (y1, x1, y2, x2) in enumerate(boxes):
        masks[y1:y2, x1:x2, i] = True
    return image, boxes, masks, np.array([1, 2])


NAMES = ["BG", "car", "person"]


def _patches(ax, kind):
    return [p for p in ax.patches if type(p) is kind]


def test_random_colors_distinct_in_unit_range():
    colors = visualize.random_colors(7)
    assert len(colors) == 7 and len(set(colors)) == 7
    assert all(len(c) == 3 and all(0 <= v <= 1 for v in c) for c in colors)
    assert max(max(c) for c in visualize.random_colors(5, bright=False)) == pytest.approx(0.7)


def test_apply_mask_blends_in_place():
    image = np.full((2, 2, 3), 100, np.uint8)
    out = visualize.apply_mask(image, np.array([[1, 0], [0, 1]]), (1.0, 0.0, 0.5), alpha=0.25)
    assert out is image
    # 0.75 * 100 + 0.25 * 255 * (1, 0, 0.5) = (138.75, 75, 106.875), truncated to uint8
    assert out[0, 0].tolist() == [138, 75, 106] and out[1, 1].tolist() == [138, 75, 106]
    assert out[0, 1].tolist() == [100, 100, 100] and out[1, 0].tolist() == [100, 100, 100]


def test_display_instances_draws_into_ax_and_saves(tmp_path):
    image, boxes, masks, class_ids = _scene()
    fig, ax = plt.subplots(1)
    colors = [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)]
    visualize.display_instances(image, boxes, masks, class_ids, NAMES, np.array([0.9, 0.8]),
                                title="two", ax=ax, colors=colors)
    assert len(_patches(ax, Rectangle)) == 2 and len(_patches(ax, Polygon)) == 2
    assert sorted(t.get_text() for t in ax.texts) == ["car 0.900", "person 0.800"]
    assert ax.get_title() == "two"
    shown = ax.images[0].get_array()
    assert shown[10, 10].tolist() == [177, 50, 50] and shown[0, 0].tolist() == [100] * 3
    path = tmp_path / "instances.png"
    fig.savefig(path)
    assert path.stat().st_size > 0


def test_display_instances_options_change_the_drawing():
    image, boxes, masks, class_ids = _scene()
    _, ax = plt.subplots(1)
    visualize.display_instances(image, boxes, masks, class_ids, NAMES, ax=ax, show_bbox=False,
                                show_mask=False, captions=["a", "b"])
    assert not _patches(ax, Rectangle) and len(_patches(ax, Polygon)) == 2  # outlines stay
    assert sorted(t.get_text() for t in ax.texts) == ["a", "b"]
    assert (ax.images[0].get_array() == image).all()
    # Without ax: a figure of its own (plt.show() is a no-op under Agg).
    before = len(plt.get_fignums())
    visualize.display_instances(image, boxes, masks, class_ids, NAMES)
    assert len(plt.get_fignums()) == before + 1


def test_display_images_and_top_masks():
    image, _, masks, class_ids = _scene()
    visualize.display_images([image, image[..., 0], image], titles=["a", "b", "c"], cols=2)
    axes = plt.gcf().axes
    assert [a.get_title() for a in axes] == ["a", "b", "c"] and all(a.images for a in axes)
    plt.close("all")
    visualize.display_top_masks(image, masks, class_ids, NAMES, limit=3)
    axes = plt.gcf().axes
    # person (15 x 20 pixels) before car (10 x 10), then an empty panel
    assert [a.get_title() for a in axes] == ["H x W=40x60", "person", "car", "-"]
    assert axes[1].images[0].get_array().max() == 1 and axes[3].images[0].get_array().max() == 0


def test_plot_precision_recall_and_overlaps():
    visualize.plot_precision_recall(0.75, [1.0, 0.5], [0.5, 1.0])
    ax = plt.gca()
    assert ax.get_title() == "Precision-Recall Curve. AP@50 = 0.750"
    assert ax.lines[0].get_xdata().tolist() == [0.5, 1.0]
    plt.close("all")
    overlaps = np.array([[0.9, 0.1], [0.0, 0.7]])  # [predictions, ground truths]
    visualize.plot_overlaps(np.array([1, 2, 0]), np.array([1, 1]), np.array([0.95, 0.6]),
                            overlaps, NAMES)
    ax = plt.gca()
    assert [t.get_text() for t in ax.texts] == ["0.900\nmatch", "0.100\n", "0.000\n",
                                                "0.700\nwrong"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["car (0.95)", "car (0.60)"]


def test_draw_boxes_refined_masks_captions_visibilities():
    image, boxes, masks, _ = _scene()
    boxes = np.concatenate([boxes, [[1, 1, 4, 4]]])
    masks = np.concatenate([masks, np.zeros((40, 60, 1), bool)], axis=-1)
    refined = boxes + 1
    _, ax = plt.subplots(1)
    visualize.draw_boxes(image, boxes, refined, masks, ["a", "b", "c"], [2, 1, 0], title="t",
                         ax=ax)
    rects = _patches(ax, Rectangle)
    # 3 boxes + 2 refined boxes (visibility 0 has none); text boxes are not patches of ax
    assert len(rects) == 5 and ax.get_title() == "t"
    assert [r.get_linestyle() for r in rects] == ["solid", "solid", "dotted", "solid",
                                                  "dotted"]
    assert len(ax.lines) == 2  # box corner to refined box corner, visibilities 2 and 1
    assert sorted(t.get_text() for t in ax.texts) == ["a", "b", "c"]
    assert ax.texts[0].get_position() == (6, 6)  # caption on the refined box
    assert (ax.images[0].get_array()[10, 10] != 100).any()
    with pytest.raises(ValueError):
        visualize.draw_boxes(image)


def test_draw_rois_shows_positives_with_refined_boxes_masks_and_names(capsys):
    image, boxes, _, _ = _scene()
    rois = np.concatenate([boxes, [[1, 1, 4, 4]]])
    class_ids = np.array([1, 2, 0])
    mask = np.zeros((3, 7, 7, 3), np.float32)  # [N, h, w, C]: each ROI's class channel
    mask[0, :, :, 1] = 1.0
    mask[1, :, :, 2] = 1.0
    mask[1, :, :, 1] = 1.0  # another class's channel: not shown
    plt.close("all")
    visualize.draw_rois(image, rois, rois + 1, mask, class_ids, NAMES, limit=10)
    ax = plt.gca()
    # 3 ROIs + 2 refined boxes (the negative has none), solid for positives.
    assert len(_patches(ax, Rectangle)) == 5
    assert sorted(t.get_text() for t in ax.texts) == ["", "car", "person"]
    shown = ax.images[0].get_array()
    assert (shown[10, 10] != 100).any() and (shown[25, 40] != 100).any()  # masks pasted
    assert (shown[2, 2] == 100).all()  # the negative ROI has no mask
    assert capsys.readouterr().out.splitlines() == [
        "Positive ROIs: 2", "Negative ROIs: 1", "Positive Ratio: 0.67"]


def test_draw_box_exact_pixels():
    image = np.zeros((10, 10, 3), np.uint8)
    out = visualize.draw_box(image, (2, 3, 6, 7), (255, 0, 0))
    expected = np.zeros((10, 10), bool)
    expected[1:4, 2:9] = expected[5:8, 2:9] = True      # top and bottom edges, 3 px
    expected[1:8, 2:5] = expected[1:8, 6:9] = True      # left and right edges
    assert out is image
    assert ((out == (255, 0, 0)).all(-1) == expected).all() and (out[~expected] == 0).all()
    visualize.draw_box(image, (0, 0, 9, 9), (0, 255, 0))  # clipped at the border
    assert (image[0, :, 1] == 255).all() and (image[9, :, 1] == 255).all()


def test_display_differences_matches():
    image, boxes, masks, class_ids = _scene()
    _, ax = plt.subplots(1)
    visualize.display_differences(image, boxes, class_ids, masks, boxes, class_ids,
                                  np.array([0.9, 0.8]), masks, NAMES, ax=ax)
    texts = [t.get_text() for t in ax.texts]
    assert sorted(texts) == ["", "", "0.80 / 1.00", "0.90 / 1.00"]
    assert "GT=green" in ax.get_title() and len(_patches(ax, Rectangle)) == 4


def test_display_differences_captions_follow_unsorted_predictions():
    image, boxes, masks, _ = _scene()
    half = masks[..., :1].copy()
    half[5:10, :, 0] = False  # IoU 0.5 with ground truth 0
    pred = np.concatenate([half, masks[..., :1], masks[..., 1:]], axis=-1)
    _, ax = plt.subplots(1)
    visualize.display_differences(image, boxes, np.array([1, 2]), masks,
                                  np.concatenate([boxes[:1], boxes]), np.array([1, 1, 1]),
                                  np.array([0.5, 0.9, 0.7]), pred, NAMES, ax=ax)
    # Prediction 1 (best score) takes gt 0; 0 finds it taken (best IoU 0.5);
    # 2 covers gt 1 exactly but has the wrong class.
    assert [t.get_text() for t in ax.texts] == ["", "", "0.50 / 0.50", "0.90 / 1.00",
                                                 "0.70 / 1.00"]


def test_display_table_plain_text(capsys):
    visualize.display_table([["NAME", "SHAPE"], ["kernel", "(3, 3)"], ["b", 7]])
    assert capsys.readouterr().out.splitlines() == ["NAME    SHAPE", "kernel  (3, 3)",
                                                    "b       7"]


def test_display_weight_stats_of_a_tiny_model(capsys):
    import types

    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    outputs = keras.layers.Dense(1, name="fc", kernel_initializer="ones")(x)
    model = types.SimpleNamespace(keras_model=keras.Model(inputs, outputs))
    visualize.display_weight_stats(model)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["WEIGHT", "NAME", "SHAPE", "MIN", "MAX", "STD"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"conv/kernel", "conv/bias", "fc/kernel", "fc/bias"}
    assert "dead?" not in rows["conv/bias"] and "dead?" in rows["fc/kernel"]
    assert "+1.0000" in rows["fc/kernel"] and "(3, 3, 3, 2)" in rows["conv/kernel"]


def test_display_table_html_inside_ipython(monkeypatch, capsys):
    import sys
    import types

    shown = []
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: object()  # a running IPython shell
    display = types.ModuleType("IPython.display")
    display.HTML = lambda text: ("html", text)
    display.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    visualize.display_table([["a<b", 1]])
    assert shown == [("html", "<table><tr><td>a&lt;b</td><td>1</td></tr></table>")]
    assert capsys.readouterr().out == ""
