"""The `nas` command line's parser: every command and flag, with the defaults read from the objects
they belong to (`Recipe`, `Fidelity`, `Limits`, `CalibrationSettings`, ...).

Only light modules are imported here (no torch, no optuna), so that `nas --help` and a mistyped
flag answer at once; each command's module is imported when that command runs (`func` names it).
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from nas.data.settings import DATA_ENV, DEFAULT_DATA_DIR
from nas.design.limits import Limits
from nas.search.settings import (DEFAULT_CALIBRATION, DEFAULT_RUNS, DEFAULT_STORAGE, DEFAULT_TRIALS,
                                 EQUAL_EPOCHS, EQUAL_TIME, MIDDLE_LENGTH, PACES, PRUNERS, SAMPLERS,
                                 SEARCH_SAMPLER, TIME_FIDELITIES, TIME_SHARE, TIME_TRUTH_FIDELITY,
                                 TWIN_EPOCHS, CalibrationSettings, Fidelity, truth_epochs)
from nas.training.presets import CHOICES as PRESET_CHOICES, PRESETS, presets_help
from nas.training.recipe import FINAL_EPOCHS, OPTIMIZER_DEFAULTS, Recipe

DATA_HELP = f"CIFAR-10 folder (default: ${DATA_ENV}, else {DEFAULT_DATA_DIR})"
STORAGE_HELP = f"Optuna storage URL (default {DEFAULT_STORAGE}, relative to this folder)"
TOP = 3  # `nas predict`: classes shown per image


def add_limit_args(parser: argparse.ArgumentParser) -> None:
    """--max-params / --max-flops / --min-rf: the limits."""
    limits = Limits()
    parser.add_argument("--max-params", type=int, default=limits.max_params,
                        help="parameters must be fewer than this (default %(default)s)")
    parser.add_argument("--max-flops", type=int, default=limits.max_flops,
                        help="multiply-adds per image at most (default %(default)s, 2× the reference)")
    parser.add_argument("--min-rf", type=int, default=limits.min_rf,
                        help="receptive field must be greater than this (default %(default)s)")


def add_fill_arg(parser: argparse.ArgumentParser, default: float | None, shown: str) -> None:
    parser.add_argument("--fill-params", type=float, default=default, metavar="F",
                        help="widen each sampled design by one common factor (widths in multiples "
                             "of 8) to use at least this share of the parameter limit, every rule "
                             f"kept (default {shown}; 0: off)")
    add_old_name(parser, "--fill-budget", "fill_params", float)


def add_old_name(parser: argparse.ArgumentParser, flag: str, dest: str, kind: type) -> None:
    """A flag's name before a rename, still read (scripts and commands written then), not shown."""
    parser.add_argument(flag, dest=dest, type=kind, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_recipe_args(parser: argparse.ArgumentParser, base: Recipe | None,
                    epochs: int | str | None, presets: bool = False) -> None:
    """The recipe's knobs, each None unless given (`recipe_from` lays them over the command's base
    recipe, or over the preset laid over it); the help shows `base`'s values, or says the study's
    for train-best (`base` None), and with `presets` (--preset) what each preset sets. `epochs`:
    the default the help names; None: something else sets them (calibrate's fidelities)."""
    def default(name: str) -> str:
        shown = "default: the study's" if base is None else f"default {getattr(base, name)}"
        set_by = [f"{p.name} {p.knobs[name]}" for p in PRESETS if name in p.knobs] if presets else []
        return shown + (f"; the presets: {', '.join(set_by)}" if set_by else "")

    aug = (base or Recipe()).augment
    if epochs is None:
        parser.set_defaults(epochs=None)
    else:
        parser.add_argument("--epochs", type=int, help=f"default {epochs}")
    sgd, adamw = OPTIMIZER_DEFAULTS["sgd"], OPTIMIZER_DEFAULTS["adamw"]
    parser.add_argument("--batch-size", type=int, help=default("batch_size"))
    parser.add_argument("--optimizer", choices=["sgd", "adamw"], help=default("optimizer"))
    by_optimizer = (f"default {sgd['lr']} sgd, {adamw['lr']} adamw", f"default {sgd['weight_decay']} "
                    f"sgd, {adamw['weight_decay']} adamw") if base else (default("lr"),) * 2
    parser.add_argument("--lr", type=float, help=f"peak learning rate ({by_optimizer[0]})")
    parser.add_argument("--weight-decay", type=float, help=by_optimizer[1])
    parser.add_argument("--schedule", choices=["onecycle", "linear", "cosine"],
                        help="onecycle: a rise over --warmup, then a cosine fall; linear: the "
                             "same in straight lines (airbench); cosine: a cosine fall from the "
                             f"peak ({default('schedule')})")
    parser.add_argument("--warmup", type=float,
                        help=f"onecycle's and linear's rising share of the steps ({default('warmup')})")
    parser.add_argument("--label-smoothing", type=float, help=default("label_smoothing"))
    parser.add_argument("--seed", type=int, help=default("seed"))
    parser.add_argument("--p-affine", type=float,
                        help=f"probability of the shift-scale-rotate per image (default {aug.p_affine})")
    parser.add_argument("--p-cutout", type=float,
                        help=f"probability of the 16×16 mean-filled cutout per image (default {aug.p_cutout})")
    parser.add_argument("--augment", choices=["batched", "albumentations"],
                        help="augmentation engine: whole batches on the device, or albumentations "
                             f"per image in loader workers, the reference (default {aug.engine})")
    parser.add_argument("--flip", choices=["random", "alternating"],
                        help="horizontal flip: a coin per image, or alternating: each image "
                             "mirrored on every other epoch (airbench; --augment batched) "
                             f"(default {aug.flip})")
    parser.add_argument("--mixup", type=float, metavar="A", help=f"MixUp's Beta α ({default('mixup')}; 0: off)")
    parser.add_argument("--cutmix", type=float, metavar="A",
                        help=f"CutMix's Beta α ({default('cutmix')}; 0: off); with --mixup, one of the two per batch")
    parser.add_argument("--mix-ramp", type=float, metavar="R",
                        help="share of the epochs over which the mixing probability rises from 0 "
                             f"to 1 ({default('mix_ramp')}; 0: mixing from the start)")
    parser.add_argument("--ema", type=float, metavar="D",
                        help="decay per step of an average of the weights, evaluated and saved "
                             f"instead of them, e.g. 0.999 ({default('ema')}; 0: off)")
    parser.add_argument("--no-decay-norm-bias", action="store_true", default=None,
                        help="no weight decay on BatchNorm weights and biases, nor on any bias "
                             f"({default('no_decay_norm_bias')})")
    parser.add_argument("--decay-norm-bias", dest="no_decay_norm_bias", action="store_false",
                        default=None, help="weight decay on every parameter")
    parser.add_argument("--norm-bias-lr-scale", type=float, metavar="F",
                        help=f"learning-rate factor of the BatchNorm biases ({default('norm_bias_lr_scale')})")
    parser.add_argument("--whiten-init", action=argparse.BooleanOptionalAction, default=None,
                        help="start the first conv as the training images' patch-whitening filters "
                             f"and their negatives (airbench; {default('whiten_init')})")
    if presets:
        parser.add_argument("--preset", choices=PRESET_CHOICES, default=PRESET_CHOICES[0],
                            help=presets_help())
    add_runtime_args(parser.add_argument_group("where it runs (not part of the recipe)"))


def add_runtime_args(runtime, data: bool = True) -> None:
    """--device, --precision, --channels-last and (with `data`) --workers, --data-dir: where a
    training runs; each None unless given (`Runtime.pick` resolves them for the machine)."""
    runtime.add_argument("--device", choices=["auto", "cpu", "cuda"],
                         help="default auto: cuda when a GPU is visible, else cpu")
    runtime.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                         help="default auto: bf16 on CUDA and on CPUs with native bf16, else fp32")
    runtime.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                         help="channels_last memory format (default: on CUDA only)")
    if data:
        runtime.add_argument("--workers", type=int, help="DataLoader workers (default: picked for the machine)")
        runtime.add_argument("--data-dir", help=DATA_HELP)


