"""`nas compare`: searches of one space side by side, to tell whether one sampler (TPE) finds better
designs than another (random sampling) with everything else equal: per study its best trial's
score at the search's fidelity, its truth (`nas train-best --validate`) and the regret of both
against the best of the studies given; per sampler the mean and sample standard deviation; and
the best score so far against the trial number.

Only what the studies store is read, so any set of studies in a storage can be compared; studies
that differ in more than the sampler and the recipe's seed are refused (their scores are not
comparable). Studies with a time budget add their final trainings against the twin
(`nas.report.finals`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from matplotlib.figure import Figure
from optuna.trial import TrialState
from rich.table import Table

from nas.design.summary import markdown_table
from nas.errors import NasError
from nas.report.document import search_command, writable_document
from nas.report.finals import FINAL_COLUMNS, Final, final_rows, finals_meaning
from nas.report.plots import save
from nas.report.runs import made_by, read_run
from nas.search.settings import DEFAULT_STORAGE, label
from nas.search.trials import (best_trial, finished, is_feasible, made_alike, recorded_results,
                               settings_of, truths)
from nas.training.recipe import fixed_part

STUDY_COLUMNS = ("study", "sampler", "seed", "trials", "best trial", "score", "score regret",
                 "truth", "truth regret")
SAMPLER_COLUMNS = ("sampler", "studies", "score (mean ± std)", "truth (mean ± std)", "truths")
BAND = "min–max"  # the band around each sampler's mean curve: its studies' lowest and highest


@dataclass(frozen=True)
class Searched:
    """One study as the comparison sees it."""

    study: str
    sampler: str
    seed: int
    trials: int  # finished: complete or pruned
    best: int  # the best trial's number
    score: float  # its val accuracy at the search's fidelity
    truth: float | None  # its val accuracy after `nas train-best --validate` (the latest), if any;
    # at equal time, its truth at M (the mean of its runs for M minutes: the final rung's)
    truth_epochs: int | None  # None at equal time: the truths are M minutes
    budget_minutes: float  # M; 0 at equal epochs
    truth_run: str | None  # the run folder of that result
    curve: tuple[float | None, ...]  # the best score so far after each trial number (None: none yet)


def comparison(studies: list[optuna.Study]) -> list[Searched]:
    """Each study's row, once all were checked comparable (NasError, one line, otherwise)."""
    names = [s.study_name for s in studies]
    if twice := sorted({name for name in names if names.count(name) > 1}):
        raise NasError(f"study {twice[0]} is given twice: name each study once")
    first = comparable_part(studies[0])
    for study in studies[1:]:
        other = comparable_part(study)
        if diff := [f"{key} {first.get(key)} in {names[0]}, {other.get(key)} in {study.study_name}"
                    for key in sorted(set(first) | set(other)) if first.get(key) != other.get(key)]:
            raise NasError(f"study {study.study_name} was not made like study {names[0]} "
                           f"({'; '.join(diff)}): their scores are not comparable; compare studies "
                           "that differ only in --sampler and --seed")
    rows = [searched(study) for study in studies]
    epochs = {row.truth_epochs for row in rows if row.truth is not None and row.truth_epochs}
    if len(epochs) > 1:
        raise NasError("the truths were trained for different epochs (" + ", ".join(
            f"{row.truth_epochs} in {row.study}" for row in rows if row.truth is not None)
            + "): run nas train-best --validate with the same --epochs for every study")
    return rows


def comparable_part(study: optuna.Study) -> dict[str, Any]:
    """The study's settings but its sampler and seed, as flat "key.sub" keys (the space by its
    digest). Trials paced by steps compare by their pacing: each study timed the twin's steps when
    it was made, so that two searches with one budget differ in them by the timing's noise."""
    data = settings_of(study).to_dict()
    data["fidelity"]["steps"] = "the twin's" if data["fidelity"]["steps"] else 0
    data["recipe"] = {k: v for k, v in fixed_part(data["recipe"]).items() if k != "seed"}
    for key in ("sampler", "space", "nas_version"):
        data.pop(key)
    return flat(data)


def flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        out |= flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key: value}
    return out


def searched(study: optuna.Study) -> Searched:
    settings = settings_of(study)
    best = best_trial(study)
    runs = recorded_results(study, "val").get(best.number) or [{}]  # {}: none recorded
    if settings.budget_minutes:  # its truth at M, which chose it
        runs = [run for run in runs if made_alike(run, settings)] or [{}]
        truth, epochs = truths(study).get(best.number), None
    else:
        truth, epochs = runs[-1].get("accuracy"), runs[-1].get("epochs")
    return Searched(study.study_name, settings.sampler, int(settings.recipe["seed"]),
                    finished(study), best.number, best.values[0], truth, epochs,
                    settings.budget_minutes, runs[-1].get("out"), best_so_far(study))


def best_so_far(study: optuna.Study) -> tuple[float | None, ...]:
    """After each trial number, the highest val accuracy of a complete feasible trial so far."""
    curve: list[float | None] = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        score = (trial.values[0] if trial.state == TrialState.COMPLETE and is_feasible(trial)
                 else None)
        last = curve[-1] if curve else None
        curve.append(score if last is None else last if score is None else max(last, score))
    return tuple(curve)


def regrets(rows: list[Searched]) -> list[tuple[float, float | None]]:
    """Each study's (score regret, truth regret): the best of all the studies minus its own."""
    top = max(row.score for row in rows)
    truths = [row.truth for row in rows if row.truth is not None]
    return [(top - row.score, None if row.truth is None else max(truths) - row.truth) for row in rows]


def spread(values: list[float]) -> str:
    """"mean ± sample std"; the value alone for one, "—" for none."""
    if len(values) < 2:
        return f"{values[0]:.4f}" if values else "—"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def study_rows(rows: list[Searched]) -> list[tuple[str, ...]]:
    def cell(value: float | None) -> str:
        return "—" if value is None else f"{value:.4f}"

    return [(row.study, row.sampler, str(row.seed), str(row.trials), str(row.best), cell(row.score),
             cell(score_regret), cell(row.truth), cell(truth_regret))
            for row, (score_regret, truth_regret) in zip(rows, regrets(rows))]


def by_sampler(rows: list[Searched]) -> dict[str, list[Searched]]:
    groups: dict[str, list[Searched]] = {}
    for row in rows:
        groups.setdefault(row.sampler, []).append(row)
    return groups


def sampler_rows(rows: list[Searched]) -> list[tuple[str, ...]]:
    """Per sampler: studies, the mean ± sample std of the best scores and of the truths, truths."""
    out = []
    for sampler, group in by_sampler(rows).items():
        truths = [row.truth for row in group if row.truth is not None]
        out.append((sampler, str(len(group)), spread([row.score for row in group]), spread(truths),
                    f"{len(truths)} of {len(group)}"))
    return out


def meaning(rows: list[Searched]) -> str:
    """What the columns mean, with the truth's epochs."""
    epochs = next((row.truth_epochs for row in rows if row.truth is not None), None)
    if rows[0].budget_minutes:
        truth = (f"its val accuracy after M = {rows[0].budget_minutes:g} minutes on all "
                 "search-training images (the search's final rung)")
    else:
        truth = (f"its val accuracy after {epochs} epochs on all search-training images "
                 "(nas train-best --validate)" if epochs else "none recorded yet: run nas "
                 "train-best --validate for each study")
    return (f"Score: the best trial's val accuracy at the search's fidelity; truth: {truth}; "
            f"regret: the best of these {len(rows)} studies minus the study's own; the studies "
            "share every setting but the sampler and the seed")


