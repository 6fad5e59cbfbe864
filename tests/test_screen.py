"""`nas screen`: a recipe screen from its TOML file trains every variant at every seed on the
validation split, tabulates them, continues after a stop, adopts `nas train --validate` folders of
the same recipe, refuses another run's folder, and names bad input in one line. A tiny design on a
CIFAR-10 look-alike just large enough for the 5,000-image hold-out."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from nas.cli.main import main
from nas.cli.views import TrainingBars
from nas.training.screen import Row, Screen, load_screen, summary_rows

RUNTIME = ["--device", "cpu", "--precision", "fp32", "--workers", "0"]
TINY = """name = "tiny"
[[blocks]]
channels = 8
convs = [{ stride = 2 }]
[[blocks]]
channels = 8
convs = [{ stride = 2 }]
"""
# 1 epoch of 10 steps on half the 320 search-training images, scored on the 5,000 held out
RECIPE = {"epochs": 1, "batch_size": 16}
FRACTION = 0.5


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Six files of 1,064 images (the loader wants them alike): 532 training images a class, 500
    of them held out, 32 left; the red channel encodes the class."""
    import numpy as np

    from nas.data.cifar10 import BIN_DIR, FILES, to_records

    root = tmp_path_factory.mktemp("screen-cifar")
    (root / BIN_DIR).mkdir()
    rng = np.random.default_rng(0)
    for name in FILES:
        labels = np.arange(1_064) % 10
        images = rng.integers(0, 256, (len(labels), 32, 32, 3), dtype=np.uint8)
        images[..., 0] = (labels * 25)[:, None, None]
        to_records(images, labels).tofile(root / BIN_DIR / name)
    return root


