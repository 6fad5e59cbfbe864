"""The command line's help shows the defaults the code uses (each read from its one home), and
answering it imports neither torch nor optuna."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import fields

import pytest

from nas.cli.parser import build_parser
from nas.design.limits import Limits
from nas.search.settings import (DEFAULT_CALIBRATION, DEFAULT_RUNS, DEFAULT_STORAGE, DEFAULT_TRIALS,
                                 EQUAL_EPOCHS, EQUAL_TIME, SEARCH_FILL,
                                 SEARCH_SAMPLER, TIME_FIDELITIES, TIME_SHARE, TIME_TRUTH_FIDELITY,
                                 TWIN_EPOCHS, CalibrationSettings, Fidelity, StudySettings,
                                 truth_epochs)
from nas.training.presets import PRESETS
from nas.training.recipe import FINAL_EPOCHS, OPTIMIZER_DEFAULTS, Recipe


def help_of(command: str, flag: str) -> str:
    """The help text of one flag of one command, as `nas COMMAND --help` prints it (unwrapped)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    action = next(a for a in sub._actions if flag in a.option_strings)
    assert action.help, f"nas {command} {flag} has no help"
    text = sub._get_formatter()._expand_help(action)
    def flat(words: str) -> str:  # argparse wraps lines at spaces and after hyphens
        return re.sub(r"-\s+", "-", " ".join(words.split()))

    assert flat(text) in flat(sub.format_help())  # what the user reads
    return text


def defaults(command: str) -> dict:
    return vars(build_parser().parse_args([command] + {"show": ["x"], "train": ["x"], "predict": ["r", "i"],
                                                       "export": ["r"], "data": ["check"]}.get(command, [])))


def test_search_help_and_defaults_are_the_settings():
    fidelity, limits = Fidelity(), Limits()
    assert f"default {fidelity.epochs}" in help_of("search", "--epochs")
    assert f"default {fidelity.data_fraction}" in help_of("search", "--data-fraction")
    assert f"default {fidelity.val_images}" in help_of("search", "--val-images")
    assert f"default {DEFAULT_TRIALS}" in help_of("search", "--trials")
    assert f"default {EQUAL_TIME.fill_params:g}; at equal epochs {EQUAL_EPOCHS.fill_params:g}" in \
        help_of("search", "--fill-params")
    assert f"default {EQUAL_TIME.final_rung}; at equal epochs {EQUAL_EPOCHS.final_rung}" in \
        help_of("search", "--final-rung")
    assert EQUAL_TIME.space.name in help_of("search", "--space") and EQUAL_EPOCHS.space.name in \
        help_of("search", "--space")
    assert f"the reference twin's {TWIN_EPOCHS} epochs" in help_of("search", "--budget-minutes")
    assert f"default {SEARCH_SAMPLER}" in help_of("search", "--sampler")
    assert f"default {TIME_SHARE}" in help_of("search", "--time-share")
    assert f"default {fidelity.rounds}" in help_of("search", "--rounds")
    assert f"default {EQUAL_TIME.pruner}; at equal epochs {EQUAL_EPOCHS.pruner}" in help_of("search", "--pruner")
    assert f"default {limits.max_params}" in help_of("search", "--max-params")
    assert f"default {limits.max_flops}" in help_of("search", "--max-flops")
    assert f"default {limits.min_rf}" in help_of("search", "--min-rf")
    assert DEFAULT_STORAGE in help_of("search", "--storage")
    assert f"default {OPTIMIZER_DEFAULTS['sgd']['lr']} sgd" in help_of("search", "--lr")
    assert f"default {Recipe().batch_size}" in help_of("search", "--batch-size")
    given = defaults("search")
    assert (given["trials"], given["data_fraction"], given["val_images"], given["sampler"]) == \
        (DEFAULT_TRIALS, fidelity.data_fraction, fidelity.val_images, SEARCH_SAMPLER)
    # None: the mode's default (the budget decides the mode; none given: equal time, M timed here)
    assert given["fill_params"] is given["final_rung"] is given["space"] is given["budget_minutes"] is None
    assert given["epochs"] is None and given["rounds"] is None  # None: the fidelity's own
    assert given["pruner"] is None  # the mode's
    # a study made with no flag stores the parser's defaults: StudySettings reads the same homes
    study = StudySettings({})
    assert (study.fill_params, study.sampler, study.fidelity) == (SEARCH_FILL, SEARCH_SAMPLER, fidelity)


