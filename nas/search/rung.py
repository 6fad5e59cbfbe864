"""The rungs of a search, after its trials (`nas search --middle-rung N --final-rung K`): the
middle rung trains N candidates longer, at equal time; the final rung trains K designs each at the
study's truth fidelity, and the highest truth is the search's pick
(`nas.search.trials.best_trial`).

A trial's score is a cheap ranking with a known bias, so the rungs do not take the top by score.

- A trial paced by steps (the default) gives every design the twin's steps, so its score cannot
  see what the full budget gives a fast design: more steps than the twin. At equal time a design
  slower than the twin gets fewer: every such pick lost to the twin at M however high it scored
  (studies/equal-time-zen4: truths 84.64 and 82.30 % for the best score and the fastest above the
  twin's score, both slower than the twin; studies/equal-time-main: 85.26 % for the best score,
  slower). So the rung times the twin and, by score, the trials whose own figure is at least
  `TIMING_FLOOR` of the twin's, until it has the candidates it needs among those it times at
  least as fast as the twin (`SPEED_MARGIN`; `time_candidates`). It times them itself, one after
  another, as a truth run plans its epochs (`nas.training.budget.plan_speed`, 5 s each), each
  against the twin timed in the same pass, and keeps the figures in the study (`RUNG_SPEEDS`): a
  trial's own half-second figure, timed minutes or hours apart, is too noisy to choose by
  (studies/equal-time-main section 9: v4's winner measured 581 and 783 images/s in two searches
  on one machine), but good enough to skip the trials far slower than the twin.

  Among the fast ones the score still cannot choose: after 10 % of M the winner at M (v4's, +1.40
  there) trailed the twin by 1.36, and a design that led it by 0.48 ended 2.54 behind it
  (studies/equal-time-zen4); the gap opens with the length of the training (studies/equal-time-main
  section 8: the winner −0.44 at 10 % of M, +0.92 at 30 %). So the middle rung trains the first
  `N` fast trials by score for MIDDLE_LENGTH times a trial's steps, scaled by each one's speed
  against the twin's (`middle_steps`: equal time, 30 % of M), on the trials' images, scored on the
  hold-out; the final rung takes them by that score, then the other fast trials by score, then
  the rest by score. With no more candidates than the final rung has places it decides nothing,
  and is skipped.
- A trial paced by time (`--trial-steps 0`) under-rates the designs that do more work per image:
  they get fewer steps in a short trial and catch up over the full budget
  (studies/calibration-equal-time). Among the trials above the twin's score the rung takes the
  best score, then the one with the most FLOPs (studies/equal-time-main: the top two by score
  reached 84.52 % at M, the twelfth by score, with the most FLOPs, 85.70 %; in
  studies/equal-time-v4 the rung's best was also the heaviest).

The truth run is exactly `nas train-best --validate --trial N`: the study's recipe as searched,
for the study's budget in minutes (at equal time) or the truth fidelity's epochs, on the 45,000
search-training images, scored on the validation hold-out; never the test set.

Resumable as trials are: a middle run or a truth the study already holds is not trained again; a
truth's run folder with a checkpoint is continued from its last finished epoch, and one whose
metrics were written before it was recorded is recorded from them; an interrupted middle run (a
few minutes) starts again, as an interrupted trial does.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from nas.data.cifar10 import Cifar10
from nas.search.optimize import race, search_batches
from nas.search.settings import MIDDLE_LENGTH, truth_epochs
from nas.search.space import TWIN
from nas.search.trials import (MIDDLE, RUNG, RUNG_SPEEDS, contenders, record_result,
                               recorded_results, settings_of, trial_design, truths)
from nas.training.budget import equal_steps, plan_speed
from nas.training.checkpoints import CHECKPOINT
from nas.training.loop import ONECYCLE_MIN_STEPS, Hooks
from nas.training.progress import SeriesProgress
from nas.training.recipe import Recipe, recipe_from_dict
from nas.training.run import RunSpec, budgeted, resumed, train_run
from nas.training.runtime import Runtime

# In a study paced by steps, the rung times the trials whose own speed figure is at least this share
# of the twin's: a trial's half-second figure was 0.74 of its timed one at worst (v4's winner, 581
# against 783 images/s), so none that the rung would find as fast as the twin is left untimed.
TIMING_FLOOR = 0.7

# How fast against the twin, timed in the same pass, a trial must be for the rung to count it as
# fast: not slower, since a slower design trains fewer steps than the twin at M. No margin for the
# timing's noise (about a tenth: one design timed minutes apart gave 1,369 and 1,551 images/s,
# studies/equal-time-zen4): v4's winner timed 1.04 times the twin there, and the middle rung, at
# equal time, tells the fast ones apart.
SPEED_MARGIN = 1.0


def paced_by_steps(study: optuna.Study) -> bool:
    return bool(settings_of(study).fidelity.steps)


def picks_in_words(study: optuna.Study, middle: int) -> str:
    """How the rung picks, for the search's live view."""
    if paced_by_steps(study):
        fast = "the trials as fast as the twin or faster, as the rung times them"
        if middle:
            return (f"the best scores of the middle rung: the {middle} best scores among {fast}, "
                    f"each trained {MIDDLE_LENGTH} times a trial at equal time")
        return f"the best scores among {fast}"
    return "the best score, the most FLOPs among those above the twin's score, then by score"


def ranked_trials(study: optuna.Study) -> tuple[list[FrozenTrial], FrozenTrial | None]:
    """The complete feasible trials (a repeat counts once: its first) by score, and the twin."""
    ranked = sorted(contenders(study), key=lambda t: (-t.values[0], t.number))
    return ranked, next((t for t in ranked if t.user_attrs.get("baseline") == TWIN), None)


