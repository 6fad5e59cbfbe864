"""The final rung of a search (`nas search --final-rung K`): after its trials, K of the study's
designs are each trained at the study's truth fidelity, and the highest truth is the search's pick
(`nas.search.trials.best_trial`).

A trial's score is a cheap ranking with a known bias, so the rung does not take the top K by
score. It takes the two ends of the front of score against what the score under-rates, among the
trials that beat the reference's twin at the search's fidelity: the best score, and the design
that has the most of it (`UNDERRATED`).

- A trial paced by time (`--trial-steps 0`) under-rates the designs that do more work per image:
  they get fewer steps in a short trial and catch up over the full budget
  (studies/calibration-equal-time). The second pick is the one with the most FLOPs
  (studies/equal-time-main: the top two by score reached 84.52 % at M, the twelfth by score, with
  the most FLOPs, 85.70 %; in studies/equal-time-v4 the rung's best was also the heaviest).
- A trial paced by steps (the default) gives every design the steps the twin gets, so it cannot
  see what the full budget gives a fast design: more steps than the twin. The second pick is the
  fastest: better per step than the twin and faster, it leads the twin at M on both counts. The
  rung times its candidates itself, one after another, as a truth run plans its epochs
  (`nas.training.budget.plan_speed`, 5 s each), and keeps those figures in the study
  (`RUNG_SPEEDS`): the half-second figure of each trial, timed minutes or hours apart, is too noisy
  to choose by (studies/equal-time-main section 9: v4's winner measured 581 and 783 images/s in two
  searches on one machine).

The truth run is exactly `nas train-best --validate --trial N`: the study's recipe as searched,
for the study's budget in minutes (at equal time) or the truth fidelity's epochs, on the 45,000
search-training images, scored on the validation hold-out; never the test set.

Resumable as trials are: a trial whose truth the study already holds is not trained again, a run
folder with a checkpoint is continued from its last finished epoch, and one whose metrics were
written before it was recorded is recorded from them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from nas.data.cifar10 import Cifar10
from nas.search.settings import StudySettings, truth_epochs
from nas.search.space import TWIN
from nas.search.trials import (RUNG, RUNG_SPEEDS, contenders, record_result, recorded_results,
                               settings_of, trial_design, truths)
from nas.training.budget import plan_speed
from nas.training.checkpoints import CHECKPOINT
from nas.training.progress import SeriesProgress
from nas.training.recipe import Recipe, recipe_from_dict
from nas.training.run import RunSpec, budgeted, resumed, train_run
from nas.training.runtime import Runtime

# What a trial's score under-rates, by how its study paces a trial (see the module docstring):
# the trial attribute whose largest value the rung picks second, and that pick in words
UNDERRATED = {"time": ("flops", "the most FLOPs"), "steps": ("train_images_per_s", "the fastest")}


def underrated(settings: StudySettings) -> tuple[str, str]:
    """`UNDERRATED`'s attribute and words for a study's pace. At equal epochs, where the truth is
    epochs too and speed buys nothing, a short training under-rates work per image as time does."""
    return UNDERRATED["steps" if settings.fidelity.steps else "time"]


def candidates_of(study: optuna.Study) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    """The complete feasible trials (a repeat counts once: its first) by score, and among them the
    rung's candidates: those above the reference's twin (all of them without a scored twin)."""
    ranked = sorted(contenders(study), key=lambda t: (-t.values[0], t.number))
    twin = next((t.values[0] for t in ranked if t.user_attrs.get("baseline") == TWIN), None)
    return ranked, [t for t in ranked if twin is None or t.values[0] > twin]


def time_candidates(study: optuna.Study, runtime: Runtime) -> None:
    """In a study paced by steps, time each candidate not yet timed (`plan_speed`) and add its
    training images/s, and the seconds the timing took, to the study's `RUNG_SPEEDS`; a figure
    once stored is kept, so a resumed rung picks what it picked before."""
    if not settings_of(study).fidelity.steps:
        return
    recipe = truth_recipe(study)
    speeds = dict(study.user_attrs.get(RUNG_SPEEDS, {}))
    for trial in candidates_of(study)[1]:
        if str(trial.number) not in speeds:
            speed = plan_speed(trial_design(study, trial), recipe, runtime).attrs()
            speeds[str(trial.number)] = {"train_images_per_s": speed["train_images_per_s"],
                                         "seconds": speed["measure_seconds"]}
            study.set_user_attr(RUNG_SPEEDS, speeds)  # each figure kept as soon as it is timed


def rung_trials(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The final rung's `k` trials (see the module docstring), in the order they are picked.

    The candidates are the complete feasible trials (a repeat counts once: its first) that score
    above the reference's twin (all of them in a study without a scored twin): the twin's truth is
    the rival's, so it would buy nothing. Their front is the candidates that no other one beats on
    both score and the `underrated` attribute. The picks: the best score, the most of that
    attribute (a candidate's speed as the rung timed it, `time_candidates`, where it did), the
    rest of the front by score, then the rest of the trials by score."""
    attr, _ = underrated(settings_of(study))
    ranked, candidates = candidates_of(study)
    timed = study.user_attrs.get(RUNG_SPEEDS, {})  # only a study paced by steps has them

    def most(trial: FrozenTrial) -> float:
        if (speed := timed.get(str(trial.number))) is not None:
            return speed["train_images_per_s"]
        return trial.user_attrs.get(attr, 0)

    front = [t for t in candidates
             if not any(o.values[0] > t.values[0] and most(o) > most(t) for o in candidates)]
    second = [max(candidates, key=lambda t: (most(t), -t.number))] if candidates else []
    picks = {t.number: t for t in (*candidates[:1], *second, *front, *ranked)}  # first wins
    return list(picks.values())[:k]


