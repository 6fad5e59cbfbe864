"""The `nas` command line: the parser, and the one place where process-wide settings are made
(warning and logger filters, environment variables). Command bodies are in `nas.commands`."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings

from nas.budget import DEFAULT_MAX_FLOPS, Limits
from nas.errors import NasError
from nas.fill import SEARCH_FILL
from nas.study import Fidelity

DATA_HELP = ("CIFAR-10 folder (default: $NAS_DATA_DIR, else the nearest shared/data beside this "
             "folder or a parent, else ~/.cache/nas/data)")
STORAGE_HELP = "Optuna storage URL (default sqlite:///studies/nas.db, relative to this folder)"


def add_limit_args(parser: argparse.ArgumentParser) -> None:
    """--max-params / --max-flops / --min-rf: the hard budget."""
    defaults = Limits()
    parser.add_argument("--max-params", type=int, default=defaults.max_params,
                        help="parameters must be fewer than this (default %(default)s)")
    parser.add_argument("--max-flops", type=int, default=DEFAULT_MAX_FLOPS,
                        help="multiply-adds per image at most (default %(default)s, 2× the reference)")
    parser.add_argument("--min-rf", type=int, default=defaults.min_rf,
                        help="receptive field must be greater than this (default %(default)s)")


def add_fill_arg(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument("--fill-budget", type=float, default=default, metavar="F",
                        help="widen each sampled design by one common factor (widths in multiples "
                             "of 8) to use at least this share of the parameter budget, every rule "
                             "kept (default %(default)s; 0: off)")


def add_recipe_args(parser: argparse.ArgumentParser, epochs: bool = True) -> None:
    """The recipe's knobs (defaults: nas.recipe.Recipe's, shown by None here) and the runtime's;
    without `epochs` where something else sets them (calibrate's fidelities)."""
    if epochs:
        parser.add_argument("--epochs", type=int, help="default: 15 (train), 30 (train-best), 4 (search)")
    else:
        parser.set_defaults(epochs=None)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer", choices=["sgd", "adamw"])
    parser.add_argument("--lr", type=float, help="peak learning rate (default 0.2 sgd, 0.003 adamw)")
    parser.add_argument("--weight-decay", type=float, help="default 5e-4 sgd, 0.05 adamw")
    parser.add_argument("--schedule", choices=["onecycle", "cosine"])
    parser.add_argument("--warmup", type=float, help="OneCycle's rising share of the steps (0.25)")
    parser.add_argument("--label-smoothing", type=float)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--p-affine", type=float, help="probability of the shift-scale-rotate per image")
    parser.add_argument("--p-cutout", type=float, help="probability of the 16×16 mean-filled cutout per image")
    parser.add_argument("--augment", choices=["batched", "albumentations"],
                        help="augmentation engine: whole batches on the device (default), or "
                             "albumentations per image in loader workers (the reference)")
    parser.add_argument("--flip", choices=["random", "alternating"],
                        help="horizontal flip: a coin per image (default), or alternating: each "
                             "image mirrored on every other epoch (airbench; --augment batched)")
    parser.add_argument("--mixup", type=float, metavar="A", help="MixUp's Beta α (default 0: off)")
    parser.add_argument("--cutmix", type=float, metavar="A",
                        help="CutMix's Beta α (default 0: off); with --mixup, one of the two per batch")
    parser.add_argument("--mix-ramp", type=float, metavar="R",
                        help="share of the epochs over which the mixing probability rises from 0 "
                             "to 1 (default 0: mixing from the start)")
    parser.add_argument("--ema", type=float, metavar="D",
                        help="decay per step of an average of the weights, evaluated and saved "
                             "instead of them, e.g. 0.999 (default 0: off)")
    parser.add_argument("--no-decay-norm-bias", action="store_true", default=None,
                        help="no weight decay on BatchNorm weights and biases, nor on any bias "
                             "(train-best's default)")
    parser.add_argument("--decay-norm-bias", dest="no_decay_norm_bias", action="store_false",
                        default=None, help="weight decay on every parameter (default, but in train-best)")
    parser.add_argument("--norm-bias-lr-scale", type=float, metavar="F",
                        help="learning-rate factor of the BatchNorm biases (default 1; train-best 4)")
    runtime = parser.add_argument_group("where it runs (not part of the recipe)")
    add_runtime_args(runtime)


def add_runtime_args(runtime) -> None:
    """--device, --precision, --channels-last, --workers, --data-dir: where a training runs."""
    runtime.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    runtime.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    runtime.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                         help="channels_last memory format (default: on CUDA only)")
    runtime.add_argument("--workers", type=int, default=-1,
                         help="DataLoader workers (default: picked for the machine)")
    runtime.add_argument("--data-dir", default=None, help=DATA_HELP)


