"""What each `nas` subcommand does: thin shells over the library that turn arguments into a
recipe, a runtime, a study's settings, and print what happened. Errors are NasError (one line)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.live import Live

from nas.arguments import (check_creatable, check_run, check_storage_url, limits_from, recipe_from,
                           runtime_from)
from nas.budget import check
from nas.config import ArchConfig
from nas.data import load_cifar10, resolve_data_dir
from nas.designs import DEFAULT_SPACE, load_config, resolve_design
from nas.device import Runtime
from nas.errors import NasError
from nas.recipe import Recipe, fixed_part, recipe_from_dict
from nas.study import DEFAULT_STORAGE, Fidelity, StudySettings
from nas.views import epoch_printer, make_console, training_progress

console = make_console()
# train-best's final recipe: the study's, for the long schedule, with the knobs the recipe screen
# adopted (studies/recipe-screen: each gained more than its spread over 3 seeds); flags override
FINAL = {"epochs": 100, "no_decay_norm_bias": True, "norm_bias_lr_scale": 4.0}


def command_line(args: argparse.Namespace) -> str:
    return "nas " + " ".join(args.argv)


def interrupted(args: argparse.Namespace, saved: str) -> int:
    again = command_line(args)
    if "--resume" not in args.argv and args.command not in ("search", "calibrate"):
        again += " --resume"
    print(f"nas: interrupted; {saved}. Continue with: {again}", file=sys.stderr)
    return 130


def show(args: argparse.Namespace) -> int:
    from nas.summary import render

    config = load_config(resolve_design(args.config))
    verdict = check(config, limits_from(args))
    if args.json:
        print(json.dumps({"config": args.config, **verdict.to_dict()}, indent=2))
    else:
        console.print(render(config, verdict))
        console.print("FLOPs are fvcore's count: one multiply-add = one FLOP, for one image.")
    return 0


def _train(args: argparse.Namespace, config: ArchConfig, recipe: Recipe, runtime: Runtime, out: Path,
           final: bool, fraction: float) -> dict[str, Any]:
    """Train and test one design into `out`, with bars and a line per epoch."""
    from nas.run import train_run

    check_run(config, recipe, out, args.resume, fraction)
    data = load_cifar10(resolve_data_dir(args.data_dir))
    with training_progress(console) as progress:
        return train_run(config, recipe, runtime, data, out, resume=args.resume, final=final,
                         fraction=fraction, command=command_line(args), progress=progress,
                         on_epoch=epoch_printer(console, "test" if final else "val"),
                         on_resume=lambda epoch: console.print(f"resuming from epoch {epoch}"))


def train(args: argparse.Namespace) -> int:
    config = load_config(resolve_design(args.config))
    recipe = recipe_from(args)
    out = Path(args.out or Path("studies") / config.name)
    runtime = runtime_from(args)
    try:
        metrics = _train(args, config, recipe, runtime, out, not args.validate, args.data_fraction)
    except KeyboardInterrupt:
        return interrupted(args, f"every finished epoch is saved in {out}")
    console.print(f"[bold]{metrics['eval_split']} accuracy {metrics['accuracy'] * 100:.2f}%[/] after "
                  f"{metrics['epochs']} epochs, {metrics['wall_seconds'] / 60:.1f} min; saved in {out}")
    return 0


def search(args: argparse.Namespace) -> int:
    from nas.fill import check_fill
    from nas.jobs import default_jobs, extra_workers
    from nas.search import dry_run, run_search
    from nas.space import load_space
    from nas.views import SearchView

    space = load_space(args.space or DEFAULT_SPACE)
    limits = limits_from(args)
    if args.trials < 1:
        raise NasError(f"--trials {args.trials}: give a positive number of trials")
    check_fill(args.fill_budget)
    # every flag is checked, even for a dry run that uses few of them: a typo is caught now
    fidelity = Fidelity(Fidelity.epochs if args.epochs is None else args.epochs,
                        args.data_fraction, args.val_images)
    recipe = recipe_from(args)
    runtime = runtime_from(args)
    name, storage = args.study or space.name, args.storage or DEFAULT_STORAGE
    check_storage_url(storage)
    if args.dry_run:
        return print_dry_run(dry_run(space, limits, args.trials, args.seed or 0, args.fill_budget))
    jobs = default_jobs(runtime.device) if args.jobs is None else args.jobs
    if jobs < 1:
        raise NasError(f"--jobs {jobs}: give 1 or more trials at once")
    settings = StudySettings(space.to_dict(), limits, fidelity, fixed_part(recipe.to_dict()),
                             args.second_objective, args.fill_budget, runtime.precision)
    data = load_cifar10(resolve_data_dir(args.data_dir))
    progress = training_progress(console)
    view = SearchView(console, progress, args.trials)
    try:
        with extra_workers(args.argv, jobs - 1) as problems, \
                Live(view, console=console, refresh_per_second=4, transient=False):
            study, failures = run_search(
                study_name=name, storage_url=storage, space=space, settings=settings,
                recipe=recipe, runtime=runtime, n_trials=args.trials, pruner_name=args.pruner,
                data=data, events=view, progress=progress)
    except KeyboardInterrupt:
        return interrupted(args, f"the running trial is marked failed, every finished trial is kept in {storage}")
    for line in problems:
        print(f"nas: {line}", file=sys.stderr)
    from nas.study import finished, trial_counts
    from nas.views import counts_line

    where = "" if storage == DEFAULT_STORAGE else f" --storage {storage}"
    console.print(f"study {name} in {storage}: {counts_line(trial_counts(study))}; "
                  f"see it with: nas report --study {name}{where}")
    if failures and finished(study) < args.trials:
        print(f"nas: error: {len(failures)} trials failed in this run and the study has "
              f"{finished(study)} of {args.trials} finished trials; see why with: nas report "
              f"--study {name}{where}", file=sys.stderr)
        return 1
    return 0


def calibrate(args: argparse.Namespace) -> int:
    from nas.calibrate import DEFAULT_OUT, caption, check_results, make_settings, read, summarise
    from nas.calibrate import calibrate as run
    from nas.space import load_space
    from nas.views import calibration_table

    out = Path(args.out or DEFAULT_OUT)
    title = f"calibration {out}"
    if args.show:  # the file as it is: no settings needed, nothing trained
        state = read(out)
        console.print(calibration_table(summarise(state), title, caption(state)))
        return 0
    space = load_space(args.space or DEFAULT_SPACE)
    recipe = recipe_from(args)
    runtime = runtime_from(args)
    settings = make_settings(space, args.designs, args.fidelities, args.truth, recipe.seed,
                             args.val_images, recipe, args.fill_budget, runtime.precision)
    check_results(out, settings)  # before the data is read: other settings cost nothing
    check_creatable(out.parent, "--out", out)
    data = load_cifar10(resolve_data_dir(args.data_dir))
    try:
        with training_progress(console) as progress:
            state = run(out, settings, space, data, runtime, progress)
    except KeyboardInterrupt:
        return interrupted(args, f"every finished training is saved in {out}")
    console.print(calibration_table(state["summary"], title, caption(state)))
    return 0


def print_dry_run(stats: dict[str, Any]) -> int:
    console.print(f"dry run of {stats['trials']} sampled designs (verdicts only, no training): "
                  f"{stats['infeasible']} infeasible ({stats['infeasible_fraction']:.1%}); "
                  f"broken rules {stats['broken']}; {stats['seconds']} s, "
                  f"{stats['ms_per_verdict']} ms per design")
    if stats["fill"]:
        console.print(f"--fill-budget {stats['fill']:g}: {stats['filled']} designs widened; the "
                      "figures are the filled designs'")
    for key, label in (("n_params", "parameters"), ("flops", "FLOPs (MACs)")):
        if q := stats["quartiles"][key]:
            console.print(f"feasible designs' {label}: min, quartiles, max = "
                          + ", ".join(f"{v:,}" for v in q))
    for label, broken in stats["baselines"].items():
        console.print(f"baseline {label}: " + (f"breaks {', '.join(broken)}" if broken else "feasible"))
    return 0


def train_best(args: argparse.Namespace) -> int:
    from nas.run import check_run_folder
    from nas.study import (best_trial, load_existing, record_test_result, recorded_test_results,
                           settings_of, trial_design)

    # the checks that need no study first, so that a bad flag is named whatever the storage holds
    recipe_from(args)
    runtime = runtime_from(args)
    default = "best" if args.trial is None else f"trial-{args.trial}"  # the twin's beside the best's
    out = Path(args.out or Path("studies") / args.study / default)
    check_run_folder(out, None, args.resume)  # the recipe is compared once the study gives it
    check_creatable(out, "--out", out)
    storage = args.storage or DEFAULT_STORAGE
    study = load_existing(args.study, storage)
    trial = best_trial(study, args.trial)
    config = trial_design(study, trial)
    # the recipe the study's trials were trained with, made FINAL; flags given change it
    searched = recipe_from_dict(settings_of(study).recipe, f"study {args.study}")
    recipe = recipe_from(args, replace(searched, **FINAL))
    check_run_folder(out, recipe, args.resume)
    if any(run["out"] == str(out) for run in recorded_test_results(study).get(trial.number, [])):
        # recorded after the training: refused now, not after hours of it
        raise NasError(f"trial {trial.number} already has a test result from {out}: "
                       "choose another --out")
    console.print(f"re-training trial {trial.number} of study {args.study} (val acc "
                  f"{trial.values[0]:.4f}, {trial.user_attrs['n_params']:,} params) on all 50,000 "
                  f"training images for {recipe.epochs} epochs with the study's recipe (lr "
                  f"{recipe.lr:g}, weight decay {recipe.weight_decay:g}); saving in {out}")
    try:
        metrics = _train(args, config, recipe, runtime, out, final=True, fraction=1.0)
    except KeyboardInterrupt:
        return interrupted(args, f"every finished epoch is saved in {out}")
    record_test_result(study, trial, {"accuracy": metrics["accuracy"], "epochs": metrics["epochs"],
                                      "out": str(out), "wall_seconds": metrics["wall_seconds"]})
    console.print(f"[bold]test accuracy {metrics['accuracy'] * 100:.2f}%[/] after "
                  f"{metrics['epochs']} epochs, {metrics['wall_seconds'] / 60:.1f} min; saved in {out}")
    return 0


def report(args: argparse.Namespace) -> int:
    from nas.report import read_run, rich_table, write_markdown
    from nas.study import load_existing, settings_of

    storage = args.storage or DEFAULT_STORAGE
    markdown = Path(args.markdown) if args.markdown else None
    if markdown is not None and markdown.is_dir():
        raise NasError(f"--markdown {markdown} is a folder: give a file name, e.g. {markdown / 'REPORT.md'}")
    if markdown is not None:  # before the storage is opened: a bad path is named first
        check_creatable(markdown.parent, "--markdown", markdown)
    compare = tuple(Path(run) for run in args.compare)
    if compare and markdown is None:
        raise NasError("--compare adds a plot to the results document: give --markdown too")
    for run in compare:
        read_run(run)
    study = load_existing(args.study, storage)
    if not study.trials:
        console.print(f"study {args.study} has no trials yet: run nas search --study {args.study}")
        return 0
    settings_of(study)  # the table reads what nas search stores on each trial: refuse other studies
    console.print(rich_table(study))
    if markdown is not None:
        files = write_markdown(study, markdown, storage, compare)
        console.print(f"wrote {', '.join(map(str, files))}")
    return 0


def data(args: argparse.Namespace) -> int:
    from nas.data import verify_cifar10
    from nas.download import download_cifar10

    data_dir = resolve_data_dir(args.data_dir)
    folder = download_cifar10(data_dir, log=console.print) if args.action == "download" \
        else verify_cifar10(data_dir)
    cifar = load_cifar10(folder)
    console.print(f"CIFAR-10 in {folder}: {len(cifar.train_labels):,} training and "
                  f"{len(cifar.test_labels):,} test images, md5s match the official release")
    return 0


def predict(args: argparse.Namespace) -> int:
    from nas.use import predict as run

    if args.top < 1:
        raise NasError(f"--top {args.top}: give 1 or more classes per image")
    return run(args, console)


def export(args: argparse.Namespace) -> int:
    from nas.use import export as run

    return run(args, console)