def is_fast(timing: dict[str, float] | None) -> bool:
    """Whether a rung timing found its trial at least SPEED_MARGIN times as fast as the twin timed
    in the same pass."""
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
    fast = len(fast_trials(study))  # a figure, once timed against its pass's twin, keeps its verdict
    if twin is None or fast >= k:
        return
    recipe = truth_recipe(study)
    speeds = dict(study.user_attrs.get(RUNG_SPEEDS, {}))

    def time(trial: FrozenTrial, twin_figure: float | None) -> dict[str, float]:
        figure = plan_speed(trial_design(study, trial), recipe, runtime).attrs()
        before = speeds.get(str(trial.number), {}).get("seconds", 0.0)
        speeds[str(trial.number)] = {"train_images_per_s": figure["train_images_per_s"],
                                     "seconds": round(before + figure["measure_seconds"], 2),
                                     **({"twin_images_per_s": twin_figure} if twin_figure else {})}
        study.set_user_attr(RUNG_SPEEDS, speeds)
        return speeds[str(trial.number)]

    bar = time(twin, None)["train_images_per_s"]  # this pass's: the figures compared are timed next
    floor = TIMING_FLOOR * twin.user_attrs.get("train_images_per_s", 0)
    for trial in ranked:
        if fast >= k:
            return
        if trial is not twin and "twin_images_per_s" not in speeds.get(str(trial.number), {}) \
                and trial.user_attrs.get("train_images_per_s", 0) >= floor:
            fast += is_fast(time(trial, bar))


def middle_candidates(study: optuna.Study, n: int, k: int) -> list[FrozenTrial]:
    """The middle rung's candidates: in a study paced by steps, with a twin, the first `n` trials
    timed as fast as the twin (`fast_trials`), if they are more than the final rung's `k` places."""
    if not paced_by_steps(study) or ranked_trials(study)[1] is None:
        return []
    fast = fast_trials(study)[:n]
    return fast if len(fast) > k else []


def middle_steps(study: optuna.Study, trial: FrozenTrial) -> int:
    """A middle run's optimizer steps: MIDDLE_LENGTH times a trial's, scaled by the trial's speed
    against the twin's as the rung timed them in one pass (`RUNG_SPEEDS`): equal time."""
    timing = study.user_attrs[RUNG_SPEEDS][str(trial.number)]
    return max(1, round(MIDDLE_LENGTH * settings_of(study).fidelity.steps
                        * timing["train_images_per_s"] / timing["twin_images_per_s"]))


def middle_rung(study: optuna.Study, n: int, k: int, data: Cifar10, runtime: Runtime,
                progress: SeriesProgress) -> None:
    """Train each of the middle rung's candidates (`middle_candidates`) not yet in the study's
    `MIDDLE` for its `middle_steps`, as a trial trains (its recipe, images and hold-out, in rounds
    of equal steps, from the same initial weights' seed), and store its val acc there."""
    candidates = middle_candidates(study, n, k)
    if not candidates:
        return
    left = [t for t in candidates if str(t.number) not in study.user_attrs.get(MIDDLE, {})]
    progress.series_started(f"middle rung: {len(candidates)} candidates, {MIDDLE_LENGTH} times a "
                            "trial at equal time", total=len(candidates),
                            done=len(candidates) - len(left))
    if not left:
        return
    recipe, (train_batches, eval_batches) = search_batches(settings_of(study), data, runtime,
                                                           study.study_name)
    for trial in left:
        steps = middle_steps(study, trial)
        progress.training_started(f"trial {trial.number}, {steps} steps")
        start = time.perf_counter()
        history = race(trial_design(study, trial),
                       (equal_steps(train_batches, steps, recipe.epochs, ONECYCLE_MIN_STEPS),
                        eval_batches), recipe, runtime, Hooks(progress))
        results = dict(study.user_attrs.get(MIDDLE, {}))
        results[str(trial.number)] = {"accuracy": history[-1].eval_acc, "steps": steps,
                                      "seconds": round(time.perf_counter() - start, 2)}
        study.set_user_attr(MIDDLE, results)
        progress.training_done(1)


def rung_trials(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The final rung's `k` trials (see the module docstring), in the order they are picked.

    Paced by steps: the middle rung's runs by their score (`MIDDLE`), then the trials timed as
    fast as the twin (`fast_trials`) by score, then the rest by score. Paced by time: among the
    trials that score above the twin (all, without a scored twin; the twin's truth is the
    rival's, so it would buy nothing), the best score, the most FLOPs, the rest of their front of
    score against FLOPs, then the rest by score."""
    ranked, twin = ranked_trials(study)
    if paced_by_steps(study):
        middle = study.user_attrs.get(MIDDLE, {})
        longer = sorted((t for t in ranked if str(t.number) in middle),
                        key=lambda t: -middle[str(t.number)]["accuracy"])
        picks = (*longer, *fast_trials(study), *ranked)
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
               progress: SeriesProgress | None = None, command: str = "", middle: int = 0
               ) -> list[int]:
    """Run the middle rung of `middle` candidates, then give each of the study's top `k` trials
    its truth (see the module docstring), writing the runs under `out`; the rung's trial numbers,
    in the order picked. `command`, with {trial} and {out} filled in, is recorded in each run's
    metrics as the command that makes it alone."""
    progress = progress or SeriesProgress()
    time_candidates(study, runtime, max(k, middle))
    middle_rung(study, middle, k, data, runtime, progress)
    top = rung_trials(study, k)
    numbers = [t.number for t in top]
    study.set_user_attr(RUNG, {"k": k, "middle": middle, "trials": numbers, "out": str(out)})
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
