"""Finished run folders as the report reads them: which train-best runs of a study are still on
disk, each run's metrics and per-epoch log, the command that made it, and the spread of a
design's accuracy over seeds."""

from __future__ import annotations

import json
import shlex
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import optuna

from nas.design.files import config_from_dict
from nas.design.geometry import param_count
from nas.errors import NasError
from nas.search.trials import recorded_results


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


def train_best_runs(study: optuna.Study, split: str = "test") -> dict[int, list[Path]]:
    """Every finished train-best run of each trial that is still on disk, oldest first: the
    tested ones, or with `split` "val" the truths (`--validate`)."""
    return {number: on_disk for number, runs in recorded_results(study, split).items()
            if (on_disk := [Path(run["out"]) for run in runs
                            if (Path(run["out"]) / "metrics.json").exists()])}


def made_by(metrics: dict[str, Any]) -> str:
    """The command that made a run, as it is typed to make it anew: an interrupted run was
    finished by the same command with --resume, which a new run must leave out."""
    return shlex.join(word for word in shlex.split(metrics["command"]) if word != "--resume")


def spreads(runs: Iterable[dict[str, Any]]) -> list[str]:
    """A line for each design trained more than once with the same number of epochs (seeds): the
    mean and sample standard deviation of its accuracy."""
    groups: dict[tuple[str, int], list[float]] = {}
    for metrics in runs:
        groups.setdefault((metrics["design"], metrics["epochs"]), []).append(metrics["accuracy"] * 100)
    return [f"{design}, {epochs} epochs, {len(acc)} runs: {' / '.join(f'{a:.2f}' for a in acc)} %, "
            f"mean {statistics.mean(acc):.2f} ± {statistics.stdev(acc):.2f} (sample std).\n"
            for (design, epochs), acc in groups.items() if len(acc) > 1]
