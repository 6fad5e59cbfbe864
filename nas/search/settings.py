"""The settings of searches and calibrations, every default in its one home: what one trial gets
(`Fidelity`), what a study remembers (`StudySettings`), what a calibration compares
(`CalibrationSettings`), where studies are kept and how far designs are filled.

No heavy imports here: the command line reads these defaults for its help.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.data.settings import VAL_IMAGES
from nas.design.files import DEFAULT_SPACE, read_table
from nas.design.limits import Limits
from nas.errors import NasError

if TYPE_CHECKING:
    from nas.search.space import SearchSpace

DEFAULT_STORAGE = "sqlite:///studies/nas.db"  # relative to the current folder
DEFAULT_TRIALS = 50  # `nas search --trials`: finished trials a study is run to
DEFAULT_CALIBRATION = Path("studies/calibration/calibration.json")  # `nas calibrate --out`
# `nas search`'s default: in the calibration the biggest designs ended best (FLOPs rank the truth
# at ρ 0.83, parameters at 0.61), and three of four small designs widened to 0.9 scored 1.1-4.1
# points higher at the search's fidelity (studies/calibration-filled)
SEARCH_FILL = 0.9
SAMPLERS = ("tpe", "random")  # `nas search --sampler`: random sampling is the control TPE must beat
SEARCH_SAMPLER = "tpe"
# `nas search --budget-minutes M`: the share of M each trial trains. 5 % keeps a 50-trial search
# near the equal-epoch default's cost, and ranked ten designs at ρ 0.79 against the full budget;
# 10 % bought +0.03 for 1.8 times the cost, 2 % lost 0.08 (studies/calibration-equal-time)
TIME_SHARE = 0.05


def check_fill(share: float) -> None:
    """NasError (one line) unless `share` is a share of the parameter budget that can be asked for."""
    if not 0 <= share < 1:
        raise NasError(f"--fill-budget {share}: give a share of the parameter budget in [0, 1), "
                       "e.g. 0.9; 0 turns it off")


@dataclass(frozen=True)
class Fidelity:
    """How much training one trial gets: low fidelity keeps a 50-trial search within an hour.
    The default, 4 epochs on 25 % of the images, ranked ten designs as a 10-epoch training on all
    of them does best of the fidelities measured (Spearman ρ 0.88; studies/calibration).

    At equal time (`time_share` > 0, for a study with a time budget) a trial trains `time_share`
    of the budget's minutes at its measured speed, on the same share of the images, in `epochs`
    rounds of equal steps: each round ends on a validation score, where Hyperband may stop it."""

    epochs: int = 4  # or, at equal time, rounds
    data_fraction: float = 0.25  # of the 45,000 images outside the validation hold-out
    val_images: int = VAL_IMAGES  # the hold-out; smaller only for tiny test data
    time_share: float = 0.0  # of the study's budget minutes per trial; 0: equal epochs

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise NasError(f"--epochs {self.epochs}: must be a positive whole number")
        if not 0 < self.data_fraction <= 1:
            raise NasError(f"--data-fraction {self.data_fraction}: must be in (0, 1]")
        if not 0 <= self.time_share <= 1:
            raise NasError(f"--time-share {self.time_share}: must be a share of the budget in (0, 1]")
        if self.val_images < 10 or self.val_images % 10:
            raise NasError(f"--val-images {self.val_images}: must be a positive multiple of 10 "
                           "(the same count for each class)")


@dataclass(frozen=True)
class StudySettings:
    """Everything that makes two trials comparable; stored on a study when it is created."""

    space: dict[str, Any]
    limits: Limits = field(default_factory=Limits)
    fidelity: Fidelity = field(default_factory=Fidelity)
    recipe: dict[str, Any] = field(default_factory=dict)  # recipe.fixed_part: all but the epochs
    second_objective: str | None = None
    fill_budget: float = 0.0  # widen each design to this share of the parameter budget; 0: off
    precision: str = "fp32"  # Runtime.precision: bf16 and fp32 trainings do not rank alike
    sampler: str = "tpe"  # one of SAMPLERS; a study stored before --sampler had TPE
    budget_minutes: float = 0.0  # the final training's minutes (--budget-minutes); 0: equal epochs
    device: str = ""  # with a budget: the device its speeds were measured on (`device_name`)

    def search_space(self) -> SearchSpace:
        from nas.search.space import space_from_dict  # optuna: only when a study is opened

        return space_from_dict(self.space, "the study's stored space")

    def to_dict(self) -> dict[str, Any]:
        """Plain data; `space_digest` and `nas_version` are for readers (compared: the digest)."""
        data = json.loads(json.dumps(asdict(self)))  # tuples as lists, as the storage returns them
        return data | {"space_digest": self.search_space().digest(), "nas_version": nas_version()}


def nas_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # 0.1 s: only when a study is made

    try:
        return version("nas")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


@dataclass(frozen=True)
class CalibrationSettings:
    """Everything that makes two calibrations' results comparable; stored in the results file."""

    space: str  # name and digest of the search space the designs come from
    designs: int = 10
    fidelities: tuple[str, ...] = ("3x0.1", "6x0.1", "4x0.25", "1x1.0")
    truth: str = "10x1.0"
    seed: int = 0  # the sampler's, the proxy batch's and the recipe's
    val_images: int = VAL_IMAGES
    limits: Limits = field(default_factory=Limits)
    recipe: dict[str, Any] = field(default_factory=dict)  # the fixed recipe, but its epochs
    fill_budget: float = 0.0  # each design widened to this share of the parameter budget; 0: off
    precision: str = "fp32"  # Runtime.precision of every training
    budget_minutes: float = 0.0  # equal-time fidelities ("5%x0.25") are shares of it; 0: none
    device: str = ""  # with a budget: the device the speeds are measured on

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # tuples as lists, as the file reads back

    def runs(self) -> list[Fidelity]:
        """Every fidelity to train, truth included, cheapest first: the first answers come soon."""
        every = [parse_fidelity(text, self.val_images) for text in (*self.fidelities, self.truth)]
        return sorted(every, key=cost)


