"""The final trainings of searches at equal time, side by side (`nas compare`): each search's winner
trained for its budget M, or for the minutes each of the twin's runs took (`--time-of`), on all
50,000 images and tested (`nas train-best`), against the reference's feasible twin, whose 20
epochs are what M stands for; and each winner's time to 85 %, the shortest budget at which the
mean of its tested runs reaches it.

Only what the studies store is read: `nas train-best` records every tested run on its study
(`record_result`), with its epochs, wall seconds and, when it trained for a budget, its minutes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import optuna

from nas.search.settings import TWIN_EPOCHS
from nas.search.space import TWIN
from nas.search.trials import COST, RUNG_SPEEDS, best_trial, recorded_results, settings_of

TARGET = 0.85  # the assignment's test accuracy
LEAST_RUNS = 2  # seeds a budget needs before its mean counts for the time to TARGET
FINAL_COLUMNS = ("design", "search seed", "budget", "params", "FLOPs", "img/s", "epochs", "minutes",
                 "test accuracy", "runs", "vs the twin", "time to 85 %", "search cost")


@dataclass(frozen=True)
class Final:
    """One design's tested runs at one budget: a search's winner at its M, or the twin."""

    design: str  # "seed-0: trial 12", "the twin (trial 1)"
    seed: str  # the search's seed; "—" for the twin, the rival of every search
    trial: optuna.trial.FrozenTrial
    images_per_s: float | None  # as the search timed it (its rung's figure where it has one)
    runs: tuple[dict[str, Any], ...]  # `record_result`'s test results, this budget's only
    budget: str  # "11.9 min", "20 epochs"
    minutes: float  # the study's M
    to_target: str  # time to TARGET, over every budget the design was tested at
    cost: str  # the search's, for a winner

    def accuracies(self) -> list[float]:
        return [run["accuracy"] for run in self.runs]


EQUAL_TIME = "equal time"  # the budget of runs trained for a rival run's minutes (--time-of)


def budget_of(run: dict[str, Any]) -> str:
    """What a tested run was given: a rival run's minutes (`nas train-best --time-of`, each run
    its own rival's), minutes, or (without them) epochs."""
    if "time_of" in run:
        return EQUAL_TIME
    if "budget_minutes" in run:
        return f"{run['budget_minutes']:g} min"
    return f"{run['epochs']} epochs"


