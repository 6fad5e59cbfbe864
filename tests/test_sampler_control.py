"""The search against random sampling, on tiny synthetic data: `nas search --sampler random`,
the truth of a search's best design (`nas train-best --validate`) and `nas compare`."""

from __future__ import annotations

import dataclasses
import json
import statistics

import optuna
import pytest
from optuna.trial import TrialState

import nas.cli.train
import nas.search.dry_run
import nas.search.optimize
from nas.cli.main import main
from nas.data.cifar10 import load_cifar10
from nas.report.runs import made_by
from nas.search.settings import EQUAL_TIME, TIME_SHARE, Fidelity, StudySettings, truth_epochs
from nas.search.space import TWIN, load_space
from nas.search.trials import COST, best_trial, pruned_by, record_result, recorded_results
from nas.training.recipe import Recipe, fixed_part
from tests.test_search import load, search_args

SMALL = ("--max-params", "120000")  # the baselines and some sampled designs break it


@pytest.fixture(scope="module")
def random_search(tmp_path_factory, tiny_data_dir):
    """A 5-trial random-sampler study (seed 0) whose parameter limit some designs break, and the
    samplers the search made."""
    root = tmp_path_factory.mktemp("random")
    made = []
    real = nas.search.optimize.make_sampler
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nas.search.optimize, "make_sampler",
                      lambda name, seed: made.append(real(name, seed)) or made[-1])
        assert main(search_args(root, tiny_data_dir, 5, "r", "--sampler", "random", *SMALL)) == 0
    return root, made


def test_a_random_search_runs_the_baselines_first_and_prunes_broken_designs_untrained(random_search):
    root, made = random_search
    assert [type(s) for s in made] == [optuna.samplers.RandomSampler]
    study = load(root, "r")
    assert study.user_attrs["settings"]["sampler"] == "random"
    trials = study.trials
    assert [t.user_attrs.get("baseline") for t in trials[:2]] == ["reference", "reference, C2 conv2 separable"]
    assert not any("baseline" in t.user_attrs for t in trials[2:])
    broken = [t for t in trials if pruned_by(t) == "constraint"]
    assert [t for t in broken if "baseline" not in t.user_attrs], "no sampled design broke a rule"
    for trial in broken:  # pruned before training: no epoch, no training second
        assert trial.state == TrialState.PRUNED and "params" in trial.user_attrs["broken"]
        assert trial.user_attrs.get("epochs_run", 0) == 0 and "train_seconds" not in trial.user_attrs
        assert trial.constraints["params"] > 0
    assert study.get_trials(states=(TrialState.COMPLETE,)), "no sampled design trained"


def test_the_dry_run_uses_the_chosen_sampler(monkeypatch, capsys) -> None:
    made = []
    real = nas.search.dry_run.make_sampler
    monkeypatch.setattr(nas.search.dry_run, "make_sampler",
                        lambda name, seed: made.append(real(name, seed)) or made[-1])
    assert main(["search", "--dry-run", "--trials", "3", "--sampler", "random"]) == 0
    assert [type(s) for s in made] == [optuna.samplers.RandomSampler]
    assert "(random sampler;" in capsys.readouterr().out


def test_train_best_validate_records_the_truth_and_never_reads_the_test_set(
        random_search, tiny_data_dir, tmp_path, monkeypatch, capsys) -> None:
    root, _ = random_search
    storage = f"sqlite:///{root}/nas.db"
    monkeypatch.chdir(tmp_path)

    def no_test_set(folder):  # any use of the test images fails
        return dataclasses.replace(load_cifar10(folder), test_images=None, test_labels=None)

    monkeypatch.setattr("nas.cli.train.load_cifar10", no_test_set)
    args = ["train-best", "--study", "r", "--storage", storage, "--validate", "--data-dir",
            str(tiny_data_dir), "--batch-size", "32", "--workers", "0"]
    seen = {}

    def interrupted_at_once(spec, data, runtime):
        seen.update(recipe=spec.recipe, split=spec.split)  # the default epochs, without training 10
        raise KeyboardInterrupt

    real = nas.cli.train.train_and_test
    monkeypatch.setattr(nas.cli.train, "train_and_test", interrupted_at_once)
    assert main([*args, "--out", "first"]) == 130
    stored = load(root, "r").user_attrs["settings"]["recipe"]
    assert seen["split"] == "val" and seen["recipe"].epochs == truth_epochs() == 10
    assert seen["recipe"].to_dict() == stored | {"epochs": 10}  # as searched: no final knob
    monkeypatch.setattr(nas.cli.train, "train_and_test", real)
    assert main([*args, "--epochs", "2"]) == 0
    out = tmp_path / "runs" / "r" / "best-val"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval_split"] == "val" and metrics["eval_images"] == 200
    assert metrics["train_images"] == 800 and metrics["epochs"] == 2
    study = load(root, "r")
    best = best_trial(study).number
    assert recorded_results(study, "val") == {best: [{
        "accuracy": metrics["accuracy"], "epochs": 2, "out": "runs/r/best-val",
        "wall_seconds": metrics["wall_seconds"]}]}
    assert "test_results" not in study.user_attrs
    capsys.readouterr()
    assert main(["report", "--study", "r", "--storage", storage]) == 0
    table = capsys.readouterr().out
    assert "truth acc" in table and f"{metrics['accuracy']:.4f}" in table
    assert "5 trials (random sampler)" in table
    assert main(["report", "--study", "r", "--storage", storage, "--markdown", "doc.md"]) == 0
    assert f"- `{made_by(metrics)}`" in (tmp_path / "doc.md").read_text()  # the truth's command
    assert main([*args, "--epochs", "2"]) == 2  # one folder, one run
    assert "runs/r/best-val already holds a run" in capsys.readouterr().err


