"""Bad input, one table: every case runs `nas.cli.main.main` in-process, in an empty folder, and must
print one line on stderr that says what is wrong (argparse's usage errors: its usage lines, then
one `error:` line) and nothing on stdout (no live view, no opening line drawn before the error),
exit with code 2, show no traceback, and leave every file as it was.

A case is (id, arguments, a fragment of the error line, optional setup, exit code). In the
arguments, {tmp} is the case's folder (also the current folder, so a default such as
runs/nas.db would land there) and {data} the tiny CIFAR-10 look-alike of tests/conftest.py.
$NAS_DATA_DIR points at a folder that does not exist: a command that reads data before a check
that needs none shows the wrong error. A setup gets (tmp folder, tiny data folder) and writes its
files before the snapshot.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nas.cli.main import main
from nas.data.cifar10 import BIN_DIR, RECORD_BYTES
from tests.conftest import REFERENCE, ROOT

Setup = Callable[[Path, Path], None]
REF: dict[str, Any] = tomllib.loads(REFERENCE.read_text())
SPACE = ROOT / "search_spaces" / "c1c2c3c4o.toml"
PG_DOWN = "postgresql://nobody@127.0.0.1:9/none"  # port 9 (discard): refused at once


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    fragment: str
    setup: Setup | None = None
    code: int = 2
    usage: bool = False  # argparse's own error: usage lines, then `nas ...: error: ...`
    xfail: str | None = None  # the fix it needs, in a file this test's author could not edit

    def param(self):
        marks = [pytest.mark.xfail(strict=True, reason=self.xfail)] if self.xfail else []
        return pytest.param(self, id=self.id, marks=marks)


# --- setups: files written into the case's folder before the snapshot ---

def config(edit: Callable[[dict], Any], name: str = "bad.json") -> Setup:
    """The reference design as JSON, changed by `edit`."""
    def setup(tmp: Path, _: Path) -> None:
        data = copy.deepcopy(REF)
        edit(data)
        (tmp / name).write_text(json.dumps(data))
    return setup


def text(name: str, body: str | bytes) -> Setup:
    def setup(tmp: Path, _: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return setup


def folder(name: str) -> Setup:
    return lambda tmp, _: (tmp / name).mkdir(parents=True)


def setups(*parts: Setup) -> Setup:
    def setup(tmp: Path, data: Path) -> None:
        for part in parts:
            part(tmp, data)
    return setup


def block(i: int, **change: Any) -> Callable[[dict], None]:
    return lambda d: d["blocks"][i].update(change)


def conv(b: int, c: int, **change: Any) -> Callable[[dict], None]:
    return lambda d: d["blocks"][b]["convs"][c].update(change)


def damaged_data(damage: Callable[[Path], None]) -> Setup:
    """A copy of the tiny data set in {tmp}/data, damaged by `damage(layout folder)`."""
    def setup(tmp: Path, data: Path) -> None:
        shutil.copytree(data, tmp / "data")
        damage(tmp / "data" / BIN_DIR)
    return setup


def truncate(folder: Path) -> None:
    path = folder / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-1000])


def bad_label(folder: Path) -> None:
    path = folder / "data_batch_3.bin"
    raw = bytearray(path.read_bytes())
    raw[5 * RECORD_BYTES] = 10  # the label byte of record 5: classes are 0-9
    path.write_bytes(bytes(raw))


def python_layout_truncated(tmp: Path, data: Path) -> None:
    """torchvision's pickled layout with a cut-off test_batch."""
    import pickle

    import numpy as np

    layout = tmp / "pydata" / "cifar-10-batches-py"
    layout.mkdir(parents=True)
    for path in sorted((data / BIN_DIR).glob("*.bin")):
        rec = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD_BYTES)
        blob = pickle.dumps({b"data": rec[:, 1:], b"labels": rec[:, 0].tolist()})
        (layout / path.stem).write_bytes(blob[:100] if path.stem == "test_batch" else blob)


def run_folder(*names: str, recipe: dict | None = None, design: str | None = "reference") -> Setup:
    """{tmp}/run holding fake run files: `names` with junk, recipe.json with `recipe`, config.json
    with the shipped `design` (None: a design of another name)."""
    def setup(tmp: Path, _: Path) -> None:
        import nas
        from nas.design.files import REFERENCE

        run = tmp / "run"
        run.mkdir()
        for name in names:
            (run / name).write_text("{}" if name.endswith(".json") else "not a checkpoint")
        if recipe is not None:
            (run / "recipe.json").write_text(json.dumps(recipe))
        config = nas.load_config(REFERENCE).to_dict() | ({} if design else {"name": "another"})
        (run / "config.json").write_text(json.dumps(config))
    return setup


