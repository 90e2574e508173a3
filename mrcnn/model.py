"""Mask R-CNN: the Keras model, and Matterport's `MaskRCNN` user API.

Shape shorthand:
    B: images per batch; H, W: molded image size (multiples of 64)
    A: anchors; R: proposals per image; T: TRAIN_ROIS_PER_IMAGE
    D: DETECTION_MAX_INSTANCES; C: NUM_CLASSES (background included)
    boxes inside the model are normalised (y1, x1, y2, x2), see box_ops

`MaskRCNNModel` only assembles the parts (backbone.py, heads.py,
proposals.py, targets.py, roi_align.py, detection.py, losses.py) and holds
the custom `train_step`. `build_model(config, mode)` turns a Config into its
explicit arguments. `MaskRCNN` wraps it with the API of Matterport's
`mrcnn.model.MaskRCNN`: `train`, `detect`, `load_weights`, `find_last`.

XLA: Keras 3 compiles `fit` with XLA by itself on a GPU (jit_compile="auto"),
and `tf.image.crop_and_resize` (ROIAlign, mask targets) has no XLA kernel,
so this model is always compiled with jit_compile=False; on a GPU the
convolutions still run on cuDNN.

Mixed precision (`devices.set_mixed_precision`): the Keras layers (backbone,
RPN, heads) compute in float16; their outputs are cast to float32 where they
leave them (`_rpn`, `_heads`, `_masks`), so proposals, targets, losses and
detections run in float32. ROIAlign reads the float16 feature maps and
returns float32 (`tf.image.crop_and_resize`).

Several devices (`devices.make_strategy`): create `MaskRCNN` under
`strategy.scope()`; `train` compiles and fits under the same strategy. Each
replica gets BATCH_SIZE / replicas images; `train_step` divides its loss by
the number of replicas, as Keras' own train_step does, since the optimizer
sums the replicas' gradients.
"""

import json
import logging
import os

import keras
import numpy as np
import tensorflow as tf

from mrcnn import files
from mrcnn.checkpoint import hdf5 as weight_io
from mrcnn.checkpoint import pretrained
from mrcnn.config import LOSS_NAMES
from mrcnn.data import masks, pipeline
from mrcnn.data.image import (
    compose_image_meta,
    mold_image,
    parse_image_meta_graph,
    resize_image,
    validate_image,
)
from mrcnn.engine import callbacks as run_callbacks
from mrcnn.engine import optimizers, run_dir, trainable
from mrcnn.modeling import anchors as anchor_lib
from mrcnn.modeling import box_ops, detection, losses, matching, proposals, targets
from mrcnn.modeling.backbone import build_backbone
from mrcnn.modeling.heads import FpnClassifierHead, FpnMaskHead, build_rpn_model
from mrcnn.modeling.roi_align import pyramid_roi_align

logger = logging.getLogger(__name__)

MODES = ("training", "inference")


