"""`tf.image.crop_and_resize`'s bilinear sampling, in keras.ops.

Shape shorthand:
    K: boxes; N: images; (H, W): an image's size; C: channels
    (ch, cw): the crop size
    boxes: [..., (y1, x1, y2, x2)] normalised to the image they sample
        ((0, 0, 1, 1) spans the image's first to last pixel centre)

The kernel's sampling, as Matterport relies on it: ch x cw points per box,
the box corners on the first and last ones (y = y1 * (H - 1) + i * (y2 - y1)
* (H - 1) / (ch - 1)), a point outside [0, H - 1] x [0, W - 1] gives 0
(extrapolation value 0). The points and the interpolation repeat the
kernel's float32 operations in its order, each rounded as it rounds them,
so the results equal the kernel's (tests). Everything is a gather from a
flat table of pixels with static shapes: it runs under XLA and on every
Keras backend. Used by ROIAlign (roi_align.py, all pyramid levels in one
table) and by the mask targets (targets.py).
"""

from keras import ops


def sample_points(low, high, size, count):
    """crop_and_resize's sample points along one axis of each box.

    low, high: [...] the box's edges (normalised); size: int32 [...] (or an
    int), the image's side (H or W); count: points per box (ch or cw) ->
    the rows (or columns) below and above each point, int32 [..., count];
    the interpolation weight of the one above, float32 [..., count]; whether
    the point is on the image, bool [..., count].
    """
    extent = ops.cast(size - 1, "float32")
    if count > 1:
        # The kernel's float32 operations, each rounded as it rounds them:
        # the last point of a box whose edge is on the border lands one
        # ulp inside or outside the image (a value or 0) by that rounding.
        # Graph compilers change roundings where they can: grappler and XLA
        # turn a division by a constant into a multiplication by its rounded
        # reciprocal (so the quotient is taken in float64: rounded once to
        # float32, it is the correctly rounded float32 quotient either way),
        # and XLA fuses a multiplication and the addition after it into one
        # FMA (so `_barrier` sits between them).
        span = ops.cast((high - low) * extent, "float64")
        step = ops.cast(span / float(count - 1), "float32")
        offsets = _barrier(ops.arange(count, dtype="float32") * step[..., None])
        points = _barrier(low * extent)[..., None] + offsets
    else:
        points = (0.5 * (low + high) * extent)[..., None]
    extent = extent[..., None]
    inside = (points >= 0.0) & (points <= extent)
    points = ops.where(inside, points, 0.0)
    below = ops.floor(points)
    return (ops.cast(below, "int32"), ops.cast(ops.ceil(points), "int32"),
            points - below, inside)


def _barrier(x):
    """x, through an op that stops a compiler fusing the multiplication that
    made x with the addition that uses it into one FMA (one rounding less)."""
    return ops.minimum(x, ops.abs(x))


def bilinear(table, first, heights, widths, boxes, crop_size):
    """Bilinear crops of images stored as rows of one table.

    table: [rows, C], each image row-major from its row `first`;
    first, heights, widths: int32 [...] per box (its image's first row and
    size), or ints; boxes: [..., 4] finite; crop_size: (ch, cw)
    -> float32 [..., ch, cw, C]
    """
    ch, cw = crop_size
    top, bottom, y_lerp, y_inside = sample_points(boxes[..., 0], boxes[..., 2], heights, ch)
    left, right, x_lerp, x_inside = sample_points(boxes[..., 1], boxes[..., 3], widths, cw)
    first = ops.convert_to_tensor(first, "int32")[..., None, None]
    widths = ops.convert_to_tensor(widths, "int32")
    widths = widths[..., None, None] if len(widths.shape) else widths

    def corner(rows, cols):  # [..., ch], [..., cw] -> [..., ch, cw, C] float32
        index = first + rows[..., :, None] * widths + cols[..., None, :]
        return ops.cast(ops.take(table, index, axis=0), "float32")

    # The kernel's interpolation, in its order.
    x_lerp = x_lerp[..., None, :, None]
    upper = corner(top, left)
    upper = upper + (corner(top, right) - upper) * x_lerp
    lower = corner(bottom, left)
    lower = lower + (corner(bottom, right) - lower) * x_lerp
    crops = upper + (lower - upper) * y_lerp[..., :, None, None]
    inside = y_inside[..., :, None, None] & x_inside[..., None, :, None]
    return ops.where(inside, crops, 0.0)


def crop_and_resize(images, boxes, box_indices, crop_size):
    """`tf.image.crop_and_resize` (bilinear, extrapolation 0) in keras.ops.

    images: [N, H, W, C] with a static C; boxes: [..., 4] normalised;
    box_indices: int [...] the image of each box; crop_size: (ch, cw)
    -> float32 [..., ch, cw, C]. Boxes must be finite.
    """
    _, height, width, channels = ops.shape(images)
    table = ops.reshape(images, (-1, channels))
    first = ops.cast(box_indices, "int32") * (height * width)
    return bilinear(table, first, height, width, ops.cast(boxes, "float32"), crop_size)


def resample_boxes(regions, source_size, out_size):
    """`crop_and_resize` boxes that resample `regions` of a source grid.

    regions: [..., 4] float, in pixel-edge coordinates of a source of
    `source_size` (h, w); the region is resampled to `out_size` (h, w) with
    output pixel i centred at region start + (i + 0.5) * region size / out.
    Returns [..., 4] boxes in crop_and_resize's normalised coordinates.
    """
    regions = ops.cast(regions, "float32")
    sh, sw = (ops.cast(source_size[i], "float32") for i in range(2))
    oh, ow = (ops.cast(out_size[i], "float32") for i in range(2))
    y1, x1, y2, x2 = (regions[..., i] for i in range(4))
    dy = (y2 - y1) / oh
    dx = (x2 - x1) / ow
    first_y = y1 + 0.5 * dy - 0.5
    first_x = x1 + 0.5 * dx - 0.5
    last_y = first_y + (oh - 1.0) * dy
    last_x = first_x + (ow - 1.0) * dx
    # crop_and_resize divides by (size - 1); a 1-pixel source has one sample.
    ny = ops.maximum(sh - 1.0, 1.0)
    nx = ops.maximum(sw - 1.0, 1.0)
    return ops.stack([first_y / ny, first_x / nx, last_y / ny, last_x / nx], axis=-1)