def default_recipe(**change: Any) -> dict:
    from nas.training.recipe import Recipe

    return Recipe(**change).to_dict()


def torch_checkpoint(tmp: Path, _: Path) -> None:
    """A loadable checkpoint whose weights belong to no design (as one of another design)."""
    import torch

    torch.save({"epoch": 1, "recipe": default_recipe(), "model": {}, "history": []},
               tmp / "run" / "checkpoint.pt")


def study(*states: str, name: str = "s", settings: bool = False) -> Setup:
    """{tmp}/s.db with an Optuna study `name` holding one trial per state (made by Optuna, not nas)."""
    def setup(tmp: Path, _: Path) -> None:
        import optuna
        from optuna.trial import TrialState

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        s = optuna.create_study(study_name=name, storage=f"sqlite:///{tmp / 's.db'}")
        for state in states:
            trial = optuna.trial.create_trial(
                state=TrialState[state], value=0.5 if state == "COMPLETE" else None,
                params={"lr": 0.1}, distributions={"lr": optuna.distributions.FloatDistribution(0.01, 1)})
            s.add_trial(trial)
    return setup


def nas_study(*, tested_out: str | None = None) -> Setup:
    """{tmp}/s.db with study `s` as nas search leaves it: its settings (for the tiny data, batch 64,
    one epoch) and one complete feasible trial, the reference's separable twin; with `tested_out`,
    a test result already recorded for that run folder."""
    def setup(tmp: Path, _: Path) -> None:
        import optuna

        from nas.design.files import DEFAULT_SPACE
        from nas.search.settings import SEARCH_FILL, Fidelity, StudySettings
        from nas.search.space import baseline_params, load_space
        from nas.training.recipe import Recipe
        from nas.training.runtime import Runtime

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        space, recipe = load_space(DEFAULT_SPACE), Recipe(batch_size=64)
        fixed = {k: v for k, v in recipe.to_dict().items() if k != "epochs"}
        settings = StudySettings(space.to_dict(), fidelity=Fidelity(1, 1.0, 100), recipe=fixed,
                                 fill_params=SEARCH_FILL, precision=Runtime.pick().precision)
        s = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp / 's.db'}", direction="maximize")
        s.set_user_attr("settings", settings.to_dict())
        s.add_trial(optuna.trial.create_trial(
            value=0.5, params=baseline_params(space)[1][1], distributions=space.distributions(),
            user_attrs={"n_params": 190_000, "flops": 20_000_000, "receptive_field": 60}))
        if tested_out is not None:
            out = tested_out.format(tmp=tmp)
            s.set_user_attr("test_results", {"0": {out: {"accuracy": 0.8, "epochs": 1, "out": out}}})
    return setup


def meta(body: bytes) -> Setup:
    return damaged_data(lambda f: (f / "batches.meta.txt").write_bytes(body))


AFILE = text("afile", "x")


# --- the table ---

