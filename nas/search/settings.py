"""The settings of searches and calibrations, every default in its one home: what one trial gets
(`Fidelity`), what a study remembers (`StudySettings`), what a calibration compares
(`CalibrationSettings`), where studies are kept and how far designs are filled.

No heavy imports here: the command line reads these defaults for its help.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.data.settings import VAL_IMAGES
from nas.design.config import parse_dataclass
from nas.design.files import DEFAULT_SPACE, FAST_SPACE, read_table
from nas.design.limits import Limits
from nas.errors import NasError

if TYPE_CHECKING:
    from nas.search.space import SearchSpace

# Where a user's own runs go unless told otherwise, relative to the current folder: runs/ (which
# git ignores), never studies/, which holds the project's committed evidence.
DEFAULT_RUNS = Path("runs")  # `nas train`: runs/DESIGN; `nas train-best`: runs/STUDY/best, ...
DEFAULT_STORAGE = f"sqlite:///{DEFAULT_RUNS}/nas.db"
DEFAULT_CALIBRATION = DEFAULT_RUNS / "calibration.json"  # `nas calibrate --out`
DEFAULT_TRIALS = 50  # `nas search --trials`: finished trials a study is run to
SAMPLERS = ("tpe", "random")  # `nas search --sampler`: random sampling is the control TPE must beat
SEARCH_SAMPLER = "tpe"
PRUNERS = ("hyperband", "median", "first", "none")  # `nas search --pruner` (nas.search.samplers)


@dataclass(frozen=True)
class Mode:
    """The defaults of one way of comparing designs (`nas search` reads them for the flags not
    given): the space searched, the share of the parameter limit each design is widened to, how
    many candidates the middle rung trains longer and how many of them the final rung gives their
    truth (`nas.search.rung`), the pruner, and the speed floor under which a trial is not trained
    (`nas.search.optimize.too_slow`; 0: none)."""

    space: Path
    fill_params: float
    final_rung: int
    pruner: str  # one of PRUNERS
    middle_rung: int = 0
    speed_floor: float = 0.0


# At equal epochs (`--budget-minutes 0`) the biggest designs ended best, and small designs widened
# to 0.9 of the parameter limit scored higher at the search's fidelity (studies/calibration-filled);
# its studies picked the best design without a final rung (studies/c1c2c3c4o-final).
EQUAL_EPOCHS = Mode(DEFAULT_SPACE, fill_params=0.9, final_rung=0, pruner="hyperband")
# At equal time (the default), the settings of the search that passed its proof
# (studies/equal-time-v4): the space of designs fast on a CPU, designs as sampled (a widened design
# is a slower one), each trial TIME_SHARE of the budget. Then the rungs (nas.search.rung): the
# middle rung trains the three best scores among the trials as fast as the twin for MIDDLE_LENGTH
# times a trial, at equal time, and the final rung gives the best of them its truth at M: the
# best score lost to the twin at M in every search measured, and at 10 % of M the winner at M
# trails the twin while a design 2.5 points behind it at M leads it (studies/equal-time-zen4);
# at 30 % the winner leads (studies/equal-time-main, section 8). A second truth would cost M more,
# above 4 M in all. Its pruner stops a trial after
# its first round only, where stopping saves three quarters of it: Hyperband also stopped trials
# after round 3, saving a quarter, and so cut the two designs with the best known truths at M, 1.6
# and 2.7 points behind the twin at that round (studies/equal-time-main, section 7).
#
# Its speed floor: at M a design slower than the twin trains fewer steps than the twin, and no such
# design has won: the rungs take only trials timed as fast as the twin. Yet the trials, paced by
# steps, score slow designs high (more work per step), so TPE drifted towards them: in search seed
# 1 of studies/equal-time-zen4, 11 of the 15 complete trials beside the twin had own figures of
# 0.35-0.91 of the twin's, and the fast ones the rungs could take ended level with the twin.
# So a feasible trial below the floor times the twin's speed is pruned before it trains, both
# timed for 5 s as the rung times them: a half-second figure once put v4's winner at 0.66 of the
# twin (studies/equal-time-zen4-v2), and others put designs at 1.3 of it that the rung timed at
# 0.9 (studies/equal-time-zen4-v3).
# It sits just under the rung's own bar (SPEED_MARGIN, the twin's speed), 0.95, for a 5-s timing's
# noise: at 0.85, the trials between it and the twin's speed took the best scores in both searches
# of studies/equal-time-zen4-v2 (the rung timed them at 0.78-0.97 of the twin), so TPE sampled
# around designs the rung could not pick, and every such training was wasted.
EQUAL_TIME = Mode(FAST_SPACE, fill_params=0.0, final_rung=1, pruner="first", middle_rung=3,
                  speed_floor=0.95)
SEARCH_FILL = EQUAL_EPOCHS.fill_params  # what a study's settings default to (StudySettings)
# The share of M each trial trains at equal time: the calibration ranked designs best at 10 % of M
# among the shares measured (studies/calibration-equal-time); equal-time-v4 searched with it.
TIME_SHARE = 0.1
# How many times a trial's steps each candidate of the middle rung trains (scaled by its speed
# against the twin's): 30 % of M at TIME_SHARE, where the winner at M first led the twin by about
# a seed's spread (studies/equal-time-main, section 8: -0.44 at 10 % of M, +0.92 at 30 %).
MIDDLE_LENGTH = 3


def trial_steps(share: float, minutes: float, twin_images_per_s: float, batch_size: int) -> int:
    """`--trial-steps`' default: the optimizer steps the reference's twin trains in `share` of
    `minutes` at its speed measured here; every trial of the study trains that many, whatever its
    own speed. Not the share at each design's own speed (`--trial-steps 0`): on the five designs
    with a truth at M in studies/equal-time-main, the same steps ranked them at Spearman +0.8
    against the truth, the same time at -0.9. A short trial at equal time rewards the fast designs
    that learn quickest early; the full budget, the designs that do more with each step."""
    return max(1, round(share * minutes * 60 * twin_images_per_s / batch_size))


# Without --budget-minutes, M is the minutes of this many epochs of the reference's feasible twin,
# timed on this device before the search: what the hand-made design needs for its 85 %
# (studies/equal-time-v4 measured M so).
TWIN_EPOCHS = 20


def mode(budget_minutes: float) -> Mode:
    """The defaults of a search with this budget (0: equal epochs)."""
    return EQUAL_TIME if budget_minutes else EQUAL_EPOCHS


def check_fill(share: float) -> None:
    """NasError (one line) unless `share` is a share of the parameter limit that can be asked for."""
    if not 0 <= share < 1:
        raise NasError(f"--fill-params {share}: give a share of the parameter limit in [0, 1), "
                       "e.g. 0.9; 0 turns it off")


@dataclass(frozen=True)
class Fidelity:
    """How much training one trial gets: low fidelity keeps a 50-trial search within an hour.
    The default, 4 epochs on 25 % of the images, ranked ten designs as a 10-epoch training on all
    of them does best of the fidelities measured ([studies/calibration](../../studies/calibration/README.md)).

    At equal time (`time_share` > 0, for a study with a time budget) a trial trains `steps`
    optimizer steps, the same for every design (the reference twin's in `time_share` of the
    budget's minutes), or with `steps` 0 `time_share` of the minutes at its own measured speed;
    on the same share of the images, in `rounds` of equal steps: each round ends on a validation
    score, where the pruner may stop it."""

    epochs: int = 4  # at equal epochs
    data_fraction: float = 0.25  # of the 45,000 images outside the validation hold-out
    val_images: int = VAL_IMAGES  # the hold-out; smaller only for tiny test data
    time_share: float = 0.0  # of the study's budget minutes per trial; 0: equal epochs
    rounds: int = 4  # at equal time
    steps: int = 0  # at equal time, every trial's optimizer steps; 0: time_share at its own speed

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise NasError(f"--epochs {self.epochs}: must be a positive whole number")
        if self.rounds < 1:
            raise NasError(f"--rounds {self.rounds}: must be a positive whole number")
        if not 0 < self.data_fraction <= 1:
            raise NasError(f"--data-fraction {self.data_fraction}: must be in (0, 1]")
        if not 0 <= self.time_share <= 1:
            raise NasError(f"--time-share {self.time_share}: must be a share of the budget in (0, 1]")
        if self.steps < 0 or (self.steps and not self.time_share):
            raise NasError(f"--trial-steps {self.steps}: give a number of steps at equal time "
                           "(with a budget), or 0 for a share of it at each design's speed")
        if self.val_images < 10 or self.val_images % 10:
            raise NasError(f"--val-images {self.val_images}: must be a positive multiple of 10 "
                           "(the same count for each class)")

    @property
    def timed(self) -> bool:
        """At equal time: a share of a time budget, in rounds."""
        return self.time_share > 0

    @property
    def passes(self) -> int:
        """A trial's passes, each ending on a validation score: its epochs, or its rounds."""
        return self.rounds if self.timed else self.epochs


@dataclass(frozen=True)
class StudySettings:
    """Everything that makes two trials comparable; stored on a study when it is created."""

    space: dict[str, Any]
    limits: Limits = field(default_factory=Limits)
    fidelity: Fidelity = field(default_factory=Fidelity)
    recipe: dict[str, Any] = field(default_factory=dict)  # recipe.fixed_part: all but the epochs
    second_objective: str | None = None
    fill_params: float = SEARCH_FILL  # widen each design to this share of the parameter limit; 0: off
    precision: str = "fp32"  # Runtime.precision: bf16 and fp32 trainings do not rank alike
    sampler: str = SEARCH_SAMPLER  # one of SAMPLERS
    budget_minutes: float = 0.0  # the final training's minutes (--budget-minutes); 0: equal epochs
    device: str = ""  # with a budget: the device its speeds were measured on (`device_name`)

    def search_space(self) -> SearchSpace:
        from nas.search.space import space_from_dict  # optuna: only when a study is opened

        return space_from_dict(self.space, "the study's stored space")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str) -> StudySettings:
        """The settings a study stored (`to_dict`), whatever version of nas stored them."""
        data = upgraded({k: v for k, v in data.items() if k not in ("space_digest", "nas_version")}, cls)
        if isinstance(fidelity := data.get("fidelity"), dict) and fidelity.get("time_share") \
                and "rounds" not in fidelity:  # stored when a trial's rounds were called epochs
            data["fidelity"] = fidelity | {"rounds": fidelity["epochs"], "epochs": Fidelity.epochs}
        return parse_dataclass(cls, data, "", source)

    def to_dict(self) -> dict[str, Any]:
        """Plain data; `space_digest` and `nas_version` are for readers (compared: the digest)."""
        data = json.loads(json.dumps(asdict(self)))  # tuples as lists, as the storage returns them
        return data | {"space_digest": self.search_space().digest(), "nas_version": nas_version()}


