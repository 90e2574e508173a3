"""Detection over a stream of pictures and video frames: the next ones
decoded while the model works, BATCH_SIZE at a time, results in order.

    model = inference_model(checkpoint, overrides={"IMAGES_PER_GPU": 4})
    for frame, result in detect_stream(model, read_ahead(frames(inputs), ahead=8)):
        ...   # result: detect()'s dict for frame.image; None for a failed frame

Shape shorthand: H, W a frame's size (frames of one batch may differ:
`MaskRCNN.detect` pads them to a common size).

A `Frame` is a picture (index None) or a video's frame (index 0, 1, ...),
or a failure (image None, error a `media.BadFileError`), passed through in
its place so that the caller can stop or skip. `read_ahead` runs an
iterator in a background thread, up to `ahead` items in advance: Pillow's
and ffmpeg's decoding release the GIL, as does TensorFlow, so decoding the
next pictures overlaps with detecting these.
"""

import dataclasses
import queue
import threading

from mrcnn import media


@dataclasses.dataclass
class Frame:
    """A picture, a video's frame number `index`, or a failure to read one."""

    source: str
    index: int = None
    image: object = None
    error: Exception = None
    video: object = None  # the media.Video a frame comes from


def frames(inputs):
    """The Frames of media.Inputs: the pictures, then each video's frames.
    A file that cannot be decoded gives a failed Frame (and a video stops
    there)."""
    for path in inputs.images:
        try:
            yield Frame(path, image=media.read_image(path))
        except media.BadFileError as e:
            yield Frame(path, error=e)
    for path in inputs.videos:
        try:
            video = media.open_video(path)
        except media.BadFileError as e:
            yield Frame(path, error=e)
            continue
        index = -1
        try:
            for index, image in enumerate(video.frames()):
                yield Frame(path, index, image, video=video)
        except media.BadFileError as e:
            yield Frame(path, index + 1, error=e, video=video)


_END = object()


def read_ahead(items, ahead):
    """The items of an iterable, made by a background thread up to `ahead`
    items in advance (ahead < 1: made here, when asked for). An exception
    of the iterable is raised here, in its place."""
    if ahead < 1:
        yield from items
        return
    slots, stop = queue.Queue(maxsize=ahead), threading.Event()

    def put(entry):
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except Exception as e:  # noqa: BLE001  handed to the consumer, raised there
            put((_END, e))
        finally:  # a generator stopped early closes its files (a video's reader)
            getattr(items, "close", lambda: None)()

    worker = threading.Thread(target=produce, name="read_ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, error = slots.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        worker.join()


def detect_stream(model, stream):
    """(Frame, result) for each Frame of `stream`, in order: result is
    `model.detect`'s dict for the frame's image, or None for a failed
    Frame. model: an inference MaskRCNN; its BATCH_SIZE images go into
    each call (the last call is filled up with copies whose results are
    dropped; a failed Frame ends the batch before it)."""
    size = model.config.BATCH_SIZE
    batch = []
    for frame in stream:
        if frame.image is None:
            yield from _detect(model, batch, size)
            batch = []
            yield frame, None
            continue
        batch.append(frame)
        if len(batch) == size:
            yield from _detect(model, batch, size)
            batch = []
    yield from _detect(model, batch, size)


def _detect(model, batch, size):
    if not batch:
        return
    images = [f.image for f in batch]
    images += images[-1:] * (size - len(images))
    yield from zip(batch, model.detect(images))
