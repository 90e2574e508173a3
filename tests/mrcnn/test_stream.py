"""mrcnn/stream.py: frames of pictures and videos, decoded ahead in a thread,
detected BATCH_SIZE at a time, in order."""

import threading
import time
import types

import numpy as np
import pytest
from PIL import Image

from mrcnn import media
from mrcnn.stream import Frame, detect_stream, frames, read_ahead


def test_read_ahead_makes_items_in_a_thread_ahead_of_the_consumer():
    made = []

    def items():
        for i in range(10):
            made.append((i, threading.current_thread().name))
            yield i

    stream = read_ahead(items(), ahead=3)
    assert next(stream) == 0
    deadline = time.time() + 10
    while len(made) < 4 and time.time() < deadline:  # 1 taken, 3 waiting
        time.sleep(0.01)
    assert len(made) >= 4 and len(made) <= 5  # never more than `ahead` (+1 being put)
    assert all(name == "read_ahead" for _, name in made)
    assert list(stream) == list(range(1, 10))


def test_read_ahead_raises_the_iterables_error_in_its_place_and_stops_when_closed():
    def items():
        yield 1
        yield 2
        raise OSError("disk gone")

    stream = read_ahead(items(), ahead=2)
    assert next(stream) == 1 and next(stream) == 2
    with pytest.raises(OSError, match="disk gone"):
        next(stream)
    endless = read_ahead(iter(int, 1), ahead=2)  # 0, 0, 0, ... forever
    next(endless)
    endless.close()  # joins the thread: it stops instead of filling the queue forever
    assert not any(t.name == "read_ahead" for t in threading.enumerate())


def test_read_ahead_zero_makes_items_when_asked():
    made = []

    def items():
        for i in range(3):
            made.append(threading.current_thread().name)
            yield i

    assert list(read_ahead(items(), ahead=0)) == [0, 1, 2]
    assert made == [threading.current_thread().name] * 3


class CountingModel:
    """A stand-in for an inference MaskRCNN: detect() checks it gets
    BATCH_SIZE images and answers each with its first pixel."""

    def __init__(self, batch_size):
        self.config = types.SimpleNamespace(BATCH_SIZE=batch_size)
        self.calls = []

    def detect(self, images):
        assert len(images) == self.config.BATCH_SIZE
        self.calls.append([int(i[0, 0, 0]) for i in images])
        return [{"value": int(i[0, 0, 0])} for i in images]


def _frame(value, shape=(4, 6)):
    return Frame(f"{value}.png", image=np.full((*shape, 3), value, np.uint8))


def test_detect_stream_batches_in_order_and_passes_failures_through():
    failure = Frame("bad.png", error=media.BadFileError("bad.png", "cannot decode it"))
    stream = [_frame(1), _frame(2, (8, 3)), _frame(3), failure, _frame(4), _frame(5)]
    model = CountingModel(batch_size=2)
    out = list(detect_stream(model, stream))
    assert [f.source for f, _ in out] == ["1.png", "2.png", "3.png", "bad.png", "4.png", "5.png"]
    assert [r and r["value"] for _, r in out] == [1, 2, 3, None, 4, 5]
    # The failure ends the batch of 3 (filled up with a copy of 3), then 4 and 5.
    assert model.calls == [[1, 2], [3, 3], [4, 5]]


def test_frames_of_pictures_and_videos_with_failures(tmp_path):
    Image.fromarray(np.full((5, 7, 3), 40, np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes(b"not a png")
    with media.VideoWriter(str(tmp_path / "v.mp4"), fps=4) as out:
        for value in (0, 100, 200):
            out.write(np.full((16, 16, 3), value, np.uint8))
    (tmp_path / "w.mp4").write_bytes(b"not a video")
    found = media.collect([str(tmp_path)])
    got = list(frames(found))
    assert [(f.source.rsplit("/", 1)[1], f.index, f.error is None) for f in got] == [
        ("a.png", None, True), ("b.png", None, False),
        ("v.mp4", 0, True), ("v.mp4", 1, True), ("v.mp4", 2, True), ("w.mp4", None, False)]
    assert got[0].image.shape == (5, 7, 3)
    assert [int(np.median(f.image)) // 10 for f in got[2:5]] == [0, 10, 20]
    assert got[2].video.fps == 4
