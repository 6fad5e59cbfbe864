"""`nas train` and `nas train-best`: one design trained and tested, with bars and a line per epoch."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.cli.arguments import (check_creatable, check_run, interrupted, preset_recipe, recipe_from,
                                runtime_from, study_args)
from nas.cli.views import TrainingBars, console, count
from nas.data.cifar10 import Cifar10, load_cifar10
from nas.data.settings import resolve_data_dir
from nas.design.files import load_config, resolve_design
from nas.errors import NasError
from nas.search.settings import DEFAULT_RUNS
from nas.training.presets import AUTO, NONE
from nas.training.recipe import FINAL_EPOCHS, Recipe, recipe_from_dict

if TYPE_CHECKING:
    from nas.training.run import RunSpec
    from nas.training.runtime import Runtime


def checked_data(args: argparse.Namespace, spec: RunSpec) -> Cifar10:
    """Every check of the run that needs no data, then the data: a mistake is named before
    anything is read or shown."""
    done = check_run(spec.config, spec.recipe, spec.out, spec.resume, spec.fraction)
    data = load_cifar10(resolve_data_dir(args.data_dir))
    if spec.resume:
        console.print(f"resuming from epoch {done}")
    return data


def train_and_test(spec: RunSpec, data: Cifar10, runtime: Runtime) -> dict[str, Any]:
    """Train and score one design (`nas.training.run.train_run`), with bars and a line per epoch."""
    from nas.training.run import train_run

    with TrainingBars(console, spec.split) as progress:
        return train_run(spec, data, runtime, progress)


def given_minutes(args: argparse.Namespace) -> float | None:
    """The budget the flags give (None: none): --budget-minutes, or with --time-of RUN the wall
    minutes that finished run took, so that this run trains for exactly the time a rival's
    training took on this machine (its measured time, where a timing before it only estimates
    it). Checked: a budget, given once, and not with --epochs."""
    from nas.report.runs import read_run
    from nas.training.budget import check_budget

    minutes = args.budget_minutes
    if args.time_of is not None:
        if minutes is not None:
            raise NasError(f"--budget-minutes {minutes:g} --time-of {args.time_of}: give one of them")
        minutes = round(read_run(Path(args.time_of))[0]["wall_seconds"] / 60, 2)
    if minutes is not None:
        check_budget(minutes)
        if minutes and args.epochs is not None:
            budget = f"--time-of {args.time_of}" if args.time_of else f"--budget-minutes {minutes:g}"
            raise NasError(f"--epochs {args.epochs} {budget}: give one of them")
    return minutes


def at_its_epochs(spec: RunSpec, args: argparse.Namespace, base: Recipe | None, preset: str) -> RunSpec:
    """`spec` with `preset` for the epochs it now trains, given or planned from its budget (a
    resumed plan's, or a new one's), over `base` and under the flags; None: a truth run, whose
    recipe is the study's as searched."""
    if base is None:
        return spec
    return replace(spec, recipe=preset_recipe(args, base, spec.recipe.epochs, preset, spec.config))


def preset_of(args: argparse.Namespace, out: Path) -> str:
    """--preset; when resuming without one, the preset the run started with (none for a run
    saved before presets), so that a run continues as it began whatever its budget now gives."""
    if not (args.resume and args.preset == AUTO):
        return args.preset
    try:
        return json.loads((out / "recipe.json").read_text()).get("preset") or NONE
    except (OSError, ValueError, AttributeError):
        return AUTO  # no readable recipe.json: the run folder's check names it


def result_line(metrics: dict[str, Any], out: Path) -> str:
    return (f"[bold]{metrics['eval_split']} accuracy {metrics['accuracy'] * 100:.2f}%[/] after "
            f"{count(metrics['epochs'], 'epoch')}, {metrics['wall_seconds'] / 60:.1f} min; saved in {out}")


def train(args: argparse.Namespace) -> int:
    from nas.training.run import RunSpec, budgeted, resumed

    given = given_minutes(args)
    config = load_config(resolve_design(args.config))
    base = Recipe()
    spec = RunSpec(config, replace(base, epochs=args.epochs or base.epochs),
                   Path(args.out or DEFAULT_RUNS / config.name),
                   "val" if args.validate else "test", args.data_fraction, resume=args.resume,
                   command=args.command_line)
    runtime = runtime_from(args)
    minutes = given or 0.0
    preset = preset_of(args, spec.out)
    spec = at_its_epochs(resumed(spec, minutes), args, base, preset)
    data = checked_data(args, spec)
    spec = at_its_epochs(budgeted(spec, minutes, runtime, data), args, base, preset)
    if spec.plan:
        console.print(f"training {config.name}: {spec.plan.describe()}; saving in {spec.out}")
    try:
        metrics = train_and_test(spec, data, runtime)
    except KeyboardInterrupt:
        return interrupted(args, f"every finished epoch is saved in {spec.out}")
    console.print(result_line(metrics, spec.out))
    return 0


