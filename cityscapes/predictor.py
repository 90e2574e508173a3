"""What `python predict.py` does, as functions: pictures, folders and videos
in; the pictures and videos with their detections drawn, and predictions
files, out.

    plan = prepare(options)   # every check (weights, classes, inputs, names); no model yet
    summary = run(plan)       # detect, write, summarise -> summary.json's content

In the --output folder:

    <picture's file name>   the picture with its detections drawn (masks, boxes,
                            class names and scores), in the picture's format
    <video's stem>.mp4      the video, drawn frame by frame (H.264)
    predictions.json        COCO-results JSON of every picture and video frame
                            (cityscapes/predictions.py): image_id = the file's stem
                            with Cityscapes' "_leftImg8bit" suffix dropped (what
                            `evaluate.py --predictions` matches to the ground
                            truth), "<stem>_<frame:06d>" for a video's frame;
                            category_id = the model's class id; RLE masks at the
                            original resolution; bbox [x, y, w, h]
    summary.json            the run: weights, classes by id, counts, files skipped
                            and ignored, seconds, images/s (also after the first
                            batch, whose time includes tracing the model)
    cityscapes_results/     with --format cityscapes: the official results layout
                            (cityscapes/export.py) of the classes Cityscapes has

The class names come from the checkpoint's run record (train_args.json),
else the 10 Cityscapes classes for an 11-class model; `--weights coco`
has COCO's 80 (mrcnn.checkpoint.pretrained.COCO_CLASS_NAMES). A file that
cannot be decoded stops the run with `cli.UsageError` (exit 2) naming it,
after writing what was done before it, or, with --skip_bad, is skipped,
counted and named. The work: mrcnn/media.py (inputs, pictures, videos),
mrcnn/stream.py (decoding ahead, batches), mrcnn/visualize.py (drawing).
"""

import collections
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import cli
from cityscapes import export, options, predictions
from cityscapes.dataset import IMAGE_SUFFIX
from cityscapes.labels import INSTANCE_CLASSES, label_by_name
from mrcnn import command, files, media

FORMATS = ("coco", "cityscapes")
PREDICTIONS, SUMMARY, OFFICIAL = "predictions.json", "summary.json", "cityscapes_results"
CITYSCAPES_SUFFIX = os.path.splitext(IMAGE_SUFFIX)[0]  # "_leftImg8bit"
PENDING = 4  # pictures drawn and written behind the detection, at most


@dataclasses.dataclass
class PredictOptions:
    """predict.py's options (its flags), with their defaults."""

    weights: str = None
    input: list = dataclasses.field(default_factory=list)
    output: str = None
    logs: str = "logs"
    min_confidence: float = None
    image_min_dim: int = None
    image_max_dim: int = None
    classes: str = None
    batch: int = 1
    format: str = "coco"
    skip_bad: bool = False
    read_ahead: int = 4
    allow_partial: bool = False
    jit_compile: str = "auto"  # on | off | auto (the model's Config.JIT_COMPILE)


@dataclasses.dataclass(frozen=True)
class Plan:
    """A checked prediction run: the weights file and Config, the class
    names by id (index 0 the background), the inputs, each input's output
    file and image id, the class ids kept (None: all) and the official
    label id of each class id (None: not written in that format)."""

    options: PredictOptions
    weights: str
    config: object
    class_names: list
    inputs: media.Inputs
    outputs: dict
    image_ids: dict
    keep: tuple = None
    label_ids: list = None


# ------------------------------------------------------------------ planning
def prepare(o):
    """Check everything -> Plan (no model yet). o: PredictOptions, or a dict
    of some of its fields."""
    if isinstance(o, dict):
        o = PredictOptions(**{k: v for k, v in o.items() if v is not None})
    if not isinstance(o.batch, int) or o.batch < 1:
        raise cli.UsageError(f"--batch {o.batch}: must be a positive integer")
    if o.read_ahead < 0:
        raise cli.UsageError(f"--read_ahead {o.read_ahead}: must be 0 (off) or more")
    if o.format not in FORMATS:
        raise cli.UsageError(f"--format {o.format}: choose from {', '.join(FORMATS)}")
    if os.path.isfile(o.output):
        raise cli.UsageError(f"--output {o.output}: a file, not a folder")
    command.jit_value(o.jit_compile)  # UsageError for a bad value
    try:
        inputs = media.collect(o.input)
    except ValueError as e:
        raise cli.UsageError(f"--input {e}")
    if not inputs.images and not inputs.videos:
        ignored = (f" ({_count(len(inputs.ignored), 'file')} without a picture or video "
                   "extension)" if inputs.ignored else "")
        raise cli.UsageError(f"--input {' '.join(o.input)}: no pictures or videos{ignored}")
    path, config = command.model_source(o)
    names = ["BG"] + class_names(o.weights, path, config.NUM_CLASSES)
    keep = _kept_classes(o.classes, names)
    label_ids = _label_ids(names, keep) if o.format == "cityscapes" else None
    outputs, image_ids = _names(inputs, o.output, o.format == "cityscapes")
    return Plan(o, path, config, names, inputs, outputs, image_ids, keep, label_ids)


