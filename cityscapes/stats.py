"""Instance statistics of Cityscapes splits: counts, crowd regions, sizes.

    python -m cityscapes.stats --dataset ROOT|demo [--splits train,val]
        [--annotations auto|polygons|instanceIds] [--classes all|evaluated]
        [--resplit [TRAIN,VAL]] [--skip-bad] [--workers N] [--out stats/]

Default splits: those of train, val, test that have images and ground
truth (`dataset.find_splits`); a named split that is missing is a
one-line error listing the splits found. Default annotations "auto": per
image the polygons JSON where it exists, else the instanceIds PNG (see
`CityscapesDataset.load_cityscapes`); the report says which were used.

Per split: the number of images, instances per class, crowd regions per
class (counted separately: a class's group polygons make one crowd region
per image, see `cityscapes.dataset`), instances per image (mean, max and
which image, histogram), images without instances (no visible instance of
a chosen class; crowd regions do not count), and the sizes of the
instances per class by COCO's thresholds on the visible mask area at the
original resolution: small < 32^2 pixels, medium 32^2 .. 96^2, large >= 96^2.
The numbers are those of `CityscapesDataset.load_mask` (the same instances,
occlusion and class filtering) without building [H, W, N] masks: each
image's instance id image is turned into a label map
(`rasterize.instances_from_id_image`) whose `np.bincount` gives the areas,
in a process pool.

Writes to --out: stats.md (Markdown, also printed), stats.json (the same
numbers), instances_per_class.png, sizes_per_class.png and
instances_per_image.png. `--dataset demo` is the synthetic demo dataset
(`cityscapes.synthetic.ensure_demo()`).

From Python:

    ds = CityscapesDataset(); ds.load_cityscapes(root, "val"); ds.prepare()
    split = dataset_stats(ds, name="val")        # one split, a dict
    stats = collect_stats(root)                  # every split found, + totals
    write_report(stats, "stats/")                # -> Markdown text
"""

import functools
import json
import logging
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

import cli
from cityscapes import rasterize
from cityscapes.dataset import (
    ANNOTATION_KINDS,
    SOURCE,
    CityscapesDataset,
    check_split,
    find_splits,
)
from cityscapes.labels import EVALUATED_CLASSES, INSTANCE_CLASSES, ClassMap
from cityscapes.rasterize import CityscapesDataError

logger = logging.getLogger(__name__)

# COCO's area thresholds (pixels): small < 32^2 <= medium < 96^2 <= large.
SIZE_THRESHOLDS = (32 ** 2, 96 ** 2)
SIZE_NAMES = ("small", "medium", "large")
CLASS_SETS = {"all": INSTANCE_CLASSES, "evaluated": EVALUATED_CLASSES}
PLOT_FILES = ("instances_per_class.png", "sizes_per_class.png", "instances_per_image.png")
# How many skipped images the Markdown lists by name (all are in the JSON).
_LISTED_SKIPS = 20


# ------------------------------------------------------------ per image
def instance_areas(ids, class_map):
    """Class ids and visible areas of the objects of an instance id image.

    ids: [H, W] int (official encoding); class_map: `labels.ClassMap`.
    Returns class_ids [N] int32 (negative: crowd region) and areas [N]
    int64 pixels, in `load_mask`'s order.
    """
    values, counts = rasterize.value_counts(ids)
    # The objects depend only on which values are present: map the [U]
    # distinct values as a 1 x U image, then add up their pixel counts.
    owner, class_ids = rasterize.instances_from_id_image(values[None, :], class_map)
    areas = np.bincount(owner[0], weights=counts, minlength=len(class_ids) + 1)[1:]
    return class_ids, np.rint(areas).astype(np.int64)


def _annotation_task(class_names, task):
    """Worker: (index, annotation, H, W) -> (index, class_ids, areas) or (index, error)."""
    index, annotation, height, width = task
    try:
        ids = rasterize.read_id_image(annotation, height, width)
    except CityscapesDataError as e:
        return index, (e.path, e.reason)
    class_ids, areas = instance_areas(ids, _class_map(class_names))
    return index, class_ids, areas


@functools.lru_cache(maxsize=4)
def _class_map(class_names):
    return ClassMap(class_names)


def _mask_areas(dataset, image_id):
    """Fallback for other datasets: (class_ids [N], areas [N]) from load_mask."""
    masks, class_ids = dataset.load_mask(image_id)
    areas = np.asarray(masks, bool).sum(axis=(0, 1), dtype=np.int64)
    return np.asarray(class_ids, np.int32), areas


