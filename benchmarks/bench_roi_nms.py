"""Time ROIAlign and NMS: the TF kernels against the keras.ops versions.

    .venv/bin/python -m benchmarks.bench_roi_nms [--size 1024x1024] [--batch 2] [--repeats 15]

ROIAlign: `mrcnn.modeling.roi_align.pyramid_roi_align` with
method="crop_and_resize" (the kernel per level, what "auto" takes on
TensorFlow outside XLA) against method="gather" (keras.ops gathers over all
levels), in a tf.function, and the gathers under XLA (jit_compile=True).
NMS: `tf.image.non_max_suppression` image by image in a map_fn (the model's
NMS before; tests/mrcnn/modeling/reference_ops.py) against
`mrcnn.modeling.nms.non_max_suppression`, in a tf.function and under XLA.
Each case runs all of them on the same random inputs (checked equal first),
one call of each in turn (interleaved, so that load from other processes
hits all alike), `--repeats` times after a warm-up. Printed: the median and
the range (min..max) of the milliseconds per call.

Cases, Matterport's Config sizes: ROIAlign in a training step (TRAIN_ROIS_PER_IMAGE
= 200 ROIs at pool 7, and the 66 positive rows at pool 14 for the mask head;
forward and the gradient to the feature maps) and in detect (1000 ROIs at
pool 7, 100 detections at pool 14; forward); the proposal NMS (PRE_NMS_LIMIT
6000 candidates -> POST_NMS_ROIS_TRAINING 2000 or _INFERENCE 1000, IoU 0.7)
on anchors of the image moved by random deltas; the detection NMS (1000
ROIs, half of them below the score threshold -> 100, IoU 0.3). Features have
256 channels (TOP_DOWN_PYRAMID_SIZE).
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

from mrcnn.modeling import nms, roi_align
from mrcnn.modeling.anchors import Anchors
from tests.mrcnn.modeling import reference_ops

CHANNELS = 256


def random_boxes(rng, batch, n):
    """Boxes of all pyramid levels (sides 2%..70% of the image): [batch, n, 4]"""
    centre = rng.uniform(0.0, 1.0, (batch, n, 2))
    side = np.exp(rng.uniform(np.log(0.02), np.log(0.7), (batch, n, 2)))
    return np.clip(np.concatenate([centre - side / 2, centre + side / 2], -1), 0, 1).astype(
        np.float32)


def roi_case(rng, image, batch, rois, pool, backward):
    maps = [tf.constant(rng.normal(size=(batch, image[0] // s, image[1] // s, CHANNELS)),
                        tf.float32) for s in (4, 8, 16, 32)]
    boxes = tf.constant(random_boxes(rng, batch, rois))

    def make(method, jit):
        def pool_fn():
            return roi_align.pyramid_roi_align(boxes, maps, image, pool, method)

        if not backward:
            return tf.function(pool_fn, jit_compile=jit)

        @tf.function(jit_compile=jit)
        def step():
            with tf.GradientTape() as tape:
                tape.watch(maps)
                out = pool_fn()
                loss = tf.reduce_sum(out * out)
            return tape.gradient(loss, maps)

        return step

    return make("crop_and_resize", False), make("gather", False), make("gather", True)


def proposal_nms_case(rng, image, batch, candidates, kept, threshold):
    anchors = Anchors((32, 64, 128, 256, 512), (0.5, 1, 2), (4, 8, 16, 32, 64), 1).boxes(
        image).numpy()
    scores = rng.uniform(size=(batch, len(anchors))).astype(np.float32)
    top = np.argsort(-scores, axis=1)[:, :candidates]
    boxes = anchors[top] + rng.normal(0, 0.01, (batch, candidates, 4)).astype(np.float32)
    return nms_fns(np.clip(boxes, 0, 1), np.take_along_axis(scores, top, 1), kept, threshold)


def detection_nms_case(rng, batch, rois, kept, threshold):
    boxes = random_boxes(rng, batch, rois)
    shifted = boxes + 4.0 * rng.integers(1, 11, (batch, rois, 1))  # per-class offsets
    scores = np.where(rng.uniform(size=(batch, rois)) < 0.5, rng.uniform(size=(batch, rois)),
                      -np.inf).astype(np.float32)  # half of them dropped
    return nms_fns(shifted.astype(np.float32), scores, kept, threshold)


def nms_fns(boxes, scores, kept, threshold):
    boxes, scores = tf.constant(boxes), tf.constant(scores)

    def ops_nms():
        indices, valid = nms.non_max_suppression(boxes, scores, kept, threshold)
        return tf.where(valid, indices, -1)

    def kernel():
        indices, counts = reference_ops.kernel_nms(boxes, scores, kept, threshold)
        return tf.where(tf.range(kept)[None] < counts[:, None], indices, -1)

    return (tf.function(kernel), tf.function(ops_nms),
            tf.function(ops_nms, jit_compile=True))


def check_equal(fns):
    results = [tf.nest.flatten(fn()) for fn in fns]
    worst = 0.0
    for other in results[1:]:
        for x, y in zip(results[0], other):
            worst = max(worst, float(np.max(np.abs(x.numpy() - y.numpy()), initial=0)))
    if worst > 1e-5:
        raise SystemExit(f"the versions differ by {worst}")
    return worst


def time_all(fns, repeats):
    times = [[] for _ in fns]
    for _ in range(2):
        for fn in fns:
            fn()
    for _ in range(repeats):
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            tf.nest.map_structure(lambda x: x.numpy(), fn())
            t.append(1e3 * (time.perf_counter() - t0))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1024x1024", help="image H x W (default 1024x1024)")
    parser.add_argument("--batch", type=int, default=2, help="images per batch (default 2)")
    parser.add_argument("--repeats", type=int, default=15, help="timed calls of each (15)")
    args = parser.parse_args(argv)
    image = tuple(int(v) for v in args.size.split("x"))
    b = args.batch
    rng = np.random.default_rng(0)
    cases = {
        f"ROIAlign train, {b}x200 ROIs pool 7, fwd+bwd": lambda: roi_case(rng, image, b, 200, 7,
                                                                          True),
        f"ROIAlign train, {b}x66 ROIs pool 14, fwd+bwd": lambda: roi_case(rng, image, b, 66, 14,
                                                                          True),
        f"ROIAlign detect, {b}x1000 ROIs pool 7": lambda: roi_case(rng, image, b, 1000, 7, False),
        f"ROIAlign detect, {b}x100 ROIs pool 14": lambda: roi_case(rng, image, b, 100, 14, False),
        f"proposal NMS, {b}x 6000 -> 2000": lambda: proposal_nms_case(rng, image, b, 6000, 2000,
                                                                      0.7),
        f"proposal NMS, {b}x 6000 -> 1000": lambda: proposal_nms_case(rng, image, b, 6000, 1000,
                                                                      0.7),
        f"detection NMS, {b}x 1000 -> 100": lambda: detection_nms_case(rng, b, 1000, 100, 0.3),
    }
    print(f"image {image[0]}x{image[1]}, batch {b}, {args.repeats} calls each, "
          f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; ms per call, median (min..max)")
    print("| case | TF kernel | keras.ops | ratio | keras.ops, XLA | ratio | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for name, make in cases.items():
        fns = make()
        diff = check_equal(fns)
        medians, cells = [], []
        for t in time_all(fns, args.repeats):
            medians.append(statistics.median(t))
            cells.append(f"{medians[-1]:.1f} ({min(t):.1f}..{max(t):.1f})")
        print(f"| {name} | {cells[0]} | {cells[1]} | {medians[1] / medians[0]:.2f} | "
              f"{cells[2]} | {medians[2] / medians[0]:.2f} | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