# Config problems, each run through `nas show` and `nas train`: (id, setup, file, fragment).
CONFIGS: list[tuple[str, Setup | None, str, str]] = [
    ("missing-file", None, "nope.toml", "no such config file"),
    ("a-folder", folder("cfg.toml"), "cfg.toml", "is a folder"),
    ("empty-toml", text("e.toml", ""), "e.toml", "is empty"),
    ("empty-json-object", text("e.json", "{}"), "e.json", "is empty"),
    ("json-list", text("l.json", "[1, 2]"), "l.json", "holds a list; a config is a table"),
    ("invalid-toml", text("bad.toml", "blocks = ["), "bad.toml", "not valid TOML"),
    ("invalid-json", text("bad.json", '{"blocks": '), "bad.json", "not valid JSON"),
    ("not-utf8", text("bin.toml", b"name = \"\xff\xfe\"\n"), "bin.toml", "cannot be read"),
    ("yaml-suffix", text("bad.yaml", "blocks: []"), "bad.yaml", "expected a .toml or .json file"),
    ("unknown-key", config(lambda d: d.update(colour="red")), "bad.json", "colour: unknown key"),
    ("unknown-nested-key", config(conv(0, 1, kernel=5)), "bad.json",
     "blocks[0].convs[1].kernel: unknown key"),
    ("missing-key", config(lambda d: d["blocks"][2].pop("channels")), "bad.json",
     "blocks[2].channels: missing required key"),
    ("wrong-type", config(block(1, channels="32")), "bad.json", "expected int, got str"),
    ("bool-for-int", config(block(1, channels=True)), "bad.json", "expected int, got bool"),
    ("float-for-int", config(block(1, channels=32.0)), "bad.json", "expected int, got float"),
    ("bool-for-float", config(block(1, dropout=True)), "bad.json", "expected float, got bool"),
    ("str-for-name", config(lambda d: d.update(name=5)), "bad.json", "name: expected str"),
    ("name-a-path", config(lambda d: d.update(name="../elsewhere")), "bad.json",
     "name: must be a plain name for a folder"),
    ("name-empty", config(lambda d: d.update(name="")), "bad.json", "name: must be a plain name"),
    ("output-not-table", config(lambda d: d.update(output="fc")), "bad.json",
     "output: expected a table"),
    ("blocks-empty", config(lambda d: d.update(blocks=[])), "bad.json", "non-empty list"),
    ("blocks-a-table", config(lambda d: d.update(blocks={"channels": 8})), "bad.json",
     "non-empty list"),
    ("width-zero", config(block(0, channels=0)), "bad.json", "must be a positive integer, got 0"),
    ("width-negative", config(block(2, channels=-3)), "bad.json", "must be a positive integer, got -3"),
    ("width-huge", config(block(3, channels=100_000)), "bad.json", "too many to build"),
    ("input-size-zero", config(lambda d: d.update(input_size=0)), "bad.json",
     "input_size: must be a positive"),
    ("input-size-huge", config(lambda d: d.update(input_size=100_000)), "bad.json",
     "input_size: must be at most"),
    ("classes-zero", config(lambda d: d.update(num_classes=0)), "bad.json",
     "num_classes: must be a positive"),
    ("map-below-1x1", config(lambda d: [b["convs"].__setitem__(2, {"stride": 4, "padding": 0})
                                        for b in d["blocks"]]), "bad.json", "shrinks below 1×1"),
    ("unknown-conv-kind", config(conv(0, 0, kind="grouped")), "bad.json", "must be one of"),
    ("unknown-order", config(lambda d: d.update(order="bn_first")), "bad.json", "order: must be one of"),
    ("unknown-head", config(lambda d: d["output"].update(head="mlp")), "bad.json",
     "output.head: must be one of"),
    ("dilation-zero", config(conv(1, 1, dilation=0)), "bad.json", "dilation: must be a positive"),
    ("dilation-too-large", config(conv(1, 1, dilation=40, padding=0)), "bad.json", "shrinks below 1×1"),
    ("padding-negative", config(conv(1, 1, padding=-1)), "bad.json", "padding: must be >= 0"),
    ("stride-zero", config(conv(1, 2, stride=0)), "bad.json", "stride: must be a positive"),
    ("identity-across-width", config(block(3, shortcut="identity")), "bad.json",
     "identity shortcut needs the block to keep size and width"),
    ("identity-across-stride", config(block(1, shortcut="identity")), "bad.json",
     "identity shortcut needs the block to keep size and width"),
    ("unknown-shortcut", config(block(0, shortcut="dense")), "bad.json", "shortcut: must be one of"),
    ("shortcut-size-mismatch", config(conv(0, 2, padding=0)), "bad.json", "shortcut gives 16×16"),
    ("depthwise-width-change", config(conv(3, 0, kind="depthwise")), "bad.json",
     "depthwise conv keeps the width"),
    ("dropout-one", config(block(3, dropout=1.0)), "bad.json", "dropout: must be in [0, 1)"),
    ("dropout-negative", config(block(0, dropout=-0.1)), "bad.json", "dropout: must be in [0, 1)"),
]

# Numeric flags, with the command's valid remainder.
TRAIN = ("train", "reference")
SEARCH = ("search", "--budget-minutes", "0")  # at equal epochs: --epochs is a search flag there
BEST = ("train-best", "--storage", "sqlite:///{tmp}/none.db")
RECIPE_FLAGS = [  # (flag, value, fragment) for every command that trains
    ("--epochs", "0", "--epochs 0: must be a positive whole number"),
    ("--epochs", "-1", "--epochs -1: must be a positive whole number"),
    ("--batch-size", "0", "--batch-size 0: must be a positive whole number"),
    ("--label-smoothing", "1.5", "--label-smoothing 1.5: must be in [0, 1)"),
    ("--warmup", "0", "--warmup 0.0: must be in (0, 1)"),
    ("--warmup", "1", "--warmup 1.0: must be in (0, 1)"),
    ("--p-affine", "1.5", "p_affine = 1.5: a probability"),
    ("--p-cutout", "-0.1", "p_cutout = -0.1: a probability"),
    ("--workers", "-5", "--workers -5: give 0 or more"),
    ("--seed", "-1", "--seed -1: must be a whole number from 0"),
]
LR_FLAGS = [
    ("--lr", "-1", "--lr -1.0: must be positive"),
    ("--lr", "0", "--lr 0.0: must be positive"),
    ("--lr", "inf", "--lr inf: must be positive and finite"),
    ("--lr", "nan", "--lr nan: must be positive"),
    ("--weight-decay", "-1", "--weight-decay -1.0: must be zero or positive"),
]

