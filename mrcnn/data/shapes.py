"""Synthetic shapes dataset: squares, circles and triangles on a plain background.

A small, fully reproducible dataset for tests, smoke runs and tutorials
(the idea of Matterport's "shapes" sample). Each image has a random
background colour and 1..max_shapes shapes with random class, colour,
centre and size. Only the shape specs are stored in image_info; images and
masks are drawn on demand:

    dataset = ShapesDataset()
    dataset.load_shapes(500, 128, 128, seed=0)
    dataset.prepare()
    image = dataset.load_image(0)            # [128, 128, 3] uint8
    masks, class_ids = dataset.load_mask(0)  # [128, 128, N] bool, [N] int32

Shapes are drawn in order, so later shapes occlude earlier ones; masks are
the visible parts, and a shape hidden entirely is left out.
"""

import numpy as np
import skimage.draw

from mrcnn.data.dataset import Dataset

SOURCE = "shapes"
CLASS_NAMES = ("square", "circle", "triangle")  # class ids 1, 2, 3
# Size (half-side / radius / half-height) as a fraction of the shorter image side.
SIZE_RANGE = (0.10, 0.25)
# Half-width of a triangle over its size: equilateral, apex up.
TRIANGLE_HALF_WIDTH = 2 / np.sqrt(3)
# Candidate shapes whose bounding box overlaps a kept one more than this
# (IoU) are not placed, so every image has clearly separate objects.
MAX_BOX_IOU = 0.3


class ShapesDataset(Dataset):
    """Generated images of squares, circles and triangles (source "shapes")."""

    def load_shapes(self, count, height, width, seed=0, max_shapes=4):
        """Add `count` random images of `height` x `width`, deterministic from `seed`.

        image_info of each: height, width, bg_color (r, g, b) and shapes, a
        list of (name, (r, g, b), (y, x, size)) in drawing order.
        """
        if count < 0 or max_shapes < 1:
            raise ValueError(f"need count >= 0 and max_shapes >= 1, got {count}, {max_shapes}")
        if min(height, width) < 16:
            raise ValueError(f"images must be at least 16 x 16, got {height} x {width}")
        for class_id, name in enumerate(CLASS_NAMES, start=1):
            self.add_class(SOURCE, class_id, name)
        rng = np.random.default_rng(seed)
        for _ in range(count):
            bg_color, shapes = _random_image_spec(rng, height, width, max_shapes)
            self.add_image(SOURCE, image_id=len(self.image_info), path=None,
                           height=height, width=width, bg_color=bg_color, shapes=shapes)

    def image_reference(self, image_id):
        """The shape specs of the image."""
        info = self.image_info[image_id]
        if info["source"] != SOURCE:
            return super().image_reference(image_id)
        return info["shapes"]

    def load_image(self, image_id):
        """[H, W, 3] uint8: the shapes painted in order over the background."""
        info = self.image_info[image_id]
        image = np.empty((info["height"], info["width"], 3), dtype=np.uint8)
        image[:] = info["bg_color"]
        for (_, color, _), mask in zip(info["shapes"], _shape_masks(info)):
            image[mask] = color
        return image

    def load_mask(self, image_id):
        """Visible part of each shape: [H, W, N] bool, class ids [N] int32."""
        info = self.image_info[image_id]
        masks = _shape_masks(info)                        # [S, H, W], drawing order
        # Pixels covered by any later shape: reverse cumulative OR, shifted by one.
        covered = np.logical_or.accumulate(masks[::-1], axis=0)[::-1]
        occluded = np.zeros_like(masks)
        occluded[:-1] = covered[1:]
        visible = masks & ~occluded
        keep = visible.any(axis=(1, 2))
        class_ids = np.array([CLASS_NAMES.index(name) + 1 for name, _, _ in info["shapes"]],
                             dtype=np.int32)
        return np.moveaxis(visible[keep], 0, -1), class_ids[keep]


def _random_image_spec(rng, height, width, max_shapes):
    """Background colour and shape specs of one image."""
    from mrcnn.modeling import box_ops  # keras.ops: loaded when shapes are drawn

    bg = rng.integers(0, 256, size=3)
    shapes, boxes = [], []
    for _ in range(rng.integers(1, max_shapes + 1)):
        name = CLASS_NAMES[rng.integers(len(CLASS_NAMES))]
        # Each channel differs from the background by 64..192 (mod 256).
        color = (bg + rng.integers(64, 193, size=3)) % 256
        size = int(rng.uniform(*SIZE_RANGE) * min(height, width))
        reach = int(np.ceil(size * TRIANGLE_HALF_WIDTH))  # fits every shape
        y = int(rng.integers(reach, height - reach))
        x = int(rng.integers(reach, width - reach))
        box = np.array([y - size, x - size, y + size, x + size])
        if boxes and np.asarray(box_ops.iou([box], boxes)).max() > MAX_BOX_IOU:
            continue
        boxes.append(box)
        shapes.append((name, tuple(int(c) for c in color), (y, x, size)))
    return tuple(int(c) for c in bg), shapes


def _shape_masks(info):
    """[S, H, W] bool: the full (unoccluded) area of each shape."""
    shape = (info["height"], info["width"])
    masks = np.zeros((len(info["shapes"]),) + shape, dtype=bool)
    for mask, (name, _, (y, x, size)) in zip(masks, info["shapes"]):
        if name == "square":
            rr, cc = skimage.draw.rectangle((y - size, x - size), (y + size, x + size),
                                            shape=shape)
        elif name == "circle":
            rr, cc = skimage.draw.disk((y, x), size, shape=shape)
        else:
            half = size * TRIANGLE_HALF_WIDTH
            rr, cc = skimage.draw.polygon([y - size, y + size, y + size],
                                          [x, x - half, x + half], shape=shape)
        mask[rr, cc] = True
    return masks
