"""MirroredStrategy on two logical CPUs, for tests/mrcnn/engine/test_distribute.py.

    python -m tests.mrcnn.engine.mirrored_steps OUT_DIR

A script, run in a subprocess: logical CPU devices can only be set up
before TensorFlow starts its runtime. It writes OUT_DIR/result.json:

    replicas: the strategy's number of replicas (2)
    single, mirrored: the first SGD step of the same model (same initial
        weights) on the same global batch of 2 images, on one device and on
        the two replicas (the latter inside `MaskRCNN.train`): "update_norm"
        (norm of the change of all weights), "loss" (as reported)
    update_diff_norm: norm of the difference of the two updates
    train: that `MaskRCNN.train` under the strategy, 1 epoch of 2 steps:
        "history", "files" of its run folder, "epoch"
    checkpoint_max_abs_diff: its checkpoint, loaded into the single-device
        model, against the mirrored model's weights
    odd_batch_error: the message of train() with BATCH_SIZE 3 on 2 replicas
    fused_adam_max_diff: 3 steps of mrcnn.engine.optimizers.FusedAdam against
        keras.optimizers.Adam, both under the strategy (max abs difference
        of the variables), and "fused_adam_moved" (how far they moved)

Why the two steps must match: the batch holds one image twice and every
sampling takes all candidates (all anchors, up to RPN_TRAIN_ANCHORS_PER_IMAGE;
all proposals and instances, up to TRAIN_ROIS_PER_IMAGE with
ROI_POSITIVE_RATIO 1) and no two proposals tie (NoisyShapes), so each
replica's loss is the single device's loss;
with each replica's loss divided by 2 and the gradients summed, the updates
are equal; without the division the mirrored update is twice as large.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# Before anything starts TensorFlow's runtime.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mrcnn.data import pipeline
from mrcnn.data.shapes import ShapesDataset  # noqa: E402
from mrcnn.engine import devices, optimizers, trainable
from mrcnn.engine.optimizers import FusedAdam  # noqa: E402
from mrcnn.model import MaskRCNN  # noqa: E402
from samples.shapes import ShapesConfig  # noqa: E402

SIZE = 64
LEARNING_RATE = 1e-3


class StepConfig(ShapesConfig):
    """Tiny, and every anchor / ROI candidate is sampled (no randomness)."""

    NAME = "mirrored"
    GPU_COUNT = 2
    IMAGES_PER_GPU = 1
    IMAGE_MIN_DIM = SIZE
    IMAGE_MAX_DIM = SIZE
    FPN_CLASSIF_FC_LAYERS_SIZE = 32
    TOP_DOWN_PYRAMID_SIZE = 32
    MASK_CONV_DIM = 256  # Matterport's widths, whatever the shapes sample uses
    RPN_CONV_DIM = 512
    MINI_MASK_SHAPE = (28, 28)
    RPN_TRAIN_ANCHORS_PER_IMAGE = 1024  # >= the 1023 anchors of 64 x 64
    POST_NMS_ROIS_TRAINING = 8
    MAX_GT_INSTANCES = 4
    TRAIN_ROIS_PER_IMAGE = 12  # = proposals + instances
    ROI_POSITIVE_RATIO = 1.0
    OPTIMIZER = "sgd"
    LEARNING_MOMENTUM = 0.0
    GRADIENT_CLIP_NORM = 0  # Keras clips each replica's gradient before the sum
    STEPS_PER_EPOCH = 2
    VALIDATION_STEPS = 1


class OddBatchConfig(StepConfig):
    GPU_COUNT = 1
    IMAGES_PER_GPU = 3


class NoisyShapes(ShapesDataset):
    """Shapes on a noisy background: on a flat one, anchors far apart see
    the same pixels and get scores equal up to float rounding, and the two
    runs' rounding (other thread splits) can order them differently, so
    that another proposal survives NMS (seen: a 1-6 % different update)."""

    def load_image(self, image_id):
        image = super().load_image(image_id)
        noise = np.random.default_rng(image_id).integers(-20, 21, image.shape)
        return np.clip(image.astype(np.int32) + noise, 0, 255).astype(np.uint8)


def shapes(count):
    dataset = NoisyShapes()
    dataset.load_shapes(count, SIZE, SIZE, seed=3)
    dataset.prepare()
    return dataset


def flat(arrays):
    return np.concatenate([np.ravel(a) for a in arrays])


class FirstStep(keras.callbacks.Callback):
    """Keeps the weights and the logs after the first training step."""

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.weights = flat(self.model.get_weights())
            self.loss = float(logs["loss"])


def single_step(model, initial):
    """The first step of `MaskRCNN.train`, on one device -> FirstStep."""
    km = model.keras_model
    km.set_weights(initial)
    trainable.set_trainable(km, "heads")
    km.compile(optimizer=optimizers.make_optimizer("sgd", LEARNING_RATE, 0.0, 0),
               jit_compile=False)
    first = FirstStep()
    km.fit(pipeline.build_dataset(shapes(1), model.config), steps_per_epoch=1,
           callbacks=[first], verbose=0)
    return first


def adam_steps(strategy, optimizer_class):
    """Variables after 3 updates of optimizer_class under the strategy."""
    rng = np.random.default_rng(0)
    with strategy.scope():
        variables = [keras.Variable(rng.normal(size=s).astype(np.float32), name=f"w{i}")
                     for i, s in enumerate([(3, 3, 4, 5), (5,)])]
        optimizer = optimizer_class(learning_rate=1e-2)
        optimizer.build(variables)
    grads = [[tf.constant(rng.normal(size=v.shape).astype(np.float32)) for v in variables]
             for _ in range(3)]

    @tf.function
    def step(g):
        # tf.Variables and gradients made in the replica: with the Keras
        # variables and the captured constants themselves, apply() failed
        # here with "destinations can not be empty" (keras' Adam too).
        strategy.run(lambda: optimizer.apply([tf.identity(x) for x in g],
                                             [v.value for v in variables]))

    start = flat([v.numpy() for v in variables])
    for g in grads:
        step(g)
    # Every replica's copy of the variables (they must stay equal).
    copies = [flat([v.value.values[r].numpy() for v in variables]) for r in range(2)]
    return np.concatenate(copies), np.concatenate([start, start])


def main(out_dir):
    keras.utils.set_random_seed(1)  # the initial weights
    strategy = devices.make_strategy(2)
    config = StepConfig()
    single = MaskRCNN("training", config, os.path.join(out_dir, "single"))
    with strategy.scope():
        mirrored = MaskRCNN("training", config, os.path.join(out_dir, "mirrored"))
    initial = single.keras_model.get_weights()
    single_first = single_step(single, initial)
    mirrored.keras_model.set_weights(initial)
    mirrored_first = FirstStep()
    # One image: every batch is that image twice.
    history = mirrored.train(shapes(1), shapes(1), LEARNING_RATE, epochs=1, layers="heads",
                             custom_callbacks=[mirrored_first])
    single_update = single_first.weights - flat(initial)
    mirrored_update = mirrored_first.weights - flat(initial)
    single.load_weights(mirrored.find_last(), by_name=True)
    result = {
        "replicas": strategy.num_replicas_in_sync,
        "single": {"update_norm": float(np.linalg.norm(single_update)),
                   "loss": single_first.loss},
        "mirrored": {"update_norm": float(np.linalg.norm(mirrored_update)),
                     "loss": mirrored_first.loss},
        "update_diff_norm": float(np.linalg.norm(mirrored_update - single_update)),
        "train": {"history": history.history, "files": sorted(os.listdir(mirrored.log_dir)),
                  "epoch": mirrored.epoch},
        "checkpoint_max_abs_diff": float(np.abs(
            flat(single.keras_model.get_weights()) - flat(mirrored.keras_model.get_weights())
        ).max()),
    }

    fused, start = adam_steps(strategy, FusedAdam)
    plain, _ = adam_steps(strategy, keras.optimizers.Adam)
    result["fused_adam_max_diff"] = float(np.abs(fused - plain).max())
    result["fused_adam_moved"] = float(np.abs(fused - start).max())

    mirrored.config = OddBatchConfig()
    try:
        mirrored.train(shapes(3), shapes(3), LEARNING_RATE, epochs=2, layers="heads")
        result["odd_batch_error"] = None
    except ValueError as e:
        result["odd_batch_error"] = str(e)

    with open(os.path.join(out_dir, "result.json"), "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main(sys.argv[1])
