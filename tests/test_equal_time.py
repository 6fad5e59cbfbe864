"""The search at equal time (`nas search --budget-minutes`), train-best and calibrate under a
budget, on tiny synthetic data. Speeds come from a fake `measure_speed` (the real one is tested
with an injected clock in test_speed.py): no assertion reads a real clock."""

from __future__ import annotations

import json
import math

import optuna
import pytest
import torch
from optuna.trial import TrialState

import nas.search.calibrate
import nas.search.optimize
import nas.search.trials
import nas.training.budget
import nas.training.speed
from nas.cli.main import main
from nas.design.files import load_config
from nas.design.model import build_model
from nas.search.settings import Fidelity, label, parse_fidelity
from nas.search.space import TWIN, load_space
from nas.training.batches import make_batches
from nas.training.budget import Plan, RoundBatches, epochs_in, steps_per_round
from nas.training.loop import ONECYCLE_MIN_STEPS, train
from nas.training.recipe import Recipe
from nas.training.runtime import Runtime
from nas.training.speed import Speed
from tests.conftest import REFERENCE
from tests.test_calibrate import TINY_SPACE
from tests.test_budget import Scripted
from tests.test_search import load, search_args

# Two designs, C1 16 or 24 channels wide; the fake clock makes the narrow one twice as fast.
TWO = "\n".join([
    'name = "two"', "channels = [[16, 24], [24], [32], [48]]", 'conv1_kind = ["standard"]',
    'conv2_kind = ["separable"]', "dilation = [2]", 'downsample = ["stride2"]',
    'shortcut = ["conv1x1"]', "dropout = [0.0]", 'head = ["conv1x1"]', 'order = ["relu_bn"]'])
FAST_RATE, SLOW_RATE = 3200.0, 1600.0  # training images/s of the narrow and the wide design
# 1 minute, 2 % a trial at each design's speed: 1.2 s, 120 steps of 32 images for the narrow
# design, 60 for the wide (the rung: test_final_rung; trials paced by steps: PACED_BY_STEPS)
BUDGET = ["--budget-minutes", "1", "--time-share", "0.02", "--trial-steps", "0", "--final-rung", "0"]


def timed_args(tmp_path, data_dir, trials: int, study: str, *extra: str) -> list[str]:
    """`search_args` at equal time: 2 rounds a trial where they give 2 epochs, under BUDGET."""
    args = search_args(tmp_path, data_dir, trials, study, *extra, *BUDGET)
    at = args.index("--epochs")
    return [*args[:at], "--rounds", *args[at + 1:]]


def fake_speed(config, recipe, runtime, **_) -> Speed:
    rate = FAST_RATE if config.blocks[0].channels == 16 else SLOW_RATE
    return Speed(rate, 50_000 / rate, 4 * rate, 1.0, 0.0)


@pytest.fixture
def clocks(monkeypatch) -> dict:
    """Search and calibration trials keep the steps their measured speed bought, or take the
    re-plans a test writes here (`Scripted`'s); each clock's seconds are kept under "seconds".
    tests/test_budget.py tests the real `TrialClock`, which here would read the real clock."""
    plans: dict = {"seconds": []}

    def clock(seconds: float, batch_size: int) -> Scripted:
        plans["seconds"].append(seconds)
        return Scripted(plans)

    monkeypatch.setattr(nas.training.budget, "TrialClock", clock)
    return plans


@pytest.fixture
def measured(monkeypatch, clocks) -> list[str]:
    """The fake speeds wherever a speed is measured (and the trials' clocks scripted); the names
    of the designs measured."""
    calls: list[str] = []

    def measure(config, recipe, runtime, **kwargs):
        calls.append(config.name)
        return fake_speed(config, recipe, runtime)

    for module in (nas.search.optimize, nas.search.calibrate, nas.training.budget):
        monkeypatch.setattr(module, "measure_speed", measure)
    return calls


@pytest.fixture
def deadlines(monkeypatch) -> list[dict]:
    """Budgeted runs keep the epochs planned (tests/test_budget.py tests the re-plan, which here
    would read the real clock); the plans their deadlines were made from."""
    plans: list[dict] = []

    def kept(plan: Plan) -> Scripted:
        plans.append(plan.to_dict())
        return Scripted({})

    monkeypatch.setattr(Plan, "deadline", kept)
    return plans