def class_names(weights, path, num_classes):
    """The names of class ids 1..K of a model: COCO's for --weights coco,
    the run record's, the 10 Cityscapes classes for an 11-class model, else
    "class 1" .. "class K"."""
    from mrcnn.checkpoint.pretrained import COCO_CLASS_NAMES

    if weights == "coco":
        names = list(COCO_CLASS_NAMES[1:])
    else:
        names = options.run_record_classes(path)
    if names is None:
        names = (list(INSTANCE_CLASSES) if num_classes == 1 + len(INSTANCE_CLASSES)
                 else [f"class {i}" for i in range(1, num_classes)])
    if len(names) != num_classes - 1:
        raise cli.UsageError(f"--weights {weights}: its run record names {len(names)} classes "
                             f"but the model has {num_classes - 1}")
    return names


def _kept_classes(given, names):
    """The class ids --classes keeps (None: all)."""
    if not given:
        return None
    wanted = cli.csv(given)
    unknown = [c for c in wanted if c not in names[1:]]
    if unknown:
        raise cli.UsageError(f"--classes {given}: the model has no class {unknown}; its "
                             f"classes: {', '.join(names[1:])}")
    return tuple(i for i, n in enumerate(names) if n in wanted)


def _label_ids(names, keep):
    """The official label id of each class id, None for a class Cityscapes
    has no instances of (--format cityscapes)."""
    ids = [label_by_name(n).id if i and n in INSTANCE_CLASSES else None
           for i, n in enumerate(names)]
    if not any(ids[i] is not None for i in (keep or range(1, len(names)))):
        raise cli.UsageError(f"--format cityscapes: none of the classes "
                             f"({', '.join(names[1:])}) is a Cityscapes instance class")
    return ids


def image_id(path):
    """A picture's image id: its file stem, without Cityscapes' "_leftImg8bit"."""
    stem = os.path.splitext(os.path.basename(path))[0]
    return stem.removesuffix(CITYSCAPES_SUFFIX) or stem


def _names(inputs, output, official):
    """{input: output file} and {input: image id (a video's: the stem its
    frames' ids start with)}; UsageError when two inputs would share one,
    or an output would overwrite an input."""
    outputs, ids, videos = {}, {}, set(inputs.videos)
    for path in inputs.images + inputs.videos:
        stem = os.path.splitext(os.path.basename(path))[0]
        outputs[path] = os.path.join(output, stem + ".mp4" if path in videos
                                     else os.path.basename(path))
        ids[path] = stem if path in videos else image_id(path)
        if official:
            try:
                export.check_stem(ids[path])
            except ValueError:
                raise cli.UsageError(f"--format cityscapes: {path}: its name cannot name an "
                                     "official results file (spaces?)") from None
    for what, mapping in (("output file", outputs), ("image id", ids)):
        seen = {}
        for path, value in mapping.items():
            if value in seen:
                raise cli.UsageError(f"--input: {seen[value]} and {path} would share the "
                                     f"{what} {value}; rename one, or run them apart")
            seen[value] = path
    given = {os.path.abspath(p) for p in inputs.images + inputs.videos}
    for path, out in outputs.items():
        if os.path.abspath(out) in given:
            raise cli.UsageError(f"--output {output}: writing {out} would overwrite an input")
    return outputs, ids


# ----------------------------------------------------------------------- run
def run(plan, log=print):
    """Detect and write everything; summarise. -> summary.json's content.
    UsageError (after writing what was done) when a file cannot be decoded
    and --skip_bad is not set."""
    from tqdm import tqdm

    from mrcnn.stream import detect_stream, frames, read_ahead

    o = plan.options
    overrides = {"IMAGES_PER_GPU": o.batch, "JIT_COMPILE": command.jit_value(o.jit_compile)}
    model = command.detection_model(plan.weights, plan.config, overrides,
                                    allow_partial=o.allow_partial)
    writer = Outputs(plan)
    total = None if plan.inputs.videos else len(plan.inputs.images)
    source = read_ahead(frames(plan.inputs), o.read_ahead)
    stream = detect_stream(model, source)
    started, first, stopped = time.time(), None, None
    try:
        with tqdm(total=total, unit="img", disable=None, file=sys.stderr) as bar:
            for frame, result in stream:
                if result is None:
                    writer.failed(frame)
                    if not o.skip_bad:
                        stopped = frame
                        break
                    continue
                first = first or time.time()
                writer.add(frame, result)
                bar.set_postfix_str(f"{(bar.n + 1) / (time.time() - started):.2f} images/s",
                                    refresh=False)
                bar.update()
    finally:
        stream.close()
        source.close()
        summary = writer.finish(started, first, stopped)
    log(summary_line(summary, o.output))
    if stopped is not None:
        raise cli.UsageError(f"{stopped.error} (stopped; what was done before it is in "
                             f"{o.output}; --skip_bad skips such files)")
    return summary


