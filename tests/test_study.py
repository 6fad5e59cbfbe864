"""What a study stores and how it is read back: exact trial counts, remembered settings, verdicts
where Optuna's own tools look, short attributes, designs rebuilt from parameters."""

from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

import nas
import nas.search.optimize
from nas.cli.main import main
from nas.design.files import DEFAULT_SPACE, REFERENCE
from nas.design.rules import Verdict
from nas.report.table import pareto_numbers
from nas.search.settings import StudySettings
from nas.search.space import load_space
from nas.search.trials import (CONSTRAINTS, best_trial, is_feasible, record_result, trial_design,
                               truths, verdict_constraints)
from nas.training.runtime import Runtime
from tests.conftest import ROOT
from tests.test_search import finished, load, search_args

TIGHT = ("--max-params", "60000")  # every sampled design breaks it: trials cost no training


@pytest.mark.parametrize("n", [1, 2, 3])
def test_trials_n_gives_n_finished_trials_new_and_resumed(tmp_path, tiny_data_dir, n) -> None:
    assert main(search_args(tmp_path, tiny_data_dir, n, "n", *TIGHT)) == 0
    assert len(finished(load(tmp_path, "n"))) == n
    assert main(search_args(tmp_path, tiny_data_dir, n + 1, "n", *TIGHT)) == 0
    study = load(tmp_path, "n")
    assert len(finished(study)) == n + 1
    assert [t.user_attrs.get("baseline") for t in study.trials].count("reference") == 1


def test_trials_2_on_a_new_study_trains_the_enqueued_twin(tmp_path, tiny_data_dir) -> None:
    # the enqueued (WAITING) twin must not count as a finished trial (it stopped the search once)
    assert main(search_args(tmp_path, tiny_data_dir, 2, "two")) == 0
    study = load(tmp_path, "two")
    assert [t.state for t in study.trials] == [TrialState.PRUNED, TrialState.COMPLETE]
    assert not study.get_trials(states=(TrialState.WAITING,))


def test_a_study_refuses_other_settings_and_keeps_its_own(tmp_path, tiny_data_dir, capsys) -> None:
    assert main(search_args(tmp_path, tiny_data_dir, 1, "s", *TIGHT)) == 0
    stored = load(tmp_path, "s").user_attrs["settings"]
    assert stored["fidelity"] == {"epochs": 2, "data_fraction": 0.25, "val_images": 200, "time_share": 0.0,
                                  "rounds": 4, "steps": 0}
    assert stored["budget_minutes"] == 0.0 and stored["device"] == ""  # equal epochs
    assert stored["limits"]["max_params"] == 60_000 and stored["space"]["name"] == "c1c2c3c4o"
    assert stored["space_digest"] == load_space(DEFAULT_SPACE).digest() and "nas_version" in stored
    capsys.readouterr()
    here = Runtime.pick().precision
    assert stored["precision"] == here  # a bf16 and an fp32 trial are not compared
    other = {"fp32": "bf16", "bf16": "fp32"}[here]
    for extra in (("--max-params", "70000"), ("--epochs", "3", *TIGHT), ("--label-smoothing", "0.2", *TIGHT),
                  ("--precision", other, *TIGHT)):
        assert main(search_args(tmp_path, tiny_data_dir, 2, "s", *extra)) == 2
        err = capsys.readouterr().err
        assert "study s was made with other settings" in err and "--study NAME" in err
        assert err.count("\n") == 1
    assert f"precision {here} there, {other} here" in err
    assert len(finished(load(tmp_path, "s"))) == 1  # nothing was run under other settings
    space = tmp_path / "other.toml"
    space.write_text(DEFAULT_SPACE.read_text().replace("dropout = [0.0, 0.05, 0.1]", "dropout = [0.0]"))
    assert main(search_args(tmp_path, tiny_data_dir, 2, "s", "--space", str(space), *TIGHT)) == 2
    assert "space_digest" in capsys.readouterr().err


