"""The commands in README.md and docs/*.md run as written.

Every command line of a fenced shell block (```bash, ```sh or a bare ```)
that calls one of this project's commands (train.py, evaluate.py,
predict.py, python -m tuning, python -m cityscapes.X, python -m
samples.shapes, python -m mrcnn.export) is
parsed with that command's own `build_parser()` (unknown flags, bad
choices, missing required flags fail here; nothing heavy runs). The quick
ones (the cityscapes tools on folders an earlier command of the same page
writes) then run in a subprocess, in document order, in a temporary folder,
as does `--help` of every command. No training runs.
"""

import importlib
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FIRST_COMMANDS = [
    "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt "
    "&& .venv/bin/python train.py --dataset demo",
    ".venv/bin/python -m pytest -q",
]
# Command -> the module whose build_parser() parses its arguments.
SCRIPTS = {"train.py": "train", "evaluate.py": "evaluate", "predict.py": "predict"}
MODULES = {"tuning": "tuning.__main__", "cityscapes.synthetic": "cityscapes.synthetic",
           "cityscapes.stats": "cityscapes.stats", "cityscapes.show_masks": "cityscapes.show_masks",
           "samples.shapes": "samples.shapes", "mrcnn.export": "mrcnn.export"}
# Commands cheap enough to run for real (seconds, no training).
RUNNABLE = ("cityscapes.synthetic", "cityscapes.stats", "cityscapes.show_masks")
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
PROJECT_HINT = re.compile(
    r"(train\.py|evaluate\.py|predict\.py|-m\s+(tuning|cityscapes\.|samples\.|mrcnn\.))")
RUN_TIMEOUT = 60


def shell_blocks(text):
    """The bodies of the fenced bash / sh / bare code blocks of a page."""
    blocks, body, fence = [], None, None
    for line in text.splitlines():
        stripped = line.strip()
        if body is None:
            if stripped.startswith("```"):
                fence = stripped[3:].strip()
                body = []
        elif stripped.startswith("```"):
            if fence in ("bash", "sh", "shell", ""):
                blocks.append(body)
            body = None
        else:
            body.append(line)
    return blocks


def logical_lines(block):
    """Lines of a block with backslash continuations joined, comment lines dropped."""
    lines, pending = [], ""
    for line in block:
        if not pending and line.strip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        lines.append((pending + line).strip())
        pending = ""
    if pending:
        lines.append(pending.strip())
    return [line for line in lines if line]


def split_commands(line):
    """shlex words of each command of a line (split on && || ;), comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, words = [], []
    for token in lexer:
        if token in ("&&", "||", ";", "&", "|"):
            commands.append(words)
            words = []
        else:
            words.append(token)
    commands.append(words)
    return [c for c in commands if c]


def project_command(words):
    """(name, args) of a command of this project, else None. Drops leading
    VAR=value assignments and a .venv/bin/ prefix; python3 == python."""
    while words and ENV_ASSIGNMENT.match(words[0]):
        words = words[1:]
    if not words:
        return None
    program = words[0].removeprefix(".venv/bin/")
    if program not in ("python", "python3"):
        return None
    rest = words[1:]
    if rest and rest[0] in SCRIPTS:
        return rest[0], rest[1:]
    if len(rest) >= 2 and rest[0] == "-m" and rest[1] in MODULES:
        return rest[1], rest[2:]
    return None


def doc_commands():
    """[(page, line, name, args)] of every project command in the pages, in order."""
    found = []
    for page in PAGES:
        for block in shell_blocks(page.read_text(encoding="utf-8")):
            for line in logical_lines(block):
                for words in split_commands(line):
                    command = project_command(words)
                    if command is None:
                        assert not PROJECT_HINT.search(" ".join(words)), (
                            f"{page.name}: not recognised as a command of this project: {line}")
                        continue
                    found.append((page.name, line, *command))
    return found


COMMANDS = doc_commands()


def placeholders(args):
    """$VARS -> a placeholder path (parsing only looks at the words)."""
    return [VARIABLE.sub(lambda m: f"/placeholder/{m.group(1)}", a) for a in args]


def parser_of(name):
    module = SCRIPTS.get(name) or MODULES[name]
    return importlib.import_module(module).build_parser()


def python_command(name):
    return [sys.executable, name] if name in SCRIPTS else [sys.executable, "-m", name]


def run(cmd, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines"
    assert lines[0].startswith("# ")
    first_block = shell_blocks("\n".join(lines))[0]
    assert first_block == FIRST_COMMANDS
    assert "```bash" in "\n".join(lines[1:4]), "the two commands come right after the title"
    figures = [line for line in " ".join(lines).split(". ") if "On a 2-core machine" in line]
    assert len(figures) == 1


def test_every_page_has_project_commands():
    pages = {page for page, *_ in COMMANDS}
    for page in ("README.md", "training.md", "evaluation.md", "tuning.md", "cityscapes.md",
                 "predict.md"):
        assert page in pages, f"{page}: no command of this project found"
    names = {name for _, _, name, _ in COMMANDS}
    assert names >= {"train.py", "evaluate.py", "predict.py", "tuning", "cityscapes.synthetic",
                     "cityscapes.stats", "cityscapes.show_masks", "mrcnn.export"}


@pytest.mark.parametrize("page,line,name,args", COMMANDS,
                         ids=[f"{p}:{n}:{i}" for i, (p, _, n, _) in enumerate(COMMANDS)])
def test_command_parses(page, line, name, args):
    try:
        parser_of(name).parse_args(placeholders(args))
    except SystemExit as e:
        if e.code == 0 and ("--help" in args or "-h" in args):
            return
        pytest.fail(f"{page}: `{line}` does not parse (exit {e.code})")


def test_doc_paths_exist():
    """Every repository path like `mrcnn/engine/run.py` named in the pages exists."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for path in set(re.findall(r"(?<![\w./*-])((?:[a-z_]+/)+[a-z_]+\.(?:py|md|png))\b", text)):
            if path.startswith(("docs/", "tests/", "mrcnn/", "cityscapes/", "tuning/",
                                "samples/", "benchmarks/")):
                assert (ROOT / path).exists(), f"{page.name}: {path} does not exist"


@pytest.mark.parametrize("name", [*SCRIPTS, *MODULES])
def test_help_runs(name):
    result = run([*python_command(name), "--help"], ROOT)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_quick_commands_run(tmp_path):
    """The cityscapes tools as written, page by page in a fresh folder, on
    folders an earlier command of the page wrote (those on $VARS or the
    cached demo are only parsed)."""
    ran = 0
    for page in PAGES:
        cwd = tmp_path / page.stem
        cwd.mkdir()
        for p, line, name, args in COMMANDS:
            if p != page.name or name not in RUNNABLE or any("$" in a for a in args):
                continue
            dataset = args[args.index("--dataset") + 1] if "--dataset" in args else None
            if name != "cityscapes.synthetic" and not (dataset and (cwd / dataset).is_dir()):
                continue
            result = run([*python_command(name), *args], cwd)
            assert result.returncode == 0, f"{page.name}: `{line}` failed:\n{result.stderr[-2000:]}"
            ran += 1
    assert ran >= 4
