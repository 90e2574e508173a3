"""RPN, classifier and mask heads with Matterport's layer names.

The weight layers are named exactly as in Matterport's `mrcnn/model.py`
(`rpn_conv_shared`, `mrcnn_class_conv1`, `mrcnn_mask_bn3`, ...) so that
`mask_rcnn_coco.h5` loads by name. Instead of Matterport's `TimeDistributed`
wrappers, the ROI heads fold the ROI axis into the batch axis
(`[B, N, ...] -> [B * N, ...]`), apply plain layers, and unfold the result.
The weights and the batch-norm statistics (taken over B * N * h * w) are the
same.

Shape shorthand used in the docstrings:
    B  batch size
    H, W  height and width of one feature map
    D  depth (channels) of the feature maps, 256
    A  anchors per location (len(RPN_ANCHOR_RATIOS), 3)
    N  ROIs per image
    C  classes, background included (NUM_CLASSES)
    S  pool size of the classifier head (POOL_SIZE, 7)
    F  width of the classifier's fully-connected layers (1024)
    M  pool size of the mask head (MASK_POOL_SIZE, 14); masks are 2M x 2M
"""

import keras
from keras import ops

from mrcnn.modeling.backbone import BatchNorm
from mrcnn.modeling.strip_conv import StripConv2D


def build_rpn_model(anchor_stride, anchors_per_location, depth, conv_filters=512):
    """Builds the region proposal network shared by all pyramid levels.

    The anchor axis of the outputs is ordered row-major as (y, x, anchor),
    which is the order the anchors must be generated in.

    Args:
        anchor_stride: int, stride of the anchors in feature-map cells
            (RPN_ANCHOR_STRIDE, 1).
        anchors_per_location: int, A.
        depth: int, D, channels of the feature maps.
        conv_filters: int, width of the shared 3x3 convolution (512 in
            Matterport's weights; RPN_CONV_DIM).

    Returns:
        `keras.Model` named "rpn_model" taking one feature map
        `[B, H, W, D]` and returning, with K = ceil(H / anchor_stride) *
        ceil(W / anchor_stride) * A:
            rpn_class_logits: `[B, K, 2]` background / foreground logits.
            rpn_probs: `[B, K, 2]` their softmax.
            rpn_bbox: `[B, K, 4]` deltas (dy, dx, log(dh), log(dw)), still
                to be multiplied by RPN_BBOX_STD_DEV.
    """
    feature_map = keras.Input(
        shape=(None, None, depth), name="input_rpn_feature_map"
    )
    shared = StripConv2D(  # in row strips on one image where faster (strip_conv.py)
        int(conv_filters), 3, padding="same", activation="relu", strides=anchor_stride,
        name="rpn_conv_shared",
    )(feature_map)
    x = keras.layers.Conv2D(
        2 * anchors_per_location, 1, padding="valid", name="rpn_class_raw"
    )(shared)
    rpn_class_logits = keras.layers.Reshape(
        (-1, 2), name="rpn_class_logits_flat"
    )(x)
    rpn_probs = keras.layers.Activation("softmax", name="rpn_probs_flat")(
        rpn_class_logits
    )
    x = keras.layers.Conv2D(
        4 * anchors_per_location, 1, padding="valid", name="rpn_bbox_pred"
    )(shared)
    rpn_bbox = keras.layers.Reshape((-1, 4), name="rpn_bbox_flat")(x)
    return keras.Model(
        feature_map, [rpn_class_logits, rpn_probs, rpn_bbox], name="rpn_model"
    )


def _fold_rois(inputs):
    """`[B, N, h, w, c]` -> `[max(B * N, 1), h, w, c]` and B * N.

    h, w and c must be static. When there are no ROIs at all, one row of
    zeros is appended: TensorFlow's CPU convolution returns a tensor of the
    wrong shape on an empty batch. `_unfold_rois` drops that row again. (With
    `train_bn=True` and training, a batch norm then sees only that row; no
    real batch is ever empty in training, as ROIs are zero-padded.)
    """
    h, w, c = inputs.shape[2:]
    x = ops.reshape(inputs, (-1, h, w, c))
    count = ops.shape(x)[0]
    if isinstance(count, int):
        if count > 0:
            return x, count
        pad = 1
    else:
        pad = ops.maximum(1 - count, 0)
    return ops.pad(x, [[0, pad], [0, 0], [0, 0], [0, 0]]), count


