"""The training input pipeline on tf.data.

Per image: the Dataset's `load_image` / `load_mask` and the resize to the
configured mode run in Python (`tf.numpy_function`, in parallel); the rest
runs in the TF graph: the optional augmentation, boxes from masks,
mini-masks, padding to MAX_GT_INSTANCES and the RPN anchor targets
(vectorised over anchors). Batches are dicts that `MaskRCNNModel` consumes:

    image:        [B, H, W, 3] float32, mean pixel subtracted
    image_meta:   [B, 12 + NUM_CLASSES] float32 (see mrcnn/image.py)
    rpn_match:    [B, A] int32, 1 / -1 / 0 per anchor
    rpn_bbox:     [B, RPN_TRAIN_ANCHORS_PER_IMAGE, 4] float32
    gt_class_ids: [B, MAX_GT_INSTANCES] int32 (0 = padding, < 0 = crowd)
    gt_boxes:     [B, MAX_GT_INSTANCES, 4] float32, normalised
    gt_masks:     [B, MAX_GT_INSTANCES, h, w] bool; h, w = MINI_MASK_SHAPE,
                  or the image size without mini-masks

All images of a batch must share one molded size: "square" and "crop" modes
guarantee it; "pad64" and "none" do when the images have one size (as
Cityscapes does), otherwise use IMAGES_PER_GPU = 1.

augmentation: None, or a callable `(image, masks) -> (image, masks)` on
tensors (uint8 [H, W, 3], bool [H, W, N]) applied to both together; the
boxes are computed after it, and instances it empties are dropped.
"""

import numpy as np
import tensorflow as tf

from mrcnn import anchors as anchor_lib
from mrcnn import box_ops, masks, targets
from mrcnn.image import compose_image_meta, resize_image, resize_mask


def load_image_gt(dataset, config, image_id, rng=None):
    """Load and resize one image and its instances (no augmentation).

    Returns image uint8 [H, W, 3], image_meta float32 [12 + NUM_CLASSES],
    class_ids int32 [N], masks bool [H, W, N]; H, W the molded size.
    """
    image = dataset.load_image(image_id)
    mask, class_ids = dataset.load_mask(image_id)
    if mask.shape[:2] != image.shape[:2] or mask.ndim != 3 or len(class_ids) != mask.shape[2]:
        raise ValueError(
            f"image {image_id} ({dataset.image_reference(image_id)}): load_mask returned "
            f"masks {list(mask.shape)} and {len(class_ids)} class ids for an image of shape "
            f"{list(image.shape)}; expected bool [H, W, N] and int32 [N]"
        )
    original_shape = image.shape
    image, window, scale, padding, crop = resize_image(
        image,
        min_dim=config.IMAGE_MIN_DIM,
        max_dim=config.IMAGE_MAX_DIM,
        min_scale=config.IMAGE_MIN_SCALE,
        mode=config.IMAGE_RESIZE_MODE,
        rng=rng,
    )
    mask = resize_mask(mask, scale, padding, crop)
    active = np.zeros([dataset.num_classes], np.int32)
    active[dataset.source_class_ids[dataset.image_info[image_id]["source"]]] = 1
    meta = compose_image_meta(image_id, original_shape, image.shape, window, scale, active)
    return image, meta, np.asarray(class_ids, np.int32), mask.astype(bool)


def instance_targets(image, class_ids, instance_masks, config, augmentation=None):
    """Graph part of the pipeline for one image (after loading).

    image: uint8 [H, W, 3], class_ids: int32 [N], instance_masks: bool [H, W, N].
    Returns a dict with the keys of the module docstring, without batch axis.
    """
    if augmentation is not None:
        image, instance_masks = augmentation(image, instance_masks)
    shape = tf.shape(image)
    boxes = masks.boxes_from_masks(instance_masks)
    keep = tf.reduce_any(tf.not_equal(boxes, 0), axis=1)
    boxes = tf.boolean_mask(boxes, keep)
    class_ids = tf.boolean_mask(class_ids, keep)
    instance_masks = tf.boolean_mask(instance_masks, keep, axis=2)

    # More instances than MAX_GT_INSTANCES: keep a random subset.
    order = tf.random.shuffle(tf.range(tf.shape(boxes)[0]))[: config.MAX_GT_INSTANCES]
    order = tf.sort(order)
    boxes = tf.gather(boxes, order)
    class_ids = tf.gather(class_ids, order)
    instance_masks = tf.gather(instance_masks, order, axis=2)

    if config.USE_MINI_MASK:
        gt_masks = masks.mini_masks(instance_masks, boxes, config.MINI_MASK_SHAPE)
    else:
        gt_masks = tf.transpose(instance_masks, [2, 0, 1])
    pixel_boxes = tf.cast(boxes, tf.float32)
    all_anchors = anchor_lib.pyramid_anchors(
        shape,
        config.RPN_ANCHOR_SCALES,
        config.RPN_ANCHOR_RATIOS,
        config.BACKBONE_STRIDES,
        config.RPN_ANCHOR_STRIDE,
        normalized=False,
    )
    rpn_match, rpn_bbox = targets.rpn_targets(
        all_anchors,
        class_ids,
        pixel_boxes,
        anchors_per_image=config.RPN_TRAIN_ANCHORS_PER_IMAGE,
        std_dev=config.RPN_BBOX_STD_DEV.tolist(),
    )

    pad = config.MAX_GT_INSTANCES - tf.shape(boxes)[0]
    mean = tf.constant(config.MEAN_PIXEL, tf.float32)
    return {
        "image": tf.cast(image, tf.float32) - mean,
        "rpn_match": rpn_match,
        "rpn_bbox": rpn_bbox,
        "gt_class_ids": tf.pad(class_ids, [[0, pad]]),
        "gt_boxes": tf.pad(box_ops.normalize(pixel_boxes, shape), [[0, pad], [0, 0]]),
        "gt_masks": tf.pad(gt_masks, [[0, pad], [0, 0], [0, 0]]),
    }


def build_dataset(dataset, config, shuffle=True, augmentation=None, repeat=True, seed=None):
    """A batched tf.data.Dataset of training inputs from a prepared Dataset.

    dataset: a prepared `mrcnn.dataset.Dataset`; augmentation: see module
    docstring. Batches have config.BATCH_SIZE images (the last partial batch
    is dropped).
    """
    if not dataset.image_ids.size:
        raise ValueError(f"{type(dataset).__name__} has no images (did you call prepare()?)")
    rng = np.random.default_rng(seed)

    def load(image_id):
        image, meta, class_ids, mask = load_image_gt(dataset, config, int(image_id), rng)
        return image, meta, class_ids, mask

    def load_graph(image_id):
        image, meta, class_ids, mask = tf.numpy_function(
            load, [image_id], [tf.uint8, tf.float32, tf.int32, tf.bool], stateful=True
        )
        image.set_shape([None, None, 3])
        meta.set_shape([config.IMAGE_META_SIZE])
        class_ids.set_shape([None])
        mask.set_shape([None, None, None])
        example = instance_targets(image, class_ids, mask, config, augmentation)
        example["image_meta"] = meta
        return example

    ids = tf.data.Dataset.from_tensor_slices(np.asarray(dataset.image_ids, np.int64))
    if shuffle:
        ids = ids.shuffle(len(dataset.image_ids), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ids = ids.repeat()
    examples = ids.map(load_graph, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)
    return examples.batch(config.BATCH_SIZE, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
