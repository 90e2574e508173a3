"""Instance masks in NumPy: boxes from masks, mini-masks, moving instances.

Shape shorthand, as in mrcnn/data/masks.py:
    H, W: image height and width; N: instances; h, w: mini-mask size
    masks: [H, W, N] bool, full-size instance masks
    mini: [N, h, w] bool, each mask resampled inside its box
    boxes: [N, (y1, x1, y2, x2)] pixels, (y2, x2) exclusive

The TensorFlow functions of mrcnn/data/masks.py run in the tf.data graph;
these are their NumPy twins, for what must run without TensorFlow: the
instance records of mrcnn/data/mask_cache.py and the worker processes of
the PyDataset feeder (mrcnn/data/py_feeder.py), where starting a Keras
backend (keras.ops) in each forked worker is not an option. Resampling
repeats `tf.image.crop_and_resize`'s float32 sampling operation by
operation (the sampling mrcnn/modeling/crop.py documents), so the twins
give the same masks as the TensorFlow functions, ties at 0.5 included
(tests/mrcnn/data/test_instances.py).
"""

import mmap

import numpy as np


def boxes_from_masks(masks):
    """Tight box around each mask; all-zero box for an empty mask.

    masks: [H, W, N] bool -> int32 [N, 4]
    """
    masks = np.asarray(masks, bool)
    rows = masks.any(axis=1)  # [H, N]
    cols = masks.any(axis=0)  # [W, N]
    y1, y2 = _first_last(rows)
    x1, x2 = _first_last(cols)
    boxes = np.stack([y1, x1, y2, x2], axis=-1).astype(np.int32)
    return np.where(rows.any(axis=0)[:, None], boxes, 0)


def _first_last(hits):
    """hits: [S, N] bool -> first index [N] and last index + 1 [N] of each column."""
    size = hits.shape[0]
    return hits.argmax(axis=0), size - hits[::-1].argmax(axis=0)


def mini_masks(masks, boxes, shape):
    """Resample each mask inside its box to `shape` (Matterport's mini-mask).

    masks: [H, W, N] bool, boxes: [N, 4] pixels -> [N, shape[0], shape[1]]
    bool, as masks.mini_masks (a zero border around the image).
    """
    masks = np.asarray(masks, bool)
    height, width, n = masks.shape

    def lookup(rows, cols):  # indices into the image with a 1-pixel zero border
        rows, cols = rows - 1, cols - 1
        valid = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
        values = masks[np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1),
                       np.arange(n)[:, None, None]]
        return np.where(valid, values, False).astype(np.float32)

    regions = np.asarray(boxes, np.float32).reshape(-1, 4) + np.float32(1.0)
    return resample(lookup, regions, (height + 2, width + 2), shape) >= 0.5


def resample(lookup, regions, source_size, out_size):
    """Bilinear samples of regions of N sources, as crop_and_resize takes them.

    lookup(rows, cols): int [N, h, 1] and [N, 1, w] -> float32 [N, h, w]:
    the pixels of each region's source (of `source_size` (H, W)); regions:
    float32 [N, 4] in the sources' pixel-edge coordinates, each sampled at
    `out_size` (h, w) cell centres (masks.resample_boxes), 0 off the source.
    -> float32 [N, h, w]
    """
    boxes = resample_boxes(regions, source_size, out_size)
    top, bottom, y_lerp, y_inside = sample_points(boxes[:, 0], boxes[:, 2], source_size[0],
                                                  out_size[0])
    left, right, x_lerp, x_inside = sample_points(boxes[:, 1], boxes[:, 3], source_size[1],
                                                  out_size[1])
    top, bottom, y_lerp = top[:, :, None], bottom[:, :, None], y_lerp[:, :, None]
    left, right, x_lerp = left[:, None, :], right[:, None, :], x_lerp[:, None, :]
    # The kernel's interpolation, in its order.
    upper = lookup(top, left)
    upper = upper + (lookup(top, right) - upper) * x_lerp
    lower = lookup(bottom, left)
    lower = lower + (lookup(bottom, right) - lower) * x_lerp
    out = upper + (lower - upper) * y_lerp
    return np.where(y_inside[:, :, None] & x_inside[:, None, :], out, np.float32(0.0))


def resample_boxes(regions, source_size, out_size):
    """crop_and_resize boxes [N, 4] (normalised) that sample `regions`
    [N, 4] (pixel edges of a source of `source_size`) at `out_size` cell
    centres; float32 throughout, as mrcnn.modeling.crop.resample_boxes."""
    f32 = np.float32
    regions = np.asarray(regions, f32)
    (sh, sw), (oh, ow) = (f32(v) for v in source_size), (f32(v) for v in out_size)
    half, one = f32(0.5), f32(1.0)
    starts, stops = regions[:, :2], regions[:, 2:]
    cell = (stops - starts) / np.array([oh, ow], f32)
    first = starts + half * cell - half
    last = first + (np.array([oh, ow], f32) - one) * cell
    extent = np.maximum(np.array([sh, sw], f32) - one, one)
    return np.concatenate([first / extent, last / extent], axis=1)


