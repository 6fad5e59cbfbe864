"""`nas calibrate` end to end on tiny synthetic data: results written at once, an interrupted run
resumed without retraining anything stored, other settings refused, the rank statistics."""

from __future__ import annotations

import json
from pathlib import Path
import math
from dataclasses import replace

import pytest
import torch
from scipy import stats

import nas.search.calibrate
from nas.cli.main import main
from nas.design.files import DEFAULT_SPACE
from nas.design.limits import Limits
from nas.errors import NasError
from nas.search.calibrate import agreement, pick_designs
from nas.search.settings import CalibrationSettings, parse_fidelity
from nas.search.space import load_space, with_widths
from nas.training.recipe import Recipe
from nas.training.runtime import Runtime

# A space of narrow designs (8 to 24 channels): a training step costs milliseconds
TINY_SPACE = "\n".join([
    'name = "tiny"', "channels = [[8, 16], [8, 16], [16], [16, 24]]",
    'conv1_kind = ["standard", "separable"]', 'conv2_kind = ["standard", "separable", "depthwise"]',
    "dilation = [1, 2]", 'downsample = ["stride2", "dilated_stride2"]',
    'shortcut = ["none", "conv1x1"]', "dropout = [0.0]", 'head = ["conv1x1", "fc"]',
    'order = ["relu_bn", "bn_relu"]'])
# 800 training images outside a 200-image hold-out; batch 32 gives OneCycle its 8 steps at 2x0.25
CHEAP = ["--fidelities", "2x0.25,1x0.75", "--truth-fidelity", "1x1.0", "--val-images", "200",
         "--batch-size", "32", "--workers", "0", "--designs", "3"]
REAL_TRAIN = nas.search.calibrate.race


@pytest.fixture(autouse=True)
def one_thread():
    """These nets are tiny: one thread trains them faster than two (OpenMP's fork and join cost
    more than their convolutions), and a machine busy with other work does not slow them tenfold."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def calibrate_args(tmp_path, data_dir, *extra: str) -> list[str]:
    space = tmp_path / "tiny.toml"
    space.write_text(TINY_SPACE)
    return ["calibrate", "--space", str(space), "--data-dir", str(data_dir),
            "--out", str(tmp_path / "cal" / "calibration.json"), *CHEAP, *extra]


def counting_train(monkeypatch, stop_after: int | None = None) -> list[int]:
    """Count the trainings `nas.search.calibrate` starts; the one after `stop_after` is a Ctrl-C."""
    calls: list[int] = []

    def train(*args, **kwargs):
        if stop_after is not None and len(calls) == stop_after:
            raise KeyboardInterrupt
        calls.append(1)
        return REAL_TRAIN(*args, **kwargs)

    monkeypatch.setattr(nas.search.calibrate, "race", train)
    return calls


def test_calibration_is_written_at_once_and_resumes_without_retraining(
        tmp_path, tiny_data_dir, monkeypatch, capsys) -> None:
    args = calibrate_args(tmp_path, tiny_data_dir)
    out = tmp_path / "cal" / "calibration.json"
    counting_train(monkeypatch, stop_after=4)
    assert main(args) == 130
    err = capsys.readouterr().err
    assert "Continue with: nas calibrate" in err and "--resume" not in err and err.count("\n") == 1
    first = json.loads(out.read_text())
    assert len(first["designs"]) == 3 and len(first["results"]) == 4  # each result at once
    assert [r["fidelity"] for r in first["results"]] == ["2x0.25"] * 3 + ["1x0.75"]  # cheapest first
    for design in first["designs"]:
        assert set(design["proxies"]) == {"synflow", "naswot", "grad_norm"} and design["params"] > 0

    calls = counting_train(monkeypatch)
    assert main(args) == 0
    assert len(calls) == 3 * 3 - 4  # only what was missing
    state = json.loads(out.read_text())
    assert state["results"][:4] == first["results"] and state["designs"] == first["designs"]
    assert len(state["results"]) == 9
    assert {(r["design"], r["fidelity"]) for r in state["results"]} == {
        (i, f) for i in range(3) for f in ("2x0.25", "1x0.75", "1x1.0")}
    rows = {row["score"]: row for row in state["summary"]}
    assert set(rows) == {"2x0.25", "1x0.75", "synflow", "naswot", "grad_norm", "params", "FLOPs", "img/s"}
    truth = {r["design"]: r["val_acc"] for r in state["results"] if r["fidelity"] == "1x1.0"}
    truth = [truth[i] for i in range(3)]
    params = [d["params"] for d in state["designs"]]
    expected = stats.spearmanr(params, truth).statistic
    assert rows["params"]["rho"] == pytest.approx(expected) if not math.isnan(expected) \
        else rows["params"]["rho"] is None
    for row in rows.values():
        assert row["designs"] == 3 and row["top3"] == 3  # 3 designs: every top 3 is all of them
        assert row["rho"] is None or -1 <= row["rho"] <= 1
    assert rows["1x0.75"]["seconds_per_design"] > 0 and rows["params"]["seconds_per_design"] == 0
    assert "ρ per minute" in capsys.readouterr().out

    calls = counting_train(monkeypatch)
    assert main(args) == 0 and not calls  # everything is there: nothing is trained again
    assert main(["calibrate", "--show", "--out", str(out)]) == 0 and not calls
    shown = capsys.readouterr().out
    assert "synflow" in shown and "top-3 overlap" in shown and "9 of 9 trainings done" in shown

    # the same file with other settings is refused, before the data is read
    assert main(calibrate_args(tmp_path, tmp_path / "no-data", "--truth-fidelity", "2x1.0")) == 2
    err = capsys.readouterr().err
    assert "was made with other settings" in err and "truth_fidelity 1x1.0 there, 2x1.0 here" in err
    assert err.count("\n") == 1 and not calls
    here = Runtime.pick().precision  # trainings in bf16 and in fp32 are not mixed in one file
    other = {"fp32": "bf16", "bf16": "fp32"}[here]
    assert state["settings"]["precision"] == here
    assert main(calibrate_args(tmp_path, tmp_path / "no-data", "--precision", other)) == 2
    assert f"precision {here} there, {other} here" in capsys.readouterr().err and not calls


@pytest.mark.parametrize("extra,message", [
    (["--fidelities", "0x0.1"], "give EPOCHSxFRACTION"),
    (["--fidelities", "3x1.5"], "give EPOCHSxFRACTION"),
    (["--truth-fidelity", "ten"], "--truth-fidelity ten: give EPOCHSxFRACTION"),
    (["--fidelities", "1x1.0"], "none the same as --truth-fidelity"),
    (["--designs", "2"], "give at least 3"),
    (["--fill-params", "1.5"], "--fill-params 1.5: give a share of the parameter limit"),
    (["--fidelities", "1x0.1"], "OneCycle needs at least 8 steps"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, tiny_data_dir, capsys, extra, message) -> None:
    assert main(calibrate_args(tmp_path, tiny_data_dir, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "cal").exists()  # nothing written


def test_show_without_a_file_is_one_line(tmp_path, capsys) -> None:
    assert main(["calibrate", "--show", "--out", str(tmp_path / "none.json")]) == 2
    assert "no calibration at" in capsys.readouterr().err


def test_agreement_of_rankings() -> None:
    truth = [0.5, 0.7, 0.6, 0.9, 0.8]
    assert agreement(truth, truth) == (pytest.approx(1.0), pytest.approx(1.0), 3)
    rho, tau, top = agreement([-x for x in truth], truth)
    assert (rho, tau, top) == (pytest.approx(-1.0), pytest.approx(-1.0), 1)  # top 3 of 5 share one
    rho, tau, top = agreement([1.0, 3.0, 2.0, 5.0, float("-inf")], truth)  # naswot can be -inf
    assert rho == pytest.approx(stats.spearmanr([1, 3, 2, 5, -9], truth).statistic) and top == 2
    assert agreement([1.0, 1.0, 1.0], [0.1, 0.2, 0.3])[:2] == (None, None)  # constant: undefined
    assert agreement([1.0, 2.0], [0.1, 0.2])[:2] == (None, None)  # two designs say nothing


def test_fidelity_labels() -> None:
    fidelity = parse_fidelity(" 3X0.10 ")
    assert (fidelity.epochs, fidelity.data_fraction) == (3, 0.1)
    assert nas.search.calibrate.label(parse_fidelity("10x1")) == "10x1.0"


def test_a_filled_calibration_widens_the_same_draws() -> None:
    """`--fill-params` gives the unfilled calibration's designs, each only wider: a paired test."""
    space = load_space(DEFAULT_SPACE)
    plain = pick_designs(space, Limits(), 5, seed=0)
    filled = pick_designs(space, Limits(), 5, seed=0, fill=0.9)
    assert [name for name, _, _ in plain] == [name for name, _, _ in filled]
    for (_, before, was), (_, after, now) in zip(plain, filled):
        widths = [block.channels for block in after.blocks]
        assert with_widths(before, widths) == after and now.passed
        assert all(b.channels <= a.channels for b, a in zip(before.blocks, after.blocks))
        assert now.params >= min(was.params, 0.9 * Limits().max_params) or now.flops > 0.9 * Limits().max_flops
    assert sum(now.params > was.params for (_, _, was), (_, _, now) in zip(plain, filled)) >= 3