def add_run_args(parser: argparse.ArgumentParser, out_help: str) -> None:
    parser.add_argument("--out", help=out_help)
    parser.add_argument("--resume", action="store_true", help="continue the unfinished run in --out")


def add_study_args(parser: argparse.ArgumentParser, name_help: str) -> None:
    parser.add_argument("--study", help=name_help)
    parser.add_argument("--storage", help=STORAGE_HELP)


def add_time_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--time-of", metavar="RUN",
                        help="train for the minutes the finished run in folder RUN took (its "
                             "metrics.json): equal time against that run, as measured here")


def add_train_parsers(sub) -> None:
    """`nas train` and `nas train-best`."""
    tr = sub.add_parser("train", help="train one design on CIFAR-10 and test it")
    tr.add_argument("config", help="a .toml or .json architecture config, or 'reference'")
    add_run_args(tr, f"run folder (default {DEFAULT_RUNS}/<design name>)")
    tr.add_argument("--validate", action="store_true",
                    help="train on 45,000 and evaluate on the 5,000 validation images, not the test set")
    tr.add_argument("--data-fraction", type=float, default=1.0,
                    help="train on a stratified fraction of the training images (default %(default)s)")
    tr.add_argument("--budget-minutes", type=float, default=None, metavar="M",
                    help="train for M minutes here: the epochs planned at the design's measured "
                         "speed, re-planned after every epoch from the real ones")
    add_time_of(tr)
    add_recipe_args(tr, Recipe(), Recipe().epochs, presets=True)
    tr.set_defaults(func="nas.cli.train:train")

    tb = sub.add_parser("train-best", help="re-train the best trial on all training images, test it "
                        "(the study's recipe, with the final schedule's knobs)")
    add_study_args(tb, "the study whose best trial is trained (default: the shipped space's name)")
    tb.add_argument("--trial", type=int, help="this trial instead of the best")
    tb.add_argument("--validate", action="store_true",
                    help="train on the 45,000 search-training images with the study's recipe as "
                         "searched and score on the study's validation hold-out, not the test set: "
                         "the design's truth, recorded for nas compare")
    add_run_args(tb, f"run folder (default {DEFAULT_RUNS}/<study>/best, or .../trial-N with --trial; "
                     "with --validate best-val or trial-N-val)")
    tb.add_argument("--budget-minutes", type=float, default=None, metavar="M",
                    help="train for M minutes here, the epochs re-planned after every epoch from "
                         "the real ones (default: the study's --budget-minutes, if it has one)")
    add_time_of(tb)
    add_recipe_args(tb, None, f"{FINAL_EPOCHS}; with --validate {truth_epochs()}, the "
                              f"calibration's truth fidelity {CalibrationSettings.truth_fidelity}; for a study "
                              "with a time budget, the epochs that fit it here", presets=True)
    tb.set_defaults(func="nas.cli.train:train_best")


