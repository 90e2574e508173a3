"""The training input pipeline on tf.data.

Two paths, chosen by `build_dataset`; both give the same batches:

- instance path (USE_MINI_MASK, and an augmentation that is None or has
  `apply_to_instances`, as `mrcnn.data.augmentation.FlipCrop`): per image, Python
  reads the image's instance record (boxes + mini-masks at the original
  resolution, from `mrcnn.data.mask_cache`, optionally cached on disk) and
  works out the resize; the graph decodes and resizes the image, and moves
  boxes and mini-masks through the resize and the augmentation without ever
  building full-size masks. An 8-bit PNG file of a Dataset whose
  `load_image` is the base one (`Dataset.load_image_file`) is decoded in the
  graph (`tf.io.decode_png`), outside the GIL, so images decode on every
  core at once; other images are decoded by `load_image` in Python. The
  graph's resize equals `resize_image`'s (values within rounding of a half
  may round the other way).
- mask path (otherwise): Python loads the image and its full-size masks
  (`load_mask`) and resizes both; the graph runs the augmentation on them
  and computes boxes and mini-masks from the result.

An image whose files fail to load (changed after the load-time check,
mrcnn/data/image_check.py) is skipped with a counted warning; more than
1 % of them stop the run (mrcnn/data/feed_failures.py). PNGs left to the
graph are read and checked chunk by chunk first (mrcnn/data/png_file.py),
so a truncated or damaged one fails there, in Python, like the others.

Then, in the graph: instances left empty are dropped, a random subset is
kept when there are more than MAX_GT_INSTANCES, and everything is padded.
The RPN anchor targets are not computed here but in the model's training
step (on the accelerator, as detectron2 does): matching ~500k anchors of a
1024 x 2048 image costs more CPU than everything else per image. Python steps
run in `tf.numpy_function`s, in parallel (one image per usable core),
holding the GIL: they are kept to the small parts (the instance record,
the resize geometry, FlipCrop's draw). `mrcnn.data.py_feeder.PyFeeder` gives
the same batches as NumPy arrays, without TensorFlow. Batches are dicts that
`MaskRCNNModel` consumes:

    image:        [B, H, W, 3] float32, mean pixel subtracted
    image_meta:   [B, 12 + NUM_CLASSES] float32 (see mrcnn/data/image.py)
    gt_class_ids: [B, MAX_GT_INSTANCES] int32 (0 = padding, < 0 = crowd)
    gt_boxes:     [B, MAX_GT_INSTANCES, 4] float32, normalised
    gt_masks:     [B, MAX_GT_INSTANCES, h, w] uint8 in {0, 1}; h, w =
                  MINI_MASK_SHAPE, or the image size without mini-masks
                  (not bool: Keras' fit under a tf.distribute strategy
                  averages a first batch over the replicas, which a bool
                  tensor cannot be)

All images of a batch must share one molded size: "square" and "crop" modes
guarantee it; "pad64", "fit64" and "none" do when the images have one size (as
Cityscapes does), otherwise use IMAGES_PER_GPU = 1.

augmentation: None, or a callable `(image, masks) -> (image, masks)` on
tensors (uint8 [H, W, 3], bool [H, W, N]) applied to both together; the
boxes are computed after it, and instances it empties are dropped. See
`mrcnn.data.augmentation` for the flips and crops and an imgaug adapter.
"""

import os

import numpy as np
import tensorflow as tf

from mrcnn.data import masks
from mrcnn.data.feed_failures import FeedFailures
from mrcnn.data.image import bilinear_taps, placement
from mrcnn.data.image_check import DECODE_ERRORS
from mrcnn.data.mask_cache import MiniMaskCache
from mrcnn.data.samples import (  # noqa: F401  (names of the API)
    frame,
    geometry,
    image_meta,
    instance_record,
    load_image_gt,
    load_image_instances,
    uses_instance_path,
)
from mrcnn.modeling import box_ops


