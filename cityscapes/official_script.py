"""Run cityscapesscripts' own instance-level evaluation on a results folder.

The reference that `cityscapes.official_ap` is tested and timed against:
`evalInstanceLevelSemanticLabeling.evaluateImgLists`, unchanged, with the
few shims it needs to run here and to leave nothing behind:

* NumPy 2.4 has no `np.in1d` (the script's void mask uses it): while the
  script runs, `numpy.in1d` is an `np.isin` equivalent, then removed again
  (or the original put back where a NumPy still has one);
* the script writes `matches.json` into the current working directory: it
  runs inside a temporary directory, and the working directory is restored;
* it caches the ground truth in `gtInstances.json` beside its own package
  file, and reuses that cache when present (even for other images): here
  the cache is a fresh file in the temporary directory;
* under NumPy 2 `np.count_nonzero` returns NumPy integers, which the
  script's `writeDict2JSON` (json.dumps with `default=o.__dict__`) cannot
  write into matches.json: while it runs, the module's `writeDict2JSON`
  also turns NumPy scalars into Python numbers;
* its errors print a message and call `sys.exit`: that SystemExit becomes
  a RuntimeError carrying the message.

The results folder holds what `cityscapes.export.write_cityscapes_results`
writes: per image a `*.txt` of `relative/mask.png labelId confidence` lines
and the mask PNGs. The txt of a ground-truth file is found as the script's
`getPrediction` finds it: the one file named `{city}_{seq}_{frame}*.txt`
anywhere under the folder.

    result = evaluate(results_dir, gt_paths)
    result["averages"]["allAp"], result["resultApMatrix"]  # the script's: [1][8][10]
    result["AP"], result["ap_matrix"]                      # the same, as official_ap has them
"""

import contextlib
import fnmatch
import io
import json
import os
import tempfile

import numpy as np
from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as official
from cityscapesscripts.helpers.csHelpers import getCsFileInfo
from PIL import Image

from cityscapes.rasterize import read_id_image

_MISSING = object()


def _in1d(ar1, ar2, assume_unique=False, invert=False):
    """NumPy's removed `in1d`: `isin` on the flattened first argument."""
    return np.isin(np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)


def _json_default(o):
    return o.item() if isinstance(o, np.generic) else o.__dict__


def _write_dict_to_json(dict_name, file_name):
    """csHelpers.writeDict2JSON, also for NumPy scalars."""
    with open(file_name, "w") as f:
        f.write(json.dumps(dict_name, default=_json_default, sort_keys=True, indent=4))


@contextlib.contextmanager
def _patched(module, name, value):
    """module.name = value for the duration of the block, then as it was."""
    before = module.__dict__.get(name, _MISSING)
    setattr(module, name, value)
    try:
        yield
    finally:
        if before is _MISSING:
            delattr(module, name)
        else:
            setattr(module, name, before)