def add_run_args(parser: argparse.ArgumentParser, out_help: str) -> None:
    parser.add_argument("--out", help=out_help)
    parser.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")


def add_search_parser(sub, func) -> None:
    """`nas search`: the study, the fidelity, the pruner, workers, limits and the fixed recipe."""
    fidelity = Fidelity()
    se = sub.add_parser("search", help="search the space with Optuna, rules checked before training")
    se.add_argument("--trials", type=int, default=50,
                    help="run until the study holds this many finished trials (default 50)")
    se.add_argument("--study", help="study name (default: the space's name)")
    se.add_argument("--space", help="search-space file (default: the shipped c1c2c3c4o.toml)")
    se.add_argument("--storage", help=STORAGE_HELP + "; postgresql://... for many workers")
    se.add_argument("--data-fraction", type=float, default=fidelity.data_fraction,
                    help="fraction of the 45,000 search-training images per trial (default %(default)s)")
    se.add_argument("--val-images", type=int, default=fidelity.val_images,
                    help="size of the stratified validation hold-out (default %(default)s)")
    se.add_argument("--pruner", choices=["hyperband", "median", "none"], default="hyperband")
    se.add_argument("--second-objective", choices=["params", "flops"], default=None,
                    help="multi-objective: maximise val accuracy and minimise this (no pruner)")
    se.add_argument("--jobs", type=int, default=None,
                    help="trials at once on this machine, as worker processes sharing the study "
                         "(default: 1 on CPU, 4 on CUDA)")
    se.add_argument("--dry-run", action="store_true",
                    help="sample designs and judge them, no training, nothing stored")
    add_fill_arg(se, SEARCH_FILL)
    add_limit_args(se)
    add_recipe_args(se)
    se.set_defaults(func=func)


def add_calibrate_parser(sub, func) -> None:
    """`nas calibrate`: how well cheap fidelities and zero-cost proxies rank designs."""
    ca = sub.add_parser("calibrate", help="train a few designs at low fidelities and at a truth "
                        "fidelity: how well each cheap score (and each proxy) ranks them")
    ca.add_argument("--designs", type=int, default=10, metavar="K",
                    help="the reference's feasible twin and K-1 sampled feasible designs (default 10)")
    ca.add_argument("--fidelities", default="3x0.1,6x0.1,4x0.25,1x1.0",
                    help="low fidelities, EPOCHSxFRACTION of the 45,000 search-training images, "
                         "comma-separated (default %(default)s)")
    ca.add_argument("--truth", default="10x1.0", help="the fidelity ranked against (default %(default)s)")
    ca.add_argument("--out", help="results file, written after every training; a rerun continues "
                                  "it (default studies/calibration/calibration.json)")
    ca.add_argument("--show", action="store_true", help="print the table of --out, train nothing")
    ca.add_argument("--space", help="search-space file (default: the shipped c1c2c3c4o.toml)")
    ca.add_argument("--val-images", type=int, default=Fidelity().val_images,
                    help="size of the stratified validation hold-out (default %(default)s)")
    add_fill_arg(ca, 0.0)  # the committed calibration's designs are the sampled ones
    add_recipe_args(ca, epochs=False)  # of every training; --seed also seeds the design sampler
    ca.set_defaults(func=func)


