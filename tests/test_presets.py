"""The final training's recipe follows its budget: the preset chosen for the epochs, the flags on top."""

from __future__ import annotations

import json
from pathlib import Path

from nas.cli.main import build_parser, main
from nas.cli.train import at_its_epochs
from nas.data.augment_config import AugmentConfig
from nas.training.budget import Plan
from nas.training.presets import AUTO, BY_NAME, NONE, PRESETS, preset_for, with_preset
from nas.training.recipe import Recipe, recipe_from_dict
from nas.training.run import RunSpec, planned
from tests.conftest import ROOT

TINY = ["--batch-size", "32", "--workers", "0", "--data-fraction", "0.3"]


def test_each_budget_gets_the_first_preset_that_covers_it() -> None:
    short = BY_NAME["short"]
    assert [preset_for(e).name for e in (1, short.max_epochs, short.max_epochs + 1, 1000)] == \
        ["short", "short", "long", "long"]
    assert PRESETS[-1].max_epochs is None  # every budget has a preset
    limits = [p.max_epochs for p in PRESETS[:-1]]
    assert limits == sorted(limits)


def test_a_preset_lays_its_knobs_and_label_over_the_base() -> None:
    base = Recipe(lr=0.1, label_smoothing=0.2)
    for epochs in (10, 100):
        recipe = with_preset(base, AUTO, epochs)
        chosen = preset_for(epochs)
        assert recipe.epochs == epochs and recipe.preset == chosen.name
        assert {k: getattr(recipe, k) for k in chosen.knobs} == chosen.knobs
        assert (recipe.lr, recipe.label_smoothing) == (0.1, 0.2)  # the base's other knobs kept
    assert with_preset(base, NONE, 10) == Recipe(lr=0.1, label_smoothing=0.2, epochs=10)
    assert with_preset(base, "long", 10).preset == "long"  # named: whatever the epochs


def test_a_preset_sets_augmentation_keys_one_by_one() -> None:
    from nas.training.presets import Preset

    base = Recipe(augment=AugmentConfig(p_cutout=0.1))
    recipe = Preset("x", None, {"ema": 0.9, "augment": {"flip": "alternating"}}).over(base)
    assert (recipe.ema, recipe.augment.flip, recipe.augment.p_cutout) == (0.9, "alternating", 0.1)
    assert Preset("x", None, {"augment": {"flip": "alternating"}}).describe() == "x (--flip alternating)"


def test_a_design_gets_the_knobs_it_can_take() -> None:
    """A whitened first conv needs a standard one: a design whose first conv is separable gets
    the preset's other knobs (--whiten-init given by hand is refused at training instead)."""
    from dataclasses import replace

    import nas
    from nas.training.presets import Preset
    from tests.conftest import REFERENCE

    standard = nas.load_config(REFERENCE)
    c1 = standard.blocks[0]
    separable = replace(standard, blocks=(replace(c1, convs=(replace(c1.convs[0], kind="separable"),
                                                             *c1.convs[1:])), *standard.blocks[1:]))
    preset = Preset("x", None, {"ema": 0.9, "whiten_init": True})
    assert (preset.over(Recipe(), standard).whiten_init, preset.over(Recipe(), standard).ema) == (True, 0.9)
    assert (preset.over(Recipe(), separable).whiten_init, preset.over(Recipe(), separable).ema) == (False, 0.9)


def test_the_documented_presets_are_the_code_s() -> None:
    """docs/training.md's table names each preset's epochs and knobs as `PRESETS` holds them."""
    text = (ROOT / "docs" / "training.md").read_text()
    for p in PRESETS:
        row = next((line for line in text.splitlines() if line.startswith(f"| `{p.name}` |")), None)
        assert row is not None, f"docs/training.md has no row for the preset {p.name}"
        assert f"{p.max_epochs}" in row if p.max_epochs else "beyond" in row
        knobs = {k: v for k, v in p.knobs.items() if k != "augment"} | {
            f"augment.{k}": v for k, v in p.knobs.get("augment", {}).items()}
        for knob, value in knobs.items():  # as TOML writes it: `knob = true`, `augment.flip = "alternating"`
            shown = f'"{value}"' if isinstance(value, str) else str(value).lower()
            assert f"`{knob} = {shown}`" in row.lower(), (p.name, knob)


def run_recipe(tmp_path: Path, tiny_data_dir: Path, *flags: str) -> dict:
    out = tmp_path / "run"
    assert main(["train", "reference", *TINY, "--data-dir", str(tiny_data_dir),
                 "--out", str(out), *flags]) == 0
    return json.loads((out / "recipe.json").read_text())


def test_nas_train_writes_the_preset_it_used_and_the_flags_win(tmp_path, tiny_data_dir) -> None:
    recipe = run_recipe(tmp_path, tiny_data_dir, "--epochs", "1", "--norm-bias-lr-scale", "2")
    chosen = preset_for(1)
    assert recipe["preset"] == chosen.name and recipe["norm_bias_lr_scale"] == 2.0  # the flag's
    assert recipe == recipe_from_dict(recipe).to_dict()  # recipe.json reads back


def test_preset_none_is_the_base_recipe(tmp_path, tiny_data_dir) -> None:
    assert run_recipe(tmp_path, tiny_data_dir, "--epochs", "1", "--preset", "none") == \
        Recipe(epochs=1, batch_size=32).to_dict()


def test_a_budget_in_minutes_takes_the_preset_of_its_planned_epochs() -> None:
    args = build_parser().parse_args(["train", "reference", "--lr", "0.3"])
    spec = RunSpec(None, Recipe(), Path("x"))  # type: ignore[arg-type]  # the design plays no part
    for epochs in (5, 50):
        plan = Plan(budget_minutes=1.0, epochs=epochs, epoch_seconds=1.0, final_eval_seconds=0.0,
                    device="cpu", speed={})
        recipe = at_its_epochs(planned(spec, plan), args, Recipe(), AUTO).recipe
        assert (recipe.epochs, recipe.preset, recipe.lr) == (epochs, preset_for(epochs).name, 0.3)


def test_recipes_written_before_presets_still_load() -> None:
    folders = sorted(p.parent for p in ROOT.glob("studies/**/recipe.json"))
    assert len(folders) > 100  # the committed runs: each one's recipe reads; one saved before
    for folder in folders:     # presets has no "preset" key and reads as none ("")
        data = json.loads((folder / "recipe.json").read_text())
        assert recipe_from_dict(data, str(folder)).preset == data.get("preset", "")
    assert sum("preset" not in json.loads((f / "recipe.json").read_text()) for f in folders) > 100


def test_a_resumed_run_keeps_the_preset_it_began_with(tmp_path) -> None:
    from nas.cli.train import preset_of

    def args(*flags: str):
        return build_parser().parse_args(["train", "reference", *flags])

    (tmp_path / "recipe.json").write_text(json.dumps(Recipe(preset="long").to_dict()))
    assert preset_of(args("--resume"), tmp_path) == "long"  # whatever its epochs now give
    assert preset_of(args("--resume", "--preset", "short"), tmp_path) == "short"  # asked for
    assert preset_of(args(), tmp_path) == AUTO  # a new run
    (tmp_path / "recipe.json").write_text(json.dumps(Recipe().to_dict() | {"preset": None}))
    assert preset_of(args("--resume"), tmp_path) == NONE
    old = Recipe().to_dict()
    del old["preset"]  # saved before presets: it resumes as it began, with none
    (tmp_path / "recipe.json").write_text(json.dumps(old))
    assert preset_of(args("--resume"), tmp_path) == NONE