SEEDS = {"tpe-0": ("tpe", 0), "tpe-1": ("tpe", 1), "random-0": ("random", 0), "random-1": ("random", 1)}


@pytest.fixture(scope="module")
def searches(tmp_path_factory, tiny_data_dir):
    """Two tiny TPE and two tiny random studies with other seeds (each trains its twin), and one
    at another fidelity (every design over its budget: nothing trained)."""
    root = tmp_path_factory.mktemp("compare")
    for name, (sampler, seed) in SEEDS.items():
        assert main(search_args(root, tiny_data_dir, 2, name, "--sampler", sampler,
                                "--seed", str(seed))) == 0
    assert main(search_args(root, tiny_data_dir, 1, "other", "--epochs", "3", "--max-params", "60000")) == 0
    return root


def test_compare_writes_the_table_and_the_plot(searches, tmp_path, capsys) -> None:
    storage = f"sqlite:///{searches}/nas.db"
    studies = {name: load(searches, name) for name in SEEDS}
    for name, truth in (("tpe-0", 0.61), ("tpe-1", 0.64), ("random-0", 0.58)):  # random-1: none
        study = studies[name]
        record_result(study, best_trial(study), {"accuracy": truth, "epochs": 10, "out": f"runs/{name}",
                                                 "wall_seconds": 1.0}, "val")
    doc = tmp_path / "control" / "REPORT.md"
    capsys.readouterr()
    assert main(["compare", *SEEDS, "--storage", storage, "--markdown", str(doc)]) == 0
    out = capsys.readouterr().out
    text = doc.read_text()
    scores = {name: best_trial(study).values[0] for name, study in studies.items()}
    for sampler in ("tpe", "random"):
        group = [scores[name] for name, (s, _) in SEEDS.items() if s == sampler]
        spread = f"{statistics.mean(group):.4f} ± {statistics.stdev(group):.4f}"
        assert spread in out and spread in text, spread
    truths = f"{statistics.mean([0.61, 0.64]):.4f} ± {statistics.stdev([0.61, 0.64]):.4f}"
    assert truths in out and truths in text
    assert "| random | 2 | " in text and "| 0.5800 | 1 of 2 |" in text  # one truth: no spread
    top = max(scores.values())
    for name, (sampler, seed) in SEEDS.items():
        truth = {"tpe-0": "0.6100 | 0.0300", "tpe-1": "0.6400 | 0.0000", "random-0": "0.5800 | 0.0600",
                 "random-1": "— | —"}[name]
        best = best_trial(studies[name]).number
        row = (f"| {name} | {sampler} | {seed} | 2 | {best} | {scores[name]:.4f} | "
               f"{top - scores[name]:.4f} | {truth} |")
        assert row in text, row
    plot = doc.with_name("REPORT-best-so-far.png")
    assert plot.read_bytes()[:4] == b"\x89PNG"
    assert f"- `nas compare {' '.join(SEEDS)} --storage {storage} --markdown {doc}`" in text
    assert "--sampler random" in text and "min–max band" in text


def test_compare_refuses_a_study_of_another_fidelity(searches, capsys) -> None:
    storage = f"sqlite:///{searches}/nas.db"
    assert main(["compare", "tpe-0", "other", "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not comparable" in err
    assert "fidelity.epochs 2 in tpe-0, 3 in other" in err and "limits.max_params" in err


def equal_time_study(storage: str, name: str, seed: int, steps: int, cost: float) -> optuna.Study:
    """A finished search at equal time (M = 11.9 min, its trials paced by `steps`) as the storage
    keeps it: the twin (trial 0), a design whose truth at M is the highest (trial 1), another
    with a lower truth (trial 2), and the search's cost."""
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    settings = dataclasses.replace(
        StudySettings(load_space(EQUAL_TIME.space).to_dict(), budget_minutes=11.9,
                      fidelity=Fidelity(time_share=TIME_SHARE, steps=steps)),
        recipe=fixed_part(Recipe(seed=seed).to_dict()))
    study.set_user_attr("settings", settings.to_dict())
    for score, attrs in ((0.67, {"baseline": TWIN, "n_params": 198496, "flops": 20.2e6,
                                 "train_images_per_s": 1300.0}),
                         (0.68, {"n_params": 156552, "flops": 20.4e6, "train_images_per_s": 1500.0}),
                         (0.70, {"n_params": 99000, "flops": 9.0e6, "train_images_per_s": 2000.0})):
        study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=score, user_attrs=attrs))
    for number, truth in ((1, 0.87), (2, 0.85)):
        record_result(study, study.trials[number], {"accuracy": truth, "epochs": 23, "out": f"{name}/t{number}",
                                                    "wall_seconds": 700.0, "budget_minutes": 11.9}, "val")
    study.set_user_attr(COST, {"trials_minutes": cost - 25, "rung_minutes": 25.0,
                               "total_minutes": cost, "multiple_of_budget": round(cost / 11.9, 2)})
    return study