CASES: list[Case] = [
    *(Case(f"{cmd}-config-{cid}", (cmd, "{tmp}/" + name), fragment, setup)
      for cmd in ("show", "train") for cid, setup, name, fragment in CONFIGS),
    Case("train-config-in-channels-1", ("train", "{tmp}/bad.json"), "in_channels = 1, but CIFAR-10",
         config(lambda d: (d.update(in_channels=1), d["blocks"][0].update(shortcut="conv1x1")))),
    Case("train-config-100-classes", ("train", "{tmp}/bad.json"), "num_classes = 100",
         config(lambda d: d.update(num_classes=100))),
    Case("train-config-input-64", ("train", "{tmp}/bad.json"), "input_size = 64",
         config(lambda d: d.update(input_size=64))),

    # numeric flags
    *(Case(f"{cmd[0]}{flag}={value}", (*cmd, flag, value), fragment)
      for cmd in (TRAIN, SEARCH, BEST) for flag, value, fragment in RECIPE_FLAGS),
    *(Case(f"{cmd[0]}{flag}={value}", (*cmd, flag, value), fragment)
      for cmd in (TRAIN, SEARCH, BEST) for flag, value, fragment in LR_FLAGS),
    Case("train--weight-decay=inf", (*TRAIN, "--weight-decay", "inf"),
         "--weight-decay inf: must be zero or positive, and finite"),
    Case("train--seed-huge", (*TRAIN, "--seed", str(2**64)), "must be a whole number from 0 to 4294967295"),
    *(Case(f"{cmd[0]}--data-fraction={value}", (*cmd, "--data-fraction", value),
           f"--data-fraction {float(value)}: must be in (0, 1]")
      for cmd in (TRAIN, SEARCH) for value in ("0", "1.5")),
    Case("search--val-images=7", ("search", "--val-images", "7"),
         "--val-images 7: must be a positive multiple of 10"),
    Case("search--val-images=0", ("search", "--val-images", "0"), "--val-images 0: must be"),
    Case("search--trials=0", ("search", "--trials", "0"), "--trials 0: give a positive number"),
    Case("search--trials=-3", ("search", "--trials", "-3"), "--trials -3: give a positive number"),
    Case("search-dry-run-checks-flags", ("search", "--dry-run", "--budget-minutes", "0", "--epochs", "0"),
         "--epochs 0: must be"),
    *(Case(f"search--budget-minutes={value}", ("search", "--budget-minutes", value),
           f"--budget-minutes {float(value)}: give the minutes of the final training")
      for value in ("-1", "nan", "inf")),
    Case("search--time-share-at-equal-epochs", ("search", "--budget-minutes", "0", "--time-share", "0.1"),
         "--time-share needs a budget"),
    Case("search--rounds-at-equal-epochs", ("search", "--budget-minutes", "0", "--rounds", "3"),
         "--rounds needs a budget: at equal epochs (--budget-minutes 0) give --epochs"),
    Case("search--epochs-at-equal-time", ("search", "--epochs", "3"),
         "--epochs 3: at equal time (the default) a trial trains in rounds: give --rounds, or "
         "--budget-minutes 0 to search at equal epochs"),
    Case("search--rounds=0", ("search", "--budget-minutes", "10", "--rounds", "0"),
         "--rounds 0: must be a positive whole number"),
    Case("search--time-share=0", ("search", "--budget-minutes", "10", "--time-share", "0"),
         "--time-share 0.0: give a share of the budget in (0, 1]"),
    Case("search--time-share=2", ("search", "--budget-minutes", "10", "--time-share", "2"),
         "--time-share 2.0: must be a share of the budget in (0, 1]"),
    Case("train-best-epochs-and-budget", (*BEST, "--epochs", "5", "--budget-minutes", "3"),
         "--epochs 5 --budget-minutes 3: give one of them"),
    Case("train-best--budget-minutes=-2", (*BEST, "--budget-minutes", "-2"),
         "--budget-minutes -2.0: give the minutes of the final training"),
    Case("train-epochs-and-budget", (*TRAIN, "--epochs", "5", "--budget-minutes", "3"),
         "--epochs 5 --budget-minutes 3: give one of them"),
    Case("train--budget-minutes=nan", (*TRAIN, "--budget-minutes", "nan"),
         "--budget-minutes nan: give the minutes of the final training"),
    Case("train-best--time-of-no-run", (*BEST, "--time-of", "{tmp}/nowhere"),
         "nowhere is not a finished run folder"),
    Case("train--time-of-and-budget", (*TRAIN, "--time-of", "{tmp}", "--budget-minutes", "3"),
         "--budget-minutes 3 --time-of"),
    Case("search--speed-floor=2", (*SEARCH, "--speed-floor", "2"),
         "--speed-floor 2: give a share of the twin's speed in [0, 1]"),
    Case("calibrate-time-fidelity-without-budget", ("calibrate", "--fidelities", "5%x0.25"),
         "a share of a time budget (PERCENT%xFRACTION) needs --budget-minutes"),
    Case("calibrate-epochs-with-budget", ("calibrate", "--budget-minutes", "5", "--fidelities", "3x0.1"),
         "with --budget-minutes every fidelity is a share of it"),
    Case("calibrate-zero-share", ("calibrate", "--budget-minutes", "5", "--fidelities", "0%x0.25"),
         "--fidelities 0%x0.25: give EPOCHSxFRACTION"),
    *(Case(f"{cmd}--max-params=0", (*args, "--max-params", "0"), "--max-params 0 is impossible")
      for cmd, args in (("show", ("show", "reference")), ("search", SEARCH))),
    *(Case(f"{cmd}--max-flops=0", (*args, "--max-flops", "0"), "--max-flops 0 is impossible")
      for cmd, args in (("show", ("show", "reference")), ("search", SEARCH))),
    *(Case(f"{cmd}--min-rf=-1", (*args, "--min-rf", "-1"), "--min-rf -1 is impossible: give 0 or more")
      for cmd, args in (("show", ("show", "reference")), ("search", SEARCH))),
    Case("search-space-missing", ("search", "--space", "{tmp}/nope.toml"), "no such search-space file"),
    Case("search-space-invalid-toml", ("search", "--space", "{tmp}/s.toml"), "not valid TOML",
         text("s.toml", "lr = [")),
    Case("search-space-samples-lr", ("search", "--space", "{tmp}/s.toml"), "lr: unknown key",
         text("s.toml", SPACE.read_text() + "lr = [0.05, 0.4]\n")),
    Case("search-space-width-huge", ("search", "--space", "{tmp}/s.toml"), "channels: widths must be from 1",
         text("s.toml", SPACE.read_text().replace("channels = [[", "channels = [[100000, ", 1))),
    # argparse's own errors
    Case("no-command", (), "the following arguments are required: command", usage=True),
    Case("unknown-command", ("fly",), "invalid choice: 'fly'", usage=True),
    Case("train--epochs-not-a-number", (*TRAIN, "--epochs", "ten"), "invalid int value: 'ten'", usage=True),
    Case("train--lr-not-a-number", (*TRAIN, "--lr", "fast"), "invalid float value: 'fast'", usage=True),
    Case("train--batch-size-float", (*TRAIN, "--batch-size", "1.5"), "invalid int value: '1.5'", usage=True),
    Case("train--optimizer-unknown", (*TRAIN, "--optimizer", "rmsprop"), "invalid choice: 'rmsprop'",
         usage=True),
    Case("search--trials-not-a-number", ("search", "--trials", "many"), "invalid int value: 'many'",
         usage=True),
    Case("search--pruner-unknown", ("search", "--pruner", "x"), "invalid choice: 'x'", usage=True),
    Case("show--max-params-float", ("show", "reference", "--max-params", "1e5"), "invalid int value: '1e5'",
         usage=True),
    Case("train-best--trial-not-a-number", ("train-best", "--trial", "x"), "invalid int value: 'x'",
         usage=True),
    Case("data-unknown-action", ("data", "fetch"), "invalid choice: 'fetch'", usage=True),

    # data folders
    *(Case(f"{cmd[0]}-data-{cid}", (*cmd, "--data-dir", where), fragment, setup)
      for cmd in (("train", "reference", "--out", "{tmp}/out"), ("data", "check"))
      for cid, where, setup, fragment in [
          ("missing", "{tmp}/nowhere", None, "no CIFAR-10 in"),
          ("empty", "{tmp}/empty", folder("empty"), "no CIFAR-10 in"),
          ("a-file", "{tmp}/afile", AFILE, "no CIFAR-10 in"),
          ("empty-layout", "{tmp}/d", folder("d/" + BIN_DIR), "lacks data_batch_1.bin"),
          ("file-missing", "{tmp}/data",
           damaged_data(lambda f: (f / "data_batch_2.bin").unlink()), "lacks data_batch_2.bin"),
          ("truncated", "{tmp}/data", damaged_data(truncate), "test_batch.bin has 613,600 bytes"),
          ("corrupt-label", "{tmp}/data", damaged_data(bad_label), "label 10 is out of range 0-9"),
          ("pickle-truncated", "{tmp}/pydata", python_layout_truncated, "test_batch is partial or corrupt"),
      ]),
    Case("train-data-class-names-wrong", ("train", "reference", "--data-dir", "{tmp}/data"),
         "3 class names, expected 10", meta(b"cat\ndog\nfrog\n")),
    Case("train-data-class-names-not-text", ("train", "reference", "--data-dir", "{tmp}/data"),
         "batches.meta.txt is corrupt", meta(b"\xff\xfe\x00cat\n")),
    Case("data-check-not-official", ("data", "check", "--data-dir", "{data}"), "not the official CIFAR-10"),
    Case("data-download-under-a-file", ("data", "download", "--data-dir", "{tmp}/afile/d"),
         "cannot write CIFAR-10 into", AFILE),
    Case("train-data-too-few-steps", ("train", "reference", "--out", "{tmp}/out", "--data-dir", "{data}",
                                      "--epochs", "1"), "OneCycle needs at least 8 steps"),
    Case("train-data-no-full-batch", ("train", "reference", "--out", "{tmp}/out", "--data-dir", "{data}",
                                      "--batch-size", "5000"), "make no full batch of --batch-size 5000"),
    Case("train-data-validate-too-small", ("train", "reference", "--out", "{tmp}/out", "--data-dir", "{data}",
                                           "--validate"), "n_val=5000 needs 500 images of class"),

    # a search that cannot run: named before its live view draws anything (stdout stays empty)
    Case("search-impossible-fidelity", ("search", "--data-dir", "{data}", "--val-images", "100",
                                        "--trials", "4", "--budget-minutes", "0", "--epochs", "1",
                                        "--data-fraction", "0.02"),
         "make no full batch of --batch-size 256"),
    Case("search-impossible-limits", ("search", "--data-dir", "{data}", "--val-images", "100",
                                      "--trials", "4", "--max-params", "10"), "impossible limits"),

    # storage URLs
    *(Case(f"{cmd[0]}-storage-{cid}", (*cmd, "--storage", url), fragment, setup)
      for cmd in (("search", "--data-dir", "{data}", "--val-images", "100", "--data-fraction", "1",
                   "--batch-size", "64", "--trials", "1", "--budget-minutes", "0", "--epochs", "1"),
                  ("report",), ("train-best",))
      for cid, url, setup, fragment in [
          ("postgres-unreachable", PG_DOWN, None, "cannot open storage"),
          ("malformed", "not a url", None, "cannot open storage not a url"),
          ("unknown-scheme", "nosuchdb://x", None, "cannot open storage nosuchdb://x"),
      ]),
    Case("search-storage-under-a-file", ("search", "--storage", "sqlite:///{tmp}/afile/nas.db",
                                         "--data-dir", "{data}", "--val-images", "100", "--data-fraction",
                                         "1", "--batch-size", "64", "--trials", "1", "--budget-minutes", "0",
                                         "--epochs", "1"),
         "afile is a file, not a folder; choose another --storage", AFILE),
    Case("search-storage-a-folder", ("search", "--storage", "sqlite:///{tmp}/db"), "db is a folder; name a "
         "database file in it", folder("db")),
    *(Case(f"{cmd}-storage-{cid}", (cmd, *args), fragment, setup)
      for cmd in ("report", "train-best")
      for cid, args, setup, fragment in [
          ("default-missing", (), None, "no study storage at runs/nas.db"),
          ("sqlite-folder-missing", ("--storage", "sqlite:///{tmp}/nowhere/nas.db"), None,
           "no study storage at"),
          ("sqlite-file-missing", ("--storage", "sqlite:///{tmp}/nas.db"), None, "no study storage at"),
          ("sqlite-not-a-database", ("--storage", "sqlite:///{tmp}/junk.db"),
           text("junk.db", "this is not a database\n" * 100), "no study storage at"),
          ("study-not-made-by-nas", ("--storage", "sqlite:///{tmp}/s.db", "--study", "s"),
           study("COMPLETE"), "has no stored settings"),
          ("unknown-study", ("--storage", "sqlite:///{tmp}/s.db", "--study", "nope"), study(),
           "no study named 'nope'"),
      ]),
    Case("train-best-no-complete-trial", ("train-best", "--storage", "sqlite:///{tmp}/s.db", "--study", "s"),
         "has no complete feasible trial", study("FAIL", "PRUNED")),
    Case("train-best-no-such-trial", ("train-best", "--storage", "sqlite:///{tmp}/s.db", "--study", "s",
                                      "--trial", "7"), "trial 7 of study s is not a complete trial",
         study("COMPLETE", "FAIL")),
    Case("train-best-failed-trial", ("train-best", "--storage", "sqlite:///{tmp}/s.db", "--study", "s",
                                     "--trial", "1"), "trial 1 of study s is not a complete trial",
         study("COMPLETE", "FAIL")),
    Case("train-best-data-missing", ("train-best", "--storage", "sqlite:///{tmp}/s.db", "--study", "s"),
         "no CIFAR-10 in", nas_study()),
    Case("train-best-already-tested", ("train-best", "--storage", "sqlite:///{tmp}/s.db", "--study", "s",
                                       "--out", "{tmp}/best"), "trial 0 already has a test result from",
         nas_study(tested_out="{tmp}/best")),
    Case("search-study-other-settings", ("search", "--storage", "sqlite:///{tmp}/s.db", "--study", "s",
                                         "--data-dir", "{data}", "--val-images", "100", "--data-fraction",
                                         "1", "--batch-size", "32", "--trials", "1", "--budget-minutes", "0",
                                         "--epochs", "1"),
         "was made with other settings (recipe.batch_size 64 there, 32 here)", nas_study()),
    *(Case(f"{cmd}-storage-empty-file", (cmd, "--storage", "sqlite:///{tmp}/empty.db"),
           "no study storage at", text("empty.db", ""))
      for cmd in ("report", "train-best")),
    Case("compare-no-study", ("compare",), "the following arguments are required: STUDY", usage=True),
    Case("compare-storage-default-missing", ("compare", "s"), "no study storage at runs/nas.db"),
    Case("compare-unknown-study", ("compare", "s", "nope", "--storage", "sqlite:///{tmp}/s.db"),
         "no study named 'nope' in sqlite:///{tmp}/s.db; studies there: s", nas_study()),
    Case("compare-a-study-twice", ("compare", "s", "s", "--storage", "sqlite:///{tmp}/s.db"),
         "study s is given twice", nas_study()),
    Case("compare-markdown-a-folder", ("compare", "s", "--markdown", "{tmp}/docs"),
         "is a folder: give a file name", folder("docs")),

    # where results go
    Case("train-out-is-a-file", (*TRAIN, "--out", "{tmp}/afile"), "is a file, not a folder", AFILE),
    Case("train-out-under-a-file", (*TRAIN, "--out", "{tmp}/afile/run"), "afile is a file, not a folder",
         AFILE),
    Case("train-best-out-under-a-file", (*BEST, "--out", "{tmp}/afile/run"), "afile is a file, not a folder",
         AFILE),
    Case("report-markdown-a-folder", ("report", "--markdown", "{tmp}/docs"), "is a folder: give a file name",
         folder("docs")),
    Case("report-markdown-under-a-file", ("report", "--markdown", "{tmp}/afile/x.md"),
         "afile is a file, not a folder", AFILE),
    # /proc takes no new file even from root, whom os.access lets write anywhere: refused before the table
    *(Case(f"{cmd[0]}-markdown-in-proc", (*cmd, "--storage", "sqlite:///{tmp}/s.db", "--markdown",
                                          "/proc/nope/REPORT.md"), "cannot write in /proc", nas_study())
      for cmd in (("report", "--study", "s"), ("compare", "s"))),
    Case("report-compare-without-markdown", ("report", "--compare", "{tmp}/run"),
         "--compare adds a plot to the results document: give --markdown too"),
    Case("report-compare-not-a-run", ("report", "--markdown", "{tmp}/r.md", "--compare", "{tmp}/empty"),
         "is not a finished run folder", folder("empty")),
    Case("report-compare-an-unfinished-run", ("report", "--markdown", "{tmp}/r.md", "--compare",
                                              "{tmp}/run"), "is not a finished run folder",
         run_folder("checkpoint.pt")),
    Case("train-out-holds-a-run", (*TRAIN, "--out", "{tmp}/run"), "already holds a run",
         run_folder("checkpoint.pt", "metrics.json")),
    Case("train-resume-empty-folder", (*TRAIN, "--resume", "--out", "{tmp}/empty"), "nothing to resume",
         folder("empty")),
    Case("train-resume-no-folder", (*TRAIN, "--resume", "--out", "{tmp}/nowhere"), "nothing to resume"),
    Case("train-resume-finished-run", (*TRAIN, "--resume", "--out", "{tmp}/run"), "holds a finished run",
         run_folder("checkpoint.pt", "metrics.json", recipe=default_recipe())),
    Case("train-resume-other-recipe", (*TRAIN, "--resume", "--out", "{tmp}/run"),
         "was trained with another recipe (lr 0.1 there, 0.2 here)",
         run_folder("checkpoint.pt", recipe=default_recipe(lr=0.1))),
    Case("train-best-resume-empty-folder", (*BEST, "--resume", "--out", "{tmp}/empty"), "nothing to resume",
         folder("empty")),
    Case("train-resume-no-recipe-json", (*TRAIN, "--resume", "--out", "{tmp}/run"),
         "recipe.json", run_folder("checkpoint.pt")),
    Case("train-resume-corrupt-checkpoint", (*TRAIN, "--resume", "--out", "{tmp}/run"),
         "checkpoint.pt", run_folder("checkpoint.pt", recipe=default_recipe())),
    Case("train-resume-other-design", (*TRAIN, "--resume", "--out", "{tmp}/run", "--data-dir", "{data}"),
         "another design", setups(run_folder(recipe=default_recipe(), design=None), torch_checkpoint)),
]


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """`root` and every path under it with (is a folder, size, mtime in ns): a file created and
    removed again (a probe, a journal) shows in its folder's mtime."""
    found = {}
    for path in (root, *root.rglob("*")):
        st = path.lstat()
        found[str(path.relative_to(root))] = (path.is_dir(), st.st_size, st.st_mtime_ns)
    return found