def truth_recipe(study: optuna.Study) -> Recipe:
    """The recipe of a truth run: the study's as searched, at the truth fidelity's epochs (a
    study with a time budget re-plans them to fill its minutes)."""
    searched = recipe_from_dict(settings_of(study).recipe, f"study {study.study_name}")
    return replace(searched, epochs=truth_epochs())


def truth_folder(out: Path, trial: int) -> Path:
    """Where a truth run of `trial` is written under `out`: as `nas train-best --validate
    --trial N` writes it under its default runs/STUDY."""
    return out / f"trial-{trial}-val"


def recorded(metrics: dict[str, Any], out: Path) -> dict[str, Any]:
    """A finished truth or test run as the study keeps it (`record_result`)."""
    budget = metrics.get("budget")
    return {"accuracy": metrics["accuracy"], "epochs": metrics["epochs"], "out": str(out),
            "wall_seconds": metrics["wall_seconds"],
            **({"budget_minutes": budget["budget_minutes"]} if budget else {})}


def truth_run(study: optuna.Study, trial: FrozenTrial, out: Path, data: Cifar10, runtime: Runtime,
              progress: SeriesProgress, command: str) -> dict[str, Any]:
    """Train `trial`'s truth into `out` (continuing a run there) and return its metrics."""
    settings = settings_of(study)
    resume = (out / CHECKPOINT).exists()
    spec = RunSpec(trial_design(study, trial), truth_recipe(study), out, "val",
                   val_images=settings.fidelity.val_images, resume=resume, command=command)
    minutes = settings.budget_minutes  # a resumed run keeps its plan, a new one is planned here
    return train_run(budgeted(resumed(spec, minutes), minutes, runtime, data), data, runtime, progress)


def final_rung(study: optuna.Study, k: int, out: Path, data: Cifar10, runtime: Runtime,
               progress: SeriesProgress | None = None, command: str = "") -> list[int]:
    """Give each of the study's top `k` trials its truth (see the module docstring), writing the
    runs under `out`; the rung's trial numbers, best score first. `command`, with {trial} and
    {out} filled in, is recorded in each run's metrics as the command that makes it alone."""
    progress = progress or SeriesProgress()
    time_candidates(study, runtime)
    top = rung_trials(study, k)
    numbers = [t.number for t in top]
    study.set_user_attr(RUNG, {"k": k, "trials": numbers, "out": str(out)})
    have = truths(study)
    progress.series_started(f"final rung: {len(top)} truth{'s' * (len(top) != 1)}", total=len(top),
                            done=sum(n in have for n in numbers))
    for trial in top:
        if trial.number in have:
            continue
        folder = truth_folder(out, trial.number)
        progress.training_started(f"trial {trial.number}")
        if (folder / "metrics.json").exists():  # finished, then killed before it was recorded
            metrics = json.loads((folder / "metrics.json").read_text())
        else:
            metrics = truth_run(study, trial, folder, data, runtime, progress,
                                command.format(trial=trial.number, out=folder))
        if all(run["out"] != str(folder) for run in recorded_results(study, "val").get(trial.number, [])):
            record_result(study, trial, recorded(metrics, folder), "val")
        progress.training_done(1)
    return numbers
