"""`nas report`: the study as a rich table, and a Markdown results document with plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
from optuna.trial import FrozenTrial, TrialState  # noqa: E402
from rich.table import Table  # noqa: E402

from nas.budget import check  # noqa: E402
from nas.search import trial_config, trial_counts  # noqa: E402
from nas.study import best_trial, is_feasible, recorded_test_results  # noqa: E402
from nas.summary import LAYER_COLUMNS, RULE_COLUMNS, layer_rows, markdown_table, rule_rows  # noqa: E402

COLUMNS = ("rank", "trial", "state", "val acc", "test acc", "params", "FLOPs", "RF", "epochs",
           "seconds", "note")


def state_of(trial: FrozenTrial) -> str:
    """complete / pruned: constraint / pruned: pruner / failed / running."""
    if trial.state == TrialState.PRUNED:
        return "pruned: constraint" if trial.user_attrs.get("pruned_by") == "constraint" \
            else "pruned: pruner"
    return {TrialState.COMPLETE: "complete", TrialState.FAIL: "failed"}.get(
        trial.state, trial.state.name.lower())


def note_of(trial: FrozenTrial) -> str:
    attrs = trial.user_attrs
    parts = [f"baseline: {attrs['baseline']}"] if "baseline" in attrs else []
    if attrs.get("pruned_by") == "constraint":
        parts.append("breaks " + ", ".join(attrs.get("broken", [])))
    if "fail_reason" in attrs:
        parts.append(attrs["fail_reason"][:80])
    if "duplicate_of" in attrs:
        parts.append(f"same design as trial {attrs['duplicate_of']}")
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
    except Exception:  # no complete feasible trial yet
        best = None
    ranked = sorted(trials, key=lambda t: (t.state != TrialState.COMPLETE,
                                           -(t.values[0] if t.values else 0), t.number))
    out = []
    for rank, t in enumerate(ranked, 1):
        a = t.user_attrs
        out.append((
            str(rank) if t.state == TrialState.COMPLETE else "", str(t.number), state_of(t),
            f"{t.values[0]:.4f}" if t.values else "",
            f"{tests[t.number]['accuracy']:.4f}" if t.number in tests else "",
            f"{a['n_params']:,}" if "n_params" in a else "", f"{a['flops']:,}" if "flops" in a else "",
            str(a.get("receptive_field", "")), str(a.get("epochs_run", 0)),
            f"{a.get('train_seconds', 0):.0f}",
            "; ".join(filter(None, ("★ best" if t.number == best else "",
                                    "pareto" if t.number in pareto else "", note_of(t))))))
    return out, best, pareto


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
    ax = optuna.visualization.matplotlib.plot_optimization_history(
        study, target=lambda t: t.values[0], target_name="val accuracy")
    ax.figure.set_size_inches(7, 4)
    ax.figure.tight_layout()
    ax.figure.savefig(path, dpi=110)
    plt.close(ax.figure)


def plot_accuracy_vs_params(study: optuna.Study, pareto: set[int], path: Path) -> None:
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if is_feasible(t)]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter([t.user_attrs["n_params"] for t in done], [t.values[0] for t in done], c="tab:blue",
               label="complete trials")
    front = sorted((t for t in done if t.number in pareto), key=lambda t: t.user_attrs["n_params"])
    ax.plot([t.user_attrs["n_params"] for t in front], [t.values[0] for t in front], "o-",
            c="tab:red", label="Pareto front")
    ax.set_xlabel("parameters")
    ax.set_ylabel("val accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(log: list[dict[str, Any]], path: Path) -> None:
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [r["epoch"] for r in log]
    for key, label in (("train", "train"), ("eval", "test")):
        loss.plot(epochs, [r[f"{key}_loss"] for r in log], label=label)
        acc.plot(epochs, [r[f"{key}_acc"] for r in log], label=label)
    loss.set_title("loss")
    acc.set_title("accuracy")
    for ax in (loss, acc):
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(metrics: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.imshow(metrics["confusion"], cmap="Blues")
    ticks = range(len(metrics["classes"]))
    ax.set_xticks(ticks, metrics["classes"], rotation=45, ha="right")
    ax.set_yticks(ticks, metrics["classes"])
    for i, row in enumerate(metrics["confusion"]):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_markdown(study: optuna.Study, path: Path) -> list[Path]:
    """The results document and its PNG plots beside it; returns every file written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table_rows, best, pareto = rows(study)
    name = study.study_name
    written = [path]
    parts = [f"# Study `{name}`\n", summary_line(study) + ".\n",
             "Reproduce: `nas search --study " + name + "`, `nas train-best --study " + name +
             "`, `nas report --study " + name + f" --markdown {path}`.\n",
             "## Trials\n", markdown_table(COLUMNS, table_rows) + "\n"]
    done = [t for t in study.trials if t.state == TrialState.COMPLETE and t.values]
    if done:
        history, scatter = path.with_name(f"{path.stem}-history.png"), path.with_name(f"{path.stem}-params.png")
        plot_history(study, history)
        plot_accuracy_vs_params(study, pareto, scatter)
        written += [history, scatter]
        parts += ["## Search\n", f"![optimization history]({history.name})\n",
                  f"![val accuracy vs parameters]({scatter.name})\n"]
    if best is not None:
        trial = study.trials[best]
        config = trial_config(trial)
        verdict = check(config)
        parts += [f"## Best design: trial {best} (val accuracy {trial.values[0]:.4f})\n",
                  markdown_table(LAYER_COLUMNS, layer_rows(config, verdict)) + "\n",
                  markdown_table(RULE_COLUMNS, rule_rows(verdict)) + "\n"]
        best_dir = Path(recorded_test_results(study).get(best, {}).get("out", "/nonexistent"))
        metrics_file = best_dir / "metrics.json"
        if metrics_file.exists():
            metrics = json.loads(metrics_file.read_text())
            log = [json.loads(line) for line in (best_dir / "log.jsonl").read_text().splitlines()]
            curves, confusion = path.with_name(f"{path.stem}-curves.png"), path.with_name(f"{path.stem}-confusion.png")
            plot_curves(log, curves)
            plot_confusion(metrics, confusion)
            written += [curves, confusion]
            per_class = markdown_table(("class", "precision", "recall", "F1", "support"), [
                (c["class"], f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}",
                 str(c["support"])) for c in metrics["per_class"]])
            parts += [f"## Train-best: {metrics['accuracy'] * 100:.2f}% test accuracy\n",
                      f"`{metrics['command']}`: {metrics['epochs']} epochs on "
                      f"{metrics['train_images']:,} images, {metrics['wall_seconds'] / 60:.1f} min "
                      f"on {metrics['machine']['cpu']} ({metrics['machine']['device']}).\n",
                      f"![training curves]({curves.name})\n", "### Per class (test)\n", per_class + "\n",
                      f"![confusion matrix]({confusion.name})\n"]
    path.write_text("\n".join(parts))
    return written
