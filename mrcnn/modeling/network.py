"""Mask R-CNN as one Keras model: the parts assembled, and the training step.

Shape shorthand:
    B: images per batch; H, W: molded image size (multiples of 64)
    A: anchors; R: proposals per image; T: TRAIN_ROIS_PER_IMAGE
    D: DETECTION_MAX_INSTANCES; C: NUM_CLASSES (background included)
    boxes inside the model are normalised (y1, x1, y2, x2), see box_ops

`MaskRCNNModel` only assembles the parts (backbone.py, heads.py,
proposals.py, targets.py, roi_align.py, detection.py, losses.py) and gives
Keras its loss (`compute_loss`); its settings come in a few small frozen
specs (`BackboneSpec`, `anchors.Anchors`, `RPNSpec`, `HeadSpec`,
`SamplingSpec`, `DetectionSpec`, `LossSpec`). `specs_from_config(config,
mode)` reads them off a `Config`, where every default lives;
`build_network(config, mode)` builds the model from them.

One graph in keras.ops with static shapes: the training step (targets
included: padded ground truth, fixed ROI counts with validity masks, random
sampling from the model's SeedGenerator) and the inference graph run in
Keras' own train_step / test_step / predict_step, so `fit` works unchanged,
and they compile (XLA). Keras 3 compiles with XLA by itself on a GPU
(jit_compile="auto").

Mixed precision (`engine.devices.set_mixed_precision`): the Keras layers
(backbone, RPN, heads) compute in float16; their outputs are cast to float32
where they leave them (`_rpn`, `_heads`, `_masks`), so proposals, targets,
losses and detections run in float32. ROIAlign reads the float16 feature
maps and returns float32.

Several devices (`engine.devices.make_strategy`): build the model under
`strategy.scope()`. Each replica gets BATCH_SIZE / replicas images;
`compute_loss` divides its loss by the number of replicas, as Keras' own
losses are, since the optimizer sums the replicas' gradients.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from mrcnn.config import LOSS_NAMES
from mrcnn.data.image import parse_image_meta_graph
from mrcnn.modeling import box_ops, detection, losses, matching, proposals, targets
from mrcnn.modeling.anchors import Anchors
from mrcnn.modeling.backbone import build_backbone
from mrcnn.modeling.heads import FpnClassifierHead, FpnMaskHead, build_rpn_model
from mrcnn.modeling.roi_align import pyramid_roi_align

MODES = ("training", "inference")


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """ResNet + FPN: name ("resnet14" | "resnet50" | "resnet101"), whether
    BatchNorm statistics train, the pyramid's width, zero-init residuals."""

    name: str
    train_bn: bool
    pyramid_size: int
    zero_init_residual: bool


@dataclasses.dataclass(frozen=True)
class RPNSpec:
    """Region proposals: the shared conv's width, the box delta std devs,
    NMS IoU, top-k before NMS, proposals kept (R) and anchors labelled per
    image for the RPN losses (S, training)."""

    conv_dim: int
    std_dev: tuple
    nms_threshold: float
    pre_nms_limit: int
    proposal_count: int
    anchors_per_image: int


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """Classifier and mask heads: ROIAlign sizes, widths, mask size (h, w)
    and the box delta std devs of the classifier's regression."""

    pool_size: int
    mask_pool_size: int
    fc_layers_size: int
    mask_conv_dim: int
    mask_shape: tuple
    bbox_std_dev: tuple


@dataclasses.dataclass(frozen=True)
class SamplingSpec:
    """Head targets (training): ROIs per image (T), positive fraction,
    ground-truth boxes added to the proposals, mini-masks as input."""

    rois_per_image: int
    positive_fraction: float
    include_gt: bool
    mini_masks: bool


@dataclasses.dataclass(frozen=True)
class DetectionSpec:
    """Final detections (inference): at most D, score threshold, per-class NMS IoU."""

    max_instances: int
    min_confidence: float
    nms_threshold: float


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """Weights of the five losses ((name, weight) pairs) and the L2 factor."""

    weights: tuple
    weight_decay: float

    def weight(self, name):
        return dict(self.weights)[name]