def check_budget(minutes: float) -> None:
    """NasError (one line) unless `minutes` can be a time budget (0: none)."""
    if not 0 <= minutes < 10_000_000:  # also refuses nan and inf, which argparse reads as floats
        raise NasError(f"--budget-minutes {minutes}: give the minutes of the final training you "
                       "mean to run, e.g. 12.5 (0: equal epochs)")


# `nas calibrate --budget-minutes M`'s defaults: shares of M around the search's TIME_SHARE, and
# the truth, M itself on all 45,000 images
TIME_FIDELITIES = ("2%x0.25", "5%x0.25", "10%x0.25", "5%x1.0")
TIME_TRUTH = "100%x1.0"


def parse_fidelity(text: str, val_images: int = VAL_IMAGES, flag: str = "--fidelities") -> Fidelity:
    """"EPOCHSxFRACTION" (e.g. "3x0.1"), or at equal time "PERCENT%xFRACTION" (e.g. "5%x0.25": 5 %
    of the budget's minutes, in the search's rounds), as a Fidelity; NasError (one line) else."""
    amount, _, fraction = text.strip().lower().partition("x")
    timed = amount.endswith("%")
    try:
        size, share = float(amount.removesuffix("%")), float(fraction)
    except ValueError:
        size, share = 0.0, 0.0
    if not 0 < share <= 1 or not (0 < size <= 100 if timed else size >= 1 and size == int(size)):
        raise NasError(f"{flag} {text}: give EPOCHSxFRACTION, a whole number of epochs of at least "
                       "1 and a share of the 45,000 search-training images in (0, 1], e.g. 3x0.1; "
                       "or at equal time PERCENTxFRACTION, a share of the budget, e.g. 5%x0.25")
    if timed:
        return Fidelity(data_fraction=share, val_images=val_images, time_share=size / 100)
    return Fidelity(int(size), share, val_images)


def truth_epochs() -> int:
    """`nas train-best --validate`'s default epochs: those of the calibration's truth fidelity
    (10x1.0), the training that the search's cheap ranking was measured against."""
    return parse_fidelity(CalibrationSettings.truth, flag="--truth").epochs


def label(fidelity: Fidelity) -> str:
    if fidelity.time_share:
        return f"{fidelity.time_share * 100:g}%x{fidelity.data_fraction}"
    return f"{fidelity.epochs}x{fidelity.data_fraction}"


def cost(fidelity: Fidelity) -> float:
    """Training work (what the progress bar counts): epochs over all 45,000 images, or at equal
    time, shares of the budget."""
    return fidelity.time_share or fidelity.epochs * fidelity.data_fraction


def default_study() -> str:
    """The study a command opens when none is named: the shipped space's name."""
    return read_table(DEFAULT_SPACE, "search space")["name"]