def test_the_sampler_is_stored_and_another_is_refused(tmp_path, tiny_data_dir, capsys) -> None:
    assert main(search_args(tmp_path, tiny_data_dir, 1, "r", "--sampler", "random", *TIGHT)) == 0
    study = load(tmp_path, "r")
    assert study.user_attrs["settings"]["sampler"] == "random"
    capsys.readouterr()
    assert main(search_args(tmp_path, tiny_data_dir, 2, "r", *TIGHT)) == 2  # the default, tpe
    err = capsys.readouterr().err
    assert "sampler random there, tpe here" in err and err.count("\n") == 1
    assert len(finished(load(tmp_path, "r"))) == 1
    # a study stored before --sampler has no key: it was searched by TPE, and resumes as one
    settings = study.user_attrs["settings"]
    del settings["sampler"]
    study.set_user_attr("settings", settings)
    assert main(search_args(tmp_path, tiny_data_dir, 2, "r", "--sampler", "random", *TIGHT)) == 2
    assert "sampler tpe there, random here" in capsys.readouterr().err
    assert main(search_args(tmp_path, tiny_data_dir, 2, "r", *TIGHT)) == 0
    assert len(finished(load(tmp_path, "r"))) == 2


def test_a_study_made_before_a_new_recipe_knob_resumes(tmp_path, tiny_data_dir) -> None:
    assert main(search_args(tmp_path, tiny_data_dir, 1, "old", *TIGHT)) == 0
    study = load(tmp_path, "old")
    settings = study.user_attrs["settings"]
    del settings["recipe"]["mix_ramp"]  # as an older nas stored it: the knob did not exist, so off
    study.set_user_attr("settings", settings)
    assert main(search_args(tmp_path, tiny_data_dir, 2, "old", *TIGHT)) == 0
    assert len(finished(load(tmp_path, "old"))) == 2
    settings["recipe"]["label_smoothing"] = 0.3  # a knob it did have, set otherwise: refused
    study.set_user_attr("settings", settings)
    assert main(search_args(tmp_path, tiny_data_dir, 3, "old", *TIGHT)) == 2


def test_verdicts_are_optuna_constraints_and_attributes_stay_short(tmp_path, tiny_data_dir) -> None:
    assert main(search_args(tmp_path, tiny_data_dir, 3, "c")) == 0
    study = load(tmp_path, "c")
    reference, twin = study.trials[0], study.trials[1]
    # what Optuna's samplers and tools read: `trial.constraints`, one value per rule by name
    assert reference.constraints["depthwise_separable"] > 0
    assert all(v <= 0 for v in twin.constraints.values())
    feasible = optuna.study._constrained_optimization._get_feasible_trials(study.trials)
    assert reference not in feasible and twin in feasible
    for trial in study.trials:
        assert all(len(json.dumps(v)) < 200 for v in trial.user_attrs.values()), trial.user_attrs


def test_constraints_at_the_parameter_boundary() -> None:
    limits = nas.Limits(max_params=200_000)
    for params, feasible in ((199_999, True), (200_000, False)):
        values = verdict_constraints(Verdict(params, 1, 100, rules=()), limits)
        assert (values["params"] <= 0) == feasible
    reference = nas.load_config(REFERENCE)  # 197,472 parameters: the verdict agrees at its edge
    assert nas.check(reference, nas.Limits(max_params=197_473)).broken == ["depthwise_separable"]
    assert "params" in nas.check(reference, nas.Limits(max_params=197_472)).broken


def test_verdicts_stored_before_optuna_5_still_read() -> None:
    # the old code's sampler stored them as one list, in CONSTRAINTS order (studies/*/study.db)
    def trial(accuracy: float, broken: str | None) -> optuna.trial.FrozenTrial:
        values = [1.0 if rule == broken else -0.5 for rule in CONSTRAINTS]
        return optuna.trial.create_trial(state=TrialState.COMPLETE, value=accuracy,
                                         system_attrs={"constraints": values})

    study = optuna.create_study(direction="maximize")
    for accuracy, broken in ((0.9, "dilated"), (0.8, None), (0.7, None)):
        study.add_trial(trial(accuracy, broken))
    assert [is_feasible(t) for t in study.trials] == [False, True, True]
    assert best_trial(study).number == 1  # the most accurate breaks a rule


@pytest.mark.parametrize("minutes", [0.0, 12.5])
def test_the_final_rung_picks_the_best_truth_made_alike(minutes) -> None:
    # trials 0-2 by search score 0.70 > 0.60 > 0.50; truths (train-best --validate) for 1 and 2
    # decide, whatever the scores; a truth trained otherwise (other epochs or minutes) does not
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("settings", StudySettings(load_space(DEFAULT_SPACE).to_dict(),
                                                  budget_minutes=minutes).to_dict())
    for accuracy in (0.7, 0.6, 0.5):
        study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=accuracy))
    assert best_trial(study).number == 0 and truths(study) == {}
    alike = {"budget_minutes": minutes} if minutes else {}
    runs = ((1, 0.80, 10, alike), (2, 0.83, 10, alike), (2, 0.79, 10, alike),  # 2: mean 0.81
            (1, 0.95, 30, {"budget_minutes": 2 * minutes} if minutes else {}))  # not alike
    for number, accuracy, epochs, extra in runs:
        record_result(study, study.trials[number], {"accuracy": accuracy, "epochs": epochs,
                                                    "out": f"runs/{number}-{accuracy}", **extra}, "val")
    assert truths(study) == pytest.approx({1: 0.80, 2: 0.81})
    assert best_trial(study).number == 2
    assert best_trial(study, 0).number == 0  # --trial still picks any complete trial


