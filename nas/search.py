"""`nas search`: Optuna over a search space, rules checked before any training.

The objective is a plain function of a trial (Optuna's own style); storage, sampler and pruner are
made here and passed in. Per trial:

    space.suggest → config → verdict ──infeasible──→ PRUNED in zero training seconds,
                                │                     rules stored, constraints told to TPE
                                └─feasible→ train E epochs on the 45k split (or a fraction),
                                            report val accuracy each epoch → pruner may stop it

`--trials N` means "until the study holds N finished (complete or pruned) trials": rerunning the
same command after an interruption runs only the missing ones and never repeats a finished one.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
import torch
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from rich.console import Group
from rich.live import Live
from rich.progress import Progress
from rich.table import Table

from nas.budget import Limits, Verdict, check
from nas.config import ArchConfig, config_from_dict, load_config
from nas.errors import NasError
from nas.model import build_model
from nas.run import VAL_IMAGES, make_datasets, make_splits
from nas.space import SearchSpace
from nas.train import Recipe, train

# Heartbeats, multivariate TPE and fail_stale_trials are stable in practice but still flagged.
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def _without_traceback(record: logging.LogRecord) -> bool:
    """Keep Optuna's "trial failed" line but not its traceback: the reason is on the trial."""
    record.exc_info = record.exc_text = None
    return True


logging.getLogger("optuna.study._optimize").addFilter(_without_traceback)

DEFAULT_STORAGE = "sqlite:///studies/nas.db"
REFERENCE = Path(__file__).resolve().parents[1] / "search_spaces" / "reference.toml"
SECOND_OBJECTIVES = ("params", "flops")
HEARTBEAT_S, GRACE_S = 5, 20  # a trial silent for 20 s belongs to a dead worker


@dataclass(frozen=True)
class Fidelity:
    """How much training one trial gets: low fidelity keeps a 50-trial search within an hour."""

    epochs: int = 3
    data_fraction: float = 0.1  # of the 45,000 images outside the validation hold-out
    val_images: int = VAL_IMAGES  # the hold-out; smaller only for tiny test data


class SurplusTrial(Exception):
    """Another worker already started the last trial the study needs."""


