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


def check_fill(share: float) -> None:
    """NasError (one line) unless `share` is a share of the parameter budget that can be asked for."""
    if not 0 <= share < 1:
        raise NasError(f"--fill-budget {share}: give a share of the parameter budget in [0, 1), "
                       "e.g. 0.9; 0 turns it off")


@dataclass(frozen=True)
class Fidelity:
    """How much training one trial gets: low fidelity keeps a 50-trial search within an hour.
    The default, 4 epochs on 25 % of the images, ranked ten designs as a 10-epoch training on all
    of them does best of the fidelities measured (Spearman ρ 0.88; studies/calibration)."""

    epochs: int = 4
    data_fraction: float = 0.25  # of the 45,000 images outside the validation hold-out
    val_images: int = VAL_IMAGES  # the hold-out; smaller only for tiny test data

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise NasError(f"--epochs {self.epochs}: must be a positive whole number")
        if not 0 < self.data_fraction <= 1:
            raise NasError(f"--data-fraction {self.data_fraction}: must be in (0, 1]")
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

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # tuples as lists, as the file reads back

    def runs(self) -> list[Fidelity]:
        """Every fidelity to train, truth included, cheapest first: the first answers come soon."""
        every = [parse_fidelity(text, self.val_images) for text in (*self.fidelities, self.truth)]
        return sorted(every, key=cost)


def parse_fidelity(text: str, val_images: int = VAL_IMAGES, flag: str = "--fidelities") -> Fidelity:
    """"EPOCHSxFRACTION" (e.g. "3x0.1") as a Fidelity; NasError (one line) for anything else."""
    epochs, _, fraction = text.strip().lower().partition("x")
    try:
        epochs_n, share = int(epochs), float(fraction)
    except ValueError:
        epochs_n, share = 0, 0.0
    if epochs_n < 1 or not 0 < share <= 1:
        raise NasError(f"{flag} {text}: give EPOCHSxFRACTION, a whole number of epochs of at least "
                       "1 and a share of the 45,000 search-training images in (0, 1], e.g. 3x0.1")
    return Fidelity(epochs_n, share, val_images)


def truth_epochs() -> int:
    """`nas train-best --validate`'s default epochs: those of the calibration's truth fidelity
    (10x1.0), the training that the search's cheap ranking was measured against."""
    return parse_fidelity(CalibrationSettings.truth, flag="--truth").epochs


def label(fidelity: Fidelity) -> str:
    return f"{fidelity.epochs}x{fidelity.data_fraction}"


def cost(fidelity: Fidelity) -> float:
    """Training work in epochs over all 45,000 images (what the progress bar counts)."""
    return fidelity.epochs * fidelity.data_fraction


def default_study() -> str:
    """The study a command opens when none is named: the shipped space's name."""
    return read_table(DEFAULT_SPACE, "search space")["name"]