# Keys stored by older versions of nas, by their names today: a study or calibration file made
# before a rename still reads.
RENAMED = {"fill_budget": "fill_params", "truth": "truth_fidelity"}
# What a study or calibration file stored before a key existed meant by its absence: the setting
# of the version that made it (not today's default).
BEFORE_THE_KEY = {"fill_params": 0.0, "precision": "fp32", "sampler": "tpe", "budget_minutes": 0.0,
                  "device": "", "pace": "time"}


def upgraded(data: dict[str, Any], cls: type) -> dict[str, Any]:
    """Stored settings of dataclass `cls` as this version names them (`RENAMED`, `BEFORE_THE_KEY`)."""
    renamed = {RENAMED.get(k, k): v for k, v in data.items()}
    known = {f.name for f in fields(cls)}
    return {k: v for k, v in BEFORE_THE_KEY.items() if k in known and k not in renamed} | renamed


def nas_version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # only when a study is made

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
    truth_fidelity: str = "10x1.0"  # the training whose val accuracy is each design's truth
    seed: int = 0  # the sampler's, the proxy batch's and the recipe's
    val_images: int = VAL_IMAGES
    limits: Limits = field(default_factory=Limits)
    recipe: dict[str, Any] = field(default_factory=dict)  # the fixed recipe, but its epochs
    fill_params: float = 0.0  # each design widened to this share of the parameter limit; 0: off
    precision: str = "fp32"  # Runtime.precision of every training
    budget_minutes: float = 0.0  # equal-time fidelities ("5%x0.25") are shares of it; 0: none
    device: str = ""  # with a budget: the device the speeds are measured on
    pace: str = "steps"  # with a budget, the low fidelities': one of PACES

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))  # tuples as lists, as the file reads back

    def runs(self) -> list[Fidelity]:
        """Every fidelity to train, truth included, cheapest first: the first answers come soon."""
        every = [parse_fidelity(text, self.val_images) for text in (*self.fidelities, self.truth_fidelity)]
        return sorted(every, key=cost)