@pytest.fixture
def in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the current folder; $NAS_DATA_DIR names a folder that is not there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NAS_DATA_DIR", str(tmp_path.parent / f"{tmp_path.name}-no-data"))
    return tmp_path


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_bad_input(case: Case, in_empty_folder: Path, tiny_data_dir: Path, capsys, recwarn) -> None:
    tmp = in_empty_folder
    if case.setup is not None:
        case.setup(tmp, tiny_data_dir)
    before = snapshot(tmp)
    capsys.readouterr()
    args = [arg.format(tmp=tmp, data=tiny_data_dir) for arg in case.args]
    try:
        code = main(args)
    except SystemExit as exit:  # argparse
        code = exit.code
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert "Traceback" not in err, err
    assert out == "", f"printed before the error: {out!r}"
    if case.usage:
        assert lines and lines[0].startswith("usage: nas"), err
        assert lines[-1].startswith("nas") and ": error: " in lines[-1], err
    else:
        assert len(lines) == 1 and lines[0].startswith("nas: error: "), err
    assert case.fragment.format(tmp=tmp) in lines[-1], err
    assert code == case.code, err
    assert snapshot(tmp) == before, "files were created or changed"
    # a warning the user would see (DeprecationWarning is hidden outside __main__) is a second line
    shown = [w for w in recwarn if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning)]
    assert not shown, [str(w.message) for w in shown]