def write_screen(folder: Path, variants: dict, seeds: tuple[int, ...] = (0,), base: str | None = None,
                 recipe: dict | None = None, fraction: float = FRACTION) -> Path:
    """A screen file of the tiny design in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny.toml").write_text(TINY)
    path = folder / "screen.toml"
    path.write_text(tomli_w.dumps({"design": "tiny.toml", "seeds": list(seeds), "data_fraction": fraction,
                                   "base": base or next(iter(variants)),
                                   "recipe": RECIPE if recipe is None else recipe, "variants": variants}))
    return path


def screen_argv(path: Path, out: Path, data_dir: Path) -> list[str]:
    return ["screen", str(path), "--out", str(out), "--data-dir", str(data_dir), *RUNTIME]


def screen(path: Path, out: Path, data_dir: Path, *more: str) -> int:
    return main([*screen_argv(path, out, data_dir), *more])


def files_of(out: Path) -> dict[str, tuple[bytes, int]]:
    """Every file in the run folders: its bytes and modification time."""
    return {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(out.glob("*-s*/*"))}


@pytest.fixture(scope="module")
def screened(tmp_path_factory, data_dir) -> tuple[Path, Path, str, str]:
    """A finished screen of 2 variants × 2 seeds: its file, folder and command line, and what it printed."""
    root = tmp_path_factory.mktemp("screen")
    path = write_screen(root, {"plain": {}, "scaled": {"norm_bias_lr_scale": 4.0}}, seeds=(0, 1))
    argv = screen_argv(path, root / "out", data_dir)
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main(argv) == 0
    return path, root / "out", shlex.join(["nas", *argv]), printed.getvalue()


def test_screen_trains_seed_by_seed_and_tabulates_mean_sd_and_gain(screened) -> None:
    _, out, command, printed = screened
    lines = [line.split(";")[0] for line in printed.splitlines() if line.startswith("run ")]
    assert lines == ["run 1 of 4: plain seed 0", "run 2 of 4: scaled seed 0",
                     "run 3 of 4: plain seed 1", "run 4 of 4: scaled seed 1"]
    runs = [line for line in printed.splitlines() if line.startswith("run ")]
    assert ";" not in runs[0]  # no ETA before a run has taken its time
    assert all(re.fullmatch(r"about \d+ min left", line.split("; ")[1]) for line in runs[1:])
    metrics = {}
    for variant in ("plain", "scaled"):
        for seed in (0, 1):
            folder = out / f"{variant}-s{seed}"
            metrics[variant, seed] = m = json.loads((folder / "metrics.json").read_text())
            recipe = json.loads((folder / "recipe.json").read_text())
            assert (m["eval_split"], m["eval_images"], m["train_images"], m["data_fraction"]) == \
                ("val", 5_000, 160, FRACTION)
            assert (recipe["seed"], recipe["epochs"], recipe["norm_bias_lr_scale"]) == \
                (seed, 1, 4.0 if variant == "scaled" else 1.0)
            assert m["command"] == command
    saved = json.loads((out / "screen.json").read_text())
    rows = {r["variant"]: r for r in saved["rows"]}
    acc = {v: [round(metrics[v, s]["accuracy"] * 100, 2) for s in (0, 1)] for v in ("plain", "scaled")}
    for variant, row in rows.items():
        assert row["seeds"] == [0, 1] and row["accuracy"] == acc[variant]
        assert row["mean"] == pytest.approx(statistics.mean(acc[variant]))
        assert row["sd"] == pytest.approx(statistics.stdev(acc[variant]))
    gain = rows["scaled"]["mean"] - rows["plain"]["mean"]
    assert rows["scaled"]["vs_base"] == pytest.approx(gain) and rows["plain"]["vs_base"] == 0
    assert rows["scaled"]["gain_beyond_spread"] == (gain > max(rows["scaled"]["sd"], rows["plain"]["sd"]))
    assert not rows["plain"]["gain_beyond_spread"]
    assert [r["variant"] for r in saved["rows"]] == sorted(rows, key=lambda v: -rows[v]["mean"])
    document = (out / "screen.md").read_text()
    plain = rows["plain"]
    assert (f"| plain | 2 | {acc['plain'][0]:.2f} {acc['plain'][1]:.2f} | **{plain['mean']:.2f}** ± "
            f"{plain['sd']:.2f} | base |") in document
    assert f"| {gain:+.2f} |" in document and "Machine: " in document
    assert f"Command: `{command}`" in document


def test_a_rerun_trains_nothing_and_changes_no_run(screened, data_dir, capsys) -> None:
    path, out, _, _ = screened
    before = files_of(out)
    assert screen(path, out, data_dir) == 0
    assert "0 runs to train, 4 finished" in capsys.readouterr().out
    assert files_of(out) == before
    assert screen(path, out, data_dir, "--table") == 0  # the table alone: no data, no training
    assert files_of(out) == before and "scaled" in capsys.readouterr().out


def test_an_interrupted_screen_continues_where_it_stopped(tmp_path, data_dir, monkeypatch, capsys) -> None:
    path = write_screen(tmp_path, {"plain": {}}, recipe={**RECIPE, "epochs": 2})
    out = tmp_path / "out"
    started = TrainingBars.epoch_started

    def stop_at_epoch_2(self, epoch: int, epochs: int, steps: int) -> None:
        if epoch == 2:
            raise KeyboardInterrupt
        started(self, epoch, epochs, steps)

    monkeypatch.setattr(TrainingBars, "epoch_started", stop_at_epoch_2)
    assert screen(path, out, data_dir) == 130
    err = capsys.readouterr().err
    assert f"Continue with: nas screen {path} --out {out}" in err and "--resume" not in err
    assert (out / "plain-s0" / "checkpoint.pt").exists() and not (out / "plain-s0" / "metrics.json").exists()
    monkeypatch.setattr(TrainingBars, "epoch_started", started)
    assert screen(path, out, data_dir) == 0
    printed = capsys.readouterr().out
    assert "run 1 of 1: plain seed 0 (resumed)" in printed and "resuming from epoch 1" in printed
    assert json.loads((out / "plain-s0" / "metrics.json").read_text())["epochs"] == 2


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir) -> Path:
    """A run folder of `nas train --validate` on the tiny design, as a screen's seed 0 would be."""
    root = tmp_path_factory.mktemp("trained")
    (root / "tiny.toml").write_text(TINY)
    assert main(["train", str(root / "tiny.toml"), "--validate", "--data-fraction", str(FRACTION),
                 "--epochs", "1", "--batch-size", "16", "--seed", "0", "--out", str(root / "run"),
                 "--data-dir", str(data_dir), *RUNTIME]) == 0
    return root / "run"


