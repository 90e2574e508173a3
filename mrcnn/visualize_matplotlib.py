"""Matterport's `mrcnn.visualize` figures, drawn with matplotlib.

Import them from `mrcnn.visualize`, which re-exports every public name
here. matplotlib (and TensorFlow, for `display_differences`) is imported
inside the functions, so importing `mrcnn.visualize` for the PIL pictures
stays light, and no backend is chosen here: in a notebook the figures show
inline, headless (Agg) `plt.show()` does nothing and the figures can be
saved with `plt.savefig`.

As in Matterport, functions that make their own figure when given no `ax`
(`display_images`, `display_instances`) call `plt.show()`; `draw_boxes`,
`plot_precision_recall` and `plot_overlaps` leave the figure open.
Colours are (r, g, b) floats in [0, 1]; boxes are (y1, x1, y2, x2) pixels;
masks are [H, W, N].
"""

import colorsys
import html
import itertools
import random

import numpy as np

GT_COLOR = (0, 1, 0, 0.8)    # display_differences: ground truth in green
PRED_COLOR = (1, 0, 0, 1)    # ... and predictions in red


def random_colors(N, bright=True):
    """N distinct colours, (r, g, b) floats in [0, 1], in a random order
    (Python's `random`): hues evenly spread round the wheel, full
    saturation, value 1.0 (bright) or 0.7."""
    value = 1.0 if bright else 0.7
    colors = [colorsys.hsv_to_rgb(i / N, 1.0, value) for i in range(N)]
    random.shuffle(colors)
    return colors


def apply_mask(image, mask, color, alpha=0.5):
    """Tint the pixels where `mask` is 1: (1 - alpha) * pixel + alpha * 255 *
    colour, in the image's own dtype (a uint8 image truncates). Changes
    `image` ([H, W, 3+]) in place and returns it. color: (r, g, b[, a]) in
    [0, 1]; only r, g, b are used."""
    where = np.asarray(mask) == 1
    tint = 255 * np.asarray(color, np.float64)[:3]
    image[where, :3] = image[where, :3] * (1 - alpha) + alpha * tint
    return image


def _mask_outlines(mask):
    """Outlines of a [H, W] mask as [K, 2] (x, y) vertex arrays, one per
    contour at level 0.5; the mask is padded by one pixel so that shapes
    touching the border close."""
    import contourpy

    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), np.float64)
    padded[1:-1, 1:-1] = mask
    return [line - 1 for line in contourpy.contour_generator(z=padded).lines(0.5)]


def _add_outlines(ax, mask, color):
    from matplotlib.patches import Polygon

    for verts in _mask_outlines(mask):
        ax.add_patch(Polygon(verts, facecolor="none", edgecolor=color))


def _frame(ax, image, margin, title):
    """Axes limits showing `margin` pixels round the image, no axis, the title."""
    height, width = image.shape[:2]
    ax.set_ylim(height + margin, -margin)
    ax.set_xlim(-margin, width + margin)
    ax.axis("off")
    ax.set_title(title)


def _box_patch(box, color, **style):
    from matplotlib.patches import Rectangle

    y1, x1, y2, x2 = box
    return Rectangle((x1, y1), x2 - x1, y2 - y1, linewidth=2, edgecolor=color,
                     facecolor="none", **style)