def sample_points(low, high, size, count):
    """crop_and_resize's sample points along one axis of each box.

    low, high: float32 [N] the box's edges (normalised); size: the source's
    side; count: points per box -> rows (or columns) below and above each
    point, int [N, count]; the weight of the one above, float32 [N, count];
    whether the point is on the source, bool [N, count].
    """
    f32 = np.float32
    extent = f32(size - 1)
    if count > 1:
        step = (high - low) * extent / f32(count - 1)
        points = (low * extent)[:, None] + np.arange(count, dtype=f32) * step[:, None]
    else:
        points = (f32(0.5) * (low + high) * extent)[:, None]
    inside = (points >= 0) & (points <= extent)
    points = np.where(inside, points, f32(0.0))
    below = np.floor(points)
    return below.astype(np.int64), np.ceil(points).astype(np.int64), points - below, inside


def paste_masks(mini, boxes, image_shape, threshold=0.5):
    """Paste masks given inside their boxes onto the whole image.

    masks.paste_masks in NumPy, pixel for pixel (its float32 sampling and
    interpolation, ties at `threshold` included), with the work bounded by
    the boxes: a pixel more than one pixel outside its box samples only the
    mini-mask's zero border, so only the pixels near each box are computed.

    mini: [N, h, w] probabilities (or bool); boxes: [N, 4] pixels (float
    allowed); image_shape: (H, W); threshold > 0 -> bool [H, W, N].
    """
    if not threshold > 0:
        raise ValueError(f"paste_masks: threshold must be > 0, got {threshold}")
    f32 = np.float32
    mini = np.asarray(mini, f32)
    boxes = np.asarray(boxes, f32).reshape(-1, 4)
    height, width = int(image_shape[0]), int(image_shape[1])
    n, mh, mw = mini.shape
    out = zeros_in_small_pages((height, width, n))
    if n == 0:
        return out
    y1, x1, y2, x2 = boxes.T
    bh = np.maximum(y2 - y1, f32(1e-6)) / f32(mh)
    bw = np.maximum(x2 - x1, f32(1e-6)) / f32(mw)
    padded = np.pad(mini, [(0, 0), (1, 1), (1, 1)])  # a zero border of one cell
    regions = np.stack([-y1 / bh, -x1 / bw, (f32(height) - y1) / bh,
                        (f32(width) - x1) / bw], axis=-1) + f32(1.0)
    crop = resample_boxes(regions, (mh + 2, mw + 2), (height, width))
    top, bottom, y_lerp, y_on = sample_points(crop[:, 0], crop[:, 2], mh + 2, height)
    left, right, x_lerp, x_on = sample_points(crop[:, 1], crop[:, 3], mw + 2, width)
    # Rows and columns that touch a mask cell (not only the zero border):
    # one contiguous run of each per instance, its box and a pixel around it.
    rows = y_on & (bottom >= 1) & (top <= mh)  # [N, H]
    cols = x_on & (right >= 1) & (left <= mw)  # [N, W]
    first_col, col_count = cols.argmax(axis=1), cols.sum(axis=1)
    span = int(col_count.max())  # K, the widest run of columns
    if span == 0:
        return out
    # The kernel's interpolation along x, for every mini-mask row, over each
    # instance's columns: [N, h + 2, K] (its rows `top` and `bottom` are the
    # kernel's `upper` and `lower`).
    window = np.minimum(first_col[:, None] + np.arange(span), width - 1)  # [N, K]
    left, right, x_lerp = (np.take_along_axis(v, window, axis=1)[:, None, :]
                           for v in (left, right, x_lerp))
    at_left = np.take_along_axis(padded, left, axis=2)
    along_x = at_left + (np.take_along_axis(padded, right, axis=2) - at_left) * x_lerp
    inst, y = np.nonzero(rows)  # R runs of pixels, one per (instance, row)
    counts = col_count[inst]
    # Flat indices of each run's first pixel, then of every pixel (P).
    upper_at = (inst * (mh + 2) + top[inst, y]) * span
    lower_at = (inst * (mh + 2) + bottom[inst, y]) * span
    out_at = (y * width + first_col[inst]) * n + inst
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    along_x = along_x.reshape(-1)
    upper = along_x[np.repeat(upper_at, counts) + offset]
    lower = along_x[np.repeat(lower_at, counts) + offset]
    on = upper + (lower - upper) * np.repeat(y_lerp[inst, y], counts) >= threshold
    out.reshape(-1)[(np.repeat(out_at, counts) + offset * n)[on]] = True
    return out