def add_search_parsers(sub) -> None:
    """`nas search` and `nas calibrate`."""
    fidelity = Fidelity()
    se = sub.add_parser("search", help="search the space with Optuna, rules checked before training")
    se.add_argument("--trials", type=int, default=DEFAULT_TRIALS,
                    help="run until the study holds this many finished trials (default %(default)s)")
    add_study_args(se, "study name (default: the space's name)")
    se.add_argument("--space", help=f"search-space file (default: the shipped {EQUAL_TIME.space.name}; "
                                    f"at equal epochs {EQUAL_EPOCHS.space.name})")
    se.add_argument("--data-fraction", type=float, default=fidelity.data_fraction,
                    help="fraction of the 45,000 search-training images per trial (default %(default)s)")
    se.add_argument("--val-images", type=int, default=fidelity.val_images,
                    help="size of the stratified validation hold-out (default %(default)s)")
    se.add_argument("--pruner", choices=PRUNERS, default=None,
                    help="stops poor trials early; first: after a trial's first round only, below "
                         "the median of the complete trials' (default "
                         f"{EQUAL_TIME.pruner}; at equal epochs {EQUAL_EPOCHS.pruner})")
    se.add_argument("--second-objective", choices=["params", "flops", "time"], default=None,
                    help="multi-objective: maximise val accuracy and minimise this (time: the "
                         "measured seconds per 50,000-image epoch; no pruner)")
    se.add_argument("--jobs", type=int, default=None,
                    help="trials at once on this machine, as worker processes sharing the study "
                         "(default: 1 on CPU, 4 on CUDA)")
    se.add_argument("--dry-run", action="store_true",
                    help="sample designs and judge them, no training, nothing stored")
    se.add_argument("--sampler", choices=SAMPLERS, default=SEARCH_SAMPLER,
                    help="Optuna's TPE, or uniform random sampling as its control (nas compare); "
                         "the study stores it (default %(default)s)")
    add_fill_arg(se, None, f"{EQUAL_TIME.fill_params:g}; at equal epochs {EQUAL_EPOCHS.fill_params:g}")
    se.add_argument("--final-rung", type=int, default=None, metavar="K",
                    help="after the trials, train K of them at the study's truth fidelity (M minutes; "
                         "at equal epochs the truth's epochs) on the 45,000 search-training images, "
                         "scored on the hold-out: trials paced by steps, the best of the middle rung, "
                         "then the best scores among those the rung times at least as fast as the "
                         "twin; by time, the best score and "
                         "the most FLOPs above the twin's score; then the next by score; the highest "
                         "truth is the best (default "
                         f"{EQUAL_TIME.final_rung}; at equal epochs {EQUAL_EPOCHS.final_rung}; 0: none)")
    se.add_argument("--speed-floor", type=float, default=None, metavar="F",
                    help="at equal time, prune before training each trial timed below F times the "
                         "twin's training speed: at M a slower design trains fewer steps (default "
                         f"{EQUAL_TIME.speed_floor:g}; at equal epochs {EQUAL_EPOCHS.speed_floor:g}; "
                         "0: none)")
    se.add_argument("--middle-rung", type=int, default=None, metavar="N",
                    help="before the final rung of a search paced by steps, train the N best scores "
                         "among the trials at least as fast as the twin for "
                         f"{MIDDLE_LENGTH} times a trial's steps, scaled by their speed (equal time), "
                         "and give the final rung the best of them; skipped when N is not more than "
                         f"K (default {EQUAL_TIME.middle_rung}; at equal epochs "
                         f"{EQUAL_EPOCHS.middle_rung}; 0: none)")
    se.add_argument("--out", help=f"folder of the final rung's run folders (default {DEFAULT_RUNS}/<study>, "
                                  "where nas train-best --validate --trial N writes)")
    timed = se.add_argument_group("equal time (see docs/search.md)")
    timed.add_argument("--budget-minutes", type=float, default=None, metavar="M",
                       help="the minutes of the final training you mean to run: each trial trains "
                            "the steps the reference twin trains in --time-share of them on this "
                            "device (see --trial-steps), in --rounds rounds where the pruner may stop "
                            "it; the study stores M and the device (default: the reference "
                            f"twin's {TWIN_EPOCHS} epochs, timed here before the search; a study that "
                            "exists keeps its own M; 0: equal epochs, every trial the same epochs)")
    timed.add_argument("--time-share", type=float, default=None, metavar="S",
                       help=f"share of M per trial (default {TIME_SHARE})")
    timed.add_argument("--trial-steps", type=int, default=None, metavar="N",
                       help="every trial's optimizer steps, the same for each design (default: the "
                            "reference twin's in --time-share of M, timed here when the study is "
                            "made; 0: --time-share of M at each design's own measured speed)")
    timed.add_argument("--rounds", type=int, default=None, metavar="R",
                       help="a trial's rounds, equal shares of its time, each ending on a "
                            f"validation score (default {fidelity.rounds})")
    add_limit_args(se)
    add_recipe_args(se, Recipe(), f"{fidelity.epochs} per trial; with --budget-minutes see --rounds")
    se.set_defaults(func="nas.cli.search:search")

    calibration = {f.name: f.default for f in fields(CalibrationSettings)}
    ca = sub.add_parser("calibrate", help="train a few designs at low fidelities and at a truth "
                        "fidelity: how well each cheap score (and each proxy) ranks them")
    ca.add_argument("--designs", type=int, default=calibration["designs"], metavar="K",
                    help="the reference's feasible twin and K-1 sampled feasible designs (default %(default)s)")
    ca.add_argument("--fidelities",
                    help="low fidelities, EPOCHSxFRACTION of the 45,000 search-training images, "
                         "comma-separated (default " + ",".join(calibration["fidelities"]) + "); "
                         "with --budget-minutes PERCENT%%xFRACTION, shares of the budget (default "
                         + ",".join(TIME_FIDELITIES).replace("%", "%%") + ")")
    ca.add_argument("--truth-fidelity",
                    help="the training whose val accuracy is each design's truth, which the cheap "
                         f"scores are ranked against (default {calibration['truth_fidelity']}; with "
                         f"--budget-minutes {TIME_TRUTH_FIDELITY.replace('%', '%%')}: the budget's "
                         "minutes on all 45,000 images)")
    add_old_name(ca, "--truth", "truth_fidelity", str)
    ca.add_argument("--budget-minutes", type=float, default=0.0, metavar="M",
                    help="rank designs at equal time: every training gets a share of M minutes at "
                         "the design's speed measured on this device (default 0: equal epochs)")
    ca.add_argument("--pace", choices=PACES, default=calibration["pace"],
                    help="with --budget-minutes, the low fidelities' steps: steps, the reference "
                         "twin's in each share, the same for every design, as the search's trials; "
                         "time, the share at each design's own speed (default %(default)s; the "
                         "truth is M at each design's own speed either way)")
    ca.add_argument("--out", default=str(DEFAULT_CALIBRATION),
                    help="results file, written after every training; a rerun continues it (default %(default)s)")
    ca.add_argument("--show", action="store_true", help="print the table of --out, train nothing")
    ca.add_argument("--space", help="search-space file (default: the shipped c1c2c3c4o.toml)")
    ca.add_argument("--val-images", type=int, default=calibration["val_images"],
                    help="size of the stratified validation hold-out (default %(default)s)")
    add_fill_arg(ca, calibration["fill_params"], str(calibration["fill_params"]))
    add_recipe_args(ca, Recipe(), None)  # of every training; --seed also seeds the design sampler
    ca.set_defaults(func="nas.cli.search:calibrate")