def load_instances_for_graph(dataset, config, image_id, cache=None, rng=None):
    """The Python part of the instance path: what `mold_in_graph` needs.

    The image is left for the graph to decode (an 8-bit PNG file of a
    Dataset that reads files, `Dataset.load_image_file`) and to resize,
    both outside the GIL. Returns a tuple: PNG bytes (b"" when the image
    is decoded here), image uint8 [H0, W0, 3] at its original size ([0, 0,
    3] when it is left to the graph), the resize taps (rows: int32 [H', 2]
    indices, float32 [H', 2] weights; columns: [W', 2], [W', 2]; H' = 0
    when the image keeps its size; `image.bilinear_taps`), placement int32
    [4] (`image.placement`), then image_meta, class_ids, boxes, mini and
    frame as load_image_instances returns them.
    """
    png = dataset.load_image_file(image_id)
    if png is None:
        image = dataset.load_image(image_id)
        contents, shape = b"", image.shape
    else:
        image = np.zeros([0, 0, 3], np.uint8)
        contents, shape = png.contents, (png.height, png.width, 3)
    record = instance_record(dataset, config, image_id, shape, cache)
    size, window, scale, padding, crop = geometry(config, *shape[:2], rng)
    place = placement(size, padding, crop)
    meta = image_meta(dataset, image_id, shape, (*place[2:], 3), window, scale)
    if tuple(size) == tuple(shape[:2]):
        taps = (np.zeros([0, 2], np.int32), np.zeros([0, 2], np.float32)) * 2
    else:
        taps = (*bilinear_taps(shape[0], size[0]), *bilinear_taps(shape[1], size[1]))
    return (np.array(contents, dtype=object), image, *taps, np.array(place, np.int32), meta,
            record["class_ids"], record["boxes"], record["mini"],
            frame(shape, size, padding, crop))


def mold_in_graph(contents, image, rows, row_weights, cols, col_weights, place):
    """Graph part of the image: decode, resize, then pad or crop -> uint8 [H, W, 3].

    Arguments as load_instances_for_graph returns them: PNG `contents`
    (a string tensor, empty when `image` is given), the taps of a bilinear
    resize equal to `image.resize_with_taps` (and so to resize_image's but
    for values within float32 rounding of a half), and the placement.
    """
    image = tf.cond(tf.strings.length(contents) > 0,
                    lambda: tf.io.decode_png(contents, channels=3), lambda: image)
    image = tf.cond(tf.shape(rows)[0] > 0,
                    lambda: _resize_taps(image, rows, row_weights, cols, col_weights),
                    lambda: image)
    shape = tf.shape(image)
    y, x, h, w = tf.unstack(place)
    y0, x0 = tf.maximum(y, 0), tf.maximum(x, 0)
    part = image[y0:tf.minimum(y + h, shape[0]), x0:tf.minimum(x + w, shape[1])]
    part_shape = tf.shape(part)
    top, left = y0 - y, x0 - x
    return tf.pad(part, [[top, h - top - part_shape[0]], [left, w - left - part_shape[1]],
                         [0, 0]])


def _resize_taps(image, rows, row_weights, cols, col_weights):
    """uint8 [H, W, C] resized along each axis from two taps per pixel, then,
    as scikit-image's resize (clip=True), kept within the image's own value
    range (zeros beyond the edges only darken up to its minimum), rounded."""
    out = tf.cast(image, tf.float32)
    out = (tf.gather(out, rows[:, 0]) * row_weights[:, 0, None, None]
           + tf.gather(out, rows[:, 1]) * row_weights[:, 1, None, None])
    out = (tf.gather(out, cols[:, 0], axis=1) * col_weights[None, :, 0, None]
           + tf.gather(out, cols[:, 1], axis=1) * col_weights[None, :, 1, None])
    low, high = tf.reduce_min(image), tf.reduce_max(image)
    out = tf.clip_by_value(out, tf.cast(low, tf.float32), tf.cast(high, tf.float32))
    return tf.cast(tf.round(out), tf.uint8)


def instance_targets(image, class_ids, instance_masks, config, augmentation=None):
    """Graph part of the mask path for one image (after loading).

    image: uint8 [H, W, 3], class_ids: int32 [N], instance_masks: bool [H, W, N].
    Returns a dict with the keys of the module docstring, without batch axis.
    """
    if augmentation is not None:
        image, instance_masks = augmentation(image, instance_masks)
    boxes = masks.boxes_from_masks(instance_masks)
    keep = tf.reduce_any(tf.not_equal(boxes, 0), axis=1)
    boxes = tf.boolean_mask(boxes, keep)
    class_ids = tf.boolean_mask(class_ids, keep)
    instance_masks = tf.boolean_mask(instance_masks, keep, axis=2)
    order = _subsample(tf.shape(boxes)[0], config.MAX_GT_INSTANCES)
    boxes = tf.gather(boxes, order)
    instance_masks = tf.gather(instance_masks, order, axis=2)
    if config.USE_MINI_MASK:
        gt_masks = masks.mini_masks(instance_masks, boxes, config.MINI_MASK_SHAPE)
    else:
        gt_masks = tf.transpose(instance_masks, [2, 0, 1])
    return _targets(image, tf.gather(class_ids, order), boxes, gt_masks, config)