@contextlib.contextmanager
def _working_directory(path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _stem_pattern(gt_path):
    """getPrediction's file pattern for a ground-truth file: {city}_{seq}_{frame}*.txt."""
    name = os.path.basename(gt_path)
    parts = name.split("_")
    if len(parts[:-1] + parts[-1].split(".")) not in (5, 6):
        raise ValueError(f"{gt_path}: not a Cityscapes file name "
                         "({city}_{seq}_{frame}_{type}[_{type2}].{ext})")
    info = getCsFileInfo(name)
    return f"{info.city}_{info.sequenceNb}_{info.frameNb}*.txt"


def find_predictions(gt_paths, results_dir):
    """The prediction txt of each ground-truth file, as getPrediction finds it.

    gt_paths: [F] paths of `*_gtFine_instanceIds.png`. Returns [F] absolute
    paths. Raises FileNotFoundError when an image has no txt under
    results_dir and ValueError when it has several.
    """
    walk = [(root, names) for root, _, names in os.walk(os.path.abspath(results_dir))]
    found = []
    for gt in gt_paths:
        pattern = _stem_pattern(gt)
        hits = [os.path.join(root, n) for root, names in walk
                for n in fnmatch.filter(names, pattern)]
        if not hits:
            raise FileNotFoundError(f"no prediction {pattern} under {results_dir} for {gt}")
        if len(hits) > 1:
            raise ValueError(f"several predictions for {gt}: {sorted(hits)}")
        found.append(hits[0])
    return found


def _args(results_dir, gt_cache):
    """A fresh copy of the script's argument object, set for a quiet run."""
    args = official.CArgs()
    args.__dict__.update(vars(official.args))
    args.overlaps = np.arange(0.5, 1., 0.05)
    args.minRegionSizes = np.array([100, 1000, 1000])
    args.distanceThs = np.array([float("inf"), 100, 50])
    args.distanceConfs = np.array([-float("inf"), 0.5, 0.5])
    args.distanceAvailable = False
    args.gtInstancesFile = gt_cache
    args.JSONOutput = False
    args.quiet = True
    args.csv = False
    args.colorized = False
    args.instLabels = []
    args.predictionPath = os.path.abspath(results_dir)
    args.predictionWalk = None
    args.exportFile = os.path.join(os.path.dirname(gt_cache), "result.json")
    return args


def _as_png(gt_path, folder):
    """gt_path itself for an instanceIds PNG; a polygons JSON is rasterised
    (cityscapes.rasterize, the official json2instanceImg) to a uint16 PNG of
    the same stem in folder, since the script reads only PNGs."""
    if not gt_path.endswith(".json"):
        return gt_path
    with open(gt_path, encoding="utf-8") as f:
        size = json.load(f)
    ids = read_id_image(gt_path, size["imgHeight"], size["imgWidth"])
    name = os.path.basename(gt_path)[: -len("_polygons.json")] + "_instanceIds.png"
    png = os.path.join(folder, name)
    Image.fromarray(ids.astype(np.uint16)).save(png)
    return png


def _our_layout(result):
    """The script's numbers also under official_ap's keys: "AP", "AP50",
    "classes" {name: {"AP", "AP50"}}, "ap_matrix" [8, 10] float64."""
    averages = result["averages"]
    classes = {name: {"AP": float(np.ravel(c["ap"])[0]), "AP50": float(np.ravel(c["ap50%"])[0])}
               for name, c in averages["classes"].items()}
    return {**result, "AP": float(averages["allAp"]), "AP50": float(averages["allAp50%"]),
            "classes": classes,
            "ap_matrix": np.asarray(result["resultApMatrix"], np.float64)[0]}


def evaluate(results_dir, gt_paths, prediction_paths=None):
    """The official script's result for the predictions under results_dir.

    results_dir: the folder of the prediction txt files and masks (every
    mask must lie under it); gt_paths: [F] `*_gtFine_instanceIds.png` (or
    `*_gtFine_polygons.json`, rasterised first); prediction_paths: [F] txt
    paths, default `find_predictions`.
    Returns the script's dict: "averages" ({"allAp", "allAp50%", "classes":
    {name: {"ap", "ap50%"}}}), "resultApMatrix" ([1][8][10] nested lists:
    distance setting, class, overlap), "overlaps", "instLabels", ...; and
    the same numbers as official_ap.CityscapesInstanceEval.result() lays
    them out: "AP", "AP50", "classes" {name: {"AP", "AP50"}}, "ap_matrix"
    [8, 10]. Raises RuntimeError with the script's message where it gives up.
    """
    if not os.path.isdir(results_dir):
        raise FileNotFoundError(f"results folder {results_dir} not found")
    gt_paths = [os.path.abspath(p) for p in gt_paths]
    if prediction_paths is None:
        prediction_paths = find_predictions(gt_paths, results_dir)
    prediction_paths = [os.path.abspath(p) for p in prediction_paths]
    if len(prediction_paths) != len(gt_paths):
        raise ValueError(f"{len(prediction_paths)} prediction files for {len(gt_paths)} images")
    with tempfile.TemporaryDirectory(prefix="cs_official_eval_") as tmp:
        gt_pngs = [_as_png(p, tmp) for p in gt_paths]
        args = _args(results_dir, os.path.join(tmp, "gtInstances.json"))
        printed = io.StringIO()
        try:
            with (_patched(np, "in1d", _in1d),
                  _patched(official, "writeDict2JSON", _write_dict_to_json),
                  _working_directory(tmp), contextlib.redirect_stdout(printed)):
                result = official.evaluateImgLists(prediction_paths, gt_pngs, args)
        except SystemExit:
            raise RuntimeError("the official evaluation gave up: "
                               + printed.getvalue().strip()) from None
    return _our_layout(result)