def summary_line(s, output):
    """One line of a run's summary."""
    videos = (f", {s['video_frames']} frames of {_count(s['videos'], 'video')}"
              if s["videos"] else "")
    line = (f"{_count(s['images'], 'image')} ({_count(s['pictures'], 'picture')}{videos}) in "
            f"{s['seconds']:.1f} s, {s['images_per_s']:.2f} images/s, "
            f"{_count(s['detections'], 'detection')} -> {output}")
    if s["skipped"]:
        line += (f"; skipped {_count(len(s['skipped']), 'bad file')}: "
                 + ", ".join(k["file"] for k in s["skipped"][:5])
                 + (" ..." if len(s["skipped"]) > 5 else ""))
    if s["ignored"]:
        line += (f"; ignored {_count(s['ignored'], 'file')} without a picture or video "
                 "extension")
    return line


def _count(n, noun):
    return f"{n} {noun}" + ("" if n == 1 else "s")


class Outputs:
    """Everything a run writes. Drawing and writing happen in one worker
    thread, in order, at most PENDING results behind the detection."""

    def __init__(self, plan):
        self.plan = plan
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outputs")
        self.pending = collections.deque()
        self.entries = []
        self.video = None  # (source, VideoWriter) being written
        self.counts = collections.Counter()
        self.skipped = []

    # called by the run, in its thread
    def add(self, frame, result):
        self.pending.append(self.pool.submit(self._write, frame, result))
        while len(self.pending) > PENDING:
            self.pending.popleft().result()

    def failed(self, frame):
        self.skipped.append({"file": frame.source, "reason": frame.error.reason})

    def finish(self, started, first=None, stopped=None):
        """Wait for the writes, close the video, write predictions.json and
        summary.json. started: when detection started; first: when the
        first batch was detected (None: never). -> the summary"""
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self._close_video()
        p, o = self.plan, self.plan.options
        predictions.write_coco_results(os.path.join(o.output, PREDICTIONS), self.entries)
        images = self.counts["pictures"] + self.counts["frames"]
        ended = time.time()
        seconds = ended - started
        # After the first batch (whose time includes tracing the model).
        later = images - min(o.batch, images)
        warm = later / (ended - first) if first and later and ended > first else None
        summary = {
            "weights": p.weights, "classes": {str(i): n for i, n in enumerate(p.class_names) if i},
            "classes_kept": None if p.keep is None else [p.class_names[i] for i in p.keep],
            "batch": o.batch, "images": images, "pictures": self.counts["pictures"],
            "videos": self.counts["videos"], "video_frames": self.counts["frames"],
            "detections": self.counts["detections"], "seconds": round(seconds, 2),
            "images_per_s": images / seconds if seconds > 0 else 0.0,
            "images_per_s_after_first_batch": warm,
            "skipped": self.skipped, "ignored": len(p.inputs.ignored),
            "ignored_files": p.inputs.ignored,
            "stopped_at": None if stopped is None else stopped.source,
            "format": o.format,
        }
        files.write_text(os.path.join(o.output, SUMMARY), json.dumps(summary, indent=2) + "\n")
        return summary

    # in the worker thread
    def _write(self, frame, result):
        from mrcnn import visualize

        p = self.plan
        result = _kept(result, p.keep)
        video = frame.index is not None
        key = f"{p.image_ids[frame.source]}_{frame.index:06d}" if video else p.image_ids[
            frame.source]
        preds = predictions.from_detections(result)
        self.entries += predictions.coco_results(key, preds)
        if p.label_ids is not None:
            written = [i for i, c in enumerate(preds["class_ids"]) if p.label_ids[c] is not None]
            export.write_cityscapes_results(
                os.path.join(p.options.output, OFFICIAL), key,
                [p.label_ids[preds["class_ids"][i]] for i in written],
                preds["scores"][written], [preds["rles"][i] for i in written])
        picture = visualize.draw_instances(frame.image, result["rois"], result["masks"],
                                           result["class_ids"], p.class_names, result["scores"])
        if video:
            self._video_of(frame).write(picture)
            self.counts["frames"] += 1
        else:
            media.save_image(p.outputs[frame.source], picture)
            self.counts["pictures"] += 1
        self.counts["detections"] += len(result["class_ids"])

    def _video_of(self, frame):
        if self.video is None or self.video[0] != frame.source:
            self._close_video()
            writer = media.VideoWriter(self.plan.outputs[frame.source], frame.video.fps)
            self.video = (frame.source, writer.__enter__())
            self.counts["videos"] += 1
        return self.video[1]

    def _close_video(self):
        if self.video is not None:
            self.video[1].__exit__(None, None, None)
            self.video = None


def _kept(result, keep):
    """detect()'s dict with only the detections of the classes kept."""
    if keep is None:
        return result
    mask = np.isin(result["class_ids"], keep)
    return {**{k: result[k][mask] for k in ("rois", "class_ids", "scores")},
            "masks": result["masks"][..., mask]}