class MaskRCNNModel(keras.Model):
    """Mask R-CNN with a ResNet + FPN backbone, as one Keras model.

    Args:
        mode: "training" (call takes ground truth, returns targets and head
            outputs for the losses) or "inference" (returns detections).
        num_classes: C, background included.
        backbone: "resnet50" | "resnet101".
        train_bn: train the BatchNorm statistics.
        anchor_scales, anchor_ratios, backbone_strides, anchor_stride: anchors.
        rpn_std_dev, bbox_std_dev: box delta std devs of the RPN and heads.
        rpn_nms_threshold, pre_nms_limit, proposal_count: proposals.
        rpn_anchors_per_image: anchors labelled per image for the RPN
            losses (training).
        rois_per_image, positive_fraction, proposals_include_gt,
            mini_masks, mask_shape: head targets (training).
        pool_size, mask_pool_size, fc_layers_size, pyramid_size,
            mask_conv_dim, rpn_conv_dim: head sizes.
        zero_init_residual: start each ResNet block's residual branch at 0.
        max_detections, min_confidence, detection_nms_threshold: inference.
        loss_weights: dict of the five loss weights; weight_decay: L2 factor.

    Call arguments:
        inputs: dict with "image" [B, H, W, 3] float32 (molded) and
            "image_meta" [B, 12 + C]; in training mode also "gt_class_ids"
            [B, M], "gt_boxes" [B, M, 4], "gt_masks" [B, M, h, w] in {0, 1}
            (uint8 from mrcnn/data/pipeline.py; bool works too).
        training: whether BatchNorm layers with train_bn update statistics.

    Returns a dict. Training mode: rpn_class_logits [B, A, 2], rpn_bbox
    [B, A, 4], the RPN targets rpn_match [B, A] and rpn_target_deltas
    [B, S, 4] (computed here, on the accelerator, from gt_boxes: S =
    rpn_anchors_per_image), rois [B, T, 4], target_class_ids [B, T], target_deltas
    [B, T, 4], roi_valid [B, T], mrcnn_class_logits [B, T, C], mrcnn_bbox
    [B, T, C, 4]; for the first P rows, where the positives are (P =
    max_positives(T, positive_fraction)): target_masks [B, P, h, w],
    mask_class_ids [B, P], mrcnn_mask [B, P, h, w, C].
    Inference mode: detections [B, D, 6] (y1, x1, y2, x2, class_id, score),
    mrcnn_mask [B, D, h, w, C], rois [B, R, 4] (the proposals).
    """

    def __init__(
        self,
        mode,
        num_classes,
        backbone="resnet101",
        train_bn=False,
        anchor_scales=(32, 64, 128, 256, 512),
        anchor_ratios=(0.5, 1, 2),
        backbone_strides=(4, 8, 16, 32, 64),
        anchor_stride=1,
        rpn_std_dev=(0.1, 0.1, 0.2, 0.2),
        bbox_std_dev=(0.1, 0.1, 0.2, 0.2),
        rpn_nms_threshold=0.7,
        pre_nms_limit=6000,
        proposal_count=2000,
        rpn_anchors_per_image=256,
        rois_per_image=200,
        positive_fraction=0.33,
        proposals_include_gt=True,
        mini_masks=True,
        mask_shape=(28, 28),
        pool_size=7,
        mask_pool_size=14,
        fc_layers_size=1024,
        pyramid_size=256,
        mask_conv_dim=256,
        rpn_conv_dim=512,
        zero_init_residual=False,
        max_detections=100,
        min_confidence=0.7,
        detection_nms_threshold=0.3,
        loss_weights=None,
        weight_decay=0.0001,
        **kwargs,
    ):
        kwargs.setdefault("name", "mask_rcnn")
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self._args = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        self.mode = mode
        self.num_classes = num_classes
        self.anchor_scales = tuple(anchor_scales)
        self.anchor_ratios = tuple(float(r) for r in anchor_ratios)
        self.backbone_strides = tuple(backbone_strides)
        self.anchor_stride = anchor_stride
        self.rpn_std_dev = tuple(float(s) for s in rpn_std_dev)
        self.bbox_std_dev = tuple(float(s) for s in bbox_std_dev)
        self.rpn_nms_threshold = rpn_nms_threshold
        self.pre_nms_limit = pre_nms_limit
        self.proposal_count = proposal_count
        self.rpn_anchors_per_image = rpn_anchors_per_image
        self.rois_per_image = rois_per_image
        self.positive_fraction = positive_fraction
        self.proposals_include_gt = proposals_include_gt
        self.mini_masks = mini_masks
        self.mask_shape = tuple(mask_shape)
        self.pool_size = pool_size
        self.mask_pool_size = mask_pool_size
        self.max_detections = max_detections
        self.min_confidence = min_confidence
        self.detection_nms_threshold = detection_nms_threshold
        self.loss_weights = dict.fromkeys(LOSS_NAMES, 1.0)
        self.loss_weights.update(loss_weights or {})
        self.weight_decay = weight_decay

        self.backbone = build_backbone(backbone, train_bn, pyramid_size, zero_init_residual)
        self.rpn = build_rpn_model(anchor_stride, len(anchor_ratios), pyramid_size,
                                   rpn_conv_dim)
        self.classifier = FpnClassifierHead(
            num_classes, pool_size, fc_layers_size, train_bn, name="mrcnn_classifier"
        )
        self.mask_head = FpnMaskHead(num_classes, train_bn, mask_conv_dim,
                                     name="mrcnn_mask_head")
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss",) + LOSS_NAMES}

    def get_config(self):
        return {**super().get_config(), **self._args}

    # ------------------------------------------------------------- the graph
    def anchors(self, image_shape):
        """Normalised anchors [A, 4] of a molded image of (H, W)."""
        return anchor_lib.pyramid_anchors(
            image_shape, self.anchor_scales, self.anchor_ratios, self.backbone_strides,
            self.anchor_stride,
        )

    def _rpn_targets(self, gt_class_ids, gt_boxes, image_shape):
        """RPN targets of a batch: rpn_match [B, A] int32, deltas [B, S, 4].

        gt_boxes: [B, M, 4] normalised; matched in pixels, per image.
        """
        pixel_boxes = box_ops.denormalize(gt_boxes, image_shape, rounded=False)
        pixel_anchors = anchor_lib.pyramid_anchors(
            image_shape, self.anchor_scales, self.anchor_ratios, self.backbone_strides,
            self.anchor_stride, normalized=False,
        )

        def one_image(args):
            class_ids, boxes = args
            return targets.rpn_targets(
                pixel_anchors, class_ids, boxes,
                anchors_per_image=self.rpn_anchors_per_image,
                std_dev=self.rpn_std_dev,
                iou_fn=lambda _, b: anchor_lib.pyramid_iou(
                    image_shape, self.anchor_scales, self.anchor_ratios,
                    self.backbone_strides, b, self.anchor_stride),
            )

        return tf.map_fn(
            one_image, (gt_class_ids, pixel_boxes),
            fn_output_signature=(tf.TensorSpec([None], tf.int32),
                                 tf.TensorSpec([self.rpn_anchors_per_image, 4], tf.float32)),
        )

    def _rpn(self, feature_maps):
        """RPN on every level: logits [B, A, 2], probs [B, A, 2], deltas
        [B, A, 4], float32 (also under mixed precision)."""
        outputs = [self.rpn(p) for p in feature_maps]
        return [tf.cast(tf.concat(list(o), axis=1), tf.float32) for o in zip(*outputs)]

    def _heads(self, rois, feature_maps, image_shape, training):
        """Classifier head on rois [B, N, 4]: logits [B, N, C], probs
        [B, N, C], deltas [B, N, C, 4], float32."""
        pooled = pyramid_roi_align(rois, feature_maps, image_shape, self.pool_size)
        outputs = self.classifier(pooled, training=training)
        return tuple(tf.cast(o, tf.float32) for o in outputs)

    def _masks(self, rois, feature_maps, image_shape, training):
        """Mask head on rois [B, N, 4]: [B, N, h, w, C] float32."""
        pooled = pyramid_roi_align(rois, feature_maps, image_shape, self.mask_pool_size)
        return tf.cast(self.mask_head(pooled, training=training), tf.float32)

    def call(self, inputs, training=None):
        image = inputs["image"]
        image_shape = tf.shape(image)[1:3]
        p2, p3, p4, p5, p6 = self.backbone(image, training=training)
        rpn_logits, rpn_probs, rpn_deltas = self._rpn([p2, p3, p4, p5, p6])
        rois = proposals.generate_proposals(
            rpn_probs, rpn_deltas, self.anchors(image_shape), self.proposal_count,
            self.rpn_nms_threshold, self.pre_nms_limit, self.rpn_std_dev,
        )
        head_maps = [p2, p3, p4, p5]
        if self.mode == "training":
            return self._training_outputs(inputs, rois, head_maps, image_shape, training,
                                          rpn_logits, rpn_deltas)
        _, probs, deltas = self._heads(rois, head_maps, image_shape, training)
        windows = box_ops.normalize(parse_image_meta_graph(inputs["image_meta"])["window"], image_shape)
        detections = detection.detect_batch(
            rois, probs, deltas, windows,
            max_instances=self.max_detections,
            min_confidence=self.min_confidence,
            nms_threshold=self.detection_nms_threshold,
            std_dev=self.bbox_std_dev,
        )
        mask = self._masks(detections[..., :4], head_maps, image_shape, training)
        return {"detections": detections, "mrcnn_mask": mask, "rois": rois}

    def _training_outputs(self, inputs, rois, head_maps, image_shape, training,
                          rpn_logits, rpn_deltas):
        def sample(args):
            return targets.detection_targets(
                *args,
                rois_per_image=self.rois_per_image,
                positive_fraction=self.positive_fraction,
                std_dev=self.bbox_std_dev,
                mask_shape=self.mask_shape,
                include_gt=self.proposals_include_gt,
                mini_masks=self.mini_masks,
            )

        t = self.rois_per_image
        rois, class_ids, deltas, mask_targets, valid = tf.map_fn(
            sample,
            (rois, inputs["gt_class_ids"], inputs["gt_boxes"], inputs["gt_masks"]),
            fn_output_signature=(
                tf.TensorSpec([t, 4], tf.float32),
                tf.TensorSpec([t], tf.int32),
                tf.TensorSpec([t, 4], tf.float32),
                tf.TensorSpec([t, *self.mask_shape], tf.float32),
                tf.TensorSpec([t], tf.bool),
            ),
        )
        logits, _, pred_deltas = self._heads(rois, head_maps, image_shape, training)
        # Positives come first and number at most max_positives: the mask
        # head (the costliest part of a step) only runs on those rows.
        m = matching.max_positives(self.rois_per_image, self.positive_fraction)
        pred_masks = self._masks(rois[:, :m], head_maps, image_shape, training)
        rpn_match, rpn_target_deltas = self._rpn_targets(
            inputs["gt_class_ids"], inputs["gt_boxes"], image_shape)
        return {
            "rpn_class_logits": rpn_logits,
            "rpn_bbox": rpn_deltas,
            "rpn_match": rpn_match,
            "rpn_target_deltas": rpn_target_deltas,
            "rois": rois,
            "target_class_ids": class_ids,
            "target_deltas": deltas,
            "target_masks": mask_targets[:, :m],
            "roi_valid": valid,
            "mrcnn_class_logits": logits,
            "mrcnn_bbox": pred_deltas,
            "mrcnn_mask": pred_masks,
            "mask_class_ids": class_ids[:, :m],
        }

    # -------------------------------------------------------------- training
    def compute_losses(self, inputs, outputs):
        """The five losses (unweighted) of a training-mode call. -> dict of scalars"""
        active = parse_image_meta_graph(inputs["image_meta"])["active_class_ids"]
        return {
            "rpn_class_loss": losses.rpn_class_loss(
                outputs["rpn_match"], outputs["rpn_class_logits"]),
            "rpn_bbox_loss": losses.rpn_bbox_loss(
                outputs["rpn_target_deltas"], outputs["rpn_match"], outputs["rpn_bbox"]
            ),
            "mrcnn_class_loss": losses.mrcnn_class_loss(
                outputs["target_class_ids"], outputs["mrcnn_class_logits"], active,
                outputs["roi_valid"],
            ),
            "mrcnn_bbox_loss": losses.mrcnn_bbox_loss(
                outputs["target_deltas"], outputs["target_class_ids"], outputs["mrcnn_bbox"]
            ),
            "mrcnn_mask_loss": losses.mrcnn_mask_loss(
                outputs["target_masks"], outputs["mask_class_ids"], outputs["mrcnn_mask"]
            ),
        }

    def _total_loss(self, parts):
        total = tf.add_n([self.loss_weights[k] * v for k, v in parts.items()])
        if self.weight_decay:
            total += losses.weight_decay_loss(self.trainable_weights, self.weight_decay)
        return total

    def _record(self, total, parts):
        self.trackers["loss"].update_state(total)
        for name, value in parts.items():
            self.trackers[name].update_state(value)
        return {name: m.result() for name, m in self.trackers.items()}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def train_step(self, data):
        """One step on this replica's part of the batch.

        The gradient is taken of the loss divided by the number of replicas
        (the optimizer sums the replicas' gradients: their mean results)
        and multiplied by the optimizer's loss scale (mixed precision; the
        LossScaleOptimizer divides it out again and skips steps whose
        gradients are not finite). The metrics get the true loss.
        """
        if self.mode != "training":
            raise ValueError("train_step needs a model built in 'training' mode")
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            outputs = self(data, training=True)
            parts = self.compute_losses(data, outputs)
            total = self._total_loss(parts)
            scaled = self.optimizer.scale_loss(total / replicas)
        variables = self.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(
            [(g, v) for g, v in zip(grads, variables) if g is not None]
        )
        return self._record(total, parts)

    def test_step(self, data):
        outputs = self(data, training=False)
        parts = self.compute_losses(data, outputs)
        return self._record(self._total_loss(parts), parts)


