"""Time to read and check a large COCO-results file (evaluate.py --predictions).

    .venv/bin/python -m benchmarks.bench_predictions [--images 1000] [--detections 100] \\
        [--size 1024x2048] [--max-width 200]

Writes a synthetic COCO-results JSON of --images x --detections entries
(masks: rectangles of random place, height and up to --max-width columns,
as compressed RLEs at H x W; every fifth entry with a bbox), then times
`cityscapes.predictions.read_coco_results` on it, and on their own its
parts: parsing the JSON and checking the entries (`entry_problems`, of
which the vectorised RLE check `rle.problems`). For scale, it times one
part of the scoring on the same machine: each image's overlaps with a
1024 x 2048 instance id image of 20 instances (`rle.overlap_counts`).
The whole scoring of 100 detections per image at 1024 x 2048 took 35 ms
per image in docs/benchmarks.md (bench_evaluate).
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from benchmarks.bench_evaluate import rectangle_rle
from cityscapes import predictions
from mrcnn import files
from mrcnn.evaluation import rle


def synthetic_entries(rng, images, detections, h, w, max_width):
    entries = []
    for i in range(images):
        stem = f"bench_{i:06d}_000019"
        for d in range(detections):
            bh, bw = int(rng.integers(4, h // 4)), int(rng.integers(1, max_width + 1))
            y, x = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
            e = {"image_id": stem, "category_id": int(rng.integers(1, 11)),
                 "segmentation": rectangle_rle(h, w, y, x, y + bh, x + bw),
                 "score": float(rng.random())}
            if d % 5 == 0:
                e["bbox"] = [x, y, bw, bh]
            entries.append(e)
    return entries


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--detections", type=int, default=100)
    p.add_argument("--size", default="1024x2048")
    p.add_argument("--max-width", type=int, default=200)
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.size.split("x"))
    entries = synthetic_entries(np.random.default_rng(0), args.images, args.detections, h, w,
                                args.max_width)
    sizes = {f"bench_{i:06d}_000019": (h, w) for i in range(args.images)}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "results.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(entries, f)
        mb = os.path.getsize(path) / 2 ** 20
        chars = sum(len(e["segmentation"]["counts"]) for e in entries)
        print(f"{len(entries)} entries ({args.images} images x {args.detections}), {h}x{w} "
              f"masks up to {args.max_width} columns wide: {mb:.0f} MiB, "
              f"{chars / len(entries):.0f} RLE characters per mask; {os.cpu_count()} cores")
        start = time.perf_counter()
        out = predictions.read_coco_results(path, sizes, 10)
        total = time.perf_counter() - start
        assert len(out) == args.images
        t = {}
        start = time.perf_counter()
        loaded = files.read_json(path)
        t["parse the JSON"] = time.perf_counter() - start
        start = time.perf_counter()
        assert not predictions.entry_problems(loaded, sizes, 10)
        t["check the entries (entry_problems)"] = time.perf_counter() - start
        start = time.perf_counter()
        assert not rle.problems([e["segmentation"] for e in loaded])
        t["  of which the RLE check (rle.problems)"] = time.perf_counter() - start
    print(f"read_coco_results: {total:.2f} s, {1000 * total / args.images:.1f} ms per image "
          f"of {args.detections} detections")
    for k, v in t.items():
        print(f"  {k}: {v:.2f} s ({1000 * v / args.images:.2f} ms per image)")
    # A part of the scoring on the same machine, for scale: the overlaps of
    # each image's masks with an instance id image (rle.overlap_counts).
    label = np.full((h, w), 7)
    rng = np.random.default_rng(1)
    for k in range(20):
        y, x = int(rng.integers(0, h - 100)), int(rng.integers(0, w - 200))
        label[y:y + 100, x:x + 200] = 26000 + k
    n = min(50, args.images)
    start = time.perf_counter()
    for stem in list(out)[:n]:
        rle.overlap_counts(label, out[stem]["rles"])
    overlaps = (time.perf_counter() - start) / n
    print(f"scoring's overlaps alone (rle.overlap_counts, {n} images, 20 instances each): "
          f"{1000 * overlaps:.1f} ms per image")

if __name__ == "__main__":
    main()
