"""Original instance masks next to the masks rebuilt from their mini-masks.

    python -m cityscapes.show_masks --dataset ROOT|demo [--split train|val|...]
        [--image STEM_OR_INDEX] [--mini 56] [--annotations auto|polygons|instanceIds]
        [--classes all|evaluated] [--dpi 100] --out FILE.png

Training keeps each instance as a box plus a mini-mask (`--mini` x `--mini`
cells resampled inside the box, `mrcnn.data.mask_cache.instance_record`), as
Matterport's USE_MINI_MASK does; this shows what that costs. The figure,
as in Matterport's inspect_data notebook: left the image with its
original masks (coloured overlay, boxes, class names), right the same
image with the masks pasted back from the mini-masks
(`mrcnn.data.masks.paste_masks`) and the pixels where the two differ in white,
and below them the mini-masks of the largest instances. Prints each
instance's mask IoU between original and rebuilt, and the mean. Crowd
regions (negative class ids) are shown and measured too, labelled
"crowd". Default image: the first one with an instance. Default split:
the first of train, val with images and ground truth (a named split that
is missing is a one-line error listing the splits found); default
annotations "auto": per image the polygons JSON if there, else the
instanceIds PNG.

From Python (e.g. in a notebook):

    fig, ious = mini_mask_figure(dataset, image_id, mini_shape=(56, 56))
    fig.savefig("masks.png")     # or show `fig` in Jupyter
"""

import os
import sys

import numpy as np

import cli
from cityscapes.dataset import check_split, find_splits
from cityscapes.stats import CLASS_SETS

# --split's default: the first of these that has images and ground truth.
DEFAULT_SPLITS = ("train", "val")

# Pixels where the original and the rebuilt mask differ, in the right panel.
DIFF_COLOUR = (255, 255, 255)
CROWD_COLOUR = (0.6, 0.6, 0.6)
# How many images the default search looks at for one with an instance.
_SEARCH_LIMIT = 50


# ------------------------------------------------------------ numbers
def mini_mask_roundtrip(masks, class_ids, mini_shape=(56, 56)):
    """Masks -> boxes + mini-masks -> masks again.

    masks: [H, W, N] bool, class_ids: [N] -> dict with "masks" [H, W, M]
    bool (the non-empty originals), "rebuilt" [H, W, M] bool, "class_ids"
    [M], "boxes" [M, 4] (y1, x1, y2, x2) pixels, "mini" [M, h, w] bool,
    "ious" [M] float64 (empty masks are dropped, as instance_record does).
    """
    from mrcnn.data.mask_cache import instance_record
    from mrcnn.data.masks import paste_masks

    masks = np.asarray(masks, bool)
    record = instance_record(masks, class_ids, tuple(mini_shape))
    masks = masks[:, :, masks.any(axis=(0, 1))]
    rebuilt = np.asarray(paste_masks(record["mini"], record["boxes"], masks.shape[:2]), bool)
    return {"masks": masks, "rebuilt": rebuilt, "class_ids": record["class_ids"],
            "boxes": record["boxes"], "mini": record["mini"], "ious": mask_ious(masks, rebuilt)}


def mask_ious(a, b):
    """Per-instance IoU of two mask stacks: [H, W, N] bool x2 -> [N] float64."""
    inter = np.logical_and(a, b).sum(axis=(0, 1), dtype=np.int64)
    union = np.logical_or(a, b).sum(axis=(0, 1), dtype=np.int64)
    return inter / np.maximum(union, 1)


# ------------------------------------------------------------ drawing
def instance_colours(n):
    """[n, 3] float RGB in [0, 1]: bright colours with well-spread hues (deterministic)."""
    from matplotlib.colors import hsv_to_rgb

    hues = (np.arange(n) * 0.618034) % 1.0
    return hsv_to_rgb(np.stack([hues, np.full(n, 0.9), np.full(n, 1.0)], axis=1).reshape(-1, 3))


