"""The final rung of a search (`nas search --final-rung K`): after its trials, K of the study's
designs are each trained at the study's truth fidelity, and the highest truth is the search's pick
(`nas.search.trials.best_trial`).

A trial's score is a cheap ranking with a known bias, so the rung does not take the top K by
score.

- A trial paced by steps (the default) gives every design the twin's steps, so its score cannot
  see what the full budget gives a fast design: more steps than the twin. At equal time a design
  slower than the twin gets fewer: every such pick lost to the twin at M however high it scored
  (studies/equal-time-zen4: truths 84.64 and 82.30 % for the best score and the fastest above the
  twin's score, both slower than the twin; studies/equal-time-main: 85.26 % for the best score,
  slower). The design that won was faster than the twin and scored near it (v4's winner: 0.48
  below the twin, 0.14 above, 1.36 below in three searches). So the rung times the twin and, by
  score, the trials whose own figure is at least `TIMING_FLOOR` of the twin's, and picks the best
  scores among those it times faster than the twin by `SPEED_MARGIN`, beyond the timing's noise
  (`time_candidates`). It times them itself, one after another, as a truth run plans its epochs
  (`nas.training.budget.plan_speed`, 5 s each), each against the twin timed in the same pass,
  and keeps the figures in the study (`RUNG_SPEEDS`): a trial's own half-second figure, timed
  minutes or hours apart, is too noisy to choose by (studies/equal-time-main section 9: v4's
  winner measured 581 and 783 images/s in two searches on one machine), but good enough to skip
  the trials far slower than the twin.
- A trial paced by time (`--trial-steps 0`) under-rates the designs that do more work per image:
  they get fewer steps in a short trial and catch up over the full budget
  (studies/calibration-equal-time). Among the trials above the twin's score the rung takes the
  best score, then the one with the most FLOPs (studies/equal-time-main: the top two by score
  reached 84.52 % at M, the twelfth by score, with the most FLOPs, 85.70 %; in
  studies/equal-time-v4 the rung's best was also the heaviest).

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
from nas.search.settings import truth_epochs
from nas.search.space import TWIN
from nas.search.trials import (RUNG, RUNG_SPEEDS, contenders, record_result, recorded_results,
                               settings_of, trial_design, truths)
from nas.training.budget import plan_speed
from nas.training.checkpoints import CHECKPOINT
from nas.training.progress import SeriesProgress
from nas.training.recipe import Recipe, recipe_from_dict
from nas.training.run import RunSpec, budgeted, resumed, train_run
from nas.training.runtime import Runtime

# In a study paced by steps, the rung times the trials whose own speed figure is at least this share
# of the twin's: a trial's half-second figure was 0.74 of its timed one at worst (v4's winner, 581
# against 783 images/s), so none that the rung would find as fast as the twin is left untimed.
TIMING_FLOOR = 0.7

# How much faster than the twin, timed in the same pass, a trial must be for the rung to count it
# as faster: beyond the timing's noise. One design timed minutes apart on one machine gave 1,369
# and 1,551 images/s, the twin 1,254 and 1,524 (studies/equal-time-zen4); v4's winner was 1.11
# to 1.20 times the twin's speed there.
SPEED_MARGIN = 1.1


def paced_by_steps(study: optuna.Study) -> bool:
    return bool(settings_of(study).fidelity.steps)


def picks_in_words(study: optuna.Study) -> str:
    """How the rung picks, for the search's live view."""
    if paced_by_steps(study):
        return (f"the best scores among the trials {SPEED_MARGIN:g} times as fast as the twin or "
                "faster, as the rung times them")
    return "the best score, the most FLOPs among those above the twin's score, then by score"


def ranked_trials(study: optuna.Study) -> tuple[list[FrozenTrial], FrozenTrial | None]:
    """The complete feasible trials (a repeat counts once: its first) by score, and the twin."""
    ranked = sorted(contenders(study), key=lambda t: (-t.values[0], t.number))
    return ranked, next((t for t in ranked if t.user_attrs.get("baseline") == TWIN), None)


