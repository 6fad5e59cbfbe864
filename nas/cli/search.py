"""`nas search` and `nas calibrate`: designs searched with Optuna, and the search's fidelity
calibrated, each with its live view."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from nas.cli.arguments import (check_creatable, check_storage_url, interrupted, limits_from,
                                recipe_from, runtime_from)
from nas.cli.views import SeriesBars, TrainingBars, console, counts_line
from nas.data.cifar10 import load_cifar10
from nas.data.settings import resolve_data_dir
from nas.design.files import DEFAULT_SPACE
from nas.errors import NasError
from nas.search.settings import (DEFAULT_STORAGE, TIME_SHARE, CalibrationSettings, Fidelity,
                                 StudySettings, check_fill)
from nas.training.recipe import fixed_part

if TYPE_CHECKING:
    from nas.search.space import SearchSpace


def study_settings(args: argparse.Namespace, space: SearchSpace, precision: str, device: str
                   ) -> StudySettings:
    """The study `nas search`'s flags ask for, on a runtime of `precision` and `device`, every
    flag checked (NasError, one line); `nas.search.settings.search_flags` is its inverse."""
    from nas.training.budget import check_budget

    check_fill(args.fill_params)
    check_budget(args.budget_minutes)
    timed = bool(args.budget_minutes)
    for flag, value in (("--time-share", args.time_share), ("--rounds", args.rounds)):
        if value is not None and not timed:
            raise NasError(f"{flag} needs --budget-minutes: at equal epochs give --epochs")
    if timed and args.epochs is not None:
        raise NasError(f"--epochs {args.epochs} --budget-minutes {args.budget_minutes:g}: at equal "
                       "time a trial trains in rounds: give --rounds")
    share = (TIME_SHARE if args.time_share is None else args.time_share) if timed else 0.0
    if timed and not share:
        raise NasError(f"--time-share {args.time_share}: give a share of the budget in (0, 1], e.g. {TIME_SHARE}")
    passes = {"epochs": args.epochs, "rounds": args.rounds}
    fidelity = Fidelity(**{k: v for k, v in passes.items() if v is not None},
                        data_fraction=args.data_fraction, val_images=args.val_images, time_share=share)
    return StudySettings(space.to_dict(), limits_from(args), fidelity,
                         fixed_part(recipe_from(args).to_dict()), args.second_objective,
                         args.fill_params, precision, args.sampler, args.budget_minutes,
                         device if timed else "")


def search(args: argparse.Namespace) -> int:
    from nas.cli.views import SearchView
    from nas.cli.workers import default_jobs, extra_workers
    from nas.search.dry_run import dry_run
    from nas.search.optimize import start_search
    from nas.search.space import load_space
    from nas.search.trials import finished, trial_counts

    space = load_space(args.space or DEFAULT_SPACE)
    if args.trials < 1:
        raise NasError(f"--trials {args.trials}: give a positive number of trials")
    runtime = runtime_from(args)
    # every flag is checked, even for a dry run that uses few of them: a typo is caught now
    settings = study_settings(args, space, runtime.precision, runtime.device_name())
    name, storage = args.study or space.name, args.storage or DEFAULT_STORAGE
    check_storage_url(storage)
    if args.dry_run:
        return print_dry_run(dry_run(space, settings.limits, args.trials, args.seed or 0,
                                     settings.fill_params, args.sampler), args.sampler)
    jobs = default_jobs(runtime.device) if args.jobs is None else args.jobs
    if jobs < 1:
        raise NasError(f"--jobs {jobs}: give 1 or more trials at once")
    data = load_cifar10(resolve_data_dir(args.data_dir))
    progress = TrainingBars(console)
    prepared = start_search(settings, runtime, data, study=name, storage=storage,
                            n_trials=args.trials, pruner=args.pruner, progress=progress)
    view = SearchView(console, progress, args.trials)
    try:
        with extra_workers(args.argv, jobs - 1) as problems, view:
            failures = prepared.run(view)
    except KeyboardInterrupt:
        return interrupted(args, f"the running trial is marked failed, every finished trial is kept in {storage}")
    for line in problems:
        print(f"nas: {line}", file=sys.stderr)
    study = prepared.study
    where = "" if storage == DEFAULT_STORAGE else f" --storage {storage}"
    console.print(f"study {name} in {storage}: {counts_line(trial_counts(study))}; "
                  f"see it with: nas report --study {name}{where}")
    if failures and finished(study) < args.trials:
        print(f"nas: error: {len(failures)} trials failed in this run and the study has "
              f"{finished(study)} of {args.trials} finished trials; see why with: nas report "
              f"--study {name}{where}", file=sys.stderr)
        return 1
    return 0


def print_dry_run(stats: dict[str, Any], sampler: str) -> int:
    console.print(f"dry run of {stats['trials']} sampled designs ({sampler} sampler; verdicts only, "
                  "no training): "
                  f"{stats['infeasible']} infeasible ({stats['infeasible_fraction']:.1%}); "
                  f"broken rules {stats['broken']}; {stats['seconds']} s, "
                  f"{stats['ms_per_verdict']} ms per design")
    if stats["fill"]:
        console.print(f"--fill-params {stats['fill']:g}: {stats['filled']} designs widened; the "
                      "figures are the filled designs'")
    for key, label in (("n_params", "parameters"), ("flops", "FLOPs (MACs)")):
        if q := stats["quartiles"][key]:
            console.print(f"feasible designs' {label}: min, quartiles, max = "
                          + ", ".join(f"{v:,}" for v in q))
    for label, broken in stats["baselines"].items():
        console.print(f"baseline {label}: " + (f"breaks {', '.join(broken)}" if broken else "feasible"))
    return 0


def calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from nas.cli.views import calibration_table
    from nas.search.calibrate import calibrate as run
    from nas.search.calibrate import caption, check_results, make_settings, read, summarise
    from nas.search.space import load_space

    out = Path(args.out)
    title = f"calibration {out}"
    if args.show:  # the file as it is: no settings needed, nothing trained
        state = read(out)
        console.print(calibration_table(summarise(state), title, caption(state)))
        return 0
    space = load_space(args.space or DEFAULT_SPACE)
    recipe = recipe_from(args)
    runtime = runtime_from(args)
    given = CalibrationSettings(space="", designs=args.designs, seed=recipe.seed,
                                val_images=args.val_images, fill_params=args.fill_params,
                                precision=runtime.precision, budget_minutes=args.budget_minutes,
                                device=runtime.device_name())
    settings = make_settings(space, recipe, args.fidelities, args.truth_fidelity, given)
    check_results(out, settings)  # before the data is read: other settings cost nothing
    check_creatable(out.parent, "--out", out)
    data = load_cifar10(resolve_data_dir(args.data_dir))
    try:
        with SeriesBars(console) as progress:
            state = run(out, settings, space, data, runtime, progress)
    except KeyboardInterrupt:
        return interrupted(args, f"every finished training is saved in {out}")
    console.print(calibration_table(state["summary"], title, caption(state)))
    return 0