def two_space(tmp_path) -> str:
    path = tmp_path / "two.toml"
    path.write_text(TWO)
    return str(path)


def test_steps_grow_with_speed_and_fill_onecycle() -> None:
    assert steps_per_round(1.2, FAST_RATE, 32, 2) == 60
    assert steps_per_round(1.2, SLOW_RATE, 32, 2) == 30  # half the speed, half the steps
    assert steps_per_round(0.001, SLOW_RATE, 32, 2, ONECYCLE_MIN_STEPS) == 4  # 8 steps in all
    assert epochs_in(60, 25) == 2 and epochs_in(60, 20) == 3 and epochs_in(1, 25) == 1


def test_round_batches_cycle_the_source_and_forward_its_seeds() -> None:
    class Source:
        def __init__(self) -> None:
            self.made, self.seeds = 0, []

        def __iter__(self):
            for i in range(3):
                self.made += 1
                yield i

        def seed(self, seed: int) -> None:
            self.seeds.append(seed)

        def set_epoch(self, epoch: int, seed: int) -> None:
            self.seeds.append((epoch, seed))

    source = Source()
    rounds = RoundBatches(source, 7)
    rounds.seed(5)
    rounds.set_epoch(2, 0)
    assert len(rounds) == 7 and list(rounds) == [0, 1, 2, 0, 1, 2, 0]
    assert source.made == 7, "a batch was made that nobody took"
    assert source.seeds == [5, (2, 0)]


def test_a_schedule_sized_to_the_rounds_ends_at_the_last_step(tiny_data_dir) -> None:
    from nas.data.cifar10 import load_cifar10
    from nas.data.splits import make_splits

    recipe = Recipe(epochs=2, batch_size=32)
    runtime = Runtime.pick("cpu", "fp32", 0)
    splits = make_splits(load_cifar10(tiny_data_dir), "val", 0.25, 0, 200)
    train_batches, eval_batches = make_batches(splits, 32, recipe.augment, runtime)
    assert len(train_batches) == 6
    history = train(build_model(load_config(REFERENCE)), (RoundBatches(train_batches, 10), eval_batches),
                    recipe, runtime)
    # the lr after the last step is that of a OneCycle over 2 rounds × 10 steps, and no other's
    def lr_after(steps: int, total: int) -> float:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=recipe.lr)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, recipe.lr, total_steps=total,
                                                       pct_start=recipe.warmup)
        for _ in range(steps):
            optimizer.step()
            schedule.step()
        return optimizer.param_groups[0]["lr"]

    assert len(history) == 2 and history[-1].lr == pytest.approx(lr_after(20, 20))
    assert lr_after(20, 21) != pytest.approx(lr_after(20, 20)) != lr_after(19, 20)


@pytest.fixture
def timed_search(tmp_path, tiny_data_dir, measured):
    """A 4-trial search of the two-design space at equal time, 2 rounds a trial."""
    args = timed_args(tmp_path, tiny_data_dir, 4, "t", "--space", two_space(tmp_path))
    assert main(args) == 0
    return tmp_path, tiny_data_dir, args


def test_a_design_twice_as_fast_trains_twice_the_steps(timed_search, measured) -> None:
    tmp_path, _, _ = timed_search
    study = load(tmp_path, "t")
    settings = study.user_attrs["settings"]
    assert settings["budget_minutes"] == 1.0 and settings["fidelity"]["time_share"] == 0.02
    assert settings["device"] == Runtime.pick("auto", "auto", 0).device_name()
    trained = {t.user_attrs["train_images_per_s"]: t for t in study.trials if "train_steps" in t.user_attrs}
    assert set(trained) == {FAST_RATE, SLOW_RATE}, "both designs trained"
    assert trained[FAST_RATE].user_attrs["train_steps"] == 120
    assert trained[SLOW_RATE].user_attrs["train_steps"] == 60
    for trial in trained.values():  # two rounds, each scored for Hyperband
        assert trial.user_attrs["rounds_run"] == 2 and sorted(trial.intermediate_values) == [1, 2]
    # each design measured once: a repeated design copies its twin's figures
    assert len(measured) == 2
    for trial in study.get_trials(states=(TrialState.COMPLETE,)):
        if "duplicate_of" in trial.user_attrs:
            twin = study.trials[trial.user_attrs["duplicate_of"]]
            assert trial.user_attrs["train_images_per_s"] == twin.user_attrs["train_images_per_s"]
            assert trial.user_attrs["proxy_synflow"] == twin.user_attrs["proxy_synflow"]