def record_targets(image, class_ids, boxes, mini, frame, config, augmentation=None):
    """Graph part of the instance path for one image (after loading).

    image: uint8 [H, W, 3] molded; class_ids: int32 [N]; boxes: [N, 4] and
    mini: bool [N, h, w] in original pixels; frame: [4] the original region
    the molded image shows (see load_image_instances). augmentation: None or
    an object with `apply_to_instances`. Returns a dict with the keys of
    the module docstring, without batch axis.
    """
    shape = tf.shape(image)
    boxes, mini, keep = masks.transform_instances(boxes, mini, frame, shape[:2])
    if augmentation is not None:
        image, boxes, mini, keep_aug = augmentation.apply_to_instances(image, boxes, mini)
        keep = keep & keep_aug
    # Instances shrunk below one pixel (a 5-pixel pole in a frame resized
    # 1/8) have no mask left at this size, as on the mask path, and their
    # box would come out inverted from box_ops.normalize: they are dropped.
    keep = keep & tf.reduce_all(boxes[:, 2:] - boxes[:, :2] >= 1.0, axis=1)
    boxes = tf.boolean_mask(boxes, keep)
    class_ids = tf.boolean_mask(class_ids, keep)
    mini = tf.boolean_mask(mini, keep)
    order = _subsample(tf.shape(boxes)[0], config.MAX_GT_INSTANCES)
    return _targets(image, tf.gather(class_ids, order), tf.gather(boxes, order),
                    tf.gather(mini, order), config)


def _subsample(n, limit):
    """Indices of a random subset of at most `limit` of n instances, in order."""
    return tf.sort(tf.random.shuffle(tf.range(n))[:limit])


def _targets(image, class_ids, boxes, gt_masks, config):
    """Normalise, pad: the dict of the module docstring for one image."""
    shape = tf.shape(image)
    pad = config.MAX_GT_INSTANCES - tf.shape(boxes)[0]
    mean = tf.constant(config.MEAN_PIXEL, tf.float32)
    return {
        "image": tf.cast(image, tf.float32) - mean,
        "gt_class_ids": tf.pad(class_ids, [[0, pad]]),
        "gt_boxes": tf.pad(box_ops.normalize(tf.cast(boxes, tf.float32), shape),
                           [[0, pad], [0, 0]]),
        "gt_masks": tf.pad(tf.cast(gt_masks, tf.uint8), [[0, pad], [0, 0], [0, 0]]),
    }


