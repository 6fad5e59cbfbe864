"""`nas search --dry-run`: how a search's sampler judges a space, verdicts only, no training."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from typing import Any

import optuna
from optuna.trial import TrialState

from nas.design.limits import Limits
from nas.search.optimize import judge
from nas.search.samplers import make_sampler
from nas.search.settings import SEARCH_SAMPLER
from nas.search.space import SearchSpace, baseline_params
from nas.search.trials import FILLED


def dry_run(space: SearchSpace, limits: Limits, n_trials: int, seed: int,
            fill: float = 0.0, sampler: str = SEARCH_SAMPLER) -> dict[str, Any]:
    """Sample `n_trials` designs with the search's own sampler (in memory), the baselines first as
    in a real search, verdicts only (of the filled designs, with `fill`); the share of infeasible
    ones, the rules they break, the feasible ones' parameters and FLOPs, how many were filled, and
    the baselines' verdicts."""
    study = optuna.create_study(sampler=make_sampler(sampler, seed))
    for label, params in baseline_params(space):
        study.enqueue_trial(params, user_attrs={"baseline": label})

    def verdict_only(trial: optuna.Trial) -> float:
        judge(trial, space, limits, fill)
        return 0.0

    start = time.perf_counter()
    study.optimize(verdict_only, n_trials=n_trials, catch=(Exception,))
    seconds = time.perf_counter() - start
    broken = dict(Counter(rule for t in study.trials for rule in t.user_attrs.get("broken", [])))
    feasible = [t.user_attrs for t in study.get_trials(states=(TrialState.COMPLETE,))]
    quartiles = {key: quantiles([a[key] for a in feasible]) for key in ("n_params", "flops")}
    infeasible = n_trials - len(feasible)
    baselines = {t.user_attrs["baseline"]: t.user_attrs.get("broken", []) for t in study.trials
                 if "baseline" in t.user_attrs}
    return {"trials": n_trials, "infeasible": infeasible, "infeasible_fraction": infeasible / n_trials,
            "fill": fill, "filled": sum(FILLED.format(1) in t.user_attrs for t in study.trials),
            "broken": broken, "quartiles": quartiles, "baselines": baselines, "seconds": round(seconds, 1),
            "ms_per_verdict": round(1000 * seconds / n_trials, 1)}


def quantiles(values: list[int]) -> tuple[int, ...]:
    """Minimum, quartiles and maximum (empty for no values)."""
    if len(values) < 2:
        return tuple(values)
    return min(values), *map(round, statistics.quantiles(values, n=4)), max(values)
