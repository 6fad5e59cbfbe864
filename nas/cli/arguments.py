"""From the command line's arguments to the library's objects (limits, recipe, runtime), and the
checks that need no data: made before anything is read or written, so that bad input costs
nothing and leaves the disk as it was."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from nas.data.cifar10 import CLASSES, one_line
from nas.design.config import ArchConfig
from nas.design.limits import Limits
from nas.errors import NasError
from nas.search.settings import DEFAULT_STORAGE, default_study
from nas.training.presets import with_preset
from nas.training.recipe import Recipe

if TYPE_CHECKING:
    from nas.training.runtime import Runtime


def limits_from(args: argparse.Namespace) -> Limits:
    """The limits named on the command line; impossible values are rejected."""
    for name in ("max_params", "max_flops", "min_rf"):
        if getattr(args, name) < (0 if name == "min_rf" else 1):
            raise NasError(f"--{name.replace('_', '-')} {getattr(args, name)} is impossible: "
                           f"give {'0 or more' if name == 'min_rf' else 'a positive number'}")
    return Limits(args.max_params, args.max_flops, args.min_rf)


def recipe_from(args: argparse.Namespace, base: Recipe = Recipe()) -> Recipe:
    """The recipe: `base` with the flags given on the command line."""
    names = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "warmup",
             "label_smoothing", "seed", "ema", "no_decay_norm_bias", "norm_bias_lr_scale",
             "mixup", "cutmix", "mix_ramp", "whiten_init")
    given = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    augment = {k: v for k, v in (("p_affine", args.p_affine), ("p_cutout", args.p_cutout),
                                 ("engine", args.augment), ("flip", args.flip)) if v is not None}
    if given.get("optimizer", base.optimizer) != base.optimizer:  # its own lr and decay defaults
        given = {"lr": None, "weight_decay": None} | given
    return replace(base, **given, augment=replace(base.augment, **augment))


def preset_recipe(args: argparse.Namespace, base: Recipe, epochs: int, preset: str,
                  design: ArchConfig) -> Recipe:
    """The recipe of a final training of `design` for `epochs` epochs: `base`, the `preset` for
    them laid over it (the knobs the design takes), and the flags given over that."""
    return recipe_from(args, with_preset(base, preset, epochs, design))


def runtime_from(args: argparse.Namespace) -> Runtime:
    """Where it runs: the flags given, the rest picked for this machine by `Runtime.pick`."""
    from nas.training.runtime import Runtime

    given = {name: getattr(args, name, None)  # `nas show --speed` has no --workers
             for name in ("device", "precision", "workers", "channels_last")}
    return Runtime.pick(**{name: value for name, value in given.items() if value is not None})


def study_args(args: argparse.Namespace) -> tuple[str, str]:
    """--study and --storage, each its default when not given."""
    return args.study or default_study(), args.storage or DEFAULT_STORAGE


def interrupted(args: argparse.Namespace, saved: str) -> int:
    """Exit code 130 after Ctrl-C, with what was kept and the command that continues."""
    again = args.command_line
    if "--resume" not in args.argv and args.command not in ("search", "calibrate", "screen"):
        again += " --resume"
    print(f"nas: interrupted; {saved}. Continue with: {again}", file=sys.stderr)
    return 130


def check_creatable(folder: Path, flag: str, given: Path) -> None:
    """NasError when `folder` could not be made because a file, or an unwritable folder, stands
    where it or a parent would go; creates nothing, so that bad input leaves the disk as it was."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NasError(f"{flag} {given}: {existing} is a file, not a folder; choose another {flag}")
    # root passes os.access everywhere, but not /proc or /sys (mode r-x for all): no write bit is refused too
    if not os.access(existing, os.W_OK | os.X_OK) or not existing.stat().st_mode & 0o222:
        raise NasError(f"{flag} {given}: cannot write in {existing}; choose another {flag}")


def check_storage_url(url: str) -> None:
    """NasError for a storage URL that names no database SQLAlchemy knows, or a SQLite file that
    could not be made: checked before the data is read; a server is reached only when the study
    is opened."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError) as err:
        raise NasError(f"cannot open storage {url}: {one_line(err)}; give e.g. "
                       "sqlite:///studies/nas.db or postgresql://USER@HOST/DB") from None
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if path.is_dir():
            raise NasError(f"--storage {url}: {path} is a folder; name a database file in it, "
                           f"e.g. sqlite:///{path / 'nas.db'}")
        check_creatable(path.parent, "--storage", url)


def check_fits_cifar10(config: ArchConfig) -> None:
    """NasError when a design cannot take CIFAR-10's 3×32×32 images and 10 classes: `nas show`
    may measure it, training it would fail only after the data is read."""
    wanted = {"in_channels": 3, "input_size": 32, "num_classes": len(CLASSES)}
    if bad := [f"{k} = {getattr(config, k)}" for k, v in wanted.items() if getattr(config, k) != v]:
        raise NasError(f"design {config.name} has {', '.join(bad)}, but CIFAR-10 has 3×32×32 images "
                       f"of 10 classes: set {', '.join(f'{k} = {v}' for k, v in wanted.items())}")


def check_run(config: ArchConfig, recipe: Recipe, out: Path, resume: bool, fraction: float) -> int:
    """Every check of a training run that needs no data, made before the data is read
    (`train_run` repeats the ones it needs itself); the epochs already done in `out`."""
    from nas.design.rules import ensure_buildable
    from nas.training.run import check_run_folder

    if not 0 < fraction <= 1:
        raise NasError(f"--data-fraction {fraction}: must be in (0, 1]")
    check_fits_cifar10(config)
    ensure_buildable(config)
    done = check_run_folder(out, recipe, resume, config)
    check_creatable(out, "--out", out)
    return done
