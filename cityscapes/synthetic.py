"""A small synthetic street-scene dataset in the exact Cityscapes layout.

The project's demo and tests need Cityscapes-shaped data without the real
dataset (which needs a registration). This module draws street scenes from
polygons and writes them as the official distribution does:

    leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png          RGB uint8
    gtFine/{split}/{city}/{stem}_gtFine_polygons.json          the polygons
    gtFine/{split}/{city}/{stem}_gtFine_instanceIds.png        uint16
    gtFine/{split}/{city}/{stem}_gtFine_labelIds.png           uint8

(generate(..., polygons=False) leaves out the JSONs, as derived copies of
Cityscapes often do.)

with stem = "{city}_{seq:06d}_{frame:06d}", e.g. synthbrook_000000_000019,
and made-up city names (lowercase letters, different in each split). The
JSON has Cityscapes' fields ({"imgHeight", "imgWidth", "objects": [{"label",
"polygon": [[x, y], ...]}, ...]}, integer coordinates, "deleted": 1 on
deleted objects) and the two PNGs are what cityscapesscripts' own
json2instanceImg / json2labelImg rasterise from it (we call them), as in
the official distribution. Unlike real Cityscapes,
whose test labels are not public, the test split has labels too.

A scene is a list of polygons in drawing order, far to near: sky,
buildings, sidewalk, road, terrain and trees; then the objects of the 10
instance classes with class-typical shapes and proportions (people, riders
on bicycles or motorcycles, cars, trucks, buses, caravans, trailers,
trains, motorcycles, bicycles), sized by a simple perspective (the nearer
the ground contact line to the image bottom, the bigger), so nearer
objects occlude farther ones; then poles, traffic signs and lights (stuff
occluding instances, as in the real data) and last the ego vehicle's hood
along the bottom edge. Also, as real annotations have them: license plates
on some cars (label id -1, so the label images do not show them), crowd
regions ("cargroup", "persongroup", "bicyclegroup"), tiny objects, deleted
objects, polygons that touch (0, W-1, H-1) or cross the image border, now
and then an instance hidden entirely by a later polygon, and images without
any instance (every image whose index % EMPTY_EVERY == 1). Each other image
shows 4 "featured" classes for sure, rotating so that a few consecutive
images cover all 10, plus random ones; things that nearer polygons hide
almost entirely are left out, as an annotator would. The RGB image is
painted from the same polygons in the same order: a class-typical colour
per label jittered per object, details (windows, wheels, heads) inside the
object's own pixels, shading, texture and pixel noise.

Everything is deterministic: an image depends only on (seed, split, index,
height, width), through numpy.random.default_rng([seed, split, index]), not
on how many other images are generated (byte-identical files need the
same numpy, Pillow and zlib builds). Files are written under a
temporary name in their folder and renamed, so an interrupted run leaves no
half-written file under a final name.

    python -m cityscapes.synthetic --out DIR [--seed 0] [--height 256]
        [--width 512] [--train 12] [--val 4] [--test 4] [--cities 2]

    from cityscapes.synthetic import generate, ensure_demo
    summary = generate("/tmp/cs", seed=0, images={"train": 12, "val": 4, "test": 4})
    root = ensure_demo()        # the default demo dataset, generated once
"""

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from cityscapesscripts.helpers.annotation import Annotation
from cityscapesscripts.preparation.json2instanceImg import createInstanceImage
from cityscapesscripts.preparation.json2labelImg import createLabelImage
from PIL import Image, ImageDraw

import cli
from cityscapes.labels import INSTANCE_CLASSES
from mrcnn import files

SPLITS = ("train", "val", "test")
DEFAULT_IMAGES = {"train": 12, "val": 4, "test": 4}
# The demo (ensure_demo): enough scenes that train.py --dataset demo (1600
# steps of one image) sees each one two or three times: with 96 it learned the
# training scenes by heart (val loss 2.54 against train 1.45, val mask
# AP@0.5 0.33; 600 scenes: 2.17 / 2.11, AP 0.38). The demo of 900 steps of
# two images sees each of 400 scenes four or five times (val loss 2.16
# against train 1.84); 200 fewer scenes save ~15 s of generating. 24 val
# scenes give a steadier AP.
DEMO_IMAGES = {"train": 400, "val": 24, "test": 4}
DEFAULT_HEIGHT, DEFAULT_WIDTH, DEFAULT_CITIES = 256, 512, 2
MIN_SIZE = 32
# The frame number in every stem (gtFine annotates the 20th frame of a snippet).
FRAME = 19
# Images whose index in their split % EMPTY_EVERY == 1 have no instances.
EMPTY_EVERY = 16

DEMO_SEED = 0
DEMO_ENV_VAR = "MRCNN_DEMO_DIR"
DEMO_DEFAULT_DIR = os.path.join("~", ".cache", "mrcnn-cityscapes", "demo-v4")
# Written last by ensure_demo: the demo folder is complete when it is there.
MARKER = "SYNTHETIC_COMPLETE.json"
# Bump when the same arguments give different files (ensure_demo regenerates).
GENERATOR_VERSION = 1

IMAGE_SUFFIX = "_leftImg8bit.png"
POLYGONS_SUFFIX = "_gtFine_polygons.json"
INSTANCE_IDS_SUFFIX = "_gtFine_instanceIds.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"

_CITY_HEADS = ("synth", "pixel", "vector", "raster", "mosaic", "contour", "voxel", "sprite")
_CITY_TAILS = ("brook", "ton", "ville", "burg", "field", "haven", "stadt", "port")

# Scale: an object standing on image row y is (y - horizon) / CAMERA_HEIGHT
# pixels per metre (a pinhole camera CAMERA_HEIGHT metres above flat ground).
CAMERA_HEIGHT = 1.6
PIXEL_NOISE = 1.5  # standard deviation of the RGB noise, in grey levels

# Class-typical base colours (RGB), jittered per object.
COLOURS = {
    "sky": (125, 170, 225),
    "building": (150, 140, 130),
    "road": (88, 86, 92),
    "sidewalk": (172, 162, 166),
    "terrain": (128, 158, 80),
    "vegetation": (62, 112, 42),
    "pole": (112, 112, 118),
    "traffic sign": (225, 200, 30),
    "traffic light": (35, 35, 38),
    "ego vehicle": (28, 28, 34),
    "license plate": (232, 232, 226),
    "person": (190, 55, 70),
    "rider": (225, 120, 40),
    "car": (45, 70, 165),
    "truck": (205, 205, 200),
    "bus": (230, 185, 40),
    "caravan": (236, 230, 210),
    "trailer": (150, 108, 70),
    "train": (55, 150, 160),
    "motorcycle": (150, 45, 165),
    "bicycle": (40, 150, 70),
}
FACADES = ((150, 140, 130), (178, 160, 128), (120, 112, 108), (190, 182, 170), (150, 92, 72))
SIGNS = ((30, 80, 190), (225, 200, 30), (215, 215, 215), (200, 40, 40))
CABS = ((180, 40, 40), (40, 90, 160), (230, 230, 230), (60, 120, 70))
TYRE, HUB, GLASS = (22, 22, 24), (150, 150, 155), (45, 58, 72)
SKIN, TROUSERS, HELMET = (214, 168, 136), (45, 45, 60), (30, 30, 34)
TAIL, HEAD_LIGHT, WINDOW = (190, 25, 25), (235, 230, 190), (60, 70, 85)
MARKING, TRUNK, STRIPE = (225, 225, 215), (92, 70, 50), (150, 100, 60)

# Roughly how often each class is drawn beside the featured ones.
_CLASS_WEIGHTS = {"person": 30, "rider": 6, "car": 35, "truck": 5, "bus": 4, "caravan": 2,
                  "trailer": 3, "train": 2, "motorcycle": 5, "bicycle": 8}
# Largest pixel height of a class as a fraction of the image height.
_MAX_HEIGHT = {"truck": 0.5, "bus": 0.45, "caravan": 0.4, "trailer": 0.35, "train": 0.4}
# Things less visible than this (fraction of their pixels) are not annotated.
MIN_VISIBLE = 0.15
# How often a class is seen from the side (else from the front or back).
_SIDE_VIEW = {"bicycle": 0.7, "motorcycle": 0.7, "rider": 0.7, "train": 0.3}
_ROAD_CLASSES = ("car", "truck", "bus", "caravan", "trailer", "train", "motorcycle", "rider")


# ------------------------------------------------------------------- objects
@dataclass
class Obj:
    """One annotated polygon and how to paint it.

    polygon: [N, 2] int pixel coordinates (x, y) as written to the JSON.
    details: ("poly", [M, 2] px, rgb) | ("ellipse", (x0, y0, x1, y1), rgb)
        | ("ring", (x0, y0, x1, y1), rgb, width) | ("line", [M, 2] px, rgb, width),
        painted over the base colour and clipped to the object's pixels.
    shade: brightness change from the object's top to its bottom (fraction).
    texture: amplitude of the low-frequency texture, in grey levels.
    """

    label: str
    polygon: np.ndarray
    colour: tuple = (128, 128, 128)
    details: list = field(default_factory=list)
    shade: float = 0.15
    texture: float = 4.0
    deleted: bool = False

    def to_json(self):
        out = {"label": self.label, "polygon": self.polygon.tolist()}
        if self.deleted:
            out["deleted"] = 1
        return out


