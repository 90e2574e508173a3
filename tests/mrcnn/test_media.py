"""mrcnn/media.py: the inputs of a run, pictures and videos read and written."""

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mrcnn import media


def _picture(path, shape=(20, 30), mode="RGB", value=None):
    rng = np.random.default_rng(len(str(path)))
    data = rng.integers(0, 256, (*shape, len(mode) if mode != "L" else 1), np.uint8)
    if value is not None:
        data[:] = value
    Image.fromarray(data.squeeze(-1) if mode == "L" else data, mode).save(path)
    return str(path)


def test_collect_walks_folders_expands_globs_and_sets_other_files_aside(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    a = _picture(tmp_path / "in" / "a.png")
    b = _picture(tmp_path / "in" / "sub" / "b.JPG")
    (tmp_path / "in" / "clip.mp4").write_bytes(b"")
    (tmp_path / "in" / "notes.txt").write_text("x")
    c = _picture(tmp_path / "c.bmp")
    found = media.collect([str(tmp_path / "in"), str(tmp_path / "*.bmp"), a])
    assert found.images == [a, b, c]  # a given twice counts once
    assert found.videos == [str(tmp_path / "in" / "clip.mp4")]
    assert found.ignored == [str(tmp_path / "in" / "notes.txt")]
    assert media.collect([str(tmp_path / "**" / "*.png")]).images == [a]


@pytest.mark.parametrize("name, message", [
    ("missing.png", "no such file or folder"),
    ("*.gif", "no file matches it"),
    ("notes.txt", "not a picture or video"),
])
def test_collect_names_what_it_cannot_use(tmp_path, name, message):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=message) as info:
        media.collect([str(tmp_path / name)])
    assert str(info.value).startswith(str(tmp_path / name))


def test_read_image_gives_rgb_upright(tmp_path):
    grey = media.read_image(_picture(tmp_path / "g.png", mode="L", value=77))
    assert grey.shape == (20, 30, 3) and grey.dtype == np.uint8 and (grey == 77).all()
    rgba = media.read_image(_picture(tmp_path / "a.png", mode="RGBA", value=9))
    assert rgba.shape == (20, 30, 3) and (rgba == 9).all()
    # EXIF orientation 6 (rotate 90 degrees clockwise to show): a 20 x 30 file shows 30 x 20.
    data = np.zeros((20, 30, 3), np.uint8)
    data[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(data).save(tmp_path / "r.jpg", exif=exif, quality=100)
    upright = media.read_image(str(tmp_path / "r.jpg"))
    assert upright.shape == (30, 20, 3)
    assert upright[0, -1].mean() > 128  # the top-left pixel went to the top right


def test_an_undecodable_picture_is_named(tmp_path):
    path = _picture(tmp_path / "t.png", shape=(64, 64))
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:len(data) // 2])
    with pytest.raises(media.BadFileError, match="cannot decode it") as info:
        media.read_image(path)
    assert info.value.path == path and str(info.value).startswith(path)
    (tmp_path / "x.jpg").write_text("not a picture")
    with pytest.raises(media.BadFileError):
        media.read_image(str(tmp_path / "x.jpg"))


def test_save_image_by_extension(tmp_path):
    picture = np.random.default_rng(0).integers(0, 256, (10, 12, 3), np.uint8)
    media.save_image(str(tmp_path / "p.png"), picture)
    media.save_image(str(tmp_path / "p.jpg"), picture)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "p.png")), picture)
    with Image.open(tmp_path / "p.jpg") as img:
        assert img.format == "JPEG" and img.size == (12, 10)
    assert sorted(os.listdir(tmp_path)) == ["p.jpg", "p.png"]  # no temporary files left


def test_video_round_trip(tmp_path):
    path = str(tmp_path / "v.mp4")
    frames = []
    with media.VideoWriter(path, fps=5) as out:
        for i in range(6):
            frame = np.zeros((45, 63, 3), np.uint8)  # odd sizes: padded to 46 x 64
            frame[10:30, 5 + 5 * i:25 + 5 * i] = (250, 20, 20)
            frames.append(frame)
            out.write(frame)
    assert os.listdir(tmp_path) == ["v.mp4"]
    video = media.open_video(path)
    assert video.fps == 5 and video.count == 6
    back = list(video.frames())
    assert len(back) == 6 and back[0].shape == (46, 64, 3)
    for frame, read in zip(frames, back):
        assert np.abs(read[:45, :63].astype(int) - frame).mean() < 4  # H.264 is lossy


def test_a_video_writer_that_fails_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), media.VideoWriter(str(tmp_path / "v.mp4"), 5) as out:
        out.write(np.zeros((8, 8, 3), np.uint8))
        raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []


def test_an_undecodable_video_is_named_in_one_line(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 20)
    with pytest.raises(media.BadFileError, match="cannot open it as a video") as info:
        media.open_video(str(tmp_path / "bad.mp4"))
    assert "\n" not in str(info.value) and info.value.path == str(tmp_path / "bad.mp4")


def test_an_avi_is_read_too(tmp_path):
    import imageio.v2 as imageio

    path = str(tmp_path / "v.avi")
    with imageio.get_writer(path, format="FFMPEG", fps=4, codec="mjpeg", quality=8,
                            macro_block_size=1) as out:
        for value in (30, 130, 230):
            out.append_data(np.full((32, 48, 3), value, np.uint8))
    video = media.open_video(path)
    assert video.fps == 4
    medians = [float(np.median(f)) for f in video.frames()]
    assert len(medians) == 3 and np.abs(np.subtract(medians, [30, 130, 230])).max() <= 4
