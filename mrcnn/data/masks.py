"""Instance masks: boxes from masks, mini-masks, and pasting masks back.

Shape shorthand:
    H, W: image height and width; N: instances
    masks: [H, W, N] bool, Matterport's layout for full-size masks
    mini: [N, h, w] masks resampled inside their boxes (56 x 56 mini-masks,
        28 x 28 head outputs); instances first, as `crop_and_resize` wants
    boxes: [N, (y1, x1, y2, x2)] in pixels, (y2, x2) exclusive

Resampling is done with `tf.image.crop_and_resize` given boxes that place
output pixel centres at the centres of the matching source pixels (the
half-pixel convention of an ordinary image resize), so a mini-mask pasted
back lands on the pixels it came from.
"""

import tensorflow as tf

from mrcnn.modeling.crop import resample_boxes

__all__ = ["boxes_from_masks", "mini_masks", "paste_masks", "paste_masks_first",
           "resample_boxes",
           "transform_instances"]


def boxes_from_masks(masks):
    """Tight box around each mask; all-zero box for an empty mask.

    masks: [H, W, N] bool -> int32 [N, 4]
    """
    masks = tf.cast(masks, tf.bool)
    rows = tf.reduce_any(masks, axis=1)  # [H, N]
    cols = tf.reduce_any(masks, axis=0)  # [W, N]

    def first_last(hits):  # [S, N] -> ([N], [N]) first index and last + 1
        size = tf.shape(hits)[0]
        idx = tf.range(size)[:, None]
        first = tf.reduce_min(tf.where(hits, idx, size), axis=0)
        last = tf.reduce_max(tf.where(hits, idx + 1, 0), axis=0)
        return first, last

    y1, y2 = first_last(rows)
    x1, x2 = first_last(cols)
    boxes = tf.stack([y1, x1, y2, x2], axis=-1)
    nonempty = tf.reduce_any(rows, axis=0)[:, None]
    return tf.where(nonempty, boxes, 0)


def mini_masks(masks, boxes, shape):
    """Resample each mask inside its box to `shape` (Matterport's mini-mask).

    masks: [H, W, N] bool, boxes: [N, 4] pixels -> [N, shape[0], shape[1]] bool
    """
    # uint8, not float: a quarter of the memory traffic for full-size masks.
    image = tf.transpose(tf.cast(masks, tf.uint8), [2, 0, 1])[..., None]  # [N, H, W, 1]
    # A zero border: samples just outside the image see what they see just
    # outside any tight box, instead of crop_and_resize's cut-off.
    image = tf.pad(image, [[0, 0], [1, 1], [1, 1], [0, 0]])
    hw = tf.shape(image)[1:3]
    n = tf.shape(boxes)[0]
    crops = tf.image.crop_and_resize(
        image, resample_boxes(tf.cast(boxes, tf.float32) + 1.0, hw, shape), tf.range(n), shape
    )
    return crops[..., 0] >= 0.5


def paste_masks(mini, boxes, image_shape, threshold=0.5, chunk=32):
    """Paste masks given inside their boxes onto full images.

    mini: [N, h, w] float (probabilities) or bool, boxes: [N, 4] pixels (float
    allowed), image_shape: (H, W) (ints or int tensors) -> [H, W, N] bool. Work is done in chunks of
    `chunk` instances to bound memory for large images.
    """
    return tf.transpose(paste_masks_first(mini, boxes, image_shape, threshold, chunk), [1, 2, 0])


def paste_masks_first(mini, boxes, image_shape, threshold=0.5, chunk=32):
    """`paste_masks` with the instances first: -> [N, H, W] bool.

    N may be unknown until run time (inside a graph): the chunks are a
    `tf.while_loop` (a few iterations, never one per instance).
    """
    mini = tf.cast(mini, tf.float32)
    boxes = tf.cast(boxes, tf.float32)
    height, width = image_shape[0], image_shape[1]
    mh, mw = tf.shape(mini)[1], tf.shape(mini)[2]
    y1, x1, y2, x2 = tf.unstack(boxes, axis=-1)
    bh = tf.maximum(y2 - y1, 1e-6) / tf.cast(mh, tf.float32)
    bw = tf.maximum(x2 - x1, 1e-6) / tf.cast(mw, tf.float32)
    # A zero border of one cell, so pixels near the box edge interpolate
    # towards 0 instead of being cut off by crop_and_resize's extrapolation.
    mini = tf.pad(mini, [[0, 0], [1, 1], [1, 1]])[..., None]
    # The whole image, in pixel-edge coordinates of each padded mini-mask.
    fh, fw = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    regions = tf.stack([-y1 / bh, -x1 / bw, (fh - y1) / bh, (fw - x1) / bw], axis=-1) + 1.0
    crop_boxes = resample_boxes(regions, (mh + 2, mw + 2), (height, width))
    n = tf.shape(mini)[0]
    chunks = (n + chunk - 1) // chunk

    def paste(i, parts):
        start = i * chunk
        stop = tf.minimum(start + chunk, n)
        pasted = tf.image.crop_and_resize(
            mini[start:stop], crop_boxes[start:stop], tf.range(stop - start),
            tf.stack([height, width]), extrapolation_value=0.0)
        return i + 1, parts.write(i, pasted[..., 0] >= threshold)

    def pasted_chunks():
        parts = tf.TensorArray(tf.bool, size=chunks, infer_shape=False,
                               element_shape=tf.TensorShape([None, None, None]))
        _, parts = tf.while_loop(lambda i, _: i < chunks, paste, [0, parts],
                                 parallel_iterations=1)
        return parts.concat()

    return tf.cond(n > 0, pasted_chunks, lambda: tf.zeros(tf.stack([0, height, width]), tf.bool))


