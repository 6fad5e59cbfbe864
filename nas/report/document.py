"""`nas report`: the study as a rich table, and a Markdown results document with plots."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna
from matplotlib.figure import Figure  # the object API: files only, no backend or global state
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table

from nas.budget import Limits, check
from nas.designs import config_from_dict
from nas.diagram import mermaid
from nas.errors import NasError
from nas.geometry import param_count
from nas.study import (DEFAULT_STORAGE, FILLED, best_trial, finished, is_feasible, pruned_by,
                       recorded_test_results, settings_of, trial_counts, trial_design)
from nas.summary import LAYER_COLUMNS, RULE_COLUMNS, layer_rows, markdown_table, rule_rows

COLUMNS = ("rank", "trial", "state", "val acc", "test acc", "params", "FLOPs", "RF", "epochs",
           "seconds", "note")
# The zero-cost proxies of each trial: in the markdown document only, since three more columns
# would wrap the terminal table's notes over several lines.
PROXIES = ("synflow", "naswot", "grad_norm")


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
    if trial.state == TrialState.FAIL and "fail_reason" in attrs:
        parts.append(attrs["fail_reason"][:80])
    if "duplicate_of" in attrs:
        parts.append(f"same design as trial {attrs['duplicate_of']}")
    if FILLED.format(1) in attrs:
        parts.append("widened to the budget")
    return "; ".join(parts)


def pareto_numbers(trials: list[FrozenTrial]) -> set[int]:
    """Complete feasible trials that no other beats on both val accuracy and parameters."""
    pool = [t for t in trials if t.state == TrialState.COMPLETE and is_feasible(t)]
    return {t.number for t in pool if not any(
        o.values[0] >= t.values[0] and o.user_attrs["n_params"] <= t.user_attrs["n_params"]
        and (o.values[0], o.user_attrs["n_params"]) != (t.values[0], t.user_attrs["n_params"])
        for o in pool)}


def rows(study: optuna.Study) -> tuple[list[tuple[str, ...]], int | None, set[int]]:
    """Table rows (complete trials ranked by val accuracy first), the best trial, Pareto set."""
    trials = study.get_trials(deepcopy=False)
    tests = recorded_test_results(study)
    pareto = pareto_numbers(trials)
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
            test_cell(tests.get(t.number, [])),
            f"{a['n_params']:,}" if "n_params" in a else "", f"{a['flops']:,}" if "flops" in a else "",
            str(a.get("receptive_field", "")), str(a.get("epochs_run", 0)),
            f"{a.get('train_seconds', 0):.0f}",
            "; ".join(filter(None, ("★ best" if t.number == best else "",
                                    "pareto" if t.number in pareto else "", note_of(t))))))
    return out, best, pareto


def proxy_cells(trial: FrozenTrial) -> tuple[str, ...]:
    """The trial's zero-cost proxies (blank where it has none: infeasible, or searched without)."""
    attrs = trial.user_attrs
    return tuple(f"{attrs[f'proxy_{name}']:.4g}" if f"proxy_{name}" in attrs else ""
                 for name in PROXIES)


def test_cell(runs: list[dict[str, Any]]) -> str:
    """The test accuracy of each of a trial's train-best runs, oldest first (seeds and epochs may
    differ between them, so none is picked and none averaged)."""
    return ", ".join(f"{run['accuracy']:.4f}" for run in runs)


def summary_line(study: optuna.Study) -> str:
    c = trial_counts(study)
    trials = study.get_trials(deepcopy=False)
    starts = [t.datetime_start for t in trials if t.datetime_start]
    ends = [t.datetime_complete for t in trials if t.datetime_complete]
    wall = (max(ends) - min(starts)).total_seconds() / 60 if starts and ends else 0.0
    train = sum(t.user_attrs.get("train_seconds", 0) for t in trials) / 60
    return (f"{len(trials)} trials: {c['complete']} complete, {c['constraint']} pruned by "
            f"constraint, {c['pruner']} pruned by pruner, {c['failed']} failed, {c['running']} "
            f"running; wall time {wall:.1f} min, of which training {train:.1f} min")


def rich_table(study: optuna.Study) -> Table:
    table_rows, best, _ = rows(study)
    table = Table(title=f"study {study.study_name}", caption=summary_line(study))
    for col in COLUMNS:
        table.add_column(col, overflow="fold", max_width=48 if col == "note" else None)
    for row in table_rows:
        table.add_row(*row, style="bold green" if best is not None and row[1] == str(best) else None)
    return table


