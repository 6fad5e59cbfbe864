"""`nas screen`: a recipe screen from its TOML file (`nas.training.screen`): every variant trained
at every seed on the validation split, seed by seed, then their table. A rerun continues it."""

from __future__ import annotations

import argparse
import json
import shlex
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table

from nas.cli.arguments import check_run, interrupted, runtime_from
from nas.cli.train import checked_data, result_line, train_and_test
from nas.cli.views import console, count
from nas.data.cifar10 import Cifar10
from nas.design.config import ArchConfig
from nas.errors import NasError
from nas.search.settings import DEFAULT_RUNS
from nas.training.screen import (COLUMNS, Screen, ScreenRun, finished_metrics, load_screen,
                                 markdown, row_cells, screen_design, summary_rows)

Finished = dict[tuple[str, int], dict[str, Any]]


def screen(args: argparse.Namespace) -> int:
    """Train the screen's missing runs (none with --table), then print and write its table."""
    path = Path(args.file)
    plan = load_screen(path)
    config = screen_design(plan, path)
    out = Path(args.out or DEFAULT_RUNS / f"screen-{path.stem}")
    runs = plan.runs()
    # every finished folder is checked before anything trains: one of another run is refused
    finished = {(run.variant, run.seed): metrics for run in runs
                if (metrics := finished_metrics(out / run.folder, run, config, plan.data_fraction,
                                                plan.val_images))}
    if args.table:
        if not finished:
            raise NasError(f"no finished run of {path} in {out}: run `nas screen {path}"
                           f"{'' if args.out is None else f' --out {out}'}` first")
    else:
        todo = [run for run in runs if (run.variant, run.seed) not in finished]
        console.print(f"screen {path}: {count(len(todo), 'run')} to train, {len(finished)} finished, of "
                      f"{len(plan.variants)} variants × {count(len(plan.seeds), 'seed')}; saving in {out}")
        try:
            train_all(args, plan, config, out, todo, finished)
        except KeyboardInterrupt:
            return interrupted(args, f"every finished run and epoch is saved in {out}")
    show(args, plan, config, out, finished)
    return 0


def train_all(args: argparse.Namespace, plan: Screen, config: ArchConfig, out: Path,
              todo: list[ScreenRun], finished: Finished) -> None:
    """Train `todo` in order, each as `nas train DESIGN --validate` would, adding its metrics to
    `finished`; every run's folder is checked before the first trains."""
    from nas.training.checkpoints import CHECKPOINT
    from nas.training.run import RunSpec

    specs = [RunSpec(config, run.recipe, out / run.folder, "val", plan.data_fraction, plan.val_images,
                     resume=(out / run.folder / CHECKPOINT).exists(), command=args.command_line)
             for run in todo]
    for spec in specs:
        check_run(spec.config, spec.recipe, spec.out, spec.resume, spec.fraction)
    runtime = runtime_from(args)
    data: Cifar10 | None = None
    took: list[float] = []  # the minutes of each run trained here: the screen's ETA
    for i, (run, spec) in enumerate(zip(todo, specs), 1):
        left = f"; about {len(todo[i - 1:]) * sum(took) / len(took):.0f} min left" if took else ""
        console.print(f"run {i} of {len(todo)}: {run.variant} seed {run.seed}"
                      + (" (resumed)" if spec.resume else "") + left)
        if data is None:  # read once: the others were checked above
            data = checked_data(args, spec)
        start = time.perf_counter()
        metrics = train_and_test(spec, data, runtime)
        took.append((time.perf_counter() - start) / 60)
        finished[run.variant, run.seed] = metrics
        console.print(result_line(metrics, spec.out))


def show(args: argparse.Namespace, plan: Screen, config: ArchConfig, out: Path, finished: Finished) -> None:
    """Print the table and write it to OUT/screen.md (Markdown) and OUT/screen.json (the rows)."""
    rows = summary_rows(plan, finished)
    # the command that runs the screen, whatever made the table
    command = shlex.join(["nas", *(a for a in args.argv if a != "--table")])
    table = Table(title=f"recipe screen {args.file}: validation accuracy % over seeds",
                  caption=f"vs base: difference of the means from {plan.base}'s; gain > spread: "
                          "that gain exceeds the larger sample sd of the two")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "variant" else "right")
    for row in rows:
        table.add_row(*row_cells(row, plan.base, lambda s: f"[bold]{s}[/]"))
    console.print(table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "screen.md").write_text(markdown(plan, config, rows, finished, command))
    (out / "screen.json").write_text(json.dumps(
        {"command": command, "screen": plan.to_dict(), "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    console.print(f"saved {out / 'screen.md'} and {out / 'screen.json'}")
