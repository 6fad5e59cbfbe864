"""Reading trials back: their designs, their rule verdicts, their states, the best one, the
settings their study remembers and the train-best results kept for them.

Both the code that runs a search (`nas.search.optimize`) and the code that reads one (`nas report`,
`nas train-best`) import this module; it never imports the search.

A trial stores its design as its sampled parameters (short attributes, readable by any Optuna
tool); the design is rebuilt from them with the space the study stored when it was created, and
with the widths of `filled_cB_channels` attributes where `--fill-params` widened it. Rule
verdicts go where Optuna's own tools look for feasibility, `trial.constraints`: one value per rule
of `CONSTRAINTS`, <= 0 when the rule holds, set by name (`trial.set_constraint`) as soon as the
design is judged, so that a trial pruned by a rule carries its verdict too. Studies stored before
Optuna 5 hold them as the `constraints` system attribute, a list in `CONSTRAINTS` order, which
`trial.constraints` reads back with the keys "0", "1", ...
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.design.config import ArchConfig, dict_diff
from nas.design.limits import Limits
from nas.errors import NasError
from nas.search.settings import StudySettings, truth_epochs
from nas.search.space import with_widths
from nas.search.storage import STALE_REASON
from nas.training.recipe import fixed_part

if TYPE_CHECKING:  # the verdict's module counts with fvcore: not imported to read a study
    from nas.design.rules import Verdict

CONSTRAINTS = ("params", "flops", "receptive_field", "depthwise_separable", "dilated", "no_maxpool",
               "gap_before_output", "macro_shape")
FILLED = "filled_c{}_channels"  # user attribute: block b's width after --fill-params widened it
# study attributes of train-best's results: tested on the test set, or (`--validate`) scored on
# the validation hold-out after a training at the calibration's truth fidelity: the design's truth
RESULTS = {"test": "test_results", "val": "val_results"}
# the zero-cost proxies every feasible trial stores before it trains, each as "proxy_NAME", with
# "proxy_ms", the time of all three (nas.search.proxies)
PROXIES = ("synflow", "naswot", "grad_norm")
PROXY_ATTRS = (*(f"proxy_{name}" for name in PROXIES), "proxy_ms")
# a second objective's trial attribute (time: the measured seconds per 50,000-image epoch); a
# study without one is shown against its parameters
COST_ATTRS = {"params": "n_params", "flops": "flops", "time": "epoch_seconds"}


def settings_of(study: optuna.Study) -> StudySettings:
    """The settings a study was created with; NasError for a study that `nas` did not make."""
    data = study.user_attrs.get("settings")
    if not isinstance(data, dict):
        raise NasError(f"study {study.study_name} has no stored settings: it was not made by this "
                       "version of nas search; start a new --study")
    return StudySettings.from_dict(data, f"study {study.study_name}")


def check_settings(study: optuna.Study, settings: StudySettings) -> None:
    """NasError (one line) when a study is reopened with settings other than its own."""
    stored = settings_of(study).to_dict()
    stored["recipe"] = fixed_part(stored["recipe"])  # a study made before a new recipe knob
    wanted = settings.to_dict()
    if stored["budget_minutes"] and wanted["budget_minutes"] and stored["device"] != wanted["device"]:
        # its speeds, and so every trial's steps, are this device's: minutes elsewhere differ
        raise NasError(f"study {study.study_name} measures its time budget on {stored['device']}, "
                       f"this is {wanted['device']}: continue it there, or start a new study here "
                       "with --study NAME")
    ignore = ("nas_version", "space")  # the space is compared by its digest
    diff = dict_diff({k: v for k, v in stored.items() if k not in ignore},
                     {k: v for k, v in wanted.items() if k not in ignore})
    if diff:
        raise NasError(f"study {study.study_name} was made with other settings ({diff}); "
                       "rerun with its settings, or start a new study with --study NAME")


def verdict_constraints(verdict: Verdict, limits: Limits) -> dict[str, float]:
    """A verdict as Optuna constraints: one value per rule of CONSTRAINTS, <= 0 when it holds (the
    numeric rules say by how much, relative to their limit)."""
    numeric = {"params": (verdict.params - limits.max_params + 1) / limits.max_params,
               "flops": (verdict.flops - limits.max_flops) / limits.max_flops,
               "receptive_field": (limits.min_rf + 1 - verdict.receptive_field) / max(limits.min_rf, 1)}
    broken = set(verdict.broken)
    return {name: numeric.get(name, 1.0 if name in broken else 0.0) for name in CONSTRAINTS}


def is_feasible(trial: FrozenTrial) -> bool:
    """Whether the trial broke no rule (stored either way: see the module docstring)."""
    return all(value <= 0 for value in trial.constraints.values())


def pruned_by(trial: FrozenTrial) -> str | None:
    """"constraint" (a rule, before training), "speed" (slower than the twin, before training),
    "pruner" (during training), or None."""
    if trial.state != TrialState.PRUNED:
        return None
    if trial.user_attrs.get("broken"):
        return "constraint"
    return "speed" if SLOW in trial.user_attrs else "pruner"


COUNTS = ("complete", "constraint", "speed", "pruner", "failed", "running", "waiting")


def trial_counts(study: optuna.Study) -> dict[str, int]:
    """complete / pruned by constraint / by speed / by pruner / failed / running / waiting."""
    counts = dict.fromkeys(COUNTS, 0)
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
    filled widths, when the search widened it to the parameter limit)."""
    design = settings_of(study).search_space().design(trial.params, trial.number)
    widths = filled_widths(trial.user_attrs, len(design.blocks))
    return design if widths is None else with_widths(design, widths)


