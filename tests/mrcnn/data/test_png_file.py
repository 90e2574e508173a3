"""Tests for mrcnn/data/png_file.py: PNG files read whole, checked chunk by chunk."""

import io

import numpy as np
import pytest
from PIL import Image

from mrcnn.data import png_file


def write(path, mode="RGB", size=(20, 30), **save):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, **save)
    return path


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "LA", "RGBA"])
def test_eight_bit_pngs_are_read_whole_with_their_size(tmp_path, mode):
    path = write(tmp_path / "a.png", mode)
    png = png_file.read_png(path)
    assert png.contents == path.read_bytes()
    assert (png.height, png.width) == (20, 30)


def test_other_files_are_left_to_python(tmp_path):
    assert png_file.read_png(write(tmp_path / "a.jpg")) is None
    sixteen = tmp_path / "16.png"
    Image.fromarray(np.full((4, 5), 1000, np.uint16)).save(sixteen)
    assert png_file.read_png(sixteen) is None
    bilevel = tmp_path / "1.png"
    Image.fromarray(np.ones((4, 5), bool)).save(bilevel)
    assert png_file.read_png(bilevel) is None


def test_a_truncated_file_fails_as_pillow_does(tmp_path):
    path = write(tmp_path / "a.png")
    data = path.read_bytes()
    for cut in (len(data) // 2, 20):  # inside IDAT, inside IHDR
        path.write_bytes(data[:cut])
        with pytest.raises(OSError, match="image file is truncated"):
            png_file.read_png(path)
        with pytest.raises((OSError, SyntaxError), match="(?i)truncated"):
            Image.open(io.BytesIO(data[:cut])).load()
    # Stricter than Pillow, which decodes what it has: a file must end with IEND.
    path.write_bytes(data[:-12])
    with pytest.raises(OSError, match="image file is truncated"):
        png_file.read_png(path)


def test_a_damaged_chunk_fails_its_crc(tmp_path):
    path = write(tmp_path / "a.png")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(OSError, match="broken PNG file .CRC error in chunk 'IDAT'"):
        png_file.read_png(path)


def test_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        png_file.read_png(tmp_path / "none.png")


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "LA", "RGBA", "P+transparency"])
def test_the_graph_decodes_them_as_load_image_does(tmp_path, mode):
    import tensorflow as tf

    from mrcnn.data.dataset import Dataset

    save = {"transparency": 3} if mode == "P+transparency" else {}
    path = write(tmp_path / "a.png", mode.split("+")[0], **save)
    ds = Dataset()
    ds.add_image("files", 0, str(path))
    ds.prepare()
    png = ds.load_image_file(0)
    decoded = tf.io.decode_png(png.contents, channels=3).numpy()
    np.testing.assert_array_equal(decoded, ds.load_image(0))
