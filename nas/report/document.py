"""The results document of a study (`nas report --markdown`): the commands that remake it, every
trial, the search's plots, the best design and its latest train-best run, and the accuracy against
epochs of every run shown; its PNG plots are written beside it."""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from scipy import stats

from nas.design.diagram import mermaid
from nas.design.rules import check
from nas.design.summary import LAYER_COLUMNS, RULE_COLUMNS, layer_rows, markdown_table, rule_rows
from nas.errors import NasError
from nas.report.plots import (COST_LABELS, plot_accuracy_vs_cost, plot_accuracy_vs_epochs,
                              plot_confusion, plot_curves, plot_history, plot_speed_vs_flops)
from nas.report.runs import made_by, read_run, spreads, train_best_runs
from nas.report.table import PROXIES, columns, cost_attr, rows, summary_line, with_proxies
from nas.search.rung import truth_folder
from nas.search.settings import DEFAULT_RUNS, DEFAULT_STORAGE, mode, search_flags
from nas.search.space import load_space
from nas.search.trials import FLOOR, RUNG, finished, settings_of, trial_design
from nas.training.budget import Plan

Run = tuple[dict[str, Any], list[dict[str, Any]]]  # a run folder's metrics and log (`read_run`)
Section = tuple[list[str], list[Path]]  # a section's Markdown parts, and the plots they show


def write_markdown(study: optuna.Study, path: Path, storage: str = DEFAULT_STORAGE,
                   compare: tuple[Path, ...] = ()) -> list[Path]:
    """The results document and its PNG plots beside it, with the accuracy against epochs of every
    `train-best` run still on disk (the best design's first; its latest gives the per-class
    section) and of the `compare` runs; returns every file written."""
    writable_document(path)
    table_rows, best, pareto = rows(study)
    finals = train_best_runs(study)
    shown = finals.get(best, []) + [run for number, runs in finals.items() if number != best for run in runs]
    shown += [run for run in compare if run not in shown]
    read = {run: read_run(run) for run in shown}
    # the truth runs, but the final rung's: the search command makes them again
    rung = study.user_attrs.get(RUNG, {})
    by_search = {str(truth_folder(Path(rung["out"]), n)) for n in rung.get("trials", [])}
    truth_commands = [made_by(read_run(run)[0]) for runs in train_best_runs(study, "val").values()
                      for run in runs if str(run) not in by_search]
    sections = [trials_section(study, table_rows), search_section(study, pareto, path),
                speed_section(study, path)]
    if best is not None:
        sections.append(best_section(study, study.trials[best]))
        if best in finals:
            sections.append(train_best_section(read[finals[best][-1]], path))
    if shown and shown != finals.get(best, [])[-1:]:  # runs besides the best's latest
        sections.append(epochs_section(read, path))
    parts = [f"# Study `{study.study_name}`\n", summary_line(study) + ".\n",
             reproduce(study, storage, path, compare,
                       truth_commands + [made_by(metrics) for metrics, _ in read.values()])]
    written = [path]
    for lines, files in sections:
        parts += lines
        written += files
    path.write_text("\n".join(parts))
    return written


