"""Which recipe a final training uses for its budget: the presets, each with the evidence behind it.

`nas train` and `nas train-best` lay a preset over their base recipe (the defaults, or the study's
recipe) and the flags given over that: a knob given on the command line always wins. Which preset
is chosen by the epochs the run trains (given, or planned from its minutes on this device), since
that is what a recipe's knobs respond to; a budget in minutes buys different epochs on each
machine. The search's own recipe is never touched: a study keeps the recipe it was calibrated with.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from nas.design.config import ArchConfig
from nas.errors import NasError
from nas.training.recipe import Recipe

AUTO = "auto"  # --preset's default: chosen by the run's epochs
NONE = "none"  # the base recipe as it is


@dataclass(frozen=True)
class Preset:
    """Knobs for schedules of at most `max_epochs` epochs (None: any longer), and why."""

    name: str
    max_epochs: int | None
    knobs: dict[str, Any] = field(default_factory=dict)
    why: str = ""

    def over(self, base: Recipe, design: ArchConfig | None = None) -> Recipe:
        """`base` with this preset's knobs (`augment`'s key by key) that `design` can take (all,
        without one; `takes`), labelled with its name."""
        knobs = {k: v for k, v in self.knobs.items() if k != "augment" and takes(design, k)}
        augment = replace(base.augment, **self.knobs.get("augment", {}))
        return replace(base, **knobs, augment=augment, preset=self.name)

    def describe(self) -> str:
        """The name and the knobs as flags, e.g. "short (--no-decay-norm-bias --norm-bias-lr-scale 4)"."""
        def flag(knob: str, value: Any) -> str:
            shown = "" if value is True else f" {value:g}" if isinstance(value, float) else f" {value}"
            return f"--{knob.replace('_', '-')}{shown}"

        knobs = {k: v for k, v in self.knobs.items() if k != "augment"} | self.knobs.get("augment", {})
        flags = " ".join(flag(k, v) for k, v in knobs.items())
        return f"{self.name} ({flags or 'the base recipe'})"


def takes(design: ArchConfig | None, knob: str) -> bool:
    """Whether `design` (None: any) can train with a preset's `knob`; it gets the preset's other
    knobs. `whiten_init` whitens the first conv, which must be a standard one (`nas.training.whiten`)."""
    return knob != "whiten_init" or design is None or design.blocks[0].convs[0].kind == "standard"


# Shortest first: a run takes the first preset whose max_epochs its epochs do not exceed.
PRESETS = (
    Preset("short", 30,
           {"no_decay_norm_bias": True, "norm_bias_lr_scale": 4.0, "whiten_init": True},
           "studies/recipe-short (10 epochs of trial 12 on the 45,000 search-training images, about "
           "5 min on the Zen 4, 2 seeds): the pair +0.49 over the plain recipe, beyond both "
           "spreads; the whitened first conv +0.78 over the pair, beyond both; alternating flip "
           "(+0.13), the linear schedule (+0.22), both with the whitening (+0.30 over it) and label "
           "smoothing 0.2 (-0.51) within noise. 30 epochs: three times the screened length"),
    Preset("long", None,
           {"no_decay_norm_bias": True, "norm_bias_lr_scale": 4.0},
           "studies/recipe-screen: each knob gained more than its spread over 3 seeds (8 epochs "
           "on 30 %); c1c2c3c4o-final's 90.63 % in 100 epochs was trained with both. Not yet "
           "screened at 100 epochs"),
)
BY_NAME = {p.name: p for p in PRESETS}
CHOICES = (AUTO, *BY_NAME, NONE)


def preset_for(epochs: int) -> Preset:
    """The preset for a schedule of `epochs` epochs."""
    return next(p for p in PRESETS if p.max_epochs is None or epochs <= p.max_epochs)


def with_preset(base: Recipe, name: str, epochs: int, design: ArchConfig | None = None) -> Recipe:
    """`base` at `epochs` with the preset `name` (AUTO: chosen by the epochs; NONE: none) laid over
    it, as far as `design` takes its knobs (`takes`)."""
    base = replace(base, epochs=epochs)
    if name == NONE:
        return base
    if name != AUTO and name not in BY_NAME:
        raise NasError(f"--preset {name}: unknown; choose one of {', '.join(CHOICES)}")
    return (preset_for(epochs) if name == AUTO else BY_NAME[name]).over(base, design)


def presets_help() -> str:
    """--preset's help: every preset and the epochs it is chosen for, read from `PRESETS`."""
    ranges, low = [], 1
    for p in PRESETS:
        ranges.append(f"{p.describe()} for {low}–{p.max_epochs} epochs" if p.max_epochs
                      else f"{p.describe()} beyond")
        low = (p.max_epochs or 0) + 1
    return (f"the knobs laid over the base recipe before the flags given: {AUTO} (default) picks by "
            f"the epochs the run trains, given or planned from its minutes: {'; '.join(ranges)}; "
            f"{NONE}: the base recipe alone (docs/training.md)")
