"""Tests for mrcnn/engine/schedule.py: schedule strings, presets, resume."""

import pytest

from mrcnn.engine.schedule import Stage, parse_schedule, remaining


def test_matterport_preset():
    assert parse_schedule("matterport") == [
        Stage("heads", 40), Stage("4+", 120), Stage("all", 160, 0.1)]


def test_explicit_schedule_and_str_round_trip():
    stages = parse_schedule(" heads:2, 4+:5 ,all:7x0.01")
    assert stages == [Stage("heads", 2), Stage("4+", 5), Stage("all", 7, 0.01)]
    assert parse_schedule(",".join(str(s) for s in stages)) == stages


@pytest.mark.parametrize("text, message", [
    ("heads", "expected LAYERS:EPOCH"),
    ("head:3", "layers must be one of"),
    ("heads:3,all:3", "increase"),
    ("heads:0", "increase"),
    ("all:3x0", "positive"),
    ("all:3x-1", "positive"),
])
def test_bad_schedules(text, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(text)


def test_remaining_stages_after_resume():
    stages = parse_schedule("heads:2,4+:5,all:7x0.1")
    assert remaining(stages, 0) == stages
    assert remaining(stages, 2) == stages[1:]
    assert remaining(stages, 3) == stages[1:]
    assert remaining(stages, 7) == []
