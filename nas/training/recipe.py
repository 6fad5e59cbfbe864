"""The training recipe: *what* is trained, every default in one place.

Where it runs (device, precision, loader workers, memory layout) is `nas.training.runtime.Runtime`, kept
apart so that a run resumed on another machine still counts as the same run.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from nas.data.augment_config import AugmentConfig
from nas.design.config import parse_dataclass
from nas.errors import NasError

# Peak learning rate and weight decay when the recipe names none: SGD's were measured on the
# reference (studies/reference-20ep); AdamW's are the usual ones for small conv nets.
OPTIMIZER_DEFAULTS = {"sgd": {"lr": 0.2, "weight_decay": 5e-4},
                      "adamw": {"lr": 3e-3, "weight_decay": 0.05}}

# `nas train-best`'s epochs when neither --epochs nor a time budget sets them
FINAL_EPOCHS = 100


@dataclass(frozen=True)
class Recipe:
    """Everything that decides how a model is trained (and so, with the seed, its weights)."""

    epochs: int = 15
    batch_size: int = 256  # CPU throughput peaked near 256 in a probe
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float | None = None  # peak of OneCycle, start of cosine; None: OPTIMIZER_DEFAULTS
    momentum: float = 0.9  # SGD, Nesterov
    weight_decay: float | None = None  # None: OPTIMIZER_DEFAULTS
    # onecycle: rise over `warmup`, cosine fall; linear: the same with straight lines (airbench's
    # triangle); cosine: cosine from the peak, no warm-up
    schedule: Literal["onecycle", "linear", "cosine"] = "onecycle"
    warmup: float = 0.25  # OneCycle's (and linear's) share of the steps spent rising to the peak
    label_smoothing: float = 0.1  # softer targets: the short schedule overfits less
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # The knobs of a stronger recipe, each off by default so that earlier runs stay reproducible.
    ema: float = 0.0  # decay per step of an average of the weights, evaluated and saved (0: off)
    no_decay_norm_bias: bool = False  # weight decay on conv and linear weights only
    norm_bias_lr_scale: float = 1.0  # lr factor of the BatchNorm biases (airbench raises theirs)
    mixup: float = 0.0  # α of Beta(α, α) for MixUp of a batch with its shuffled self (0: off)
    cutmix: float = 0.0  # α for CutMix likewise; with both, each mixed batch picks one at 0.5
    mix_ramp: float = 0.0  # share of the epochs over which the mixing probability rises 0 -> 1
    whiten_init: bool = False  # the first conv starts as the images' patch-whitening filters (airbench)
    preset: str = ""  # the preset laid over the base recipe (`PRESETS`; "": none), a label only

    def __post_init__(self) -> None:
        for name, value in OPTIMIZER_DEFAULTS[self.optimizer].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        # argparse reads "inf" as a float: an infinite lr or decay would pass a sign test
        checks = {"epochs": self.epochs >= 1, "batch_size": self.batch_size >= 1,
                  "lr": 0 < self.lr < math.inf, "weight_decay": 0 <= self.weight_decay < math.inf,
                  "momentum": 0 <= self.momentum < 1, "warmup": 0 < self.warmup < 1,
                  "label_smoothing": 0 <= self.label_smoothing < 1,
                  "seed": 0 <= self.seed < 2**32,  # numpy's generators take no negative seed
                  "ema": 0 <= self.ema < 1, "norm_bias_lr_scale": 0 < self.norm_bias_lr_scale < math.inf,
                  "mixup": 0 <= self.mixup < math.inf, "cutmix": 0 <= self.cutmix < math.inf,
                  "mix_ramp": 0 <= self.mix_ramp <= 1}
        rules = {"epochs": "a positive whole number", "batch_size": "a positive whole number",
                 "lr": "positive and finite", "weight_decay": "zero or positive, and finite",
                 "momentum": "in [0, 1)", "warmup": "in (0, 1)", "label_smoothing": "in [0, 1)",
                 "seed": f"a whole number from 0 to {2**32 - 1}",
                 "ema": "in [0, 1) (a decay per step, e.g. 0.999; 0: off)",
                 "norm_bias_lr_scale": "positive and finite",
                 "mixup": "zero (off) or a positive, finite Beta α",
                 "cutmix": "zero (off) or a positive, finite Beta α",
                 "mix_ramp": "in [0, 1] (a share of the epochs)"}
        for name, ok in checks.items():
            if not ok:
                raise NasError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be {rules[name]}")
        if self.augment.flip == "alternating" and self.augment.engine != "batched":
            # the per-image engine draws each flip on its own: it would silently flip at random
            raise NasError("--flip alternating needs --augment batched")

    def mix_probability(self, epoch: int) -> float:
        """How likely a batch of `epoch` (from 1) is mixed: 0 in the first epoch under a ramp, so
        the early epochs see clean images, rising linearly to 1 after `mix_ramp` of the epochs."""
        ramp = self.mix_ramp * self.epochs
        return 1.0 if ramp == 0 else min(1.0, (epoch - 1) / ramp)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (tuples as lists), equal to what recipe.json reads back."""
        return json.loads(json.dumps(asdict(self)))


# Where a run trained, kept in recipe.json until `Runtime` was split off (2026-11-26): not part of
# the recipe, so dropped when such a file is read
RUNTIME_KEYS = ("device", "precision", "channels_last", "workers")


def recipe_from_dict(data: dict[str, Any], source: str = "<recipe>") -> Recipe:
    """The inverse of `Recipe.to_dict` (recipe.json files, study settings); a recipe saved by an
    older version reads too (`RUNTIME_KEYS`; knobs added since take their defaults, each off)."""
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in RUNTIME_KEYS}
    return parse_dataclass(Recipe, data, "", source)


def as_written_today(data: dict[str, Any]) -> dict[str, Any]:
    """A saved recipe as `Recipe.to_dict` writes it now: knobs added since it was saved take their
    defaults (each off, so the same training), and a run saved before them still resumes. Data
    that is no recipe comes back unchanged (and so differs from any recipe)."""
    try:
        return recipe_from_dict(data).to_dict()
    except NasError:
        return data


def fixed_part(data: dict[str, Any]) -> dict[str, Any]:
    """What a study or a calibration stores of a recipe: all but the epochs (its fidelity sets
    them), as written today (see `as_written_today`)."""
    return {k: v for k, v in as_written_today(data).items() if k != "epochs"}