# `nas calibrate --budget-minutes M --pace`: how a low fidelity's share of M becomes steps. "steps":
# the twin's in that share, the same for every design, as the search's trials (`trial_steps`);
# "time": the steps the share buys at each design's own speed. The truth is M at each design's own
# speed either way: what the final training gives it.
PACES = ("steps", "time")
# `nas calibrate --budget-minutes M`'s defaults: shares of M around the search's TIME_SHARE, and
# the truth, M itself on all 45,000 images
TIME_FIDELITIES = ("2%x0.25", "5%x0.25", "10%x0.25", "5%x1.0")
TIME_TRUTH_FIDELITY = "100%x1.0"


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
    return parse_fidelity(CalibrationSettings.truth_fidelity, flag="--truth-fidelity").epochs


def label(fidelity: Fidelity) -> str:
    if fidelity.time_share:
        return f"{fidelity.time_share * 100:g}%x{fidelity.data_fraction}"
    return f"{fidelity.epochs}x{fidelity.data_fraction}"


def cost(fidelity: Fidelity) -> float:
    """Training work (what the progress bar counts): epochs over all 45,000 images, or at equal
    time, shares of the budget."""
    return fidelity.time_share or fidelity.epochs * fidelity.data_fraction


def default_study() -> str:
    """The study a command opens when none is named: the one `nas search` makes when none is
    named, called after its space, the default mode's (equal time)."""
    return read_table(EQUAL_TIME.space, "search space")["name"]