def is_fast(timing: dict[str, float] | None) -> bool:
    """Whether a rung timing found its trial SPEED_MARGIN times as fast as the twin timed in the
    same pass, or faster."""
    return bool(timing and "twin_images_per_s" in timing
                and timing["train_images_per_s"] >= SPEED_MARGIN * timing["twin_images_per_s"])


def fast_trials(study: optuna.Study) -> list[FrozenTrial]:
    """In a study paced by steps, the trials (the twin aside) that the rung timed faster than the
    twin (`is_fast`), by score; all trials by score where there is no twin."""
    ranked, twin = ranked_trials(study)
    timed = study.user_attrs.get(RUNG_SPEEDS, {})
    return [t for t in ranked if t is not twin and (twin is None or is_fast(timed.get(str(t.number))))]


def time_candidates(study: optuna.Study, runtime: Runtime, k: int) -> None:
    """In a study paced by steps, until `k` trials are known to be faster than the twin (`is_fast`):
    time (`plan_speed`) the twin, then by score each trial not yet timed against it whose own
    figure is at least TIMING_FLOOR of the twin's. Each figure goes into the study's `RUNG_SPEEDS`
    as soon as it is timed, with the twin's figure of the same pass (a machine's speed drifts by
    a tenth within an hour, so only figures timed minutes apart compare) and the seconds spent
    timing it (a trial timed again keeps counting its earlier seconds). A rung resumed with its
    picks known times nothing, and picks what it picked before."""
    if not paced_by_steps(study):
        return
    ranked, twin = ranked_trials(study)
    if twin is None or len(fast_trials(study)) >= k:
        return
    recipe = truth_recipe(study)

    def time(trial: FrozenTrial, twin_figure: float | None) -> float:
        figure = plan_speed(trial_design(study, trial), recipe, runtime).attrs()
        speeds = dict(study.user_attrs.get(RUNG_SPEEDS, {}))
        before = speeds.get(str(trial.number), {}).get("seconds", 0.0)
        speeds[str(trial.number)] = {"train_images_per_s": figure["train_images_per_s"],
                                     "seconds": round(before + figure["measure_seconds"], 2),
                                     **({"twin_images_per_s": twin_figure} if twin_figure else {})}
        study.set_user_attr(RUNG_SPEEDS, speeds)
        return figure["train_images_per_s"]

    bar = time(twin, None)  # this pass's: the figures it is compared with are timed next
    floor = TIMING_FLOOR * twin.user_attrs.get("train_images_per_s", 0)
    for trial in ranked:
        if len(fast_trials(study)) >= k:
            return
        timing = study.user_attrs.get(RUNG_SPEEDS, {}).get(str(trial.number), {})
        if trial is not twin and "twin_images_per_s" not in timing \
                and trial.user_attrs.get("train_images_per_s", 0) >= floor:
            time(trial, bar)


def rung_trials(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The final rung's `k` trials (see the module docstring), in the order they are picked.

    Paced by steps: the trials timed faster than the twin (`fast_trials`) by score, then
    the rest by score. Paced by time: among the trials that score above the twin (all, without a
    scored twin; the twin's truth is the rival's, so it would buy nothing), the best score, the
    most FLOPs, the rest of their front of score against FLOPs, then the rest by score."""
    ranked, twin = ranked_trials(study)
    if paced_by_steps(study):
        picks = (*fast_trials(study), *ranked)
    else:
        above = [t for t in ranked if twin is None or t.values[0] > twin.values[0]]

        def flops(trial: FrozenTrial) -> float:
            return trial.user_attrs.get("flops", 0)

        front = [t for t in above
                 if not any(o.values[0] > t.values[0] and flops(o) > flops(t) for o in above)]
        second = [max(above, key=lambda t: (flops(t), -t.number))] if above else []
        picks = (*above[:1], *second, *front, *ranked)
    return list({t.number: t for t in picks}.values())[:k]  # the first of each wins


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
    time_candidates(study, runtime, k)
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
