import keras
import numpy as np
import pytest
import tensorflow as tf

from mrcnn.engine import optimizers
from mrcnn.engine.optimizers import FusedAdam

SHAPES = [(3, 3, 4, 5), (5,), (7, 2)]


def run(optimizer, steps, sparse=False, seed=0):
    """Variables after `steps` updates with the same random gradients."""
    rng = np.random.default_rng(seed)
    variables = [keras.Variable(rng.normal(size=s).astype(np.float32), name=f"w{i}")
                 for i, s in enumerate(SHAPES)]
    apply = tf.function(lambda grads: optimizer.apply(grads, variables))
    for _ in range(steps):
        grads = [tf.constant(rng.normal(size=s).astype(np.float32)) for s in SHAPES]
        if sparse:  # rows 0 and 2 of the last variable only
            dense = grads[-1]
            grads[-1] = tf.IndexedSlices(tf.gather(dense, [0, 2]), tf.constant([0, 2]),
                                         tf.constant(SHAPES[-1]))
        apply(grads)
    return [v.numpy() for v in variables], optimizer


@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=1e-2),
    dict(learning_rate=3e-3, beta_1=0.8, beta_2=0.99, epsilon=1e-5),
    dict(learning_rate=1e-2, clipnorm=0.5),
])
def test_fused_adam_is_keras_adam(kwargs):
    fused, opt = run(FusedAdam(**kwargs), steps=5)
    plain, ref = run(keras.optimizers.Adam(**kwargs), steps=5)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    # Same slots, same step count: a checkpoint of one is a checkpoint of the other.
    for a, b in zip(opt.variables, ref.variables):
        assert a.path.split("/", 1)[1] == b.path.split("/", 1)[1]  # less the optimizer name
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-7)
    # And the update did move the variables.
    start, _ = run(FusedAdam(**kwargs), steps=0)
    assert all(np.abs(a - s).max() > 1e-3 for a, s in zip(fused, start))


def test_sparse_gradients_and_amsgrad_take_keras_update():
    fused, _ = run(FusedAdam(learning_rate=1e-2), steps=3, sparse=True)
    plain, _ = run(keras.optimizers.Adam(learning_rate=1e-2), steps=3, sparse=True)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    fused, _ = run(FusedAdam(learning_rate=1e-2, amsgrad=True), steps=3)
    plain, _ = run(keras.optimizers.Adam(learning_rate=1e-2, amsgrad=True), steps=3)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_under_loss_scaling():
    fused, _ = run(keras.optimizers.LossScaleOptimizer(FusedAdam(learning_rate=1e-2)), 3)
    plain, _ = run(keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-2)), 3)
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_make_optimizer_gives_the_fused_adam_with_its_settings():
    opt = optimizers.make_optimizer("adam", 2e-4, momentum=0.85, clip_norm=5.0)
    assert isinstance(opt, FusedAdam) and isinstance(opt, keras.optimizers.Adam)
    assert opt.beta_1 == 0.85 and opt.global_clipnorm == 5.0 and opt.name == "adam"
    assert opt.clipnorm is None
    assert float(opt.learning_rate) == pytest.approx(2e-4)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(again, FusedAdam) and again.get_config() == opt.get_config()
