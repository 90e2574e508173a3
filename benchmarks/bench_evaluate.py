"""Time to score predictions with all three protocols, next to the official tools.

    .venv/bin/python -m benchmarks.bench_evaluate [--images 500] [--scenes 40] \\
        [--detections 100] [--size 1024x2048] [--official-images 8] [--data DIR]

Ground truth: `--scenes` synthetic Cityscapes frames of H x W (busy ones,
`cityscapes.synthetic`, written once into --data), used in turn for the
`--images` images. Predictions, made before timing: per image,
`--detections` detections: each ground-truth instance shifted by a few
pixels (true positives at various IoU, some wrong classes), the rest
rectangles of random size and place (false positives), random scores.

Timed, one process on this machine:
- ours: `cityscapes.scoring.Scorer` over all images, ground truth read from
  the instanceIds PNGs included, as evaluate.py does it (Matterport AP/rAP/
  cAP, COCO segm + bbox, official Cityscapes AP), with the share of each
  part; pycocotools' own time (COCOeval evaluate + accumulate + summarize,
  segm and bbox) is inside ours and reported on its own as well;
- the official cityscapesscripts evaluator (`cityscapes.official_script`,
  which adds the NumPy 2 shims) on the first `--official-images` scenes,
  with their predictions written in its format (PNG masks + txt, not
  timed), against ours computing the official protocol alone on the same
  images (`CityscapesInstanceEval`, ground truth read from the same PNGs,
  on one thread and with the read-ahead thread evaluate.py uses). Its
  per-image time times `--images` estimates its time for all images. The
  two results are checked equal (to 1e-9).

Figures are recorded in docs/benchmarks.md.
"""

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pycocotools import mask as mask_utils  # noqa: E402

from cityscapes import export, official_script, scoring  # noqa: E402
from cityscapes.dataset import CityscapesDataset  # noqa: E402
from cityscapes.evaluator import read_ahead  # noqa: E402
from cityscapes.official_ap import CityscapesInstanceEval  # noqa: E402
from cityscapes.rasterize import INSTANCE_FACTOR  # noqa: E402
from cityscapes.synthetic import generate  # noqa: E402
from mrcnn.evaluation import coco, rle


def rectangle_rle(h, w, y1, x1, y2, x2):
    """Compressed RLE of a filled rectangle, built from its runs."""
    rows, cols = y2 - y1, x2 - x1
    counts = [x1 * h + y1] + [rows, h - rows] * (cols - 1) + [rows, h * w - (x2 - 1) * h - y2]
    r = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return {"size": [h, w], "counts": r["counts"].decode("ascii")}


