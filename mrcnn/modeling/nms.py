"""Greedy non-maximum suppression with static shapes, in keras.ops.

Shape shorthand:
    B: images; K: candidate boxes per image; D: max_output_size (boxes kept)
    T: tile size; K' = K padded to a whole number of tiles (and to >= D)
    boxes: [B, K, (y1, x1, y2, x2)]

The result is that of `tf.image.non_max_suppression` (its NonMaxSuppressionV3
kernel), image by image: candidates in order of decreasing score; a box is
kept unless a box kept before it overlaps it with IoU > iou_threshold
(strictly greater); the IoU is the kernel's (each box's corners put in order
first; a box of zero area overlaps nothing); only scores > -inf are
candidates (NaN scores never are), so a caller drops a box by giving it the
score -inf. Equal scores are taken in index order (the kernel's order among
ties is its heap's); the tests compare the two on random boxes.

The output has a static size: D indices per image and a mask of the valid
ones, instead of a list as long as the kept boxes, so it compiles (XLA, JAX)
and batches without a map over images. Op by op on TensorFlow (jit off),
TensorFlow's kernel in a map over images gives the same and is faster
(`method`, kernels.py).

Algorithm (that of `tf.image.non_max_suppression_padded`, which keras-hub
also carries in keras.ops): the sorted boxes are cut into tiles of T. Tile t
is first suppressed by the kept boxes of tiles 0..t-1 ([T, T] IoU blocks),
then within itself: keep[j] = alive[j] and no kept i < j overlaps j, iterated
from keep = alive until nothing changes. Because "i < j" makes the relation
triangular, this fixed point is unique and is what the greedy loop gives
(every box is settled once the boxes before it are). The loop over tiles
ends when every image has D boxes or the candidates run out. Memory:
O(B T^2). Speed on 2 CPU cores (benchmarks/bench_roi_nms.py): as fast as
the kernel in a map_fn for the proposals (6000 -> 2000 or 1000).
"""

from keras import ops

from mrcnn.modeling import kernels

TILE_SIZE = 512


