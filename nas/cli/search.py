"""`nas search` and `nas calibrate`: designs searched with Optuna, and the search's fidelity
calibrated, each with its live view."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.cli.arguments import (check_creatable, check_storage_url, interrupted, limits_from,
                                recipe_from, runtime_from)
from nas.cli.views import SeriesBars, TrainingBars, console, count, counts_line
from nas.data.cifar10 import load_cifar10
from nas.data.settings import TEST_IMAGES, TRAIN_IMAGES, resolve_data_dir
from nas.design.files import DEFAULT_SPACE
from nas.errors import NasError
from nas.search.settings import (DEFAULT_RUNS, DEFAULT_STORAGE, TIME_SHARE, TWIN_EPOCHS,
                                 CalibrationSettings, Fidelity, StudySettings, check_fill, mode,
                                 trial_steps)
from nas.training.recipe import fixed_part

if TYPE_CHECKING:
    import optuna

    from nas.data.cifar10 import Cifar10
    from nas.search.space import SearchSpace
    from nas.training.runtime import Runtime


def study_settings(args: argparse.Namespace, space: SearchSpace, precision: str, device: str,
                   budget_minutes: float, steps: int = 0) -> StudySettings:
    """The study `nas search`'s flags ask for with a budget of `budget_minutes` (0: equal epochs;
    the flag's, or what `search_budget` found for none) and, unless --trial-steps gives them, a
    trial's `steps` (`search_budget`'s), on a runtime of `precision` and `device`, every flag
    checked (NasError, one line); `nas.search.settings.search_flags` is its inverse."""
    from nas.training.budget import check_budget

    check_budget(budget_minutes)
    timed, defaults = bool(budget_minutes), mode(budget_minutes)
    fill = defaults.fill_params if args.fill_params is None else args.fill_params
    check_fill(fill)
    for flag, value in (("--time-share", args.time_share), ("--rounds", args.rounds),
                        ("--trial-steps", args.trial_steps)):
        if value is not None and not timed:
            raise NasError(f"{flag} needs a budget: at equal epochs (--budget-minutes 0) give --epochs")
    if timed and args.epochs is not None:
        raise NasError(f"--epochs {args.epochs}: at equal time (the default) a trial trains in "
                       "rounds: give --rounds, or --budget-minutes 0 to search at equal epochs")
    share = (TIME_SHARE if args.time_share is None else args.time_share) if timed else 0.0
    if timed and not share:
        raise NasError(f"--time-share {args.time_share}: give a share of the budget in (0, 1], e.g. {TIME_SHARE}")
    passes = {"epochs": args.epochs, "rounds": args.rounds}
    steps = steps if args.trial_steps is None else args.trial_steps
    fidelity = Fidelity(**{k: v for k, v in passes.items() if v is not None},
                        data_fraction=args.data_fraction, val_images=args.val_images, time_share=share,
                        steps=steps if timed else 0)
    return StudySettings(space.to_dict(), limits_from(args), fidelity,
                         fixed_part(recipe_from(args).to_dict()), args.second_objective,
                         fill, precision, args.sampler, budget_minutes, device if timed else "")


def search_budget(args: argparse.Namespace, space: SearchSpace, name: str, storage: str,
                  runtime: Runtime) -> tuple[float, int]:
    """The search's budget M and its trials' steps (0: none, or --trial-steps gives them). A study
    that exists keeps its own (rerunning the command continues it). For a new one, M is
    --budget-minutes, else the minutes of the reference twin's TWIN_EPOCHS epochs on all 50,000
    training images, with the test set's evaluations; the steps are the twin's in --time-share of
    M (`trial_steps`); the twin's speed, when either needs it, timed here now."""
    from nas.search.space import TWIN, baseline_params
    from nas.search.storage import existing
    from nas.search.trials import settings_of
    from nas.training.budget import minutes_of, plan_speed

    if (study := existing(name, storage)) is not None:
        stored = settings_of(study)
        return (stored.budget_minutes if args.budget_minutes is None else args.budget_minutes,
                stored.fidelity.steps)
    minutes = args.budget_minutes
    if minutes == 0 or (minutes is not None and args.trial_steps is not None):
        return minutes, 0  # nothing to time: equal epochs, or both given
    twin = dict(baseline_params(space)).get(TWIN)
    if twin is None:
        raise NasError(f"space {space.name} does not hold the reference's twin, whose speed sets the "
                       "default budget and trial steps: give --budget-minutes M and --trial-steps N "
                       "(M 0: equal epochs)")
    recipe = recipe_from(args)
    speed = plan_speed(space.design(twin), recipe, runtime)
    if minutes is None:
        minutes = round(minutes_of(TWIN_EPOCHS, speed, TRAIN_IMAGES, TEST_IMAGES), 1)
        console.print(f"budget: {minutes:g} min, the reference twin's {TWIN_EPOCHS} epochs timed on "
                      f"{runtime.device_name()} (--budget-minutes M for yours; 0: equal epochs)")
    share = TIME_SHARE if args.time_share is None else args.time_share
    steps = trial_steps(share, minutes, speed.train_images_per_s, recipe.batch_size)
    if args.trial_steps is None:
        console.print(f"trial steps: {steps}, the reference twin's in {share:g} of {minutes:g} min "
                      "(--trial-steps N for yours; 0: each design's own speed)")
    return minutes, steps


