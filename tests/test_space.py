"""The default space and what a search stores per trial: the suggest ↔ params round trip,
filling a design to the parameter limit (every rule kept, as far as one common factor goes), the zero-cost
proxies on every feasible trial, and the dry run's quartiles."""

from __future__ import annotations

from dataclasses import replace

import optuna
import pytest
import torch
from optuna.trial import TrialState

import nas
from nas.cli.main import main
from nas.data.cifar10 import load_cifar10
from nas.data.settings import resolve_data_dir
from nas.design.config import ConvSpec
from nas.design.files import DEFAULT_SPACE, REFERENCE
from nas.design.limits import Limits
from nas.design.rules import check
from nas.errors import ConfigError
from nas.search.fill import WIDTH_STEP, fill_params, width_ladder
from nas.search.proxies import proxy_attrs, proxy_batch
from nas.search.space import EARLY, TWIN, baseline_params, load_space, space_from_dict, with_widths
from nas.search.trials import FILLED, settings_of, trial_design
from tests.conftest import ROOT
from tests.test_calibrate import TINY_SPACE, one_thread  # noqa: F401 (a fixture, used)
from tests.test_search import AlwaysPrune, load, search_args


def sampled_designs(count: int, seed: int = 0) -> list[nas.ArchConfig]:
    space = load_space(DEFAULT_SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    designs = []
    for _ in range(count):
        trial = study.ask()
        designs.append(space.suggest(trial))
        study.tell(trial, 0.0)
    return designs


def widths(config: nas.ArchConfig) -> tuple[int, ...]:
    return tuple(block.channels for block in config.blocks)


def test_the_space_holds_the_reference_and_round_trips() -> None:
    space = load_space(DEFAULT_SPACE)
    assert all(w % 8 == 0 for ws in space.channels for w in ws)
    reference = nas.load_config(REFERENCE)
    params = space.params_of(reference)  # the reference lies inside the space
    assert widths(space.design(params)) == (32, 32, 32, 64)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2))
    for _ in range(60):
        trial = study.ask()
        config = space.suggest(trial)
        assert space.params_of(config) == trial.params
        assert space.design(trial.params, trial.number) == config
        study.tell(trial, 0.0)


def test_downsample_none_keeps_the_resolution_into_the_next_block() -> None:
    space = load_space(DEFAULT_SPACE)
    twin = baseline_params(space)[1][1]
    kept = space.design(twin | {"c3_downsample": "none"})
    assert kept.blocks[2].convs[2] == nas.ConvSpec("standard", 1, 1, 1)
    assert space.params_of(kept)["c3_downsample"] == "none"
    model = nas.build_model(kept).eval()
    sizes = {}
    for name in ("c1", "c2", "c3", "c4"):
        getattr(model, name).register_forward_hook(
            lambda m, i, out, name=name: sizes.update({name: tuple(out.shape[-2:])}))
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    assert sizes == {"c1": (16, 16), "c2": (8, 8), "c3": (8, 8), "c4": (8, 8)}  # twin: C3, C4 at 4×4
    verdict, twin_verdict = check(kept), check(space.design(twin))
    assert verdict.params == twin_verdict.params and verdict.flops > twin_verdict.flops
    assert verdict.passed and verdict.receptive_field < twin_verdict.receptive_field


def test_early_stride2_halves_the_resolution_at_conv1() -> None:
    data = load_space(DEFAULT_SPACE).to_dict()
    space = space_from_dict(data | {"downsample": [(*d, "early_stride2") for d in data["downsample"]]}, "early")
    twin = baseline_params(space)[1][1]
    early = space.design(twin | {"c1_downsample": "early_stride2"})
    conv1, _, conv3 = early.blocks[0].convs
    assert conv1.stride == 2 and conv3 == nas.ConvSpec("standard", 1, 1, 1)
    assert space.params_of(early)["c1_downsample"] == "early_stride2"  # not "none": conv 1 strides
    model = nas.build_model(early).eval()
    sizes = []
    for module in model.c1.modules():
        if isinstance(module, torch.nn.Conv2d) and module.kernel_size == (3, 3) and module.groups == 1:
            module.register_forward_hook(lambda m, i, out: sizes.append(out.shape[-1]))
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    assert sizes[:3] == [16, 16, 16]  # every conv of C1 at 16×16; the twin's first two at 32×32
    verdict, twin_verdict = check(early), check(space.design(twin))
    assert verdict.passed and verdict.params == twin_verdict.params
    assert verdict.flops < 0.7 * twin_verdict.flops