def make_predictions(rng, ids, class_map, count):
    """One image's predictions (see the module docstring)."""
    h, w = ids.shape
    dy, dx = rng.integers(-3, 4, 2)
    shifted = np.roll(ids, (int(dy), int(dx)), axis=(0, 1))
    values = np.unique(shifted)
    values = values[(values >= INSTANCE_FACTOR)
                    & np.isin(values // INSTANCE_FACTOR, class_map.label_ids)][:count]
    rles = rle.encode_label_image(shifted, values)
    classes = [class_map.class_id(v // INSTANCE_FACTOR) for v in values]
    classes = [c if rng.random() > 0.1 else int(rng.integers(1, len(class_map) + 1))
               for c in classes]
    for _ in range(count - len(values)):
        bh, bw = int(rng.integers(4, h // 4)), int(rng.integers(4, w // 4))
        y, x = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
        rles.append(rectangle_rle(h, w, y, x, y + bh, x + bw))
        classes.append(int(rng.integers(1, len(class_map) + 1)))
    return {"class_ids": np.array(classes, np.int32), "scores": rng.random(len(rles)),
            "rles": rles, "boxes": None, "size": (h, w)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=500)
    p.add_argument("--scenes", type=int, default=40)
    p.add_argument("--detections", type=int, default=100)
    p.add_argument("--size", default="1024x2048")
    p.add_argument("--official-images", type=int, default=20)
    p.add_argument("--data", default=None, help="dataset folder to write / reuse")
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.size.split("x"))
    data = args.data or os.path.join(tempfile.gettempdir(), f"bench-evaluate-{h}x{w}")
    marker = os.path.join(data, f"done-{args.scenes}")
    if not os.path.exists(marker):
        t = time.time()
        generate(data, seed=0, height=h, width=w, images={"train": 0, "val": args.scenes,
                                                           "test": 0}, extra=(45, 60))
        open(marker, "w").close()
        print(f"wrote {args.scenes} scenes of {h}x{w} in {time.time() - t:.0f} s")
    ds = CityscapesDataset()
    ds.load_cityscapes(data, "val", annotations="instanceIds")
    ds.prepare()
    class_map = ds.class_map
    rng = np.random.default_rng(0)
    scenes = list(ds.image_ids)
    preds = [make_predictions(rng, ds.load_instance_ids(scenes[i % len(scenes)]), class_map,
                              args.detections) for i in range(args.images)]
    instances = sum(int(np.count_nonzero(np.unique(ds.load_instance_ids(s)) >= INSTANCE_FACTOR))
                    for s in scenes) / len(scenes)
    print(f"{args.images} images of {h}x{w}, {args.detections} detections each, "
          f"{instances:.1f} ground-truth instances per scene on average "
          f"({len(scenes)} scenes in turn); {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores")

    # ----------------------------------------------------------------- ours
    parts = {"read ground truth": 0.0, "add images": 0.0}
    scorer = scoring.Scorer(class_map)
    coco_time = {"t": 0.0}
    original = coco.CocoEval._score

    def timed_score(self, iou_type):
        t = time.perf_counter()
        out = original(self, iou_type)
        coco_time["t"] += time.perf_counter() - t
        return out

    coco.CocoEval._score = timed_score
    start = time.perf_counter()
    ground_truth = read_ahead(ds.load_instance_ids, [scenes[i % len(scenes)]
                                                     for i in range(len(preds))])
    for i, p in enumerate(preds):
        t = time.perf_counter()
        ids = next(ground_truth)
        parts["read ground truth"] += time.perf_counter() - t
        t = time.perf_counter()
        scorer.add(f"img{i}", ids, p)
        parts["add images"] += time.perf_counter() - t
    t = time.perf_counter()
    m = scorer.matterport.result()
    parts["Matterport matching + AP"] = time.perf_counter() - t
    t = time.perf_counter()
    cs = scorer.cityscapes.result()
    parts["official AP integration"] = time.perf_counter() - t
    t = time.perf_counter()
    coco_result = scorer.coco.result()
    parts["COCO (pycocotools evaluate/accumulate)"] = time.perf_counter() - t
    total = time.perf_counter() - start
    coco.CocoEval._score = original
    print(f"ours, all three protocols: {total:.1f} s ({1000 * total / args.images:.0f} ms/image; "
          f"'read ground truth' is the wait for the read-ahead thread)")
    for k, v in parts.items():
        print(f"  {k}: {v:.1f} s")
    print(f"  of which pycocotools itself: {coco_time['t']:.1f} s")
    print(f"  AP@0.5 {m['ap50']:.3f}, rAP {m['rap']:.3f}, COCO segm AP {coco_result['segm']['AP']:.3f}, "
          f"bbox AP {coco_result['bbox']['AP']:.3f}, Cityscapes AP {cs['AP']:.3f}")

    # ------------------------------------------------------------- official
    n = min(args.official_images, args.images, len(scenes))
    if n:
        with tempfile.TemporaryDirectory() as tmp:
            results = os.path.join(tmp, "results")
            gt_files = []
            for i in range(n):  # the official tool keys images by file name: distinct scenes
                image_id = scenes[i]
                export.write_cityscapes_results(
                    results, ds.image_info[image_id]["id"],
                    [class_map.label_id(c) for c in preds[i]["class_ids"]], preds[i]["scores"],
                    preds[i]["rles"])
                gt_files.append(ds.image_info[image_id]["annotation"])
            t = time.perf_counter()
            official = official_script.evaluate(results, gt_files)
            theirs = time.perf_counter() - t
            # Ours, the official protocol alone on the same images, ground truth
            # read from the same PNGs (one thread, then with read-ahead).
            timings = {}
            for label, reader in (("one thread", lambda f, xs: map(f, xs)),
                                  ("read-ahead thread", read_ahead)):
                t = time.perf_counter()
                ours = CityscapesInstanceEval()
                for i, gt_ids in enumerate(reader(ds.load_instance_ids, scenes[:n])):
                    ours.add_image(gt_ids, [class_map.label_id(c) for c in preds[i]["class_ids"]],
                                   preds[i]["scores"], preds[i]["rles"])
                mine = ours.result()
                timings[label] = time.perf_counter() - t
            diff = np.nanmax(np.abs(np.asarray(official["ap_matrix"], float) - mine["ap_matrix"]))
            print(f"official protocol on {n} images (ground truth read from the PNGs by both): "
                  f"cityscapesscripts {theirs:.2f} s ({1000 * theirs / n:.0f} ms/image, "
                  f"{theirs / n * args.images / 60:.1f} min for {args.images} images); ours "
                  + ", ".join(f"{v:.2f} s with {k} ({theirs / v:.0f}x faster)"
                              for k, v in timings.items())
                  + f"; max |AP difference| {diff:.1e}")


if __name__ == "__main__":
    main()
