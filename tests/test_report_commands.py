"""The results document's "Reproduce" commands: the search's, read by `nas`'s own parser, makes a
study with the settings of the one it reproduces."""

from __future__ import annotations

import optuna
import pytest

from nas.cli.parser import build_parser
from nas.cli.search import study_settings
from nas.data.augment_config import AugmentConfig
from nas.design.limits import Limits
from nas.report.document import search_command
from nas.report.runs import made_by
from nas.search.settings import Fidelity, StudySettings, mode
from nas.search.space import load_space
from nas.training.recipe import Recipe, fixed_part

SETTINGS = {  # keyword arguments of StudySettings, and the recipe they store
    "defaults": ({}, Recipe()),
    "every setting changed": (
        {"limits": Limits(max_params=150_000, max_flops=40_000_000, min_rf=30),
         "fidelity": Fidelity(epochs=3, data_fraction=0.1, val_images=500),
         "second_objective": "params", "fill_params": 0.0, "precision": "bf16", "sampler": "random"},
        Recipe(batch_size=64, optimizer="adamw", seed=3, label_smoothing=0.2, ema=0.999,
               no_decay_norm_bias=True, norm_bias_lr_scale=4.0, mixup=0.2, cutmix=1.0, mix_ramp=0.5,
               whiten_init=True,
               augment=AugmentConfig(engine="albumentations", p_affine=0.3, p_cutout=0.0))),
    "schedule and flips": ({"fill_params": 0.5, "precision": "fp32"},
                           Recipe(lr=0.1, weight_decay=1e-3, schedule="cosine", warmup=0.1,
                                  augment=AugmentConfig(flip="alternating"))),
    "equal time, defaults": ({"fidelity": Fidelity(time_share=0.05), "budget_minutes": 12.5,
                              "device": "AMD EPYC (2 cores), bf16"}, Recipe()),
    "equal time, rounds and share": ({"fidelity": Fidelity(time_share=0.1, rounds=6, data_fraction=0.5),
                                      "budget_minutes": 3.0, "device": "cuda"}, Recipe(batch_size=512)),
}


@pytest.mark.parametrize("kwargs,recipe", SETTINGS.values(), ids=SETTINGS.keys())
def test_the_search_command_makes_a_study_with_the_same_settings(kwargs, recipe) -> None:
    space = load_space(mode(kwargs.get("budget_minutes", 0.0)).space)  # the mode's: no --space
    settings = StudySettings(space.to_dict(), recipe=fixed_part(recipe.to_dict()), **kwargs)
    study = optuna.create_study(study_name="s")
    study.set_user_attr("settings", settings.to_dict())
    storage = "sqlite:///elsewhere/nas.db"
    command = search_command(study, storage)
    assert command.startswith("nas search ")
    args = build_parser().parse_args(command.split()[1:])  # as `nas search` reads it
    # the command line's own reading, on a machine of the study's precision and device
    assert study_settings(args, space, args.precision, settings.device, args.budget_minutes) == settings
    assert (args.study, args.storage, args.space) == ("s", storage, None)


def test_a_resumed_run_is_remade_by_its_command_without_resume() -> None:
    command = "nas train-best --trial 1 --epochs 40 --out studies/s/trial-1 --resume"
    assert made_by({"command": command}) == "nas train-best --trial 1 --epochs 40 --out studies/s/trial-1"
