"""Every trial of a study as rows: the terminal's rich table, and the rows the results document
shows (with the zero-cost proxies)."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from nas.errors import NasError
from nas.search.trials import (COST, COST_ATTRS, FILLED, MIDDLE, PROXIES, RUNG, SLOW, best_trial,
                               is_feasible, pruned_by, recorded_results, settings_of, trial_counts)

COLUMNS = ("rank", "trial", "state", "val acc", "truth acc", "test acc", "params", "FLOPs", "img/s",
           "RF", "epochs", "seconds", "note")  # img/s: measured training speed (nas.training.speed)


def columns(study: optuna.Study) -> tuple[str, ...]:
    """COLUMNS, where a study at equal time counts its trials' rounds, not epochs."""
    timed = settings_of(study).fidelity.timed
    return tuple("rounds" if timed and col == "epochs" else col for col in COLUMNS)


def state_of(trial: FrozenTrial) -> str:
    """complete / pruned: constraint / pruned: pruner / failed / running."""
    if (by := pruned_by(trial)) is not None:
        return f"pruned: {by}"
    return {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed"}.get(
        trial.state, trial.state.name.lower())


def note_of(trial: FrozenTrial) -> str:
    attrs = trial.user_attrs
    parts = [f"baseline: {attrs['baseline']}"] if "baseline" in attrs else []
    if pruned_by(trial) == "constraint":
        parts.append("breaks " + ", ".join(attrs["broken"]))
    if pruned_by(trial) == "speed":
        parts.append(f"{attrs[SLOW]:.2f} of the twin's speed")
    if trial.state == TrialState.FAIL and "fail_reason" in attrs:
        parts.append(attrs["fail_reason"][:80])
    if "duplicate_of" in attrs:
        parts.append(f"same design as trial {attrs['duplicate_of']}")
    if FILLED.format(1) in attrs:
        parts.append("widened to the parameter limit")
    return "; ".join(parts)


def pareto_numbers(trials: list[FrozenTrial], cost: str = "n_params") -> set[int]:
    """Complete feasible trials that no other beats on both val accuracy and the `cost` attribute
    (`COST_ATTRS`: parameters, FLOPs or measured seconds per epoch)."""
    pool = [t for t in trials if t.state == TrialState.COMPLETE and is_feasible(t)
            and cost in t.user_attrs]
    return {t.number for t in pool if not any(
        o.values[0] >= t.values[0] and o.user_attrs[cost] <= t.user_attrs[cost]
        and (o.values[0], o.user_attrs[cost]) != (t.values[0], t.user_attrs[cost])
        for o in pool)}


def cost_attr(study: optuna.Study) -> str:
    """The attribute the study's Pareto front is drawn against: its second objective's, else the
    parameters."""
    return COST_ATTRS[settings_of(study).second_objective or "params"]


def rows(study: optuna.Study) -> tuple[list[tuple[str, ...]], int | None, set[int]]:
    """Table rows (complete trials ranked by val accuracy first), the best trial, Pareto set."""
    trials = study.get_trials(deepcopy=False)
    results = {split: recorded_results(study, split) for split in ("val", "test")}
    pareto = pareto_numbers(trials, cost_attr(study))
    rung = set(study.user_attrs.get(RUNG, {}).get("trials", []))  # the search's final rung
    middle = study.user_attrs.get(MIDDLE, {})  # its middle rung's runs, by trial
    try:
        best = best_trial(study).number
    except NasError:  # no complete feasible trial yet
        best = None
    ranked = sorted(trials, key=lambda t: (t.state != TrialState.COMPLETE,
                                           -(t.values[0] if t.values else 0), t.number))
    out = []
    for rank, t in enumerate(ranked, 1):
        a = t.user_attrs
        out.append((
            str(rank) if t.state == TrialState.COMPLETE else "", str(t.number), state_of(t),
            f"{t.values[0]:.4f}" if t.values else "",
            *(results_cell(results[split].get(t.number, [])) for split in ("val", "test")),
            f"{a['n_params']:,}" if "n_params" in a else "", f"{a['flops']:,}" if "flops" in a else "",
            f"{a['train_images_per_s']:,.0f}" if "train_images_per_s" in a else "—",
            str(a.get("receptive_field", "")),
            # passes trained: rounds at equal time (studies stored before the word: epochs_run)
            str(a.get("rounds_run", a.get("epochs_run", 0))),
            f"{a.get('train_seconds', 0):.0f}",
            "; ".join(filter(None, ("★ best" if t.number == best else "",
                                    f"middle rung {middle[str(t.number)]['accuracy']:.4f}"
                                    if str(t.number) in middle else "",
                                    "final rung" if t.number in rung else "",
                                    "pareto" if t.number in pareto else "", note_of(t))))))
    return out, best, pareto