def test_outputs_go_to_the_ignored_runs_folder():
    assert DEFAULT_STORAGE == f"sqlite:///{DEFAULT_RUNS}/nas.db"
    assert DEFAULT_CALIBRATION.parent == DEFAULT_RUNS
    assert f"default {DEFAULT_RUNS}/<design name>" in help_of("train", "--out")
    assert f"default {DEFAULT_RUNS}/<study>/best" in help_of("train-best", "--out")


def test_renamed_flags_still_read_and_are_not_shown():
    given = vars(build_parser().parse_args(["search", "--fill-budget", "0.5"]))
    assert given["fill_params"] == 0.5
    calibrate = vars(build_parser().parse_args(["calibrate", "--truth", "3x1.0"]))
    assert calibrate["truth_fidelity"] == "3x1.0"
    for command, old in (("search", "--fill-budget"), ("calibrate", "--truth ")):
        sub = next(a for a in build_parser()._actions if a.dest == "command").choices[command]
        assert old not in sub.format_help()


def test_train_and_train_best_show_their_own_epochs():
    assert f"default {Recipe().epochs}" in help_of("train", "--epochs")
    assert f"default {FINAL_EPOCHS}" in help_of("train-best", "--epochs")
    assert f"default {Recipe().batch_size}" in help_of("show", "--batch-size")  # what --speed measures
    assert defaults("show")["batch_size"] == Recipe().batch_size
    truth = next(f.default for f in fields(CalibrationSettings) if f.name == "truth_fidelity")
    assert f"with --validate {truth_epochs()}, the calibration's truth fidelity {truth}" in \
        help_of("train-best", "--epochs")
    assert truth_epochs() == int(truth.split("x")[0])  # the epochs of EPOCHSxFRACTION
    for command in ("train", "train-best"):  # what each preset sets, read from PRESETS
        shown = help_of(command, "--norm-bias-lr-scale")
        assert all(f"{p.name} {p.knobs['norm_bias_lr_scale']}" in shown for p in PRESETS)
        assert all(f"{p.name} (" in help_of(command, "--preset") for p in PRESETS)
    assert "preset" not in defaults("search")  # a study keeps its recipe
    assert "study's" in help_of("train-best", "--lr") and "study's" in help_of("train-best", "--seed")
    for command in ("train-best", "report"):
        assert "shipped space" in help_of(command, "--study")
    for command in ("train-best", "report", "compare"):
        assert DEFAULT_STORAGE in help_of(command, "--storage")


def test_calibrate_help_and_defaults_are_its_settings():
    settings = {f.name: f.default for f in fields(CalibrationSettings)}
    given = defaults("calibrate")
    # the fidelities and truth depend on --budget-minutes: the help names both modes' defaults
    assert given["designs"] == settings["designs"] and given["truth_fidelity"] is given["fidelities"] is None
    assert f"default {settings['truth_fidelity']}" in help_of("calibrate", "--truth-fidelity")
    assert f"--budget-minutes {TIME_TRUTH_FIDELITY}" in help_of("calibrate", "--truth-fidelity")
    assert ",".join(settings["fidelities"]) in help_of("calibrate", "--fidelities")
    assert ",".join(TIME_FIDELITIES) in help_of("calibrate", "--fidelities")
    assert given["fill_params"] == settings["fill_params"] and given["out"] == str(DEFAULT_CALIBRATION)
    assert f"default {settings['designs']}" in help_of("calibrate", "--designs")
    assert str(DEFAULT_CALIBRATION) in help_of("calibrate", "--out")


@pytest.mark.parametrize("command", ["train", "search", "train-best", "data"])
def test_data_dir_help_names_the_real_order(command):
    text = help_of(command, "--data-dir")
    assert "$NAS_DATA_DIR" in text and ".cache/nas/data" in text and "shared" not in text


@pytest.mark.parametrize("argv", [["--help"], ["search", "--help"], ["train-best", "--help"],
                                  ["compare", "--help"], ["search", "--epochs", "x"], ["nope"]])
def test_help_and_argument_errors_import_no_heavy_library(argv):
    code = ("import sys\nfrom nas.cli.main import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'optuna', 'sqlalchemy', 'albumentations', 'fvcore',"
            " 'matplotlib', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_every_flag_has_help():
    parser = build_parser()
    for name, sub in next(a for a in parser._actions if a.dest == "command").choices.items():
        missing = [a.option_strings[0] for a in sub._actions
                   if a.option_strings and a.help is None]
        assert not missing, f"nas {name}: {missing} have no help"
        assert not re.search(r"default: ?none", sub.format_help(), re.I), name