def knobs_line(recipe: Recipe) -> str:
    """The final training's recipe: its preset and the knobs presets set, as set."""
    return (f"preset {recipe.preset or 'none'}: lr {recipe.lr:g}, weight decay {recipe.weight_decay:g}, "
            f"{'no decay' if recipe.no_decay_norm_bias else 'decay'} on BatchNorm and biases, "
            f"BatchNorm-bias lr ×{recipe.norm_bias_lr_scale:g}")


def train_best(args: argparse.Namespace) -> int:
    from nas.search.rung import recorded, truth_recipe
    from nas.search.storage import load_existing
    from nas.search.trials import (best_trial, record_result, recorded_results, settings_of,
                                   trial_design, truths)
    from nas.training.run import RunSpec, budgeted, check_run_folder, resumed

    # the checks that need no study first, so that a bad flag is named whatever the storage holds
    recipe_from(args)
    runtime = runtime_from(args)
    given = given_minutes(args)
    if args.validate and args.preset != AUTO:
        raise NasError(f"--preset {args.preset} --validate: a truth run trains the study's recipe as "
                       "searched; leave out --preset")
    name, storage = study_args(args)
    split = "val" if args.validate else "test"
    # the twin's folder beside the best's, each truth's beside its test run's
    default = ("best" if args.trial is None else f"trial-{args.trial}") + ("-val" if args.validate else "")
    out = Path(args.out or DEFAULT_RUNS / name / default)
    check_run_folder(out, None, args.resume)  # the recipe is compared once the study gives it
    check_creatable(out, "--out", out)
    study = load_existing(name, storage)
    trial = best_trial(study, args.trial)
    settings = settings_of(study)
    # the recipe the study's trials were trained with: for the truth (--validate) as searched, at
    # the calibration's truth epochs; for the test, with the preset for its epochs; flags on top
    base = None if args.validate else recipe_from_dict(settings.recipe, f"study {name}")
    recipe = recipe_from(args, truth_recipe(study) if base is None
                         else replace(base, epochs=args.epochs or FINAL_EPOCHS))
    # --epochs overrides the study's budget, --budget-minutes (or --time-of) replaces it
    minutes = (given if given is not None
               else 0.0 if args.epochs is not None else settings.budget_minutes)
    val_images = settings.fidelity.val_images
    spec = RunSpec(trial_design(study, trial), recipe, out, split, val_images=val_images,
                   resume=args.resume, command=args.command_line)
    preset = preset_of(args, out)
    spec = at_its_epochs(resumed(spec, minutes), args, base, preset)
    if any(run["out"] == str(out) for run in recorded_results(study, split).get(trial.number, [])):
        # recorded after the training: refused now, not after hours of it
        raise NasError(f"trial {trial.number} already has a {split} result from {out}: "
                       "choose another --out")
    data = checked_data(args, spec)
    spec = at_its_epochs(budgeted(spec, minutes, runtime, data), args, base, preset)
    recipe = spec.recipe
    how = (f"on the {len(data.train_labels) - val_images:,} search-training images for "
           f"{count(recipe.epochs, 'epoch')} with the study's recipe, scored on its {val_images:,} validation "
           "images (its truth; never the test set)" if args.validate else
           f"on all {len(data.train_labels):,} training images for {count(recipe.epochs, 'epoch')} with the "
           f"study's recipe ({knobs_line(recipe)})")
    if spec.plan:
        how += f"; {spec.plan.describe()}"
    truth = truths(study).get(trial.number)
    console.print(f"re-training trial {trial.number} of study {name} (val acc {trial.values[0]:.4f}"
                  f"{'' if truth is None else f', truth {truth:.4f}'}, "
                  f"{trial.user_attrs['n_params']:,} params) {how}; saving in {out}")
    try:
        metrics = train_and_test(spec, data, runtime)
    except KeyboardInterrupt:
        return interrupted(args, f"every finished epoch is saved in {out}")
    rival = {"time_of": args.time_of} if args.time_of else {}  # equal time with that run (finals)
    record_result(study, trial, recorded(metrics, out) | rival, split)
    console.print(result_line(metrics, out))
    return 0
