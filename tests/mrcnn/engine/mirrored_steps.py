"""MirroredStrategy on two logical CPUs, for tests/mrcnn/engine/test_distribute.py.

    python -m tests.mrcnn.engine.mirrored_steps OUT_DIR

A script, run in a subprocess: logical CPU devices can only be set up
before TensorFlow starts its runtime. It writes OUT_DIR/result.json:

    replicas: the strategy's number of replicas (2)
    single, mirrored: the first SGD step of the same model (same initial
        weights) on one device (a batch of one image) and on the two
        replicas (inside `MaskRCNN.train`; a global batch of that image
        twice, one per replica): "update_norm" (norm of the change of all
        weights), "loss" (as reported)
    update_diff_norm: norm of the difference of the two updates
    replica_grad_diffs: for each replica, the norm of (its gradient, taken
        before the all-reduce and multiplied by the number of replicas) minus
        the single device's gradient; "grad_norm": the latter's norm
    allreduce_max_abs_diff: the mirrored step's new weights against
        initial - learning_rate * (sum of the replicas' gradients), in float32
        as SGD computes them (max abs difference)
    train: that `MaskRCNN.train` under the strategy, 1 epoch of 2 steps:
        "history", "files" of its run folder, "epoch"
    checkpoint_max_abs_diff: its checkpoint, loaded into the single-device
        model, against the mirrored model's weights
    odd_batch_error: the message of train() with BATCH_SIZE 3 on 2 replicas
    fused_adam_max_diff: 3 steps of mrcnn.engine.optimizers.FusedAdam against
        keras.optimizers.Adam, both under the strategy (max abs difference
        of the variables), and "fused_adam_moved" (how far they moved)

Why the two steps must match: every sampling takes all candidates (all
anchors, up to RPN_TRAIN_ANCHORS_PER_IMAGE; all proposals and instances, up
to TRAIN_ROIS_PER_IMAGE with ROI_POSITIVE_RATIO 1), so each replica's loss
is the single device's loss of the same image; with each replica's loss
divided by 2 and the gradients summed, the updates are equal; without the
division the mirrored update is twice as large.

Why exactly: the single device runs one replica's batch (one image; its
mean loss is that of the global batch, the image twice), so it runs the
replicas' computation itself: same ops on the same shapes, hence the same
kernels and float32 rounding. Each replica's gradient is then bit for bit
the single device's, the all-reduce adds two equal halves (exact) and the
updates are equal. A single device on the global batch of 2 images would
run other shapes (other kernel blockings and summation orders): its
gradient differs by ~1e-6 relative here, the kernels of another CPU give
other differences (1e-5 with oneDNN limited to SSE4.1, 3.6e-4 relative on
the mask head's kernels), and the randomly initialised network can amplify
them: 1.56e-3 once on a slower machine.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

# Before anything starts TensorFlow's runtime.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
# One thread per op: the single device and each replica then run the same
# kernels with the same splits, whatever the machine's load (with the
# default pools, other splits round otherwise, near-equal proposal scores
# can order differently, and another proposal survives NMS: a replica's
# gradient 3.5 % off the single device's was seen once in a full test run).
tf.config.threading.set_intra_op_parallelism_threads(1)

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


class OneImageConfig(StepConfig):
    """One replica's batch, on one device."""

    GPU_COUNT = 1


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


class GradientSpy(keras.optimizers.SGD):
    """SGD that keeps the gradients it is given, in each replica: those of
    the replica's loss, before the all-reduce (in variables synchronised on
    read, which hold one copy per replica)."""

    def build(self, variables):
        super().build(variables)
        self.strategy = tf.distribute.get_strategy()
        self.seen = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False,
                                 synchronization=tf.VariableSynchronization.ON_READ,
                                 aggregation=tf.VariableAggregation.SUM)
                     for v in variables]

    def apply(self, grads, trainable_variables=None):
        for g, v in zip(grads, trainable_variables):
            self.seen[self._get_variable_index(v)].assign(tf.convert_to_tensor(g))
        return super().apply(grads, trainable_variables)

    def replica_gradients(self):
        """[replica] -> the last step's gradients, flat, in build's order."""
        copies = [self.strategy.experimental_local_results(v) for v in self.seen]
        return [flat([x.numpy() for x in replica]) for replica in zip(*copies)]

    def trained_weights(self):
        return flat([v.numpy() for v in self._trainable_variables])


