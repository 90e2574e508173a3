"""Speed of predict.py on 1024 x 2048 pictures, and of the exported SavedModel
next to MaskRCNN.detect.

    .venv/bin/python -m benchmarks.bench_predict --weights logs/demo.../mask_rcnn_demo_0005.h5
    .venv/bin/python -m benchmarks.bench_predict --weights last --quick   # runs it end to end

Pictures: `--images` synthetic Cityscapes frames of 1024 x 2048
(`cityscapes.synthetic`, PNG, written once into --data).

Timed, on this machine:
- predict.py as a user runs it (a subprocess each; pictures drawn and
  written, predictions.json, summary.json) with `--batch 1` and `--batch 4`,
  each with the decoding overlapped (`--read_ahead 4`, the default) and
  not (`--read_ahead 0`). Its summary.json gives images/s over the whole
  detection loop and after the first batch (whose time includes tracing
  the model); both are printed, with the process's wall time.
- the model exported by `mrcnn.export` and loaded with tf.saved_model.load
  (serving_default, one picture per call) against `MaskRCNN.detect` on the
  same decoded pictures, each after one warm-up call; their detections are
  compared (how many; where the classes agree in order, the most any box
  differs in pixels and the least mask IoU).

Figures go to docs/benchmarks.md.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SIZE = (1024, 2048)


def pictures(folder, count):
    """`count` synthetic 1024 x 2048 frames (written once) -> their paths."""
    from cityscapes.synthetic import generate
    from mrcnn import media

    val = os.path.join(folder, "leftImg8bit", "val")
    found = media.collect([val]).images if os.path.isdir(val) else []
    if len(found) < count:
        started = time.time()
        generate(folder, seed=0, height=SIZE[0], width=SIZE[1],
                 images={"train": 0, "val": count, "test": 0}, workers=2)
        print(f"wrote {count} frames of {SIZE[0]}x{SIZE[1]} in {time.time() - started:.0f} s")
        found = media.collect([val]).images
    return sorted(found)[:count]


def run_predict(weights, inputs, output, batch, read_ahead):
    """predict.py in a subprocess -> (summary.json, wall seconds)."""
    cmd = [sys.executable, os.path.join(REPO_ROOT, "predict.py"), "--weights", weights,
           "--output", output, "--batch", str(batch), "--read_ahead", str(read_ahead),
           "--input", *inputs]
    started = time.time()
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT, check=False)
    wall = time.time() - started
    if result.returncode:
        raise SystemExit(f"predict.py failed ({result.returncode}): {result.stderr[-2000:]}")
    with open(os.path.join(output, "summary.json"), encoding="utf-8") as f:
        return json.load(f), wall


def timed(fn, images):
    """fn on each image after one warm-up call -> (images/s, results)."""
    fn(images[0])
    started = time.time()
    results = [fn(image) for image in images]
    return len(images) / (time.time() - started), results


def compare(detected, served):
    """detect()'s and the SavedModel's results on the same pictures -> a line:
    the detections of each, and where both give the same classes in the same
    order, the most any box differs in pixels and the least mask IoU."""
    same, worst_box, worst_iou, counts = 0, 0, 1.0, [0, 0]
    for d, s in zip(detected, served):
        n = int(s["num_detections"])
        counts[0] += len(d["class_ids"])
        counts[1] += n
        if n != len(d["class_ids"]) or not np.array_equal(s["class_ids"], d["class_ids"]):
            continue
        same += 1
        if not n:
            continue
        worst_box = max(worst_box, int(np.abs(s["boxes"].astype(int) - d["rois"]).max()))
        ours = np.moveaxis(s["masks"].astype(bool), 0, -1)
        inter = (ours & d["masks"]).sum(axis=(0, 1))
        union = (ours | d["masks"]).sum(axis=(0, 1))
        if (union > 0).any():
            worst_iou = min(worst_iou, float((inter[union > 0] / union[union > 0]).min()))
    return (f"detections: detect() {counts[0]}, SavedModel {counts[1]}; the same classes in "
            f"the same order on {same} of {len(detected)} pictures, on those boxes within "
            f"{worst_box} px and the least mask IoU {worst_iou:.4f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True, help="checkpoint PATH or 'last' (under --logs)")
    p.add_argument("--logs", default="logs")
    p.add_argument("--images", type=int, default=16, help="pictures per predict.py run [16]")
    p.add_argument("--quick", action="store_true", help="4 pictures: a check that it runs")
    p.add_argument("--data", default=os.path.join(tempfile.gettempdir(), "bench-predict"),
                   help="where the frames are written once")
    args = p.parse_args(argv)
    count = 4 if args.quick else args.images

    from mrcnn.engine.devices import machine_line
    from mrcnn.engine.inference import model_source

    weights, _ = model_source(args.weights, args.logs)
    inputs = pictures(os.path.join(args.data, "frames"), count)
    print(machine_line())
    print(f"{count} pictures of {SIZE[0]}x{SIZE[1]}, weights {weights}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")

    print("\n| predict.py | images/s | images/s after the first batch | process wall s |")
    print("|---|---|---|---|")
    for batch in (1, 4):
        for read_ahead in (4, 0):
            with tempfile.TemporaryDirectory() as out:
                s, wall = run_predict(weights, inputs, out, batch, read_ahead)
            warm = s["images_per_s_after_first_batch"]
            print(f"| --batch {batch} --read_ahead {read_ahead} "
                  f"({'overlapped' if read_ahead else 'not overlapped'}) | "
                  f"{s['images_per_s']:.2f} | {'n/a' if warm is None else f'{warm:.2f}'} | "
                  f"{wall:.1f} |", flush=True)

    import tensorflow as tf

    from mrcnn import media
    from mrcnn.engine.inference import inference_model
    from mrcnn.export import export_saved_model

    model = inference_model(weights)
    decoded = [media.read_image(path) for path in inputs]
    with tempfile.TemporaryDirectory() as folder:
        started = time.time()
        export_saved_model(model, folder)
        export_s = time.time() - started
        serving = tf.saved_model.load(folder).signatures["serving_default"]
        served_rate, served = timed(
            lambda image: {k: v.numpy() for k, v in serving(image=tf.constant(image)).items()},
            decoded)
    detect_rate, detected = timed(lambda image: model.detect([image])[0], decoded)
    print(f"\nexport: {export_s:.1f} s")
    print("| one picture per call | images/s |\n|---|---|")
    print(f"| MaskRCNN.detect | {detect_rate:.2f} |")
    print(f"| SavedModel serving_default | {served_rate:.2f} |")
    print(compare(detected, served))


if __name__ == "__main__":
    main()
