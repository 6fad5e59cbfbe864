"""One full training run of one design: splits, datasets, train, final evaluation, files.

`nas train` and `nas train-best` both call `train_run`. A run folder holds:
config.toml/.json, recipe.json, log.jsonl (one line per epoch), checkpoint.pt, metrics.json
(final accuracy, per-class report, confusion matrix, wall time, machine, command) and summary.md.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from nas.augment import AugmentConfig, AugmentedDataset, eval_transform, train_transform
from nas.config import ArchConfig, save_config
from nas.data import Cifar10, channel_stats, split_train_val
from nas.device import autocast_dtype, machine, pick_device
from nas.errors import NasError
from nas.metrics import evaluate
from nas.model import build_model
from nas.summary import markdown_table
from nas.train import EpochLog, Recipe, make_loader, train

VAL_IMAGES = 5_000  # the stratified hold-out searched on; never the official test set


@dataclass(frozen=True)
class Splits:
    """What a run trains on and what it evaluates on ("val" during search, "test" for finals)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    eval_name: str
    classes: tuple[str, ...]


def make_splits(data: Cifar10, final: bool, fraction: float = 1.0, seed: int = 0,
                val_images: int = VAL_IMAGES) -> Splits:
    """final: all 50,000 training images, evaluated on the official 10,000 test images.
    Otherwise: the 45,000 outside the seeded validation hold-out (or a stratified `fraction` of
    them, for cheap low-fidelity trials), evaluated on the 5,000 held-out images."""
    if not 0 < fraction <= 1:
        raise NasError(f"--data-fraction {fraction}: must be in (0, 1]")
    if final:
        train_idx = np.arange(len(data.train_labels))
        eval_images, eval_labels, name = data.test_images, data.test_labels, "test"
    else:
        train_idx, val_idx = split_train_val(data.train_labels, val_images, seed=0)
        eval_images, eval_labels, name = data.train_images[val_idx], data.train_labels[val_idx], "val"
    if fraction < 1:
        classes = len(data.classes)
        keep = max(classes, round(fraction * len(train_idx) / classes) * classes)
        _, picked = split_train_val(data.train_labels[train_idx], keep, seed=seed)
        train_idx = train_idx[picked]
    return Splits(data.train_images[train_idx], data.train_labels[train_idx],
                  eval_images, eval_labels, name, data.classes)


def make_datasets(splits: Splits, augment: AugmentConfig = AugmentConfig()
                  ) -> tuple[AugmentedDataset, AugmentedDataset]:
    """Albumentations pipelines normalised with the training images' own statistics."""
    mean, std = channel_stats(splits.train_images)
    return (AugmentedDataset(splits.train_images, splits.train_labels,
                             train_transform(mean, std, cfg=augment)),
            AugmentedDataset(splits.eval_images, splits.eval_labels, eval_transform(mean, std)))


def train_run(config: ArchConfig, recipe: Recipe, data: Cifar10, out: Path, *, resume: bool = False,
              final: bool = True, fraction: float = 1.0, command: str = "",
              progress: Progress | None = None, on_epoch=None) -> dict[str, Any]:
    """Train `config` from scratch (or resume it) and write the run folder; returns metrics."""
    out = Path(out)
    if not resume and any((out / name).exists() for name in ("checkpoint.pt", "metrics.json")):
        raise NasError(f"{out} already holds a run: add --resume to continue it, or choose "
                       "another --out (nothing was overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.toml")
    save_config(config, out / "config.json")
    (out / "recipe.json").write_text(json.dumps(asdict(recipe), indent=2) + "\n")
    splits = make_splits(data, final, fraction, recipe.seed)
    train_set, eval_set = make_datasets(splits, recipe.augment)
    torch.manual_seed(recipe.seed)  # the initial weights
    model = build_model(config)
    history = train(model, train_set, eval_set, recipe, run_dir=out, resume=resume,
                    progress=progress, on_epoch=on_epoch)
    device = pick_device(recipe.device)
    dtype = autocast_dtype(device, recipe.precision)
    start = time.perf_counter()
    result = evaluate(model, make_loader(eval_set, 1024, False, device, 0), device, dtype,
                      flip_tta=True, layout=recipe.memory_format(device))
    metrics = {
        "command": command, "design": config.name, "eval_split": splits.eval_name,
        "train_images": len(splits.train_labels), "eval_images": len(splits.eval_labels),
        "epochs": len(history), **result.to_dict(splits.classes),
        "accuracy_flip_tta": result.accuracy_flip_tta,
        "wall_seconds": round(sum(h.seconds for h in history) + time.perf_counter() - start, 1),
        "machine": machine(device, dtype),
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
            f"## Per epoch\n\n{epochs}\n\n## Per class ({split})\n\n{per_class}\n\n"
            f"## Confusion matrix ({split})\n\n{confusion}\n")
