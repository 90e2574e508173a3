"""ResNet-50/101 (and -14) + FPN backbone with Matterport's layer names.

Every layer that carries weights is named exactly as in Matterport's
`mrcnn/model.py` (`conv1`, `bn_conv1`, `res{stage}{block}_branch2a`, ...,
`fpn_c5p5`, `fpn_p2`, ...), so that the published `mask_rcnn_coco.h5` loads
into these models by name. Layers without weights get names of their own
that never collide with a Matterport weight layer.

Shape shorthand used in the docstrings:
    B  batch size
    H  height of the molded image (a multiple of 64)
    W  width of the molded image (a multiple of 64)
    P  `pyramid_size`, the channel depth of the FPN maps (256)

Feature maps and their strides relative to the molded image:
    C2 [B, H/4,  W/4,  256]    P2 [B, H/4,  W/4,  P]
    C3 [B, H/8,  W/8,  512]    P3 [B, H/8,  W/8,  P]
    C4 [B, H/16, W/16, 1024]   P4 [B, H/16, W/16, P]
    C5 [B, H/32, W/32, 2048]   P5 [B, H/32, W/32, P]
                               P6 [B, H/64, W/64, P]
"""

import keras

from mrcnn.modeling.strip_conv import StripConv2D

# Residual blocks of stages 2..5 (res2..res5 / keras-applications conv2..conv5):
# one conv block 'a', then identity blocks 'b', 'c', ... (stage 4 of
# resnet101: 'b'..'w'). resnet14 keeps only the conv block 'a' of each stage
# (14 layers counting the stem, 4 x 3 convolutions and a classifier; timm's
# resnet14t has this depth with another stem): a third of resnet50's cost,
# for training from scratch on a CPU (the demo).
RESNET_BLOCKS = {"resnet14": (1, 1, 1, 1), "resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}
ARCHITECTURES = tuple(RESNET_BLOCKS)


class BatchNorm(keras.layers.BatchNormalization):
    """Batch normalization that can be frozen, as Matterport's `BatchNorm`.

    Batch statistics are unreliable with the small batches Mask R-CNN trains
    on, so by default (`train_bn=False`) the layer always normalizes with its
    moving statistics and never updates them, whatever `training` says: it
    acts as a fixed affine layer (gamma and beta stay trainable weights).
    With `train_bn=True` it behaves as a plain `BatchNormalization`.

    Keras' defaults are kept (momentum 0.99, epsilon 1e-3), as Matterport
    does.

    Args:
        train_bn: bool. When False, the layer always runs in inference mode.
        **kwargs: passed to `keras.layers.BatchNormalization`
            (`name`, `epsilon`, ...).

    Call arguments:
        inputs: float tensor `[..., channels]`.
        training: bool or None. Honoured only when `train_bn` is True.
        mask: unused, passed through to the base class.

    Returns:
        Float tensor of the same shape as `inputs`.
    """

    def __init__(self, train_bn=False, **kwargs):
        super().__init__(**kwargs)
        self.train_bn = bool(train_bn)

    def call(self, inputs, training=None, mask=None):
        if not self.train_bn:
            training = False
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        config = super().get_config()
        config.update({"train_bn": self.train_bn})
        return config


def _check_architecture(architecture):
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"architecture must be one of {ARCHITECTURES}, got {architecture!r}"
        )


def _bottleneck_block(
    x, kernel_size, filters, stage, block, train_bn, strides=None, zero_init_residual=False
):
    """One ResNet bottleneck block (Caffe style: stride on the first 1x1).

    With `strides` given it is a conv block (projection shortcut
    `res{stage}{block}_branch1`); without, an identity block.

    Args:
        x: symbolic tensor `[B, h, w, c]`.
        kernel_size: int, kernel size of the middle convolution.
        filters: three ints, the filters of the 2a, 2b and 2c convolutions.
        stage: int, 2..5.
        block: str, 'a', 'b', ...
        train_bn: bool, passed to `BatchNorm`.
        strides: int or None. None makes an identity block.
        zero_init_residual: bool. True starts the last batch norm's gamma
            (2c) at 0, so that the block starts as its shortcut.

    Returns:
        Symbolic tensor `[B, h / strides, w / strides, filters[2]]`.
    """
    filters1, filters2, filters3 = filters
    prefix = f"{stage}{block}"
    conv_name = f"res{prefix}_branch"
    bn_name = f"bn{prefix}_branch"
    first_strides = 1 if strides is None else strides

    shortcut = x
    y = keras.layers.Conv2D(
        filters1, 1, strides=first_strides, use_bias=True,
        name=conv_name + "2a",
    )(x)
    y = BatchNorm(train_bn=train_bn, name=bn_name + "2a")(y)
    y = keras.layers.Activation("relu", name=f"res{prefix}_branch2a_relu")(y)
    y = StripConv2D(  # in row strips on one image where faster (strip_conv.py)
        filters2, kernel_size, padding="same", use_bias=True,
        name=conv_name + "2b",
    )(y)
    y = BatchNorm(train_bn=train_bn, name=bn_name + "2b")(y)
    y = keras.layers.Activation("relu", name=f"res{prefix}_branch2b_relu")(y)
    y = keras.layers.Conv2D(
        filters3, 1, use_bias=True, name=conv_name + "2c"
    )(y)
    y = BatchNorm(train_bn=train_bn, name=bn_name + "2c",
                  gamma_initializer="zeros" if zero_init_residual else "ones")(y)

    if strides is not None:
        shortcut = keras.layers.Conv2D(
            filters3, 1, strides=strides, use_bias=True, name=conv_name + "1"
        )(x)
        shortcut = BatchNorm(train_bn=train_bn, name=bn_name + "1")(shortcut)

    y = keras.layers.Add(name=f"res{prefix}_add")([y, shortcut])
    return keras.layers.Activation("relu", name=f"res{prefix}_out")(y)


