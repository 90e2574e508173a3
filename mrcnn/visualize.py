"""Pictures of instances: masks, boxes and labels drawn on an image.

    picture = draw_instances(image, boxes, masks, class_ids, class_names, scores)
    PIL.Image.fromarray(picture).save("detections.png")

Shape shorthand: H, W image size; N instances.
"""

import colorsys

import numpy as np
from PIL import Image, ImageDraw


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
    out = image.astype(np.float32)
    if n:
        # The last instance covering a pixel gives its colour (one pass, no loop).
        covered = masks.any(axis=-1)
        top = (n - 1) - np.argmax(masks[..., ::-1], axis=-1)
        tint = colors[top].astype(np.float32)
        out[covered] = (1 - alpha) * out[covered] + alpha * tint[covered]
    picture = Image.fromarray(np.rint(out).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for i in range(n):  # drawing calls, one per instance
        y1, x1, y2, x2 = [int(v) for v in boxes[i]]
        color = tuple(int(c) for c in colors[i])
        draw.rectangle([x1, y1, x2 - 1, y2 - 1], outline=color)
        if class_ids[i] > 0:
            label = class_names[class_ids[i]]
            if scores is not None:
                label += f" {scores[i]:.2f}"
            draw.text((x1 + 2, max(0, y1 - 11)), label, fill=color)
    return np.asarray(picture)


def draw_boxes(image, boxes, color=(255, 200, 0)):
    """The image with box outlines. boxes: [N, (y1, x1, y2, x2)] pixels."""
    picture = Image.fromarray(np.asarray(image, np.uint8))
    draw = ImageDraw.Draw(picture)
    for y1, x1, y2, x2 in np.asarray(boxes).reshape(-1, 4).round().astype(int).tolist():
        draw.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=tuple(color))
    return np.asarray(picture)


def side_by_side(left, right, gap=4):
    """Two uint8 [H, W, 3] pictures next to each other on white. -> [H, 2W + gap, 3]"""
    h = max(left.shape[0], right.shape[0])
    canvas = np.full((h, left.shape[1] + gap + right.shape[1], 3), 255, np.uint8)
    canvas[:left.shape[0], :left.shape[1]] = left
    canvas[:right.shape[0], left.shape[1] + gap:] = right
    return canvas
