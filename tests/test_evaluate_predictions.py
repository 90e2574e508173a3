"""evaluate.py --predictions with malformed files: exit 2 and one line
naming the entry and its problem, never a traceback (issue 17)."""

import copy
import json
import random

import pytest
from pycocotools import mask as mask_utils

import evaluate
from cityscapes.synthetic import generate
from mrcnn.evaluation import rle
from tests.test_evaluate import perfect_results


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("cs")
    generate(out, seed=3, height=64, width=128, images={"train": 0, "val": 3, "test": 0})
    return str(out)


@pytest.fixture(scope="module")
def entries(root):
    """Valid entries of every kind: with and without bbox, compressed and
    uncompressed counts."""
    out = perfect_results(root)
    assert len(out) >= 4
    out[0]["bbox"] = mask_utils.toBbox(rle.for_pycocotools(out[0]["segmentation"])).tolist()
    counts, _ = rle.counts_of([out[1]["segmentation"]])
    out[1]["segmentation"] = dict(out[1]["segmentation"], counts=counts.tolist())
    return out


def run(capsys, root, path, *extra):
    """evaluate.py in this process -> (exit code, stdout, stderr)."""
    try:
        code = evaluate.main(["--dataset", root, "--predictions", str(path), "--samples", "0",
                              *extra])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path, entries, name="p.json"):
    path = tmp_path / name
    path.write_text(json.dumps(entries))  # NaN, Infinity as Python writes them (not standard JSON)
    return path


def assert_one_line_error(code, out, err):
    assert code == 2, (code, out, err)
    assert err.startswith("evaluate.py: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err + out


def _issue_case(name):
    """The malformed entries of issue 17, applied to entry 2."""
    def change(e):
        seg = e["segmentation"]
        h, w = seg["size"]
        {"score high": lambda: e.update(score="high"),
         "polygon": lambda: e.update(segmentation=[[10, 10, 20, 10, 20, 20]]),
         "alphabet": lambda: seg.update(counts="0" + seg["counts"] + "~"),
         "past the end": lambda: seg.update(counts=[0, h * w + 50]),
         "bbox 3": lambda: e.update(bbox=[1, 2, 3]),
         "no size": lambda: seg.pop("size"),
         "NaN": lambda: e.update(score=float("nan")),
         "Infinity": lambda: e.update(score=float("inf"))}[name]()
    return change


@pytest.mark.parametrize("name, problem", [
    ("score high", 'score "high" is not a number'),
    ("polygon", "segmentation is a polygon list: expected an RLE"),
    ("alphabet", "RLE counts hold characters outside COCO's alphabet"),
    ("past the end", "RLE runs go past the end of the image"),
    ("bbox 3", "bbox [1, 2, 3] is not 4 finite numbers [x, y, w, h]"),
    ("no size", "segmentation has no size (the image's [H, W])"),
    ("NaN", "score NaN is not finite"),
    ("Infinity", "score Infinity is not finite"),
])
def test_issue_cases_stop_with_exit_2_naming_the_entry(tmp_path, capsys, root, entries,
                                                        name, problem):
    bad = copy.deepcopy(entries)
    _issue_case(name)(bad[2])
    path = write(tmp_path, bad)
    code, out, err = run(capsys, root, path, "--report", str(tmp_path / "rep"))
    assert_one_line_error(code, out, err)
    assert f"{path}: entry 2: {problem}" in err
    assert not (tmp_path / "rep").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]  # no partial report


def test_a_valid_file_scores_and_images_limits_the_images_scored(tmp_path, capsys, root,
                                                                  entries):
    path = write(tmp_path, entries)
    code, out, err = run(capsys, root, path)
    assert code == 0 and "AP@0.5 100.0" in out and "over 3 images" in out, (out, err)
    # Entries of images beyond --images are checked, not scored.
    code, out, err = run(capsys, root, path, "--images", "2")
    assert code == 0 and "AP@0.5 100.0" in out and "over 2 images" in out, (out, err)


# ------------------------------------------------------------ property test
WEIRD = [None, True, False, 0, -1, 1, 2, 11, 0.5, -0.0, 1e308, 10 ** 30, float("nan"),
         float("inf"), float("-inf"), "", "high", "0", "frankfurt_000000_000000", [],
         [1, 2], [1, 2, 3, 4], [[1, 2, 3, 4, 5, 6]], {}, {"size": [1, 1], "counts": "1"}]