def plot_history(study: optuna.Study, path: Path) -> None:
    """Each complete trial's val accuracy by trial number, and the best so far."""
    done = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.scatter([t.number for t in done], [t.values[0] for t in done], c="tab:blue", label="trials")
    best, running = [], 0.0
    for t in done:
        running = max(running, t.values[0])
        best.append(running)
    ax.step([t.number for t in done], best, where="post", c="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("val accuracy")
    ax.legend()
    save(fig, path)


def save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_accuracy_vs_params(study: optuna.Study, pareto: set[int], path: Path) -> None:
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.scatter([t.user_attrs["n_params"] for t in done], [t.values[0] for t in done], c="tab:blue",
               label="complete trials")
    front = sorted((t for t in done if t.number in pareto), key=lambda t: t.user_attrs["n_params"])
    ax.plot([t.user_attrs["n_params"] for t in front], [t.values[0] for t in front], "o-",
            c="tab:red", label="Pareto front")
    ax.set_xlabel("parameters")
    ax.set_ylabel("val accuracy")
    ax.legend()
    save(fig, path)


def plot_curves(log: list[dict[str, Any]], path: Path) -> None:
    fig = Figure(figsize=(9, 3.5))
    loss, acc = fig.subplots(1, 2)
    epochs = [r["epoch"] for r in log]
    for key, label in (("train", "train"), ("eval", "test")):
        loss.plot(epochs, [r[f"{key}_loss"] for r in log], label=label)
        acc.plot(epochs, [r[f"{key}_acc"] for r in log], label=label)
    loss.set_title("loss")
    acc.set_title("accuracy")
    for ax in (loss, acc):
        ax.set_xlabel("epoch")
        ax.legend()
    save(fig, path)


def read_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A finished run folder's metrics (with its design's parameter count) and per-epoch log;
    NasError (one line) for anything else."""
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
        config = config_from_dict(json.loads((run_dir / "config.json").read_text()), str(run_dir))
        log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        return metrics | {"n_params": param_count(config)}, log
    except (OSError, ValueError) as err:
        raise NasError(f"{run_dir} is not a finished run folder ({type(err).__name__}: "
                       f"{getattr(err, 'strerror', None) or err}): give one that holds "
                       "metrics.json, log.jsonl and config.json") from None


def plot_accuracy_vs_epochs(runs: dict[str, list[dict[str, Any]]], split: str, path: Path) -> None:
    """Each run's evaluation accuracy after every epoch, one line per run."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for label, log in runs.items():
        ax.plot([r["epoch"] for r in log], [r["eval_acc"] for r in log], label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{split} accuracy")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)


def epochs_section(runs: list[Path], path: Path) -> tuple[list[str], list[Path]]:
    """The runs' accuracy against epochs in one plot, and a table of where each ended."""
    read = {run: read_run(run) for run in runs}
    splits = {metrics["eval_split"] for metrics, _ in read.values()}
    if len(splits) > 1:
        raise NasError(f"--compare: the runs were evaluated on different splits ({sorted(splits)}); "
                       "compare test runs with test runs")
    split = splits.pop()
    plot = path.with_name(f"{path.stem}-epochs.png")
    plot_accuracy_vs_epochs({f"{run.name} ({metrics['n_params']:,} params)": log
                             for run, (metrics, log) in read.items()}, split, plot)
    table = markdown_table(("run", "params", "epochs", f"{split} accuracy", "minutes", "machine"), [
        (f"[{run.name}]({os.path.relpath(run, path.parent)})", f"{m['n_params']:,}", str(m["epochs"]),
         f"{m['accuracy'] * 100:.2f} %", f"{m['wall_seconds'] / 60:.1f}", m["machine"]["cpu"])
        for run, (m, _) in read.items()])
    return [f"## {split.capitalize()} accuracy against epochs\n", f"![accuracy against epochs]({plot.name})\n",
            table + "\n", *spreads(metrics for metrics, _ in read.values())], [plot]


def spreads(runs: Iterable[dict[str, Any]]) -> list[str]:
    """A line for each design trained more than once with the same number of epochs (seeds): the
    mean and sample standard deviation of its accuracy."""
    groups: dict[tuple[str, int], list[float]] = {}
    for metrics in runs:
        groups.setdefault((metrics["design"], metrics["epochs"]), []).append(metrics["accuracy"] * 100)
    return [f"{design}, {epochs} epochs, {len(acc)} runs: {' / '.join(f'{a:.2f}' for a in acc)} %, "
            f"mean {statistics.mean(acc):.2f} ± {statistics.stdev(acc):.2f} (sample std).\n"
            for (design, epochs), acc in groups.items() if len(acc) > 1]


def plot_confusion(metrics: dict[str, Any], path: Path) -> None:
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    ax.imshow(metrics["confusion"], cmap="Blues")
    ticks = range(len(metrics["classes"]))
    ax.set_xticks(ticks, metrics["classes"], rotation=45, ha="right")
    ax.set_yticks(ticks, metrics["classes"])
    for i, row in enumerate(metrics["confusion"]):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    save(fig, path)


def search_command(study: optuna.Study, storage: str) -> str:
    """The `nas search` command that reproduces this study: its trials, storage, fidelity, limits
    and every fixed recipe setting that is not the default."""
    from nas.designs import DEFAULT_SPACE
    from nas.recipe import Recipe
    from nas.space import load_space

    settings = settings_of(study)
    flags = {"study": study.study_name, "trials": finished(study),
             "epochs": settings.fidelity.epochs, "data-fraction": settings.fidelity.data_fraction,
             "val-images": settings.fidelity.val_images}
    if storage != DEFAULT_STORAGE:
        flags["storage"] = storage
    if settings.search_space().digest() != load_space(DEFAULT_SPACE).digest():
        flags["space"] = f"<the space {settings.space['name']}, digest {settings.search_space().digest()}>"
    for name, value in vars(settings.limits).items():
        if value != getattr(Limits(), name):
            flags[name.replace("_", "-")] = value
    default = Recipe().to_dict()
    for name, value in settings.recipe.items():
        if name == "augment":
            flags |= {k.replace("_", "-"): v for k, v in value.items() if v != default["augment"][k]}
        elif value != default.get(name):
            flags[name.replace("_", "-")] = value
    if settings.second_objective:
        flags["second-objective"] = settings.second_objective
    if settings.fill_budget:
        flags["fill-budget"] = settings.fill_budget
    return "nas search " + " ".join(f"--{k} {v}" for k, v in flags.items())


def write_markdown(study: optuna.Study, path: Path, storage: str = DEFAULT_STORAGE,
                   compare: tuple[Path, ...] = ()) -> list[Path]:
    """The results document and its PNG plots beside it, with the accuracy against epochs of every
    `train-best` run (the best design's first; its latest gives the per-class section) and of the
    `compare` runs; returns every file written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as err:
        raise NasError(f"cannot write {path}: {err.strerror or err}; choose another --markdown") from None
    table_rows, best, pareto = rows(study)
    name = study.study_name
    where = "" if storage == DEFAULT_STORAGE else f" --storage {storage}"
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    proxy_rows = [row[:-1] + proxy_cells(by_number[int(row[1])]) + row[-1:] for row in table_rows]
    parts = [f"# Study `{name}`\n", summary_line(study) + ".\n",
             f"Reproduce: `{search_command(study, storage)}`, then `nas train-best --study {name}{where}`, "
             f"`nas report --study {name}{where} --markdown {path}`.\n",
             "## Trials\n", "synflow, naswot, grad_norm: zero-cost proxies at initialisation, on "
             "one fixed batch of 64 training images (`nas calibrate` says how far they rank "
             "designs as the trainings do).\n",
             markdown_table(COLUMNS[:-1] + PROXIES + COLUMNS[-1:], proxy_rows) + "\n"]
    written = [path]
    if any(t.state == TrialState.COMPLETE for t in study.trials):
        history, scatter = path.with_name(f"{path.stem}-history.png"), path.with_name(f"{path.stem}-params.png")
        plot_history(study, history)
        plot_accuracy_vs_params(study, pareto, scatter)
        written += [history, scatter]
        parts += ["## Search\n", f"![optimization history]({history.name})\n",
                  f"![val accuracy vs parameters]({scatter.name})\n"]
    # every train-best run still on disk (several seeds of a trial give its spread)
    finals = {number: on_disk for number, runs in recorded_test_results(study).items()
              if (on_disk := [Path(run["out"]) for run in runs
                              if (Path(run["out"]) / "metrics.json").exists()])}
    if best is not None:
        parts += best_section(study, study.trials[best])
        if best in finals:  # its latest run
            section, files = train_best_section(finals[best][-1], path)
            parts += section
            written += files
    # the best design's runs first
    curves = finals.get(best, []) + [run for number, runs in finals.items() if number != best for run in runs]
    curves += [run for run in compare if run not in curves]
    if len(curves) > 1 or compare:
        section, files = epochs_section(curves, path)
        parts += section
        written += files
    path.write_text("\n".join(parts))
    return written


def best_section(study: optuna.Study, trial: FrozenTrial) -> list[str]:
    """The best design's layers and its verdict under the study's own limits."""
    config = trial_design(study, trial)
    verdict = check(config, settings_of(study).limits)
    return [f"## Best design: trial {trial.number} (val accuracy {trial.values[0]:.4f})\n",
            mermaid(config) + "\n",
            markdown_table(LAYER_COLUMNS, layer_rows(config, verdict)) + "\n",
            markdown_table(RULE_COLUMNS, rule_rows(verdict)) + "\n"]


def train_best_section(run_dir: Path, path: Path) -> tuple[list[str], list[Path]]:
    """The final run of the best design: command, curves, per-class report, confusion matrix."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    curves, confusion = path.with_name(f"{path.stem}-curves.png"), path.with_name(f"{path.stem}-confusion.png")
    plot_curves(log, curves)
    plot_confusion(metrics, confusion)
    per_class = markdown_table(("class", "precision", "recall", "F1", "support"), [
        (c["class"], f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}",
         str(c["support"])) for c in metrics["per_class"]])
    return [f"## Train-best: {metrics['accuracy'] * 100:.2f}% test accuracy\n",
            f"`{metrics['command']}`: {metrics['epochs']} epochs on "
            f"{metrics['train_images']:,} images, {metrics['wall_seconds'] / 60:.1f} min "
            f"on {metrics['machine']['cpu']} ({metrics['machine']['device']}).\n",
            f"![training curves]({curves.name})\n", "### Per class (test)\n", per_class + "\n",
            f"![confusion matrix]({confusion.name})\n"], [curves, confusion]
