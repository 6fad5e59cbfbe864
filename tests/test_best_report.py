"""train-best and report on a tiny synthetic study."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

import optuna
import pytest
import torch

import nas
from nas.cli.main import main
from nas.training.presets import preset_for
from nas.training.recipe import Recipe
from tests.conftest import ROOT
from tests.test_search import BLOCKING, search_args

TRAIN = ["--batch-size", "32", "--workers", "0"]


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_data_dir):
    """A 5-trial study: trial 0 pruned by constraint, the rest trained on tiny data."""
    root = tmp_path_factory.mktemp("study")
    assert main(search_args(root, tiny_data_dir, 5, "tiny")) == 0
    return root


def common(root, data_dir) -> list[str]:
    return ["--study", "tiny", "--storage", f"sqlite:///{root}/nas.db"]


def test_train_best_then_report(study, tiny_data_dir, tmp_path, capsys) -> None:
    out = tmp_path / "best"
    train_best = ["train-best", *common(study, tiny_data_dir), "--epochs", "2", "--out", str(out),
                  "--data-dir", str(tiny_data_dir), *TRAIN]
    assert main(train_best) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_split"] == "test" and metrics["train_images"] == 1_000
    assert (out / "config.toml").exists() and (out / "config.json").exists()
    assert len((out / "log.jsonl").read_text().splitlines()) == 2
    model = nas.build_model(nas.load_config(out / "config.toml"))  # README's loading snippet
    model.load_state_dict(torch.load(out / "checkpoint.pt")["model"])
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    opening = " ".join(capsys.readouterr().out.split()).split("saving in")[0]  # names every knob
    assert "for 2 epochs" in opening and "no decay on BatchNorm and biases" in opening
    assert "BatchNorm-bias lr ×4" in opening and "lr 0.2" in opening
    doc = tmp_path / "report" / "REPORT.md"
    reference = tmp_path / "reference"  # a run to compare with: the reference, 3 epochs
    train_reference = ["train", "reference", "--epochs", "3", "--out", str(reference),
                       "--data-dir", str(tiny_data_dir), *TRAIN]
    assert main(train_reference) == 0
    capsys.readouterr()
    assert main(["report", *common(study, tiny_data_dir), "--markdown", str(doc),
                 "--compare", str(reference)]) == 0
    table = capsys.readouterr().out
    assert "pruned: constraint" in table and "★ best" in table and "img/s" in table
    assert f"{metrics['accuracy']:.4f}" in table  # the test accuracy is written back
    text = doc.read_text()
    for part in ("## Trials", "breaks depthwise_separable", "## Best design", "```mermaid", "Train-best",
                 "REPORT-history.png", "REPORT-params.png", "REPORT-speed.png", "REPORT-curves.png",
                 "## Measured training speed against FLOPs: Spearman ρ = ",
                 "REPORT-confusion.png", "### Per class", "## Test accuracy against epochs",
                 "REPORT-epochs.png", "| [best](../best) | ", "| [reference](../reference) | 197,472 | 3 |"):
        assert part in text, part
    for png in doc.parent.glob("*.png"):
        assert png.read_bytes()[:4] == b"\x89PNG"
    assert len(list(doc.parent.glob("*.png"))) == 6
    # the commands that remade it: each run's own, flags and all (a bare `nas train-best` would
    # train 100 epochs), and the search's with every setting the study was made with
    commands = re.findall(r"^- `(.*)`$", text.split("## Trials")[0], re.M)
    assert commands[1:] == ["nas " + " ".join(train_best), "nas " + " ".join(train_reference),
                            f"nas report {' '.join(common(study, tiny_data_dir))} --markdown {doc} "
                            f"--compare {reference}"]
    for flag in ("--trials 5", f"--storage sqlite:///{study}/nas.db", "--epochs 2",
                 "--data-fraction 0.25", "--val-images 200", "--batch-size 32", "--fill-params 0.0"):
        assert f"{flag} " in commands[0] + " ", flag


def test_report_plots_every_train_best_run(study, tiny_data_dir, tmp_path, monkeypatch, capsys) -> None:
    """`--trial N` trains into runs/<study>/trial-N by default, beside the best's `best/`, and
    the report plots it against epochs with no --compare; a second seed of it is plotted too, and
    the two give a mean and spread."""
    trials = optuna.load_study(study_name="tiny", storage=common(study, None)[3]).trials
    other = next(t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE
                 and t.number != max((t for t in trials if t.values), key=lambda t: t.values[0]).number)
    monkeypatch.chdir(tmp_path)
    assert main(["train-best", *common(study, tiny_data_dir), "--trial", str(other), "--epochs", "1",
                 "--data-dir", str(tiny_data_dir), *TRAIN]) == 0
    assert (tmp_path / "runs" / "tiny" / f"trial-{other}" / "metrics.json").is_file()
    seed1 = tmp_path / "runs" / "tiny" / f"trial-{other}-seed1"
    assert main(["train-best", *common(study, tiny_data_dir), "--trial", str(other), "--epochs", "1",
                 "--seed", "1", "--out", str(seed1), "--data-dir", str(tiny_data_dir), *TRAIN]) == 0
    capsys.readouterr()
    assert main(["report", *common(study, tiny_data_dir), "--markdown", "doc/REPORT.md"]) == 0
    text = (tmp_path / "doc" / "REPORT.md").read_text()
    assert "## Test accuracy against epochs" in text and f"[trial-{other}](../runs/tiny/trial-{other})" in text
    assert f"[trial-{other}-seed1](../runs/tiny/trial-{other}-seed1)" in text
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (seed1.with_name(f"trial-{other}"), seed1)]
    accuracies = [m["accuracy"] * 100 for m in metrics]
    spread = next(line for line in text.splitlines() if line.startswith(f"{metrics[0]['design']}, 1 epochs, 2 runs"))
    assert f"mean {statistics.mean(accuracies):.2f} ± {statistics.stdev(accuracies):.2f}" in spread


def test_train_best_trains_with_the_study_recipe(study, tiny_data_dir, tmp_path) -> None:
    out = tmp_path / "best"  # no recipe flag but --epochs and --label-smoothing
    assert main(["train-best", *common(study, tiny_data_dir), "--epochs", "1", "--label-smoothing",
                 "0.2", "--out", str(out), "--data-dir", str(tiny_data_dir), "--workers", "0"]) == 0
    recipe = json.loads((out / "recipe.json").read_text())
    searched = optuna.load_study(study_name="tiny", storage=common(study, None)[3]).user_attrs
    preset = preset_for(1)  # train-best's knobs for its epochs, under the flags given
    assert recipe == (searched["settings"]["recipe"] | preset.knobs | {"preset": preset.name}
                      | {"epochs": 1, "label_smoothing": 0.2})
    assert recipe["batch_size"] == 32 != Recipe().batch_size  # the study's, not the default


def test_predict_and_export_a_finished_run(study, tiny_data_dir, tmp_path, capsys) -> None:
    from PIL import Image

    out = tmp_path / "run"
    assert main(["train", "reference", "--epochs", "1", "--out", str(out), "--data-dir",
                 str(tiny_data_dir), *TRAIN]) == 0
    assert (out / "model.pt").is_file()
    png, jpeg = tmp_path / "a.png", tmp_path / "b.jpg"
    Image.new("RGB", (32, 32), (250, 10, 10)).save(png)
    Image.new("RGB", (64, 48), (10, 10, 250)).save(jpeg)
    capsys.readouterr()
    assert main(["predict", str(out), str(png), str(jpeg), "--top", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{png}: ") and lines[0].count("%") == 2
    assert main(["predict", str(out), str(tmp_path / "missing.png")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    pytest.importorskip("onnxruntime")
    assert main(["export", str(out), "--out", str(tmp_path / "m.onnx")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 100_000


def test_train_best_resumes_after_kill(study, tiny_data_dir, tmp_path, capsys) -> None:
    """kill -9 in epoch 4 of 6: rerun, the run is not overwritten; with --resume it continues
    after epoch 3, its last finished one, and ends with all six."""
    out, marker = tmp_path / "best", tmp_path / "blocked"
    args = ["train-best", *common(study, tiny_data_dir), "--epochs", "6", "--out", str(out),
            "--data-dir", str(tiny_data_dir), *TRAIN]
    # the real command, blocked once epoch 4 has started (see tests/helpers/blocking_search.py)
    proc = subprocess.Popen([sys.executable, str(BLOCKING), str(marker), "epoch:4", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.time() + 300  # against a hang only: the marker says when it is blocked
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert len((out / "log.jsonl").read_text().splitlines()) == 3
    capsys.readouterr()
    assert main(args) == 2 and "already holds a run" in capsys.readouterr().err  # nothing overwritten
    assert main([*args, "--resume"]) == 0
    assert "resuming from epoch 3" in capsys.readouterr().out
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2, 3, 4, 5, 6]
    results = optuna.load_study(study_name="tiny", storage=common(study, None)[3]).user_attrs["test_results"]
    assert [run["epochs"] for runs in results.values() for run in runs.values()
            if run["out"] == str(out)] == [6]  # the resumed run's test result, recorded once


def test_unknown_study_lists_the_existing_ones(study, tiny_data_dir, capsys) -> None:
    storage = ["--storage", f"sqlite:///{study}/nas.db"]
    assert main(["report", "--study", "nope", *storage]) == 2
    err = capsys.readouterr().err
    assert "no study named 'nope'" in err and "tiny" in err and err.count("\n") == 1
    assert main(["train-best", "--study", "nope", *storage]) == 2


def test_empty_and_all_pruned_studies(tmp_path, tiny_data_dir, capsys) -> None:
    import optuna

    storage = f"sqlite:///{tmp_path}/nas.db"
    optuna.create_study(study_name="empty", storage=storage)
    assert main(["report", "--study", "empty", "--storage", storage]) == 0
    assert "no trials yet" in capsys.readouterr().out
    assert main(search_args(tmp_path, tiny_data_dir, 2, "pruned", "--max-params", "60000")) == 0
    capsys.readouterr()
    doc = tmp_path / "r" / "REPORT.md"
    assert main(["report", "--study", "pruned", "--storage", storage, "--markdown", str(doc)]) == 0
    assert "pruned: constraint" in capsys.readouterr().out
    assert "## Best design" not in doc.read_text()
    assert main(["train-best", "--study", "pruned", "--storage", storage]) == 2
    assert "no complete feasible trial" in capsys.readouterr().err