def zeros_in_small_pages(shape):
    """np.zeros(shape, bool), in fresh anonymous memory (mmap) that NumPy
    has not advised as transparent huge pages.

    Why: NumPy advises every large array as huge pages; where the kernel's
    THP defrag setting is "madvise" (a common default), a write to such an
    array may first compact memory to find a free 2 MB page. The pasted
    masks are large (1024 x 2048 x 100 is 200 MB) and mostly left zero:
    pasting 100 small masks into them took 0.25-0.56 s that way, against
    0.08 s in 4 KB pages (an AVX-512 Xeon VM, docs/benchmarks.md).
    """
    size = int(np.prod(shape))
    if size == 0:
        return np.zeros(shape, bool)
    # Private, as any array's memory is (copy-on-write in a forked process).
    private = {"flags": mmap.MAP_PRIVATE} if hasattr(mmap, "MAP_PRIVATE") else {}
    return np.frombuffer(mmap.mmap(-1, size, **private), bool).reshape(shape)


def transform_instances(boxes, mini, window, out_size, flip=False):
    """Move instances given as boxes + mini-masks into a new image frame.

    masks.transform_instances in NumPy: the new frame shows the source
    region `window` (y1, x1, y2, x2, pixel edges) stretched to `out_size`
    (h, w), mirrored left-right when `flip`. boxes: [N, 4] pixels, mini:
    [N, h, w] bool -> boxes float32 [N, 4] in output pixels, mini bool
    [N, h, w], keep bool [N] (False: nothing of the instance is left; its
    box and mask are zeros).
    """
    f32 = np.float32
    boxes = np.asarray(boxes, f32).reshape(-1, 4)
    mini = np.asarray(mini, bool)
    window = np.asarray(window, f32)
    _, mh, mw = mini.shape
    fh, fw = f32(mh), f32(mw)
    origin = np.concatenate([boxes[:, :2], boxes[:, :2]], axis=1)
    sizes = np.concatenate([boxes[:, 2:] - boxes[:, :2]] * 2, axis=1)
    cells = np.array([fh, fw, fh, fw], f32)[None] / np.maximum(sizes, f32(1e-6))
    inside = np.concatenate([np.maximum(boxes[:, :2], window[None, :2]),
                             np.minimum(boxes[:, 2:], window[None, 2:])], axis=1)
    region = (inside - origin) * cells  # the part left, in mini-mask cells
    cut = (np.abs(inside - boxes) > f32(1e-6)).any(axis=1)

    # Cells of the mini-mask that the region touches, and their tight extent.
    rows, cols = np.arange(mh, dtype=f32)[None], np.arange(mw, dtype=f32)[None]
    row_in = (rows + f32(1.0) > region[:, 0:1]) & (rows < region[:, 2:3])  # [N, h]
    col_in = (cols + f32(1.0) > region[:, 1:2]) & (cols < region[:, 3:4])  # [N, w]
    left = mini & row_in[:, :, None] & col_in[:, None, :]
    extent = boxes_from_masks(left.transpose(1, 2, 0)).astype(f32)
    tight = np.concatenate([np.maximum(region[:, :2], extent[:, :2]),
                            np.minimum(region[:, 2:], extent[:, 2:])], axis=1)
    region = np.where(cut[:, None], tight, np.array([0, 0, fh, fw], f32)[None])
    keep = left.any(axis=(1, 2)) & (region[:, 2:] > region[:, :2]).all(axis=1)

    # Resample the cut ones (an uncut region samples every cell at its centre).
    new_mini = mini.copy()
    if cut.any():
        padded = np.pad(mini[cut], [(0, 0), (1, 1), (1, 1)]).astype(f32)
        index = np.arange(len(padded))[:, None, None]
        new_mini[cut] = resample(lambda r, c: padded[index, r, c], region[cut] + f32(1.0),
                                 (mh + 2, mw + 2), (mh, mw)) >= 0.5
    keep &= new_mini.any(axis=(1, 2))

    # Region (mini cells) -> source pixels -> output pixels.
    src = origin + region / cells
    out_h, out_w = f32(out_size[0]), f32(out_size[1])
    scale = np.array([out_h, out_w, out_h, out_w], f32) / np.concatenate(
        [window[2:] - window[:2]] * 2)
    out = (src - np.concatenate([window[:2], window[:2]])) * scale
    if flip:
        out = np.stack([out[:, 0], out_w - out[:, 3], out[:, 2], out_w - out[:, 1]], axis=1)
        new_mini = new_mini[:, :, ::-1]
    out = np.where(keep[:, None], out, f32(0.0))
    return out, new_mini & keep[:, None, None], keep


def normalize_boxes(boxes, shape):
    """Pixel boxes [..., 4] -> [0, 1] coordinates of an image of `shape`
    (height, width, ...), float32: mrcnn.modeling.box_ops.normalize (keras.ops)
    for NumPy callers that must not start a Keras backend, equal to it (tests)."""
    height, width = np.float32(shape[0]), np.float32(shape[1])
    one = np.float32(1.0)
    scale = np.array([height - one, width - one, height - one, width - one], np.float32)
    return (np.asarray(boxes, np.float32) - np.array([0, 0, 1, 1], np.float32)) / scale