def search_flags(settings: StudySettings) -> dict[str, Any]:
    """The `nas search` flags, each with its value (None: a switch), that make a study with
    `settings` on a machine of its precision (and at equal time, its device): its budget,
    fidelity and precision always, every other setting where it is not the command's default;
    the space, the study's name, storage and trials apart. The
    inverse of the command line's `study_settings` (tests/test_report_commands.py holds the two
    together)."""
    fidelity = settings.fidelity
    flags: dict[str, Any] = {}
    flags["budget-minutes"] = f"{settings.budget_minutes:g}"  # at equal time, on settings.device
    if settings.budget_minutes:
        flags |= {"time-share": fidelity.time_share, "rounds": fidelity.rounds,
                  "trial-steps": fidelity.steps}  # measured on the study's device: given here
    else:
        flags["epochs"] = fidelity.epochs
    flags |= {"data-fraction": fidelity.data_fraction, "val-images": fidelity.val_images}
    for name, value in asdict(settings.limits).items():
        if value != getattr(Limits(), name):
            flags[name.replace("_", "-")] = value
    flags |= recipe_flags(settings.recipe)
    if settings.second_objective:
        flags["second-objective"] = settings.second_objective
    if settings.fill_params != mode(settings.budget_minutes).fill_params:
        flags["fill-params"] = settings.fill_params
    if settings.sampler != SEARCH_SAMPLER:
        flags["sampler"] = settings.sampler
    flags["precision"] = settings.precision  # always: its default, auto, depends on the machine
    return flags


def recipe_flags(recipe: dict[str, Any]) -> dict[str, Any]:
    """The flags that turn the default recipe into a stored one (all of it but the epochs), each
    with its value; None for a switch."""
    from nas.training.recipe import Recipe

    default = Recipe().to_dict()
    given = {k: v for k, v in recipe.items() if k not in ("augment", "epochs") and v != default[k]}
    given |= {k: v for k, v in recipe["augment"].items() if v != default["augment"][k]}
    switches = {"no_decay_norm_bias": ("no-decay-norm-bias", "decay-norm-bias"),
                "whiten_init": ("whiten-init", "no-whiten-init")}  # pairs of flags with no value
    flags: dict[str, Any] = {}
    for name, value in given.items():
        if name in switches:
            flags[switches[name][0 if value else 1]] = None
        else:  # the augmentation engine's flag is --augment
            flags[{"engine": "augment"}.get(name, name).replace("_", "-")] = value
    return flags