def search(args: argparse.Namespace) -> int:
    from nas.cli.views import SearchView
    from nas.cli.workers import default_jobs, extra_workers
    from nas.search.dry_run import dry_run
    from nas.search.optimize import check_limits_possible, start_search
    from nas.search.space import load_space
    from nas.search.trials import finished, trial_counts

    if args.trials < 1:
        raise NasError(f"--trials {args.trials}: give a positive number of trials")
    if args.final_rung is not None and args.final_rung < 0:
        raise NasError(f"--final-rung {args.final_rung}: give how many top trials get their truth (0: none)")
    if args.middle_rung is not None and args.middle_rung < 0:
        raise NasError(f"--middle-rung {args.middle_rung}: give how many candidates train longer (0: none)")
    if args.speed_floor is not None and not 0 <= args.speed_floor <= 1:
        raise NasError(f"--speed-floor {args.speed_floor:g}: give a share of the twin's speed in [0, 1] (0: none)")
    nominal = 1.0 if args.budget_minutes is None else args.budget_minutes  # none given: equal time
    defaults = mode(nominal)
    space = load_space(args.space or defaults.space)
    name, storage = args.study or space.name, args.storage or DEFAULT_STORAGE
    check_storage_url(storage)
    runtime = runtime_from(args)
    rung = defaults.final_rung if args.final_rung is None else args.final_rung
    middle = defaults.middle_rung if args.middle_rung is None else args.middle_rung
    out = Path(args.out or DEFAULT_RUNS / name)
    if rung:
        check_creatable(out, "--out", out)
    # every flag checked before the data is read or M timed
    checked = study_settings(args, space, runtime.precision, "", nominal)
    if args.dry_run:
        return print_dry_run(dry_run(space, checked.limits, args.trials, args.seed or 0,
                                     checked.fill_params, args.sampler), args.sampler)
    check_limits_possible(space, checked.limits)  # named before M is timed
    jobs = default_jobs(runtime.device) if args.jobs is None else args.jobs
    if jobs < 1:
        raise NasError(f"--jobs {jobs}: give 1 or more trials at once")
    data = load_cifar10(resolve_data_dir(args.data_dir))
    minutes, steps = search_budget(args, space, name, storage, runtime)
    settings = study_settings(args, space, runtime.precision, runtime.device_name(), minutes, steps)
    progress = TrainingBars(console)
    prepared = start_search(settings, runtime, data, study=name, storage=storage,
                            n_trials=args.trials, pruner=args.pruner or mode(minutes).pruner,
                            speed_floor=(mode(minutes).speed_floor if args.speed_floor is None
                                         else args.speed_floor), progress=progress)
    view = SearchView(console, progress, args.trials)
    where = "" if storage == DEFAULT_STORAGE else f" --storage {storage}"
    try:
        with extra_workers(args.argv, jobs - 1) as problems, view:
            failures = prepared.run(view)
    except KeyboardInterrupt:
        return interrupted(args, f"the running trial is marked failed, every finished trial is kept in {storage}")
    for line in problems:
        print(f"nas: {line}", file=sys.stderr)
    study = prepared.study
    console.print(f"study {name} in {storage}: {counts_line(trial_counts(study))}")
    if failures and finished(study) < args.trials:
        print(f"nas: error: {len(failures)} trials failed in this run and the study has "
              f"{finished(study)} of {args.trials} finished trials; see why with: nas report "
              f"--study {name}{where}", file=sys.stderr)
        return 1
    if rung and finished(study) >= args.trials:
        try:
            run_final_rung(study, rung, middle, out, data, runtime,
                           f"nas train-best --study {name}{where} --validate --trial {{trial}} --out {{out}}")
        except KeyboardInterrupt:
            return interrupted(args, f"every finished truth is kept in {storage}, every finished "
                                     f"epoch in {out}")
    console.print(f"{cost_line(study)}; see it with: nas report --study {name}{where}")
    return 0


def run_final_rung(study: optuna.Study, k: int, middle: int, out: Path, data: Cifar10,
                   runtime: Runtime, command: str) -> None:
    """The search's rungs (`nas.search.rung`), with their series bars and a line per run."""
    from nas.search.rung import final_rung, picks_in_words
    from nas.search.trials import MIDDLE, RUNG_SPEEDS, truths

    console.print(f"final rung: the truths of {count(k, 'trial')} ({picks_in_words(study, middle)}), "
                  f"each run in {out}")
    with SeriesBars(console, "val") as progress:
        numbers = final_rung(study, k, out, data, runtime, progress, command, middle)
    if timed := study.user_attrs.get(RUNG_SPEEDS):
        console.print("final rung, training images/s timed now: " + ", ".join(
            f"trial {n} {speed['train_images_per_s']:,.0f}" for n, speed in timed.items()))
    if longer := study.user_attrs.get(MIDDLE):
        console.print("middle rung: " + ", ".join(
            f"trial {n} val acc {run['accuracy']:.4f} ({run['steps']} steps)" for n, run in longer.items()))
    known = truths(study)
    console.print("final rung: " + ", ".join(f"trial {n} truth {known[n]:.4f}" for n in numbers if n in known))


def cost_line(study: optuna.Study) -> str:
    """The search's cost (`search_cost`), stored on the study and said in one line."""
    from nas.search.trials import COST, RUNG, search_cost

    from nas.report.table import cost_text

    cost = search_cost(study, study.user_attrs.get(RUNG, {}).get("trials", []))
    study.set_user_attr(COST, cost)
    return f"cost: {cost_text(cost)}"


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
                                device=runtime.device_name(), pace=args.pace)
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
