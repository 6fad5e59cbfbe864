"""Studies on disk: open an Optuna storage, the settings a study remembers, and reading trials back
(their designs, their states, the best one, the test results kept for them).

Both the code that runs a search (`nas.search`) and the code that reads one (`nas report`,
`nas train-best`) import this module; it never imports the search.

A trial stores its design as its sampled parameters (short attributes, readable by any Optuna
tool); the design is rebuilt from them with the space the study stored when it was created, and
with the widths of `filled_cB_channels` attributes where `--fill-budget` widened it. Rule
verdicts go where Optuna's own tools look for feasibility: the `constraints` system attribute,
one value per rule in `CONSTRAINTS` order, <= 0 when the rule holds.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from nas.budget import Limits
from nas.config import ArchConfig, dict_diff, parse_dataclass
from nas.errors import NasError
from nas.recipe import fixed_part
from nas.space import SearchSpace, space_from_dict, with_widths
from nas.splits import VAL_IMAGES

DEFAULT_STORAGE = "sqlite:///studies/nas.db"  # relative to the current folder
HEARTBEAT_S, GRACE_S = 5, 20  # a trial silent for 20 s belongs to a dead worker
CONSTRAINTS = ("params", "flops", "receptive_field", "depthwise_separable", "dilated", "no_maxpool",
               "gap_before_output", "macro_shape")
FILLED = "filled_c{}_channels"  # user attribute: block b's width after --fill-budget widened it


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

    def search_space(self) -> SearchSpace:
        return space_from_dict(self.space, "the study's stored space")

    def to_dict(self) -> dict[str, Any]:
        """Plain data; `space_digest` and `nas_version` are for readers (compared: the digest)."""
        data = json.loads(json.dumps(asdict(self)))  # tuples as lists, as the storage returns them
        return data | {"space_digest": self.search_space().digest(), "nas_version": nas_version()}


def nas_version() -> str:
    try:
        return version("nas")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def settings_of(study: optuna.Study) -> StudySettings:
    """The settings a study was created with; NasError for a study that `nas` did not make."""
    data = study.user_attrs.get("settings")
    if not isinstance(data, dict):
        raise NasError(f"study {study.study_name} has no stored settings: it was not made by this "
                       "version of nas search; start a new --study")
    data = {k: v for k, v in data.items() if k not in ("space_digest", "nas_version")}
    return parse_dataclass(StudySettings, data, "", f"study {study.study_name}")


def check_settings(study: optuna.Study, settings: StudySettings) -> None:
    """NasError (one line) when a study is reopened with settings other than its own."""
    stored = settings_of(study).to_dict()
    stored["recipe"] = fixed_part(stored["recipe"])  # a study made before a new recipe knob
    wanted = settings.to_dict()
    ignore = ("nas_version", "space")  # the space is compared by its digest
    diff = dict_diff({k: v for k, v in stored.items() if k not in ignore},
                     {k: v for k, v in wanted.items() if k not in ignore})
    if diff:
        raise NasError(f"study {study.study_name} was made with other settings ({diff}); "
                       "rerun with its settings, or start a new study with --study NAME")


STALE_REASON = "worker stopped responding (no heartbeat)"


class _HeartbeatStorage(RDBStorage):
    """Optuna's RDBStorage, writing why on each stale trial before it is failed. Optuna sweeps for
    stale trials itself at the start of every trial, so the reason is written where it looks."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        for trial_id in stale:
            try:
                self.set_trial_user_attr(trial_id, "fail_reason", STALE_REASON)
            except optuna.exceptions.UpdateFinishedTrialError:  # another worker failed it first
                pass
        return stale


def open_storage(url: str, *, create: bool) -> RDBStorage:
    """An Optuna RDB storage with heartbeats: stale trials of killed workers fail and are retried.
    Without `create`, a SQLite file that does not exist is an error, not a new empty database."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not create and not holds_studies(path):
            raise NasError(f"no study storage at {path}: run nas search first, or pass the "
                           "--storage of an existing study")
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise NasError(f"cannot create {path.parent} for storage {url}: "
                               f"{err.strerror or err}") from None
    if url.startswith(("postgresql://", "postgres://")):  # SQLAlchemy would pick psycopg2
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        return _rdb_storage(url, HEARTBEAT_S, GRACE_S)
    except ModuleNotFoundError as err:
        raise NasError(f"storage {url}: the driver is missing ({err.name}); "
                       "install it with: pip install -e '.[postgres]'") from None
    except Exception as err:  # sqlalchemy's OperationalError, ArgumentError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NasError(f"cannot open storage {url}: {first}; check the URL and that the "
                       "server is running") from None


def holds_studies(path: Path) -> bool:
    """Whether a SQLite file holds Optuna's tables (looked at read-only: reading never creates)."""
    if not path.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'studies'"
                              ).fetchone() is not None
    except sqlite3.DatabaseError:  # not a SQLite file at all
        return False