def test_the_fast_space_keeps_the_twin_as_its_baseline_and_cheaper_first_blocks() -> None:
    space = load_space(ROOT / "search_spaces" / "c1c2c3c4o-fast.toml")
    labels, params = zip(*baseline_params(space))
    assert labels == ("reference", TWIN)
    twin = space.design(params[1])  # outside the space (its C1 downsamples at conv 3), trial 1
    assert check(twin).passed and check(twin).params == 198_496
    assert twin.blocks[0].convs[2] == ConvSpec(kind="standard", stride=2, dilation=2, padding=2)
    assert max(space.channels[0]) <= 32 < max(space.channels[3])
    assert all("early_stride2" in choices for choices in space.downsample)
    # C1 as the equal-time winners had it: 32 channels, early stride, a standard first conv (so
    # that every design takes the whitened first conv of the final training's short preset)
    assert (space.channels[0], space.downsample[0], space.conv1_kind[0]) == ((32,), (EARLY,), ("standard",))
    assert space.conv1_kind[1:] == (("standard", "separable"),) * 3
    assert space.constants() == {"c1_channels", "c1_downsample", "c1_conv1"}
    assert (max(space.channels[2]), max(space.channels[3])) == (64, 96)  # wider mostly broke a rule


def test_a_constant_knob_is_not_sampled_and_a_baseline_may_set_it(tmp_path) -> None:
    """A knob with one choice is no Optuna parameter of a sampled trial; a baseline stores it,
    at a value outside the space if need be, and a study holds both kinds of trial (Optuna
    refuses one parameter with two sets of choices) and rebuilds each design from its params."""
    space = load_space(ROOT / "search_spaces" / "c1c2c3c4o-fast.toml")
    study = optuna.create_study(storage=f"sqlite:///{tmp_path}/s.db",
                                sampler=optuna.samplers.TPESampler(seed=0, multivariate=True, n_startup_trials=3))
    for label, params in baseline_params(space):
        study.enqueue_trial(params, user_attrs={"baseline": label})
    designs = {}

    def objective(trial: optuna.Trial) -> float:
        designs[trial.number] = space.suggest(trial, baseline="baseline" in trial.user_attrs)
        return float(trial.number % 3)

    study.optimize(objective, n_trials=8)
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    for trial in study.trials:
        assert space.design(trial.params, trial.number) == designs[trial.number]
        baseline = trial.number < 2
        assert (space.constants() <= set(trial.params)) == baseline
        assert not baseline or space.params_of(designs[trial.number]) == trial.params
    assert study.trials[1].params["c1_downsample"] == "dilated_stride2"
    assert all(d.blocks[0].convs[0].stride == 2 for n, d in designs.items() if n >= 2)  # early C1
    # a baseline may leave the space only where the space has one choice
    reference = nas.load_config(REFERENCE)
    narrow = space_from_dict(space.to_dict() | {"conv2_kind": ["standard", "separable"]}, "narrow")
    with pytest.raises(ConfigError, match="c2_conv2.*not in the space"):
        narrow.params_of(reference)


def test_downsample_choices_per_block_or_one_list_for_all() -> None:
    data = load_space(DEFAULT_SPACE).to_dict()
    assert data["downsample"][0] == ("stride2", "dilated_stride2")  # C1 always downsamples
    flat = space_from_dict(data | {"downsample": ["stride2"]}, "flat")  # as older studies stored it
    assert flat.downsample == (("stride2",),) * 3
    for bad, fragment in ((["stride2"], "one per block"), ([["stride2"], ["pool"], ["none"]], "unknown choice")):
        with pytest.raises(ConfigError, match=fragment):
            space_from_dict(data | {"downsample": [bad] if fragment == "one per block" else bad}, "bad")


