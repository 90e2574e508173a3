"""Evaluate Mask R-CNN checkpoints (or a predictions file) on Cityscapes.

    python evaluate.py --dataset demo --weights last --report reports/demo
    python evaluate.py --weights logs/a/mask_rcnn_cityscapes_0008.h5 \\
        --weights logs/b/mask_rcnn_cityscapes_0020.h5 --names best,flip --report reports/ab
    python evaluate.py --predictions results.json --report reports/file
    python evaluate.py --weights coco --zero-shot --report reports/zero_shot

Scores three protocols at once: Matterport's per-image AP@0.5, AP at IoU
0.5:0.05:0.95, rAP and cAP; COCO AP (pycocotools, segm and bbox); the
official Cityscapes instance AP / AP50. Exit codes: 0 done; 2 bad input,
found before any model runs. The work is in cityscapes/evaluator.py.
"""

import dataclasses
import sys

import cli
from cityscapes import options
from cityscapes.export import FORMATS
from mrcnn.config import BACKBONES


def build_parser():
    p = cli.Parser("evaluate.py", __doc__)
    a = p.add_argument
    cli.add_dataset_flags(p)
    a("--split", help="split to score [val]")
    a("--weights", action="append", default=[],
      help="checkpoint PATH (its run folder's config.json is used), 'last' (latest run), or "
           "'coco' with --zero-shot; repeat for several models")
    a("--names", help="comma-separated column names of the models [file names]")
    a("--predictions", metavar="FILE",
      help="COCO-results JSON to score instead of running a model (image_id = file stem, "
           "category_id = class id 1..K, segmentation = RLE at original size, score)")
    a("--classes", help="classes of the predictions / checkpoint when not recorded [all 10]")
    a("--report", metavar="DIR", help="write report.json, report.md, CSV tables and pictures")
    a("--export", choices=FORMATS,
      help="also write the predictions: official Cityscapes results (txt + PNG masks) or "
           "COCO-results JSON, into the --report DIR")
    a("--zero-shot", dest="zero_shot", action="store_true", default=None,
      help="run the 81-class COCO model; its person, bicycle, car, motorcycle, bus, train and "
           "truck detections become the Cityscapes classes")
    a("--images", type=int, help="score the first N images of the split [all]")
    a("--samples", type=int, help="sample images drawn in the report [3]")
    a("--logs", help="folder of the run folders, for --weights last [logs]")
    a("--backbone", choices=BACKBONES, help="override the model's backbone")
    a("--image_min_dim", type=int, help="override the model's IMAGE_MIN_DIM")
    a("--image_max_dim", type=int, help="override the model's IMAGE_MAX_DIM")
    a("--legacy_matterport", action="store_true", default=None,
      help="match as Matterport's compute_matches does (a ground truth taken by the "
           "top-scoring detection can be matched again); for comparison only")
    options.add_flags(p, ("skip_bad", "decode_cache", "allow_partial", "jit_compile"))  # as train.py's
    return p


def work(args):
    from cityscapes import evaluator

    if not args.predictions:  # scoring a predictions file runs no model
        print(cli.startup_line(args.jit_compile), flush=True)
    fields = {f.name for f in dataclasses.fields(evaluator.EvalOptions)}
    options = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    evaluator.run(evaluator.prepare(evaluator.EvalOptions(**options)))


def main(argv=None):
    return cli.main(build_parser(), work, argv)


if __name__ == "__main__":
    sys.exit(main())