def _whole_window_conv(conv, x):
    """conv(x) for a "valid" Conv2D whose kernel is as large as its input
    (the classifier's S x S conv on S x S crops, and its 1 x 1 conv on the
    1 x 1 result), as one matmul.

    x: [N, S, S, D] -> [N, 1, 1, F]. The same products as the convolution
    (the kernel [S, S, D, F] flattens like the crops), summed in another
    order: equal to float rounding (tests). Why: TensorFlow's CPU gradients
    of the S x S convolution are ~70x slower than a matmul's on AVX2
    machines (13 s vs 0.18 s for 200 ROIs at F = 1024), which made them most
    of a training step there (docs/benchmarks.md, "Stages"); and oneDNN's
    1 x 1 convolution of 1000 ROIs of 1 x 1 x 1024 takes 55 ms against
    9 ms for the matmul (an AVX-512 Xeon, 2 cores).
    """
    s, d, f = conv.kernel.shape[0] * conv.kernel.shape[1], conv.kernel.shape[2], conv.filters
    dtype = conv.compute_dtype
    flat = ops.reshape(ops.cast(x, dtype), (-1, s * d))
    y = ops.matmul(flat, ops.reshape(ops.cast(conv.kernel, dtype), (s * d, f)))
    if conv.use_bias:
        y = y + ops.cast(conv.bias, dtype)
    return ops.reshape(y, (-1, 1, 1, f))


def _unfold_rois(x, count, batch, num_rois):
    """`[max(B * N, 1), ...]` -> `[B, N, ...]` (trailing dims static)."""
    return ops.reshape(x[:count], (batch, num_rois) + tuple(x.shape[1:]))


class FpnClassifierHead(keras.layers.Layer):
    """Classifier and box-regression head on pooled ROI features.

    conv SxS (F) - BatchNorm - relu - conv 1x1 (F) - BatchNorm - relu, then
    two dense layers: class logits (C) and class-specific box deltas (C * 4).

    Args:
        num_classes: int, C, background included.
        pool_size: int, S, side of the pooled ROI features.
        fc_layers_size: int, F (FPN_CLASSIF_FC_LAYERS_SIZE).
        train_bn: bool. False freezes the batch-norm statistics.
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `[B, N, S, S, D]`, ROI-aligned features.
            N may be 0.
        training: bool or None. Reaches the batch norms only when
            `train_bn` is True.

    Returns:
        Tuple `(logits, probs, deltas)`:
            logits: `[B, N, C]` class logits.
            probs: `[B, N, C]` their softmax.
            deltas: `[B, N, C, 4]` (dy, dx, log(dh), log(dw)) per class,
                still to be multiplied by BBOX_STD_DEV.
    """

    def __init__(
        self, num_classes, pool_size=7, fc_layers_size=1024, train_bn=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.pool_size = int(pool_size)
        self.fc_layers_size = int(fc_layers_size)
        self.train_bn = bool(train_bn)

        self.class_conv1 = keras.layers.Conv2D(
            self.fc_layers_size, self.pool_size, padding="valid",
            name="mrcnn_class_conv1",
        )
        self.class_bn1 = BatchNorm(
            train_bn=self.train_bn, name="mrcnn_class_bn1"
        )
        self.class_conv2 = keras.layers.Conv2D(
            self.fc_layers_size, 1, name="mrcnn_class_conv2"
        )
        self.class_bn2 = BatchNorm(
            train_bn=self.train_bn, name="mrcnn_class_bn2"
        )
        self.class_logits = keras.layers.Dense(
            self.num_classes, name="mrcnn_class_logits"
        )
        self.bbox_fc = keras.layers.Dense(
            self.num_classes * 4, name="mrcnn_bbox_fc"
        )

    def build(self, input_shape):
        s, d = self.pool_size, input_shape[-1]
        f = self.fc_layers_size
        self.class_conv1.build((None, s, s, d))
        self.class_bn1.build((None, 1, 1, f))
        self.class_conv2.build((None, 1, 1, f))
        self.class_bn2.build((None, 1, 1, f))
        self.class_logits.build((None, f))
        self.bbox_fc.build((None, f))
        self.built = True

    def call(self, inputs, training=None):
        bn_training = training if self.train_bn else False
        batch, num_rois = ops.shape(inputs)[0], ops.shape(inputs)[1]
        x, count = _fold_rois(inputs)
        x = _whole_window_conv(self.class_conv1, x)
        x = ops.relu(self.class_bn1(x, training=bn_training))
        x = _whole_window_conv(self.class_conv2, x)
        x = ops.relu(self.class_bn2(x, training=bn_training))
        # [B * N, 1, 1, F] -> [B * N, F]
        shared = ops.reshape(x, (-1, self.fc_layers_size))
        logits = self.class_logits(shared)
        probs = ops.softmax(logits, axis=-1)
        deltas = ops.reshape(self.bbox_fc(shared), (-1, self.num_classes, 4))
        return (
            _unfold_rois(logits, count, batch, num_rois),
            _unfold_rois(probs, count, batch, num_rois),
            _unfold_rois(deltas, count, batch, num_rois),
        )

    def compute_output_shape(self, input_shape):
        batch, num_rois = input_shape[0], input_shape[1]
        c = self.num_classes
        return (
            (batch, num_rois, c),
            (batch, num_rois, c),
            (batch, num_rois, c, 4),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "pool_size": self.pool_size,
                "fc_layers_size": self.fc_layers_size,
                "train_bn": self.train_bn,
            }
        )
        return config