def test_conv1_kinds_per_block_or_one_list_for_all() -> None:
    data = load_space(DEFAULT_SPACE).to_dict()
    flat = space_from_dict(data | {"conv1_kind": ["standard", "separable"]}, "flat")  # older studies
    assert flat.conv1_kind == (("standard", "separable"),) * 4 and flat.digest() == load_space(DEFAULT_SPACE).digest()
    per_block = space_from_dict(data | {"conv1_kind": [["separable"], ["standard"], ["standard"], ["separable"]]}, "b")
    design = per_block.design({k: d.choices[0] for k, d in per_block.distributions().items()})
    assert [block.convs[0].kind for block in design.blocks] == ["separable", "standard", "standard", "separable"]
    assert design.blocks[3].convs[2].kind == "separable"  # C4's conv 3 draws from C4's list
    assert per_block.params_of(design)["c1_conv1"] == "separable"
    outside = replace(design, blocks=(replace(design.blocks[0], convs=(
        replace(design.blocks[0].convs[0], kind="standard"), *design.blocks[0].convs[1:])),
        *design.blocks[1:]))  # C1's conv 1 is a constant of this space: a baseline may set it
    assert per_block.design(per_block.params_of(outside)) == outside
    for bad, fragment in ([["standard"]] * 3, "one per block C1..C4"), ([["standard"], ["pool"]] * 2, "unknown"):
        with pytest.raises(ConfigError, match=fragment):
            space_from_dict(data | {"conv1_kind": bad}, "bad")


def test_width_ladder_steps_up_one_common_factor() -> None:
    ladder = width_ladder((16, 24, 32, 64))
    assert ladder[0] == (16, 24, 32, 64)
    for low, high in zip(ladder, ladder[1:]):
        assert all(a <= b for a, b in zip(low, high)) and low != high
        assert all(w % WIDTH_STEP == 0 for w in high)
    assert (32, 48, 64, 128) in ladder  # factor 2 exactly


def test_filling_keeps_every_rule_and_reaches_the_share_where_it_can() -> None:
    limits, share = Limits(), 0.9
    feasible = reached = 0
    for config in sampled_designs(40):
        before = check(config, limits)
        filled, verdict = fill_params(config, limits, share)
        assert verdict == check(filled, limits)  # the verdict returned is the filled design's
        if not before.passed:  # a design that breaks a rule is left as sampled
            assert filled == config
            continue
        feasible += 1
        assert verdict.passed and verdict.params < limits.max_params  # within the limit, every rule
        assert verdict.params >= before.params
        if before.params >= share * limits.max_params:
            assert filled == config
            continue
        ladder = width_ladder(widths(config))
        assert widths(filled) in ladder  # one common factor, multiples of 8
        reached += verdict.params >= share * limits.max_params
        rung = ladder.index(widths(filled))
        if verdict.params < share * limits.max_params and rung + 1 < len(ladder):
            # short of the share only where the next wider rung breaks a rule (params or FLOPs)
            assert not check(with_widths(config, ladder[rung + 1]), limits).passed
    # most reach it; the others stop a rung short where the wider one breaks the FLOP limit
    assert feasible >= 25 and reached >= 0.5 * feasible, (feasible, reached)


def test_filling_stops_at_the_flop_limit() -> None:
    limits = Limits(max_flops=12_000_000)  # tight: FLOPs bind before parameters do
    space = load_space(DEFAULT_SPACE)  # the reference's feasible twin, at half its widths
    params = dict(space.params_of(nas.load_config(REFERENCE)), c2_conv2="separable",
                  c1_channels=16, c2_channels=16, c3_channels=16, c4_channels=32)
    narrow = space.design(params)
    filled, verdict = fill_params(narrow, limits, 0.9)
    assert verdict.passed and verdict.flops <= limits.max_flops and widths(filled) != widths(narrow)
    ladder = width_ladder(widths(narrow))
    rung = ladder.index(widths(filled))
    assert check(with_widths(narrow, ladder[rung + 1]), limits).broken == ["flops"]


