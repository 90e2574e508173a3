"""Time one optimizer update of the demo model's trainable weights.

    .venv/bin/python -m benchmarks.bench_optimizer [--backbone resnet14] [--calls 10]

The update alone (`optimizer.apply(grads, variables)` in a tf.function, the
gradients fixed random tensors) for: Keras' Adam with and without clipnorm,
mrcnn.engine.optimizers.FusedAdam with and without clipnorm, and Keras' SGD with
momentum. The variables are those of `MaskRCNN("training", DemoConfig())`
(with --backbone's ResNet) with every layer trainable (the demo trains
"all"). Median of the calls after 3 warm-up calls (bench_model's
`timed_calls`). Figures: docs/benchmarks.md.
"""

import argparse
import math
import os
import statistics
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10, help="timed calls per optimizer")
    parser.add_argument("--backbone", default="resnet14", help="DemoConfig.BACKBONE [resnet14]")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from benchmarks.bench_model import timed_calls
    from cityscapes.config import DemoConfig
    from mrcnn.engine import trainable
    from mrcnn.engine.optimizers import FusedAdam
    from mrcnn.model import MaskRCNN

    class Config(DemoConfig):
        BACKBONE = args.backbone

    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        km = MaskRCNN("training", Config(), tmp).keras_model
    trainable.set_trainable(km, "all")
    variables = km.trainable_variables
    grads = [tf.random.normal(v.shape) * 1e-3 for v in variables]
    count = sum(int(tf.size(v)) for v in variables)
    print(f"{args.backbone}: {len(variables)} variables, {count / 1e6:.1f} M weights, "
          f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, Keras {keras.__version__}")
    cases = {
        "keras Adam, clipnorm 5": lambda: keras.optimizers.Adam(1e-4, clipnorm=5.0),
        "keras Adam": lambda: keras.optimizers.Adam(1e-4),
        "FusedAdam, clipnorm 5": lambda: FusedAdam(1e-4, clipnorm=5.0),
        "FusedAdam": lambda: FusedAdam(1e-4),
        "keras SGD momentum 0.9, clipnorm 5": lambda: keras.optimizers.SGD(
            1e-4, momentum=0.9, clipnorm=5.0),
    }
    print("| optimizer | ms per update |\n|---|---|")
    for name, make in cases.items():
        optimizer = make()
        optimizer.build(variables)
        update = tf.function(lambda: optimizer.apply(grads, variables))
        _, times, _ = timed_calls(update, args.calls, warmup=3, budget=math.inf)
        print(f"| {name} | {1e3 * statistics.median(times):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