def rich_tables(rows: list[Searched], final: list[Final]) -> list[Table]:
    """The studies, per sampler, and where there are any, the final trainings."""
    tables = [(Table(title="studies", caption=meaning(rows)), STUDY_COLUMNS, study_rows(rows)),
              (Table(title="per sampler (mean ± sample std; one study: no spread)"),
               SAMPLER_COLUMNS, sampler_rows(rows))]
    if final:
        tables.append((Table(title="final trainings (test set)", caption=finals_meaning(final)),
                       FINAL_COLUMNS, final_rows(final)))
    for table, columns, cells in tables:
        for column in columns:
            table.add_column(column)
        for row in cells:
            table.add_row(*row)
    return [table for table, _, _ in tables]


def plot_best_so_far(rows: list[Searched], path: Path) -> None:
    """Per sampler, the mean best score so far over its studies against the trial number, with
    the `BAND` band, up to the last trial number every one of its studies has a score at."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for sampler, group in by_sampler(rows).items():
        curves = [row.curve for row in group]
        numbers = [n for n in range(min(map(len, curves))) if all(c[n] is not None for c in curves)]
        at = [[c[n] for c in curves] for n in numbers]
        line, = ax.plot(numbers, [statistics.mean(v) for v in at], marker=".", drawstyle="steps-post",
                        label=f"{sampler} ({len(group)} studies)")
        ax.fill_between(numbers, [min(v) for v in at], [max(v) for v in at], step="post",
                        color=line.get_color(), alpha=0.2)
    ax.set_xlabel("trial")
    ax.set_ylabel("best val accuracy so far")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)


def reproduce(studies: list[optuna.Study], rows: list[Searched], storage: str, path: Path,
              final: list[Final]) -> str:
    """The commands that remake the document, in order: each search, each truth's training at
    equal epochs and each final training (as its run folder recorded it, where it is still on
    disk; at equal time the search trains its truths) and the comparison."""
    where = "" if storage == DEFAULT_STORAGE else f" --storage {storage}"
    commands = [search_command(study, storage) for study in studies]
    runs = [row.truth_run for row in rows if not row.budget_minutes]
    runs += [run["out"] for row in final for run in row.runs]
    for run in runs:
        if run is not None and (Path(run) / "metrics.json").is_file():
            commands.append(made_by(read_run(Path(run))[0]))
    commands.append(f"nas compare {' '.join(row.study for row in rows)}{where} --markdown {path}")
    return "Reproduce, in order:\n\n" + "".join(f"- `{command}`\n" for command in commands)


def write_markdown(studies: list[optuna.Study], rows: list[Searched], path: Path,
                   storage: str = DEFAULT_STORAGE, final: list[Final] | None = None) -> list[Path]:
    """The comparison document (with the `final` trainings, where given) and its plot beside it;
    returns both files."""
    final = final or []
    writable_document(path)
    plot = path.with_name(f"{path.stem}-best-so-far.png")
    plot_best_so_far(rows, plot)
    fidelity = settings_of(studies[0]).fidelity
    samplers = " vs ".join(by_sampler(rows))
    path.write_text("\n".join([
        f"# Sampler comparison: {samplers}\n",
        f"{len(rows)} studies at the fidelity {label(fidelity)} ({fidelity.val_images:,} "
        f"validation images). {meaning(rows)}.\n",
        reproduce(studies, rows, storage, path, final),
        "## Studies\n", markdown_table(STUDY_COLUMNS, study_rows(rows)) + "\n",
        "## Per sampler\n", "Mean ± sample standard deviation over the sampler's studies "
        "(`statistics.stdev`; one study shows no spread).\n",
        markdown_table(SAMPLER_COLUMNS, sampler_rows(rows)) + "\n",
        "## Best score so far\n",
        f"The mean over each sampler's studies of the best val accuracy after each trial, with a "
        f"{BAND} band over its studies, up to the last trial every one of them has a score at.\n",
        f"![best score so far]({plot.name})\n",
        *(["## Final trainings\n", finals_meaning(final) + ".\n",
           markdown_table(FINAL_COLUMNS, final_rows(final)) + "\n"] if final else [])]))
    return [path, plot]
