"""mrcnn/command.py: the model flags of the commands that detect."""

import argparse
import json

import pytest

from mrcnn import command
from mrcnn.engine.inference import coco_config


def _args(*argv):
    parser = command.Parser("test")
    command.add_model_flags(parser)
    return parser.parse_args(["--weights", "w.h5", *argv])


def test_model_flags_become_config_fields():
    args = _args("--min_confidence", "0.25", "--image_min_dim", "256", "--image_max_dim", "512")
    assert command.model_overrides(args) == {"DETECTION_MIN_CONFIDENCE": 0.25,
                                             "IMAGE_MIN_DIM": 256, "IMAGE_MAX_DIM": 512}
    assert command.model_overrides(_args()) == {}


@pytest.mark.parametrize("argv, message", [
    (["--min_confidence", "1.5"], "--min_confidence 1.5: must lie in [0, 1]"),
    (["--image_max_dim", "0"], "--image_max_dim 0: must be a positive integer"),
])
def test_bad_model_flags(argv, message):
    with pytest.raises(command.UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        command.model_overrides(_args(*argv))


def test_model_source_reads_the_run_config_with_the_flags_on_top(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(coco_config().to_dict()))
    (tmp_path / "w.h5").write_bytes(b"")
    args = argparse.Namespace(weights=str(tmp_path / "w.h5"), logs="logs", min_confidence=0.1,
                              image_min_dim=None, image_max_dim=None)
    path, config = command.model_source(args)
    assert path == str(tmp_path / "w.h5") and config.DETECTION_MIN_CONFIDENCE == 0.1
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "w.h5").write_bytes(b"")
    for weights, message in ((lone / "w.h5", "no config.json beside it"),
                             (tmp_path / "none.h5", "no such file")):
        with pytest.raises(command.UsageError, match=f"--weights {weights}: .*{message}"):
            command.model_source(argparse.Namespace(**{**vars(args), "weights": str(weights)}))