@dataclass
class Shape:
    """An outline in metres: x right of the object's centre, y up from the ground.

    details as in Obj but in metres; ellipses as (cx, cy, rx, ry). core: a
    box (x0, x1, y0, y1) well inside the outline, where a hidden object may
    go. anchors: named points (a bike's seat, handlebar, pedal).
    """

    outline: list
    details: list = field(default_factory=list)
    core: tuple = None
    anchors: dict = field(default_factory=dict)


# Random things per non-empty image besides the featured ones: (min, max).
DEFAULT_EXTRA_THINGS = (3, 8)
# (min, max) tiny things (bounding box 2-15 px at any image size) per
# non-empty image: annotation edge cases for the loader's tests.
DEFAULT_TINY_THINGS = (1, 3)

def _arc(cx, cy, r, a0, a1, n):
    """n points on a circle from angle a0 to a1 (degrees, y up)."""
    a = np.radians(np.linspace(a0, a1, n))
    return list(zip(cx + r * np.cos(a), cy + r * np.sin(a)))


def _rect(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _wheel(x, r, hub=0.5):
    return [("ellipse", (x, r, r, r), TYRE), ("ellipse", (x, r, r * hub, r * hub), HUB)]


def _cutout(x, r, clear):
    """The bottom of an outline around a wheel at x (right to left)."""
    return [(x + r, clear), (x + 0.7 * r, 0.0), (x - 0.7 * r, 0.0), (x - r, clear)]


# -------------------------------------------------------------------- shapes
def _person(rng):
    h = rng.uniform(1.55, 1.95)
    k = rng.uniform(0.8, 1.1)  # build
    st = rng.uniform(0.0, 0.08) * h  # stride
    arm = rng.uniform(0.15, 0.2) * h
    r = 0.065 * h

    def body(points):  # x scaled by the build
        return [(x * k, y) for x, y in points]

    outline = body([(-st - 0.085 * h, 0), (-st - 0.02 * h, 0), (0, 0.45 * h), (st + 0.02 * h, 0),
                    (st + 0.085 * h, 0), (0.1 * h, 0.5 * h), (arm - 0.03 * h, 0.42 * h),
                    (arm, 0.45 * h), (0.15 * h, 0.79 * h), (0.05 * h, 0.835 * h)])
    outline += _arc(0, h - r, r, -60, 240, 9)
    outline += body([(-0.05 * h, 0.835 * h), (-0.15 * h, 0.79 * h), (-arm, 0.45 * h),
                     (-arm + 0.03 * h, 0.42 * h), (-0.1 * h, 0.5 * h)])
    legs = body([(-st - 0.1 * h, -0.01), (st + 0.1 * h, -0.01), (0.11 * h, 0.5 * h),
                 (-0.11 * h, 0.5 * h)])
    return Shape(outline, [("poly", legs, TROUSERS), ("ellipse", (0, h - r, r, r), SKIN)])


def _rider(rng, bike, side):
    """A rider on `bike` (a Shape with seat, bar, foot anchors)."""
    sx, sy = bike.anchors["seat"]
    bx, by = bike.anchors["bar"]
    fx, fy = bike.anchors["foot"]
    head = HELMET if bike.anchors["helmet"] or rng.random() < 0.4 else SKIN
    r = rng.uniform(0.1, 0.12)
    if side:
        lean = rng.uniform(0.1, 0.4)
        shx, shy = sx + 0.15 + 0.25 * lean, sy + rng.uniform(0.5, 0.6)
        hx, hy = shx + 0.1 * lean + 0.03, shy + 0.2
        kx, ky = (sx + fx) / 2 + 0.2, (sy + fy) / 2 + 0.15
        outline = [(sx - 0.1, sy - 0.03), (sx - 0.15, sy + 0.12), (shx - 0.12, shy - 0.02)]
        outline += _arc(hx, hy, r, 210, -30, 8)
        outline += [(shx + 0.1, shy - 0.05), (bx - 0.02, by + 0.05), (bx + 0.03, by - 0.02),
                    (bx - 0.06, by - 0.05), (shx + 0.05, shy - 0.22), (sx + 0.15, sy + 0.15),
                    (kx + 0.07, ky + 0.04), (kx + 0.05, ky - 0.06), (fx + 0.12, fy + 0.02),
                    (fx - 0.06, fy - 0.02), (kx - 0.05, ky - 0.1), (sx + 0.05, sy - 0.05)]
        legs = [(sx - 0.15, sy + 0.12), (sx + 0.15, sy + 0.15), (kx + 0.07, ky + 0.04),
                (fx + 0.12, fy), (fx - 0.06, fy - 0.04), (sx - 0.1, sy - 0.05)]
    else:
        bw = abs(bx)
        shy = sy + rng.uniform(0.5, 0.6)
        hx, hy = 0.0, shy + 0.2
        outline = [(-0.16, fy), (-0.08, fy), (-0.06, sy), (0.06, sy), (0.08, fy), (0.16, fy),
                   (0.2, sy + 0.05), (bw, by), (bw, by + 0.08), (0.2, shy), (0.06, shy + 0.05)]
        outline += _arc(hx, hy, r, -60, 240, 9)
        outline += [(-0.06, shy + 0.05), (-0.2, shy), (-bw, by + 0.08), (-bw, by),
                    (-0.2, sy + 0.05)]
        legs = _rect(-0.2, fy - 0.02, 0.2, sy + 0.1)
    details = [("poly", legs, TROUSERS), ("ellipse", (hx, hy, r, r), head)]
    return Shape(outline, details)


def _bicycle(rng, side):
    h = rng.uniform(0.95, 1.1)
    if not side:
        outline = [(-0.04, 0), (0.04, 0), (0.04, 0.7), (0.05, h - 0.06), (0.3, h - 0.06), (0.3, h),
                   (-0.3, h), (-0.3, h - 0.06), (-0.05, h - 0.06), (-0.04, 0.7)]
        details = [("poly", _rect(-0.05, -0.01, 0.05, 0.68), TYRE)]
        anchors = dict(seat=(0, h - 0.05), bar=(0.3, h), foot=(0, 0.3), helmet=False)
        return Shape(outline, details, anchors=anchors)
    L, r = rng.uniform(1.65, 1.8), 0.34
    rw, fw = -L / 2 + r, L / 2 - r
    outline = _arc(rw, r, r, 100, 300, 8) + [(0.0, 0.3)] + _arc(fw, r, r, 240, 420, 8)
    outline += [(fw - 0.12, h - 0.08), (fw - 0.05, h), (fw - 0.3, h), (fw - 0.2, h - 0.12),
                (-0.2, h - 0.15), (-0.22, h), (-0.45, h), (-0.45, h - 0.05), (-0.3, h - 0.1)]
    details = [("ring", (rw, r, r, r), TYRE, 0.06), ("ring", (fw, r, r, r), TYRE, 0.06),
               ("line", [(rw, r), (0.0, 0.3), (-0.25, h - 0.1), (fw - 0.15, h - 0.1), (fw, r)],
                (200, 200, 200), 0.04)]
    anchors = dict(seat=(-0.32, h), bar=(fw - 0.15, h), foot=(0.02, 0.28), helmet=False)
    return Shape(outline, details, anchors=anchors)


def _motorcycle(rng, side):
    h = rng.uniform(1.05, 1.25)
    if not side:
        outline = [(-0.07, 0), (0.07, 0), (0.08, 0.4), (0.3, 0.55), (0.3, 0.85), (0.42, h - 0.05),
                   (0.42, h), (-0.42, h), (-0.42, h - 0.05), (-0.3, 0.85), (-0.3, 0.55),
                   (-0.08, 0.4)]
        details = [("poly", _rect(-0.08, -0.01, 0.08, 0.55), TYRE),
                   ("ellipse", (0, 0.8, 0.1, 0.1), HEAD_LIGHT)]
        anchors = dict(seat=(0, 0.85), bar=(0.42, h), foot=(0, 0.35), helmet=True)
        return Shape(outline, details, anchors=anchors)
    L, r = rng.uniform(1.9, 2.2), 0.3
    rw, fw = -L / 2 + 0.35, L / 2 - 0.35
    outline = _arc(rw, r, r, 110, 300, 8) + [(rw + 0.3, 0.35), (fw - 0.3, 0.35)]
    outline += _arc(fw, r, r, 230, 430, 8)
    outline += [(fw - 0.05, h), (fw - 0.25, h), (0.1, 0.95), (-0.35, 0.82), (-L / 2 + 0.05, 0.85),
                (-L / 2 + 0.1, 0.7)]
    details = _wheel(rw, r) + _wheel(fw, r) + [
        ("poly", [(-0.3, 0.35), (0.3, 0.35), (0.25, 0.7), (-0.2, 0.7)], (60, 60, 65)),
        ("poly", [(-0.6, 0.8), (-0.1, 0.85), (-0.1, 0.95), (-0.55, 0.9)], HELMET)]
    anchors = dict(seat=(-0.3, 0.85), bar=(fw - 0.15, h), foot=(0.05, 0.4), helmet=True)
    return Shape(outline, details, anchors=anchors)


def _car(rng, side, front):
    h = rng.uniform(1.4, 1.65)
    if not side:
        w = rng.uniform(1.7, 1.9) / 2
        outline = [(-w + 0.1, 0), (-w + 0.35, 0), (-w + 0.35, 0.15), (w - 0.35, 0.15),
                   (w - 0.35, 0), (w - 0.1, 0), (w, 0.2), (w, 0.85), (w - 0.12, 0.95), (w - 0.3, h),
                   (-w + 0.3, h), (-w + 0.12, 0.95), (-w, 0.85), (-w, 0.2)]
        light = HEAD_LIGHT if front else TAIL
        details = [("poly", [(-w + 0.2, 0.97), (-w + 0.36, h - 0.07), (w - 0.36, h - 0.07),
                             (w - 0.2, 0.97)], GLASS),
                   ("poly", _rect(-w + 0.08, 0.68, -w + 0.35, 0.8), light),
                   ("poly", _rect(w - 0.35, 0.68, w - 0.08, 0.8), light),
                   ("poly", _rect(-w, 0.0, w, 0.28), (40, 40, 44))]
        return Shape(outline, details, core=(-w + 0.15, w - 0.15, 0.3, 0.85))
    L, r = rng.uniform(3.8, 4.8), 0.32
    fw, rw = L / 2 - 0.85, -L / 2 + 0.85
    outline = [(-L / 2, 0.3), (-L / 2 + 0.05, 0.8), (-L / 2 + 0.4, 0.88), (-L / 2 + 0.95, 0.95),
               (-L / 2 + 1.45, h), (L / 2 - 1.75, h), (L / 2 - 1.05, 0.98), (L / 2 - 0.1, 0.82),
               (L / 2, 0.4), (L / 2 - 0.2, 0.15)]
    outline += _cutout(fw, r + 0.04, 0.12) + _cutout(rw, r + 0.04, 0.12) + [(-L / 2 + 0.15, 0.12)]
    details = [("poly", [(-L / 2 + 1.05, 0.97), (-L / 2 + 1.5, h - 0.08), (L / 2 - 1.8, h - 0.08),
                         (L / 2 - 1.15, 0.97)], GLASS),
               ("line", [(0.0, 0.97), (0.0, h)], (30, 30, 34), 0.08),
               ("poly", _rect(L / 2 - 0.25, 0.6, L / 2 + 0.05, 0.72), HEAD_LIGHT),
               ("poly", _rect(-L / 2 - 0.05, 0.62, -L / 2 + 0.2, 0.76), TAIL)]
    details += _wheel(fw, r) + _wheel(rw, r)
    return Shape(outline, details, core=(-L / 2 + 0.3, L / 2 - 0.3, 0.35, 0.8))


def _truck(rng, side, front):
    h, ch = rng.uniform(3.2, 3.8), rng.uniform(2.8, 3.1)
    cab = CABS[rng.integers(len(CABS))]
    if not side:
        w = 1.25
        outline = [(-w, 0), (-w + 0.5, 0), (-w + 0.5, 0.4), (w - 0.5, 0.4), (w - 0.5, 0), (w, 0),
                   (w, h), (-w, h)]
        if front:
            details = [("poly", _rect(-w, 0.4, w, ch), cab),
                       ("poly", _rect(-w + 0.15, ch - 1.1, w - 0.15, ch - 0.2), GLASS)]
        else:
            details = [("line", [(0, 0.5), (0, h - 0.1)], (120, 120, 120), 0.05),
                       ("poly", _rect(-w + 0.05, 0.5, -w + 0.3, 0.7), TAIL),
                       ("poly", _rect(w - 0.3, 0.5, w - 0.05, 0.7), TAIL)]
        return Shape(outline, details, core=(-w + 0.2, w - 0.2, 0.6, h - 0.3))
    L, r, cl = rng.uniform(6.5, 9.0), 0.5, 2.2
    fw, rw1 = L / 2 - 1.1, -L / 2 + 1.3
    rw2 = rw1 + 1.1
    outline = [(-L / 2, 0.5), (-L / 2, h), (L / 2 - cl - 0.1, h), (L / 2 - cl - 0.1, ch),
               (L / 2 - 0.5, ch), (L / 2, ch - 0.8), (L / 2, 0.5)]
    outline += _cutout(fw, r, 0.5)
    outline += [(rw2 + r, 0.5), (rw2 + 0.35, 0), (rw1 - 0.35, 0), (rw1 - r, 0.5)]
    details = [("poly", [(L / 2 - cl, 0.5), (L / 2 - cl, ch), (L / 2 - 0.5, ch), (L / 2, ch - 0.8),
                         (L / 2, 0.5)], cab),
               ("poly", [(L / 2 - 0.9, ch - 0.15), (L / 2 - 0.5, ch - 0.15),
                         (L / 2 - 0.1, ch - 0.85), (L / 2 - 0.9, ch - 0.85)], GLASS)]
    details += _wheel(fw, r) + _wheel(rw1, r) + _wheel(rw2, r)
    return Shape(outline, details, core=(-L / 2 + 0.2, L / 2 - cl - 0.3, 0.7, h - 0.2))


def _bus(rng, side, front):
    h = rng.uniform(3.0, 3.3)
    if not side:
        w = 1.27
        outline = [(-w + 0.15, 0), (w - 0.15, 0), (w, 0.3), (w, h - 0.25), (w - 0.2, h),
                   (-w + 0.2, h), (-w, h - 0.25), (-w, 0.3)]
        if front:
            details = [("poly", [(-w + 0.1, 1.2), (-w + 0.15, h - 0.45), (w - 0.15, h - 0.45),
                                 (w - 0.1, 1.2)], GLASS),
                       ("poly", _rect(-w + 0.3, h - 0.4, w - 0.3, h - 0.12), (240, 140, 30))]
        else:
            details = [("poly", _rect(-w + 0.3, 1.8, w - 0.3, h - 0.4), GLASS),
                       ("poly", _rect(-w + 0.05, 0.5, -w + 0.3, 0.9), TAIL),
                       ("poly", _rect(w - 0.3, 0.5, w - 0.05, 0.9), TAIL)]
        return Shape(outline, details, core=(-w + 0.2, w - 0.2, 0.4, h - 0.3))
    L, r = rng.uniform(10.5, 12.5), 0.5
    fw, rw = L / 2 - 2.6, -L / 2 + 3.0
    outline = [(-L / 2, 0.35), (-L / 2, h - 0.2), (-L / 2 + 0.2, h), (L / 2 - 0.3, h),
               (L / 2, h - 0.4), (L / 2, 0.35)]
    outline += _cutout(fw, r + 0.05, 0.35) + _cutout(rw, r + 0.05, 0.35)
    details = [("poly", [(-L / 2 + 0.3, 1.3), (-L / 2 + 0.3, h - 0.35), (L / 2 - 0.2, h - 0.35),
                         (L / 2 - 0.1, 1.3)], GLASS)]
    details += [("line", [(x, 1.3), (x, h - 0.35)], (200, 200, 200), 0.12)
                for x in np.arange(-L / 2 + 1.5, L / 2 - 1.7, 1.3)]
    details += [("poly", _rect(L / 2 - 1.6, 0.35, L / 2 - 0.6, h - 0.4), (35, 45, 55))]
    details += _wheel(fw, r) + _wheel(rw, r)
    return Shape(outline, details, core=(-L / 2 + 0.3, L / 2 - 0.3, 0.6, h - 0.3))


def _caravan(rng, side, front):
    h = rng.uniform(2.7, 3.0)
    if not side:
        w = 1.15
        outline = [(-w + 0.1, 0.0), (w - 0.1, 0.0), (w, 0.4), (w, h - 0.3), (w - 0.3, h),
                   (-w + 0.3, h), (-w, h - 0.3), (-w, 0.4)]
        glass = [(-w + 0.2, 1.2), (-w + 0.3, 2.0), (w - 0.3, 2.0), (w - 0.2, 1.2)] if front else \
            _rect(-0.4, 1.4, 0.4, 2.1)
        details = [("poly", glass, GLASS), ("poly", _rect(-w, 0.8, w, 1.0), STRIPE)]
        return Shape(outline, details, core=(-w + 0.2, w - 0.2, 0.5, h - 0.35))
    L, r = rng.uniform(5.5, 7.0), 0.36
    fw, rw = L / 2 - 1.0, -L / 2 + 1.6
    outline = [(-L / 2, 0.45), (-L / 2, h - 0.15), (-L / 2 + 0.15, h), (L / 2 - 0.5, h),
               (L / 2 - 0.3, h - 0.55), (L / 2 - 0.6, h - 0.75), (L / 2 - 0.1, 1.3), (L / 2, 0.5)]
    outline += _cutout(fw, r + 0.04, 0.45) + _cutout(rw, r + 0.04, 0.45)
    details = [("poly", _rect(-L / 2, 0.8, L / 2, 1.0), STRIPE),
               ("poly", _rect(-L / 2 + 0.6, 1.5, -L / 2 + 1.6, 2.1), GLASS),
               ("poly", _rect(-0.4, 1.5, 0.6, 2.1), GLASS),
               ("poly", [(L / 2 - 0.62, h - 0.85), (L / 2 - 0.2, 1.35), (L / 2 - 0.5, 1.3),
                         (L / 2 - 0.8, h - 0.85)], GLASS)]
    details += _wheel(fw, r) + _wheel(rw, r)
    return Shape(outline, details, core=(-L / 2 + 0.2, L / 2 - 1.0, 0.6, h - 0.2))


def _trailer(rng, side, front):
    h = rng.uniform(1.8, 2.5)
    if not side:
        w = 1.05
        outline = [(-w, 0.6), (-w, h), (w, h), (w, 0.6), (0.95, 0.6), (0.95, 0), (0.65, 0),
                   (0.65, 0.6), (-0.65, 0.6), (-0.65, 0), (-0.95, 0), (-0.95, 0.6)]
        details = [("poly", _rect(-w, 0.6, -w + 0.2, 0.75), TAIL),
                   ("poly", _rect(w - 0.2, 0.6, w, 0.75), TAIL),
                   ("poly", _rect(-0.95, -0.01, -0.65, 0.6), TYRE),
                   ("poly", _rect(0.65, -0.01, 0.95, 0.6), TYRE)]
        return Shape(outline, details, core=(-w + 0.15, w - 0.15, 0.8, h - 0.2))
    L, r = rng.uniform(3.5, 6.0), 0.33
    outline = [(-L / 2, 0.6), (-L / 2, h), (L / 2 - 1.2, h), (L / 2 - 1.2, 0.9), (L / 2, 0.55),
               (L / 2, 0.45), (L / 2 - 1.2, 0.6)] + _cutout(-0.6, r + 0.05, 0.6)
    details = [("line", [(x, 0.65), (x, h - 0.05)], (110, 80, 50), 0.05)
               for x in np.arange(-L / 2 + 0.6, L / 2 - 1.3, 0.6)]
    details += [("line", [(L / 2 - 1.2, 0.75), (L / 2, 0.5)], (50, 50, 50), 0.08)]
    details += _wheel(-0.6, r)
    return Shape(outline, details, core=(-L / 2 + 0.2, L / 2 - 1.4, 0.8, h - 0.2))


def _train(rng, side, front):
    h = rng.uniform(3.4, 3.8)
    pantograph = [(-0.6, h), (-0.3, h + 0.7), (0.3, h + 0.7), (0.6, h)]
    if not side:
        w = 1.33
        outline = [(-w, 0.2), (w, 0.2), (w, h - 0.4), (w - 0.5, h), (0.6, h), (0.3, h + 0.7),
                   (-0.3, h + 0.7), (-0.6, h), (-w + 0.5, h), (-w, h - 0.4)]
        details = [("poly", [(-w + 0.15, 1.5), (-w + 0.3, h - 0.4), (w - 0.3, h - 0.4),
                             (w - 0.15, 1.5)], GLASS),
                   ("ellipse", (-w + 0.35, 0.8, 0.12, 0.12), HEAD_LIGHT if front else TAIL),
                   ("ellipse", (w - 0.35, 0.8, 0.12, 0.12), HEAD_LIGHT if front else TAIL),
                   ("line", [(-0.3, h + 0.7), (0.3, h + 0.7)], (40, 40, 40), 0.05)]
        return Shape(outline, details, core=(-w + 0.2, w - 0.2, 0.4, h - 0.3))
    L = rng.uniform(12.0, 25.0)  # a tram, or a longer one seen obliquely
    outline = [(-L / 2, 0.25), (-L / 2, h - 0.25), (-L / 2 + 0.3, h)] + pantograph + [
        (L / 2 - 1.2, h), (L / 2, h - 0.9), (L / 2, 0.25)]
    for bx in (L / 2 - 4.0, -L / 2 + 4.0):
        outline += [(bx + 1.2, 0.25), (bx + 1.1, 0.0), (bx - 1.1, 0.0), (bx - 1.2, 0.25)]
    details = [("poly", [(-L / 2 + 0.3, 1.4), (-L / 2 + 0.3, h - 0.5), (L / 2 - 1.3, h - 0.5),
                         (L / 2 - 0.5, 1.4)], GLASS),
               ("poly", _rect(-L / 2, 0.25, L / 2, 0.7), (225, 225, 220))]
    details += [("poly", _rect(x - 0.65, 0.3, x + 0.65, h - 0.45), (40, 50, 60))
                for x in np.arange(-L / 2 + 3.0, L / 2 - 2.0, 6.5)]
    details += [("line", [(x, 1.4), (x, h - 0.5)], (200, 200, 200), 0.15)
                for x in np.arange(-L / 2 + 1.5, L / 2 - 2.0, 1.6)]
    return Shape(outline, details, core=(-L / 2 + 0.4, L / 2 - 1.3, 0.5, h - 0.3))


_VEHICLES = {"car": _car, "truck": _truck, "bus": _bus, "caravan": _caravan, "trailer": _trailer,
             "train": _train}


def _group(rng, name, n):
    """A crowd of n cars / persons / bicycles side by side (one outline)."""
    pts_top, details = [], []
    if name == "car":
        pitch = 1.6
        xs = (np.arange(n) - (n - 1) / 2) * pitch
        for i, x in enumerate(xs):
            h = rng.uniform(1.4, 1.7)
            if i == 0:
                pts_top += [(x - 0.9, 0.85)]
            pts_top += [(x - 0.65, h), (x + 0.65, h), (x + 0.8, 1.0)]
            details += [("poly", [(x - 0.6, 0.97), (x - 0.5, h - 0.07), (x + 0.5, h - 0.07),
                                  (x + 0.6, 0.97)], GLASS),
                        ("poly", _rect(x - 0.8, 0.65, x - 0.6, 0.75), TAIL)]
        pts_top[-1] = (xs[-1] + 0.9, 0.85)
        half = xs[-1] + 0.9
        bottom = [(half, 0.2), (half - 0.1, 0), (-half + 0.1, 0), (-half, 0.2)]
    elif name == "person":
        pitch = 0.45
        xs = (np.arange(n) - (n - 1) / 2) * pitch
        for x in xs:
            h = rng.uniform(1.55, 1.9)
            r = 0.065 * h
            pts_top += [(x - 0.22, 0.79 * h), (x - 0.06, 0.84 * h)]
            pts_top += _arc(x, h - r, r, 220, -40, 7)
            pts_top += [(x + 0.06, 0.84 * h), (x + 0.22, 0.79 * h)]
            details += [("ellipse", (x, h - r, r, r), SKIN),
                        ("poly", _rect(x - 0.12, 0, x + 0.12, 0.48 * h), TROUSERS)]
        half = xs[-1] + 0.22
        bottom = [(half, 0), (-half, 0)]
    else:  # bicycle
        pitch = 0.5
        xs = (np.arange(n) - (n - 1) / 2) * pitch
        for x in xs:
            pts_top += [(x - 0.22, 0.85), (x - 0.18, 1.05), (x + 0.18, 1.05), (x + 0.22, 0.85)]
            details += [("ring", (x, 0.34, 0.12, 0.34), TYRE, 0.05)]
        half = xs[-1] + 0.22
        bottom = [(half, 0), (-half, 0)]
    return Shape(bottom + pts_top, details)


# --------------------------------------------------------------- placement
class Scene:
    """Image geometry: horizon row, road vanishing point and road edges."""

    def __init__(self, rng, height, width):
        self.H, self.W = height, width
        self.horizon = height * rng.uniform(0.40, 0.48)
        self.vx = width * rng.uniform(0.35, 0.65)
        self.road_top = width * rng.uniform(0.005, 0.02)
        self.road_bottom = width * rng.uniform(0.45, 0.8)

    def scale(self, y):
        """Pixels per metre for an object standing on row y."""
        return max(y - self.horizon, 1e-3) / CAMERA_HEIGHT

    def row_at_scale(self, s):
        return self.horizon + s * CAMERA_HEIGHT

    def edge(self, y, k, side):
        """x of the line k road half-widths from the road centre on row y (side -1/+1)."""
        t = (y - self.horizon) / (self.H - self.horizon)
        return self.vx + side * (self.road_top + (k * self.road_bottom - self.road_top) * t)


def _jitter(rng, rgb, amount=1.0):
    rgb = np.asarray(rgb, float) * rng.uniform(1 - 0.15 * amount, 1 + 0.15 * amount)
    return tuple(np.clip(rgb + rng.normal(0, 10 * amount, 3), 0, 255))


def _to_pixels(points, cx, yb, s, facing):
    p = np.asarray(points, float).reshape(-1, 2)
    return np.stack([cx + facing * p[:, 0] * s, yb - p[:, 1] * s], axis=1)


def _detail_pixels(d, cx, yb, s, facing):
    kind, geo, rgb = d[0], d[1], d[2]
    if kind in ("ellipse", "ring"):
        (x, y), rx, ry = _to_pixels([geo[:2]], cx, yb, s, facing)[0], geo[2] * s, geo[3] * s
        out = (kind, (x - rx, y - ry, x + rx, y + ry), rgb)
    else:
        out = (kind, _to_pixels(geo, cx, yb, s, facing), rgb)
    if kind in ("ring", "line"):
        out += (max(1, int(round(d[3] * s))),)
    return out


def _int_polygon(points):
    """Round to integer pixels and drop repeated consecutive points (keep >= 3)."""
    p = np.rint(np.asarray(points, float)).astype(np.int64)
    keep = np.any(p != np.roll(p, 1, axis=0), axis=1)
    return p[keep] if keep.sum() >= 3 else p


def _place(rng, label, shape, cx, yb, s, facing=1, colour=None, texture=3.0):
    """An Obj from a Shape in metres standing at (cx, yb) with s pixels per metre."""
    colour = _jitter(rng, COLOURS[label] if colour is None else colour)
    details = [_detail_pixels(d, cx, yb, s, facing) for d in shape.details]
    return Obj(label, _int_polygon(_to_pixels(shape.outline, cx, yb, s, facing)), colour, details,
               shade=rng.uniform(0.1, 0.3), texture=texture)


@dataclass
class Entity:
    """Objects listed together (a bike and its rider, a car and its plate)."""

    yb: float
    objs: list
    core: tuple = None  # pixel box (x0, y0, x1, y1) inside objs[0], for hiding an object
    name: str = ""
    cx: float = 0.0
    strip: tuple = None  # the x range of a featured thing
    on_road: bool = True
    clamped: bool = False
    hidden: bool = False  # placed to be hidden entirely by a later object
    featured: bool = False  # kept while any pixel of it shows


def _core_pixels(shape, cx, yb, s, facing):
    if shape.core is None:
        return None
    x0, x1, y0, y1 = shape.core
    p = _to_pixels([(x0, y0), (x1, y1)], cx, yb, s, facing)
    return (p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max())


def _position(rng, scene, yb, on_road, margin=0.1):
    """A centre x on the road or a sidewalk on row yb, at most margin * W off the image."""
    lo_vis, hi_vis = -margin * scene.W, (1 + margin) * scene.W
    if not on_road:
        side = -1 if rng.random() < 0.5 else 1
        lo, hi = sorted((scene.edge(yb, 1.05, side), scene.edge(yb, 1.8, side)))
        lo, hi = max(lo, lo_vis), min(hi, hi_vis)
        if lo < hi:
            return rng.uniform(lo, hi)
    lo, hi = scene.edge(yb, 0.9, -1), scene.edge(yb, 0.9, 1)
    return rng.uniform(max(lo, lo_vis), min(hi, hi_vis))


def _thing(rng, scene, name, yb=None, s=None, strip=None):
    """One instance (with its bike or plate) of class `name` as an Entity."""
    H = scene.H
    side = rng.random() < _SIDE_VIEW.get(name, 0.45)
    facing = 1 if rng.random() < 0.5 else -1
    front = rng.random() < 0.5
    if name in ("person",):
        shape = _person(rng)
    elif name in ("bicycle", "motorcycle", "rider"):
        bike_name = name if name != "rider" else ("bicycle" if rng.random() < 0.6 else "motorcycle")
        shape = (_bicycle if bike_name == "bicycle" else _motorcycle)(rng, side)
    else:
        shape = _VEHICLES[name](rng, side, front)
    outline = np.asarray(shape.outline, float)
    height_m = outline[:, 1].max()
    if yb is None:
        frac = 0.1 + 0.6 * rng.random() if strip else 0.03 + 1.01 * rng.random() ** 1.8
        yb = scene.horizon + (H - scene.horizon) * frac
        s_max = _MAX_HEIGHT.get(name, 10.0) * H / height_m
        yb = min(yb, scene.row_at_scale(s_max))
    s = scene.scale(yb) if s is None else s
    on_road = name in _ROAD_CLASSES or rng.random() < 0.2
    cx = _position(rng, scene, yb, on_road) if strip is None else rng.uniform(*strip)
    if name == "rider":
        bike = _place(rng, bike_name, shape, cx, yb, s, facing)
        rider = _place(rng, "rider", _rider(rng, shape, side), cx, yb, s, facing)
        return Entity(yb, [bike, rider], name=name, cx=cx, on_road=on_road)
    obj = _place(rng, name, shape, cx, yb, s, facing)
    objs = [obj]
    if name == "car" and not side and rng.random() < 0.6 and 0.52 * s >= 3:
        plate = _place(rng, "license plate", Shape(_rect(-0.26, 0.36, 0.26, 0.48),
                                                   [("line", [(-0.18, 0.42), (0.18, 0.42)],
                                                     (40, 40, 40), 0.04)]),
                       cx, yb, s, facing, texture=0.0)
        objs.append(plate)
    return Entity(yb, objs, core=_core_pixels(shape, cx, yb, s, facing), name=name, cx=cx,
                  on_road=on_road)


def _tiny(rng, scene):
    """A thing whose bounding box is a few pixels up to ~15 x 15 (at any image size)."""
    name = ("person", "car", "bicycle", "motorcycle", "truck")[rng.integers(5)]
    size_px = rng.uniform(2.0, 15.0)
    extent = {"person": 1.8, "car": 4.3, "bicycle": 1.75, "motorcycle": 2.1, "truck": 8.0}[name]
    s = size_px / extent
    return _thing(rng, scene, name, yb=scene.row_at_scale(s), s=s)


def _crowd(rng, scene):
    name = ("car", "person", "bicycle")[rng.integers(3)]
    n = int(rng.integers(3, 7))
    yb = scene.horizon + (scene.H - scene.horizon) * rng.uniform(0.05, 0.25)
    s = scene.scale(yb)
    cx = _position(rng, scene, yb, on_road=name == "car")
    obj = _place(rng, name + "group", _group(rng, name, n), cx, yb, s, colour=COLOURS[name])
    return Entity(yb, [obj])


def _hide_behind(rng, entity, height, width):
    """A small instance placed entirely inside entity's core box (in the image), or None."""
    x0, y0, x1, y1 = entity.core
    x0, y0, x1, y1 = max(x0, 0) + 2, max(y0, 0) + 2, min(x1, width - 1) - 2, min(y1, height - 1) - 2
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    name = ("person", "bicycle", "car")[rng.integers(3)]
    shape = {"person": _person, "bicycle": lambda r: _bicycle(r, True),
             "car": lambda r: _car(r, False, False)}[name](rng)
    p = np.asarray(shape.outline, float)
    w_m, h_m = np.ptp(p[:, 0]), p[:, 1].max()
    s = min((x1 - x0) / w_m, (y1 - y0) / h_m) * rng.uniform(0.4, 0.9)
    cx = rng.uniform(x0 + (w_m / 2 + 1) * s, x1 - (w_m / 2 + 1) * s) if x1 - x0 > (w_m + 2) * s \
        else (x0 + x1) / 2
    yb = y1 - rng.uniform(0, max(0.0, (y1 - y0) - h_m * s))
    obj = _place(rng, name, shape, cx, yb, s)
    poly = obj.polygon
    inside = (poly[:, 0].min() >= x0 and poly[:, 0].max() <= x1 and
              poly[:, 1].min() >= y0 and poly[:, 1].max() <= y1)
    return Entity(yb, [obj], hidden=True) if inside else None


def _clamp(entity, H, W):
    for o in entity.objs:
        o.polygon = _int_polygon(np.clip(o.polygon, 0, [W - 1, H - 1]))
    entity.clamped = True


def _crosses_border(entity, H, W):
    p = np.concatenate([o.polygon for o in entity.objs])
    return p[:, 0].min() < 0 or p[:, 1].min() < 0 or p[:, 0].max() >= W or p[:, 1].max() >= H


# ------------------------------------------------------------------- stuff
def _sky(rng, scene):
    y = int(scene.horizon) + 3  # the buildings and the ground cover its lower edge
    return [Obj("sky", _int_polygon(_rect(0, 0, scene.W - 1, y)), _jitter(rng, COLOURS["sky"], 0.5),
                shade=-rng.uniform(0.1, 0.25), texture=1.5)]


def _buildings(rng, scene):
    H, W, yh = scene.H, scene.W, scene.horizon
    out, x = [], -rng.uniform(0.0, 0.06) * W
    base = yh + 0.03 * H
    while x < W:
        bw = rng.uniform(0.07, 0.25) * W
        if rng.random() < 0.15:  # a gap showing the sky
            x += bw * 0.5
            continue
        top = yh - rng.uniform(0.08, 0.5) * H
        roof = [(x, top), (x + bw, top)]
        if rng.random() < 0.3:
            roof = [(x, top), (x + bw / 2, top - rng.uniform(0.03, 0.1) * H), (x + bw, top)]
        poly = [(x, base)] + roof + [(x + bw, base)]
        colour = _jitter(rng, FACADES[rng.integers(len(FACADES))], 0.6)
        details = []
        cols = int(rng.integers(3, 8))
        pitch = bw / cols
        rows = max(1, int((base - top - 0.02 * H) / (pitch * 1.3)))
        for r in range(rows):
            wy = top + (r + 0.25) * pitch * 1.3
            for c in range(cols):
                wx = x + (c + 0.22) * pitch
                window = _rect(wx, wy, wx + 0.56 * pitch, wy + 0.7 * pitch)
                details.append(("poly", np.array(window), WINDOW))
        out.append(Obj("building", _int_polygon(poly), colour, details,
                       shade=rng.uniform(-0.1, 0.2), texture=6.0))
        x += bw
    return out


def _ground(rng, scene):
    H, W, yh = scene.H, scene.W, scene.horizon
    y0 = yh - 1
    far = H + 2 + rng.integers(0, 8)  # beyond the bottom border
    sidewalk = Obj("sidewalk", _int_polygon(_rect(-2 - rng.integers(0, 6), y0, W + 1, far)),
                   _jitter(rng, COLOURS["sidewalk"], 0.5), shade=-0.1, texture=8.0)
    # The road is snapped to the bottom row H - 1; its sides run past the image.
    left = [(scene.edge(y0, 1, -1), y0), (scene.edge(H - 1, 1, -1), H - 1)]
    right = [(scene.edge(H - 1, 1, 1), H - 1), (scene.edge(y0, 1, 1), y0)]
    details = []
    # Centre dashes, 3 m long every 9 m, in perspective.
    for z in np.arange(4.0, 120.0, 9.0):  # row of ground distance z: the bottom row at 6 m
        ya, yb_ = yh + (H - yh) * 6.0 / (z + 3), yh + (H - yh) * 6.0 / z
        wa, wb = 0.07 * scene.scale(ya), 0.07 * scene.scale(yb_)
        xa, xb = scene.edge(ya, 0, 1), scene.edge(yb_, 0, 1)
        dash = [(xa - wa, ya), (xa + wa, ya), (xb + wb, yb_), (xb - wb, yb_)]
        details.append(("poly", np.array(dash), MARKING))
    for side in (-1, 1):  # edge lines
        pts = [(scene.edge(y, 0.96, side), y) for y in (y0, H + 2)]
        pts += [(scene.edge(y, 0.93, side), y) for y in (H + 2, y0)]
        details.append(("poly", np.array(pts), MARKING))
    road = Obj("road", _int_polygon(left + right), _jitter(rng, COLOURS["road"], 0.5), details,
               shade=-0.15, texture=6.0)
    out = [sidewalk, road]
    if rng.random() < 0.6:
        side = -1 if rng.random() < 0.5 else 1
        pts = [(scene.edge(y0, 1.35, side), y0), (scene.edge(H + 5, 1.35, side), H + 5),
               (scene.edge(H + 5, 1.9, side), H + 5), (scene.edge(y0, 1.9, side), y0)]
        out.append(Obj("terrain", _int_polygon(pts), _jitter(rng, COLOURS["terrain"], 0.5),
                       shade=-0.1, texture=14.0))
    return out


def _trees(rng, scene):
    out = []
    for _ in range(int(rng.integers(0, 4))):
        yb = scene.horizon + (scene.H - scene.horizon) * rng.uniform(0.03, 0.5)
        s = scene.scale(yb)
        side = -1 if rng.random() < 0.5 else 1
        cx = scene.edge(yb, rng.uniform(1.1, 1.5), side)
        h, r = rng.uniform(5.0, 9.0), rng.uniform(1.4, 2.8)
        trunk = _rect(-0.15, -0.05, 0.15, h - r)
        radii = r * rng.uniform(0.8, 1.15, 14)
        angles = np.linspace(0, 2 * np.pi, 14, endpoint=False)
        crown = list(zip(radii * np.cos(angles), h - r + radii * np.sin(angles)))
        out.append(_place(rng, "vegetation", Shape(trunk), cx, yb, s, colour=TRUNK, texture=4.0))
        out.append(_place(rng, "vegetation", Shape(crown), cx, yb, s, texture=30.0))
    return out


def _street_furniture(rng, scene):
    """Poles, with a traffic sign or light on some, as Entities."""
    out = []
    for _ in range(int(rng.integers(1, 5))):
        yb = scene.horizon + (scene.H - scene.horizon) * rng.uniform(0.05, 0.8)
        s = scene.scale(yb)
        cx = scene.edge(yb, rng.uniform(1.02, 1.2), -1 if rng.random() < 0.5 else 1)
        h = rng.uniform(4.0, 7.0)
        half = max(0.08 * s, 0.5)
        pole = Obj("pole", _int_polygon([(cx - half, yb), (cx + half, yb), (cx + half, yb - h * s),
                                         (cx - half, yb - h * s)]),
                   _jitter(rng, COLOURS["pole"], 0.5), shade=0.1, texture=2.0)
        objs = [pole]
        kind = rng.random()
        if kind < 0.55:
            colour = SIGNS[rng.integers(len(SIGNS))]
            r = rng.uniform(0.3, 0.45)
            form = rng.integers(3)
            if form == 0:
                outline = _arc(0, h - r, r, 0, 360, 13)[:-1]
            elif form == 1:
                outline = [(-r, h - 1.6 * r), (r, h - 1.6 * r), (0, h)]
            else:
                outline = _rect(-r, h - 1.4 * r, r, h)
            objs.append(_place(rng, "traffic sign", Shape(outline), cx, yb, s, colour=colour,
                               texture=0.0))
        elif kind < 0.8:
            lit = rng.integers(3)
            on = ((230, 40, 30), (240, 190, 30), (40, 210, 90))
            lamps = [("ellipse", (0, h - 0.2 - 0.3 * i, 0.11, 0.11),
                      on[i] if i == lit else (60, 60, 60)) for i in range(3)]
            objs.append(_place(rng, "traffic light", Shape(_rect(-0.18, h - 0.95, 0.18, h), lamps),
                               cx, yb, s, texture=0.0))
        out.append(Entity(yb, objs))
    return out


def _ego_vehicle(rng, scene):
    H, W = scene.H, scene.W
    hood = rng.uniform(0.05, 0.12) * H
    xs = np.linspace(-3, W + 2, 17)
    ys = H - hood * (1 - 0.5 * ((xs - W / 2) / (W / 2)) ** 2)
    pts = list(zip(xs, ys)) + [(W + 2, H + 3), (-3, H + 3)]
    glare = list(zip(xs, ys + 0.15 * hood))[::-1] + list(zip(xs, ys + 0.45 * hood))
    return Obj("ego vehicle", _int_polygon(pts), _jitter(rng, COLOURS["ego vehicle"], 0.5),
               [("poly", np.array(glare), (70, 80, 95))], shade=0.2, texture=2.0)


def _deleted(rng, scene, objs, empty):
    """An annotation the annotator deleted: a shifted copy of one object or a random quad."""
    H, W = scene.H, scene.W
    things = [o for o in objs if o.label in INSTANCE_CLASSES]
    if things and not empty and rng.random() < 0.6:
        src = things[rng.integers(len(things))]
        shift = rng.integers(-6, 7, 2)
        return Obj(src.label, src.polygon + shift, deleted=True)
    labels = ("car", "person", "pole", "vegetation", "building") if not empty else \
        ("pole", "vegetation", "building", "sidewalk")
    x, y = rng.uniform(0, W), rng.uniform(scene.horizon * 0.5, H)
    size = rng.uniform(0.02, 0.1) * H
    quad = [(x, y), (x + size, y + rng.uniform(-2, 2)), (x + size, y + size), (x, y + size)]
    return Obj(labels[rng.integers(len(labels))], _int_polygon(quad), deleted=True)


def _plan(rng, height, width, empty, featured, extra=DEFAULT_EXTRA_THINGS,
          tiny=DEFAULT_TINY_THINGS):
    """The objects of one image in JSON (= drawing) order."""
    scene = Scene(rng, height, width)
    stuff = _sky(rng, scene) + _buildings(rng, scene) + _ground(rng, scene) + _trees(rng, scene)
    entities = [] if empty else _things(rng, scene, featured, extra, tiny)
    furniture = sorted(_street_furniture(rng, scene), key=lambda e: e.yb)
    furniture = [o for e in furniture for o in e.objs]
    ego = [_ego_vehicle(rng, scene)] if rng.random() < 0.85 else []

    def layers(entities):
        return stuff + [o for e in entities for o in e.objs] + furniture + ego

    # A featured thing that nearer ones hide moves sideways (a few tries),
    # then the other things in front of it go, then it comes nearer than the
    # other featured things (a new one of its class, bigger).
    for attempt in range(7):
        seen = _visible_fraction(layers(entities), height, width)
        hidden = [e for e in entities if e.featured and _seen(e, seen) < MIN_VISIBLE]
        for e in hidden:
            if attempt < 3:
                _translate(e, rng.uniform(0.05, 0.95) * width - e.cx)
                continue
            if attempt >= 5:
                entities.remove(e)
                nearest = max(f.yb for f in entities if f.featured)
                yb = min(nearest + 0.03 * (height - scene.horizon), 1.02 * height)
                e = _thing(rng, scene, e.name, yb=yb, strip=e.strip)
                e.featured = True
                entities = sorted(entities + [e], key=lambda f: f.yb)
            entities = _clear_view(entities, e)
        if not hidden:
            break
    if entities and rng.random() < 0.25:
        _add_hidden(rng, entities, height, width)
    # Annotators outline what they see: leave out the things that later
    # polygons (nearer things, poles, the ego vehicle) hide almost entirely.
    seen = _visible_fraction(layers(entities), height, width)
    entities = [e for e in entities
                if e.hidden or _seen(e, seen) >= (1e-9 if e.featured else MIN_VISIBLE)]
    objs = layers(entities)
    for _ in range(int(rng.integers(0, 3))):
        objs.insert(int(rng.integers(0, len(objs) + 1)), _deleted(rng, scene, objs, empty))
    return objs


def _things(rng, scene, featured, extra=DEFAULT_EXTRA_THINGS, tiny=DEFAULT_TINY_THINGS):
    """The instances and crowds of a non-empty image as Entities, far to near."""
    entities = []
    # The featured things go side by side, one in each vertical strip of the image.
    for name, slot in zip(featured, rng.permutation(len(featured))):
        strip = (slot / len(featured) * scene.W, (slot + 1) / len(featured) * scene.W)
        entities.append(_thing(rng, scene, name, strip=strip))
        entities[-1].featured = True
        entities[-1].strip = strip
    names = list(_CLASS_WEIGHTS)
    p = np.array([_CLASS_WEIGHTS[n] for n in names], float)
    for _ in range(int(rng.integers(extra[0], extra[1] + 1))):
        name = names[rng.choice(len(names), p=p / p.sum())]
        if name == "train" and "train" in featured:
            name = "car"
        entities.append(_thing(rng, scene, name))
    entities += [_tiny(rng, scene) for _ in range(int(rng.integers(tiny[0], tiny[1] + 1)))]
    if rng.random() < 0.7:
        entities.append(_crowd(rng, scene))
    for e in entities:
        if not e.featured and _crosses_border(e, scene.H, scene.W) and rng.random() < 0.5:
            _clamp(e, scene.H, scene.W)
    entities.sort(key=lambda e: e.yb)
    return entities


def _seen(entity, seen):
    """How visible entity is: the largest visible fraction of its instances (a
    rider hides much of the bike), 0 when any of them is hidden entirely."""
    fractions = [seen[id(o)] for o in entity.objs if o.label != "license plate"]
    return max(fractions) if min(fractions) > 0 else 0.0


def _box(entity):
    p = np.concatenate([o.polygon for o in entity.objs])
    return p.min(axis=0), p.max(axis=0)


def _clear_view(entities, target):
    """entities without the non-featured ones after target that overlap its box."""
    (ax0, ay0), (ax1, ay1) = _box(target)
    i = entities.index(target)
    keep = entities[:i + 1]
    for e in entities[i + 1:]:
        (bx0, by0), (bx1, by1) = _box(e)
        if e.featured or bx0 > ax1 or bx1 < ax0 or by0 > ay1 or by1 < ay0:
            keep.append(e)
    return keep


def _translate(entity, dx):
    """Move an (unclamped) entity dx pixels sideways, rounded to whole pixels."""
    dx = int(round(dx))
    entity.cx += dx
    for o in entity.objs:
        o.polygon = o.polygon + [dx, 0]
        moved = []
        for d in o.details:
            geo = d[1]
            geo = geo + [dx, 0] if d[0] in ("poly", "line") else (
                geo[0] + dx, geo[1], geo[2] + dx, geo[3])
            moved.append((d[0], geo) + tuple(d[2:]))
        o.details = moved
    if entity.core is not None:
        x0, y0, x1, y1 = entity.core
        entity.core = (x0 + dx, y0, x1 + dx, y1)


def _add_hidden(rng, entities, height, width):
    """Insert an instance that a nearer vehicle hides entirely, when one is big enough."""
    candidates = [i for i, e in enumerate(entities) if e.core is not None and not e.clamped]
    for i in rng.permutation(candidates):
        hidden = _hide_behind(rng, entities[i], height, width)
        if hidden is not None:
            entities.insert(int(i), hidden)
            return


def _visible_fraction(objs, height, width):
    """id(obj) -> the fraction of its pixels in the image that no later polygon covers."""
    owner = _owner_image(objs, height, width)
    seen = np.bincount(owner.ravel(), minlength=len(objs) + 1)
    out = {}
    for k, o in enumerate(objs, start=1):
        box = _pixel_box(o.polygon, height, width)
        if box is None:
            out[id(o)] = 0.0
            continue
        x0, y0, x1, y1 = box
        alone = Image.new("L", (x1 - x0, y1 - y0), 0)
        ImageDraw.Draw(alone).polygon([tuple(p) for p in (o.polygon - [x0, y0]).tolist()], fill=1)
        out[id(o)] = seen[k] / max(1, int(np.asarray(alone).sum()))
    return out


# ----------------------------------------------------------------- painting
def _owner_image(objs, height, width):
    """[H, W] int32: 1 + the index of the last polygon drawn over each pixel, 0 where none.

    Drawn with the same ImageDraw.polygon calls as the official label images.
    """
    img = Image.new("I", (width, height), 0)
    draw = ImageDraw.Draw(img)
    for k, o in enumerate(objs, start=1):
        draw.polygon([tuple(p) for p in o.polygon.tolist()], fill=k)
    return np.asarray(img)


def _pixel_box(polygon, height, width):
    """(x0, y0, x1, y1), the polygon's bounding box clipped to the image; None if outside."""
    x0, y0 = np.maximum(polygon.min(axis=0), 0)
    x1, y1 = np.minimum(polygon.max(axis=0) + 1, [width, height])
    return None if x1 <= x0 or y1 <= y0 else (int(x0), int(y0), int(x1), int(y1))


def _texture(rng, h, w, cell, amplitude):
    gh, gw = h // cell + 2, w // cell + 2
    coarse = rng.standard_normal((gh, gw)).astype(np.float32) * amplitude
    img = Image.fromarray(coarse, mode="F").resize((gw * cell, gh * cell), Image.BILINEAR)
    return np.asarray(img)[:h, :w]


def _paint(rng, obj, x0, y0, x1, y1, cell):
    """The object's appearance over the pixel box [x0, x1) x [y0, y1), float32 RGB."""
    h, w = y1 - y0, x1 - x0
    img = Image.new("RGB", (w, h), tuple(int(c) for c in obj.colour))
    draw = ImageDraw.Draw(img)
    off = np.array([x0, y0], float)
    for d in obj.details:
        kind, geo, rgb = d[0], d[1], tuple(int(c) for c in d[2])
        if kind == "poly":
            draw.polygon([tuple(p) for p in (geo - off)], fill=rgb)
        elif kind == "line":
            draw.line([tuple(p) for p in (geo - off)], fill=rgb, width=d[3])
        else:
            box = (geo[0] - x0, geo[1] - y0, geo[2] - x0, max(geo[3], geo[1]) - y0)
            if kind == "ellipse":
                draw.ellipse(box, fill=rgb)
            else:
                draw.ellipse(box, outline=rgb, width=d[3])
    patch = np.asarray(img, dtype=np.float32)
    top, bottom = obj.polygon[:, 1].min(), obj.polygon[:, 1].max()
    rows = (np.arange(y0, y1, dtype=np.float32) - top) / max(bottom - top, 1)
    patch = patch * (1 + obj.shade * (0.5 - rows))[:, None, None]
    if obj.texture:
        patch = patch + _texture(rng, h, w, cell, obj.texture)[:, :, None]
    return patch


def render(rng, objs, height, width):
    """The RGB image [H, W, 3] uint8 of `objs` painted in order, deleted ones left out.

    Each object gets the pixels where its polygon (rasterised as the label
    images are) is the last one drawn.
    """
    shown = [o for o in objs if not o.deleted]
    owner = _owner_image(shown, height, width)
    canvas = np.zeros((height, width, 3), np.float32)
    cell = max(2, height // 48)
    for k, o in enumerate(shown, start=1):
        box = _pixel_box(o.polygon, height, width)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        mine = owner[y0:y1, x0:x1] == k
        if not mine.any():
            continue
        canvas[y0:y1, x0:x1][mine] = _paint(rng, o, x0, y0, x1, y1, cell)[mine]
    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * PIXEL_NOISE
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------- images
def _split_index(split):
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
    return SPLITS.index(split)


def image_rng(seed, split, index):
    """The generator of one image: depends on (seed, split, index) only."""
    return np.random.default_rng([int(seed), _split_index(split), int(index)])


def featured_classes(split, index, count=4):
    """The instance classes every non-empty image shows for sure, rotating
    so that a few consecutive images cover all 10."""
    start = 3 * index + 4 * _split_index(split)
    return [INSTANCE_CLASSES[(start + j) % len(INSTANCE_CLASSES)] for j in range(count)]


def is_empty(index):
    """Whether the image with this index in its split has no instances."""
    return index % EMPTY_EVERY == 1


def make_example(seed, split, index, height=DEFAULT_HEIGHT, width=DEFAULT_WIDTH,
                 extra=DEFAULT_EXTRA_THINGS, tiny=DEFAULT_TINY_THINGS):
    """(rgb [H, W, 3] uint8, annotation dict as written to the polygons JSON).

    extra: (min, max) number of random things besides the featured ones;
    tiny: (min, max) number of tiny things.
    """
    rng = image_rng(seed, split, index)
    objs = _plan(rng, height, width, is_empty(index), featured_classes(split, index), extra,
                 tiny)
    rgb = render(rng, objs, height, width)
    annotation = {"imgHeight": height, "imgWidth": width, "objects": [o.to_json() for o in objs]}
    return rgb, annotation


def city_name(n):
    """The n-th made-up city name (lowercase letters only, all distinct)."""
    heads, tails = len(_CITY_HEADS), len(_CITY_TAILS)
    name = _CITY_HEADS[n % heads] + _CITY_TAILS[(n // heads) % tails]
    rest = n // (heads * tails)
    while rest:
        rest, digit = divmod(rest - 1, 26)
        name += chr(ord("a") + digit)
    return name


def image_stem(split, index, cities=DEFAULT_CITIES):
    """(city, stem) of image `index` of `split`: images go round the cities."""
    city = city_name((index % cities) * len(SPLITS) + _split_index(split))
    return city, f"{city}_{index // cities:06d}_{FRAME:06d}"


# -------------------------------------------------------------------- files
def _write_atomic(path, write):
    """write(file) to a temporary file next to `path`, then rename it to `path`."""
    with files.atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def _save_png(path, image, compress_level=6):
    _write_atomic(path, lambda f: image.save(f, format="PNG", compress_level=compress_level))


def write_example(out_dir, split, city, stem, rgb, annotation, polygons=True):
    """Write the 4 files of one image (3 without the polygons JSON, whose
    old copy is then removed); returns the instanceIds array."""
    img_dir = os.path.join(out_dir, "leftImg8bit", split, city)
    gt_dir = os.path.join(out_dir, "gtFine", split, city)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(gt_dir, exist_ok=True)
    # zlib level 3: a noisy 1024 x 2048 image saves in 0.3 s instead of 0.9 s, 15 % larger.
    _save_png(os.path.join(img_dir, stem + IMAGE_SUFFIX), Image.fromarray(rgb), compress_level=3)
    json_path = os.path.join(gt_dir, stem + POLYGONS_SUFFIX)
    text = json.dumps(annotation, indent=4) + "\n"
    if polygons:
        _write_atomic(json_path, lambda f: f.write(text.encode("utf-8")))
    elif os.path.lexists(json_path):  # a stale JSON would be read instead of the PNG
        os.remove(json_path)
    # The label images, as the official tools make them from the JSON text
    # (fromJsonFile reads the file and calls fromJsonText).
    ann = Annotation()
    ann.fromJsonText(text)
    instance_ids = np.asarray(createInstanceImage(ann, "ids")).astype(np.uint16)
    _save_png(os.path.join(gt_dir, stem + INSTANCE_IDS_SUFFIX), Image.fromarray(instance_ids))
    _save_png(os.path.join(gt_dir, stem + LABEL_IDS_SUFFIX), createLabelImage(ann, "ids"))
    return instance_ids


def _write_one(job):
    """Make and write one example; -> the class names of its visible instances."""
    out_dir, seed, split, index, height, width, cities, extra, tiny, polygons = job
    rgb, annotation = make_example(seed, split, index, height, width, extra, tiny)
    city, stem = image_stem(split, index, cities)
    ids = write_example(out_dir, split, city, stem, rgb, annotation, polygons)
    return [INSTANCE_CLASSES[value // 1000 - 24] for value in np.unique(ids[ids >= 1000])]


def generate(out_dir, seed=0, height=DEFAULT_HEIGHT, width=DEFAULT_WIDTH, images=None,
             cities=DEFAULT_CITIES, extra=DEFAULT_EXTRA_THINGS, tiny=DEFAULT_TINY_THINGS,
             polygons=True, workers=1):
    """Write a synthetic dataset under out_dir; returns a summary dict.

    workers: processes writing examples (each example depends only on
    seed, split and index: the files are the same for any number).

    polygons: False: no *_gtFine_polygons.json (and those of the images
    written are removed), as in copies of Cityscapes that kept only the
    PNGs; the other files are the same as with True.

    extra: (min, max) random things per non-empty image besides its 4
    featured ones (more: busier scenes, e.g. for benchmarks); tiny: (min,
    max) tiny things per non-empty image (2-15 px; (0, 0) for none).

    images: split -> number of images (default DEFAULT_IMAGES); image i of a
    split is in city i % cities. Existing files of the same names are
    replaced, others are left alone. Summary: out_dir, seed, height, width,
    images (per split), instances (visible instances per class, counted in
    the instanceIds images), files (number written), seconds.
    """
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed}")
    images = dict(DEFAULT_IMAGES if images is None else images)
    for split, n in images.items():
        _split_index(split)
        if int(n) != n or n < 0:
            raise ValueError(f"number of {split} images must be an integer >= 0, got {n}")
    if min(height, width) < MIN_SIZE:
        raise ValueError(f"images must be at least {MIN_SIZE} x {MIN_SIZE}, got {height} x {width}")
    if cities < 1:
        raise ValueError(f"cities must be >= 1, got {cities}")
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    marker = os.path.join(out_dir, MARKER)
    if os.path.exists(marker):  # the folder is being changed: no longer complete
        os.remove(marker)
    start = time.perf_counter()
    instances = dict.fromkeys(INSTANCE_CLASSES, 0)
    jobs = [(out_dir, seed, split, index, height, width, cities, extra, tiny, polygons)
            for split in SPLITS for index in range(int(images.get(split, 0)))]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            found = list(pool.map(_write_one, jobs, chunksize=8))
    else:
        found = [_write_one(job) for job in jobs]
    for names in found:
        for name in names:
            instances[name] += 1
    files = len(jobs) * (4 if polygons else 3)
    return {"out_dir": out_dir, "seed": seed, "height": height, "width": width,
            "images": {split: int(images.get(split, 0)) for split in SPLITS},
            "instances": instances, "files": files,
            "seconds": round(time.perf_counter() - start, 3)}


def _demo_params():
    return {"generator_version": GENERATOR_VERSION, "seed": DEMO_SEED, "height": DEFAULT_HEIGHT,
            "width": DEFAULT_WIDTH, "images": DEMO_IMAGES, "cities": DEFAULT_CITIES}


def demo_dir():
    """$MRCNN_DEMO_DIR, or ~/.cache/mrcnn-cityscapes/demo-v4."""
    return os.environ.get(DEMO_ENV_VAR) or os.path.expanduser(DEMO_DEFAULT_DIR)


def ensure_demo(root=None):
    """The demo dataset's folder (default demo_dir()), generated unless complete.

    Complete means the marker file, written after all images, is there and
    names the current generator version and demo parameters.
    """
    root = os.fspath(root) if root is not None else demo_dir()
    marker = os.path.join(root, MARKER)
    params = _demo_params()
    try:
        with open(marker, encoding="utf-8") as f:
            if json.load(f).get("params") == params:
                return root
    except (OSError, ValueError, AttributeError):
        pass
    summary = generate(root, seed=DEMO_SEED, height=params["height"], width=params["width"],
                       images=params["images"], cities=params["cities"],
                       workers=os.cpu_count() or 1)
    text = json.dumps({"params": params, "summary": summary}, indent=2) + "\n"
    _write_atomic(marker, lambda f: f.write(text.encode("utf-8")))
    return root


# ---------------------------------------------------------------------- CLI
def format_summary(summary):
    lines = [f"wrote {summary['files']} files to {summary['out_dir']} "
             f"(seed {summary['seed']}, {summary['height']}x{summary['width']}, "
             f"{summary['seconds']:.1f} s)"]
    lines.append("images: " + ", ".join(f"{s} {n}" for s, n in summary["images"].items()))
    lines.append("instances: " + ", ".join(f"{c} {n}" for c, n in summary["instances"].items()))
    return "\n".join(lines)


def build_parser():
    p = cli.Parser("python -m cityscapes.synthetic",
                   "Write a small synthetic dataset in the Cityscapes layout (leftImg8bit/ and "
                   "gtFine/ with polygons, instanceIds and labelIds).")
    p.add_argument("--out", required=True, help="output folder (the dataset root)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same files (default 0)")
    p.add_argument("--height", type=int, default=DEFAULT_HEIGHT,
                   help=f"image height (default {DEFAULT_HEIGHT})")
    p.add_argument("--width", type=int, default=DEFAULT_WIDTH,
                   help=f"image width (default {DEFAULT_WIDTH})")
    for split in SPLITS:
        p.add_argument(f"--{split}", type=int, default=DEFAULT_IMAGES[split],
                       help=f"number of {split} images (default {DEFAULT_IMAGES[split]})")
    p.add_argument("--cities", type=int, default=DEFAULT_CITIES,
                   help=f"cities per split (default {DEFAULT_CITIES})")
    p.add_argument("--no-polygons", dest="polygons", action="store_false",
                   help="write no polygons JSON (an instanceIds-only dataset)")
    return p


def work(args):
    try:
        summary = generate(args.out, seed=args.seed, height=args.height, width=args.width,
                           images={s: getattr(args, s) for s in SPLITS}, cities=args.cities,
                           polygons=args.polygons)
    except ValueError as e:
        raise cli.UsageError(str(e))
    print(format_summary(summary))


def main(argv=None):
    parser = build_parser()
    return cli.run(parser, work, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
