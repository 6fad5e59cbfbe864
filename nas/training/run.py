"""One full training run of one design: splits, datasets, train, final evaluation, files.

`nas train` and `nas train-best` both call `train_run`. A run folder holds:
config.toml/.json, recipe.json, log.jsonl (one line per epoch), checkpoint.pt, model.pt (the
final model with its normalisation, for `nas predict` and `nas export`; with `--ema` the averaged
weights, as `train` leaves them in the model), metrics.json (final
accuracy, per-class report, confusion matrix, wall time, machine, command) and summary.md.
Everything that can be wrong with the input is checked before the first file is written.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from nas.data.cifar10 import Cifar10
from nas.data.settings import VAL_IMAGES
from nas.data.splits import Split, make_splits
from nas.design.config import ArchConfig, dict_diff
from nas.design.files import save_config
from nas.design.model import build_model
from nas.design.rules import ensure_buildable
from nas.design.summary import markdown_table
from nas.errors import NasError
from nas.training.batches import make_batches
from nas.training.budget import Plan, plan_budget, read_plan
from nas.training.checkpoints import CHECKPOINT, EpochLog, epochs_done
from nas.training.loop import Hooks, check_trainable, train
from nas.training.metrics import evaluate
from nas.training.modelfile import save_model
from nas.training.progress import TrainingProgress
from nas.training.recipe import Recipe, as_written_today
from nas.training.runtime import Runtime


def check_run_folder(out: Path, recipe: Recipe | None, resume: bool,
                     config: ArchConfig | None = None) -> int:
    """The epochs already done in `out` (0 for a new run); NasError when `out` cannot take this
    run: it holds another run (without --resume), nothing (with --resume), another recipe or
    design (each compared when given), or unreadable files."""
    if out.exists() and not out.is_dir():
        raise NasError(f"--out {out} is a file, not a folder: choose another --out")
    if not resume:
        if any((out / name).exists() for name in (CHECKPOINT, "metrics.json")):
            raise NasError(f"{out} already holds a run: add --resume to continue it, or choose "
                           "another --out (nothing was overwritten)")
        return 0
    if (out / "metrics.json").exists():
        raise NasError(f"{out} holds a finished run (metrics.json): nothing to resume; "
                       "choose another --out for a new run")
    if not (out / CHECKPOINT).exists():
        raise NasError(f"nothing to resume in {out}: no {CHECKPOINT} there; "
                       "run without --resume to start")
    saved = as_written_today(read_json(out / "recipe.json"))
    if recipe is not None and saved != recipe.to_dict():
        raise NasError(f"{out} was trained with another recipe ({dict_diff(saved, recipe.to_dict())}); "
                       "rerun with its options, or choose another --out")
    if config is not None and read_json(out / "config.json") != config.to_dict():
        raise NasError(f"{out} holds a run of another design than {config.name}: resume it with "
                       f"its own config ({out / 'config.toml'}), or choose another --out")
    return epochs_done(out)


def read_json(path: Path, remedy: str = "which a run to resume needs: start a new run with "
                                         "another --out") -> dict[str, Any]:
    """A run folder's JSON file, or NasError naming it and what to do (`remedy`)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise NasError(f"cannot read {path} ({type(err).__name__}), {remedy}") from None


def writable_folder(out: Path) -> None:
    """Create `out` (and its parents) or raise NasError saying why it cannot be."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".nas-write-test"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise NasError(f"cannot write the run folder {out}: {err.strerror or err}; "
                       "choose another --out") from None


@dataclass(frozen=True)
class RunSpec:
    """One training run: the design and recipe trained, on which images and scored where
    (`split`: "test", all 50,000 training images scored on the official 10,000; "val", a
    `fraction` of the images outside the `val_images` hold-out scored on it), the folder written
    (`resume` continues the run in it), its time budget's `plan` and the command that made it."""

    config: ArchConfig
    recipe: Recipe
    out: Path
    split: Split = "test"
    fraction: float = 1.0
    val_images: int = VAL_IMAGES
    resume: bool = False
    plan: Plan | None = None
    command: str = ""


def budgeted(spec: RunSpec, minutes: float, runtime: Runtime, data: Cifar10) -> RunSpec:
    """`spec` at the epochs its budget of `minutes` gives: a resumed run's plan, or a new plan at
    the design's speed measured here (written to the run folder before the run starts); as it
    is without a budget."""
    if not minutes or spec.plan:
        return spec
    train_images = round((len(data.train_labels) - (spec.val_images if spec.split == "val" else 0))
                         * spec.fraction)
    eval_images = spec.val_images if spec.split == "val" else len(data.test_labels)
    plan = plan_budget(spec.out, minutes, spec.config, spec.recipe, runtime, train_images, eval_images)
    return planned(spec, plan)


