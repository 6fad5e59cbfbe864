"""`nas search`: Optuna over a search space, rules checked before any training.

The objective is a plain function of a trial (Optuna's own style); storage, sampler and pruner are
made here (the last two by `nas.search.samplers`) and passed in. Per trial:

    space.suggest → config → verdict ──infeasible──→ PRUNED in zero training seconds,
                                │                     verdict stored as Optuna constraints
                                └─feasible→ train E epochs on the 45k split (or a fraction),
                                            report val accuracy each epoch → pruner may stop it

With a time budget (`--budget-minutes M`) "train E epochs" becomes "train the study's steps in R
rounds": the steps the reference's twin trains in a share of M here, the same for every design
(`nas.search.settings.trial_steps`). With `--trial-steps 0` it is "train a share of M at the
design's measured speed, in R rounds" (`nas.training.budget`), the steps of the rounds left
re-planned after each from the real rounds' time: a design twice as fast gets twice the steps.

`--trials N` means "until the study holds N finished (complete or pruned) trials": rerunning the
same command after an interruption runs only the missing ones and never repeats a finished one.
What the user sees is not made here: the search tells a `SearchEvents` listener what happens.

Three additions to a plain search: every feasible trial gets its zero-cost proxies (`nas.search.proxies`)
on one fixed batch of the search's training images before it trains, so that `nas calibrate` can
say whether they rank designs as the trainings do; its speed, measured on the search's device with
its batch size and precision (`nas.training.speed`: training images/s, seconds per 50,000-image
epoch, inference images/s, latency); and with `--fill-params F` each sampled design
is first widened by one common factor to use at least F of the parameter limit.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from nas.data.cifar10 import Cifar10
from nas.data.splits import make_splits
from nas.design.config import ArchConfig
from nas.design.limits import Limits
from nas.design.model import build_model
from nas.design.rules import Verdict, check
from nas.errors import NasError
from nas.search.fill import fill_params
from nas.search.proxies import proxy_attrs, proxy_batch
from nas.search.samplers import make_pruner, make_sampler
from nas.search.settings import StudySettings
from nas.search.space import TWIN, SearchSpace, baseline_params
from nas.search.storage import fail_stale_trials, open_storage
from nas.search.trials import (FILLED, FLOOR, PROXY_ATTRS, SLOW, YARDSTICK, check_settings,
                               finished, trial_design, verdict_constraints)
from nas.training.batches import Batches, make_batches
from nas.training.budget import equal_steps, equal_time, plan_speed
from nas.training.loop import ONECYCLE_MIN_STEPS, EpochLog, Hooks, check_trainable, train
from nas.training.progress import TrainingProgress
from nas.training.recipe import Recipe, recipe_from_dict
from nas.training.runtime import Runtime
from nas.training.speed import SPEED_ATTRS, measure_speed


class SearchEvents(Protocol):
    """What a search tells whoever shows it (the command line's live view)."""

    def trial_started(self, trial: optuna.Trial) -> None: ...

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None: ...


# what `measurements` stores on a trial: a repeat of an earlier trial's design copies them
MEASURED = (*PROXY_ATTRS, *SPEED_ATTRS)
SURPLUS = "surplus: the study already had its trials"  # a trial's fail_reason


class SurplusTrial(Exception):
    """Another worker already started the last trial the study needs."""


def claim_slot(trial: optuna.Trial, n_trials: int) -> None:
    """Raise SurplusTrial when the study's other trials already fill `n_trials` (a race between
    workers asking at the same instant); trial numbers are handed out atomically by the storage."""
    ahead = trial.study.get_trials(deepcopy=False, states=(
        TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING))
    if sum(t.number < trial.number for t in ahead) >= n_trials:
        trial.set_user_attr("fail_reason", SURPLUS)
        trial.study.stop()
        raise SurplusTrial("the study already has all its trials")


def judge(trial: optuna.Trial, space: SearchSpace, limits: Limits, fill: float = 0.0
          ) -> tuple[ArchConfig, Verdict]:
    """Sample a design (widened to `fill` of the parameter limit when `fill` > 0) and its verdict;
    store the verdict on the trial (its counts, and its rules as the constraints the sampler
    reads); prune it if it breaks a rule."""
    try:
        sampled = space.suggest(trial, baseline="baseline" in trial.user_attrs)
    except NasError as err:
        trial.set_user_attr("fail_reason", f"invalid design: {err}")
        raise
    config, verdict = fill_params(sampled, limits, fill)  # fill 0: the design as sampled
    if config != sampled:  # the design is rebuilt from its parameters and these widths
        for b, block in enumerate(config.blocks, start=1):
            trial.set_user_attr(FILLED.format(b), block.channels)
    trial.set_user_attr("n_params", verdict.params)
    trial.set_user_attr("flops", verdict.flops)
    trial.set_user_attr("receptive_field", verdict.receptive_field)
    inherited = trial.constraints  # a retried stale trial has its original's: the same design's
    for rule, value in verdict_constraints(verdict, limits).items():
        if rule not in inherited:
            trial.set_constraint(rule, value)
    if not verdict.passed:
        trial.set_user_attr("broken", verdict.broken)
        raise optuna.TrialPruned(f"breaks {', '.join(verdict.broken)}")
    return config, verdict


def earlier_trial(trial: optuna.Trial) -> FrozenTrial | None:
    """A complete or running trial with the very same parameters, if any: `trial` repeats it."""
    return next((t for t in trial.study.get_trials(deepcopy=False, states=(
        TrialState.COMPLETE, TrialState.RUNNING)) if t.params == trial.params
        and t.number != trial.number), None)


def measurements(trial: optuna.Trial, earlier: FrozenTrial | None, config: ArchConfig,
                 setup: TrialSetup) -> dict[str, float]:
    """The design's zero-cost proxies and measured speed, stored on the trial before it trains (so
    a trial the pruner stops has them too); a repeat copies the `earlier` trial's instead of
    paying for them again. The speed is timed for half a second, or with a speed floor for 5 s
    (`plan_speed`), as the rung times its candidates, since the floor judges by it (`too_slow`);
    the twin's figure is then the floor's yardstick (`yardstick`)."""
    if earlier is not None:
        measured = {k: v for k, v in earlier.user_attrs.items() if k in MEASURED}
    else:
        if not setup.speed_floor:
            speed = measure_speed(config, setup.recipe, setup.runtime).attrs()
        elif trial.user_attrs.get("baseline") == TWIN:
            speed = time_twin(trial.study, config, setup)
        else:
            speed = plan_speed(config, setup.recipe, setup.runtime).attrs()
        measured = proxy_attrs(config, setup.proxies, setup.recipe.seed) | speed
    for key, value in measured.items():
        trial.set_user_attr(key, value)
    return measured


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of a search shares: the space and limits its design is drawn and judged
    by (`fill`: the share of the parameter limit it is widened to), the recipe and runtime it
    trains with (`recipe.epochs`: its epochs, or at equal time its rounds), its batches (training,
    validation), the proxies' batch, the study's size, the second objective and, at equal time,
    the seconds each trial trains."""

    space: SearchSpace
    limits: Limits
    recipe: Recipe
    runtime: Runtime
    batches: tuple[Batches, Batches]
    proxies: tuple[torch.Tensor, torch.Tensor]
    n_trials: int
    second: str | None = None
    fill: float = 0.0
    trial_seconds: float = 0.0  # at equal time, paced by each design's speed; 0: not so
    trial_steps: int = 0  # at equal time, paced by steps: every trial's; 0: not so
    progress: TrainingProgress | None = None
    speed_floor: float = 0.0  # paced by steps: `too_slow`'s floor; 0: none


# How old the twin's figure may be before the speed floor times the twin again: the machine's
# speed drifts, by a fifth within 20 minutes once (studies/equal-time-zen4-v2: the twin timed at
# 1,505 training images/s when search seed 1 began and 1,171 when its rung began).
YARDSTICK_AGE = 300.0  # seconds


def time_twin(study: optuna.Study, config: ArchConfig, setup: TrialSetup) -> dict[str, float]:
    """Time the twin (`config`) for 5 s (`plan_speed`) and keep its training speed, with the
    time, as the study's yardstick (`YARDSTICK`); its figures."""
    figures = plan_speed(config, setup.recipe, setup.runtime).attrs()
    study.set_user_attr(YARDSTICK, {"train_images_per_s": figures["train_images_per_s"], "at": time.time()})
    return figures


def yardstick(study: optuna.Study, setup: TrialSetup) -> float | None:
    """The twin's training speed as the speed floor compares with it: timed when the twin's trial
    starts, and again (5 s) once that figure is YARDSTICK_AGE old, so that both figures compared
    are timed minutes apart at most. None while the study has no twin that started."""
    stored = study.user_attrs.get(YARDSTICK)
    if stored is None:
        return None
    if time.time() - stored["at"] >= YARDSTICK_AGE:
        twin = next(t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("baseline") == TWIN)
        return time_twin(study, trial_design(study, twin), setup)["train_images_per_s"]
    return stored["train_images_per_s"]


def too_slow(trial: optuna.Trial, measured: dict[str, float], setup: TrialSetup) -> str | None:
    """Why a trial is not trained: its design is slower than the speed floor times the twin's speed
    (`yardstick`; at M it would train fewer steps than the twin: see
    `nas.search.settings.EQUAL_TIME`) by its 5-s figure (`measured`, `measurements`). Not by a
    half-second figure: one put v4's winner at 0.66 of the twin where 5-s timings put it at 1.04,
    and others put designs at 1.3 of the twin that the rung's 5-s timings found at 0.9. None to
    train it: no floor, the twin itself, no twin timed yet, or a fast enough design. A trial
    pruned so keeps its share of the twin's speed (`SLOW`)."""
    if not setup.speed_floor or trial.user_attrs.get("baseline") == TWIN:
        return None
    bar, figure = yardstick(trial.study, setup), measured["train_images_per_s"]
    if bar is None or figure >= setup.speed_floor * bar:
        return None
    trial.set_user_attr(SLOW, round(figure / bar, 3))
    return f"slower than the twin: {figure:,.0f} training images/s, {figure / bar:.2f} of its {bar:,.0f}"


def objective(trial: optuna.Trial, setup: TrialSetup) -> float | tuple[float, float]:
    """Sample, judge, then (if feasible) score the design's proxies, measure its speed, train it
    and return val accuracy (and, with `setup.second`, its parameters, FLOPs or measured seconds
    per epoch, to minimise). At equal time it trains, in `recipe.epochs` rounds, the study's
    `setup.trial_steps`, or `setup.trial_seconds` at its measured speed, keeping that time
    (`TrialClock`)."""
    recipe = setup.recipe
    timed = bool(setup.trial_seconds or setup.trial_steps)
    claim_slot(trial, setup.n_trials)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")  # who ran it
    config, verdict = judge(trial, setup.space, setup.limits, setup.fill)
    multi = setup.second is not None
    unit = "round" if timed else "epoch"

    def report(log: EpochLog) -> None:
        trial.set_user_attr(f"{unit}s_run", log.epoch)
        trial.set_user_attr("train_seconds", trial.user_attrs.get("train_seconds", 0) + log.seconds)
        trial.set_user_attr("train_steps", trial.user_attrs.get("train_steps", 0) + log.steps)
        if not multi:  # Optuna's pruners support single-objective studies only
            trial.report(log.eval_acc, log.epoch)
            # At the last pass the training is paid for: keep the result, whatever the pruner says.
            if log.epoch < recipe.epochs and trial.should_prune():
                raise optuna.TrialPruned(f"pruned at {unit} {log.epoch}: val acc {log.eval_acc:.4f}")

    try:
        earlier = earlier_trial(trial)
        measured = measurements(trial, earlier, config, setup)
        if earlier is not None:  # never train one design twice
            trial.set_user_attr("duplicate_of", earlier.number)
            if earlier.state == TrialState.COMPLETE:
                return earlier.values[0] if not multi else tuple(earlier.values)
            raise optuna.TrialPruned(f"same design as trial {earlier.number}, which is running")
        if (why := too_slow(trial, measured, setup)) is not None:
            raise optuna.TrialPruned(why)
        train_batches, eval_batches = setup.batches
        clock = None
        if setup.trial_steps:  # every design the same steps, whatever its speed
            train_batches = equal_steps(train_batches, setup.trial_steps, recipe.epochs,
                                        ONECYCLE_MIN_STEPS)
        elif timed:  # a design twice as fast gets twice the steps
            train_batches, clock = equal_time(train_batches, setup.trial_seconds,
                                              measured["train_images_per_s"], recipe.batch_size,
                                              recipe.epochs, ONECYCLE_MIN_STEPS)
        hooks = Hooks(setup.progress or TrainingProgress(), on_epoch=report, replan=clock)
        history = race(config, (train_batches, eval_batches), recipe, setup.runtime, hooks)
    except optuna.TrialPruned:
        raise
    except KeyboardInterrupt:
        trial.set_user_attr("fail_reason", "interrupted by the user (Ctrl-C)")
        raise
    except Exception as err:  # NaN loss, out of memory, ...: FAILED with its reason, search goes on
        trial.set_user_attr("fail_reason", f"{type(err).__name__}: {err}")
        raise
    accuracy = history[-1].eval_acc
    if not multi:
        return accuracy
    second = setup.second
    return accuracy, float(measured["epoch_seconds"] if second == "time" else getattr(verdict, second))


def race(config: ArchConfig, batches: tuple[Batches, Batches], recipe: Recipe, runtime: Runtime,
         hooks: Hooks) -> list[EpochLog]:
    """Train `config` as every trial, middle-rung run and calibration training is trained: from
    the same initial weights' seed, a fair race."""
    torch.manual_seed(recipe.seed)
    return train(build_model(config), batches, recipe, runtime, hooks=hooks)


def search_batches(settings: StudySettings, data: Cifar10, runtime: Runtime, study: str
                   ) -> tuple[Recipe, tuple[Batches, Batches]]:
    """The trials' recipe (their rounds as its epochs at equal time) and their batches: the
    fidelity's share of the search-training images, and the validation hold-out."""
    fidelity = settings.fidelity
    recipe = replace(recipe_from_dict(settings.recipe, f"study {study}"), epochs=fidelity.passes)
    splits = make_splits(data, "val", fraction=fidelity.data_fraction, seed=recipe.seed,
                         val_images=fidelity.val_images)
    check_trainable(recipe, len(splits.train_labels), timed=fidelity.timed)
    return recipe, make_batches(splits, recipe.batch_size, recipe.augment, runtime)


def open_study(name: str, storage: optuna.storages.BaseStorage, settings: StudySettings, seed: int,
               pruner: optuna.pruners.BasePruner, baselines: list[tuple[str, dict[str, Any]]]
               ) -> optuna.Study:
    """Load the study (its settings must match), or create it, store its settings and enqueue
    the baselines: exactly once even when several workers start together, because only the worker
    whose create succeeds enqueues.

    The sampler's seed is `seed` for the worker that creates the study (reproducible) and is
    shifted by the trials already there and the process id otherwise, so that a resumed run or a
    second worker does not replay the same random start-up designs."""
    directions = ["maximize"] if settings.second_objective is None else ["maximize", "minimize"]
    try:
        study = optuna.create_study(study_name=name, storage=storage, pruner=pruner,
                                    sampler=make_sampler(settings.sampler, seed),
                                    directions=directions)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, pruner=pruner)
        deadline = time.monotonic() + 10  # a worker that created it may still be storing settings
        while "settings" not in study.user_attrs and time.monotonic() < deadline:
            time.sleep(0.5)
        check_settings(study, settings)
        study.sampler = make_sampler(settings.sampler, seed + 1_000 * len(study.trials) + os.getpid())
        return study
    study.set_user_attr("settings", settings.to_dict())
    for label, params in baselines:
        study.enqueue_trial(params, user_attrs={"baseline": label})
    return study