def build_dataset(dataset, config, shuffle=True, augmentation=None, repeat=True, seed=None,
                  mask_cache=None, image_ids=None, no_augmentation_sources=(), failures=None):
    """A batched tf.data.Dataset of training inputs from a prepared Dataset.

    dataset: a prepared `mrcnn.data.dataset.Dataset`; augmentation: see module
    docstring. mask_cache: None, a folder or a `MiniMaskCache` keeping the
    instance records on disk (instance path only; datasets whose
    `cache_version` is None are not cached). image_ids: int [N], the images
    to read (default all of `dataset.image_ids`). no_augmentation_sources:
    dataset sources whose images are not augmented (Matterport's option).
    failures: the `FeedFailures` counting the images that fail to load (a
    file changed after the load-time check): each is skipped with a warning,
    and more than 1 % of them raise TooManyFailuresError (default: a new
    one over image_ids). Batches have config.BATCH_SIZE images (the last
    partial batch is dropped).
    """
    image_ids = dataset.image_ids if image_ids is None else np.asarray(image_ids)
    if not image_ids.size:
        raise ValueError(f"{type(dataset).__name__} has no images (did you call prepare()?)")
    rng = np.random.default_rng(seed)
    if mask_cache is not None and not isinstance(mask_cache, MiniMaskCache):
        mask_cache = MiniMaskCache(mask_cache, config.MINI_MASK_SHAPE)
    if failures is None:
        failures = FeedFailures("images", len(image_ids))
    # [num images] True where the image's source is not to be augmented.
    skipped = set(no_augmentation_sources or ())
    plain = np.array([info["source"] in skipped for info in dataset.image_info], bool)

    def augmented(targets, image_id):
        """targets(augmentation), or targets(None) for a plain source's image."""
        if augmentation is None or not plain.any():
            return targets(augmentation)
        return tf.cond(tf.gather(plain, image_id), lambda: targets(None),
                       lambda: targets(augmentation))

    def guarded(load, empty):
        """load(image_id) -> (True, *arrays); a file that fails: (False, *empty)."""
        def call(image_id):
            image_id = int(image_id)
            try:
                return (True, *load(image_id))
            except DECODE_ERRORS as e:
                failures.record(image_id, dataset.image_info[image_id].get("path"), e)
                return (False, *empty)
        return call

    no_taps = (np.zeros([0, 2], np.int32), np.zeros([0, 2], np.float32))
    load_instances = guarded(
        lambda i: load_instances_for_graph(dataset, config, i, mask_cache, rng),
        (np.array(b"", dtype=object), np.zeros((0, 0, 3), np.uint8), *no_taps, *no_taps,
         np.zeros([4], np.int32), np.zeros([config.IMAGE_META_SIZE], np.float32),
         np.zeros([0], np.int32), np.zeros([0, 4], np.int32),
         np.zeros([0, *config.MINI_MASK_SHAPE], bool), np.zeros([4], np.float32)))

    def load_instance_sample(image_id):
        ok, *parts = tf.numpy_function(
            load_instances, [image_id],
            [tf.bool, tf.string, tf.uint8, tf.int32, tf.float32, tf.int32, tf.float32, tf.int32,
             tf.float32, tf.int32, tf.int32, tf.bool, tf.float32],
            stateful=True)
        shapes = [[], [None, None, 3], [None, 2], [None, 2], [None, 2], [None, 2], [4],
                  [config.IMAGE_META_SIZE], [None], [None, 4], [None, *config.MINI_MASK_SHAPE],
                  [4]]
        for part, shape in zip(parts, shapes):
            part.set_shape(shape)
        ok.set_shape([])
        return ok, (image_id, *parts)

    def instance_example(image_id, *parts):
        image = mold_in_graph(*parts[:7])
        meta, class_ids, boxes, mini, frame = parts[7:]
        example = augmented(
            lambda aug: record_targets(image, class_ids, boxes, mini, frame, config, aug),
            image_id)
        return {**example, "image_meta": meta}

    load_masks = guarded(
        lambda i: load_image_gt(dataset, config, i, rng),
        (np.zeros((0, 0, 3), np.uint8), np.zeros([config.IMAGE_META_SIZE], np.float32),
         np.zeros([0], np.int32), np.zeros((0, 0, 0), bool)))

    def load_mask_sample(image_id):
        ok, image, meta, class_ids, mask = tf.numpy_function(
            load_masks, [image_id], [tf.bool, tf.uint8, tf.float32, tf.int32, tf.bool],
            stateful=True)
        ok.set_shape([])
        image.set_shape([None, None, 3])
        class_ids.set_shape([None])
        mask.set_shape([None, None, None])
        meta.set_shape([config.IMAGE_META_SIZE])
        return ok, (image_id, image, meta, class_ids, mask)

    def mask_example(image_id, image, meta, class_ids, mask):
        example = augmented(
            lambda aug: instance_targets(image, class_ids, mask, config, aug), image_id)
        return {**example, "image_meta": meta}

    if uses_instance_path(config, augmentation):
        load_sample, make_example = load_instance_sample, instance_example
    else:
        load_sample, make_example = load_mask_sample, mask_example
    ids = tf.data.Dataset.from_tensor_slices(np.asarray(image_ids, np.int64))
    if shuffle:
        ids = ids.shuffle(len(image_ids), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ids = ids.repeat()
    # One image per core at a time, two batches ahead. Fixed, not
    # AUTOTUNE: tf.data's autotuner thread sleeps up to a minute between
    # rounds, and destroying an iterator waits for it to wake up; Keras
    # destroys iterators at every epoch's validation and every fit's end,
    # which stalled training for 5-60 s each time (docs/benchmarks.md).
    # Samples whose files fail to load are left out (filter).
    parallel = usable_cpus()
    samples = ids.map(load_sample, num_parallel_calls=parallel, deterministic=not shuffle)
    examples = samples.filter(lambda ok, sample: ok).map(
        lambda ok, sample: make_example(*sample), num_parallel_calls=parallel,
        deterministic=not shuffle)
    batches = examples.batch(config.BATCH_SIZE, drop_remainder=True).prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False
    # Parallelism across images, not inside one image's ops: ~10 % more
    # images/s on 2 cores (benchmarks/bench_pipeline.py).
    options.threading.max_intra_op_parallelism = 1
    return batches.with_options(options)


def usable_cpus():
    """The cores this process may run on (its affinity, e.g. under taskset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def validation_dataset(dataset, config, steps, mask_cache=None, seed=0, failures=None):
    """The batches `fit` validates on at every epoch -> (tf.data.Dataset, steps).

    A fixed, seeded choice of `steps` x BATCH_SIZE images of `dataset` (all
    its whole batches when it has fewer; one batch, images repeated, when it
    has less than one), read in order and not repeated: every epoch's
    validation loss is over the same images (Matterport draws new random
    ones each epoch, which makes epochs harder to compare). failures: as
    build_dataset's; an image that fails to load is replaced by the next
    one (the list is read round), so there are always `steps` batches.
    """
    batch = config.BATCH_SIZE
    steps = max(1, min(steps, len(dataset.image_ids) // batch))
    ids = np.random.default_rng(seed).permutation(dataset.image_ids)
    ids = np.resize(np.sort(ids[:steps * batch]), steps * batch)
    ds = build_dataset(dataset, config, shuffle=False, repeat=True, mask_cache=mask_cache,
                       image_ids=ids, failures=failures)
    return ds.take(steps), steps