def overlay(image, masks, colours, alpha=0.5):
    """Blend mask colours into an image; the later mask wins where masks overlap.

    image: [H, W, 3] uint8, masks: [H, W, N] bool, colours: [N, 3] in
    [0, 1] -> [H, W, 3] uint8.
    """
    out = image.astype(np.float32)
    if masks.shape[2] == 0:
        return image.copy()
    covered = masks.any(axis=2)
    top = masks.shape[2] - 1 - np.argmax(masks[:, :, ::-1], axis=2)  # [H, W] last mask
    tint = np.asarray(colours, np.float32)[top[covered]] * 255.0
    out[covered] = (1 - alpha) * out[covered] + alpha * tint
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _labels(dataset, class_ids):
    """Class name per instance, "crowd <name>" for crowd regions."""
    names = getattr(dataset, "class_names", None) or [c["name"] for c in dataset.class_info]
    return [("crowd " if c < 0 else "") + names[abs(int(c))] for c in class_ids]


def _draw_panel(ax, picture, boxes, colours, labels, title):
    """An image with dashed boxes and a label per instance."""
    from matplotlib.patches import Rectangle

    ax.imshow(picture)
    height, width = picture.shape[:2]
    fontsize = 7 if width <= 1024 else 6
    for (y1, x1, y2, x2), colour, label in zip(boxes, colours, labels):
        ax.add_patch(Rectangle((x1 - 0.5, y1 - 0.5), x2 - x1, y2 - y1, fill=False,
                               edgecolor=colour, linewidth=1, linestyle="--"))
        ax.text(x1 - 0.5, y1 - 1, label, color="white", fontsize=fontsize, va="bottom",
                bbox=dict(facecolor=colour, alpha=0.6, pad=0.5, linewidth=0))
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    ax.set_title(title, fontsize=10)
    ax.axis("off")