def test_suggest_and_design_round_trip_over_sampled_designs() -> None:
    space = load_space(DEFAULT_SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(40):
        trial = study.ask()
        config = space.suggest(trial)
        params = space.params_of(config)
        assert params == trial.params
        assert space.design(params, trial.number) == config
        study.tell(trial, 0.0)


def test_param_count_from_the_config_equals_the_built_model() -> None:
    space = load_space(DEFAULT_SPACE)
    sampler = optuna.samplers.RandomSampler(seed=1)
    study = optuna.create_study(sampler=sampler)
    configs = [nas.load_config(REFERENCE)]
    for _ in range(20):
        trial = study.ask()
        configs.append(space.suggest(trial))
        study.tell(trial, 0.0)
    for config in configs:
        assert nas.param_count(config) == sum(p.numel() for p in nas.build_model(config).parameters())


def test_one_design_is_trained_once(tmp_path, tiny_data_dir, monkeypatch) -> None:
    space = tmp_path / "one.toml"  # every knob has one choice: every trial is the same design
    space.write_text("\n".join([
        'name = "one"', "channels = [[16], [24], [32], [48]]", 'conv1_kind = ["standard"]',
        'conv2_kind = ["separable"]', "dilation = [2]", 'downsample = ["stride2"]',
        'shortcut = ["conv1x1"]', "dropout = [0.0]", 'head = ["conv1x1"]', 'order = ["relu_bn"]']))
    measured = []  # a repeated design copies its twin's speed and proxies: measured once
    real = nas.search.optimize.measure_speed
    monkeypatch.setattr(nas.search.optimize, "measure_speed",
                        lambda *a, **k: measured.append(1) or real(*a, **k))
    assert main(search_args(tmp_path, tiny_data_dir, 3, "dup", "--space", str(space))) == 0
    study = load(tmp_path, "dup")
    trained = [t for t in study.trials if "train_seconds" in t.user_attrs]
    assert len(trained) == 1 and len(finished(study)) == 3 and len(measured) == 1
    for t in study.trials:
        if t.number != trained[0].number:
            assert t.user_attrs["duplicate_of"] == trained[0].number and t.values == trained[0].values
            for key in ("train_images_per_s", "epoch_seconds", "proxy_synflow", "proxy_ms"):
                assert t.user_attrs[key] == trained[0].user_attrs[key]


def test_trial_design_is_rebuilt_from_the_study(tmp_path, tiny_data_dir) -> None:
    assert main(search_args(tmp_path, tiny_data_dir, 2, "d")) == 0
    study = load(tmp_path, "d")
    twin = trial_design(study, study.trials[1])
    expected = nas.load_config(REFERENCE)
    assert nas.param_count(twin) == 198_496 and len(twin.blocks) == len(expected.blocks)
    assert twin.blocks[1].convs[1].kind == "separable" and twin.blocks[0] == expected.blocks[0]


def test_pareto_set() -> None:
    def trial(number: int, acc: float, params: int):
        t = optuna.trial.create_trial(state=TrialState.COMPLETE, value=acc, user_attrs={"n_params": params})
        t.number = number
        return t

    trials = [trial(0, 0.80, 100), trial(1, 0.85, 200), trial(2, 0.84, 300), trial(3, 0.85, 150),
              trial(4, 0.70, 90)]
    assert pareto_numbers(trials) == {0, 3, 4}
    # against measured seconds per epoch (--second-objective time): the same front, other numbers
    for t in trials:
        t.user_attrs["epoch_seconds"] = 1000.0 - t.user_attrs["n_params"]  # the order reversed
    assert pareto_numbers(trials, "epoch_seconds") == {1, 2}


def test_space_file_ships_once() -> None:
    assert DEFAULT_SPACE.resolve() == (ROOT / "search_spaces" / "c1c2c3c4o.toml").resolve()
