"""Pictures and videos on disk: the inputs of a run, reading them, writing
pictures and videos.

    inputs = collect(["photos/", "street.mp4", "shots/*.jpg"])   # Inputs
    image = read_image(inputs.images[0])           # uint8 [H, W, 3]
    video = open_video(inputs.videos[0])           # Video: .frames(), .fps
    with VideoWriter("out.mp4", video.fps) as out:
        out.write(frame)

A folder is searched recursively (files in sorted order); its files whose
extension is neither a picture's (IMAGE_EXTENSIONS) nor a video's
(VIDEO_EXTENSIONS) are not inputs: `Inputs.ignored` lists them. A glob
pattern (quote it for the shell) is expanded here, `**` included. Pictures
are decoded with Pillow (EXIF orientation applied, grey / palette / RGBA
converted to RGB), videos with imageio's ffmpeg plugin (imageio-ffmpeg
brings its own ffmpeg). A file that cannot be decoded raises `BadFileError`
naming it; so does a video that breaks off part way.
"""

import dataclasses
import glob
import os

import numpy as np
from PIL import Image, ImageOps

from mrcnn import files

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
GLOB_CHARACTERS = "*?["


class BadFileError(ValueError):
    """A picture or video that cannot be decoded; `path` names it."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


@dataclasses.dataclass
class Inputs:
    """What a list of FILE | DIR | GLOB arguments holds, each list sorted
    within its argument and free of repeats."""

    images: list = dataclasses.field(default_factory=list)
    videos: list = dataclasses.field(default_factory=list)
    ignored: list = dataclasses.field(default_factory=list)


def kind(path):
    """"image", "video" or None, by the file's extension (any case)."""
    ext = os.path.splitext(path)[1].lower()
    return "image" if ext in IMAGE_EXTENSIONS else "video" if ext in VIDEO_EXTENSIONS else None


def collect(specs):
    """Inputs of FILE | DIR | GLOB arguments. ValueError for an argument
    that names nothing, or a file given by name that is neither a picture
    nor a video."""
    found, seen = Inputs(), set()
    for spec in specs:
        path = os.path.expanduser(spec)
        if os.path.isfile(path):
            if kind(path) is None:
                raise ValueError(f"{spec}: not a picture or video (extensions "
                                 f"{', '.join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)})")
            candidates = [path]
        elif os.path.isdir(path):
            candidates = _walk(path)
        elif any(c in spec for c in GLOB_CHARACTERS):
            matches = sorted(glob.glob(path, recursive=True))
            if not matches:
                raise ValueError(f"{spec}: no file matches it")
            candidates = [f for m in matches for f in (_walk(m) if os.path.isdir(m) else [m])]
        else:
            raise ValueError(f"{spec}: no such file or folder")
        for candidate in candidates:
            key = os.path.abspath(candidate)
            if key in seen:
                continue
            seen.add(key)
            what = kind(candidate)
            (found.images if what == "image" else found.videos if what == "video"
             else found.ignored).append(candidate)
    return found


def _walk(folder):
    """Every file under a folder, sorted, hidden ones included."""
    out = []
    for parent, dirs, names in os.walk(folder):
        dirs.sort()
        out += [os.path.join(parent, n) for n in sorted(names)]
    return out


def read_image(path):
    """A picture file as uint8 RGB [H, W, 3], turned upright by its EXIF
    orientation. BadFileError when it cannot be decoded (truncated too)."""
    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
        raise BadFileError(path, f"cannot decode it ({e})") from None


def save_image(path, image):
    """Save uint8 [H, W, 3] atomically, in the format of the path's
    extension (JPEG at quality 90)."""
    fmt = Image.registered_extensions()[os.path.splitext(path)[1].lower()]
    options = {"quality": 90} if fmt == "JPEG" else {"compress_level": 1} if fmt == "PNG" else {}
    with files.atomic_path(path) as tmp:
        Image.fromarray(np.asarray(image, np.uint8)).save(tmp, format=fmt, **options)


@dataclasses.dataclass
class Video:
    """An opened video: its path, frames per second and frame count (from
    the container's duration when it does not say; None if neither)."""

    path: str
    fps: float
    count: int
    _reader: object

    def frames(self):
        """Its frames, uint8 [H, W, 3] each, in order. BadFileError if the
        stream breaks off."""
        try:
            for frame in self._reader:
                yield np.asarray(frame)[..., :3]
        except (OSError, RuntimeError, ValueError, StopIteration) as e:
            raise BadFileError(self.path, f"cannot decode the rest of it ({_last_line(e)})") from None
        finally:
            self._reader.close()


def open_video(path):
    """A Video of a file (imageio's ffmpeg plugin). BadFileError when it
    cannot be opened."""
    import imageio.v2 as imageio

    try:
        reader = imageio.get_reader(path, format="FFMPEG")
        meta = reader.get_meta_data()
    except (OSError, RuntimeError, ValueError, IndexError) as e:
        raise BadFileError(path, f"cannot open it as a video ({_last_line(e)})") from None
    fps = float(meta.get("fps") or 25.0)
    count = meta.get("nframes")
    if not (isinstance(count, (int, float)) and np.isfinite(count)):
        count = meta.get("duration", 0) * fps
    return Video(path, fps, round(count) or None, reader)


def _last_line(error):
    """The last line of an error's text (ffmpeg's errors quote its whole log)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1].rstrip(")") if lines else type(error).__name__


class VideoWriter:
    """An H.264 MP4 written frame by frame, complete under its name when
    the block ends without an exception, absent otherwise. Frames of odd
    height or width get one black row or column (H.264 needs even sizes)."""

    def __init__(self, path, fps):
        self.path, self.fps = path, fps
        self._atomic = self._writer = None

    def __enter__(self):
        import imageio.v2 as imageio

        self._atomic = files.atomic_path(self.path, suffix=os.path.splitext(self.path)[1])
        tmp = self._atomic.__enter__()
        self._writer = imageio.get_writer(tmp, format="FFMPEG", fps=self.fps, codec="libx264",
                                          quality=7, macro_block_size=1,
                                          ffmpeg_log_level="error")
        return self

    def write(self, frame):
        """Append uint8 [H, W, 3] (every frame of one size)."""
        h, w = frame.shape[:2]
        self._writer.append_data(np.pad(frame, [(0, h % 2), (0, w % 2), (0, 0)]))

    def __exit__(self, *exc):
        self._writer.close()
        return self._atomic.__exit__(*exc)