def test_the_table_is_large_and_ids_are_unique() -> None:
    assert len(CASES) >= 80
    assert len({case.id for case in CASES}) == len(CASES)


# --- positive controls: the same paths with good input work ---

def test_shipped_design_name_and_file_work(in_empty_folder: Path, capsys) -> None:
    before = REFERENCE.read_bytes()
    assert main(["show", "reference", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["params"] == 197_472 and out.err == ""
    (in_empty_folder / "ref.json").write_text(json.dumps(REF))
    assert main(["show", str(in_empty_folder / "ref.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == 197_472
    assert REFERENCE.read_bytes() == before


def test_dry_run_with_valid_flags_stores_nothing(in_empty_folder: Path, capsys) -> None:
    before = snapshot(in_empty_folder)
    assert main(["search", "--dry-run", "--trials", "3", "--budget-minutes", "0", "--epochs", "1"]) == 0
    assert "dry run of 3 sampled designs" in capsys.readouterr().out
    assert snapshot(in_empty_folder) == before


def test_a_real_process_prints_one_line_and_no_warning(tmp_path: Path) -> None:
    """The console entry point as a user runs it: warnings and logging reach stderr here."""
    path = tmp_path / "neg.toml"
    path.write_text("[[blocks]]\nchannels = -3\n")
    proc = subprocess.run([sys.executable, "-m", "nas", "show", str(path)], capture_output=True,
                          text=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"nas: error: {path}: blocks[0].channels: must be a positive integer, got -3\n"


@pytest.mark.parametrize("read_first_line", [True, False], ids=["head-1", "closed-at-once"])
@pytest.mark.parametrize("flags", [["--json"], []], ids=["json", "table"])
def test_closed_pipe_is_quiet(tmp_path: Path, flags: list[str], read_first_line: bool) -> None:
    """`nas show reference --json | head -1`: nothing on stderr (no traceback, no "Exception
    ignored") when the reader goes away, after one line or before anything was written."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_ALBUMENTATIONS_UPDATE="1")
    env.pop("PYTHONUNBUFFERED", None)  # buffered, as for most users: the write comes at the end
    proc = subprocess.Popen([sys.executable, "-m", "nas", "show", "reference", *flags], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if read_first_line:
        assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    code = proc.wait(timeout=120)
    assert err == "", err
    assert code in (0, 1, 141), code  # 1: rich's own broken-pipe exit; 141: nas.cli.main's, as a shell's
    assert list(tmp_path.iterdir()) == []
