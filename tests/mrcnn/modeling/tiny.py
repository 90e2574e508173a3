"""A tiny Mask R-CNN configuration, one batch of inputs and a shapes
dataset that may be cached, shared by the network tests on every backend
(imports neither TensorFlow nor JAX)."""

import numpy as np

from mrcnn.config import Config
from mrcnn.data.image import compose_image_meta
from mrcnn.data.shapes import ShapesDataset

SIZE = 64


class TinyConfig(Config):
    NAME = "tiny"
    NUM_CLASSES = 3
    BACKBONE = "resnet14"
    IMAGES_PER_GPU = 2
    IMAGE_MIN_DIM = SIZE
    IMAGE_MAX_DIM = SIZE
    RPN_ANCHOR_SCALES = (8, 16, 32, 64, 128)
    TOP_DOWN_PYRAMID_SIZE = 32
    FPN_CLASSIF_FC_LAYERS_SIZE = 32
    MASK_CONV_DIM = 16
    RPN_CONV_DIM = 32
    MINI_MASK_SHAPE = (28, 28)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 1024  # >= the 1023 anchors of 64 x 64
    POST_NMS_ROIS_TRAINING = 8
    POST_NMS_ROIS_INFERENCE = 8
    MAX_GT_INSTANCES = 3
    TRAIN_ROIS_PER_IMAGE = 11  # = proposals + instances: all are taken
    ROI_POSITIVE_RATIO = 1.0
    DETECTION_MAX_INSTANCES = 24  # >= proposals x classes: no cut among ties
    DETECTION_MIN_CONFIDENCE = 0.0
    WEIGHT_DECAY = 1e-4


def tiny_inputs(config):
    """Two 64 x 64 images, ground truth with padding rows and a crowd."""
    rng = np.random.default_rng(0)
    meta = compose_image_meta(0, (SIZE, SIZE, 3), (SIZE, SIZE, 3), (0, 0, SIZE, SIZE), 1.0,
                              np.ones(config.NUM_CLASSES))
    boxes = np.array([[[0.1, 0.1, 0.5, 0.6], [0.5, 0.4, 0.9, 0.95], [0, 0, 0, 0]],
                      [[0.2, 0.3, 0.7, 0.6], [0, 0, 0, 0], [0, 0, 0, 0]]], np.float32)
    masks = np.zeros((2, 3, 28, 28), np.uint8)
    masks[:, :2, 4:24, 6:20] = 1
    return {
        "image": rng.normal(0, 50, (2, SIZE, SIZE, 3)).astype(np.float32),
        "image_meta": np.stack([meta, meta]).astype(np.float32),
        "gt_class_ids": np.array([[1, 2, 0], [-1, 0, 0]], np.int32),  # a crowd too
        "gt_boxes": boxes,
        "gt_masks": masks,
    }


def _in_order(detections):
    """Row indices of the detections [D, 6] with a class, sorted by class
    and box (a run's order among equal scores is its own)."""
    rows = np.flatnonzero(detections[:, 4] > 0)
    return rows[np.lexsort(detections[rows, :5].T)]


def assert_same_detections(got, expected, box_atol, score_atol, masks=None, mask_atol=None):
    """Detections [B, D, 6] of two runs are the same, up to the order of
    equal scores: same count and classes, boxes and scores within atol;
    with masks=(got [B, D, ...], expected), each detection's masks within
    mask_atol."""
    for i, (a, b) in enumerate(zip(got, expected)):
        rows_a, rows_b = _in_order(a), _in_order(b)
        assert len(rows_b) > 0 and len(rows_a) == len(rows_b)
        a, b = a[rows_a], b[rows_b]
        np.testing.assert_array_equal(a[:, 4], b[:, 4])
        np.testing.assert_allclose(a[:, :4], b[:, :4], atol=box_atol)
        np.testing.assert_allclose(a[:, 5], b[:, 5], atol=score_atol)
        if masks is not None:
            np.testing.assert_allclose(masks[0][i][rows_a], masks[1][i][rows_b], atol=mask_atol)


def small_box_regressions(model, factor=0.01):
    """Random weights tamed as trained ones are: the RPN's and the
    classifier's box regressions scaled down, so proposals and detections
    lie near the anchors instead of being slivers whose IoU any rounding
    changes (or that vanish when detect() rounds them to pixels)."""
    for layer in (model.rpn.get_layer("rpn_bbox_pred"), model.classifier.bbox_fc):
        layer.kernel.assign(layer.kernel * factor)


class CachedShapes(ShapesDataset):
    """Synthetic shapes whose mini-mask records may be cached (a seeded
    `load_shapes` always draws the same images)."""

    def cache_version(self, image_id):
        return "1"
