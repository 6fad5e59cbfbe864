"""`nas train` and `nas train-best`: one design trained and tested, with bars and a line per epoch."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from nas.cli.arguments import (check_creatable, check_run, interrupted, recipe_from, runtime_from,
                               study_args)
from nas.cli.views import TrainingBars, console
from nas.data.cifar10 import Cifar10, load_cifar10
from nas.data.settings import VAL_IMAGES, resolve_data_dir
from nas.design.config import ArchConfig
from nas.design.files import load_config, resolve_design
from nas.errors import NasError
from nas.training.recipe import FINAL, Recipe, recipe_from_dict
from nas.training.runtime import Runtime


def checked_data(args: argparse.Namespace, config: ArchConfig, recipe: Recipe, out: Path,
                 fraction: float) -> Cifar10:
    """Every check of the run that needs no data, then the data: a mistake is named before
    anything is read or shown."""
    check_run(config, recipe, out, args.resume, fraction)
    return load_cifar10(resolve_data_dir(args.data_dir))


def train_and_test(args: argparse.Namespace, config: ArchConfig, recipe: Recipe, runtime: Runtime,
                   data: Cifar10, out: Path, final: bool, fraction: float,
                   val_images: int = VAL_IMAGES, budget: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """Train and test one design into `out` (or, not `final`, score it on the `val_images`
    hold-out), with bars and a line per epoch; `budget`: the time budget its epochs fill."""
    from nas.training.run import train_run

    with TrainingBars(console, "test" if final else "val") as progress:
        return train_run(config, recipe, runtime, data, out, resume=args.resume, final=final,
                         fraction=fraction, command=args.command_line, progress=progress,
                         val_images=val_images, budget=budget,
                         on_resume=lambda epoch: console.print(f"resuming from epoch {epoch}"))


def train(args: argparse.Namespace) -> int:
    check_budget_flags(args)
    config = load_config(resolve_design(args.config))
    out = Path(args.out or Path("studies") / config.name)
    runtime = runtime_from(args)
    minutes = args.budget_minutes or 0.0
    recipe, plan = resumed_plan(out, minutes, args.resume, recipe_from(args))
    data = checked_data(args, config, recipe, out, args.data_fraction)
    eval_images = VAL_IMAGES if args.validate else len(data.test_labels)
    train_images = round((len(data.train_labels) - (VAL_IMAGES if args.validate else 0)) * args.data_fraction)
    recipe, plan = planned(out, minutes, plan, config, recipe, runtime, train_images, eval_images)
    if plan:
        console.print(f"training {config.name}: {plan_line(plan, recipe)}; saving in {out}")
    try:
        metrics = train_and_test(args, config, recipe, runtime, data, out, not args.validate,
                                 args.data_fraction, budget=plan)
    except KeyboardInterrupt:
        return interrupted(args, f"every finished epoch is saved in {out}")
    console.print(f"[bold]{metrics['eval_split']} accuracy {metrics['accuracy'] * 100:.2f}%[/] after "
                  f"{metrics['epochs']} epochs, {metrics['wall_seconds'] / 60:.1f} min; saved in {out}")
    return 0


def knobs_line(recipe: Recipe) -> str:
    """What train-best's recipe adds to the study's: the final schedule's knobs, as set."""
    return (f"lr {recipe.lr:g}, weight decay {recipe.weight_decay:g}, "
            f"{'no decay' if recipe.no_decay_norm_bias else 'decay'} on BatchNorm and biases, "
            f"BatchNorm-bias lr ×{recipe.norm_bias_lr_scale:g}")


PLAN = "budget.json"  # a run folder's time budget: the epochs it fills, and the speed they came from


def read_plan(out: Path) -> dict[str, Any]:
    """The time budget a run to resume started with (its epochs must not change)."""
    try:
        return json.loads((out / PLAN).read_text())
    except (OSError, ValueError) as err:
        raise NasError(f"cannot read {out / PLAN} ({type(err).__name__}), the epochs this run's "
                       "budget gave: resume with --epochs N, or start a new run with another --out") from None


def check_budget_flags(args: argparse.Namespace) -> None:
    """--budget-minutes (None: not given) can be a budget, and is not given with --epochs."""
    from nas.search.settings import check_budget

    if args.budget_minutes is not None:
        check_budget(args.budget_minutes)
        if args.budget_minutes and args.epochs is not None:
            raise NasError(f"--epochs {args.epochs} --budget-minutes {args.budget_minutes:g}: give one of them")


def resumed_plan(out: Path, minutes: float, resume: bool, recipe: Recipe
                 ) -> tuple[Recipe, dict[str, Any] | None]:
    """A resumed budgeted run keeps the epochs its budget gave when it started."""
    plan = read_plan(out) if minutes and resume else None
    return (replace(recipe, epochs=plan["epochs"]), plan) if plan else (recipe, None)