def make_storage(url: str) -> RDBStorage:
    """An Optuna RDB storage with heartbeats: stale trials of killed workers fail and are retried."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith(("postgresql://", "postgres://")):  # SQLAlchemy would pick psycopg2
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    try:
        for attempt in range(2):
            try:
                return RDBStorage(
                    url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
                    engine_kwargs={"pool_pre_ping": True} if url.startswith("postgresql") else None)
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                # workers starting together on an empty PostgreSQL database race to create
                # Optuna's tables and the loser hits a duplicate key; by now the tables exist
                if attempt:
                    raise
                time.sleep(1)
    except ModuleNotFoundError as err:
        raise NasError(f"storage {url}: the driver is missing ({err.name}); "
                       "install it with: pip install -e '.[postgres]'") from None
    except Exception as err:  # sqlalchemy's OperationalError, ArgumentError, ...
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NasError(f"cannot open storage {url}: {first}; check the URL and that the "
                       "server is running") from None


def make_sampler(seed: int) -> optuna.samplers.BaseSampler:
    """TPE; constant liar keeps parallel workers from sampling the same design."""
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                      n_startup_trials=10)


def make_pruner(name: str, fidelity: Fidelity) -> optuna.pruners.BasePruner:
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=fidelity.epochs,
                                              reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def constraint_values(verdict: Verdict, limits: Limits) -> dict[str, float]:
    """One value per rule, <= 0 when it holds; numeric rules say by how much (relative)."""
    values = {"params": (verdict.params - limits.max_params + 1) / limits.max_params,
              "flops": (verdict.flops - limits.max_flops) / limits.max_flops,
              "receptive_field": (limits.min_rf + 1 - verdict.receptive_field) / max(limits.min_rf, 1)}
    for rule in verdict.rules:
        values.setdefault(rule.name, 0.0 if rule.passed else 1.0)
    return values


def claim_slot(trial: optuna.Trial, n_trials: int) -> None:
    """Raise SurplusTrial when the study's other trials already fill `n_trials` (a race between
    workers asking at the same instant); trial numbers are handed out atomically by the storage."""
    ahead = trial.study.get_trials(deepcopy=False, states=(
        TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING))
    if sum(t.number < trial.number for t in ahead) >= n_trials:
        trial.set_user_attr("fail_reason", "surplus: the study already had its trials")
        trial.study.stop()
        raise SurplusTrial("the study already has all its trials")


def judge(trial: optuna.Trial, space: SearchSpace, limits: Limits
          ) -> tuple[ArchConfig, dict[str, float], Verdict]:
    """Sample a design and its verdict; store both on the trial; prune it if it breaks a rule."""
    try:
        config, overrides = space.suggest(trial)
    except NasError as err:
        trial.set_user_attr("fail_reason", f"invalid design: {err}")
        raise
    verdict = check(config, limits)
    trial.set_user_attr("config", config.to_dict())
    trial.set_user_attr("n_params", verdict.params)
    trial.set_user_attr("flops", verdict.flops)
    trial.set_user_attr("receptive_field", verdict.receptive_field)
    for name, value in constraint_values(verdict, limits).items():
        trial.set_constraint(name, value)
    if not verdict.passed:
        trial.set_user_attr("pruned_by", "constraint")
        trial.set_user_attr("broken", verdict.broken)
        raise optuna.TrialPruned(f"breaks {', '.join(verdict.broken)}")
    return config, overrides, verdict


def earlier_twin(trial: optuna.Trial) -> FrozenTrial | None:
    """A complete or running trial with the very same parameters, if any."""
    return next((t for t in trial.study.get_trials(deepcopy=False, states=(
        TrialState.COMPLETE, TrialState.RUNNING)) if t.params == trial.params
        and t.number != trial.number), None)


def objective(trial: optuna.Trial, *, space: SearchSpace, limits: Limits, recipe: Recipe,
              datasets: tuple | None, n_trials: int | None, second: str | None,
              progress: Progress | None = None) -> float | tuple[float, float]:
    """Sample, judge, then (if feasible and `datasets` given) train and return val accuracy
    (and, with `second`, the parameters or FLOPs to minimise)."""
    if n_trials is not None:
        claim_slot(trial, n_trials)
    config, overrides, verdict = judge(trial, space, limits)
    if datasets is None:  # dry run: verdicts only
        return 0.0 if second is None else (0.0, float(verdict.params))
    multi = second is not None
    if (twin := earlier_twin(trial)) is not None:  # never train one design twice
        trial.set_user_attr("duplicate_of", twin.number)
        if twin.state == TrialState.COMPLETE:
            return twin.values[0] if not multi else tuple(twin.values)
        raise optuna.TrialPruned(f"same design as trial {twin.number}, which is running")
    trial_recipe = replace(recipe, **overrides)
    trial.set_user_attr("recipe", asdict(trial_recipe))

    def report(log) -> None:
        trial.set_user_attr("epochs_run", log.epoch)
        trial.set_user_attr("train_seconds", trial.user_attrs.get("train_seconds", 0) + log.seconds)
        if not multi:  # Optuna's pruners support single-objective studies only
            trial.report(log.eval_acc, log.epoch)
            # At the last epoch the training is paid for: keep the result, whatever the pruner says.
            if log.epoch < trial_recipe.epochs and trial.should_prune():
                trial.set_user_attr("pruned_by", "pruner")
                raise optuna.TrialPruned(f"pruned at epoch {log.epoch}: val acc {log.eval_acc:.4f}")

    try:
        history = train(config_model(config, recipe.seed), *datasets, trial_recipe,
                        on_epoch=report, progress=progress)
    except optuna.TrialPruned:
        raise
    except KeyboardInterrupt:
        trial.set_user_attr("fail_reason", "interrupted by the user (Ctrl-C)")
        raise
    except Exception as err:  # NaN loss, out of memory, ...: FAILED with its reason, search goes on
        trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}")
        raise
    accuracy = history[-1].eval_acc
    return accuracy if not multi else (accuracy, float(getattr(verdict, second)))


def config_model(config: ArchConfig, seed: int) -> torch.nn.Module:
    """The freshly initialised model of a trial (same init seed for every trial: a fair race)."""
    torch.manual_seed(seed)
    return build_model(config)


def open_study(name: str, storage: RDBStorage, seed: int, pruner, second: str | None,
               baselines: list[tuple[str, dict[str, Any]]]) -> optuna.Study:
    """Load the study, or create it and enqueue the baselines: exactly once even when several
    workers start together, because only the worker whose create succeeds enqueues.

    The sampler's seed is `seed` for the worker that creates the study (reproducible) and is
    shifted by the trials already there and the process id otherwise, so that a resumed run or a
    second worker does not replay the same random start-up designs."""
    directions = ["maximize"] if second is None else ["maximize", "minimize"]
    try:
        study = optuna.create_study(study_name=name, storage=storage, pruner=pruner,
                                    sampler=make_sampler(seed), directions=directions)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
        if [d.name.lower() for d in study.directions] != directions:
            raise NasError(f"study {name} has objectives {[d.name.lower() for d in study.directions]}; "
                           f"rerun it with the options it was made with, or choose another --study") from None
        study.sampler = make_sampler(seed + 1_000 * len(study.trials) + os.getpid())
        return study
    study.set_user_attr("second_objective", second)
    for label, params in baselines:
        study.enqueue_trial(params, user_attrs={"baseline": label})
    return study


def baseline_params(space: SearchSpace, recipe: Recipe) -> list[tuple[str, dict[str, Any]]]:
    """The reference design as trial 0 and, since the strict depthwise-separable rule fails it
    (its C2 depthwise conv has no pointwise), its separable twin as trial 1: a feasible baseline.
    None when the space does not contain the reference."""
    try:
        params = space.params_of(load_config(REFERENCE), recipe.lr, recipe.weight_decay)
    except NasError:
        return []
    twin = dict(params, c2_conv2="separable")
    return [("reference", params), ("reference, C2 conv2 separable", twin)]


def trial_counts(study: optuna.Study) -> dict[str, int]:
    """complete / pruned by constraint / pruned by pruner / failed / running."""
    counts = dict.fromkeys(("complete", "constraint", "pruner", "failed", "running"), 0)
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            counts["complete"] += 1
        elif t.state == TrialState.PRUNED:
            counts["constraint" if t.user_attrs.get("pruned_by") == "constraint" else "pruner"] += 1
        elif t.state == TrialState.FAIL:
            counts["failed"] += 1
        elif t.state == TrialState.RUNNING:
            counts["running"] += 1
    return counts


def finished(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


class SearchView:
    """The live view: counts, best so far, the trials bar with ETA and the current training bars."""

    def __init__(self, study: optuna.Study, n_trials: int, progress: Progress) -> None:
        self.study, self.n_trials, self.progress = study, n_trials, progress
        self.task = progress.add_task("trials", total=n_trials, completed=finished(study), stats="")
        self.start = time.perf_counter()
        self.current = ""
        self.refresh()

    def refresh(self) -> None:
        self.counts = trial_counts(self.study)
        done = [t for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        best = max(done, key=lambda t: t.values[0], default=None)
        self.best = (f"trial {best.number}: val acc {best.values[0]:.4f}, "
                     f"{best.user_attrs.get('n_params', 0):,} params") if best else "none yet"
        self.progress.update(self.task, completed=finished(self.study))

    def on_trial_start(self, trial: optuna.Trial) -> None:
        self.current = f"trial {trial.number}"
        self.refresh()

    def __rich__(self) -> Group:
        table = Table.grid(padding=(0, 2))
        c = self.counts
        table.add_row("study", f"{self.study.study_name} ({self.current or 'starting'})")
        table.add_row("best so far", self.best)
        table.add_row("trials", f"{c['complete']} complete, {c['constraint']} pruned by constraint, "
                                f"{c['pruner']} pruned by pruner, {c['failed']} failed, "
                                f"{c['running']} running")
        table.add_row("elapsed", f"{(time.perf_counter() - self.start) / 60:.1f} min")
        return Group(table, self.progress)


def check_budget_possible(space: SearchSpace, limits: Limits) -> None:
    """NasError when even the space's cheapest design breaks the parameter or FLOP budget."""
    verdict = check(space.cheapest(), limits)
    for rule in verdict.rules:
        if rule.name in ("params", "flops") and not rule.passed:
            raise NasError(f"impossible budget: the smallest design of space {space.name} has "
                           f"{rule.value:,} {rule.name} (limit {rule.limit}); raise the limit or "
                           "use a space with narrower widths")