def test_a_file_made_before_filling_existed_is_an_unfilled_one(tmp_path) -> None:
    space = load_space(DEFAULT_SPACE)
    settings = nas.search.calibrate.make_settings(space, Recipe(), "1x0.5", "2x1.0",
                                                  CalibrationSettings(space="", designs=3))
    older = settings.to_dict()
    del older["fill_params"]
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"settings": older, "designs": [], "results": []}))
    assert nas.search.calibrate.check_results(path, settings) is not None
    with pytest.raises(NasError, match="fill_params 0.0 there, 0.9 here"):
        nas.search.calibrate.check_results(path, replace(settings, fill_params=0.9))


def test_a_file_written_under_the_old_names_still_reads(tmp_path, capsys) -> None:
    """A calibration file whose settings say `truth` and `fill_budget` (the names before #35) reads
    as this version names them: compared, resumed and shown."""
    space = load_space(DEFAULT_SPACE)
    settings = nas.search.calibrate.make_settings(space, Recipe(), "1x0.5", "2x1.0",
                                                  CalibrationSettings(space="", designs=3, fill_params=0.9))
    older = settings.to_dict()
    older["truth"], older["fill_budget"] = older.pop("truth_fidelity"), older.pop("fill_params")
    path = tmp_path / "calibration.json"
    path.write_text(json.dumps({"settings": older, "designs": [], "results": []}))
    assert nas.search.calibrate.check_results(path, settings)["settings"]["truth_fidelity"] == "2x1.0"
    assert main(["calibrate", "--show", "--out", str(path)]) == 0
    assert "truth fidelity 2x1.0" in capsys.readouterr().out


def test_the_committed_calibration_still_shows() -> None:
    path = Path(__file__).parents[1] / "studies" / "calibration" / "calibration.json"
    state = nas.search.calibrate.read(path)
    assert state["settings"]["truth_fidelity"] == "10x1.0" and state["settings"]["fill_params"] == 0.0
    assert nas.search.calibrate.summarise(state)  # every row computed from the stored results