def non_max_suppression(boxes, scores, max_output_size, iou_threshold, tile_size=TILE_SIZE,
                        method="auto"):
    """Indices of the boxes greedy NMS keeps, best first, per image.

    boxes: [B, K, 4]; scores: [B, K]; max_output_size: D (int);
    iou_threshold: float in [0, 1]; tile_size: T (at most; K itself when
    smaller); method: "tiles" (this module's algorithm, keras.ops),
    "kernel" (TensorFlow's kernel per image, op by op only) or "auto" (the
    kernel where it can run: kernels.py) -> indices int32 [B, D] into K (0
    in the unused slots), valid bool [B, D] (the first `sum(valid)` slots
    are the kept boxes).
    """
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
    if method == "auto":
        method = "kernel" if kernels.tensorflow_op_by_op() else "tiles"
    if method == "kernel":
        return _by_kernel(boxes, scores, max_output_size, iou_threshold)
    if method != "tiles":
        raise ValueError(f"method must be 'auto', 'tiles' or 'kernel', got {method!r}")
    boxes = ops.convert_to_tensor(boxes, "float32")
    scores = ops.convert_to_tensor(scores, "float32")
    batch, k = ops.shape(scores)[0], ops.shape(scores)[1]
    # Candidates are the finite-or-+inf scores, best first; the rest sort last.
    candidate = scores > float("-inf")
    _, order = ops.top_k(ops.where(candidate, scores, float("-inf")), k=k)
    candidate = ops.take_along_axis(candidate, order, axis=1)
    boxes = ops.take_along_axis(boxes, order[..., None], axis=1)

    if isinstance(k, int):
        tile = max(1, min(tile_size, k))
        padded = -(-max(k, max_output_size) // tile) * tile
    else:  # TensorFlow, K unknown while tracing
        tile = tile_size
        padded = (ops.maximum(k, max_output_size) + tile - 1) // tile * tile
    boxes = ops.concatenate([boxes, ops.zeros((batch, padded - k, 4), "float32")], axis=1)
    candidate = ops.concatenate([candidate, ops.zeros((batch, padded - k), "bool")], axis=1)
    num_tiles = padded // tile

    # Corners in order and areas, once: [B, K' / T, T, 5].
    y1, x1, y2, x2 = (boxes[..., i] for i in range(4))
    ymin, xmin = ops.minimum(y1, y2), ops.minimum(x1, x2)
    ymax, xmax = ops.maximum(y1, y2), ops.maximum(x1, x2)
    area = (ymax - ymin) * (xmax - xmin)
    tiles = ops.reshape(ops.stack([ymin, xmin, ymax, xmax, area], axis=-1),
                        (batch, num_tiles, tile, 5))
    candidate = ops.reshape(candidate, (batch, num_tiles, tile))
    later = ops.arange(tile)[:, None] < ops.arange(tile)[None, :]  # [T, T]: i before j

    def overlaps(a, b):
        """a, b: [B, T, 5] -> bool [B, T, T], IoU(a_i, b_j) > iou_threshold"""
        return _iou(a[:, :, None, :], b[:, None, :, :]) > iou_threshold

    def tile_step(t, keep):
        current = ops.take(tiles, t, axis=1)  # [B, T, 5]

        def by_earlier_tile(s, alive):
            kept = ops.take(keep, s, axis=1)
            hit = ops.any(overlaps(ops.take(tiles, s, axis=1), current) & kept[..., None], axis=1)
            return alive & ~hit

        alive = ops.fori_loop(0, t, by_earlier_tile, ops.take(candidate, t, axis=1))
        suppresses = overlaps(current, current) & later  # [B, T, T]

        def settle(kept, _):
            new = alive & ~ops.any(suppresses & kept[..., None], axis=1)
            return new, ops.any(new != kept)

        kept, _ = ops.while_loop(lambda kept, changed: changed, settle,
                                  (alive, ops.convert_to_tensor(True)))
        return t + 1, ops.where((ops.arange(num_tiles) == t)[None, :, None], kept[:, None], keep)

    def more(t, keep):
        # Another tile, while an image wants more boxes and the tile has
        # candidates (they come first: the rest of the tiles have none).
        counts = ops.sum(ops.cast(keep, "int32"), axis=(1, 2))
        next_has_any = ops.any(ops.take(candidate, ops.minimum(t, num_tiles - 1), axis=1))
        return (t < num_tiles) & (ops.min(counts) < max_output_size) & next_has_any

    keep = ops.zeros((batch, num_tiles, tile), "bool")
    _, keep = ops.while_loop(more, tile_step, (ops.convert_to_tensor(0, "int32"), keep))
    keep = ops.reshape(keep, (batch, padded))

    # The first D kept positions, in order: rank kept ones by -position.
    rank = ops.where(keep, padded - ops.arange(padded, dtype="int32")[None], 0)
    rank = ops.top_k(rank, k=max_output_size)[0]
    valid = rank > 0
    position = ops.where(valid, padded - rank, 0)
    indices = ops.take_along_axis(order, ops.minimum(position, k - 1), axis=1)
    return ops.where(valid, ops.cast(indices, "int32"), 0), valid


def _by_kernel(boxes, scores, max_output_size, iou_threshold):
    """tf.image.non_max_suppression image by image, padded to D: the
    candidates, order and IoU rule this module reproduces. Op by op, its
    kernel is 1.5-3x faster than the tiles (10-15 ms less per detect at
    1024 x 2048, docs/benchmarks.md "Stages")."""
    import tensorflow as tf

    def one_image(args):
        keep = tf.image.non_max_suppression(args[0], args[1], max_output_size, iou_threshold)
        count = tf.shape(keep)[0]
        return (tf.pad(keep, [[0, max_output_size - count]]),
                tf.range(max_output_size) < count)

    return tf.map_fn(one_image, (tf.cast(boxes, tf.float32), tf.cast(scores, tf.float32)),
                     fn_output_signature=(tf.TensorSpec([max_output_size], tf.int32),
                                          tf.TensorSpec([max_output_size], tf.bool)))


def _iou(a, b):
    """IoU as the NMS kernel computes it. a, b: [..., (ymin, xmin, ymax,
    xmax, area)], broadcast -> [...]. Where a box has no area the kernel
    says 0 and this gives 0 or NaN (0 / 0): neither exceeds a threshold >= 0."""
    inter_h = ops.maximum(ops.minimum(a[..., 2], b[..., 2]) - ops.maximum(a[..., 0], b[..., 0]),
                          0.0)
    inter_w = ops.maximum(ops.minimum(a[..., 3], b[..., 3]) - ops.maximum(a[..., 1], b[..., 1]),
                          0.0)
    inter = inter_h * inter_w
    return inter / (a[..., 4] + b[..., 4] - inter)
