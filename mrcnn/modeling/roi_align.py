"""ROIAlign over the feature pyramid (Matterport's PyramidROIAlign).

Shape shorthand:
    B: images; N: boxes per image; C: feature channels; P: pool size
    boxes: [B, N, (y1, x1, y2, x2)] normalised to [0, 1]
    feature_maps: [P2, P3, P4, P5], each [B, Hl, Wl, C]
    S: the positions of all levels, sum of Hl * Wl

Each box is pooled from one level, chosen by its size as in the FPN paper:
level = 4 + round(log2(sqrt(box area in pixels) / 224)), clamped to 2..5.
Sampling is that of `tf.image.crop_and_resize` (bilinear) on normalised
boxes, as Matterport does, so its published weights see the features they
were trained on: P x P points per box, the box corners on the first and
last ones (y = y1 * (Hl - 1) + i * (y2 - y1) * (Hl - 1) / (P - 1)), and a
point outside the map [0, Hl - 1] x [0, Wl - 1] gives 0. The result is
float32 whatever the features' dtype, as crop_and_resize's.

Two ways to compute it, equal (tests: values and gradients, eager, in a
graph and under XLA):

- "gather": the four levels are flattened into one table of B * S rows of C
  features, and the four neighbours of every sample point of every box are
  gathered from it by row index (the approach of the TF Model Garden's
  `multilevel_crop_and_resize`). All boxes of all levels are pooled at once,
  in keras.ops with static shapes (no split by level, no zero-size tensor
  when a level has no box), so it runs under XLA and on every Keras
  backend. The sample positions and the interpolation repeat the kernel's
  float32 operations in its order, each rounded as the kernel rounds it,
  also where a graph compiler rewrites them (crop.py).
- "crop_and_resize": the kernel, level by level (boxes split with tf.where,
  so the shapes depend on the boxes). TensorFlow only, and it has no XLA
  kernel; but on a CPU it is 2.5-3.5x faster than the gathers forward and
  3.5x forward + backward, which TensorFlow runs one op at a time, each
  writing its whole result (the four gathered corners, then each step of
  the interpolation), where the kernel makes one pass
  (benchmarks/bench_roi_nms.py). Under XLA the gathers fuse into one pass.

"auto" (the default) takes the kernel on the TensorFlow backend outside XLA
(`tf.function(jit_compile=False)`, as Keras' fit and detect run this model
today) unless the features are bfloat16, and the gathers everywhere else.
"""

from keras import ops

from mrcnn.modeling import crop, kernels

MIN_LEVEL, MAX_LEVEL = 2, 5


def roi_levels(boxes, image_shape):
    """Pyramid level (2..5) of each box, whatever the box.

    A box with a negative area (y2 < y1 but x2 > x1) or NaN corners goes to
    level 2: its NaN level would otherwise become INT_MIN, match no level,
    and drop the box from the pooled features.

    boxes: [..., 4] normalised, image_shape: (H, W, ...) pixels -> int32 [...]
    """
    boxes = ops.cast(boxes, "float32")
    h = boxes[..., 2] - boxes[..., 0]
    w = boxes[..., 3] - boxes[..., 1]
    hw = ops.cast(ops.convert_to_tensor(image_shape)[:2], "float32")
    side = ops.sqrt(ops.maximum(h * w, 0.0) * hw[0] * hw[1])
    level = 4.0 + ops.round(ops.log(ops.maximum(side, 1e-6) / 224.0) / ops.log(2.0))
    level = ops.clip(level, MIN_LEVEL, MAX_LEVEL)
    return ops.cast(ops.where(ops.isnan(level), float(MIN_LEVEL), level), "int32")