def filled_widths(attrs: dict[str, Any], blocks: int) -> tuple[int, ...] | None:
    """The widths `--fill-params` gave a trial's design, or None when it kept its sampled ones."""
    if FILLED.format(1) not in attrs:
        return None
    return tuple(int(attrs[FILLED.format(b)]) for b in range(1, blocks + 1))


def contenders(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that compete for best: complete, feasible, and not a repeat of an earlier one."""
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if is_feasible(t) and "duplicate_of" not in t.user_attrs]


def best_trial(study: optuna.Study, number: int | None = None) -> FrozenTrial:
    """Trial `number`, or the best design: where some complete feasible trials have a truth (the
    final rung: `nas train-best --validate --trial N` for the search's top few), the one with the
    highest (`truths`); otherwise the one with the highest validation accuracy at the search's
    fidelity."""
    complete = contenders(study)
    if number is not None:
        trial = next((t for t in study.trials if t.number == number), None)
        if trial is None or trial.state != TrialState.COMPLETE:
            raise NasError(f"trial {number} of study {study.study_name} is not a complete trial; "
                           f"complete ones: {[t.number for t in complete]}")
        return trial
    if not complete:
        raise NasError(f"study {study.study_name} has no complete feasible trial yet: "
                       f"run nas search --study {study.study_name} first")
    known = truths(study)
    if ranked := [t for t in complete if t.number in known]:
        return max(ranked, key=lambda t: known[t.number])
    return max(complete, key=lambda t: t.values[0])


def made_alike(run: dict[str, Any], settings: StudySettings) -> bool:
    """Whether a `--validate` run trained with the study's defaults: its time budget, else the
    calibration's truth epochs (runs with other --epochs or --budget-minutes do not)."""
    if settings.budget_minutes:
        return run.get("budget_minutes") == settings.budget_minutes
    return "budget_minutes" not in run and run["epochs"] == truth_epochs()


def truths(study: optuna.Study) -> dict[int, float]:
    """Each trial's truth: the mean val accuracy of its `nas train-best --validate` runs (and
    final rung runs) made with the study's defaults (`made_alike`), so that the designs compared
    trained alike."""
    results = recorded_results(study, "val")
    if not results:
        return {}
    settings = settings_of(study)
    out = {}
    for number, runs in results.items():
        if accuracies := [run["accuracy"] for run in runs if made_alike(run, settings)]:
            out[number] = sum(accuracies) / len(accuracies)
    return out


def record_result(study: optuna.Study, trial: FrozenTrial, result: dict[str, Any], split: str) -> None:
    """Keep a train-best result on the study, by trial number and run folder, under its split's
    attribute (`RESULTS`): a new run adds a result, none is ever replaced (Optuna freezes a
    finished trial's own attributes, so the study carries them)."""
    results = dict(study.user_attrs.get(RESULTS[split], {}))
    runs = dict(results.get(str(trial.number), {}))
    if result["out"] in runs:
        raise NasError(f"trial {trial.number} already has a {split} result from {result['out']}")
    runs[result["out"]] = result
    results[str(trial.number)] = runs
    study.set_user_attr(RESULTS[split], results)


def recorded_results(study: optuna.Study, split: str) -> dict[int, list[dict[str, Any]]]:
    """Every recorded `split` run of each trial, oldest first."""
    return {int(k): list(v.values()) for k, v in study.user_attrs.get(RESULTS[split], {}).items()}


COST = "search_cost"  # study attribute: what the search and its final rung took (`search_cost`)
RUNG = "final_rung"  # study attribute: the final rung's trials, best score first, and its folder
MIDDLE = "middle_rung"  # study attribute: by trial, the middle rung's val acc, steps and seconds
SLOW = "slower_than_twin"  # trial attribute: its speed as a share of the twin's, when that pruned it
FLOOR = "speed_floor"  # study attribute: the speed floor its trials were judged by (0: none)
YARDSTICK = "twin_speed"  # study attribute: the twin's training images/s as the floor last timed it
RUNG_SPEEDS = "rung_speeds"  # study attribute: by trial, the training images/s the rung timed, and
# the seconds that took


def worked(trial: FrozenTrial) -> tuple[datetime, datetime]:
    """A finished trial's span of work: start to end, except for a trial whose worker was killed.
    That one is failed only when a later run finds it dead, maybe hours later, so its span ends
    after the work it recorded (its speed measurement and finished rounds)."""
    if trial.user_attrs.get("fail_reason") != STALE_REASON:
        return trial.datetime_start, trial.datetime_complete
    seconds = trial.user_attrs.get("measure_seconds", 0) + trial.user_attrs.get("train_seconds", 0)
    return trial.datetime_start, min(trial.datetime_complete,
                                     trial.datetime_start + timedelta(seconds=seconds))


def search_cost(study: optuna.Study, rung: list[int]) -> dict[str, float]:
    """The minutes the search took: its trials' busy time (the union of their spans, `worked`, so
    a pause between resumed runs is not counted, and parallel workers' trials count once) and its
    rungs' (the timing of the candidates, `RUNG_SPEEDS`, the middle rung's runs, `MIDDLE`, and the
    truth runs of the `rung` trials made with the study's defaults); their sum, and at equal time that sum as a multiple of
    the budget M."""
    spans = sorted(worked(t) for t in study.get_trials(deepcopy=False)
                   if t.datetime_start and t.datetime_complete)
    busy, end = 0.0, None
    for start, stop in spans:
        if end is None or start > end:
            busy += (stop - start).total_seconds()
            end = stop
        elif stop > end:
            busy += (stop - end).total_seconds()
            end = stop
    settings = settings_of(study)
    rung_seconds = sum(run["wall_seconds"] for number, runs in recorded_results(study, "val").items()
                       if number in rung for run in runs if made_alike(run, settings))
    rung_seconds += sum(timed["seconds"] for timed in study.user_attrs.get(RUNG_SPEEDS, {}).values())
    rung_seconds += sum(run["seconds"] for run in study.user_attrs.get(MIDDLE, {}).values())
    total = (busy + rung_seconds) / 60
    cost = {"trials_minutes": round(busy / 60, 2), "rung_minutes": round(rung_seconds / 60, 2),
            "total_minutes": round(total, 2)}
    if settings.budget_minutes:
        cost["multiple_of_budget"] = round(total / settings.budget_minutes, 2)
    return cost