def _draw_minis(fig, spec, rt, labels, count):
    """A row of the mini-masks of the `count` largest instances."""
    areas = rt["masks"].sum(axis=(0, 1))
    chosen = np.argsort(-areas, kind="stable")[:count]
    axes = spec.subgridspec(1, max(count, 1)).subplots(squeeze=False)[0]
    for ax in axes:
        ax.axis("off")
    if not len(chosen):
        axes[0].text(0, 0.5, "no instances", fontsize=10)
    for ax, i in zip(axes, chosen):
        y1, x1, y2, x2 = rt["boxes"][i]
        ax.imshow(rt["mini"][i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"#{i} {labels[i]}\n{x2 - x1}x{y2 - y1} px, IoU {rt['ious'][i]:.3f}",
                     fontsize=8)


def mini_mask_figure(dataset, image_id, mini_shape=(56, 56), num_minis=8):
    """The original vs. rebuilt figure of one image, and the per-instance IoUs.

    dataset: a prepared Matterport Dataset (e.g. CityscapesDataset);
    image_id: its internal image id; mini_shape: (h, w) of the mini-masks;
    num_minis: how many mini-masks the bottom row shows (the largest).
    Returns (matplotlib Figure, list of M float IoUs) in load_mask's order,
    with masks empty in load_mask left out (M <= N); crowd regions included.
    """
    masks, class_ids = dataset.load_mask(image_id)
    rt = mini_mask_roundtrip(masks, class_ids, mini_shape)
    fig = draw_roundtrip(dataset, image_id, rt, mini_shape, num_minis)
    return fig, [float(v) for v in rt["ious"]]


def draw_roundtrip(dataset, image_id, rt, mini_shape, num_minis=8):
    """The figure of mini_mask_figure from a mini_mask_roundtrip() result."""
    from matplotlib.figure import Figure  # no pyplot: no global backend

    image = dataset.load_image(image_id)
    n = len(rt["class_ids"])
    colours = instance_colours(n)
    colours[rt["class_ids"] < 0] = CROWD_COLOUR
    labels = _labels(dataset, rt["class_ids"])
    height, width = image.shape[:2]

    fig = Figure(figsize=(16, 8 * height / width + 3.2), layout="constrained")
    grid = fig.add_gridspec(2, 1, height_ratios=[8 * height / width, 2.4])
    left, right = grid[0].subgridspec(1, 2).subplots()
    name = dataset.image_reference(image_id) or str(image_id)
    _draw_panel(left, overlay(image, rt["masks"], colours), rt["boxes"], colours, labels,
                f"original masks ({n})")
    rebuilt = overlay(image, rt["rebuilt"], colours)
    rebuilt[(rt["masks"] != rt["rebuilt"]).any(axis=2)] = DIFF_COLOUR
    mean = float(rt["ious"].mean()) if n else float("nan")
    _draw_panel(right, rebuilt, rt["boxes"], colours,
                [f"{lab} {iou:.2f}" for lab, iou in zip(labels, rt["ious"])],
                f"rebuilt from {mini_shape[0]}x{mini_shape[1]} mini-masks "
                f"(mean IoU {mean:.3f}; differences in white)")
    _draw_minis(fig, grid[1], rt, labels, min(num_minis, n))
    fig.suptitle(os.path.basename(str(name)), fontsize=11)
    return fig


# ------------------------------------------------------------ CLI
def find_image(dataset, key=None):
    """Internal id of an image: by stem (image id), by index, or (None) the
    first of the first _SEARCH_LIMIT images that has an instance (else 0)."""
    if key is None:
        for i in dataset.image_ids[:_SEARCH_LIMIT]:
            if (np.asarray(dataset.load_mask(i)[1]) > 0).any():
                return int(i)
        return 0
    for i, info in enumerate(dataset.image_info):
        if str(info["id"]) == key:
            return i
    if key.lstrip("-").isdigit() and -dataset.num_images <= int(key) < dataset.num_images:
        return int(key) % dataset.num_images
    examples = ", ".join(str(info["id"]) for info in dataset.image_info[:3])
    raise SystemExit(f"--image {key!r}: no such stem or index (0..{dataset.num_images - 1}); "
                     f"stems look like {examples}")


def format_ious(dataset, image_id, class_ids, ious):
    """Text table of the per-instance IoUs and their mean."""
    labels = _labels(dataset, class_ids)
    lines = [f"{dataset.image_info[image_id]['id']}: mask IoU original vs rebuilt",
             "   #  class               IoU"]
    lines += [f"{i:4d}  {lab:<18s} {iou:.4f}" for i, (lab, iou) in enumerate(zip(labels, ious))]
    ious = np.asarray(ious)
    inst = np.asarray(class_ids) > 0
    if inst.any():
        lines.append(f"mean IoU over {inst.sum()} instances: {ious[inst].mean():.4f}")
    if (~inst).any():
        lines.append(f"mean IoU over {len(ious)} objects with {(~inst).sum()} crowd regions: "
                     f"{ious.mean():.4f}")
    if not len(ious):
        lines.append("no instances")
    return "\n".join(lines)


def build_parser():
    p = cli.Parser("python -m cityscapes.show_masks", __doc__.split("\n\n")[0])
    cli.add_dataset_flags(p)
    p.add_argument("--split", default=None,
                   help="split folder (default: the first of train, val that exists)")
    p.add_argument("--image", default=None,
                   help="image stem (e.g. aachen_000000_000019) or index in the split "
                        "(default: the first with an instance)")
    p.add_argument("--mini", type=int, default=56, help="mini-mask size (default 56)")
    p.add_argument("--classes", choices=tuple(CLASS_SETS), default="all")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--dpi", type=int, default=100, help="resolution of the PNG (default 100)")
    return p


def default_split(root):
    """The first of DEFAULT_SPLITS with images and ground truth, or a
    one-line CityscapesDataError listing the splits found."""
    found = find_splits(root, DEFAULT_SPLITS)
    if not found:
        check_split(root, DEFAULT_SPLITS[0])  # raises
    return found[0]


def work(args):
    from cityscapes.dataset import CityscapesDataError, CityscapesDataset

    root = cli.dataset_root(cli.dataset_value(args.dataset))
    dataset = CityscapesDataset(CLASS_SETS[args.classes])
    try:
        if args.split is None:
            split = default_split(root)
        else:
            split = args.split
            check_split(root, split)
        # One image is drawn: the split's images are not all decoded first.
        dataset.load_cityscapes(root, split=split, annotations=args.annotations or "auto",
                                verify=False)
    except (CityscapesDataError, ValueError) as e:
        raise cli.UsageError(str(e))
    dataset.prepare()
    image_id = find_image(dataset, args.image)
    mini_shape = (args.mini, args.mini)
    rt = mini_mask_roundtrip(*dataset.load_mask(image_id), mini_shape)
    print(format_ious(dataset, image_id, rt["class_ids"], rt["ious"]))
    fig = draw_roundtrip(dataset, image_id, rt, mini_shape)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=args.dpi)
    print(f"wrote {args.out}", file=sys.stderr)


def main(argv=None):
    return cli.main(build_parser(), work, argv)


if __name__ == "__main__":
    sys.exit(main())
