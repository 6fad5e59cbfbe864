"""The `nas` command line. Each subcommand is a thin shell over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)

from nas.budget import DEFAULT_MAX_FLOPS, Limits
from nas.errors import NasError

# Output to a file or pipe gets 160 columns (unless $COLUMNS says otherwise): rich's fallback of 80
# wraps the report's cells over several lines.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 160)


def add_limit_args(parser: argparse.ArgumentParser) -> None:
    """--max-params / --max-flops / --min-rf: the hard budget."""
    defaults = Limits()
    parser.add_argument("--max-params", type=int, default=defaults.max_params,
                        help="parameters must be fewer than this (default %(default)s)")
    parser.add_argument("--max-flops", type=int, default=DEFAULT_MAX_FLOPS,
                        help="multiply-adds per image at most (default %(default)s, 2× the reference)")
    parser.add_argument("--min-rf", type=int, default=defaults.min_rf,
                        help="receptive field must be greater than this (default %(default)s)")


def limits_from(args: argparse.Namespace) -> Limits:
    """The budget named on the command line; impossible values are rejected."""
    for name in ("max_params", "max_flops", "min_rf"):
        if getattr(args, name) < (0 if name == "min_rf" else 1):
            raise NasError(f"--{name.replace('_', '-')} {getattr(args, name)} is impossible: "
                           "give a positive number")
    return Limits(args.max_params, args.max_flops, args.min_rf)


def add_recipe_args(parser: argparse.ArgumentParser, epochs: int) -> None:
    """The training recipe's knobs; defaults are `nas.train.Recipe`'s."""
    from nas.train import Recipe

    r = Recipe()
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=r.batch_size)
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], default=r.optimizer)
    parser.add_argument("--lr", type=float, default=None,
                        help=f"peak learning rate (default {r.lr} for sgd, 0.003 for adamw)")
    parser.add_argument("--weight-decay", type=float, default=None,
                        help=f"default {r.weight_decay} for sgd, 0.05 for adamw")
    parser.add_argument("--schedule", choices=["onecycle", "cosine"], default=r.schedule)
    parser.add_argument("--label-smoothing", type=float, default=r.label_smoothing)
    parser.add_argument("--seed", type=int, default=r.seed)
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=r.device)
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=r.precision)
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                        help="channels_last memory format (default: on CUDA only; on CPU it is "
                             "faster for some designs)")
    parser.add_argument("--p-affine", type=float, default=r.augment.p_affine,
                        help="probability of the shift-scale-rotate per image")
    parser.add_argument("--p-cutout", type=float, default=r.augment.p_cutout,
                        help="probability of the 16×16 mean-filled cutout per image")
    parser.add_argument("--workers", type=int, default=r.workers,
                        help="DataLoader workers (default: picked for the machine)")
    parser.add_argument("--data-dir", default=None,
                        help="CIFAR-10 folder (default: $NAS_DATA_DIR, else ../shared/data, "
                             "else ~/.cache/nas/data)")


def recipe_from(args: argparse.Namespace):
    from nas.augment import AugmentConfig
    from nas.train import Recipe

    if args.epochs < 1 or args.batch_size < 1:
        raise NasError("--epochs and --batch-size must be positive")
    adamw = args.optimizer == "adamw"
    return Recipe(epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                  lr=args.lr if args.lr is not None else (3e-3 if adamw else Recipe.lr),
                  weight_decay=args.weight_decay if args.weight_decay is not None
                  else (0.05 if adamw else Recipe.weight_decay),
                  schedule=args.schedule, label_smoothing=args.label_smoothing, seed=args.seed,
                  device=args.device, precision=args.precision, workers=args.workers,
                  channels_last=args.channels_last,
                  augment=AugmentConfig(p_affine=args.p_affine, p_cutout=args.p_cutout))


def training_progress() -> Progress:
    """Bars for the run and the current epoch: loss, accuracy, images/s, ETA."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), console=console)


def epoch_printer(split: str):
    """One console line per finished epoch."""
    def report(log) -> None:
        console.print(f"epoch {log.epoch:>3}  train loss {log.train_loss:.4f} acc {log.train_acc:.4f}"
                      f"  {split} loss {log.eval_loss:.4f} acc {log.eval_acc:.4f}  "
                      f"{log.seconds:.0f} s  {log.images_per_s:,.0f} img/s", soft_wrap=True)
    return report