class FpnMaskHead(keras.layers.Layer):
    """Mask head on pooled ROI features.

    Four (conv 3x3 (K) - BatchNorm - relu), a 2x2 stride-2 transposed
    convolution (K, relu) and a 1x1 convolution to C mask logits (Matterport
    puts the sigmoid in that layer; here the model takes it in float32, and
    the loss works from the logits: the weights are the same).

    Args:
        num_classes: int, C, background included.
        train_bn: bool. False freezes the batch-norm statistics.
        conv_filters: int, K, 256 in Matterport's weights (MASK_CONV_DIM).
        **kwargs: base layer arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: float tensor `[B, N, M, M, D]`, ROI-aligned features.
            N may be 0.
        training: bool or None. Reaches the batch norms only when
            `train_bn` is True.

    Returns:
        Float tensor `[B, N, 2M, 2M, C]`, per-class mask logits (in the
        compute dtype; their sigmoid is the mask probability).
    """

    def __init__(self, num_classes, train_bn=False, conv_filters=256, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.train_bn = bool(train_bn)
        self.conv_filters = f = int(conv_filters)

        # Attributes, not a list, so each is tracked under its own name.
        self.mask_conv1 = keras.layers.Conv2D(
            f, 3, padding="same", name="mrcnn_mask_conv1")
        self.mask_bn1 = BatchNorm(train_bn=self.train_bn, name="mrcnn_mask_bn1")
        self.mask_conv2 = keras.layers.Conv2D(
            f, 3, padding="same", name="mrcnn_mask_conv2")
        self.mask_bn2 = BatchNorm(train_bn=self.train_bn, name="mrcnn_mask_bn2")
        self.mask_conv3 = keras.layers.Conv2D(
            f, 3, padding="same", name="mrcnn_mask_conv3")
        self.mask_bn3 = BatchNorm(train_bn=self.train_bn, name="mrcnn_mask_bn3")
        self.mask_conv4 = keras.layers.Conv2D(
            f, 3, padding="same", name="mrcnn_mask_conv4")
        self.mask_bn4 = BatchNorm(train_bn=self.train_bn, name="mrcnn_mask_bn4")
        self.mask_deconv = keras.layers.Conv2DTranspose(
            f, 2, strides=2, activation="relu", name="mrcnn_mask_deconv"
        )
        self.mask_out = keras.layers.Conv2D(
            self.num_classes, 1, name="mrcnn_mask"
        )

    def _conv_bn_pairs(self):
        return [
            (self.mask_conv1, self.mask_bn1),
            (self.mask_conv2, self.mask_bn2),
            (self.mask_conv3, self.mask_bn3),
            (self.mask_conv4, self.mask_bn4),
        ]

    def build(self, input_shape):
        m, d = input_shape[2], input_shape[-1]
        f = self.conv_filters
        depth = d
        for conv, bn in self._conv_bn_pairs():
            conv.build((None, m, m, depth))
            bn.build((None, m, m, f))
            depth = f
        self.mask_deconv.build((None, m, m, f))
        up = None if m is None else 2 * m
        self.mask_out.build((None, up, up, f))
        self.built = True

    def call(self, inputs, training=None):
        bn_training = training if self.train_bn else False
        batch, num_rois = ops.shape(inputs)[0], ops.shape(inputs)[1]
        x, count = _fold_rois(inputs)
        for conv, bn in self._conv_bn_pairs():
            x = ops.relu(bn(conv(x), training=bn_training))
        x = self.mask_deconv(x)
        x = self.mask_out(x)
        return _unfold_rois(x, count, batch, num_rois)

    def compute_output_shape(self, input_shape):
        h, w = input_shape[2], input_shape[3]
        h = None if h is None else 2 * h
        w = None if w is None else 2 * w
        return (input_shape[0], input_shape[1], h, w, self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_classes": self.num_classes, "train_bn": self.train_bn,
             "conv_filters": self.conv_filters}
        )
        return config