def by_budget(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(budget_of(run), []).append(run)
    return groups


def time_to_target(runs: list[dict[str, Any]], minutes: float) -> str:
    """The shortest budget whose runs average TARGET or more, in minutes (a budget in epochs: its
    runs' mean wall minutes) and as a multiple of M, with the budgets tried: those with
    LEAST_RUNS runs or more, the others too few to judge by."""
    tried = []
    for runs_at in by_budget(runs).values():
        if len(runs_at) < LEAST_RUNS:
            continue
        spent = statistics.mean(r["budget_minutes"] if "budget_minutes" in r else r["wall_seconds"] / 60
                                for r in runs_at)
        tried.append((spent, statistics.mean(r["accuracy"] for r in runs_at) >= TARGET))
    tried.sort()
    shown = ", ".join(f"{spent:.1f}" for spent, _ in tried)
    reached = [spent for spent, ok in tried if ok]
    if not reached:
        return f"not reached (tried {shown} min)" if tried else "—"
    return f"{reached[0]:.1f} min, {reached[0] / minutes:.2f} × M (tried {shown})"


def images_per_s(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> float | None:
    timed = study.user_attrs.get(RUNG_SPEEDS, {}).get(str(trial.number))
    return timed["train_images_per_s"] if timed else trial.user_attrs.get("train_images_per_s")


def twin_of(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    return next((t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("baseline") == TWIN), None)


def finals(studies: list[optuna.Study]) -> list[Final]:
    """Each search's winner (for studies with a time budget) at its M and at equal time with the
    twin's runs (`--time-of`), a row for each it was tested at; then the twin at each budget
    it was tested at, its runs pooled over the studies (`nas train-best --trial N` records them on
    the study it names)."""
    rows: list[Final] = []
    twin_runs: dict[str, dict[str, Any]] = {}  # by run folder: one run recorded twice counts once
    twin = None
    for study in studies:
        settings = settings_of(study)
        if not settings.budget_minutes:
            continue
        minutes = settings.budget_minutes
        best = best_trial(study)
        tested = recorded_results(study, "test")
        groups = by_budget(tested.get(best.number, []))
        cost = study.user_attrs.get(COST)
        # at M, and each run for its twin's minutes (a row for each that has runs; at M if neither)
        for budget in [b for b in (f"{minutes:g} min", EQUAL_TIME) if b in groups] or [f"{minutes:g} min"]:
            rows.append(Final(f"{study.study_name}: trial {best.number}", str(settings.recipe["seed"]),
                              best, images_per_s(study, best), tuple(groups.get(budget, ())), budget,
                              minutes, time_to_target(tested.get(best.number, []), minutes),
                              f"{cost['total_minutes']:.1f} min, {cost['multiple_of_budget']:.2f} × M"
                              if cost else "—"))
        if (found := twin_of(study)) is not None:
            twin = twin or (study, found)
            twin_runs |= {r["out"]: r for r in tested.get(found.number, [])}
    if twin is not None and rows:
        study, trial = twin
        runs = list(twin_runs.values())
        for budget, group in by_budget(runs).items():
            rows.append(Final(f"the twin (trial {trial.number})", "—", trial, images_per_s(study, trial),
                              tuple(group), budget, rows[0].minutes,
                              time_to_target(runs, rows[0].minutes), "—"))
    return rows


def rival(rows: list[Final]) -> Final | None:
    """The twin's runs of TWIN_EPOCHS epochs: the equal-time rival, as M is their minutes."""
    return next((row for row in rows if row.design.startswith("the twin")
                 and row.budget == f"{TWIN_EPOCHS} epochs"), None)


def percent(values: list[float]) -> str:
    """"mean ± sample std %"; the value alone for one run, "—" for none."""
    if not values:
        return "—"
    if len(values) == 1:
        return f"{100 * values[0]:.2f} %"
    return f"{100 * statistics.mean(values):.2f} ± {100 * statistics.stdev(values):.2f} %"


def final_rows(rows: list[Final]) -> list[tuple[str, ...]]:
    twin = rival(rows)
    twin_mean = statistics.mean(twin.accuracies()) if twin and twin.runs else None
    out = []
    for row in rows:
        accuracies = row.accuracies()
        gain = ("—" if row is twin or twin_mean is None or not accuracies
                else f"{100 * (statistics.mean(accuracies) - twin_mean):+.2f}")
        epochs = sorted({r["epochs"] for r in row.runs})
        out.append((row.design, row.seed, row.budget, f"{row.trial.user_attrs.get('n_params', 0):,}",
                    f"{row.trial.user_attrs.get('flops', 0) / 1e6:.1f} M",
                    "—" if row.images_per_s is None else f"{row.images_per_s:,.0f}",
                    ", ".join(map(str, epochs)) or "—",
                    f"{statistics.mean(r['wall_seconds'] for r in row.runs) / 60:.1f}" if row.runs else "—",
                    percent(accuracies), str(len(row.runs)), gain, row.to_target, row.cost))
    return out


def finals_meaning(rows: list[Final]) -> str:
    return (f"Each search's winner (its highest truth) trained for its budget M on all 50,000 "
            f"images with nas train-best, and, where it was, for the minutes each of the twin's "
            f"runs took (equal time: `--time-of`), tested on the 10,000 test images: plain accuracy, mean ± "
            f"sample std over its runs (training seeds); the twin (the reference's feasible twin) "
            f"the same way for the epochs given. vs the twin: the difference of the means against "
            f"the twin's {TWIN_EPOCHS} epochs (M is their minutes). Time to {TARGET:.0%}: the "
            f"shortest budget tested whose mean over {LEAST_RUNS} or more runs reaches it. img/s: "
            f"training images per second as the search timed the design. Search cost: its trials "
            f"and final rung")