def resumed(spec: RunSpec, minutes: float) -> RunSpec:
    """A resumed budgeted run keeps the plan, and so the epochs, it started with."""
    if not (minutes and spec.resume):
        return spec
    return planned(spec, read_plan(spec.out))


def planned(spec: RunSpec, plan: Plan) -> RunSpec:
    """`spec` with its time budget's `plan`, at the plan's epochs."""
    return replace(spec, plan=plan, recipe=replace(spec.recipe, epochs=plan.epochs))


def train_run(spec: RunSpec, data: Cifar10, runtime: Runtime,
              progress: TrainingProgress | None = None) -> dict[str, Any]:
    """Train `spec`'s design from scratch (or resume it) and write the run folder; returns the
    metrics. A budgeted run (`spec.plan`) keeps its budget while it trains (`Plan.deadline`)."""
    config, recipe, out = spec.config, spec.recipe, Path(spec.out)
    check_run_folder(out, recipe, spec.resume, config)
    ensure_buildable(config)
    splits = make_splits(data, spec.split, spec.fraction, recipe.seed, spec.val_images)
    check_trainable(recipe, len(splits.train_labels))
    batches = make_batches(splits, recipe.batch_size, recipe.augment, runtime)
    torch.manual_seed(recipe.seed)  # the initial weights
    model = build_model(config)
    if not spec.resume:
        writable_folder(out)
        save_config(config, out / "config.toml")
        save_config(config, out / "config.json")
        (out / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2) + "\n")
    hooks = Hooks(progress or TrainingProgress(), replan=spec.plan.deadline() if spec.plan else None)
    history = train(model, batches, recipe, runtime, run_dir=out, resume=spec.resume, hooks=hooks)
    save_model(out / "model.pt", config, model, *splits.stats, splits.classes)
    start = time.perf_counter()
    result = evaluate(model, batches[1], runtime.device, runtime.dtype, flip_tta=True)
    metrics = {
        "command": spec.command, "design": config.name, "eval_split": splits.eval_split,
        "train_images": len(splits.train_labels), "data_fraction": spec.fraction,
        "eval_images": len(splits.eval_labels),
        "epochs": len(history), **result.to_dict(splits.classes),
        "accuracy_flip_tta": result.accuracy_flip_tta,
        "wall_seconds": round(sum(h.seconds for h in history) + time.perf_counter() - start, 1),
        "machine": runtime.record(), **({"budget": spec.plan.to_dict()} if spec.plan else {}),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (out / "summary.md").write_text(summary_markdown(metrics, history))
    return metrics


def summary_markdown(metrics: dict[str, Any], history: list[EpochLog]) -> str:
    """The run in Markdown: command, machine, per-epoch log, per-class report, confusion matrix."""
    split = metrics["eval_split"]
    m = metrics["machine"]
    epochs = markdown_table(
        ("epoch", "train loss", "train acc", f"{split} loss", f"{split} acc", "seconds", "img/s"),
        [(str(h.epoch), f"{h.train_loss:.4f}", f"{h.train_acc:.4f}", f"{h.eval_loss:.4f}",
          f"{h.eval_acc:.4f}", f"{h.seconds:.1f}", f"{h.images_per_s:,.0f}") for h in history])
    per_class = markdown_table(
        ("class", "precision", "recall", "F1", "support"),
        [(c["class"], f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}",
          str(c["support"])) for c in metrics["per_class"]])
    classes = metrics["classes"]
    confusion = markdown_table(("true \\ predicted", *classes),
                               [(name, *map(str, row)) for name, row in zip(classes, metrics["confusion"])])
    return (f"# {metrics['design']}: {metrics['accuracy'] * 100:.2f}% {split} accuracy\n\n"
            f"With horizontal-flip test-time augmentation (mean logits of each image and its "
            f"mirror image): {metrics['accuracy_flip_tta'] * 100:.2f}%.\n\n"
            f"Command: `{metrics['command']}`\n\n"
            f"{metrics['epochs']} epochs on {metrics['train_images']:,} training images, evaluated on "
            f"{metrics['eval_images']:,} {split} images; wall time {metrics['wall_seconds'] / 60:.1f} min "
            f"on {m['cpu']} ({m['cores']} cores, {m['device']}, {m['precision']}, torch {m['torch']}).\n\n"
            + (f"Trained in {Plan.from_dict(b).describe()}.\n\n" if (b := metrics.get("budget")) else "")
            + f"## Per epoch\n\n{epochs}\n\n## Per class ({split})\n\n{per_class}\n\n"
            f"## Confusion matrix ({split})\n\n{confusion}\n")