def writable_document(path: Path) -> None:
    """Create `path` (and its folder) before anything is drawn, or NasError saying why not."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as err:
        raise NasError(f"cannot write {path}: {err.strerror or err}; choose another --markdown") from None


def reproduce(study: optuna.Study, storage: str, path: Path, compare: tuple[Path, ...],
              runs: list[str]) -> str:
    """The commands that remake the document, in order: the search, the command that made each
    run (the truths first: they pick the best trial), and the report."""
    where = "" if storage == DEFAULT_STORAGE else f" --storage {storage}"
    report = f"nas report --study {study.study_name}{where} --markdown {path}"
    report += "".join(f" --compare {run}" for run in compare)
    commands = (search_command(study, storage), *runs, report)
    return "Reproduce, in order:\n\n" + "".join(f"- `{command}`\n" for command in commands)


def search_command(study: optuna.Study, storage: str) -> str:
    """The `nas search` command that reproduces this study: its name, trials and storage, and
    every setting it was made with that is not the command's default (`search_flags`)."""
    settings = settings_of(study)
    flags: dict[str, Any] = {"study": study.study_name, "trials": finished(study)}
    if storage != DEFAULT_STORAGE:
        flags["storage"] = storage
    if settings.search_space().digest() != load_space(mode(settings.budget_minutes).space).digest():
        flags["space"] = f"<the space {settings.space['name']}, digest {settings.search_space().digest()}>"
    flags |= search_flags(settings)
    if settings.fidelity.steps and study.user_attrs.get(FLOOR, 0.0) != mode(settings.budget_minutes).speed_floor:
        flags["speed-floor"] = study.user_attrs.get(FLOOR, 0.0)  # a study from before the floor had none
    rung = study.user_attrs.get(RUNG, {"k": 0, "out": str(DEFAULT_RUNS / study.study_name)})
    if rung["k"] != mode(settings.budget_minutes).final_rung:
        flags["final-rung"] = rung["k"]
    if rung["k"] and rung.get("middle", 0) != mode(settings.budget_minutes).middle_rung:
        flags["middle-rung"] = rung.get("middle", 0)  # a rung from before it had none
    if rung["k"] and Path(rung["out"]) != DEFAULT_RUNS / study.study_name:
        flags["out"] = rung["out"]
    return "nas search " + " ".join(f"--{k}" if v is None else f"--{k} {v}" for k, v in flags.items())


def trials_section(study: optuna.Study, table_rows: list[tuple[str, ...]]) -> Section:
    """Every trial, with its zero-cost proxies."""
    return ["## Trials\n", "val acc: at the search's fidelity; truth acc: on the same hold-out after "
            "`nas train-best --validate` (all 45,000 search-training images, the study's recipe); "
            "test acc: after `nas train-best`. ★ best: the highest truth where truths were made "
            "with the study's defaults (the final rung), the highest val acc otherwise.\n",
            "synflow, naswot, grad_norm: zero-cost proxies at initialisation, on "
            "one fixed batch of 64 training images (`nas calibrate` says how far they rank "
            "designs as the trainings do).\n",
            "img/s: training images per second, measured on the search's device before the trial "
            "trained (— where not measured: an infeasible design, or a study searched before "
            "speeds were measured).\n",
            markdown_table(columns(study)[:-1] + PROXIES + columns(study)[-1:], with_proxies(study, table_rows)) + "\n"], []


def search_section(study: optuna.Study, pareto: set[int], path: Path) -> Section:
    """The search's history and its trials' accuracy against parameters (none before a trial
    completes)."""
    if not any(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False)):
        return [], []
    history, scatter = path.with_name(f"{path.stem}-history.png"), path.with_name(f"{path.stem}-params.png")
    plot_history(study, history)
    cost = cost_attr(study)
    plot_accuracy_vs_cost(study, pareto, cost, scatter)
    return ["## Search\n", f"![optimization history]({history.name})\n",
            f"![val accuracy vs {COST_LABELS[cost]}]({scatter.name})\n"], [history, scatter]


MIN_SPEED_TRIALS = 3  # fewer designs make no ranking worth a plot


