"""The evaluation report: report.json, report.md, CSV tables and pictures.

    write_report(folder, results, dataset, pictures)

results: {model name: scoring.Scorer.result() (+ "seconds", "source",
"zero_shot")}. report.json holds, per model, "matterport" (ap50,
ap_by_iou {"0.50": ...}, rap, cap50 {class: ...}), "coco" ({"segm",
"bbox"}: AP, AP50, AP75, APs, APm, APl) and "cityscapes" (AP, AP50,
classes {class: {AP, AP50}}), all fractions in [0, 1] and null where a
figure is undefined (a class no image has, say).

report.md has one column per model: AP@0.5, cAP@0.5 per class, AP at
each IoU threshold with rAP (the three tables of the Cityscapes reports
made with Matterport's code), then the COCO and Cityscapes tables.

Pictures (pictures/): precision/recall curves of every model (pooled over
images, at IoU 0.5 and 0.75); for each sample image and model, the
detections, a comparison with the ground truth at IoU 0.5 (matched ground
truth green, missed ground truth red, false positives blue), and the top
50 RPN proposals, best first, under a caption saying so, when the model
was run (not for a predictions file). Labels and lines scale with the
image size (mrcnn/visualize.py).

The report (and --export's files) is built in a staging folder beside
the report folder and moved into place at the end (`mrcnn.staging`), so
an interrupted evaluation leaves the previous report (or none), never
half of one; the staging folder of a killed run is removed by the next.
"""

import csv
import io
import json
import os

import numpy as np
from PIL import Image

from cityscapes.labels import EVALUATED_CLASSES
from cityscapes.rasterize import value_classes
from mrcnn import visualize
from mrcnn.evaluation import mask_ap, rle
from mrcnn.evaluation.coco import SUMMARY_KEYS

MATCHED, MISSED, FALSE_POSITIVE = (40, 200, 60), (230, 40, 40), (40, 110, 255)
PROPOSALS_DRAWN = 50  # the best ones: all 300 hide the image


def public(entry):
    """A result entry without its "_details"."""
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def write_report(folder, results, dataset, pictures):
    """Write report.json, report.md, the CSVs and pictures/ into `folder`
    (a `staged` one). pictures: {model: (class_map, {stem: (image_id,
    predictions, proposals or None)})} for the sample images."""
    _write_all(folder, results, dataset, pictures)