def add_model_parsers(sub, predict, export) -> None:
    """`nas predict` and `nas export`: a finished run's model in use."""
    pr = sub.add_parser("predict", help="top classes of image files, from a finished run's model")
    pr.add_argument("run", help="a finished run folder (it holds model.pt), or a model.pt")
    pr.add_argument("images", nargs="+", help="PNG or JPEG files of any size (resized to 32×32)")
    pr.add_argument("--top", type=int, default=3, help="classes shown per image (default 3)")
    pr.set_defaults(func=predict)

    ex = sub.add_parser("export", help="a self-contained ONNX model of a finished run")
    ex.add_argument("run", help="a finished run folder (it holds model.pt), or a model.pt")
    ex.add_argument("--format", choices=["onnx"], default="onnx")
    ex.add_argument("--input", choices=["uint8", "float"], default="uint8",
                    help="uint8 images 0-255 (default) or float32 in [0, 1]; normalisation is inside")
    ex.add_argument("--out", help="the file to write (default RUN/model-INPUT.onnx)")
    ex.set_defaults(func=export)


def build_parser() -> argparse.ArgumentParser:
    from nas import commands

    parser = argparse.ArgumentParser(prog="nas", description=(
        "Search small CIFAR-10 classifiers of the shape C1C2C3C4O under a hard budget: every rule "
        "is checked before training. Guide: README.md; details: docs/."))
    sub = parser.add_subparsers(dest="command", required=True)

    show = sub.add_parser("show", help="layers, totals and the budget verdict of a config")
    show.add_argument("config", help="a .toml or .json architecture config, or 'reference'")
    show.add_argument("--json", action="store_true", help="print totals and verdict as JSON")
    add_limit_args(show)
    show.set_defaults(func=commands.show)

    tr = sub.add_parser("train", help="train one design on CIFAR-10 and test it")
    tr.add_argument("config", help="a .toml or .json architecture config, or 'reference'")
    add_run_args(tr, "run folder (default studies/<design name>)")
    tr.add_argument("--validate", action="store_true",
                    help="train on 45,000 and evaluate on the 5,000 validation images, not the test set")
    tr.add_argument("--data-fraction", type=float, default=1.0,
                    help="train on a stratified fraction of the training images")
    add_recipe_args(tr)
    tr.set_defaults(func=commands.train)
    add_search_parser(sub, commands.search)

    tb = sub.add_parser("train-best", help="re-train the best trial on all training images, test it")
    tb.add_argument("--study", default="c1c2c3c4o")
    tb.add_argument("--storage", help=STORAGE_HELP)
    tb.add_argument("--trial", type=int, help="this trial instead of the best")
    add_run_args(tb, "run folder (default studies/<study>/best, or .../trial-N with --trial)")
    add_recipe_args(tb)
    tb.set_defaults(func=commands.train_best)

    rp = sub.add_parser("report", help="the study as a table; --markdown writes a results document")
    rp.add_argument("--study", default="c1c2c3c4o")
    rp.add_argument("--storage", help=STORAGE_HELP)
    rp.add_argument("--markdown", help="write a results document (and PNG plots beside it) here")
    rp.add_argument("--compare", action="append", default=[], metavar="RUN_DIR",
                    help="a finished run folder (e.g. the reference's) whose accuracy against "
                    "epochs the document plots beside the best design's; repeatable")
    rp.set_defaults(func=commands.report)

    data = sub.add_parser("data", help="fetch or check CIFAR-10")
    data.add_argument("action", choices=["download", "check"])
    data.add_argument("--data-dir", default=None, help=DATA_HELP)
    data.set_defaults(func=commands.data)

    add_calibrate_parser(sub, commands.calibrate)
    add_model_parsers(sub, commands.predict, commands.export)
    return parser


def quiet_libraries() -> None:
    """Process-wide settings, made here and not on import: no update check over the network by
    albumentations (training machines have no route out), no experimental-feature warnings from
    Optuna, and Optuna's own "trial failed" lines left out (each reason is shown once, by us)."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    warnings.filterwarnings("ignore", module="optuna")
    warnings.filterwarnings("ignore", category=FutureWarning, module="fvcore")
    logging.getLogger("optuna").setLevel(logging.ERROR)
    logging.getLogger("fvcore").setLevel(logging.ERROR)  # "tracer warning" chatter on stderr


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    quiet_libraries()
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, so that a reader gone early (`| head`) is handled below, not at exit
        return code
    except NasError as err:
        print(f"nas: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a Ctrl-C outside a command's own handling: no traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("nas: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nas show ... | head` closed the pipe: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