def _pool_context():
    """fork is fast, but unsafe once TensorFlow's threads run: then forkserver."""
    return multiprocessing.get_context("forkserver" if "tensorflow" in sys.modules else None)


def image_objects(dataset, workers=None):
    """Per image of a prepared dataset: (class_ids [N], areas [N]) or an error.

    Cityscapes images are read from their annotation files in a process
    pool of `workers` (default os.cpu_count(); 1: no pool); images of other
    sources use `load_mask`. Returns a list in image order whose items are
    (class_ids, areas) or CityscapesDataError for an unreadable annotation.
    """
    infos = dataset.image_info
    results = [None] * len(infos)
    tasks = [(i, info["annotation"], info["height"], info["width"])
             for i, info in enumerate(infos) if info["source"] == SOURCE]
    for i, info in enumerate(infos):
        if info["source"] != SOURCE:
            results[i] = _mask_areas(dataset, i)
    work = functools.partial(_annotation_task, tuple(dataset.class_map.names)) if tasks else None
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    done = None
    if workers > 1 and len(tasks) > 1:
        chunk = max(1, min(16, len(tasks) // (4 * workers)))
        try:
            with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=_pool_context()) as pool:
                done = list(pool.map(work, tasks, chunksize=chunk))
        except BrokenProcessPool as e:  # e.g. forkserver cannot re-import a __main__ from stdin
            logger.warning("stats: process pool failed (%s); counting in this process", e)
    if done is None:
        done = [work(t) for t in tasks]
    for index, *out in done:
        results[index] = CityscapesDataError(*out[0]) if len(out) == 1 else tuple(out)
    return results


# ------------------------------------------------------------ aggregation
def size_buckets(areas):
    """[N] areas -> [N] int 0 small, 1 medium, 2 large (COCO thresholds)."""
    return np.digitize(np.asarray(areas), SIZE_THRESHOLDS)


def dataset_stats(dataset, name=None, workers=None, skip_bad=False):
    """The statistics of one prepared dataset (one split), as a dict.

    dataset: a prepared `CityscapesDataset` (or any Matterport Dataset with
        a `class_map`; non-Cityscapes images go through load_mask).
    name: the split's name for the report (default: "images").
    workers: processes (default os.cpu_count()).
    skip_bad: an annotation that cannot be read raises CityscapesDataError
        (False) or is left out and listed under "skipped" (True). Images
        the dataset itself skipped when loading (`dataset.skipped`) are
        listed there too.

    Returns {"split", "annotations" (the load report's: "polygons",
    "instanceIds" or "mixed"), "annotation_sources": {kind: images} (None
    without a load report), "classes": [K names], "images",
    "skipped": [{"path", "reason"}], "instances" / "crowd": {class: count},
    "sizes": {class: {"small", "medium", "large"}} (instances only),
    "total_instances", "total_crowd", "without_instances",
    "instances_per_image": {"mean", "max", "max_image", "histogram"}}
    where histogram[k] is the number of images with k instances.
    """
    names = list(dataset.class_map.names)
    skipped = [{"path": p, "reason": r} for p, r in getattr(dataset, "skipped", [])]
    class_ids, areas, owners, stems = [], [], [], []
    for i, result in enumerate(image_objects(dataset, workers)):
        if isinstance(result, CityscapesDataError):
            if not skip_bad:
                raise result
            skipped.append({"path": result.path, "reason": result.reason})
            continue
        class_ids.append(result[0])
        areas.append(result[1])
        owners.append(np.full(len(result[0]), len(stems), np.int64))
        stems.append(str(dataset.image_info[i]["id"]))
    return summarize(np.concatenate(class_ids or [np.zeros(0, np.int32)]),
                     np.concatenate(areas or [np.zeros(0, np.int64)]),
                     np.concatenate(owners or [np.zeros(0, np.int64)]),
                     stems, names, name=name or "images",
                     annotations=getattr(dataset, "load_report", {}).get("annotations"),
                     sources=getattr(dataset, "load_report", {}).get("sources"),
                     skipped=skipped)


def summarize(class_ids, areas, owners, stems, names, name, annotations=None, skipped=(),
              sources=None):
    """Statistics dict (see dataset_stats) of all objects of a set of images.

    class_ids: [M] int (1..K instances, -1..-K crowd regions), areas: [M]
    pixels, owners: [M] index into stems (the images, [I] ids).
    """
    k, n_images = len(names), len(stems)
    is_inst, is_crowd = class_ids > 0, class_ids < 0
    inst_cls = class_ids[is_inst].astype(np.int64)
    per_class = np.bincount(inst_cls, minlength=k + 1)[1:]
    crowd = np.bincount(-class_ids[is_crowd].astype(np.int64), minlength=k + 1)[1:]
    sizes = np.bincount(inst_cls * 3 + size_buckets(areas[is_inst]),
                        minlength=(k + 1) * 3).reshape(k + 1, 3)[1:]
    per_image = np.bincount(owners[is_inst], minlength=n_images)
    top = int(np.argmax(per_image)) if n_images else None
    return {
        "split": name,
        "annotations": annotations,
        "annotation_sources": dict(sources) if sources is not None else None,
        "classes": list(names),
        "images": n_images,
        "skipped": list(skipped),
        "instances": dict(zip(names, per_class.tolist())),
        "crowd": dict(zip(names, crowd.tolist())),
        "sizes": {c: dict(zip(SIZE_NAMES, row)) for c, row in zip(names, sizes.tolist())},
        "total_instances": int(per_class.sum()),
        "total_crowd": int(crowd.sum()),
        "without_instances": int(np.sum(per_image == 0)),
        "instances_per_image": {
            "mean": float(per_image.mean()) if n_images else 0.0,
            "max": int(per_image[top]) if n_images else 0,
            "max_image": stems[top] if n_images else None,
            "histogram": np.bincount(per_image, minlength=1).tolist(),
        },
    }


def combine(split_stats):
    """Totals over splits: {name: dataset_stats dict} -> one dict of the same form.

    "max_image" is the image with the most instances over all splits
    ("split" of the total names the splits, "max_split" that image's split).
    "annotations": the splits' if they agree, else "mixed".
    """
    parts = list(split_stats.values())
    kinds = {p["annotations"] for p in parts}
    sources = [p.get("annotation_sources") for p in parts]
    names = parts[0]["classes"]
    n_images = sum(p["images"] for p in parts)
    total = sum(p["total_instances"] for p in parts)
    best = max(parts, key=lambda p: p["instances_per_image"]["max"])
    hist = np.zeros(max(len(p["instances_per_image"]["histogram"]) for p in parts), np.int64)
    for p in parts:
        h = p["instances_per_image"]["histogram"]
        hist[:len(h)] += h
    return {
        "split": "+".join(split_stats),
        "annotations": kinds.pop() if len(kinds) == 1 else "mixed",
        "annotation_sources": None if None in sources else {
            kind: sum(s.get(kind, 0) for s in sources) for kind in ANNOTATION_KINDS},
        "classes": list(names),
        "images": n_images,
        "skipped": [s for p in parts for s in p["skipped"]],
        "instances": {c: sum(p["instances"][c] for p in parts) for c in names},
        "crowd": {c: sum(p["crowd"][c] for p in parts) for c in names},
        "sizes": {c: {s: sum(p["sizes"][c][s] for p in parts) for s in SIZE_NAMES}
                  for c in names},
        "total_instances": total,
        "total_crowd": sum(p["total_crowd"] for p in parts),
        "without_instances": sum(p["without_instances"] for p in parts),
        "instances_per_image": {
            "mean": total / n_images if n_images else 0.0,
            "max": best["instances_per_image"]["max"],
            "max_image": best["instances_per_image"]["max_image"],
            "max_split": best["split"],
            "histogram": hist.tolist(),
        },
    }


def collect_stats(root, splits=None, annotations="auto", classes="all",
                  skip_bad=False, resplit=None, workers=None):
    """Load each split and return {"dataset", "annotations", "classes",
    "size_thresholds", "splits": {name: dataset_stats}, "total": combine(...)}.

    splits: names, or None: every official split of train, val, test with
    images and ground truth (`find_splits`; with resplit: train, val,
    test). A named official split that is missing raises a one-line
    CityscapesDataError listing the splits found (so does a folder with
    none). annotations: load_cityscapes' ("auto", "polygons",
    "instanceIds"); the top-level "annotations" is this argument, each
    split's the kind its images used. classes: "all", "evaluated" or a
    list of names. resplit: None or load_cityscapes' resplit argument (the
    splits are then the new ones).
    """
    names = CLASS_SETS[classes] if isinstance(classes, str) else tuple(classes)
    if splits is None:
        splits = ["train", "val", "test"] if resplit is not None else find_splits(root)
        if not splits:
            check_split(root, "train")  # raises: lists what is there
    elif resplit is None:
        for split in splits:
            check_split(root, split)
    per_split = {}
    for split in splits:
        ds = CityscapesDataset(names)
        # Annotations only: the images are not decoded (verify=False).
        ds.load_cityscapes(root, split=split, annotations=annotations,
                           skip_bad=skip_bad, resplit=resplit, verify=False)
        ds.prepare()
        per_split[split] = dataset_stats(ds, name=split, workers=workers, skip_bad=skip_bad)
    return {
        "dataset": os.fspath(root),
        "annotations": annotations,
        "classes": list(ClassMap(names).names),
        "resplit": resplit is not None,
        "size_thresholds": {"small": f"< {SIZE_THRESHOLDS[0]}",
                            "medium": f"{SIZE_THRESHOLDS[0]} .. {SIZE_THRESHOLDS[1] - 1}",
                            "large": f">= {SIZE_THRESHOLDS[1]}"},
        "splits": per_split,
        "total": combine(per_split),
    }


# ------------------------------------------------------------ report
def _table(header, rows, align):
    """Markdown table: header [C] strings, rows [[C] cells], align "lr..." per column."""
    rule = ["---" if a == "l" else "--:" for a in align]
    lines = [header, rule] + [[str(c) for c in row] for row in rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _class_table(s):
    rows = [[c, s["instances"][c], s["crowd"][c], *(s["sizes"][c][z] for z in SIZE_NAMES)]
            for c in s["classes"]]
    totals = [sum(s["sizes"][c][z] for c in s["classes"]) for z in SIZE_NAMES]
    rows.append(["**all**", s["total_instances"], s["total_crowd"], *totals])
    return _table(["class", "instances", "crowd regions", *SIZE_NAMES], rows, "lrrrrr")


def _overview_row(name, s):
    per = s["instances_per_image"]
    where = per["max_image"] or "-"
    if "max_split" in per:
        where = f"{where} ({per['max_split']})"
    return [name, s["images"], len(s["skipped"]), s["total_instances"], s["total_crowd"],
            f"{per['mean']:.2f}", per["max"], where, s["without_instances"]]


def to_markdown(stats):
    """The report of collect_stats() as Markdown text."""
    splits, total = stats["splits"], stats["total"]
    used = total.get("annotation_sources")
    if used is not None and stats["annotations"] not in ANNOTATION_KINDS:  # auto: say which
        used = ", ".join(f"{k} {n}" for k, n in used.items() if n) or "none"
        annotations = f"{stats['annotations']} annotations ({used})"
    else:
        annotations = f"{stats['annotations']} annotations"
    out = ["# Cityscapes instance statistics", "",
           f"Dataset `{stats['dataset']}`, {annotations}, "
           f"{len(stats['classes'])} classes{', re-split' if stats.get('resplit') else ''}. "
           f"Sizes by visible mask area at the original resolution (COCO): small < 32² px, "
           f"medium 32²..96², large ≥ 96². Crowd regions (one per class and image with "
           f"group polygons) are not instances and have no size.", "", "## Overview", "",
           _table(["split", "images", "skipped", "instances", "crowd regions",
                   "mean per image", "max per image", "max image", "without instances"],
                  [_overview_row(n, s) for n, s in splits.items()]
                  + [_overview_row("**total**", total)], "lrrrrrrlr")]
    for name, s in list(splits.items()) + [("total", total)]:
        out += ["", f"## {name}", "", _class_table(s)]
    skipped = total["skipped"]
    if skipped:
        out += ["", f"## Skipped images ({len(skipped)})", ""]
        out += [f"- `{s['path']}`: {s['reason']}" for s in skipped[:_LISTED_SKIPS]]
        if len(skipped) > _LISTED_SKIPS:
            out.append(f"- ... and {len(skipped) - _LISTED_SKIPS} more (see stats.json)")
    return "\n".join(out) + "\n"


def _figure(width, height):
    from matplotlib.figure import Figure  # no pyplot: no global backend, Agg on save

    return Figure(figsize=(width, height), layout="constrained")


def _count_axis(ax, axis="y"):
    """Integer ticks on a count axis (starting at 0, at least 0..1 when empty)."""
    from matplotlib.ticker import MaxNLocator

    getattr(ax, f"{axis}axis").set_major_locator(MaxNLocator(integer=True))
    getattr(ax, f"set_{axis}lim")(0, max(1, getattr(ax, f"get_{axis}lim")()[1]))


def plot_instances_per_class(stats):
    """Grouped bars: instances per class, one bar per split."""
    splits = stats["splits"]
    classes = stats["classes"]
    fig = _figure(max(6, 0.9 * len(classes) + 2), 4)
    ax = fig.add_subplot()
    x = np.arange(len(classes))
    width = 0.8 / max(1, len(splits))
    for j, (name, s) in enumerate(splits.items()):
        ax.bar(x + (j - (len(splits) - 1) / 2) * width, [s["instances"][c] for c in classes],
               width, label=name)
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylabel("instances")
    ax.set_title("Instances per class")
    _count_axis(ax)
    ax.legend()
    return fig


def plot_sizes_per_class(stats):
    """Stacked bars: small / medium / large instances per class, one panel per split."""
    parts = list(stats["splits"].items())
    classes = stats["classes"]
    fig = _figure(max(4, 0.5 * len(classes) + 1) * len(parts), 4)
    axes = fig.subplots(1, len(parts), squeeze=False)[0]
    x = np.arange(len(classes))
    for ax, (name, s) in zip(axes, parts):
        bottom = np.zeros(len(classes))
        for size in SIZE_NAMES:
            counts = np.array([s["sizes"][c][size] for c in classes])
            ax.bar(x, counts, 0.7, bottom=bottom, label=size)
            bottom += counts
        ax.set_xticks(x, classes, rotation=30, ha="right")
        ax.set_title(f"Instance sizes: {name}")
        _count_axis(ax)
    axes[0].set_ylabel("instances")
    axes[0].legend(title="visible area")
    return fig


def plot_instances_per_image(stats):
    """Histogram of the number of instances per image, one outline per split."""
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    for name, s in stats["splits"].items():
        hist = np.asarray(s["instances_per_image"]["histogram"])
        ax.stairs(hist, np.arange(len(hist) + 1) - 0.5, label=name, linewidth=1.5)
    ax.set_xlabel("instances in the image")
    ax.set_ylabel("images")
    ax.set_title("Instances per image")
    _count_axis(ax)
    _count_axis(ax, "x")
    ax.set_xlim(-0.5, None)
    ax.legend()
    return fig


def write_report(stats, out_dir="stats"):
    """Write stats.md, stats.json and the PNG plots to out_dir; returns the Markdown.

    stats: collect_stats()'s dict, or one dataset_stats() dict (a single split).
    """
    if "splits" not in stats:
        stats = {"dataset": "", "annotations": stats["annotations"], "classes": stats["classes"],
                 "splits": {stats["split"]: stats}, "total": combine({stats["split"]: stats})}
    os.makedirs(out_dir, exist_ok=True)
    text = to_markdown(stats)
    with open(os.path.join(out_dir, "stats.md"), "w", encoding="utf-8") as f:
        f.write(text)
    with open(os.path.join(out_dir, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1)
        f.write("\n")
    plots = (plot_instances_per_class, plot_sizes_per_class, plot_instances_per_image)
    for name, plot in zip(PLOT_FILES, plots):
        plot(stats).savefig(os.path.join(out_dir, name), dpi=100)
    return text


# ------------------------------------------------------------ CLI
def build_parser():
    p = cli.Parser("python -m cityscapes.stats", __doc__.split("\n\n")[0])
    cli.add_dataset_flags(p)
    p.add_argument("--splits", default=None,
                   help="comma-separated splits (default: those of train,val,test with "
                        "images and ground truth; train,val,test with --resplit)")
    p.add_argument("--classes", choices=tuple(CLASS_SETS), default="all")
    p.add_argument("--resplit", nargs="?", const="default", default=None, metavar="TRAIN,VAL",
                   help="re-split official train + val by city (cityscapes.splits), "
                        "default sizes 1403,326; test gets the rest")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out and report unreadable images instead of stopping")
    p.add_argument("--workers", type=int, default=os.cpu_count(), help="processes")
    p.add_argument("--out", default="stats", help="output folder (default stats/)")
    return p


def _resplit_arg(value):
    """--resplit value -> load_cityscapes' resplit (None, True or dict(sizes=...))."""
    if value is None or value == "default":
        return None if value is None else True
    try:
        sizes = tuple(int(v) for v in value.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) != 2:
        raise cli.UsageError(f"--resplit takes TRAIN,VAL sizes, got {value!r}")
    return {"sizes": sizes}


def work(args):
    splits = [s.strip() for s in args.splits.split(",") if s.strip()] if args.splits else None
    root = cli.dataset_root(cli.dataset_value(args.dataset))
    try:
        stats = collect_stats(root, splits or None, annotations=args.annotations or "auto",
                              classes=args.classes, skip_bad=args.skip_bad,
                              resplit=_resplit_arg(args.resplit), workers=args.workers)
    except ValueError as e:  # CityscapesDataError included
        raise cli.UsageError(str(e))
    print(write_report(stats, args.out), end="")
    print(f"\nwrote stats.md, stats.json and {len(PLOT_FILES)} plots to {args.out}",
          file=sys.stderr)


def main(argv=None):
    parser = build_parser()
    return cli.run(parser, work, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