def run_search(*, study_name: str, storage_url: str, space: SearchSpace, limits: Limits,
               recipe: Recipe, fidelity: Fidelity, n_trials: int, pruner_name: str,
               second: str | None, data, progress: Progress, console) -> optuna.Study:
    """Run trials until the study holds `n_trials` finished ones (see the module docstring)."""
    multi = second is not None
    check_budget_possible(space, limits)
    storage = make_storage(storage_url)
    baselines = baseline_params(space, recipe)
    study = open_study(study_name, storage, recipe.seed,
                       make_pruner("none" if multi else pruner_name, fidelity), second, baselines)
    if not study.trials and not baselines:
        console.print("note: the reference design lies outside this space: no baseline trial")
    optuna.storages.fail_stale_trials(study)  # trials of killed workers: failed, then retried
    if finished(study) >= n_trials:
        console.print(f"study {study_name} already has {finished(study)} finished trials "
                      f"(asked for {n_trials}); raise --trials to run more")
        return study
    splits = make_splits(data, final=False, fraction=fidelity.data_fraction, seed=recipe.seed,
                         val_images=fidelity.val_images)
    datasets = make_datasets(splits, recipe.augment)
    view = SearchView(study, n_trials, progress)
    run = functools.partial(objective, space=space, limits=limits,
                            recipe=replace(recipe, epochs=fidelity.epochs), datasets=datasets,
                            n_trials=n_trials, second=second, progress=progress)

    def traced(trial: optuna.Trial):
        view.on_trial_start(trial)
        return run(trial)

    failures = []

    def after(study: optuna.Study, trial) -> None:
        view.refresh()
        if trial.state == TrialState.FAIL:
            failures.append(trial.number)
            if len(failures) >= n_trials:  # "until N finished" must not loop forever
                console.print(f"stopping: {len(failures)} trials failed in this run; see their "
                              "fail_reason with nas report")
                study.stop()
        active = study.get_trials(deepcopy=False, states=(
            TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING))
        if len(active) >= n_trials:
            study.stop()

    with Live(view, console=console, refresh_per_second=4, transient=False):
        study.optimize(traced, callbacks=[after], catch=(Exception,), gc_after_trial=True)
    return study


def dry_run(space: SearchSpace, limits: Limits, n_trials: int, seed: int) -> dict[str, Any]:
    """Sample `n_trials` designs with the search's own sampler (in memory), verdicts only."""
    study = optuna.create_study(sampler=make_sampler(seed))
    run = functools.partial(objective, space=space, limits=limits, recipe=Recipe(seed=seed),
                            datasets=None, n_trials=None, second=None)
    start = time.perf_counter()
    study.optimize(run, n_trials=n_trials, catch=(Exception,))
    seconds = time.perf_counter() - start
    broken: dict[str, int] = {}
    for t in study.trials:
        for rule in t.user_attrs.get("broken", []):
            broken[rule] = broken.get(rule, 0) + 1
    infeasible = sum(t.state != TrialState.COMPLETE for t in study.trials)
    return {"trials": n_trials, "infeasible": infeasible, "infeasible_fraction": infeasible / n_trials,
            "broken": broken, "seconds": round(seconds, 1),
            "ms_per_verdict": round(1000 * seconds / n_trials, 1)}


def trial_config(trial: optuna.trial.FrozenTrial) -> ArchConfig:
    """The design a trial trained, rebuilt from its stored config."""
    return config_from_dict(trial.user_attrs["config"], f"trial {trial.number}")