def planned(out: Path, minutes: float, plan: dict[str, Any] | None, config: ArchConfig,
            recipe: Recipe, runtime: Runtime, train_images: int, eval_images: int
            ) -> tuple[Recipe, dict[str, Any] | None]:
    """The recipe at the epochs that fit `minutes` at the design's speed measured on this device
    now (`PLAN_TIMING`), the plan the run starts with (its `Deadline` re-plans it after every
    epoch), written to the run folder first, so that a resumed run keeps it; as it is without a
    budget or with a `plan`."""
    from nas.training.speed import PLAN_TIMING, measure_speed
    from nas.training.timebox import budget_plan

    if not minutes or plan:
        return recipe, plan
    speed = measure_speed(config, recipe, runtime, timing=PLAN_TIMING)
    plan = budget_plan(minutes, speed, train_images, eval_images, runtime.device_name())
    out.mkdir(parents=True, exist_ok=True)
    (out / PLAN).write_text(json.dumps(plan, indent=1) + "\n")
    return replace(recipe, epochs=plan["epochs"]), plan


def plan_line(plan: dict[str, Any], recipe: Recipe) -> str:
    return (f"a budget of {plan['budget_minutes']:g} min, planned at {recipe.epochs} epochs of "
            f"{plan['epoch_seconds']:.1f} s measured here, re-planned after every epoch")


def train_best(args: argparse.Namespace) -> int:
    from nas.search.settings import truth_epochs
    from nas.search.storage import load_existing
    from nas.search.trials import (best_trial, record_result, recorded_results, settings_of,
                                   trial_design, truths)
    from nas.training.run import check_run_folder

    # the checks that need no study first, so that a bad flag is named whatever the storage holds
    recipe_from(args)
    runtime = runtime_from(args)
    check_budget_flags(args)
    name, storage = study_args(args)
    split = "val" if args.validate else "test"
    # the twin's folder beside the best's, each truth's beside its test run's
    default = ("best" if args.trial is None else f"trial-{args.trial}") + ("-val" if args.validate else "")
    out = Path(args.out or Path("studies") / name / default)
    check_run_folder(out, None, args.resume)  # the recipe is compared once the study gives it
    check_creatable(out, "--out", out)
    study = load_existing(name, storage)
    trial = best_trial(study, args.trial)
    config = trial_design(study, trial)
    settings = settings_of(study)
    # the recipe the study's trials were trained with: for the truth (--validate) as searched, at
    # the calibration's truth epochs; for the test, made FINAL; flags given change it
    searched = recipe_from_dict(settings.recipe, f"study {name}")
    recipe = recipe_from(args, replace(searched, epochs=truth_epochs()) if args.validate
                         else replace(searched, **FINAL))
    # --epochs overrides the study's budget, --budget-minutes replaces it
    minutes = (args.budget_minutes if args.budget_minutes is not None
               else 0.0 if args.epochs is not None else settings.budget_minutes)
    recipe, plan = resumed_plan(out, minutes, args.resume, recipe)
    check_run_folder(out, recipe, args.resume)
    if any(run["out"] == str(out) for run in recorded_results(study, split).get(trial.number, [])):
        # recorded after the training: refused now, not after hours of it
        raise NasError(f"trial {trial.number} already has a {split} result from {out}: "
                       "choose another --out")
    data = checked_data(args, config, recipe, out, 1.0)
    val_images = settings.fidelity.val_images
    recipe, plan = planned(out, minutes, plan, config, recipe, runtime,
                           len(data.train_labels) - (val_images if args.validate else 0),
                           val_images if args.validate else len(data.test_labels))
    how = (f"on the {len(data.train_labels) - val_images:,} search-training images for "
           f"{recipe.epochs} epochs with the study's recipe, scored on its {val_images:,} validation "
           "images (its truth; never the test set)" if args.validate else
           f"on all {len(data.train_labels):,} training images for {recipe.epochs} epochs with the "
           f"study's recipe ({knobs_line(recipe)})")
    if plan:
        how += f"; {plan_line(plan, recipe)}"
    truth = truths(study).get(trial.number)
    console.print(f"re-training trial {trial.number} of study {name} (val acc {trial.values[0]:.4f}"
                  f"{'' if truth is None else f', truth {truth:.4f}'}, "
                  f"{trial.user_attrs['n_params']:,} params) {how}; saving in {out}")
    try:
        metrics = train_and_test(args, config, recipe, runtime, data, out, not args.validate, 1.0,
                                 val_images, plan)
    except KeyboardInterrupt:
        return interrupted(args, f"every finished epoch is saved in {out}")
    record_result(study, trial, {"accuracy": metrics["accuracy"], "epochs": metrics["epochs"],
                                 "out": str(out), "wall_seconds": metrics["wall_seconds"],
                                 **({"budget_minutes": plan["budget_minutes"]} if plan else {})}, split)
    console.print(f"[bold]{split} accuracy {metrics['accuracy'] * 100:.2f}%[/] after "
                  f"{metrics['epochs']} epochs, {metrics['wall_seconds'] / 60:.1f} min; saved in {out}")
    return 0