def display_images(images, titles=None, cols=4, cmap=None, norm=None, interpolation=None):
    """Images in a grid of `cols` columns, each under its title, in a new
    figure, then `plt.show()`. images: [H, W(, 3)] arrays, shown as uint8;
    cmap, norm, interpolation: passed to `imshow`."""
    import matplotlib.pyplot as plt

    titles = [""] * len(images) if titles is None else titles
    rows = max(1, -(-len(images) // cols))
    plt.figure(figsize=(14, max(1, 14 * rows // cols)))
    for i, (image, title) in enumerate(zip(images, titles)):
        plt.subplot(rows, cols, i + 1)
        plt.title(title, fontsize=9)
        plt.axis("off")
        plt.imshow(np.asarray(image).astype(np.uint8), cmap=cmap, norm=norm,
                   interpolation=interpolation)
    plt.show()


def display_instances(image, boxes, masks, class_ids, class_names, scores=None, title="",
                      figsize=(16, 16), ax=None, show_mask=True, show_bbox=True,
                      colors=None, captions=None):
    """Instances on the image: masks tinted (`show_mask`), dashed boxes
    (`show_bbox`), mask outlines, and a caption at each box's top left
    corner ("class score" or `captions[i]`).

    boxes: [N, (y1, x1, y2, x2)]; masks: [H, W, N]; class_ids: [N];
    class_names: names indexed by class id; scores: [N] or None; colors: N
    colours in [0, 1] (default `random_colors`); captions: N strings.
    Instances whose box is all zeros are skipped. Draws into `ax`, or into
    a new figure of `figsize` that is then shown.
    """
    import matplotlib.pyplot as plt

    boxes, class_ids = np.asarray(boxes), np.asarray(class_ids)
    n = boxes.shape[0]
    if not n:
        print("\n*** No instances to display *** \n")
    elif not boxes.shape[0] == masks.shape[-1] == class_ids.shape[0]:
        raise ValueError(f"{n} boxes, {masks.shape[-1]} masks and {class_ids.shape[0]} "
                         "class ids: one each per instance")
    auto_show = ax is None
    if auto_show:
        _, ax = plt.subplots(1, figsize=figsize)
    colors = random_colors(n) if colors is None else colors
    _frame(ax, image, 10, title)
    masked = np.asarray(image).astype(np.uint32)
    for i in range(n):
        if not np.any(boxes[i]):
            continue  # no box (lost when the image was cropped)
        color = colors[i]
        y1, x1 = boxes[i][:2]
        if show_bbox:
            ax.add_patch(_box_patch(boxes[i][:4], color, alpha=0.7, linestyle="dashed"))
        if captions is not None and len(captions):
            caption = captions[i]
        else:
            score = scores[i] if scores is not None else None
            caption = class_names[class_ids[i]]
            caption = f"{caption} {score:.3f}" if score else caption
        ax.text(x1, y1 + 8, caption, color="w", size=11, backgroundcolor="none")
        if show_mask:
            masked = apply_mask(masked, masks[:, :, i], color)
        _add_outlines(ax, masks[:, :, i], color)
    ax.imshow(masked.astype(np.uint8))
    if auto_show:
        plt.show()


def display_differences(image, gt_box, gt_class_id, gt_mask, pred_box, pred_class_id,
                        pred_score, pred_mask, class_names, title="", ax=None, show_mask=True,
                        show_box=True, iou_threshold=0.5, score_threshold=0.5):
    """Ground truth (green) and predictions (red) on one image, each
    prediction captioned "score / IoU": the IoU with the ground truth it
    matched, else its best IoU with any. Matched by `utils.compute_matches`
    (Matterport's rule; like it, `score_threshold` is compared with the
    IoUs, so a match needs IoU >= both thresholds). Unlike Matterport, the
    captions stay right when the predictions are not sorted by score
    (compute_matches answers in score order; here it is mapped back).
    Arguments as `display_instances`'s, per set; no all-zero box rows.
    """
    from mrcnn import utils

    _, sorted_match, sorted_overlaps = utils.compute_matches(
        gt_box, gt_class_id, gt_mask, pred_box, pred_class_id, pred_score, pred_mask,
        iou_threshold=iou_threshold, score_threshold=score_threshold)
    order = np.argsort(np.asarray(pred_score), kind="stable")[::-1]  # compute_matches' order
    pred_match = np.empty(len(order), np.int64)
    pred_match[order] = sorted_match
    overlaps = np.empty_like(sorted_overlaps)
    overlaps[order] = sorted_overlaps
    num_gt = len(gt_class_id)
    captions = [""] * num_gt + [
        "{:.2f} / {:.2f}".format(pred_score[i], overlaps[i, pred_match[i]] if pred_match[i] > -1
                                 else (overlaps[i].max() if overlaps.shape[1] else 0.0))
        for i in range(len(pred_match))]
    display_instances(
        image, np.concatenate([gt_box, pred_box]), np.concatenate([gt_mask, pred_mask], axis=-1),
        np.concatenate([gt_class_id, pred_class_id]), class_names,
        np.concatenate([np.zeros(num_gt), pred_score]), ax=ax,
        show_bbox=show_box, show_mask=show_mask,
        colors=[GT_COLOR] * num_gt + [PRED_COLOR] * len(pred_match), captions=captions,
        title=title or "Ground Truth and Detections\n GT=green, pred=red, captions: score/IoU")


def draw_box(image, box, color):
    """Outline `box` (y1, x1, y2, x2; corners included) on the image in
    place, 3 pixels wide centred on each edge (what Matterport's
    `cv2.rectangle(..., thickness=2)` draws), clipped to the image.
    color: per-channel values in the image's range. Returns the image."""
    y1, x1, y2, x2 = (int(v) for v in box)
    for top, bottom, left, right in ((y1, y1, x1, x2), (y2, y2, x1, x2),
                                     (y1, y2, x1, x1), (y1, y2, x2, x2)):
        image[max(top - 1, 0):max(bottom + 2, 0), max(left - 1, 0):max(right + 2, 0)] = color
    return image


def display_top_masks(image, mask, class_ids, class_names, limit=4):
    """The image and, beside it, the masks of its `limit` classes of largest
    mask area (one panel per class, instances numbered 1, 2, ...; "-" for
    missing classes), via `display_images`."""
    class_ids = np.asarray(class_ids)
    panels = [image]
    titles = [f"H x W={image.shape[0]}x{image.shape[1]}"]
    classes = np.unique(class_ids)
    areas = [np.sum(mask[:, :, class_ids == c]) for c in classes]
    top = [c for c, a in sorted(zip(classes, areas), key=lambda r: r[1], reverse=True) if a > 0]
    for i in range(limit):
        class_id = top[i] if i < len(top) else -1
        picked = mask[:, :, class_ids == class_id]
        panels.append(np.sum(picked * np.arange(1, picked.shape[-1] + 1), -1))
        titles.append(class_names[class_id] if class_id != -1 else "-")
    display_images(panels, titles=titles, cols=limit + 1, cmap="Blues_r")


def plot_precision_recall(AP, precisions, recalls):
    """The precision/recall curve, AP@50 in the title, in a new figure."""
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(1)
    ax.set_title(f"Precision-Recall Curve. AP@50 = {AP:.3f}")
    ax.set_ylim(0, 1.1)
    ax.set_xlim(0, 1.1)
    ax.plot(recalls, precisions)


def plot_overlaps(gt_class_ids, pred_class_ids, pred_scores, overlaps, class_names,
                  threshold=0.5):
    """A grid of the IoUs of predictions (rows, "class (score)") with ground
    truths (columns), in a new figure; cells above `threshold` say "match"
    (same class) or "wrong". Class ids 0 (padding) are dropped.
    overlaps: [predictions, ground truths]."""
    import matplotlib.pyplot as plt

    gt_class_ids = np.asarray(gt_class_ids)
    pred_class_ids, pred_scores = np.asarray(pred_class_ids), np.asarray(pred_scores)
    gt_class_ids = gt_class_ids[gt_class_ids != 0]
    kept = pred_class_ids != 0
    pred_class_ids, pred_scores = pred_class_ids[kept], pred_scores[kept]
    overlaps = np.asarray(overlaps)
    plt.figure(figsize=(12, 10))
    plt.imshow(overlaps, interpolation="nearest", cmap=plt.cm.Blues)
    plt.yticks(np.arange(len(pred_class_ids)),
               [f"{class_names[int(c)]} ({s:.2f})" for c, s in zip(pred_class_ids, pred_scores)])
    plt.xticks(np.arange(len(gt_class_ids)), [class_names[int(c)] for c in gt_class_ids],
               rotation=90)
    half = overlaps.max() / 2.0 if overlaps.size else 0.0
    for i, j in itertools.product(range(overlaps.shape[0]), range(overlaps.shape[1])):
        verdict = ""
        if overlaps[i, j] > threshold:
            verdict = "match" if gt_class_ids[j] == pred_class_ids[i] else "wrong"
        ink = "white" if overlaps[i, j] > half else "black" if overlaps[i, j] > 0 else "grey"
        plt.text(j, i, f"{overlaps[i, j]:.3f}\n{verdict}", horizontalalignment="center",
                 verticalalignment="center", fontsize=9, color=ink)
    plt.tight_layout()
    plt.xlabel("Ground Truth")
    plt.ylabel("Predictions")


# visibility -> (colour or None for the instance's own, line style, alpha)
_VISIBILITY = {0: ("gray", "dotted", 0.5), 1: (None, "dotted", 1), 2: (None, "solid", 1)}


def draw_rois(image, rois, refined_rois, mask, class_ids, class_names, limit=10):
    """Up to `limit` ROIs chosen at random (Matterport's inspect view of the
    heads' targets): each ROI dotted, and for a positive one (class id > 0)
    its refined box, its class name and its mask pasted into the ROI;
    negatives faint. rois, refined_rois: [N, 4] pixels; mask: [N, h, w], or
    [N, h, w, C] (the ROI's class channel is shown). Prints the positive
    and negative counts of all N, as Matterport does."""
    from mrcnn import utils

    rois, class_ids = np.asarray(rois), np.asarray(class_ids).reshape(-1)
    ids = np.arange(len(rois))
    if len(ids) > limit:
        ids = np.sort(np.random.choice(ids, limit, replace=False))
    positive = class_ids[ids] > 0
    mask = np.asarray(mask)
    if mask.ndim == 4:
        mask = mask[ids, :, :, class_ids[ids]]  # [n, h, w]
    else:
        mask = mask[ids]
    full = np.zeros([*image.shape[:2], len(ids)], bool)
    for k in np.flatnonzero(positive):  # one pasted mask per shown positive
        full[..., k] = utils.unmold_mask(mask[k], rois[ids[k]].astype(np.int32), image.shape)
    draw_boxes(image, boxes=rois[ids], refined_boxes=np.asarray(refined_rois)[ids],
               masks=full, visibilities=np.where(positive, 2, 0),
               captions=[class_names[c] if c > 0 else "" for c in class_ids[ids]],
               title=f"ROIs and refined ROIs: {len(ids)} of {len(rois)}")
    n_pos = int(np.sum(class_ids > 0))
    print(f"Positive ROIs: {n_pos}")
    print(f"Negative ROIs: {int(np.sum(class_ids == 0))}")
    print(f"Positive Ratio: {n_pos / max(len(class_ids), 1):.2f}")


def draw_boxes(image, boxes=None, refined_boxes=None, masks=None, captions=None,
               visibilities=None, title="", ax=None):
    """Boxes, their refinements, masks and captions on the image (Matterport's
    view of anchors or proposals and what the heads made of them).

    boxes: [N, (y1, x1, y2, x2)], dotted (all-zero ones skipped);
    refined_boxes: [N, 4], solid, joined to the box's top left corner;
    masks: [H, W, N], tinted and outlined; captions: N strings, on the
    refined box if any, else the box; visibilities: N of 0 (grey, faint, no
    refined box), 1 (dotted, the default) or 2 (solid); at least one of
    boxes and refined_boxes. Draws into `ax`, or a new 12 x 12 figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if boxes is None and refined_boxes is None:
        raise ValueError("draw_boxes needs boxes or refined_boxes")
    n = len(boxes if boxes is not None else refined_boxes)
    if ax is None:
        _, ax = plt.subplots(1, figsize=(12, 12))
    colors = random_colors(n)
    _frame(ax, image, image.shape[0] // 10, title)
    masked = np.asarray(image).astype(np.uint32)
    for i in range(n):
        visibility = visibilities[i] if visibilities is not None else 1
        color, style, alpha = _VISIBILITY[int(visibility)]
        color = colors[i] if color is None else color
        anchor = None
        if boxes is not None:
            if not np.any(boxes[i]):
                continue  # no box (lost when the image was cropped)
            ax.add_patch(_box_patch(boxes[i][:4], color, alpha=alpha, linestyle=style))
            anchor = boxes[i][:2]
        if refined_boxes is not None and visibility > 0:
            refined = np.asarray(refined_boxes[i][:4]).astype(np.int32)
            ax.add_patch(_box_patch(refined, color))
            if anchor is not None:
                ax.add_line(Line2D([anchor[1], refined[1]], [anchor[0], refined[0]],
                                   color=color))
            anchor = refined[:2]
        if captions is not None and anchor is not None:
            ax.text(anchor[1], anchor[0], captions[i], size=11, verticalalignment="top",
                    color="w", backgroundcolor="none",
                    bbox={"facecolor": color, "alpha": 0.5, "pad": 2, "edgecolor": "none"})
        if masks is not None:
            masked = apply_mask(masked, masks[:, :, i], color if color != "gray" else (.5,) * 3)
            _add_outlines(ax, masks[:, :, i], color)
    ax.imshow(masked.astype(np.uint8))


def display_table(table):
    """Rows of values as an HTML table in IPython (a notebook), else as
    plain text with aligned columns on stdout."""
    rows = [[str(v) for v in row] for row in table]
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        cells = ("".join(f"<td>{html.escape(v)}</td>" for v in row) for row in rows)
        display(HTML("<table>" + "".join(f"<tr>{r}</tr>" for r in cells) + "</table>"))
        return
    widths = [max(len(row[c]) for row in rows if c < len(row))
              for c in range(max(map(len, rows), default=0))]
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def display_weight_stats(model):
    """A table (`display_table`) of every weight of the model: its name,
    shape, min, max and standard deviation, flagged "*** dead?" when all
    its values are equal (convolution biases excepted) and "*** Overflow?"
    beyond +-1000. model: a `MaskRCNN` (its `keras_model` is read) or a
    Keras model."""
    from keras import ops

    from mrcnn.checkpoint.hdf5 import weight_groups

    table = [["WEIGHT NAME", "SHAPE", "MIN", "MAX", "STD"]]
    for _, layer in weight_groups(getattr(model, "keras_model", model), grouped=()):
        for variable in layer.weights:
            w = ops.convert_to_numpy(variable)
            name = getattr(variable, "path", variable.name)
            conv_bias = type(layer).__name__ == "Conv2D" and name.endswith("bias")
            if w.size and w.min() == w.max() and not conv_bias:
                name += " *** dead?"
            if w.size and max(abs(w.min()), abs(w.max())) > 1000:
                name += " *** Overflow?"
            lo, hi, sd = (f(w) if w.size else float("nan") for f in (np.min, np.max, np.std))
            table.append([name, str(w.shape), f"{lo:+9.4f}", f"{hi:+10.4f}", f"{sd:+9.4f}"])
    display_table(table)
