"""PNG files read whole and checked, for decoding outside Python.

    png = read_png(path)   # None: not a PNG the graph decodes like Pillow
    png.contents, png.height, png.width

The input pipeline decodes PNGs with `tf.io.decode_png`, which runs
without the GIL, so images decode on every core at once. A damaged file
must still be a counted, skipped image (mrcnn/data/feed_failures.py), not
an error that ends the pipeline: `read_png` walks the file's chunks and
checks every CRC (zlib's crc32 lets go of the GIL on large buffers)
before the bytes reach the graph, and raises OSError for a file that is
truncated or damaged, the way Pillow's decoder fails on it.

Only 8-bit images of the five PNG colour types are given to the graph:
gray, RGB, palette, gray + alpha and RGBA, which `tf.io.decode_png(...,
channels=3)` turns into the pixels Pillow's `convert("RGB")` gives (alpha
dropped, gray repeated, palette looked up). Other files (16-bit PNGs,
JPEG, ...) return None: the caller decodes them in Python.
"""

import collections
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# IHDR colour types: gray, RGB, palette, gray + alpha, RGBA.
COLOR_TYPES = (0, 2, 3, 4, 6)

PngFile = collections.namedtuple("PngFile", "contents height width")


def read_png(path):
    """The file's bytes and size when it is an 8-bit PNG, else None.

    Raises FileNotFoundError / OSError when the file is missing, truncated
    (no IEND chunk, a chunk cut short) or damaged (a CRC that does not match).
    """
    with open(path, "rb") as f:
        contents = f.read()
    if not contents.startswith(SIGNATURE):
        return None
    header = check_chunks(contents)
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    if depth != 8 or color not in COLOR_TYPES:
        return None
    return PngFile(contents, height, width)


def check_chunks(contents):
    """Walk the chunks of PNG `contents` (bytes); return the IHDR data.

    Raises OSError naming the problem: "image file is truncated" (Pillow's
    words) when the file ends before IEND, "broken PNG file" otherwise.
    """
    offset, header = len(SIGNATURE), None
    while True:
        if offset + 8 > len(contents):
            raise OSError("image file is truncated")
        length, kind = struct.unpack(">I4s", contents[offset:offset + 8])
        end = offset + 12 + length
        if end > len(contents):
            raise OSError("image file is truncated")
        crc = struct.unpack(">I", contents[end - 4:end])[0]
        if zlib.crc32(memoryview(contents)[offset + 4:end - 4]) != crc:
            raise OSError(f"broken PNG file (CRC error in chunk {kind.decode('latin-1')!r})")
        if header is None:
            if kind != b"IHDR" or length != 13:
                raise OSError("broken PNG file (no IHDR chunk first)")
            header = contents[offset + 8:offset + 8 + length]
        if kind == b"IEND":
            return header
        offset = end
