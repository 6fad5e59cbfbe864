"""Reading a finished or running study: find it, pick its best trial, keep test results on it."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from nas.errors import NasError
from nas.search import make_storage


def load_existing(name: str, storage_url: str) -> optuna.Study:
    """The named study; NasError listing the studies that do exist when it is not there."""
    storage = make_storage(storage_url)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        known = ", ".join(names) if names else "none yet (run nas search)"
        raise NasError(f"no study named {name!r} in {storage_url}; studies there: {known}")
    return optuna.load_study(study_name=name, storage=storage)


def is_feasible(trial: FrozenTrial) -> bool:
    return all(value <= 0 for value in trial.constraints.values())


def best_trial(study: optuna.Study, number: int | None = None) -> FrozenTrial:
    """The complete, feasible trial with the highest validation accuracy (or trial `number`)."""
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
                if is_feasible(t) and "duplicate_of" not in t.user_attrs]
    if number is not None:
        trial = next((t for t in study.trials if t.number == number), None)
        if trial is None or trial.state != TrialState.COMPLETE or "config" not in trial.user_attrs:
            raise NasError(f"trial {number} of study {study.study_name} is not a complete trial "
                           f"with a design; complete ones: {[t.number for t in complete]}")
        return trial
    if not complete:
        raise NasError(f"study {study.study_name} has no complete feasible trial yet: "
                       f"run nas search --study {study.study_name} first")
    return max(complete, key=lambda t: t.values[0])


def record_test_result(study: optuna.Study, trial: FrozenTrial, result: dict[str, Any]) -> None:
    """Keep train-best's test result on the study, keyed by trial number (Optuna freezes a
    finished trial's own attributes, so the study carries them)."""
    results = dict(study.user_attrs.get("test_results", {}))
    results[str(trial.number)] = result
    study.set_user_attr("test_results", results)


def recorded_test_results(study: optuna.Study) -> dict[int, dict[str, Any]]:
    return {int(k): v for k, v in study.user_attrs.get("test_results", {}).items()}