SPECS = {"backbone": BackboneSpec, "anchors": Anchors, "rpn": RPNSpec, "heads": HeadSpec,
         "sampling": SamplingSpec, "detection": DetectionSpec, "losses": LossSpec}


def specs_from_config(config, mode):
    """The specs of a Config (its fields are the only defaults). -> dict"""
    return {
        "backbone": BackboneSpec(config.BACKBONE, config.TRAIN_BN, config.TOP_DOWN_PYRAMID_SIZE,
                                 config.ZERO_INIT_RESIDUAL),
        "anchors": Anchors(config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                           config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE),
        "rpn": RPNSpec(config.RPN_CONV_DIM, _floats(config.RPN_BBOX_STD_DEV),
                       config.RPN_NMS_THRESHOLD, config.PRE_NMS_LIMIT,
                       config.POST_NMS_ROIS_TRAINING if mode == "training"
                       else config.POST_NMS_ROIS_INFERENCE, config.RPN_TRAIN_ANCHORS_PER_IMAGE),
        "heads": HeadSpec(config.POOL_SIZE, config.MASK_POOL_SIZE,
                          config.FPN_CLASSIF_FC_LAYERS_SIZE, config.MASK_CONV_DIM,
                          tuple(config.MASK_SHAPE), _floats(config.BBOX_STD_DEV)),
        "sampling": SamplingSpec(config.TRAIN_ROIS_PER_IMAGE, config.ROI_POSITIVE_RATIO,
                                 config.PROPOSALS_INCLUDE_GT, config.USE_MINI_MASK),
        "detection": DetectionSpec(config.DETECTION_MAX_INSTANCES,
                                    config.DETECTION_MIN_CONFIDENCE,
                                    config.DETECTION_NMS_THRESHOLD),
        "losses": LossSpec(tuple({**dict.fromkeys(LOSS_NAMES, 1.0), **config.LOSS_WEIGHTS}.items()),
                           config.WEIGHT_DECAY),
    }


def _floats(values):
    return tuple(float(v) for v in np.asarray(values).reshape(-1))


def build_network(config, mode):
    """The `MaskRCNNModel` of a Config, its weights created."""
    model = MaskRCNNModel(mode, config.NUM_CLASSES, **specs_from_config(config, mode))
    model.create_weights()
    return model


# The inference graph's tensors, by Matterport's layer names (the keys of
# `MaskRCNNModel.inference_graph`).
GRAPH_OUTPUTS = (
    "input_image", "input_image_meta", "fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5", "fpn_p6",
    "rpn_class_logits", "rpn_class", "rpn_bbox", "ROI", "mrcnn_class_logits", "mrcnn_class",
    "mrcnn_bbox", "mrcnn_detection", "mrcnn_mask",
)


class GraphOutput(str):
    """The name of one of `inference_graph`'s tensors, standing where
    Matterport code takes a layer's symbolic output
    (`keras_model.get_layer("ROI").output`, for `MaskRCNN.run_graph`)."""


class _GraphNode:
    """What `MaskRCNNModel.get_layer` gives for a GRAPH_OUTPUTS name: no
    weights, only `.name` and `.output` (a GraphOutput)."""

    def __init__(self, name):
        self.name = name
        self.output = GraphOutput(name)