def spy_optimizer(name, learning_rate, momentum, clip_norm):
    """optimizers.make_optimizer for StepConfig (plain SGD), with the spy."""
    assert (name, momentum, clip_norm) == ("sgd", 0.0, 0), (name, momentum, clip_norm)
    return GradientSpy(learning_rate=learning_rate, momentum=0.0)


class FirstStep(keras.callbacks.Callback):
    """Keeps, around the first training step, the weights, the loss, and
    from the GradientSpy the trained weights and each replica's gradients."""

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.trained_before = self.model.optimizer.trained_weights()

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            self.weights = flat(self.model.get_weights())
            self.loss = float(logs["loss"])
            self.trained_after = self.model.optimizer.trained_weights()
            self.grads = self.model.optimizer.replica_gradients()


def single_step(model, initial):
    """The first step of `MaskRCNN.train`, on one device -> FirstStep."""
    km = model.keras_model
    km.set_weights(initial)
    trainable.set_trainable(km, "heads")
    km.compile(optimizer=spy_optimizer("sgd", LEARNING_RATE, 0.0, 0), jit_compile=False)
    km.optimizer.build(km.trainable_variables)
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
    replicas = strategy.num_replicas_in_sync
    single = MaskRCNN("training", OneImageConfig(), os.path.join(out_dir, "single"))
    with strategy.scope():
        mirrored = MaskRCNN("training", StepConfig(), os.path.join(out_dir, "mirrored"))
    initial = single.keras_model.get_weights()
    # The same sampling order of the anchors and ROIs (all are taken, but
    # another order sums the losses in another order: ~1e-6 relative).
    mirrored.keras_model.seed_generator.state.assign(
        single.keras_model.seed_generator.state.numpy())
    single_first = single_step(single, initial)
    mirrored.keras_model.set_weights(initial)
    mirrored_first = FirstStep()
    # One image: every batch is that image twice, one per replica.
    make_optimizer = optimizers.make_optimizer
    optimizers.make_optimizer = spy_optimizer
    try:
        history = mirrored.train(shapes(1), shapes(1), LEARNING_RATE, epochs=1, layers="heads",
                                 custom_callbacks=[mirrored_first])
    finally:
        optimizers.make_optimizer = make_optimizer
    single_update = single_first.weights - flat(initial)
    mirrored_update = mirrored_first.weights - flat(initial)
    [single_grad] = single_first.grads
    replica_grads = mirrored_first.grads
    # SGD: w - lr * (the all-reduced sum of the replicas' gradients), float32.
    expected = mirrored_first.trained_before - np.float32(LEARNING_RATE) * np.sum(
        replica_grads, axis=0, dtype=np.float32)
    single.load_weights(mirrored.find_last(), by_name=True)
    result = {
        "replicas": replicas,
        "single": {"update_norm": float(np.linalg.norm(single_update)),
                   "loss": single_first.loss},
        "mirrored": {"update_norm": float(np.linalg.norm(mirrored_update)),
                     "loss": mirrored_first.loss},
        "update_diff_norm": float(np.linalg.norm(mirrored_update - single_update)),
        "grad_norm": float(np.linalg.norm(single_grad)),
        "replica_grad_diffs": [float(np.linalg.norm(replicas * g - single_grad))
                               for g in replica_grads],
        "allreduce_max_abs_diff": float(np.abs(mirrored_first.trained_after - expected).max()),
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