def test_compare_puts_each_searchs_winner_against_the_twin_at_equal_time(tmp_path, capsys) -> None:
    storage = f"sqlite:///{tmp_path}/nas.db"
    # two search seeds, each of which timed the twin's steps for itself when it was made
    a, b = (equal_time_study(storage, f"seed-{s}", s, steps, cost)
            for s, steps, cost in ((0, 410, 60.0), (1, 402, 55.0)))

    def tested(study, number, accuracy, out, **budget) -> None:
        record_result(study, study.trials[number], {"accuracy": accuracy, "epochs": budget.pop("epochs", 20),
                                                    "out": out, "wall_seconds": 714.0, **budget}, "test")

    for out, accuracy in (("twin-s0", 0.8640), ("twin-s1", 0.8600)):  # the twin's 20 epochs
        tested(a, 0, accuracy, out)
    for study, accuracies in ((a, (0.8780, 0.8760)), (b, (0.8750,))):  # the winners at M
        for seed, accuracy in enumerate(accuracies):
            tested(study, 1, accuracy, f"{study.study_name}/best-s{seed}", budget_minutes=11.9, epochs=23)
    for seed, accuracy in enumerate((0.8510, 0.8496)):  # seed-0's winner at 0.6 M: a mean of 85.03 %
        tested(a, 1, accuracy, f"seed-0/7.1-s{seed}", budget_minutes=7.1, epochs=14)
    tested(a, 1, 0.8600, "seed-0/5-s0", budget_minutes=5.0, epochs=10)  # one run: too few to judge
    doc = tmp_path / "REPORT.md"
    assert main(["compare", "seed-0", "seed-1", "--storage", storage, "--markdown", str(doc)]) == 0
    text = doc.read_text()
    assert "| seed-0 | tpe | 0 | 3 | 1 | 0.6800 | 0.0000 | 0.8700 | 0.0000 |" in text  # its truth chose it
    rows = [line for line in text.splitlines() if line.startswith(("| seed-", "| the twin"))][-3:]
    assert rows == [
        "| seed-0: trial 1 | 0 | 11.9 min | 156,552 | 20.4 M | 1,500 | 23 | 11.9 | 87.70 ± 0.14 % | 2 | "
        "+1.50 | 7.1 min, 0.60 × M (tried 7.1, 11.9) | 60.0 min, 5.04 × M |",
        "| seed-1: trial 1 | 1 | 11.9 min | 156,552 | 20.4 M | 1,500 | 23 | 11.9 | 87.50 % | 1 | "
        "+1.30 | — | 55.0 min, 4.62 × M |",  # its own runs at M only, never seed-0's
        "| the twin (trial 0) | — | 20 epochs | 198,496 | 20.2 M | 1,300 | 20 | 11.9 | 86.20 ± 0.28 % | 2 | "
        "— | 11.9 min, 1.00 × M (tried 11.9) | — |"]
    assert "- `nas compare seed-0 seed-1 --storage" in text
    # seed-0's winner again for the minutes each of the twin's runs took (--time-of): its own row
    for seed, (accuracy, minutes) in enumerate(((0.8800, 13.1), (0.8740, 12.8))):
        tested(a, 1, accuracy, f"seed-0/eq-s{seed}", budget_minutes=minutes, epochs=21,
               time_of=f"twin-s{seed}")
    assert main(["compare", "seed-0", "seed-1", "--storage", storage, "--markdown", str(doc)]) == 0
    [row] = [line for line in doc.read_text().splitlines() if "| equal time |" in line]
    assert row.startswith("| seed-0: trial 1 | 0 | equal time |") and "| 87.70 ± 0.42 % | 2 | +1.50 |" in row
    time_paced = equal_time_study(storage, "by-time", 2, 0, 50.0)  # trials at their own speed
    assert main(["compare", "seed-0", time_paced.study_name, "--storage", storage]) == 2
    assert "fidelity.steps the twin's in seed-0, 0 in by-time" in capsys.readouterr().err
