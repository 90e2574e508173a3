"""Anchors of the feature pyramid, generated in the graph for any image size.

Shape shorthand:
    L: pyramid levels (P2..P6 -> 5)
    R: anchor ratios per location (width / height)
    A: all anchors of an image, sum over levels of Hl * Wl * R

Order (it must match the RPN's reshape of its conv outputs): level by level,
then row-major over feature-map positions (y, then x), then ratio. Anchor
centres sit at `position * feature_stride` pixels (Matterport's convention),
so pixel boxes can stick out of the image at the borders.
"""

import dataclasses
import math

import numpy as np
from keras import ops

from mrcnn.modeling import box_ops


def _size(image_shape):
    """(height, width): Python ints where known statically, else tensors."""
    if isinstance(image_shape, np.ndarray):
        image_shape = image_shape.tolist()
    if not isinstance(image_shape, (tuple, list)):
        image_shape = (image_shape[0], image_shape[1])
    return tuple(int(s) if isinstance(s, (int, np.integer)) else s for s in image_shape[:2])


def feature_shapes(image_shape, strides):
    """Feature-map sizes of each level: ceil(image side / stride).

    image_shape: (height, width, ...) -> [(Hl, Wl)] per level, Python ints
    where the image size is static, int32 scalars otherwise.
    """
    shapes = []
    for stride in strides:
        level = []
        for side in _size(image_shape):
            if isinstance(side, int):
                level.append(-(-side // stride))
            else:
                side = ops.cast(side, "float32")
                level.append(ops.cast(ops.ceil(side / float(stride)), "int32"))
        shapes.append(tuple(level))
    return shapes


def _level_grid(scale, ratios, shape, feature_stride, anchor_stride):
    """A level's anchor grid: centre rows ys [Hl], columns xs [Wl], heights
    and widths [R] (pixels). Anchors are their products, row-major."""
    ratios = ops.convert_to_tensor(ratios, "float32")
    heights = scale / ops.sqrt(ratios)
    widths = scale * ops.sqrt(ratios)
    ys = ops.cast(ops.arange(0, shape[0], anchor_stride) * feature_stride, "float32")
    xs = ops.cast(ops.arange(0, shape[1], anchor_stride) * feature_stride, "float32")
    return ys, xs, heights, widths


def level_anchors(scale, ratios, shape, feature_stride, anchor_stride=1):
    """Anchors of one level in pixels.

    scale: side of a ratio-1 anchor in pixels; ratios: [R];
    shape: (feature height, feature width) -> [Hl * Wl * R, 4]
    """
    ys, xs, heights, widths = _level_grid(scale, ratios, shape, feature_stride, anchor_stride)
    cy, cx = ops.meshgrid(ys, xs, indexing="ij")  # [Hl, Wl]
    centers = ops.stack([cy, cx, cy, cx], axis=-1)[:, :, None, :]  # [Hl, Wl, 1, 4]
    half = 0.5 * ops.stack([-heights, -widths, heights, widths], axis=-1)  # [R, 4]
    return ops.reshape(centers + half, (-1, 4))


def pyramid_anchors(image_shape, scales, ratios, strides, anchor_stride=1, normalized=True):
    """All anchors of an image of `image_shape` (height, width, ...).

    scales: [L] one scale per level; strides: [L] feature strides;
    returns [A, 4], normalised to [0, 1] (see box_ops.normalize) unless
    `normalized=False`.
    """
    shapes = feature_shapes(image_shape, strides)
    anchors = ops.concatenate(
        [
            level_anchors(scale, ratios, shape, stride, anchor_stride)
            for scale, stride, shape in zip(scales, strides, shapes)
        ],
        axis=0,
    )
    if normalized:
        anchors = box_ops.normalize(anchors, _size(image_shape))
    return anchors


def pyramid_iou(image_shape, scales, ratios, strides, boxes, anchor_stride=1):
    """IoU of every pyramid anchor (in pixels) with every box, computed fast.

    Equal, bit for bit, to `box_ops.iou(pyramid_anchors(..., normalized=False),
    boxes)`, but the anchors of a level form a grid of rows x columns x
    ratios, so the overlaps are computed per row and per column and only
    multiplied out: about a third of the work on [A, K] arrays.
    boxes: [..., K, 4] pixels -> [..., A, K] (leading dims: e.g. images)
    """
    boxes = ops.cast(ops.convert_to_tensor(boxes), "float32")
    lead = tuple(ops.shape(boxes)[:-2])
    k = ops.shape(boxes)[-1 - 1]
    box_area = box_ops.area(boxes)[..., None, None, :]  # [..., 1, 1, K]
    # Each corner [..., K] -> [..., 1, 1, K], against the level's [Hl | Wl, R, 1].
    by1, bx1, by2, bx2 = (boxes[..., i][..., None, None, :] for i in range(4))
    levels = []
    for scale, stride, shape in zip(scales, strides, feature_shapes(image_shape, strides)):
        ys, xs, heights, widths = _level_grid(scale, ratios, shape, stride, anchor_stride)
        ay1, ay2 = ys[:, None] - 0.5 * heights, ys[:, None] + 0.5 * heights  # [Hl, R]
        ax1, ax2 = xs[:, None] - 0.5 * widths, xs[:, None] + 0.5 * widths  # [Wl, R]
        # Overlaps per row and per column with each box: [..., Hl, R, K], [..., Wl, R, K].
        oy = ops.maximum(ops.minimum(ay2[..., None], by2) - ops.maximum(ay1[..., None], by1), 0.0)
        ox = ops.maximum(ops.minimum(ax2[..., None], bx2) - ops.maximum(ax1[..., None], bx1), 0.0)
        inter = oy[..., :, None, :, :] * ox[..., None, :, :, :]  # [..., Hl, Wl, R, K]
        anchor_area = (ay2 - ay1)[:, None] * (ax2 - ax1)[None, :]  # [Hl, Wl, R]
        union = anchor_area[..., None] + box_area[..., None, :, :, :] - inter
        levels.append(ops.reshape(box_ops.divide_no_nan(inter, union), (*lead, -1, k)))
    return ops.concatenate(levels, axis=-2)


def num_anchors(image_height, image_width, strides, num_ratios, anchor_stride=1):
    """Number of anchors of an image (static Python arithmetic)."""
    total = 0
    for stride in strides:
        fh = math.ceil(image_height / stride)
        fw = math.ceil(image_width / stride)
        total += math.ceil(fh / anchor_stride) * math.ceil(fw / anchor_stride) * num_ratios
    return total


@dataclasses.dataclass(frozen=True)
class Anchors:
    """The anchors of a feature pyramid: one scale per level, the same
    ratios at every location, on every `stride`-th feature cell.

    scales: [L] sides of a ratio-1 anchor, pixels of the molded image
        (RPN_ANCHOR_SCALES); ratios: [R] width / height (RPN_ANCHOR_RATIOS);
    strides: [L] feature strides of the levels (BACKBONE_STRIDES);
    stride: anchor stride in feature cells (RPN_ANCHOR_STRIDE).
    """

    scales: tuple
    ratios: tuple
    strides: tuple
    stride: int

    def __post_init__(self):
        object.__setattr__(self, "scales", tuple(self.scales))
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))
        object.__setattr__(self, "strides", tuple(self.strides))
        if len(self.scales) != len(self.strides):
            raise ValueError(f"one anchor scale per level: {len(self.scales)} scales, "
                             f"{len(self.strides)} strides")

    @property
    def per_location(self):
        """R: anchors at each feature-map location (the RPN's outputs per cell)."""
        return len(self.ratios)

    def boxes(self, image_shape, normalized=True):
        """All anchors [A, 4] of a molded image of (height, width, ...)."""
        return pyramid_anchors(image_shape, self.scales, self.ratios, self.strides,
                               self.stride, normalized)

    def iou(self, image_shape, boxes):
        """IoU [A, K] of every anchor (pixels) with boxes [K, 4] (pixels)."""
        return pyramid_iou(image_shape, self.scales, self.ratios, self.strides, boxes,
                           self.stride)

    def count(self, height, width):
        """A of a molded image of height x width (static)."""
        return num_anchors(height, width, self.strides, len(self.ratios), self.stride)