def _write_all(folder, results, dataset, pictures):
    names = list(results)
    with open(os.path.join(folder, "report.json"), "w", encoding="utf-8") as f:
        json.dump({"models": {n: public(results[n]) for n in names}}, f, indent=2)
        f.write("\n")
    tables = tables_of(results)
    for name, (header, rows) in tables.items():
        with open(os.path.join(folder, f"{name}.csv"), "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows([[_csv(v) for v in row] for row in rows])
    os.makedirs(os.path.join(folder, "pictures"))
    figures = [_pr_curves(os.path.join(folder, "pictures"), results)]
    for name in names:
        class_map, kept = pictures.get(name, (None, {}))
        for stem, (image_id, preds, proposals) in kept.items():
            figures += _image_pictures(os.path.join(folder, "pictures"), name, stem,
                                       dataset, image_id, preds, proposals, class_map)
    with open(os.path.join(folder, "report.md"), "w", encoding="utf-8") as f:
        f.write(markdown(results, tables, [os.path.relpath(p, folder) for p in figures if p]))


# -------------------------------------------------------------------- tables
def tables_of(results):
    """{csv name: (header, rows)} with one column per model."""
    names = list(results)
    m = {n: results[n]["matterport"] for n in names}
    c = {n: results[n]["coco"] for n in names}
    cs = {n: results[n]["cityscapes"] for n in names}
    classes = list(next(iter(m.values()))["cap50"]) if m else []
    thresholds = list(next(iter(m.values()))["ap_by_iou"]) if m else []
    return {
        "ap50": (["metric"] + names, [["AP@0.5"] + [m[n]["ap50"] for n in names]]),
        "cap50": (["class"] + names, [[k] + [m[n]["cap50"].get(k) for n in names]
                                      for k in classes]),
        "ap_by_iou": (["IoU"] + names, [[t] + [m[n]["ap_by_iou"][t] for n in names]
                                        for t in thresholds]
                      + [["rAP"] + [m[n]["rap"] for n in names]]),
        "coco": (["metric"] + names, [[f"{kind} {k}"] + [c[n][kind][k] for n in names]
                                      for kind in ("segm", "bbox") for k in SUMMARY_KEYS]),
        "cityscapes": (["class"] + [f"{n} {k}" for n in names for k in ("AP", "AP50")],
                       [[k] + [cs[n]["classes"][k][a] for n in names for a in ("AP", "AP50")]
                        for k in EVALUATED_CLASSES]
                       + [["average"] + [cs[n][a] for n in names for a in ("AP", "AP50")]]),
    }


def _csv(v):
    return "" if v is None else (f"{v:.6f}" if isinstance(v, float) else v)


def _pct(v):
    return "–" if v is None else f"{100 * v:.1f}"


def _md_table(header, rows, fmt=_pct):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        out.append("| " + " | ".join([str(row[0])] + [fmt(v) for v in row[1:]]) + " |")
    return "\n".join(out) + "\n"


def markdown(results, tables, figures):
    """report.md's text."""
    out = ["# Evaluation report\n",
           "Figures in percent; – where undefined. Models: "
           + ", ".join(f"**{n}** (`{r.get('source', '')}`, {r['matterport']['images']} images "
                       f"with ground truth, {r['matterport']['without_ground_truth']} without)"
                       for n, r in results.items()) + ".\n"]
    sections = [("AP@0.5 (Matterport protocol, mean of per-image AP)", "ap50"),
                ("cAP@0.5 per class (mean over the images that contain the class)", "cap50"),
                ("AP at each IoU threshold and rAP (their mean)", "ap_by_iou"),
                ("COCO (pycocotools): segm and bbox", "coco"),
                ("Cityscapes official instance-level AP (8 evaluated classes)", "cityscapes")]
    for title, key in sections:
        header, rows = tables[key]
        out += [f"## {title}\n", _md_table(header, rows)]
    for name, r in results.items():
        z = r.get("zero_shot")
        if z:
            out.append(f"Zero-shot **{name}**: COCO classes used: "
                       + ", ".join(f"{c} (COCO id {k})" for c, k in z["coco_class_ids"].items())
                       + "; no COCO class (AP 0 by construction): "
                       + ", ".join(z["no_coco_class"]) + ".\n")
    if figures:
        out.append("## Pictures\n")
        out += [f"![{os.path.basename(p)}]({p})\n" for p in figures]
    return "\n".join(out)


# ------------------------------------------------------------------ pictures
def _pr_curves(folder, results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, t in zip(axes, ("0.50", "0.75")):
        for name, r in results.items():
            precision, recall = r["_details"]["pr_curve"].get(t, (np.zeros(0), np.zeros(0)))
            ax.plot(recall, precision, label=name)
        ax.set(title=f"IoU {t}", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
    fig.suptitle("Precision / recall, all detections pooled over images")
    fig.tight_layout()
    path = os.path.join(folder, "pr_curves.png")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return path


def _image_pictures(folder, model, stem, dataset, image_id, preds, proposals, class_map):
    image = dataset.load_image(image_id)
    ids = dataset.load_instance_ids(image_id)
    h, w = ids.shape
    names = ["BG"] + list(class_map.names)
    masks = rle.decode(preds["rles"], h, w)
    boxes = preds["boxes"] if preds["boxes"] is not None else _boxes(masks)
    paths = []
    drawn = visualize.draw_instances(image, boxes, masks, preds["class_ids"], names,
                                     preds["scores"])
    paths.append(_save(folder, f"{model}_{stem}_detections.png", drawn))
    # Ground truth vs detections at IoU 0.5.
    ov = rle.overlap_counts(ids, preds["rles"])
    instance, _, class_ids = value_classes(ov["values"], class_map)
    gt_masks = ids[..., None] == ov["values"][instance][None, None, :]
    ev = mask_ap.MatterportEval(names, thresholds=(0.5,))
    ev.add_image(stem, class_ids[instance], preds["class_ids"], preds["scores"],
                 mask_ap.iou_from_overlaps(ov["intersection"][:, instance].T,
                                              ov["value_pixels"][instance], ov["areas"]))
    _, _, _, _, matched, gt_matched, order = ev.matches()[0]
    tp = np.zeros(len(order), bool)
    tp[order] = matched[0]
    fp = ~tp
    all_masks = np.concatenate([gt_masks, masks[..., fp]], axis=-1)
    colors = np.array([MATCHED if m else MISSED for m in gt_matched[0]]
                      + [FALSE_POSITIVE] * int(fp.sum()), np.uint8).reshape(-1, 3)
    all_boxes = np.concatenate([_boxes(gt_masks), np.asarray(boxes).reshape(-1, 4)[fp]])
    all_classes = np.concatenate([class_ids[instance], preds["class_ids"][fp]])
    diff = visualize.draw_instances(image, all_boxes, all_masks, all_classes, names,
                                    colors=colors)
    paths.append(_save(folder, f"{model}_{stem}_vs_ground_truth.png", diff))
    if proposals is not None and len(proposals):
        paths.append(_save(folder, f"{model}_{stem}_proposals.png",
                           proposals_picture(image, proposals)))
    return paths


def proposals_picture(image, proposals, limit=PROPOSALS_DRAWN):
    """The first `limit` non-empty proposals ([R, (y1, x1, y2, x2)] pixels,
    best first, as detect() gives them) on the image, under a caption."""
    proposals = np.asarray(proposals).reshape(-1, 4)
    real = proposals[(proposals[:, 2] > proposals[:, 0]) & (proposals[:, 3] > proposals[:, 1])]
    shown = real[:limit]
    picture = visualize.outline_boxes(image, shown)
    return visualize.add_caption(
        picture, f"top {len(shown)} of {len(real)} RPN proposals, best first (on top)")


def _boxes(masks):
    from mrcnn.data.masks import boxes_from_masks

    if masks.shape[-1] == 0:
        return np.zeros((0, 4), np.int32)
    return boxes_from_masks(masks).numpy()


def _save(folder, name, picture):
    path = os.path.join(folder, name.replace(os.sep, "_"))
    Image.fromarray(picture).save(path, format="PNG")
    return path
