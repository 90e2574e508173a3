"""Throughput of the Cityscapes training input pipeline on this machine.

    .venv/bin/python -m benchmarks.bench_pipeline [--images 24] [--size 1024x2048] \\
        [--warm-epochs 3] [--data DIR] [--json raw.json]

Writes (or reuses, with --data) a synthetic Cityscapes dataset of `--images`
training images of H x W in the official layout (`cityscapes.synthetic`,
busier than its default: --extra random objects per image), loads it with `CityscapesDataset` (polygon JSON), then measures:

- parts, one image at a time on one thread (median ms per image): PNG
  decode (`load_image`, Pillow), reading and checking the PNG for the
  graph (`load_image_file`) and decoding it there (`tf.io.decode_png`),
  rasterising the polygons (`load_mask`), boxes +
  mini-masks from the masks, reading a cached record, and the graph part
  (resize frame, FlipCrop augmentation, padding) as one tf.function; for
  reference also the RPN targets, which the model computes in its training
  step (on the accelerator), not the pipeline;
- the whole pipeline as training runs it, `mrcnn.data.pipeline.build_dataset`
  (repeating, shuffled) with FlipCrop() and a fresh mini-mask cache
  folder, batches of 1 pulled from one iterator as fast as possible:
  "cold" is the first epoch (every record rasterised and written; pipeline
  start-up included), "warm" the next `--warm-epochs` epochs (records read
  from the cache).

With --scaling, instead: how warm throughput grows with cores (of the
tf.data feeder, or with --feeder py of `mrcnn.data.py_feeder.PyFeeder`,
one worker process per core). The cache
is filled first, then the warm pipeline runs in a fresh process pinned to
one core, then to two (`os.sched_setaffinity` before TensorFlow starts, so
its thread pools and the pipeline's parallelism see 1 or 2 cores; cores
from --cores), each after one untimed warm-up epoch; it prints images/s
for each and the ratio. Other work on the same cores skews the figures:
run it on a quiet machine.

    .venv/bin/python -m benchmarks.bench_pipeline --scaling [--cores 0,1]

Figures are recorded in docs/benchmarks.md.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

from cityscapes.dataset import CityscapesDataset  # noqa: E402
from cityscapes.synthetic import generate  # noqa: E402
from mrcnn.config import Config  # noqa: E402
from mrcnn.data import pipeline
from mrcnn.data.augmentation import FlipCrop  # noqa: E402
from mrcnn.data.mask_cache import MiniMaskCache, instance_record  # noqa: E402
from mrcnn.data.py_feeder import PyFeeder
from mrcnn.modeling.network import build_network  # noqa: E402


class BenchConfig(Config):
    NAME = "bench"
    NUM_CLASSES = 1 + 10
    IMAGES_PER_GPU = 1
    IMAGE_RESIZE_MODE = "none"  # 1024 x 2048 is already a multiple of 64
    MAX_GT_INSTANCES = 100


def median_ms(fn, items):
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def time_batches(iterator, images):
    """Seconds to pull batches holding `images` images from `iterator`."""
    start = time.perf_counter()
    pulled = 0
    while pulled < images:
        pulled += int(next(iterator)["image"].shape[0])
    return time.perf_counter() - start


def warm_throughput(dataset, config, cache_dir, epochs, seed, feeder="tf"):
    """Warm images/s of a feeder (FlipCrop, cache filled): one untimed epoch,
    then `epochs` timed ones. feeder: "tf" (build_dataset, one iterator) or
    "py" (PyFeeder, one worker process per usable core, as Keras runs it).
    -> (images/s, CPU seconds of this process and its workers per second
    of them: the cores it kept busy)."""
    images = len(dataset.image_ids)
    if feeder == "py":
        cores = pipeline.usable_cpus()
        feeder = PyFeeder(dataset, config, augmentation=FlipCrop(), seed=seed,
                          mask_cache=cache_dir, workers=cores, use_multiprocessing=True)
        adapter = PyDatasetAdapter(feeder, shuffle=True)

        def run(epochs):
            start = time.perf_counter()
            for _ in range(epochs):
                adapter.on_epoch_begin()
                for _ in adapter.get_numpy_iterator():
                    pass
                adapter.on_epoch_end()
            return time.perf_counter() - start
    else:
        iterator = iter(pipeline.build_dataset(dataset, config, shuffle=True,
                                               augmentation=FlipCrop(), seed=seed,
                                               mask_cache=cache_dir))

        def run(epochs):
            return time_batches(iterator, images * epochs)
    run(1)
    cpu = cpu_seconds()
    seconds = run(epochs)
    return images * epochs / seconds, (cpu_seconds() - cpu) / seconds


def cpu_seconds():
    """User + system CPU seconds of this process and its finished children."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def scaling(args, dataset, config, root, work):
    """--scaling: warm images/s on 1 core, then 2, each in a fresh process."""
    cache_dir = os.path.join(work, "cache")
    cache = MiniMaskCache(cache_dir, config.MINI_MASK_SHAPE)
    start = time.perf_counter()
    for i in dataset.image_ids:
        cache.get(dataset, i)
    print(f"cache filled in {time.perf_counter() - start:.1f} s")
    cores = [int(c) for c in args.cores.split(",")]
    results = {"size": args.size, "images": len(dataset.image_ids), "feeder": args.feeder,
               "warm_epochs": args.warm_epochs, "runs": []}
    for n in (1, len(cores)):
        out = os.path.join(work, f"warm-{n}.json")
        # Pinned before TensorFlow is imported: its thread pools size themselves then.
        pinned = (f"import os, runpy; os.sched_setaffinity(0, {cores[:n]}); "
                  "runpy.run_module('benchmarks.bench_pipeline', run_name='__main__')")
        command = [sys.executable, "-c", pinned, "--warm-only", out, "--data", root,
                   "--cache", cache_dir, "--warm-epochs", str(args.warm_epochs),
                   "--seed", str(args.seed), "--feeder", args.feeder]
        load = os.getloadavg()[0]
        subprocess.run(command, cwd=REPO_ROOT, check=True)
        with open(out) as f:
            run = {**json.load(f), "cores": cores[:n], "load_before": load}
        results["runs"].append(run)
        rate, cpu = run["warm_images_per_s"], run["cpu_per_s"]
        print(f"{n} core(s) {cores[:n]}: {rate:.1f} images/s warm, CPU {cpu:.2f} s/s, "
              f"{1000 * cpu / rate:.0f} ms per image (map parallelism {run['parallel']}; "
              f"load average before: {load:.1f})")
    one, two = (r["warm_images_per_s"] for r in results["runs"])
    results["ratio"] = two / one
    print(f"\n| warm {args.feeder} feeder, {args.size}, {len(dataset.image_ids)} images x "
          f"{args.warm_epochs} epochs | images/s |\n|---|---:|")
    for run in results["runs"]:
        print(f"| {len(run['cores'])} core(s) | {run['warm_images_per_s']:.1f} |")
    print(f"| ratio | x{results['ratio']:.2f} |")
    return results