def check_limits_possible(space: SearchSpace, limits: Limits) -> None:
    """NasError when even the space's cheapest design breaks the parameter or FLOP limit."""
    verdict = check(space.cheapest(), limits)
    for rule in verdict.rules:
        if rule.name in ("params", "flops") and not rule.passed:
            raise NasError(f"impossible limits: the smallest design of space {space.name} has "
                           f"{rule.value:,} {rule.name} (limit {rule.limit}); raise the limit or "
                           "use a space with narrower widths")


@dataclass
class Search:
    """A search ready to run: every check made, the study open (see `start_search`)."""

    study: optuna.Study
    objective: Callable[[optuna.Trial], Any]
    n_trials: int

    def run(self, events: SearchEvents) -> list[int]:
        """Run trials until the study holds `n_trials` finished ones (see the module docstring);
        the numbers of the trials that failed in this run."""
        failures: list[int] = []
        if finished(self.study) >= self.n_trials:
            return failures

        def started(trial: optuna.Trial):
            events.trial_started(trial)
            return self.objective(trial)

        def ended(study: optuna.Study, trial: FrozenTrial) -> None:
            if trial.state == TrialState.FAIL and trial.user_attrs.get("fail_reason") != SURPLUS:
                failures.append(trial.number)
            events.trial_finished(study, trial)
            # count only finished trials: an enqueued (WAITING) baseline is not yet one
            if finished(study) >= self.n_trials or len(failures) >= self.n_trials:
                study.stop()

        self.study.optimize(started, callbacks=[ended], catch=(Exception,), gc_after_trial=True)
        return failures