def with_proxies(study: optuna.Study, table_rows: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """The rows with each trial's zero-cost proxies before the note: the document's columns,
    `columns(study)[:-1] + PROXIES + columns(study)[-1:]` (not the terminal's: three more columns would wrap
    its notes over several lines)."""
    by_number = {str(t.number): t for t in study.get_trials(deepcopy=False)}
    return [row[:-1] + proxy_cells(by_number[row[1]]) + row[-1:] for row in table_rows]


def proxy_cells(trial: FrozenTrial) -> tuple[str, ...]:
    """The trial's zero-cost proxies (blank where it has none: infeasible, or searched without)."""
    attrs = trial.user_attrs
    return tuple(f"{attrs[f'proxy_{name}']:.4g}" if f"proxy_{name}" in attrs else ""
                 for name in PROXIES)


def results_cell(runs: list[dict[str, Any]]) -> str:
    """The accuracy of each of a trial's train-best runs of one split, oldest first: "truth acc",
    the val accuracy of `--validate` runs, and "test acc" (seeds and epochs may differ between
    them, so none is picked and none averaged)."""
    return ", ".join(f"{run['accuracy']:.4f}" for run in runs)


def summary_line(study: optuna.Study) -> str:
    c = trial_counts(study)
    trials = study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() / 60 if starts and ends else 0.0
    train = sum(t.user_attrs.get("train_seconds", 0) for t in trials) / 60
    settings = settings_of(study)
    fidelity = settings.fidelity
    pace = (f"{fidelity.steps} steps a trial, the twin's in {fidelity.time_share:.0%} of "
            f"{settings.budget_minutes:g} min," if fidelity.steps else
            f"{fidelity.time_share:.0%} of {settings.budget_minutes:g} min a trial")
    timed = (f", at equal time: {pace} in {fidelity.rounds} rounds on {settings.device}"
             if settings.budget_minutes else "")
    cost = study.user_attrs.get(COST)
    slow = f"{c['speed']} pruned as slower than the twin, " if c["speed"] else ""
    return (f"{len(trials)} trials ({settings.sampler} sampler{timed}): {c['complete']} complete, "
            f"{c['constraint']} pruned by constraint, {slow}{c['pruner']} pruned by pruner, "
            f"{c['failed']} failed, {c['running']} running; wall time {wall:.1f} min, of which "
            f"training {train:.1f} min"
            + (f"; the search's cost: {cost_text(cost)}" if cost else ""))


def cost_text(cost: dict[str, float]) -> str:
    """A search's cost (`nas.search.trials.search_cost`) in words."""
    return (f"{cost['trials_minutes']:.1f} min of trials + {cost['rung_minutes']:.1f} min of final "
            f"rung = {cost['total_minutes']:.1f} min"
            + (f" ({cost['multiple_of_budget']:.2f} × M)" if "multiple_of_budget" in cost else ""))


def rich_table(study: optuna.Study) -> Table:
    table_rows, best, _ = rows(study)
    table = Table(title=f"study {study.study_name}", caption=summary_line(study))
    for col in columns(study):
        table.add_column(col, overflow="fold", max_width=48 if col == "note" else None)
    for row in table_rows:
        table.add_row(*row, style="bold green" if best is not None and row[1] == str(best) else None)
    return table
