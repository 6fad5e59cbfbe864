"""What the command line shows while work runs: progress bars with ETA, one line per epoch, and
the live view of a search (it listens to the search's events; the search never prints)."""

from __future__ import annotations

import os
import sys
import time

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console, Group
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.table import Table

from nas.study import finished, pruned_by, trial_counts
from nas.train import EpochLog


def make_console() -> Console:
    """Output to a file or pipe gets 160 columns (unless $COLUMNS says otherwise): rich's fallback
    of 80 wraps the report's cells over several lines."""
    return Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)


def training_progress(console: Console) -> Progress:
    """Bars for the run and the current epoch: loss, accuracy, images/s, ETA."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console)


def epoch_printer(console: Console, split: str):
    """One console line per finished epoch."""
    def report(log: EpochLog) -> None:
        console.print(f"epoch {log.epoch:>3}  train loss {log.train_loss:.4f} acc {log.train_acc:.4f}"
                      f"  {split} loss {log.eval_loss:.4f} acc {log.eval_acc:.4f}  "
                      f"{log.seconds:.0f} s  {log.images_per_s:,.0f} img/s", soft_wrap=True)
    return report


def counts_line(counts: dict[str, int]) -> str:
    return (f"{counts['complete']} complete, {counts['constraint']} pruned by constraint, "
            f"{counts['pruner']} pruned by pruner, {counts['failed']} failed, "
            f"{counts['running']} running")


class SearchView:
    """The live view: counts, best so far, the trials bar with ETA and the current training bars;
    each failed trial's reason is printed once, in a line of its own."""

    def __init__(self, console: Console, progress: Progress, n_trials: int) -> None:
        self.console, self.progress, self.n_trials = console, progress, n_trials
        self.study: optuna.Study | None = None
        self.task = progress.add_task("trials", total=n_trials, completed=0, stats="")
        self.start = time.perf_counter()
        self.current, self.best, self.counts = "", "none yet", trial_counts_empty()

    def refresh(self, study: optuna.Study) -> None:
        self.study = study
        self.counts = trial_counts(study)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        best = max(done, key=lambda t: t.values[0], default=None)
        if best is not None:
            self.best = (f"trial {best.number}: val acc {best.values[0]:.4f}, "
                         f"{best.user_attrs.get('n_params', 0):,} params")
        self.progress.update(self.task, completed=finished(study))

    def trial_started(self, trial: optuna.Trial) -> None:
        self.current = f"trial {trial.number}"
        self.refresh(trial.study)

    def trial_finished(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.refresh(study)
        if trial.state == TrialState.FAIL:
            reason = trial.user_attrs.get("fail_reason", "no reason recorded")
            self.console.print(f"trial {trial.number} failed: {reason}", soft_wrap=True)
        elif pruned_by(trial) == "constraint":
            self.current = f"trial {trial.number} pruned: breaks {', '.join(trial.user_attrs['broken'])}"

    def __rich__(self) -> Group:
        table = Table.grid(padding=(0, 2))
        name = self.study.study_name if self.study else "opening"
        table.add_row("study", f"{name} ({self.current or 'starting'})")
        table.add_row("best so far", self.best)
        table.add_row("trials", counts_line(self.counts))
        table.add_row("elapsed", f"{(time.perf_counter() - self.start) / 60:.1f} min")
        return Group(table, self.progress)


def calibration_table(rows: list[dict], title: str, caption: str) -> Table:
    """`nas calibrate`'s answer: per cheap score, how well it ranks designs as the truth does."""
    def num(value: float | None, fmt: str) -> str:
        return "—" if value is None else format(value, fmt)

    table = Table(title=title, caption=caption)
    for col in ("fidelity / score", "designs", "ρ", "τ", "top-3 overlap", "s per design", "ρ per minute"):
        table.add_column(col, justify="left" if col.startswith("fid") else "right")
    for row, after in zip(rows, [*rows[1:], None]):
        top = row["top3"]
        table.add_row(row["score"], str(row["designs"]), num(row["rho"], "+.3f"), num(row["tau"], "+.3f"),
                      "—" if top is None else f"{top}/3", num(row["seconds_per_design"], ",.2f"),
                      num(row["rho_per_minute"], ",.2f"),
                      end_section=after is not None and after["kind"] != row["kind"])
    return table


def trial_counts_empty() -> dict[str, int]:
    return dict.fromkeys(("complete", "constraint", "pruner", "failed", "running", "waiting"), 0)
