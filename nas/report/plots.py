"""The results document's PNG plots: the search's history, accuracy against parameters and
measured training speed against FLOPs, a run's training curves and confusion matrix, and runs'
accuracy against epochs.

Drawn with matplotlib's object API (`Figure`): files only, no backend and no global state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from matplotlib.figure import Figure
from optuna.trial import TrialState

from nas.search.trials import is_feasible


def save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)


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


COST_LABELS = {"n_params": "parameters", "flops": "FLOPs per image (multiply-adds)",
               "epoch_seconds": "seconds per 50,000-image epoch (measured)"}


def plot_accuracy_vs_cost(study: optuna.Study, pareto: set[int], cost: str, path: Path) -> None:
    """Each complete feasible trial's val accuracy against its `cost` attribute (parameters, FLOPs
    or measured seconds per epoch), and the Pareto front."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if is_feasible(t) and cost in t.user_attrs]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.scatter([t.user_attrs[cost] for t in done], [t.values[0] for t in done], c="tab:blue",
               label="complete trials")
    front = sorted((t for t in done if t.number in pareto), key=lambda t: t.user_attrs[cost])
    ax.plot([t.user_attrs[cost] for t in front], [t.values[0] for t in front], "o-",
            c="tab:red", label="Pareto front")
    ax.set_xlabel(COST_LABELS[cost])
    ax.set_ylabel("val accuracy")
    ax.legend()
    save(fig, path)


def plot_speed_vs_flops(flops: list[int], speeds: list[float], path: Path) -> None:
    """Each measured design's training images/s against its FLOPs."""
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.scatter(flops, speeds, c="tab:blue")
    ax.set_xlabel("FLOPs per image (multiply-adds)")
    ax.set_ylabel("training images/s (measured)")
    ax.grid(alpha=0.3)
    save(fig, path)


def plot_curves(log: list[dict[str, Any]], path: Path) -> None:
    """A run's train and test loss and accuracy after every epoch."""
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


def plot_confusion(metrics: dict[str, Any], path: Path) -> None:
    """A run's confusion matrix, with the count in every cell."""
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
