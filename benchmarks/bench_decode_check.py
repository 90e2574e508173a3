"""What decoding every image at load time costs (mrcnn/data/image_check.py).

    .venv/bin/python -m benchmarks.bench_decode_check --data demo
    .venv/bin/python -m benchmarks.bench_decode_check --images 200 --size 1024x2048 [--data DIR]

Loads the train split of a Cityscapes folder with `CityscapesDataset`
three ways and prints the wall time of each: headers only
(`verify=False`, what loading cost before), every image decoded in full
with an empty decode cache (a first run), and the same with the cache the
first run wrote (a second run: one stat per file). --data demo uses the
built-in demo scenes; without --data a synthetic folder of --images train
images of --size is generated in a temporary folder (kept with --data DIR).
The files are in the page cache (just generated or read by the first
load), so the first run's figure is decoding, not disk reads.

Figures are recorded in docs/benchmarks.md.
"""

import argparse
import os
import platform
import sys
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from cityscapes import synthetic  # noqa: E402
from cityscapes.dataset import CityscapesDataset  # noqa: E402


def timed_load(root, split, **kwargs):
    """(seconds, dataset) of one load_cityscapes."""
    started = time.perf_counter()
    dataset = CityscapesDataset()
    dataset.load_cityscapes(root, split, **kwargs)
    return time.perf_counter() - started, dataset


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="'demo', or a folder to reuse (generated there when empty)")
    p.add_argument("--images", type=int, default=200, help="train images to generate [200]")
    p.add_argument("--size", default="1024x2048", help="HxW of generated images [1024x2048]")
    p.add_argument("--split", default="train")
    p.add_argument("--workers", type=int, help="decoding threads [one per CPU]")
    args = p.parse_args(argv)

    if args.data == "demo":
        root = synthetic.ensure_demo()
    else:
        root = args.data or tempfile.mkdtemp(prefix="bench_decode_")
        if not os.path.isdir(os.path.join(root, "leftImg8bit", args.split)):
            height, width = (int(v) for v in args.size.split("x"))
            started = time.perf_counter()
            synthetic.generate(root, seed=0, height=height, width=width,
                               images={args.split: args.images}, workers=os.cpu_count() or 1)
            print(f"generated {args.images} images of {args.size} in "
                  f"{time.perf_counter() - started:.0f} s under {root}")
    cache = os.path.join(tempfile.mkdtemp(prefix="bench_decode_cache_"), "decoded.json")

    headers, ds = timed_load(root, args.split, verify=False)
    first, ds = timed_load(root, args.split, decode_cache=cache, workers=args.workers)
    assert ds.verify_report["decoded"] == len(ds.image_info), ds.verify_report
    second, ds = timed_load(root, args.split, decode_cache=cache, workers=args.workers)
    assert ds.verify_report["cached"] == len(ds.image_info), ds.verify_report
    info = ds.image_info[0]
    n = len(ds.image_info)
    mib = sum(os.path.getsize(i["path"]) for i in ds.image_info) / n / 2**20
    print(f"{n} {args.split} images of {info['height']}x{info['width']} ({mib:.2f} MiB PNG "
          f"each), {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
          f"{args.workers or os.cpu_count()} decoding threads")
    print("| load | seconds | ms per image |")
    print("|---|---|---|")
    for name, seconds in (("headers only (verify=False)", headers),
                          ("decoded in full, empty cache (first run)", first),
                          ("decoded in full, cache written (second run)", second)):
        print(f"| {name} | {seconds:.2f} | {1e3 * seconds / n:.1f} |")


if __name__ == "__main__":
    main()