RLE_CHARS = "0123456789:;<=>?@ABOPo\\`n" + " !/p~\x00\"é\u2603"


def _slots(entry):
    """(container, key) of every value inside an entry."""
    out = [(entry, k) for k in entry]
    seg = entry.get("segmentation")
    if isinstance(seg, dict):
        out += [(seg, k) for k in seg]
        for k in ("size", "counts"):
            if isinstance(seg.get(k), list):
                out += [(seg[k], j) for j in range(len(seg[k]))]
    if isinstance(entry.get("bbox"), list):
        out += [(entry["bbox"], j) for j in range(len(entry["bbox"]))]
    return out


def _number(rng, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return rng.choice(WEIRD)
    return rng.choice([v + 1, v - 1, -v, v * 1000, v / 3, float(v), int(v) if abs(v) < 1e18
                       else v, float("nan"), float("inf"), 0])


def _string(rng, s):
    i = rng.randrange(len(s) + 1)
    op = rng.choice(["insert", "delete", "replace", "cut", "double"])
    c = rng.choice(RLE_CHARS)
    return {"insert": s[:i] + c + s[i:], "delete": s[:i] + s[i + 1:],
            "replace": s[:i] + c + s[i + 1:], "cut": s[:i], "double": s + s[i:]}[op]


def mutate(rng, entries):
    """One random change of types, lengths, RLE strings, keys or numbers.
    -> its description."""
    kind = rng.choice(["type", "length", "rle", "key", "number", "entry"])
    if kind == "entry" or not entries:
        i = rng.randrange(len(entries) + 1)
        op = rng.choice(["drop", "copy", "not an object"])
        if op == "drop" and entries:
            entries.pop(min(i, len(entries) - 1))
        elif op == "copy" and entries:
            entries.insert(i, copy.deepcopy(rng.choice(entries)))
        else:
            entries.insert(i, rng.choice(WEIRD))
        return f"entry {op} at {i}"
    i = rng.randrange(len(entries))
    e = entries[i]
    if not isinstance(e, dict):
        entries[i] = {}
        return f"entry {i} made an empty object"
    slots = _slots(e)
    container, key = rng.choice(slots) if slots else (e, "score")
    value = container[key] if slots else None
    if kind == "type":
        container[key] = rng.choice(WEIRD)
    elif kind == "length" and isinstance(value, (list, str)):
        n = rng.randrange(len(value) + 2)
        container[key] = value[:n] if n <= len(value) else value + value[:1]
    elif kind == "rle":
        seg = e.get("segmentation")
        if isinstance(seg, dict) and isinstance(seg.get("counts"), str):
            seg["counts"] = _string(rng, seg["counts"])
            key = "counts"
        else:
            container[key] = _string(rng, str(value))
    elif kind == "key":
        op = rng.choice(["drop", "rename", "add"])
        if op == "drop" and isinstance(container, dict):
            del container[key]
        elif op == "rename" and isinstance(container, dict):
            container[str(key).upper()] = container.pop(key)
        else:
            e[rng.choice(["extra", "bbox", "size", "counts"])] = rng.choice(WEIRD)
        kind += f" {op}"
    else:
        container[key] = _number(rng, value)
    return f"{kind} of entry {i} at {key!r}"


def test_random_mutations_exit_0_or_2_with_one_line_never_a_traceback(tmp_path, capsys, root,
                                                                        entries):
    rng = random.Random(17)
    codes, failures = {0: 0, 2: 0}, []
    for trial in range(300):
        mutated = copy.deepcopy(entries)
        changes = [mutate(rng, mutated) for _ in range(rng.choice([1, 1, 2, 3]))]
        path = write(tmp_path, mutated)
        try:
            code, out, err = run(capsys, root, path)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError,
                ArithmeticError, RuntimeError) as e:  # a crash: what the test looks for
            failures.append((trial, changes, f"{type(e).__name__}: {e}"))
            continue
        ok = (code == 2 and err.startswith("evaluate.py: error: ") and err.count("\n") == 1
              or code == 0 and out.count("\n") == 1 and "AP@0.5" in out)
        if not ok or "Traceback" in out + err:
            failures.append((trial, changes, code, out, err))
        codes[code] = codes.get(code, 0) + 1
    assert not failures, failures[:5]
    assert codes[0] >= 20 and codes[2] >= 150, codes  # both outcomes are exercised