def start_search(settings: StudySettings, runtime: Runtime, data: Cifar10, *, study: str,
                 storage: str, n_trials: int, pruner: str, speed_floor: float = 0.0,
                 progress: TrainingProgress | None = None) -> Search:
    """Every check of the search (the limits, the fidelity, the storage, the study's settings),
    then the study opened or created: a problem is named before any trial, or any view, starts.
    The trials train with the study's recipe at its fidelity's epochs (at equal time, rounds); in
    a study paced by steps, those that `speed_floor` finds too slow do not (`too_slow`; a new
    study stores the floor for its report)."""
    space, limits, fidelity = settings.search_space(), settings.limits, settings.fidelity
    check_limits_possible(space, limits)
    recipe, batches = search_batches(settings, data, runtime, study)
    proxies = proxy_batch(data, recipe.seed, fidelity.val_images)  # once: the same for all trials
    opened = open_study(study, open_storage(storage, create=True), settings, recipe.seed,
                        make_pruner("none" if settings.second_objective else pruner, fidelity.passes),
                        baseline_params(space))
    fail_stale_trials(opened)  # trials of killed workers: failed, then retried
    floor = speed_floor if fidelity.steps else 0.0
    if not opened.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        opened.set_user_attr(FLOOR, floor)  # the floor its trials were judged by: its first run's
    setup = TrialSetup(space, limits, recipe, runtime, batches, proxies,
                       n_trials, settings.second_objective, settings.fill_params,
                       0.0 if fidelity.steps else settings.budget_minutes * 60 * fidelity.time_share,
                       fidelity.steps, progress, floor)
    return Search(opened, functools.partial(objective, setup=setup), n_trials)