def build_model(config, mode):
    """A `MaskRCNNModel` for `config` (explicit arguments, nothing hidden)."""
    return MaskRCNNModel(
        mode=mode,
        num_classes=config.NUM_CLASSES,
        backbone=config.BACKBONE,
        train_bn=config.TRAIN_BN,
        anchor_scales=config.RPN_ANCHOR_SCALES,
        anchor_ratios=config.RPN_ANCHOR_RATIOS,
        backbone_strides=config.BACKBONE_STRIDES,
        anchor_stride=config.RPN_ANCHOR_STRIDE,
        rpn_std_dev=config.RPN_BBOX_STD_DEV.tolist(),
        bbox_std_dev=config.BBOX_STD_DEV.tolist(),
        rpn_nms_threshold=config.RPN_NMS_THRESHOLD,
        pre_nms_limit=config.PRE_NMS_LIMIT,
        proposal_count=(
            config.POST_NMS_ROIS_TRAINING if mode == "training" else config.POST_NMS_ROIS_INFERENCE
        ),
        rpn_anchors_per_image=config.RPN_TRAIN_ANCHORS_PER_IMAGE,
        rois_per_image=config.TRAIN_ROIS_PER_IMAGE,
        positive_fraction=config.ROI_POSITIVE_RATIO,
        proposals_include_gt=config.PROPOSALS_INCLUDE_GT,
        mini_masks=config.USE_MINI_MASK,
        mask_shape=config.MASK_SHAPE,
        pool_size=config.POOL_SIZE,
        mask_pool_size=config.MASK_POOL_SIZE,
        fc_layers_size=config.FPN_CLASSIF_FC_LAYERS_SIZE,
        pyramid_size=config.TOP_DOWN_PYRAMID_SIZE,
        mask_conv_dim=config.MASK_CONV_DIM,
        rpn_conv_dim=config.RPN_CONV_DIM,
        zero_init_residual=config.ZERO_INIT_RESIDUAL,
        max_detections=config.DETECTION_MAX_INSTANCES,
        min_confidence=config.DETECTION_MIN_CONFIDENCE,
        detection_nms_threshold=config.DETECTION_NMS_THRESHOLD,
        loss_weights=config.LOSS_WEIGHTS,
        weight_decay=config.WEIGHT_DECAY,
    )