class MaskRCNNModel(keras.Model):
    """Mask R-CNN with a ResNet + FPN backbone, as one Keras model.

    Args:
        mode: "training" (call takes ground truth, returns targets and head
            outputs for the losses) or "inference" (returns detections).
        num_classes: C, background included.
        backbone, anchors, rpn, heads, sampling, detection, losses: the
            specs (module docstring); `specs_from_config` makes them.

    Call arguments:
        inputs: dict with "image" [B, H, W, 3] float32 (molded) and
            "image_meta" [B, 12 + C]; in training mode also "gt_class_ids"
            [B, M], "gt_boxes" [B, M, 4], "gt_masks" [B, M, h, w] in {0, 1}
            (uint8 from mrcnn/data/pipeline.py; bool works too).
        training: whether BatchNorm layers with train_bn update statistics.

    Returns a dict. Training mode: rpn_class_logits [B, A, 2], rpn_bbox
    [B, A, 4], the RPN targets rpn_match [B, A] and rpn_target_deltas
    [B, S, 4] (computed here, on the accelerator, from gt_boxes),
    rois [B, T, 4], target_class_ids [B, T], target_deltas [B, T, 4],
    roi_valid [B, T], mrcnn_class_logits [B, T, C], mrcnn_bbox [B, T, C, 4];
    for the first P rows, where the positives are (P = max_positives(T,
    positive_fraction)): target_masks [B, P, h, w], mask_class_ids [B, P],
    mrcnn_mask [B, P, h, w, C].
    Inference mode: detections [B, D, 6] (y1, x1, y2, x2, class_id, score),
    mrcnn_mask [B, D, h, w, C], rois [B, R, 4] (the proposals).
    """

    def __init__(self, mode, num_classes, backbone, anchors, rpn, heads, sampling, detection,
                 losses, seed=None, **kwargs):
        kwargs.setdefault("name", "mask_rcnn")
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.num_classes = num_classes
        self.specs = {"backbone": backbone, "anchors": anchors, "rpn": rpn, "heads": heads,
                      "sampling": sampling, "detection": detection, "losses": losses}
        self.anchor_spec, self.rpn_spec, self.head_spec = anchors, rpn, heads
        self.sampling, self.detection_spec, self.loss_spec = sampling, detection, losses
        self.loss_weights = dict(losses.weights)

        self.backbone = build_backbone(backbone.name, backbone.train_bn, backbone.pyramid_size,
                                       backbone.zero_init_residual)
        self.rpn = build_rpn_model(anchors.stride, anchors.per_location, backbone.pyramid_size,
                                   rpn.conv_dim)
        self.classifier = FpnClassifierHead(num_classes, heads.pool_size, heads.fc_layers_size,
                                            backbone.train_bn, name="mrcnn_classifier")
        self.mask_head = FpnMaskHead(num_classes, backbone.train_bn, heads.mask_conv_dim,
                                     name="mrcnn_mask_head")
        # The five losses, each a metric ("loss", their weighted sum, is
        # Keras' own loss tracker).
        self.trackers = {n: keras.metrics.Mean(name=n) for n in LOSS_NAMES}
        # Random sampling of anchors and ROIs in the training step (a state
        # variable, not a weight: saved weight files do not see it).
        self.seed_generator = keras.random.SeedGenerator(seed, name="sampling_seed")

    def get_config(self):
        return {**super().get_config(), "mode": self.mode, "num_classes": self.num_classes,
                **{k: dataclasses.asdict(v) for k, v in self.specs.items()}}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        specs = {k: SPECS[k](**config.pop(k)) for k in SPECS}
        return cls(**config, **specs)

    def create_weights(self, size=64):
        """Create every weight by running each part once on a small image
        (backbone, RPN, heads on one ROI): no proposals, targets or NMS, so
        it is quick also op by op (JAX eager)."""
        image = np.zeros([1, size, size, 3], np.float32)
        maps = self.backbone(image, training=False)
        self._rpn(maps)
        rois = np.array([[[0.0, 0.0, 1.0, 1.0]]], np.float32)
        self._heads(rois, maps[:4], (size, size), False)
        self._masks(rois, maps[:4], (size, size), False)
        self.built = True

    # ------------------------------------------------------------- the graph
    def anchors(self, image_shape):
        """Normalised anchors [A, 4] of a molded image of (H, W)."""
        return self.anchor_spec.boxes(image_shape)

    def _rpn_targets(self, gt_class_ids, gt_boxes, image_shape):
        """RPN targets of a batch: rpn_match [B, A] int32, deltas [B, S, 4].

        gt_boxes: [B, M, 4] normalised; matched in pixels.
        """
        return targets.rpn_targets_batch(
            self.anchor_spec.boxes(image_shape, normalized=False), gt_class_ids,
            box_ops.denormalize(gt_boxes, image_shape, rounded=False),
            anchors_per_image=self.rpn_spec.anchors_per_image, std_dev=self.rpn_spec.std_dev,
            seed=self.seed_generator,
            iou_fn=lambda _, boxes: self.anchor_spec.iou(image_shape, boxes))

    def _rpn(self, feature_maps):
        """RPN on every level: logits [B, A, 2], probs [B, A, 2], deltas
        [B, A, 4], float32 (also under mixed precision)."""
        outputs = [self.rpn(p) for p in feature_maps]
        return [ops.cast(ops.concatenate(list(o), axis=1), "float32") for o in zip(*outputs)]

    def _heads(self, rois, feature_maps, image_shape, training):
        """Classifier head on rois [B, N, 4]: logits [B, N, C], probs
        [B, N, C], deltas [B, N, C, 4], float32."""
        pooled = pyramid_roi_align(rois, feature_maps, image_shape, self.head_spec.pool_size)
        outputs = self.classifier(pooled, training=training)
        return tuple(ops.cast(o, "float32") for o in outputs)

    def _masks(self, rois, feature_maps, image_shape, training):
        """Mask head on rois [B, N, 4]: [B, N, h, w, C] float32."""
        pooled = pyramid_roi_align(rois, feature_maps, image_shape,
                                   self.head_spec.mask_pool_size)
        return ops.cast(self.mask_head(pooled, training=training), "float32")

    def _first_stage(self, image, training):
        """Backbone, RPN and proposals, shared by both modes."""
        image_shape = image_size(image)
        feature_maps = self.backbone(image, training=training)
        rpn_logits, rpn_probs, rpn_deltas = self._rpn(feature_maps)
        rpn = self.rpn_spec
        rois = proposals.generate_proposals(
            rpn_probs, rpn_deltas, self.anchors(image_shape), proposal_count=rpn.proposal_count,
            nms_threshold=rpn.nms_threshold, pre_nms_limit=rpn.pre_nms_limit,
            std_dev=rpn.std_dev)
        return image_shape, feature_maps, rpn_logits, rpn_probs, rpn_deltas, rois

    def call(self, inputs, training=None):
        if self.mode == "training":
            image_shape, maps, rpn_logits, _, rpn_deltas, rois = self._first_stage(
                inputs["image"], training)
            return self._training_outputs(inputs, rois, maps[:4], image_shape, training,
                                          rpn_logits, rpn_deltas)
        named = self.inference_graph(inputs, training)
        return {"detections": named["mrcnn_detection"], "mrcnn_mask": named["mrcnn_mask"],
                "rois": named["ROI"]}

    def get_layer(self, name=None, index=None):
        """Keras' get_layer, which also finds the backbone's layers by name
        and, for Matterport's `run_graph`, the names of GRAPH_OUTPUTS (a
        stand-in whose `.output` is a GraphOutput: this subclassed model's
        inner tensors have no symbolic outputs)."""
        try:
            return super().get_layer(name, index)
        except ValueError:
            if any(layer.name == name for layer in self.backbone.layers):
                return self.backbone.get_layer(name)
            if name in GRAPH_OUTPUTS:
                return _GraphNode(name)
            raise

    def inference_graph(self, inputs, training=None):
        """The inference graph's tensors, by Matterport's layer names.

        inputs: dict with "image" and "image_meta" (see call). Returns a dict:
        input_image, input_image_meta, fpn_p2 .. fpn_p6, rpn_class_logits
        [B, A, 2], rpn_class [B, A, 2], rpn_bbox [B, A, 4], ROI [B, R, 4]
        (the proposals), mrcnn_class_logits / mrcnn_class [B, R, C],
        mrcnn_bbox [B, R, C, 4], mrcnn_detection [B, D, 6], mrcnn_mask
        [B, D, h, w, C]. `call` in inference mode returns three of them.
        """
        image_shape, maps, rpn_logits, rpn_probs, rpn_deltas, rois = self._first_stage(
            inputs["image"], training)
        head_maps = maps[:4]
        logits, probs, deltas = self._heads(rois, head_maps, image_shape, training)
        windows = box_ops.normalize(parse_image_meta_graph(inputs["image_meta"])["window"],
                                    image_shape)
        d = self.detection_spec
        detections = detection.detect_batch(
            rois, probs, deltas, windows, max_instances=d.max_instances,
            min_confidence=d.min_confidence, nms_threshold=d.nms_threshold,
            std_dev=self.head_spec.bbox_std_dev)
        mask = self._masks(detections[..., :4], head_maps, image_shape, training)
        return {
            "input_image": inputs["image"], "input_image_meta": inputs["image_meta"],
            **{f"fpn_p{level}": p for level, p in zip(range(2, 7), maps)},
            "rpn_class_logits": rpn_logits, "rpn_class": rpn_probs, "rpn_bbox": rpn_deltas,
            "ROI": rois, "mrcnn_class_logits": logits, "mrcnn_class": probs,
            "mrcnn_bbox": deltas, "mrcnn_detection": detections, "mrcnn_mask": mask,
        }

    def _training_outputs(self, inputs, rois, head_maps, image_shape, training,
                          rpn_logits, rpn_deltas):
        s = self.sampling
        rois, class_ids, deltas, mask_targets, valid = targets.detection_targets_batch(
            rois, inputs["gt_class_ids"], inputs["gt_boxes"], inputs["gt_masks"],
            rois_per_image=s.rois_per_image, positive_fraction=s.positive_fraction,
            std_dev=self.head_spec.bbox_std_dev, mask_shape=self.head_spec.mask_shape,
            include_gt=s.include_gt, mini_masks=s.mini_masks, seed=self.seed_generator)
        logits, _, pred_deltas = self._heads(rois, head_maps, image_shape, training)
        # Positives come first and number at most max_positives: the mask
        # head (the costliest part of a step) only runs on those rows.
        m = matching.max_positives(s.rois_per_image, s.positive_fraction)
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
            "target_masks": mask_targets,
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
                outputs["rpn_target_deltas"], outputs["rpn_match"], outputs["rpn_bbox"]),
            "mrcnn_class_loss": losses.mrcnn_class_loss(
                outputs["target_class_ids"], outputs["mrcnn_class_logits"], active,
                outputs["roi_valid"]),
            "mrcnn_bbox_loss": losses.mrcnn_bbox_loss(
                outputs["target_deltas"], outputs["target_class_ids"], outputs["mrcnn_bbox"]),
            "mrcnn_mask_loss": losses.mrcnn_mask_loss(
                outputs["target_masks"], outputs["mask_class_ids"], outputs["mrcnn_mask"]),
        }

    def total_loss(self, parts):
        """The weighted sum of the five losses plus the L2 term. -> scalar"""
        total = sum(self.loss_weights[k] * v for k, v in parts.items())
        if self.loss_spec.weight_decay:
            total += losses.weight_decay_loss(self.trainable_weights, self.loss_spec.weight_decay)
        return total

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The loss of Keras' own train_step and test_step (every backend).

        x: the input dict; y_pred: the training-mode outputs. Records the
        five losses in their metrics; returns the total (`total_loss`)
        divided by the number of replicas under a tf.distribute strategy,
        as Keras' own losses are (its optimizer sums the replicas'
        gradients; Keras' "loss" metric multiplies it back).
        """
        del y, sample_weight, training
        if self.mode != "training":
            raise ValueError("training and evaluating losses need a model built in "
                             "'training' mode")
        parts = self.compute_losses(x, y_pred)
        for name, value in parts.items():
            self.trackers[name].update_state(value)
        return per_replica(self.total_loss(parts))


def image_size(image):
    """(H, W) of images [B, H, W, 3]: Python ints where static, else scalars."""
    static, dynamic = image.shape[1:3], ops.shape(image)[1:3]
    return tuple(s if s is not None else d for s, d in zip(static, dynamic))


def per_replica(loss):
    """loss divided by the replicas of the current tf.distribute strategy
    (1 outside one, and on other backends)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / float(replicas)
    return loss