def speed_section(study: optuna.Study, path: Path) -> Section:
    """The measured training speed of each measured design against its FLOPs, with their Spearman
    rank correlation: how far FLOPs stand in for time on the search's device (none for a study
    searched before speeds were measured; a design trained twice counts once)."""
    measured = [t.user_attrs for t in study.get_trials(deepcopy=False)
                if "train_images_per_s" in t.user_attrs and "duplicate_of" not in t.user_attrs]
    if len(measured) < MIN_SPEED_TRIALS:
        return [], []
    flops, speeds = [a["flops"] for a in measured], [a["train_images_per_s"] for a in measured]
    with warnings.catch_warnings():  # all FLOPs or all speeds equal: scipy warns and answers nan
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = stats.spearmanr(flops, speeds).statistic
    plot = path.with_name(f"{path.stem}-speed.png")
    plot_speed_vs_flops(flops, speeds, plot)
    settings = settings_of(study)
    ranked = f"Spearman ρ = {rho:.2f}" if math.isfinite(rho) else "ρ undefined (all equal)"
    return [f"## Measured training speed against FLOPs: {ranked}\n",
            f"Training images/s of the {len(measured)} feasible designs, each measured before it "
            f"trained, on the search's device at batch {settings.recipe['batch_size']} in "
            f"{settings.precision}. ρ is their Spearman rank correlation with the FLOPs: −1 where "
            "more FLOPs always cost more time, near 0 where FLOPs say little about time on this "
            "device.\n", f"![training speed against FLOPs]({plot.name})\n"], [plot]


def best_section(study: optuna.Study, trial: FrozenTrial) -> Section:
    """The best design's layers and its verdict under the study's own limits."""
    config = trial_design(study, trial)
    verdict = check(config, settings_of(study).limits)
    return [f"## Best design: trial {trial.number} (val accuracy {trial.values[0]:.4f})\n",
            mermaid(config) + "\n",
            markdown_table(LAYER_COLUMNS, layer_rows(config, verdict)) + "\n",
            markdown_table(RULE_COLUMNS, rule_rows(verdict)) + "\n"], []


def train_best_section(run: Run, path: Path) -> Section:
    """The best design's latest train-best run: command, curves, per-class report, confusion."""
    metrics, log = run
    curves, confusion = path.with_name(f"{path.stem}-curves.png"), path.with_name(f"{path.stem}-confusion.png")
    plot_curves(log, curves)
    plot_confusion(metrics, confusion)
    per_class = markdown_table(("class", "precision", "recall", "F1", "support"), [
        (c["class"], f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}",
         str(c["support"])) for c in metrics["per_class"]])
    return [f"## Train-best: {metrics['accuracy'] * 100:.2f}% test accuracy\n",
            f"`{made_by(metrics)}`: {metrics['epochs']} epochs on "
            f"{metrics['train_images']:,} images, {metrics['wall_seconds'] / 60:.1f} min "
            f"on {metrics['machine']['cpu']} ({metrics['machine']['device']})"
            + (f", in {Plan.from_dict(b).describe()}" if (b := metrics.get("budget")) else "") + ".\n",
            f"![training curves]({curves.name})\n", "### Per class (test)\n", per_class + "\n",
            f"![confusion matrix]({confusion.name})\n"], [curves, confusion]


def epochs_section(runs: dict[Path, Run], path: Path) -> Section:
    """The runs' accuracy against epochs in one plot, and a table of where each ended."""
    splits = {metrics["eval_split"] for metrics, _ in runs.values()}
    if len(splits) > 1:
        raise NasError(f"--compare: the runs were evaluated on different splits ({sorted(splits)}); "
                       "compare test runs with test runs")
    split = splits.pop()
    plot = path.with_name(f"{path.stem}-epochs.png")
    plot_accuracy_vs_epochs({f"{run.name} ({metrics['n_params']:,} params)": log
                             for run, (metrics, log) in runs.items()}, split, plot)
    table = markdown_table(("run", "params", "epochs", f"{split} accuracy", "minutes",
                            "budget min", "machine"), [
        (f"[{run.name}]({os.path.relpath(run, path.parent)})", f"{m['n_params']:,}", str(m["epochs"]),
         f"{m['accuracy'] * 100:.2f} %", f"{m['wall_seconds'] / 60:.1f}",
         f"{m['budget']['budget_minutes']:g}" if "budget" in m else "", m["machine"]["cpu"])
        for run, (m, _) in runs.items()])
    return [f"## {split.capitalize()} accuracy against epochs\n", f"![accuracy against epochs]({plot.name})\n",
            table + "\n", *spreads(metrics for metrics, _ in runs.values())], [plot]