def test_trials_paced_by_steps_train_the_same_steps_whatever_their_speed(tmp_path, tiny_data_dir,
                                                                         measured, clocks) -> None:
    args = timed_args(tmp_path, tiny_data_dir, 4, "p", "--space", two_space(tmp_path))
    at = args.index("--trial-steps")
    args[at + 1] = "50"
    assert main(args) == 0
    study = load(tmp_path, "p")
    assert study.user_attrs["settings"]["fidelity"]["steps"] == 50
    trained = {t.user_attrs["train_images_per_s"]: t for t in study.trials
               if "train_steps" in t.user_attrs and "duplicate_of" not in t.user_attrs}
    assert set(trained) == {FAST_RATE, SLOW_RATE}, "both designs trained"
    for trial in trained.values():  # 25 steps in each round, whatever the speed
        assert trial.user_attrs["train_steps"] == 25 * trial.user_attrs["rounds_run"]
    assert any(t.user_attrs["train_steps"] == 50 for t in study.get_trials(states=(TrialState.COMPLETE,)))
    assert clocks["seconds"] == [], "no trial kept a time"
    args[at + 1] = "60"  # another pace is another study
    assert main(args) == 2


def test_a_study_stored_before_trial_steps_is_paced_by_time(timed_search) -> None:
    tmp_path, _, args = timed_search
    study = load(tmp_path, "t")
    settings = study.user_attrs["settings"]
    del settings["fidelity"]["steps"]
    study.set_user_attr("settings", settings)
    more = [*args[:args.index("--trials") + 1], "5", *args[args.index("--trials") + 2:]]
    at = more.index("--trial-steps")
    assert main([*more[:at], *more[at + 2:]]) == 0  # its own command, without the flag: continued
    assert nas.search.trials.finished(load(tmp_path, "t")) == 5


def test_a_trial_keeps_its_time_with_the_steps_its_clock_replans(tmp_path, tiny_data_dir, measured,
                                                                  clocks) -> None:
    clocks[1] = (2, 10)  # after the first round, whatever the design: 10 steps for the second
    args = timed_args(tmp_path, tiny_data_dir, 4, "c", "--space", two_space(tmp_path))
    assert main(args) == 0
    study = load(tmp_path, "c")
    trained = {t.user_attrs["train_images_per_s"]: t for t in study.trials
               if "train_steps" in t.user_attrs and "duplicate_of" not in t.user_attrs}
    assert trained[FAST_RATE].user_attrs["train_steps"] == 60 + 10  # the first round as bought
    assert trained[SLOW_RATE].user_attrs["train_steps"] == 30 + 10
    assert set(clocks["seconds"]) == {1.2}  # each clock keeps the trial's share: 2 % of a minute


def test_a_study_refuses_another_budget_or_device(timed_search, monkeypatch, capsys) -> None:
    tmp_path, _, args = timed_search
    capsys.readouterr()
    assert main([a if a != "1" else "2" for a in args]) == 2
    assert "was made with other settings (budget_minutes 1.0 there, 2.0 here)" in capsys.readouterr().err
    at = args.index("--rounds")  # at equal epochs (FAST's budget 0, without BUDGET): names it
    assert main([*args[:at], "--epochs", *args[at + 1:len(args) - len(BUDGET)]]) == 2
    assert "budget_minutes 1.0 there, 0.0 here" in capsys.readouterr().err
    monkeypatch.setattr(Runtime, "device_name", lambda self: "Another CPU (8 cores), fp32")
    assert main(args) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "measures its time budget on" in err[0] and "Another CPU" in err[0]
    assert len(load(tmp_path, "t").trials) == 4, "nothing was run"