def pyramid_roi_align(boxes, feature_maps, image_shape, pool_size, method="auto"):
    """Pool a fixed-size feature patch for every box.

    boxes: [B, N, 4]; feature_maps: [P2..P5]; image_shape: the molded image's
    (H, W); pool_size: int; method: "auto", "gather" or "crop_and_resize"
    (module docstring) -> float32 [B, N, pool_size, pool_size, C]
    """
    if method == "auto":
        method = "crop_and_resize" if _kernel_available(feature_maps[0].dtype) else "gather"
    if method not in ("gather", "crop_and_resize"):
        raise ValueError(f"method must be 'auto', 'gather' or 'crop_and_resize', got {method!r}")
    # Gradients flow to the features, never back into the boxes. Diverged
    # training can give NaN / Inf boxes, which roi_levels cannot place (nor
    # crop_and_resize take): they pool from an empty box at (0, 0) instead,
    # so the output keeps its N rows (the losses see the NaNs).
    boxes = ops.stop_gradient(ops.cast(boxes, "float32"))
    boxes = ops.where(ops.isfinite(boxes), boxes, 0.0)
    levels = roi_levels(boxes, image_shape)  # [B, N]
    pool = _pool_by_gathers if method == "gather" else _pool_by_kernel
    return pool(boxes, levels, feature_maps, pool_size)


def _kernel_available(dtype):
    """Whether tf.image.crop_and_resize can run here: the TensorFlow backend,
    not tracing for XLA, features not in bfloat16 (which it rejects)."""
    return kernels.tensorflow_op_by_op() and "bfloat16" not in str(dtype)


def _pool_by_kernel(boxes, levels, feature_maps, pool_size):
    """tf.image.crop_and_resize, one call per level, on the boxes of that
    level. boxes: [B, N, 4] finite; levels: int32 [B, N] -> [B, N, P, P, C]"""
    import tensorflow as tf

    batch, n = tf.shape(boxes)[0], tf.shape(boxes)[1]
    flat, levels = tf.reshape(boxes, [-1, 4]), tf.reshape(levels, [-1])
    image_index = tf.repeat(tf.range(batch), n)
    pooled, order = [], []
    for level, fmap in zip(range(MIN_LEVEL, MAX_LEVEL + 1), feature_maps):
        idx = tf.cast(tf.where(levels == level)[:, 0], tf.int32)
        pooled.append(tf.image.crop_and_resize(
            fmap, tf.gather(flat, idx), tf.gather(image_index, idx), [pool_size, pool_size]))
        order.append(idx)
    pooled = tf.concat(pooled, axis=0)
    # Put the boxes back in their input order.
    pooled = tf.gather(pooled, tf.argsort(tf.concat(order, axis=0)))
    channels = feature_maps[0].shape[-1]
    return tf.reshape(pooled, [batch, n, pool_size, pool_size, channels])


def _pool_by_gathers(boxes, levels, feature_maps, pool_size):
    """Bilinear sampling by gathers from all levels at once, in keras.ops.
    boxes: [B, N, 4] finite; levels: int32 [B, N] -> [B, N, P, P, C]"""
    table, heights, widths, starts = _flatten_levels(feature_maps)
    batch = ops.shape(feature_maps[0])[0]
    level = levels - MIN_LEVEL
    height, width = ops.take(heights, level), ops.take(widths, level)  # [B, N]
    # Row of the level's first position in the table, per box: [B, N].
    first = ops.take(starts, level) + ops.arange(batch, dtype="int32")[:, None] * starts[-1]

    return crop.bilinear(table, first, height, width, boxes, (pool_size, pool_size))


def _flatten_levels(feature_maps):
    """The levels as one table and where each level sits in it.

    feature_maps: [P2..P5], each [B, Hl, Wl, C] -> table [B * S, C] (image
    by image, then level by level, row-major), heights, widths int32 [4],
    starts int32 [5] (first row of each level within an image's S rows,
    then S).
    """
    channels = feature_maps[0].shape[-1]
    batch = ops.shape(feature_maps[0])[0]
    shapes = [ops.shape(f) for f in feature_maps]
    heights = ops.stack([ops.convert_to_tensor(s[1], "int32") for s in shapes])
    widths = ops.stack([ops.convert_to_tensor(s[2], "int32") for s in shapes])
    starts = ops.concatenate([ops.zeros([1], "int32"), ops.cumsum(heights * widths)])
    table = ops.concatenate(
        [ops.reshape(f, (batch, -1, channels)) for f in feature_maps], axis=1)
    return ops.reshape(table, (-1, channels)), heights, widths, starts