def load_dataset(args, root):
    """The CityscapesDataset of `root`'s train split, generated there if missing."""
    height, width = (int(v) for v in args.size.lower().split("x"))
    if not os.path.exists(os.path.join(root, "leftImg8bit", "train")):
        start = time.perf_counter()
        extra = tuple(int(v) for v in args.extra.split(","))
        generate(root, seed=args.seed, height=height, width=width,
                 images={"train": args.images, "val": 0, "test": 0}, extra=extra,
                 workers=pipeline.usable_cpus())
        print(f"generated {args.images} images of {height}x{width} in "
              f"{time.perf_counter() - start:.1f} s -> {root}")
    dataset = CityscapesDataset()
    dataset.load_cityscapes(root, "train")
    dataset.prepare()
    return dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", default="1024x2048", help="H x W of the synthetic images")
    parser.add_argument("--warm-epochs", type=int, default=3)
    parser.add_argument("--data", help="dataset folder to reuse / write (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra", default="60,70",
                        help="min,max random objects per image besides 4 featured ones")
    parser.add_argument("--json", help="write the raw figures here")
    parser.add_argument("--scaling", action="store_true",
                        help="warm images/s on 1 core vs 2 (see the module docstring)")
    parser.add_argument("--cores", default="0,1", help="--scaling: the two cores to use")
    parser.add_argument("--feeder", choices=["tf", "py"], default="tf",
                        help="--scaling: build_dataset (tf.data) or PyFeeder (worker processes)")
    parser.add_argument("--warm-only", metavar="JSON", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    height, width = (int(v) for v in args.size.lower().split("x"))

    work = tempfile.mkdtemp(prefix="bench-pipeline-")
    root = args.data or os.path.join(work, "data")
    dataset = load_dataset(args, root)
    config = BenchConfig()
    if args.warm_only:  # a --scaling child: the cache is filled
        rate, cpu = warm_throughput(dataset, config, args.cache, args.warm_epochs, args.seed,
                                    args.feeder)
        result = {"warm_images_per_s": rate, "cpu_per_s": cpu, "parallel": pipeline.usable_cpus()}
        with open(args.warm_only, "w") as f:
            json.dump(result, f)
        return result
    if args.scaling:
        results = scaling(args, dataset, config, root, work)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=2)
        return results
    ids = list(dataset.image_ids)
    counts = [int((dataset.load_mask(i)[1] > 0).sum()) for i in ids]
    png_mb = statistics.mean(os.path.getsize(dataset.image_info[i]["path"]) for i in ids) / 2**20

    # ---- parts, one image at a time
    parts = {}
    parts["decode PNG (load_image)"] = median_ms(dataset.load_image, ids)
    parts["read + check PNG chunks (load_image_file)"] = median_ms(dataset.load_image_file, ids)
    files = {i: tf.constant(dataset.load_image_file(i).contents) for i in ids}
    decode = tf.function(lambda contents: tf.io.decode_png(contents, channels=3))
    decode(files[ids[0]])
    parts["decode PNG in the graph (tf.io.decode_png)"] = median_ms(
        lambda i: decode(files[i]), ids)
    parts["rasterise polygons (load_mask)"] = median_ms(dataset.load_mask, ids)
    loaded = {i: dataset.load_mask(i) for i in ids[:8]}
    parts["boxes + mini-masks from masks"] = median_ms(
        lambda i: instance_record(*loaded[i], config.MINI_MASK_SHAPE), ids[:8])
    cache = MiniMaskCache(os.path.join(work, "parts-cache"), config.MINI_MASK_SHAPE)
    for i in ids:
        cache.get(dataset, i)
    parts["read cached record"] = median_ms(lambda i: cache.get(dataset, i), ids)
    aug = FlipCrop()
    graph = tf.function(lambda *a: pipeline.record_targets(*a, config, aug), reduce_retracing=True)
    inputs = {i: pipeline.load_image_instances(dataset, config, i, cache) for i in ids}
    graph(*inputs[ids[0]][:1], *inputs[ids[0]][2:])
    parts["graph: frame, FlipCrop, padding"] = median_ms(
        lambda i: graph(inputs[i][0], *inputs[i][2:]), ids)
    model = build_network(config, "training")
    rpn = tf.function(model._rpn_targets, reduce_retracing=True)
    examples = {i: graph(inputs[i][0], *inputs[i][2:]) for i in ids}
    shape = tf.constant([height, width])
    rpn(examples[ids[0]]["gt_class_ids"][None], examples[ids[0]]["gt_boxes"][None], shape)
    parts["(in the train step: RPN targets)"] = median_ms(
        lambda i: rpn(examples[i]["gt_class_ids"][None], examples[i]["gt_boxes"][None], shape),
        ids)

    # ---- the pipeline
    cache_dir = os.path.join(work, "cache")

    batches = pipeline.build_dataset(dataset, config, shuffle=True, augmentation=FlipCrop(),
                                     seed=args.seed, mask_cache=cache_dir)
    iterator = iter(batches)
    cold_images, cold_s = len(ids), time_batches(iterator, len(ids))
    warm_images = len(ids) * args.warm_epochs
    warm_s = time_batches(iterator, warm_images)
    results = {
        "size": [height, width], "images": len(ids), "instances_per_image": counts,
        "png_mib_mean": png_mb, "cpu_count": os.cpu_count(), "parts_ms": parts,
        "cold_images_per_s": cold_images / cold_s, "warm_images_per_s": warm_images / warm_s,
        "commit": subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, check=False).stdout.strip(),
        "tensorflow": tf.__version__, "machine": platform.processor() or platform.machine(),
    }
    print(f"\n{len(ids)} images {height}x{width}, PNG {png_mb:.1f} MiB on average, "
          f"instances per image: mean {np.mean(counts):.1f} (images with instances: "
          f"{np.mean([c for c in counts if c] or [0]):.1f}), min {min(counts)}, max "
          f"{max(counts)}; {os.cpu_count()} CPUs; commit "
          f"{results['commit']}")
    print("\n| part (one image, one thread) | ms |\n|---|---:|")
    for name, ms in parts.items():
        print(f"| {name} | {ms:.1f} |")
    print("\n| pipeline (FlipCrop, mini-mask cache) | images/s |\n|---|---:|")
    print(f"| cold: first epoch, rasterising | {results['cold_images_per_s']:.1f} |")
    print(f"| warm: {args.warm_epochs} epochs from the cache | "
          f"{results['warm_images_per_s']:.1f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