def test_train_best_fills_the_budget_at_the_measured_speed(timed_search, deadlines, monkeypatch, capsys) -> None:
    tmp_path, data_dir, _ = timed_search
    study = load(tmp_path, "t")
    best = nas.search.trials.best_trial(study)
    out = tmp_path / "best"
    common = ["train-best", "--study", "t", "--storage", f"sqlite:///{tmp_path}/nas.db",
              "--data-dir", str(data_dir), "--workers", "0", "--batch-size", "32"]
    record = nas.search.trials.record_result
    monkeypatch.setattr(nas.search.trials, "record_result", lambda *a, **k: None)  # as if killed
    # here the design measures 25× slower than it did in the search: 1,000 training images in
    # 10 s, 200 test images in 0.5 s; 5 such epochs fit the study's minute
    rate = 100.0
    monkeypatch.setattr(nas.training.budget, "measure_speed",
                        lambda *a, **k: Speed(rate, 50_000 / rate, 4 * rate, 1.0, 0.0))
    assert main([*common, "--out", str(out)]) == 0
    epoch, final = 1000 / rate + 200 / (4 * rate), 2 * 200 / (4 * rate)
    plan = json.loads((out / "budget.json").read_text())
    assert plan["epochs"] == int((60 - final) / epoch) == 5 and plan["epoch_seconds"] == pytest.approx(epoch, abs=0.01)
    assert plan["final_eval_seconds"] == final and deadlines == [plan]  # the run keeps that budget
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == plan["epochs"] and metrics["budget"] == plan
    assert "Trained in a budget of 1 min, planned at 5 epochs of 10.5 s" in (out / "summary.md").read_text()
    # a resumed run keeps the epochs it started with, whatever the speed measures now
    (out / "metrics.json").unlink()
    monkeypatch.setattr(nas.training.budget, "measure_speed",
                        lambda *a, **k: Speed(1.0, 50_000.0, 1.0, 1.0, 0.0))
    monkeypatch.setattr(nas.search.trials, "record_result", record)
    assert main([*common, "--out", str(out), "--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == plan["epochs"]
    assert deadlines == [plan, plan]
    [result] = nas.search.trials.recorded_results(load(tmp_path, "t"), "test")[best.number]
    assert result["budget_minutes"] == 1.0
    # --epochs overrides the budget
    assert main([*common, "--out", str(tmp_path / "two"), "--epochs", "1"]) == 0
    assert json.loads((tmp_path / "two" / "metrics.json").read_text())["epochs"] == 1
    assert not (tmp_path / "two" / "budget.json").exists()


def test_train_fills_a_budget_at_the_measured_speed(tmp_path, tiny_data_dir, deadlines, monkeypatch, capsys) -> None:
    out = tmp_path / "run"
    args = ["train", str(REFERENCE), "--out", str(out), "--data-dir", str(tiny_data_dir), "--workers", "0",
            "--batch-size", "32", "--budget-minutes", "0.4"]
    # 1,000 training images in 10 s and 200 test images in 0.5 s: 2 such epochs fit 24 s
    monkeypatch.setattr(nas.training.budget, "measure_speed",
                        lambda *a, **k: Speed(100.0, 500.0, 400.0, 1.0, 0.0))
    assert main(args) == 0
    plan = json.loads((out / "budget.json").read_text())
    assert plan["epochs"] == 2 and plan["epoch_seconds"] == 10.5
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert [line.split("  train loss")[0] for line in lines] == ["epoch   1/2", "epoch   2/2"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["budget"] == plan
    # resumed, it keeps its epochs though the design now measures ten times faster
    (out / "metrics.json").unlink()
    monkeypatch.setattr(nas.training.budget, "measure_speed",
                        lambda *a, **k: Speed(1000.0, 50.0, 4000.0, 1.0, 0.0))
    assert main([*args, "--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2
    capsys.readouterr()
    assert main([*args[:3], str(tmp_path / "other"), *args[4:], "--epochs", "3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["nas: error: --epochs 3 --budget-minutes 0.4: give one of them"]
    assert not (tmp_path / "other").exists()


def test_time_as_second_objective_is_the_measured_epoch(tmp_path, tiny_data_dir, measured) -> None:
    args = timed_args(tmp_path, tiny_data_dir, 3, "p", "--space", two_space(tmp_path),
                      "--second-objective", "time")
    assert main(args) == 0
    for trial in load(tmp_path, "p").get_trials(states=(TrialState.COMPLETE,)):
        assert trial.values[1] == trial.user_attrs["epoch_seconds"]


def test_time_fidelities_parse_and_label() -> None:
    assert parse_fidelity("5%x0.25") == Fidelity(data_fraction=0.25, time_share=0.05)
    assert label(parse_fidelity("100%x1.0")) == "100%x1.0" and label(parse_fidelity("3x0.1")) == "3x0.1"


def test_calibration_at_equal_time_gives_each_design_the_steps_of_its_speed(
        tmp_path, tiny_data_dir, measured) -> None:
    space = tmp_path / "tiny.toml"
    space.write_text(TINY_SPACE)  # C1 8 (the slow fake) or 16 channels wide (the fast one)
    out = tmp_path / "cal.json"
    assert main(["calibrate", "--space", str(space), "--data-dir", str(tiny_data_dir),
                 "--out", str(out), "--designs", "3", "--budget-minutes", "0.5",
                 "--fidelities", "2%x0.25", "--truth-fidelity", "4%x1.0", "--val-images", "200",
                 "--batch-size", "32", "--workers", "0", "--pace", "time"]) == 0
    state = json.loads(out.read_text())
    assert state["settings"]["budget_minutes"] == 0.5 and state["settings"]["truth_fidelity"] == "4%x1.0"
    rates = [d["speed"]["train_images_per_s"] for d in state["designs"]]
    for result in state["results"]:  # 4 rounds of the share's steps at the design's rate
        share = {"2%x0.25": 0.02, "4%x1.0": 0.04}[result["fidelity"]]
        rate = rates[result["design"]]
        assert result["steps"] == 4 * round(share * 30 * rate / 32 / 4)
    assert {row["score"] for row in state["summary"]} >= {"2%x0.25", "img/s", "FLOPs"}


def test_calibration_paced_by_steps_gives_every_design_the_twins_steps_at_a_low_fidelity(
        tmp_path, tiny_data_dir, measured, monkeypatch, capsys) -> None:
    # as the search's trials: the twin's steps in the share, whatever the design's speed; the
    # truth, M at each design's own speed, as the final training
    space = tmp_path / "tiny.toml"
    space.write_text(TINY_SPACE)
    args = ["calibrate", "--space", str(space), "--data-dir", str(tiny_data_dir), "--out",
            str(tmp_path / "cal.json"), "--designs", "3", "--budget-minutes", "0.5", "--fidelities",
            "2%x0.25", "--truth-fidelity", "4%x1.0", "--val-images", "200", "--batch-size", "32",
            "--workers", "0"]
    assert main(args) == 2  # this space holds no twin
    assert "does not hold the reference's twin" in capsys.readouterr().err
    twin = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    while True:  # a design of the tiny space with a narrow C1: the slow fake speed
        trial = twin.ask()
        if load_space(space).suggest(trial).blocks[0].channels == 8:
            break
    monkeypatch.setattr(nas.search.calibrate, "baseline_params", lambda space: [(TWIN, trial.params)])
    assert main(args) == 0
    state = json.loads((tmp_path / "cal.json").read_text())
    assert state["settings"]["pace"] == "steps" and state["designs"][0]["label"] == TWIN
    rates = [d["speed"]["train_images_per_s"] for d in state["designs"]]
    assert rates[0] == SLOW_RATE and FAST_RATE in rates  # the twin's steps are not a fast design's
    for result in state["results"]:
        if result["fidelity"] == "2%x0.25":  # 4 rounds of the twin's steps in 2 % of 30 s
            assert result["steps"] == 4 * math.ceil(max(0.02 * 30 * SLOW_RATE / 32, ONECYCLE_MIN_STEPS) / 4)
        else:  # 4 rounds of the steps 4 % of 30 s buy at the design's own rate
            assert result["steps"] == 4 * round(0.04 * 30 * rates[result["design"]] / 32 / 4)
    older = json.loads((tmp_path / "cal.json").read_text())  # a file from before --pace: by time
    del older["settings"]["pace"]
    (tmp_path / "cal.json").write_text(json.dumps(older))
    assert main(args) == 2 and "pace" in capsys.readouterr().err  # not continued under another pace
    assert main([*args, "--pace", "time"]) == 0