def resnet_graph(image, architecture, train_bn, zero_init_residual=False):
    """Applies Matterport's ResNet to a symbolic image tensor.

    Args:
        image: symbolic float tensor `[B, H, W, 3]`, the molded image.
        architecture: "resnet14", "resnet50" or "resnet101".
        train_bn: bool, passed to every `BatchNorm`.
        zero_init_residual: bool, passed to every block: each residual
            branch starts at zero (torchvision's option of that name; it
            only changes the initial weights, so it matters when training
            from scratch).

    Returns:
        List `[C2, C3, C4, C5]` of symbolic tensors (see the module
        docstring for their shapes).
    """
    _check_architecture(architecture)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(image)
    x = keras.layers.Conv2D(
        64, 7, strides=2, use_bias=True, name="conv1"
    )(x)
    x = BatchNorm(train_bn=train_bn, name="bn_conv1")(x)
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.MaxPooling2D(
        3, strides=2, padding="same", name="pool1"
    )(x)

    def stage(x, stage_index, filters, identity_blocks, strides):
        x = _bottleneck_block(
            x, 3, filters, stage_index, "a", train_bn, strides=strides,
            zero_init_residual=zero_init_residual,
        )
        for i in range(identity_blocks):
            x = _bottleneck_block(
                x, 3, filters, stage_index, chr(ord("b") + i), train_bn,
                zero_init_residual=zero_init_residual,
            )
        return x

    b2, b3, b4, b5 = RESNET_BLOCKS[architecture]
    c2 = stage(x, 2, (64, 64, 256), b2 - 1, strides=1)
    c3 = stage(c2, 3, (128, 128, 512), b3 - 1, strides=2)
    c4 = stage(c3, 4, (256, 256, 1024), b4 - 1, strides=2)
    c5 = stage(c4, 5, (512, 512, 2048), b5 - 1, strides=2)
    return [c2, c3, c4, c5]


def build_resnet(architecture, train_bn):
    """Builds Matterport's ResNet-50/101 (or ResNet-14) as a Keras model.

    Args:
        architecture: "resnet14", "resnet50" or "resnet101".
        train_bn: bool. False freezes the batch-norm statistics.

    Returns:
        `keras.Model` named "resnet" taking the molded image `[B, H, W, 3]`
        (float32, H and W multiples of 64) and returning `[C2, C3, C4, C5]`.
    """
    image = keras.Input(shape=(None, None, 3), name="input_image")
    outputs = resnet_graph(image, architecture, train_bn)
    return keras.Model(image, outputs, name="resnet")


def build_fpn(c2, c3, c4, c5, pyramid_size=256):
    """Applies Matterport's feature pyramid to symbolic ResNet outputs.

    Args:
        c2, c3, c4, c5: symbolic tensors from `resnet_graph`.
        pyramid_size: int, channels of the pyramid maps
            (Config.TOP_DOWN_PYRAMID_SIZE).

    Returns:
        List `[P2, P3, P4, P5, P6]` of symbolic tensors with strides
        4, 8, 16, 32, 64 and `pyramid_size` channels.
    """
    def lateral(c, level):
        return keras.layers.Conv2D(
            pyramid_size, 1, name=f"fpn_c{level}p{level}"
        )(c)

    def top_down(upper, c, level):
        upsampled = keras.layers.UpSampling2D(
            2, name=f"fpn_p{level + 1}upsampled"
        )(upper)
        return keras.layers.Add(name=f"fpn_p{level}add")(
            [upsampled, lateral(c, level)]
        )

    p5 = lateral(c5, 5)
    p4 = top_down(p5, c4, 4)
    p3 = top_down(p4, c3, 3)
    p2 = top_down(p3, c2, 2)

    def smooth(p, level):  # in row strips on one image where faster (strip_conv.py)
        return StripConv2D(
            pyramid_size, 3, padding="same", name=f"fpn_p{level}"
        )(p)

    p2 = smooth(p2, 2)
    p3 = smooth(p3, 3)
    p4 = smooth(p4, 4)
    p5 = smooth(p5, 5)
    # Subsampling of P5 for the 5th anchor scale (RPN only).
    p6 = keras.layers.MaxPooling2D(pool_size=1, strides=2, name="fpn_p6")(p5)
    return [p2, p3, p4, p5, p6]


def build_backbone(architecture, train_bn, pyramid_size=256, zero_init_residual=False):
    """Builds ResNet + FPN as one flat Keras model.

    All ResNet and FPN layers are direct layers of the returned model (no
    nested ResNet model), each named as in Matterport.

    Args:
        architecture: "resnet14", "resnet50" or "resnet101".
        train_bn: bool. False freezes the batch-norm statistics.
        pyramid_size: int, channels of the pyramid maps.
        zero_init_residual: bool, see `resnet_graph`.

    Returns:
        `keras.Model` named "backbone" taking the molded image `[B, H, W, 3]`
        (float32, H and W multiples of 64) and returning
        `[P2, P3, P4, P5, P6]`, each `[B, H/s, W/s, pyramid_size]` with
        s = 4, 8, 16, 32, 64.
    """
    image = keras.Input(shape=(None, None, 3), name="input_image")
    c2, c3, c4, c5 = resnet_graph(image, architecture, train_bn, zero_init_residual)
    outputs = build_fpn(c2, c3, c4, c5, pyramid_size=pyramid_size)
    return keras.Model(image, outputs, name="backbone")