def add_model_parsers(sub) -> None:
    """`nas show`, `nas predict` and `nas export`: a design, and a finished run's model in use."""
    show = sub.add_parser("show", help="layers, totals and the rules' verdict of a config")
    show.add_argument("config", help="a .toml or .json architecture config, or 'reference'")
    show.add_argument("--json", action="store_true", help="print totals and verdict as JSON")
    add_limit_args(show)
    measured = show.add_argument_group("measured speed (a few seconds)")
    measured.add_argument("--speed", action="store_true",
                          help="also measure training and inference speed on this machine")
    measured.add_argument("--batch-size", type=int, default=Recipe().batch_size,
                          help="the training batch --speed measures (default %(default)s)")
    add_runtime_args(measured, data=False)
    show.set_defaults(func="nas.cli.model:show")

    pr = sub.add_parser("predict", help="top classes of image files, from a finished run's model")
    pr.add_argument("run", help="a finished run folder (it holds model.pt), or a model.pt")
    pr.add_argument("images", nargs="+", help="PNG or JPEG files of any size (resized to 32×32)")
    pr.add_argument("--top", type=int, default=TOP, help="classes shown per image (default %(default)s)")
    pr.set_defaults(func="nas.cli.model:predict")

    ex = sub.add_parser("export", help="a self-contained ONNX model of a finished run")
    ex.add_argument("run", help="a finished run folder (it holds model.pt), or a model.pt")
    ex.add_argument("--format", choices=["onnx"], default="onnx", help="the file format (default %(default)s)")
    ex.add_argument("--input", choices=["uint8", "float"], default="uint8",
                    help="uint8 images 0-255 (default) or float32 in [0, 1]; normalisation is inside")
    ex.add_argument("--out", help="the file to write (default RUN/model-INPUT.onnx)")
    ex.set_defaults(func="nas.cli.model:export")


