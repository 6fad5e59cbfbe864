"""What the command line shows while work runs: progress bars with ETA, one line per epoch, and
the live view of a search (it listens to the search's events; the search never prints)."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table

from nas.training.progress import SeriesProgress, TrainingProgress

if TYPE_CHECKING:  # the search's modules load optuna and torch: only when a search runs
    import optuna
    from optuna.trial import FrozenTrial

    from nas.training.checkpoints import EpochLog


def make_console() -> Console:
    """Output to a file or pipe gets 160 columns (unless $COLUMNS says otherwise): rich's fallback
    of 80 wraps the report's cells over several lines."""
    return Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)


console = make_console()  # every command prints through this one


class TrainingBars(TrainingProgress):
    """Bars for the run and the current epoch: loss, accuracy, images/s, ETA. Shown while `with`
    holds, or inside the search's live view (`bars`, a rich Progress, is part of it). With
    `split` ("test" or "val"), also one console line per finished epoch, which stays in a log."""

    def __init__(self, console: Console, split: str | None = None) -> None:
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[stats]}"), TimeElapsedColumn(),
                             TextColumn("ETA"), TimeRemainingColumn(), console=console)
        self.split = split
        self.run: TaskID | None = None
        self.epoch: TaskID | None = None
        self.epochs = 0  # the run's epochs as planned when the current one started

    def __enter__(self) -> TrainingBars:
        # Drawn only where they are redrawn in place: to a file or pipe rich writes their final
        # state alone, which says nothing (a run's bars are gone when it ends).
        if self.bars.console.is_interactive:
            self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bars.live.is_started:
            self.bars.stop()

    def run_started(self, epochs: int, done: int) -> None:
        self.run = self.bars.add_task("epochs", total=epochs, completed=done, stats="")

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        self.epochs = epochs
        self.bars.update(self.run, total=epochs)  # a budgeted run's epochs are re-planned
        self.epoch = self.bars.add_task(f"epoch {epoch}/{epochs}", total=steps, stats="")

    def step_done(self, step: int, loss: float, accuracy: float, images_per_s: float) -> None:
        self.bars.update(self.epoch, completed=step,
                         stats=f"loss {loss:.3f} acc {accuracy:.3f} {images_per_s:,.0f} img/s")

    def epoch_ended(self, log: EpochLog) -> None:
        self.bars.remove_task(self.epoch)
        self.epoch = None
        self.bars.update(self.run, completed=log.epoch,
                         stats=f"eval acc {log.eval_acc:.4f} (epoch {log.epoch}: {log.seconds:.0f} s)")
        if self.split:  # the epochs' total as planned at its start: a budget re-plans it after
            self.bars.console.print(
                f"epoch {log.epoch:>3}/{self.epochs}  train loss {log.train_loss:.4f} acc "
                f"{log.train_acc:.4f}  {self.split} loss {log.eval_loss:.4f} acc {log.eval_acc:.4f}  "
                f"{log.seconds:.0f} s  {log.images_per_s:,.0f} img/s", soft_wrap=True)

    def run_ended(self) -> None:
        for task in (self.epoch, self.run):  # a pruned or interrupted run leaves no stale bars
            if task is not None:
                self.bars.remove_task(task)
        self.run = self.epoch = None


class SeriesBars(TrainingBars, SeriesProgress):
    """The training bars under one bar over a whole series of trainings (`nas calibrate`)."""

    series: TaskID  # the series' bar: set by series_started

    def series_started(self, description: str, total: float, done: float) -> None:
        self.series = self.bars.add_task(description, total=total, completed=done, stats="")

    def training_started(self, what: str) -> None:
        self.bars.update(self.series, stats=what)

    def training_done(self, work: float) -> None:
        self.bars.advance(self.series, work)


def count(n: int, noun: str) -> str:
    """"1 epoch", "2 epochs": `n` and the noun, in the plural where `n` is not 1."""
    return f"{n} {noun}{'s' * (n != 1)}"


def counts_line(counts: dict[str, int]) -> str:
    slow = f"{counts['speed']} pruned as slower than the twin, " if counts["speed"] else ""
    return (f"{counts['complete']} complete, {counts['constraint']} pruned by constraint, {slow}"
            f"{counts['pruner']} pruned by pruner, {counts['failed']} failed, "
            f"{counts['running']} running")


class SearchView:
    """The live view: counts, best so far, the trials bar with ETA and the current training bars;
    each failed trial's reason is printed once, in a line of its own. Shown while `with` holds."""

    def __init__(self, console: Console, training: TrainingBars, n_trials: int) -> None:
        self.console, self.progress, self.n_trials = console, training.bars, n_trials
        self.study: optuna.Study | None = None
        self.task = self.progress.add_task("trials", total=n_trials, completed=0, stats="")
        self.start = time.perf_counter()
        self.current, self.best, self.counts = "", "none yet", trial_counts_empty()
        self.live = Live(self, console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> SearchView:
        self.live.start(refresh=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()
        if not self.console.is_terminal:  # rich ends the last view with a newline on terminals
            self.console.line()  # only: in a file the next line would be glued to the trials bar

    def refresh(self, study: optuna.Study) -> None:
        from optuna.trial import TrialState

        from nas.search.trials import finished, trial_counts

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
        from optuna.trial import TrialState

        from nas.search.trials import pruned_by

        self.refresh(study)
        if trial.state == TrialState.FAIL:
            reason = trial.user_attrs.get("fail_reason", "no reason recorded")
            self.console.print(f"trial {trial.number} failed: {reason}", soft_wrap=True)
        elif pruned_by(trial) == "constraint":
            self.current = f"trial {trial.number} pruned: breaks {', '.join(trial.user_attrs['broken'])}"
        elif pruned_by(trial) == "speed":
            self.current = f"trial {trial.number} pruned: slower than the twin"

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
    from nas.search.trials import COUNTS

    return dict.fromkeys(COUNTS, 0)
