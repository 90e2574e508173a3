"""Weight files from the cache or a (faked) download; no network is used."""

import io
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from mrcnn.checkpoint import pretrained as W


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MRCNN_WEIGHTS_DIR", str(tmp_path))
    assert W.default_cache_dir() == str(tmp_path)
    monkeypatch.delenv("MRCNN_WEIGHTS_DIR")
    assert W.default_cache_dir() == os.path.join(os.path.expanduser("~"), ".keras", "models")


def test_get_weights_file_returns_cached_file(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("must not download a cached file")

    monkeypatch.setattr(W.urllib.request, "urlopen", no_network)
    (tmp_path / "mask_rcnn_coco.h5").write_bytes(b"x")
    (tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5").write_bytes(b"x")
    assert W.get_weights_file("coco", cache_dir=tmp_path) == str(tmp_path / "mask_rcnn_coco.h5")
    assert W.get_weights_file("imagenet", "resnet50", cache_dir=tmp_path) == str(
        tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    monkeypatch.setenv("MRCNN_WEIGHTS_DIR", str(tmp_path))
    assert W.get_weights_file("coco") == str(tmp_path / "mask_rcnn_coco.h5")


def test_get_weights_file_without_download_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        W.get_weights_file("imagenet", "resnet101", cache_dir=tmp_path, download=False)
    msg = str(err.value)
    expected = tmp_path / "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert str(expected) in msg
    assert W.imagenet_weights_url("resnet101") in msg
    assert "MRCNN_WEIGHTS_DIR" in msg


def test_no_imagenet_file_for_resnet14(tmp_path):
    with pytest.raises(ValueError, match="No published ImageNet weights for backbone 'resnet14'"):
        W.get_weights_file("imagenet", "resnet14", cache_dir=tmp_path, download=False)


def test_get_weights_file_download_failure_message(tmp_path, monkeypatch):
    def unreachable(url, timeout):
        raise OSError(f"unreachable host for {url} (timeout {timeout})")

    monkeypatch.setattr(W.urllib.request, "urlopen", unreachable)
    with pytest.raises(FileNotFoundError) as err:
        W.get_weights_file("coco", cache_dir=tmp_path / "cache", timeout=3)
    msg = str(err.value)
    assert str(tmp_path / "cache" / "mask_rcnn_coco.h5") in msg
    assert W.COCO_WEIGHTS_URL in msg
    assert "unreachable host" in msg and "timeout 3" in msg
    assert isinstance(err.value.__cause__, OSError)
    assert os.listdir(tmp_path / "cache") == []


class FakeResponse(io.BytesIO):
    def __init__(self, data, length=None):
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data) if length is None else length)}


def test_get_weights_file_downloads_atomically(tmp_path, monkeypatch):
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f.attrs["layer_names"] = np.array([b"conv1"])
    payload = src.read_bytes()
    seen = []

    def fake_urlopen(url, timeout):
        seen.append((url, timeout))
        return FakeResponse(payload)

    monkeypatch.setattr(W.urllib.request, "urlopen", fake_urlopen)
    cache = tmp_path / "cache"
    path = W.get_weights_file("coco", cache_dir=cache, timeout=5)
    assert seen == [(W.COCO_WEIGHTS_URL, 5)]
    assert os.listdir(cache) == ["mask_rcnn_coco.h5"]
    assert Path(path).read_bytes() == payload


@pytest.mark.parametrize(
    "payload,length,reason",
    [(b"<html>rate limited</html>", None, "not an HDF5"), (b"\x89HDF\r\n\x1a\n", 100, "incomplete")],
)
def test_get_weights_file_rejects_bad_downloads(tmp_path, monkeypatch, payload, length, reason):
    monkeypatch.setattr(
        W.urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload, length)
    )
    with pytest.raises(FileNotFoundError, match=reason):
        W.get_weights_file("imagenet", "resnet50", cache_dir=tmp_path)
    assert os.listdir(tmp_path) == []


def test_get_weights_file_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="resnet101"):
        W.get_weights_file("coco", "resnet50", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="kind"):
        W.get_weights_file("voc", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="backbone"):
        W.get_weights_file("imagenet", "vgg16", cache_dir=tmp_path)