def transform_instances(boxes, mini, window, out_size, flip=False):
    """Move instances given as boxes + mini-masks into a new image frame.

    The new frame shows the source region `window` (y1, x1, y2, x2 in pixel
    edges, float) stretched to `out_size` (h, w), mirrored left-right when
    `flip`. This covers resizing, padding (a window larger than the image),
    cropping and flipping. Instances are cut at the window: a cut instance's
    mini-mask is resampled from the part of the old one that remains,
    trimmed to the rows and columns that still hold mask pixels, so its box
    stays tight; an uncut instance keeps its mini-mask (mirrored on a flip).

    boxes: [N, 4] pixels, mini: [N, h, w] bool, window: [4], flip: bool
    (a tensor is fine). Returns boxes [N, 4] float32 in output pixels,
    mini [N, h, w] bool, keep [N] bool (False: nothing of the instance is
    left; its box and mask are zeros).
    """
    boxes = tf.cast(boxes, tf.float32)
    mini = tf.cast(mini, tf.bool)
    window = tf.cast(window, tf.float32)
    mh, mw = tf.shape(mini)[1], tf.shape(mini)[2]
    fh, fw = tf.cast(mh, tf.float32), tf.cast(mw, tf.float32)
    origin = tf.concat([boxes[:, :2], boxes[:, :2]], axis=1)  # [N, 4]
    # Mini-mask cells per source pixel, per axis.
    cells = tf.stack([fh, fw, fh, fw])[None] / tf.maximum(
        tf.concat([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1), 1e-6)
    inside = tf.concat([tf.maximum(boxes[:, :2], window[None, :2]),
                        tf.minimum(boxes[:, 2:], window[None, 2:])], axis=1)
    region = (inside - origin) * cells  # the part left, in mini-mask cells
    cut = tf.reduce_any(tf.abs(inside - boxes) > 1e-6, axis=1)

    # Cells of the mini-mask that the region touches, and their tight extent.
    rows = tf.range(fh)[None, :]
    cols = tf.range(fw)[None, :]
    row_in = (rows + 1.0 > region[:, 0:1]) & (rows < region[:, 2:3])  # [N, h]
    col_in = (cols + 1.0 > region[:, 1:2]) & (cols < region[:, 3:4])  # [N, w]
    left = mini & row_in[:, :, None] & col_in[:, None, :]
    extent = tf.cast(boxes_from_masks(tf.transpose(left, [1, 2, 0])), tf.float32)
    tight = tf.concat([tf.maximum(region[:, :2], extent[:, :2]),
                       tf.minimum(region[:, 2:], extent[:, 2:])], axis=1)
    full = tf.stack([0.0, 0.0, fh, fw])[None]
    region = tf.where(cut[:, None], tight, full)
    keep = tf.reduce_any(left, axis=[1, 2]) & tf.reduce_all(region[:, 2:] > region[:, :2], axis=1)

    # Resample the cut ones (an uncut region samples every cell at its centre).
    padded = tf.pad(tf.cast(mini, tf.uint8), [[0, 0], [1, 1], [1, 1]])[..., None]
    resampled = tf.image.crop_and_resize(
        padded, resample_boxes(region + 1.0, (mh + 2, mw + 2), (mh, mw)),
        tf.range(tf.shape(mini)[0]), tf.stack([mh, mw]))[..., 0] >= 0.5
    new_mini = tf.where(cut[:, None, None], resampled, mini)
    keep = keep & tf.reduce_any(new_mini, axis=[1, 2])

    # Region (mini cells) -> source pixels -> output pixels.
    src = origin + region / cells
    out_h, out_w = tf.cast(out_size[0], tf.float32), tf.cast(out_size[1], tf.float32)
    scale = tf.stack([out_h, out_w, out_h, out_w]) / tf.concat([window[2:] - window[:2]] * 2, 0)
    out = (src - tf.concat([window[:2], window[:2]], 0)) * scale
    flip = tf.convert_to_tensor(flip, tf.bool)
    y1, x1, y2, x2 = tf.unstack(out, axis=1)
    out = tf.where(flip, tf.stack([y1, out_w - x2, y2, out_w - x1], axis=1), out)
    new_mini = tf.where(flip, tf.reverse(new_mini, axis=[2]), new_mini)
    out = tf.where(keep[:, None], out, 0.0)
    new_mini = new_mini & keep[:, None, None]
    return out, new_mini, keep