def its_recipe(run: Path) -> dict:
    """The recipe `nas train` saved, as a variant's keys (whatever its defaults and presets set)."""
    return {k: v for k, v in json.loads((run / "recipe.json").read_text()).items() if k != "seed"}


def test_a_nas_train_validate_folder_of_the_same_recipe_is_adopted(tmp_path, trained, data_dir,
                                                                    capsys) -> None:
    path = write_screen(tmp_path, {"plain": its_recipe(trained)}, recipe={})
    shutil.copytree(trained, tmp_path / "out" / "plain-s0")
    before = files_of(tmp_path / "out")
    assert screen(path, tmp_path / "out", data_dir) == 0
    assert "0 runs to train, 1 finished" in capsys.readouterr().out
    assert files_of(tmp_path / "out") == before
    row = json.loads((tmp_path / "out" / "screen.json").read_text())["rows"][0]
    assert row["accuracy"] == [round(json.loads((trained / "metrics.json").read_text())["accuracy"] * 100, 2)]


@pytest.mark.parametrize("change,named", [
    ("recipe", "another recipe (lr {lr} there, 0.1 here)"), ("split", "scored on 5000 test images"),
    ("share", f"a {FRACTION} share of the images")])
def test_a_finished_folder_of_another_run_is_refused_before_anything_trains(
        tmp_path, trained, data_dir, capsys, change, named) -> None:
    saved = its_recipe(trained)
    recipe = saved | ({"lr": 0.1} if change == "recipe" else {})
    path = write_screen(tmp_path, {"plain": recipe, "other": {**recipe, "mixup": 0.2}}, recipe={},
                        fraction=1.0 if change == "share" else FRACTION)
    out = tmp_path / "out"
    shutil.copytree(trained, out / "plain-s0")
    if change == "split":
        metrics = json.loads((out / "plain-s0" / "metrics.json").read_text()) | {"eval_split": "test"}
        (out / "plain-s0" / "metrics.json").write_text(json.dumps(metrics))
    assert screen(path, out, data_dir) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"nas: error: {out / 'plain-s0'} holds a finished run of")
    assert named.format(lr=saved["lr"]) in err
    assert len(err.splitlines()) == 1 and sorted(p.name for p in out.iterdir()) == ["plain-s0"]


HEAD = 'design = "tiny.toml"\nseeds = [0]\nbase = "a"\n'