def _dummy_inputs(config, mode, size=64):
    """Smallest inputs that run every layer once (to create the weights)."""
    inputs = {
        "image": tf.zeros([1, size, size, 3]),
        "image_meta": tf.constant(
            compose_image_meta(0, (size, size, 3), (size, size, 3), (0, 0, size, size), 1.0,
                               np.ones(config.NUM_CLASSES))[None]
        ),
    }
    if mode == "training":
        m = 1
        mask_hw = config.MINI_MASK_SHAPE if config.USE_MINI_MASK else (size, size)
        inputs.update(
            gt_class_ids=tf.zeros([1, m], tf.int32),
            gt_boxes=tf.zeros([1, m, 4]),
            gt_masks=tf.zeros([1, m, *mask_hw], tf.uint8),
        )
    return inputs


class MaskRCNN:
    """Matterport's user API around `MaskRCNNModel`.

    mode: "training" or "inference"; config: a `Config`; model_dir: where
    run folders (checkpoints, logs) go.
    """

    def __init__(self, mode, config, model_dir):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode == "inference" and config.IMAGE_RESIZE_MODE == "crop":
            raise ValueError(
                "IMAGE_RESIZE_MODE 'crop' is for training only (random crops); "
                "use 'pad64' or 'square' in the inference config"
            )
        self.mode = mode
        self.config = config
        self.model_dir = model_dir
        self.epoch = 0
        self.log_dir = None
        # The tf.distribute strategy whose scope this is created in (the
        # default one outside any scope): `train` compiles and fits under it.
        self.strategy = tf.distribute.get_strategy()
        self.keras_model = build_model(config, mode)
        self.keras_model(_dummy_inputs(config, mode), training=False)
        self._infer = None
        self._compiled_setup = None  # what the last train() compiled for

    # --------------------------------------------------------------- weights
    def load_weights(self, filepath, by_name=False, exclude=None):
        """Load Matterport / this project's .h5 weights, or ImageNet ones.

        filepath: a .h5 file; "imagenet" or a keras-applications ImageNet
        file (``resnet{50,101}_weights_tf_dim_ordering_tf_kernels_notop.h5``)
        loads the backbone through Matterport's layer names. Fails loudly
        when a layer of the file cannot be loaded (see mrcnn/checkpoint/hdf5.py).
        Loading a checkpoint of a run (`.../name20240101T1200/
        mask_rcnn_name_0003.h5`) continues that run: its folder and epochs.
        Returns the LoadReport (also printed).
        """
        if filepath == "imagenet":
            filepath = self.get_imagenet_weights()
        if pretrained.is_imagenet_file(filepath):
            report = weight_io.load_imagenet_weights(
                self.keras_model, filepath, self.config.BACKBONE
            )
        else:
            report = weight_io.load_weights(self.keras_model, filepath, by_name, exclude)
            self.set_log_dir(filepath)
        logger.info("%s", report)
        print(report)
        return report

    def get_imagenet_weights(self):
        """Path of the ImageNet weights of this config's backbone (cached or
        downloaded; a clear error says where to get them otherwise)."""
        return pretrained.get_weights_file("imagenet", self.config.BACKBONE)

    def save_weights(self, filepath):
        """Write the weights in the legacy Keras-2 HDF5 layout, atomically."""
        weight_io.save_weights(self.keras_model, filepath)

    def set_log_dir(self, model_path=None):
        """Run folder and epoch: continue the run of `model_path` if it is a
        checkpoint of ours, else start a new run at epoch 0."""
        parsed = run_dir.parse_checkpoint_path(model_path) if model_path else None
        if parsed:
            self.log_dir, self.epoch = parsed
        else:
            self.log_dir = run_dir.new_log_dir(self.model_dir, self.config.NAME or "mrcnn")
            self.epoch = 0

    def find_last(self):
        """Path of the last checkpoint of the last run of this config's NAME."""
        return run_dir.find_last(self.model_dir, self.config.NAME or "mrcnn")

    # -------------------------------------------------------------- training
    def train(
        self,
        train_dataset,
        val_dataset,
        learning_rate,
        epochs,
        layers,
        augmentation=None,
        custom_callbacks=None,
        freeze=(),
        mask_cache=None,
    ):
        """Train the selected layers up to epoch `epochs` (cumulative).

        train_dataset, val_dataset: prepared `mrcnn.data.dataset.Dataset`s.
        layers: "heads" | "3+" | "4+" | "5+" | "all" | a regex on layer names.
        augmentation: callable (image, masks) -> (image, masks) on tensors,
            e.g. `mrcnn.data.augmentation.FlipCrop()` (see mrcnn/data/pipeline.py).
        mask_cache: None or a folder keeping each image's boxes and
            mini-masks on disk (`mrcnn.data.mask_cache`), for datasets that
            define `cache_version`.
        freeze: ("rpn", "fpn") keeps those layers fixed and drops the RPN
        losses (to continue from a checkpoint with a frozen proposal stage).
        Under a tf.distribute strategy (this object created in its scope),
        each batch of BATCH_SIZE images is split over the replicas, so
        BATCH_SIZE must be a multiple of their number.
        Returns the Keras History.
        """
        if self.mode != "training":
            raise ValueError("train() needs a model created with mode='training'")
        config = self.config
        replicas = self.strategy.num_replicas_in_sync
        if config.BATCH_SIZE % replicas:
            raise ValueError(
                f"BATCH_SIZE = {config.BATCH_SIZE} (GPU_COUNT * IMAGES_PER_GPU) does not split "
                f"over the {replicas} replicas of the distribution strategy"
            )
        if self.log_dir is None:
            self.set_log_dir()
        train_ds = pipeline.build_dataset(train_dataset, config, augmentation=augmentation,
                                          mask_cache=mask_cache)
        val_ds = pipeline.build_dataset(val_dataset, config, mask_cache=mask_cache)

        model = self.keras_model
        names = trainable.set_trainable(model, layers, freeze)
        logger.info("Training %d weight layers (%s) from epoch %d to %d, lr %g",
                    len(names), layers, self.epoch, epochs, learning_rate)
        model.loss_weights = dict.fromkeys(LOSS_NAMES, 1.0)
        model.loss_weights.update(config.LOSS_WEIGHTS)
        if "rpn" in freeze:
            model.loss_weights.update(rpn_class_loss=0.0, rpn_bbox_loss=0.0)
        callbacks = self._run_callbacks() + list(custom_callbacks or [])
        # The optimizer's variables must belong to the model's strategy.
        # Under the mixed_float16 policy, compile wraps the optimizer in a
        # LossScaleOptimizer.
        # A stage that trains the same weights as the previous call keeps its
        # compiled step and optimizer state; only the learning rate changes
        # (tracing the step costs 20-30 s on a CPU).
        setup = (tuple(names), tuple(sorted(model.loss_weights.items())))
        with self.strategy.scope():
            if setup == self._compiled_setup and model.optimizer is not None:
                model.optimizer.learning_rate.assign(learning_rate)
            else:
                model.compile(
                    optimizer=optimizers.make_optimizer(
                        config.OPTIMIZER, learning_rate, config.LEARNING_MOMENTUM,
                        config.GRADIENT_CLIP_NORM,
                    ),
                    jit_compile=False,
                )
                # Slots made now, not in the first trace of the step: a
                # tf.function that creates variables is traced twice.
                model.optimizer.build(model.trainable_variables)
                self._compiled_setup = setup
            history = model.fit(
                train_ds,
                initial_epoch=self.epoch,
                epochs=epochs,
                steps_per_epoch=config.STEPS_PER_EPOCH,
                validation_data=val_ds,
                validation_steps=config.VALIDATION_STEPS,
                callbacks=callbacks,
                shuffle=False,  # the tf.data pipeline shuffles
                verbose=1,
            )
        self.epoch = max(self.epoch, epochs)
        return history

    def _run_callbacks(self):
        """The run folder's callbacks (mrcnn/engine/callbacks.py), in the order that
        keeps a NaN epoch from being saved. Also writes config.json."""
        name = self.config.NAME or "mrcnn"
        os.makedirs(self.log_dir, exist_ok=True)
        files.write_text(os.path.join(self.log_dir, "config.json"),
                         json.dumps(self.config.to_dict(), indent=2, sort_keys=True) + "\n")
        return [
            run_callbacks.StopOnNonFinite(),
            run_callbacks.HistoryCSV(os.path.join(self.log_dir, "history.csv"), self.epoch),
            keras.callbacks.TensorBoard(os.path.join(self.log_dir, "tensorboard"),
                                        write_graph=False, profile_batch=0),
            run_callbacks.EpochCheckpoint(self.log_dir, name),
        ]

    # ------------------------------------------------------------- inference
    def mold_inputs(self, images):
        """Resize and mold images for the network.

        images: list of uint8 [h, w, 3]. Returns molded [B, H, W, 3] float32
        (padded at the bottom / right to a common size when the images
        differ), image_metas [B, 12 + C], windows [B, 4].
        """
        c = self.config
        molded, metas, windows = [], [], []
        for image in images:  # one resize per image of the batch
            resized, window, scale, _, _ = resize_image(
                image, c.IMAGE_MIN_DIM, c.IMAGE_MAX_DIM, c.IMAGE_MIN_SCALE, c.IMAGE_RESIZE_MODE
            )
            molded.append(mold_image(resized, c.MEAN_PIXEL))
            windows.append(window)
            metas.append((image.shape, window, scale))
        height = max(_ceil64(m.shape[0]) for m in molded)
        width = max(_ceil64(m.shape[1]) for m in molded)
        batch = np.zeros([len(images), height, width, 3], np.float32)
        for i, m in enumerate(molded):
            batch[i, : m.shape[0], : m.shape[1]] = m
        image_metas = np.stack([
            compose_image_meta(0, shape, batch.shape[1:], window, scale, np.ones(c.NUM_CLASSES))
            for shape, window, scale in metas
        ])
        return batch, image_metas, np.array(windows)

    def detect(self, images, verbose=0):
        """Detect instances in a batch of images.

        images: list of BATCH_SIZE uint8 RGB arrays [h, w, 3], any sizes.
        Returns one dict per image: rois int32 [N, (y1, x1, y2, x2)],
        class_ids int32 [N], scores float32 [N], masks bool [h, w, N], all in
        the original image's pixels; and proposals int32 [R, 4], the RPN's
        boxes in the same pixels, best first.
        """
        if self.mode != "inference":
            raise ValueError("detect() needs a model created with mode='inference'")
        if not isinstance(images, (list, tuple)) or len(images) != self.config.BATCH_SIZE:
            got = len(images) if isinstance(images, (list, tuple)) else type(images).__name__
            raise ValueError(
                f"detect() takes a list of exactly BATCH_SIZE = {self.config.BATCH_SIZE} "
                f"images (GPU_COUNT * IMAGES_PER_GPU), got {got}"
            )
        for image in images:
            validate_image(image)
        molded, metas, windows = self.mold_inputs(images)
        if self._infer is None:
            self._infer = tf.function(
                lambda inputs: self.keras_model(inputs, training=False),
                reduce_retracing=True, jit_compile=False,
            )
        out = self._infer({"image": tf.constant(molded), "image_meta": tf.constant(metas)})
        results = []
        for i, image in enumerate(images):
            r = unmold_detections(out["detections"][i].numpy(), out["mrcnn_mask"][i].numpy(),
                                  image.shape, molded.shape[1:], windows[i])
            if "rois" in out:
                r["proposals"] = to_original_boxes(out["rois"][i].numpy(), image.shape,
                                                   molded.shape[1:], windows[i])
            results.append(r)
        if verbose:
            for image, r in zip(images, results):
                print(f"image {list(image.shape)}: {len(r['class_ids'])} detections")
        return results

    def get_anchors(self, image_shape):
        """Normalised anchors [A, 4] of a molded image of `image_shape` (numpy)."""
        return self.keras_model.anchors(image_shape[:2]).numpy()