def tiny_space(tmp_path) -> str:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SPACE)
    return str(path)


def test_proxies_are_stored_on_every_feasible_trial_before_training(tmp_path, tiny_data_dir,
                                                                  monkeypatch) -> None:
    monkeypatch.setattr("nas.search.optimize.make_pruner", lambda name, epochs: AlwaysPrune())
    args = search_args(tmp_path, tiny_data_dir, 4, "p", "--space", tiny_space(tmp_path),
                       "--max-params", "16000", "--batch-size", "16")
    assert main(args) == 0
    study = load(tmp_path, "p")
    # what the search took: seed 0, the 10 % split whatever the fidelity (here 25 %)
    batch = proxy_batch(load_cifar10(resolve_data_dir(str(tiny_data_dir))), 0, 200)
    assert any(not t.user_attrs.get("broken") for t in study.trials)
    for trial in study.trials:
        keys = {k for k in trial.user_attrs if k.startswith("proxy_")}
        if trial.user_attrs.get("broken"):
            assert not keys  # infeasible: pruned before anything is measured
            continue
        assert keys == {"proxy_synflow", "proxy_naswot", "proxy_grad_norm", "proxy_ms"}
        # pruned by the pruner after its first epoch, and still measured (before training)
        assert trial.state == TrialState.PRUNED and trial.user_attrs["epochs_run"] == 1
        again = proxy_attrs(trial_design(study, trial), batch, 0)  # the same batch, the same values
        assert {k: v for k, v in again.items() if k != "proxy_ms"} == {
            k: trial.user_attrs[k] for k in keys if k != "proxy_ms"}


def test_a_filled_search_stores_and_rebuilds_the_filled_design(tmp_path, tiny_data_dir,
                                                               capsys) -> None:
    args = search_args(tmp_path, tiny_data_dir, 2, "f", "--space", tiny_space(tmp_path),
                       "--max-params", "40000", "--fill-params", "0.8", "--epochs", "1",
                       "--batch-size", "16")
    assert main(args) == 0
    study = load(tmp_path, "f")
    assert settings_of(study).fill_params == 0.8
    filled = [t for t in study.trials if FILLED.format(1) in t.user_attrs]
    assert filled
    for trial in filled:
        design = trial_design(study, trial)
        assert [b.channels for b in design.blocks] == [trial.user_attrs[FILLED.format(b)]
                                                       for b in range(1, 5)]
        assert nas.param_count(design) == trial.user_attrs["n_params"] < 40_000
    capsys.readouterr()
    # a study cannot mix filled and unfilled trials
    assert main(search_args(tmp_path, tiny_data_dir, 3, "f", "--space", tiny_space(tmp_path),
                            "--max-params", "40000", "--epochs", "1", "--batch-size", "16",
                            "--fill-params", "0.9")) == 2
    assert "fill_params 0.8 there, 0.9 here" in capsys.readouterr().err


def test_dry_run_prints_the_quartiles_of_the_filled_designs(capsys) -> None:
    assert main(["search", "--dry-run", "--trials", "12", "--fill-params", "0"]) == 0
    plain = capsys.readouterr().out
    assert "feasible designs' parameters: min, quartiles, max = " in plain and "widened" not in plain
    assert main(["search", "--dry-run", "--trials", "12", "--fill-params", "0.9"]) == 0
    filled = capsys.readouterr().out
    assert "--fill-params 0.9:" in filled and "designs widened" in filled
    assert "feasible designs' parameters: min, quartiles, max = " in filled
    assert "FLOPs (MACs): min, quartiles, max = " in filled


@pytest.mark.parametrize("value", ["1", "-0.1", "1.5"])
def test_fill_params_out_of_range_is_one_line(value, capsys) -> None:
    assert main(["search", "--dry-run", "--trials", "2", "--fill-params", value]) == 2
    err = capsys.readouterr().err
    assert f"--fill-params {value}" in err and err.count("\n") == 1