@pytest.mark.parametrize("text,named", [
    (None, "screen.toml: <file>: no such screen file"),
    ("seeds = [0", "screen.toml: <file>: not valid TOML"),
    (HEAD + "colour = 1\n[variants.a]", "screen.toml: colour: unknown key"),
    (HEAD.replace('"a"', '"b"') + "[variants.a]", "screen.toml: base: 'b' is none of the variants (a)"),
    (HEAD + "variants = {}", "screen.toml: variants: no variant"),
    (HEAD + "[variants.a]\nlrr = 1.0", "screen.toml: variants.a.lrr: unknown key"),
    (HEAD + "[variants.a]\nlr = -1.0", "screen.toml: variants.a: --lr -1.0: must be positive"),
    (HEAD + "[recipe]\nepochs = 0\n[variants.a]", "screen.toml: recipe: --epochs 0"),
    (HEAD + "[variants.a]\nseed = 3", "screen.toml: variants.a.seed: the seeds are"),
    (HEAD.replace("[0]", "[0, 0]") + "[variants.a]", "screen.toml: seeds: a seed is given twice"),
    (HEAD + "data_fraction = 0.0\n[variants.a]", "screen.toml: data_fraction: must be in (0, 1]"),
    (HEAD + "val_images = 0\n[variants.a]", "screen.toml: val_images: must be a positive number"),
    (HEAD + "[variants.a.5]\nema = 0.9", 'quote a name that holds a dot, [variants."a.5"]'),
    (HEAD.replace("tiny", "none") + "[variants.a]", "screen.toml: design: "),
])
def test_bad_screen_files_are_one_line_and_write_nothing(tmp_path, capsys, text, named) -> None:
    (tmp_path / "tiny.toml").write_text(TINY)
    if text is not None:
        (tmp_path / "screen.toml").write_text(text)
    assert main(["screen", str(tmp_path / "screen.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nas: error: ") and named in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_table_of_nothing_finished_is_refused(tmp_path, capsys) -> None:
    path = write_screen(tmp_path, {"a": {}})
    assert main(["screen", str(path), "--out", str(tmp_path / "out"), "--table"]) == 2
    assert f"no finished run of {path} in {tmp_path / 'out'}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_screen_file_round_trips(tmp_path) -> None:
    path = write_screen(tmp_path, {"a": {}, "b": {"augment": {"flip": "alternating"}}}, seeds=(2, 0),
                        base="b", recipe={"epochs": 3, "augment": {"p_cutout": 0.2}})
    loaded = load_screen(path)
    (tmp_path / "again.toml").write_text(tomli_w.dumps(loaded.to_dict()))
    assert load_screen(tmp_path / "again.toml") == loaded
    recipe = loaded.variant_recipe("b", 0)  # the augment tables merged key by key
    assert (recipe.augment.flip, recipe.augment.p_cutout, recipe.epochs) == ("alternating", 0.2, 3)


def test_rows_of_one_seed_or_none_make_no_claim() -> None:
    plan = Screen("tiny.toml", (0, 1), "a", {"a": {}, "b": {}, "c": {}})
    run = {"accuracy": 0.5, "accuracy_flip_tta": 0.5, "wall_seconds": 60.0}
    rows = summary_rows(plan, {("a", 0): run, ("a", 1): run | {"accuracy": 0.52},
                               ("b", 0): run | {"accuracy": 0.9}})
    assert [r.variant for r in rows] == ["b", "a", "c"] and rows[2] == Row("c")
    assert rows[0].vs_base == pytest.approx(39.0) and rows[0].sd is None and not rows[0].gain_beyond_spread


def test_screen_help_names_its_default_folder_and_imports_no_heavy_library() -> None:
    code = ("import sys\nfrom nas.cli.main import main\ntry:\n    main(['screen', '--help'])\n"
            "except SystemExit:\n    pass\nprint('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "runs/screen-<file stem>" in re.sub(r"-\s+", "-", " ".join(out.split()))
    assert out.strip().endswith("False")


def test_a_screen_scores_on_its_own_hold_out_size(tmp_path, tiny_data_dir) -> None:
    """`val_images` as `nas search --val-images`: here the tiny data set's 200 of its 1,000."""
    path = write_screen(tmp_path, {"plain": {}})
    path.write_text("val_images = 200\n" + path.read_text())  # a top-level key: before the tables
    assert screen(path, tmp_path / "out", tiny_data_dir) == 0
    metrics = json.loads((tmp_path / "out" / "plain-s0" / "metrics.json").read_text())
    assert (metrics["eval_split"], metrics["eval_images"], metrics["train_images"]) == ("val", 200, 400)
    assert "scored on the 200 held-out" in (tmp_path / "out" / "screen.md").read_text()