def _ceil64(n):
    return int(np.ceil(n / 64) * 64)


def to_original_boxes(boxes, original_image_shape, image_shape, window):
    """Boxes normalised to the molded image of `image_shape` -> int32
    [N, (y1, x1, y2, x2)] pixels of the original image, clipped to it."""
    boxes = box_ops.denormalize(boxes, image_shape).numpy()
    wy1, wx1, wy2, wx2 = [float(v) for v in window]
    scale_y = (wy2 - wy1) / original_image_shape[0]
    scale_x = (wx2 - wx1) / original_image_shape[1]
    boxes = (boxes - [wy1, wx1, wy1, wx1]) / [scale_y, scale_x, scale_y, scale_x]
    h, w = original_image_shape[:2]
    return np.clip(np.round(boxes), 0, [h, w, h, w]).astype(np.int32)


def unmold_detections(detections, mrcnn_mask, original_image_shape, image_shape, window):
    """One image's detections in its original pixels.

    detections: [D, 6] normalised to the molded image of `image_shape`,
    zero-padded; mrcnn_mask: [D, h, w, C]; window: (y1, x1, y2, x2) of the
    image inside the molded image. Returns the dict `detect()` documents.
    """
    n = int(np.count_nonzero(detections[:, 4] > 0))
    detections = detections[:n]
    class_ids = detections[:, 4].astype(np.int32)
    scores = detections[:, 5].astype(np.float32)
    boxes = to_original_boxes(detections[:, :4], original_image_shape, image_shape, window)
    h, w = original_image_shape[:2]
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
    boxes, class_ids, scores = boxes[keep], class_ids[keep], scores[keep]
    class_masks = mrcnn_mask[:n][keep][np.arange(len(class_ids)), :, :, class_ids]
    full = masks.paste_masks(class_masks, boxes, (h, w)).numpy()
    return {"rois": boxes, "class_ids": class_ids, "scores": scores, "masks": full}
