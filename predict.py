"""Run a trained model on pictures, folders and videos: pictures and videos
with the detections drawn, and a predictions file.

    python predict.py --weights last --input photos/ --output predictions/
    python predict.py --weights coco --input street.mp4 --output out/
    python predict.py --weights last --input "leftImg8bit/val/*/*.png" --output val/ \\
        --batch 4 --format cityscapes

Writes into --output: each picture (same file name) and video (.mp4) with
its detections drawn, predictions.json (COCO results with RLE masks, as
`evaluate.py --predictions` reads), summary.json, and with --format
cityscapes the official results layout. Exit codes: 0 done; 2 bad input
(an undecodable file stops the run, naming it, unless --skip_bad). The
work is in cityscapes/predictor.py; the SavedModel export for serving:
python -m mrcnn.export.
"""

import dataclasses
import sys

import cli
from cityscapes.predictor import FORMATS
from mrcnn import command


def build_parser():
    p = cli.Parser("predict.py", __doc__)
    a = p.add_argument
    command.add_model_flags(p)
    a("--input", nargs="+", required=True, metavar="FILE|DIR|GLOB|VIDEO",
      help="pictures, folders (searched recursively), glob patterns (quoted) and videos")
    a("--output", required=True, metavar="DIR", help="the folder the results go to")
    a("--format", choices=FORMATS,
      help="coco: predictions.json only; cityscapes: also the official results layout "
           "(cityscapes_results/) [coco]")
    a("--classes", help="keep only detections of these classes (comma-separated names) [all]")
    a("--batch", type=int, help="pictures per detect() call; their sizes may differ [1]")
    a("--skip_bad", action="store_true", default=None,
      help="skip pictures and videos that cannot be decoded (counted and named in the "
           "summary) instead of stopping")
    a("--read_ahead", type=int,
      help="pictures decoded ahead of the detection in a background thread; 0 decodes "
           "them in turn [4]")
    command.add_jit_flag(p)
    return p


def work(args):
    from cityscapes import predictor

    print(command.startup_line(args.jit_compile), flush=True)
    fields = {f.name for f in dataclasses.fields(predictor.PredictOptions)}
    options = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    predictor.run(predictor.prepare(options))


def main(argv=None):
    return cli.main(build_parser(), work, argv)


if __name__ == "__main__":
    sys.exit(main())
