"""Pictures of instances: masks, boxes and labels drawn on an image.

    picture = draw_instances(image, boxes, masks, class_ids, class_names, scores)
    PIL.Image.fromarray(picture).save("detections.png")

Label fonts, label padding and line widths grow with the picture's size
(`picture_style`), so labels read the same on a 128 x 256 image as on a
1024 x 2048 one. Shape shorthand: H, W image size; N instances.

Matterport's matplotlib figures (`display_instances`, `display_images`,
`draw_boxes`, `random_colors`, `apply_mask`, ...) live in
`mrcnn/visualize_matplotlib.py` and are re-exported here, so
`from mrcnn import visualize; visualize.display_instances(...)` works as
in Matterport; matplotlib is imported only when one of them is called.
"""

import collections
import colorsys
import functools
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mrcnn.visualize_matplotlib import (  # noqa: F401  Matterport's names, re-exported
    apply_mask,
    display_differences,
    display_images,
    display_instances,
    display_table,
    display_top_masks,
    display_weight_stats,
    draw_box,
    draw_boxes,
    draw_rois,
    plot_overlaps,
    plot_precision_recall,
    random_colors,
)

Style = collections.namedtuple("Style", "font_size padding line_width")


def picture_style(shape):
    """Style(font_size, padding, line_width) in pixels for a picture of
    `shape` (H, W, ...): proportional to the long side, font at least 10 px
    (128 x 256: 10, 2, 1; 1024 x 2048: 32, 6, 4)."""
    side = max(int(shape[0]), int(shape[1]))
    font_size = int(np.clip(round(side / 64), 10, 96))
    return Style(font_size, max(1, font_size // 5), max(1, round(side / 512)))


@functools.cache
def label_font(size):
    """A scalable font of `size` pixels: Pillow's built-in one (Pillow >= 10.1
    with FreeType), else matplotlib's DejaVu Sans, else Pillow's small
    fixed-size bitmap font. Nothing is downloaded."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        pass
    try:
        import matplotlib

        return ImageFont.truetype(
            os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default()


def _text_size(draw, text, font):
    _, _, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right, bottom


def draw_label(draw, x, y, text, color, style, size):
    """`text` on a patch of `color` (black or white letters, whichever reads
    better) just above the point (x, y), shifted into a picture of `size`
    (W, H) where it would stick out (over the box's top edge, say)."""
    font = label_font(style.font_size)
    pad = style.padding
    tw, th = _text_size(draw, text, font)
    w, h = tw + 2 * pad, th + 2 * pad
    x = max(0, min(x, size[0] - w))
    y = max(0, min(y - h, size[1] - h))
    draw.rectangle([x, y, x + w - 1, y + h - 1], fill=tuple(color))
    ink = (0, 0, 0) if np.dot(color, (0.299, 0.587, 0.114)) > 140 else (255, 255, 255)
    draw.text((x + pad, y + pad), text, fill=ink, font=font)


def instance_colors(n, seed=0):
    """N distinct bright RGB colours (uint8 [N, 3]), shuffled reproducibly."""
    hues = np.random.default_rng(seed).permutation(n) / max(n, 1)
    return np.array([[int(255 * c) for c in colorsys.hsv_to_rgb(h, 0.9, 1.0)] for h in hues],
                     np.uint8).reshape(-1, 3)


def draw_instances(image, boxes, masks, class_ids, class_names, scores=None, alpha=0.45,
                   colors=None):
    """The image with each instance's mask tinted, its box and a label.

    image: uint8 [H, W, 3]; boxes: [N, (y1, x1, y2, x2)] pixels; masks: bool
    [H, W, N]; class_ids: [N] (crowds, < 0, are drawn grey without label);
    class_names: names indexed by class id; scores: [N] or None; colors:
    uint8 [N, 3] or None for distinct colours (crowds grey).
    Returns uint8 [H, W, 3].
    """
    n = len(class_ids)
    if colors is None:
        colors = instance_colors(n)
        colors[np.asarray(class_ids) < 0] = 128
    out = np.array(image, np.uint8)
    if n:
        # The last instance covering a pixel gives its colour (one pass over
        # the covered pixels only, no loop).
        rows, cols = np.nonzero(masks.any(axis=-1))
        top = (n - 1) - np.argmax(masks[rows, cols, ::-1], axis=-1)
        blend = ((1 - alpha) * out[rows, cols].astype(np.float32)
                 + alpha * colors[top].astype(np.float32))
        out[rows, cols] = np.rint(blend).clip(0, 255).astype(np.uint8)
    picture = Image.fromarray(out)
    draw = ImageDraw.Draw(picture)
    style = picture_style(image.shape)
    for i in range(n):  # boxes first, then labels on top of every box
        y1, x1, y2, x2 = [int(v) for v in boxes[i]]
        color = tuple(int(c) for c in colors[i])
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=color,
                       width=style.line_width)
    for i in range(n):
        if class_ids[i] > 0:
            label = class_names[class_ids[i]]
            if scores is not None:
                label += f" {scores[i]:.2f}"
            y1, x1 = int(boxes[i][0]), int(boxes[i][1])
            draw_label(draw, x1, y1, label, colors[i], style, picture.size)
    return np.asarray(picture)


def outline_boxes(image, boxes, color=(255, 200, 0)):
    """The image with box outlines, the first box on top (lines as wide as
    `picture_style` says). boxes: [N, (y1, x1, y2, x2)] pixels."""
    picture = Image.fromarray(np.asarray(image, np.uint8))
    draw = ImageDraw.Draw(picture)
    width = picture_style(picture.size[::-1]).line_width
    for y1, x1, y2, x2 in np.asarray(boxes).reshape(-1, 4).round().astype(int).tolist()[::-1]:
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=tuple(color),
                       width=width)
    return np.asarray(picture)


def add_caption(picture, text):
    """The picture (uint8 [H, W, 3]) under a white band with `text` in black,
    sized by `picture_style`. -> [H + band, W, 3]"""
    style = picture_style(picture.shape)
    font = label_font(style.font_size)
    band = Image.new("RGB", (picture.shape[1], 1))
    th = _text_size(ImageDraw.Draw(band), text, font)[1]
    band = Image.new("RGB", (picture.shape[1], th + 2 * style.padding), (255, 255, 255))
    ImageDraw.Draw(band).text((style.padding, style.padding), text, fill=(0, 0, 0), font=font)
    return np.concatenate([np.asarray(band), np.asarray(picture, np.uint8)])


def side_by_side(left, right, gap=4):
    """Two uint8 [H, W, 3] pictures next to each other on white. -> [H, 2W + gap, 3]"""
    h = max(left.shape[0], right.shape[0])
    canvas = np.full((h, left.shape[1] + gap + right.shape[1], 3), 255, np.uint8)
    canvas[:left.shape[0], :left.shape[1]] = left
    canvas[:right.shape[0], left.shape[1] + gap:] = right
    return canvas