def _rdb_storage(url: str, heartbeat_s: int, grace_s: int) -> RDBStorage:
    for attempt in range(2):
        try:
            return _HeartbeatStorage(
                url, heartbeat_interval=heartbeat_s, grace_period=grace_s,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
                engine_kwargs={"pool_pre_ping": True} if url.startswith("postgresql") else None)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # workers starting together on an empty PostgreSQL database race to create
            # Optuna's tables and the loser hits a duplicate key; by now the tables exist
            if attempt:
                raise
            time.sleep(1)
    raise AssertionError("unreachable")


def load_existing(name: str, storage_url: str) -> optuna.Study:
    """The named study; NasError listing the studies that do exist when it is not there."""
    storage = open_storage(storage_url, create=False)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        known = ", ".join(names) if names else "none yet (run nas search)"
        raise NasError(f"no study named {name!r} in {storage_url}; studies there: {known}")
    return optuna.load_study(study_name=name, storage=storage)


def trial_constraints(trial: FrozenTrial, limits: Limits) -> list[float]:
    """Optuna's `constraints_func`: one value per rule in CONSTRAINTS order, <= 0 when it holds
    (the numeric rules say by how much, relative to their limit), from the verdict that `judge`
    stored on the trial; [] for a trial that never got one."""
    a = trial.user_attrs
    if "n_params" not in a:
        return []
    numeric = {"params": (a["n_params"] - limits.max_params + 1) / limits.max_params,
               "flops": (a["flops"] - limits.max_flops) / limits.max_flops,
               "receptive_field": (limits.min_rf + 1 - a["receptive_field"]) / max(limits.min_rf, 1)}
    broken = set(a.get("broken", ()))
    return [numeric.get(name, 1.0 if name in broken else 0.0) for name in CONSTRAINTS]


def is_feasible(trial: FrozenTrial) -> bool:
    return all(value <= 0 for value in trial.constraints.values())


def pruned_by(trial: FrozenTrial) -> str | None:
    """"constraint" (a rule, before training), "pruner" (during training), or None."""
    if trial.state != TrialState.PRUNED:
        return None
    return "constraint" if trial.user_attrs.get("broken") else "pruner"


def trial_counts(study: optuna.Study) -> dict[str, int]:
    """complete / pruned by constraint / pruned by pruner / failed / running / waiting."""
    counts = dict.fromkeys(("complete", "constraint", "pruner", "failed", "running", "waiting"), 0)
    names = {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed",
             TrialState.RUNNING: "running", TrialState.WAITING: "waiting"}
    for t in study.get_trials(deepcopy=False):
        counts[pruned_by(t) or names[t.state]] += 1
    return counts


def finished(study: optuna.Study) -> int:
    """Trials that count towards --trials: complete or pruned."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def trial_design(study: optuna.Study, trial: FrozenTrial) -> ArchConfig:
    """The design a trial trained, rebuilt from its parameters and the study's space (and its
    filled widths, when the search widened it to the budget)."""
    design = settings_of(study).search_space().design(trial.params, trial.number)
    widths = filled_widths(trial.user_attrs, len(design.blocks))
    return design if widths is None else with_widths(design, widths)


def filled_widths(attrs: dict[str, Any], blocks: int) -> tuple[int, ...] | None:
    """The widths `--fill-budget` gave a trial's design, or None when it kept its sampled ones."""
    if FILLED.format(1) not in attrs:
        return None
    return tuple(int(attrs[FILLED.format(b)]) for b in range(1, blocks + 1))


def best_trial(study: optuna.Study, number: int | None = None) -> FrozenTrial:
    """The complete, feasible trial with the highest validation accuracy (or trial `number`)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if is_feasible(t) and "duplicate_of" not in t.user_attrs]
    if number is not None:
        trial = next((t for t in study.trials if t.number == number), None)
        if trial is None or trial.state != TrialState.COMPLETE:
            raise NasError(f"trial {number} of study {study.study_name} is not a complete trial; "
                           f"complete ones: {[t.number for t in complete]}")
        return trial
    if not complete:
        raise NasError(f"study {study.study_name} has no complete feasible trial yet: "
                       f"run nas search --study {study.study_name} first")
    return max(complete, key=lambda t: t.values[0])


def record_test_result(study: optuna.Study, trial: FrozenTrial, result: dict[str, Any]) -> None:
    """Keep train-best's test result on the study, by trial number and run folder: a new run adds a
    result, none is ever replaced (Optuna freezes a finished trial's own attributes, so the study
    carries them)."""
    results = dict(study.user_attrs.get("test_results", {}))
    runs = dict(results.get(str(trial.number), {}))
    if result["out"] in runs:
        raise NasError(f"trial {trial.number} already has a test result from {result['out']}")
    runs[result["out"]] = result
    results[str(trial.number)] = runs
    study.set_user_attr("test_results", results)


def recorded_test_results(study: optuna.Study) -> dict[int, list[dict[str, Any]]]:
    """Every recorded test run of each trial, oldest first."""
    return {int(k): list(v.values()) for k, v in study.user_attrs.get("test_results", {}).items()}
