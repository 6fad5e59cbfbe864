"""Bad config files: one line naming the file, the key and the problem; exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nas.cli import main
from tests.conftest import REFERENCE


def run_show(capsys, path) -> str:
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def write(tmp_path, data, name="bad.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if isinstance(data, dict) else data)
    return path


def test_missing_file(capsys, tmp_path) -> None:
    assert "no such config file" in run_show(capsys, tmp_path / "nope.toml")


@pytest.mark.parametrize("name,text,expect", [
    ("bad.toml", "blocks = [", "not valid TOML"),
    ("bad.json", "{\"blocks\": ", "not valid JSON"),
    ("bad.yaml", "blocks: []", "expected a .toml or .json file"),
])
def test_unparseable(capsys, tmp_path, name, text, expect) -> None:
    assert expect in run_show(capsys, write(tmp_path, text, name))


@pytest.mark.parametrize("edit,key,problem", [
    (lambda d: d.update(colour="red"), "colour", "unknown key"),
    (lambda d: d["blocks"][0]["convs"][1].update(kernel=5), "blocks[0].convs[1].kernel", "unknown key"),
    (lambda d: d["blocks"][2].pop("channels"), "blocks[2].channels", "missing required key"),
    (lambda d: d["blocks"][1].update(channels="32"), "blocks[1].channels", "expected int"),
    (lambda d: d["blocks"][1].update(channels=0), "blocks[1].channels", "positive"),
    (lambda d: d["blocks"][0]["convs"][0].update(dilation=True), "blocks[0].convs[0].dilation",
     "expected int"),
    (lambda d: d["blocks"][0]["convs"][0].update(kind="grouped"), "blocks[0].convs[0].kind",
     "must be one of"),
    (lambda d: d["blocks"][3].update(dropout=1.5), "blocks[3].dropout", "[0, 1)"),
    (lambda d: d.update(blocks=[]), "blocks", "non-empty list"),
    (lambda d: [b["convs"].__setitem__(2, {"stride": 4, "padding": 0}) for b in d["blocks"]],
     "blocks[2].convs[2]", "shrinks below 1×1"),
    (lambda d: d["blocks"][3]["convs"].__setitem__(0, {"kind": "depthwise"}),
     "blocks[3].convs[0]", "depthwise conv keeps the width"),
    (lambda d: d["blocks"][0]["convs"][2].update(padding=0), "blocks[0].shortcut",
     "shortcut gives 16×16"),
])
def test_invalid_configs(capsys, tmp_path, reference_dict, edit, key, problem) -> None:
    edit(reference_dict)
    path = write(tmp_path, reference_dict)
    err = run_show(capsys, path)
    assert f"{path}: {key}: " in err and problem in err


def test_console_script_exits_2_without_traceback(tmp_path) -> None:
    path = write(tmp_path, "[[blocks]]\nchannels = -3\n", "neg.toml")
    proc = subprocess.run([sys.executable, "-m", "nas.cli", "show", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == f"nas: error: {path}: blocks[0].channels: must be a positive integer, got -3"


def test_reference_file_is_untouched_by_show(capsys) -> None:
    before = REFERENCE.read_bytes()
    assert main(["show", str(REFERENCE)]) == 0
    assert REFERENCE.read_bytes() == before