def add_screen_parser(sub) -> None:
    """`nas screen`: a recipe screen described by a TOML file (docs/training.md)."""
    sc = sub.add_parser("screen", help="train variants of a recipe over seeds on the validation "
                        "split and tabulate them against a base variant (a recipe screen)")
    sc.add_argument("file", metavar="SCREEN.toml",
                    help="the screen: design, seeds, data_fraction, base, [recipe] and [variants.NAME]")
    sc.add_argument("--out", help="folder of the runs (VARIANT-sSEED) and of screen.md and screen.json "
                                  f"(default {DEFAULT_RUNS}/screen-<file stem>); a rerun continues it")
    sc.add_argument("--table", action="store_true", help="train nothing: tabulate the finished runs")
    add_runtime_args(sc.add_argument_group("where it runs (not part of the recipe)"))
    sc.set_defaults(func="nas.cli.screen:screen")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nas", description=(
        "Search small CIFAR-10 classifiers of the shape C1C2C3C4O under a hard budget: every rule "
        "is checked before training. Guide: README.md; details: docs/."))
    sub = parser.add_subparsers(dest="command", required=True)
    add_model_parsers(sub)
    add_train_parsers(sub)
    add_screen_parser(sub)
    add_search_parsers(sub)
    rp = sub.add_parser("report", help="the study as a table; --markdown writes a results document")
    add_study_args(rp, "the study (default: the shipped space's name)")
    rp.add_argument("--markdown", help="write a results document (and PNG plots beside it) here")
    rp.add_argument("--compare", action="append", default=[], metavar="RUN_DIR",
                    help="a finished run folder (e.g. the reference's) whose accuracy against "
                    "epochs the document plots beside the best design's; repeatable")
    rp.set_defaults(func="nas.cli.report:report")

    cp = sub.add_parser("compare", help="searches of one space side by side, e.g. TPE against "
                        "random sampling, or two search seeds: best score, truth, regret, best so "
                        "far by trial; at equal time each winner's tested runs against the twin's, "
                        "its time to 85 %% and the search's cost")
    cp.add_argument("studies", nargs="+", metavar="STUDY",
                    help="studies made with the same settings but --sampler and --seed")
    cp.add_argument("--storage", help=STORAGE_HELP)
    cp.add_argument("--markdown", help="write a comparison document (and its PNG plot beside it) here")
    cp.set_defaults(func="nas.cli.report:compare")

    data = sub.add_parser("data", help="fetch or check CIFAR-10")
    data.add_argument("action", choices=["download", "check"])
    data.add_argument("--data-dir", help=DATA_HELP)
    data.set_defaults(func="nas.cli.data:data")
    return parser