def cmd_train(args: argparse.Namespace) -> int:
    from nas.config import load_config
    from nas.data import load_cifar10, resolve_data_dir
    from nas.run import train_run

    config = load_config(args.config)
    recipe = recipe_from(args)
    out = Path(args.out or Path("studies") / config.name)
    data = load_cifar10(resolve_data_dir(args.data_dir))
    command = "nas " + " ".join(args.argv)

    try:
        with training_progress() as progress:
            metrics = train_run(config, recipe, data, out, resume=args.resume,
                                final=not args.validate, fraction=args.data_fraction,
                                command=command, progress=progress,
                                on_epoch=epoch_printer("val" if args.validate else "test"))
    except KeyboardInterrupt:
        again = command if args.resume else f"{command} --resume"
        print(f"nas: interrupted; every finished epoch is saved in {out}. Continue with: {again}",
              file=sys.stderr)
        return 130
    console.print(f"[bold]{metrics['eval_split']} accuracy {metrics['accuracy'] * 100:.2f}%[/] after "
                  f"{metrics['epochs']} epochs, {metrics['wall_seconds'] / 60:.1f} min; saved in {out}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from nas.data import load_cifar10, resolve_data_dir
    from nas.search import DEFAULT_STORAGE, Fidelity, dry_run, run_search
    from nas.space import load_space

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space(args.space)
    limits = limits_from(args)
    if args.trials < 1:
        raise NasError(f"--trials {args.trials}: give a positive number of trials")
    if args.dry_run:
        stats = dry_run(space, limits, args.trials, args.seed)
        console.print(f"dry run of {stats['trials']} sampled designs (verdicts only, no training): "
                      f"{stats['infeasible']} infeasible ({stats['infeasible_fraction']:.1%}); "
                      f"broken rules {stats['broken']}; {stats['seconds']} s, "
                      f"{stats['ms_per_verdict']} ms per design")
        return 0
    recipe = recipe_from(args)
    fidelity = Fidelity(epochs=args.epochs, data_fraction=args.data_fraction,
                        val_images=args.val_images)
    name = args.study or space.name
    storage = args.storage or DEFAULT_STORAGE
    data = load_cifar10(resolve_data_dir(args.data_dir))
    again = "nas " + " ".join(args.argv)
    try:
        study = run_search(study_name=name, storage_url=storage, space=space, limits=limits,
                           recipe=recipe, fidelity=fidelity, n_trials=args.trials,
                           pruner_name=args.pruner, second=args.second_objective, data=data,
                           progress=training_progress(), console=console)
    except KeyboardInterrupt:
        print(f"nas: interrupted; the running trial is marked failed, every finished trial is "
              f"kept in {storage}. Continue with: {again}", file=sys.stderr)
        return 130
    from nas.search import trial_counts

    console.print(f"study {name} in {storage}: {trial_counts(study)}; see it with: "
                  f"nas report --study {name}" + ("" if storage == DEFAULT_STORAGE else f" --storage {storage}"))
    return 0


def cmd_train_best(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from nas.data import load_cifar10, resolve_data_dir
    from nas.run import train_run
    from nas.search import DEFAULT_STORAGE, trial_config
    from nas.study import best_trial, load_existing, record_test_result

    storage = args.storage or DEFAULT_STORAGE
    study = load_existing(args.study, storage)
    trial = best_trial(study, args.trial)
    config = trial_config(trial)
    recipe = recipe_from(args)
    searched = trial.user_attrs.get("recipe", {})  # the trial's sampled lr and weight decay
    recipe = replace(recipe, lr=args.lr if args.lr is not None else searched.get("lr", recipe.lr),
                     weight_decay=args.weight_decay if args.weight_decay is not None
                     else searched.get("weight_decay", recipe.weight_decay))
    out = Path(args.out or Path("studies") / args.study / "best")
    data = load_cifar10(resolve_data_dir(args.data_dir))
    command = "nas " + " ".join(args.argv)
    console.print(f"re-training trial {trial.number} of study {args.study} (val acc "
                  f"{trial.values[0]:.4f}, {trial.user_attrs['n_params']:,} params) on all 50,000 "
                  f"training images for {recipe.epochs} epochs; saving in {out}")
    try:
        with training_progress() as progress:
            metrics = train_run(config, recipe, data, out, resume=args.resume, final=True,
                                command=command, progress=progress, on_epoch=epoch_printer("test"))
    except KeyboardInterrupt:
        again = command if args.resume else f"{command} --resume"
        print(f"nas: interrupted; every finished epoch is saved in {out}. Continue with: {again}",
              file=sys.stderr)
        return 130
    record_test_result(study, trial, {"accuracy": metrics["accuracy"], "epochs": metrics["epochs"],
                                      "out": str(out), "wall_seconds": metrics["wall_seconds"]})
    console.print(f"[bold]test accuracy {metrics['accuracy'] * 100:.2f}%[/] after "
                  f"{metrics['epochs']} epochs, {metrics['wall_seconds'] / 60:.1f} min; saved in {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from nas.report import rich_table, write_markdown
    from nas.search import DEFAULT_STORAGE
    from nas.study import load_existing

    storage = args.storage or DEFAULT_STORAGE
    study = load_existing(args.study, storage)
    if not study.trials:
        console.print(f"study {args.study} has no trials yet: run nas search --study {args.study}")
        return 0
    console.print(rich_table(study))
    if args.markdown:
        files = write_markdown(study, Path(args.markdown))
        console.print(f"wrote {', '.join(map(str, files))}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from nas.data import download_cifar10, load_cifar10, resolve_data_dir, verify_cifar10

    data_dir = resolve_data_dir(args.data_dir)
    if args.action == "download":
        folder = download_cifar10(data_dir, log=console.print)
    else:
        folder = verify_cifar10(data_dir)
    data = load_cifar10(folder)
    console.print(f"CIFAR-10 in {folder}: {len(data.train_labels):,} training and "
                  f"{len(data.test_labels):,} test images, md5s match the official release")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from nas.budget import check
    from nas.config import load_config
    from nas.summary import render

    config = load_config(args.config)
    verdict = check(config, limits_from(args))
    if args.json:
        print(json.dumps({"config": args.config, **verdict.to_dict()}, indent=2))
    else:
        console.print(render(config, verdict))
        console.print("FLOPs are fvcore's count: one multiply-add = one FLOP, for one image.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    show = sub.add_parser("show", help="layers, totals and the budget verdict of a config")
    show.add_argument("config", help="a .toml or .json architecture config")
    show.add_argument("--json", action="store_true", help="print totals and verdict as JSON")
    add_limit_args(show)
    show.set_defaults(func=cmd_show)

    tr = sub.add_parser("train", help="train one design on CIFAR-10 and test it")
    tr.add_argument("config", help="a .toml or .json architecture config")
    tr.add_argument("--out", help="run folder (default studies/<design name>)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument("--validate", action="store_true",
                    help="train on 45,000 and evaluate on the 5,000 validation images, not the test set")
    tr.add_argument("--data-fraction", type=float, default=1.0,
                    help="train on a stratified fraction of the training images")
    add_recipe_args(tr, epochs=15)
    tr.set_defaults(func=cmd_train)

    se = sub.add_parser("search", help="search the space with Optuna, rules checked before training")
    se.add_argument("--trials", type=int, default=50,
                    help="run until the study holds this many finished trials (default 50)")
    se.add_argument("--study", help="study name (default: the space's name)")
    se.add_argument("--space", default="search_spaces/c1c2c3c4o.toml", help="search-space file")
    se.add_argument("--storage", help="Optuna storage URL (default sqlite:///studies/nas.db; "
                                      "postgresql://... for many workers)")
    se.add_argument("--data-fraction", type=float, default=0.1,
                    help="fraction of the 45,000 search-training images per trial (default 0.1)")
    se.add_argument("--val-images", type=int, default=5_000,
                    help="size of the stratified validation hold-out (default 5000)")
    se.add_argument("--pruner", choices=["hyperband", "median", "none"], default="hyperband")
    se.add_argument("--second-objective", choices=["params", "flops"], default=None,
                    help="multi-objective: maximise val accuracy and minimise this (no pruner)")
    se.add_argument("--dry-run", action="store_true",
                    help="sample designs and judge them, no training, nothing stored")
    add_limit_args(se)
    add_recipe_args(se, epochs=3)
    se.set_defaults(func=cmd_search)

    tb = sub.add_parser("train-best", help="re-train the best trial on all training images, test it")
    tb.add_argument("--study", default="c1c2c3c4o")
    tb.add_argument("--storage", help="Optuna storage URL (default sqlite:///studies/nas.db)")
    tb.add_argument("--trial", type=int, help="this trial instead of the best")
    tb.add_argument("--out", help="run folder (default studies/<study>/best)")
    tb.add_argument("--resume", action="store_true", help="continue the run in --out")
    add_recipe_args(tb, epochs=30)
    tb.set_defaults(func=cmd_train_best)

    rp = sub.add_parser("report", help="the study as a table; --markdown writes a results document")
    rp.add_argument("--study", default="c1c2c3c4o")
    rp.add_argument("--storage", help="Optuna storage URL (default sqlite:///studies/nas.db)")
    rp.add_argument("--markdown", help="write a results document (and PNG plots beside it) here")
    rp.set_defaults(func=cmd_report)

    data = sub.add_parser("data", help="fetch or check CIFAR-10")
    data.add_argument("action", choices=["download", "check"])
    data.add_argument("--data-dir", default=None, help="target folder (default as for train)")
    data.set_defaults(func=cmd_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    try:
        return args.func(args)
    except NasError as err:
        print(f"nas: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
