"""The one training loop, used by `nas train`, `nas search` and `nas train-best`.

What is trained is a `nas.recipe.Recipe`, where it runs a `nas.device.Runtime`. The loop is plain
PyTorch: SGD (Nesterov) or AdamW, OneCycle or cosine, label smoothing; autocast in bf16 where the
hardware runs it fast (CUDA; CPUs with AVX512-BF16 or AMX; elsewhere bf16 is emulated, ~10× slower).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from rich.progress import Progress
from torch import nn

from nas.config import dict_diff
from nas.device import Runtime, autocast, keep_freed_memory
from nas.errors import NasError
from nas.metrics import evaluate
from nas.recipe import Recipe
from nas.splits import Batches

ONECYCLE_MIN_STEPS = 8  # fewer steps than this and OneCycle's phases are empty


@dataclass(frozen=True)
class EpochLog:
    """One line of the per-epoch log."""

    epoch: int
    train_loss: float
    train_acc: float
    eval_loss: float
    eval_acc: float
    lr: float
    seconds: float
    images_per_s: float


class NonFiniteLoss(NasError):
    """The training loss became NaN or infinite."""


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                               nesterov=True, weight_decay=recipe.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)


def check_trainable(recipe: Recipe, train_images: int) -> None:
    """NasError, before anything is trained, when `train_images` cannot fill the schedule."""
    steps = train_images // recipe.batch_size
    if steps < 1:
        raise NasError(f"{train_images} training images make no full batch of --batch-size "
                       f"{recipe.batch_size}: use more images or a smaller batch")
    if recipe.schedule == "onecycle" and steps * recipe.epochs < ONECYCLE_MIN_STEPS:
        raise NasError(f"OneCycle needs at least {ONECYCLE_MIN_STEPS} steps, this run has "
                       f"{steps * recipe.epochs} ({recipe.epochs} epochs of {steps} batches of "
                       f"{recipe.batch_size} from {train_images} images): use more epochs or "
                       "images, a smaller batch, or --schedule cosine")


def make_schedule(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    total = recipe.epochs * steps_per_epoch
    if recipe.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=total,
                                                   pct_start=recipe.warmup)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)


def train(model: nn.Module, train_batches: Batches, eval_batches: Batches, recipe: Recipe,
          runtime: Runtime, *,
          run_dir: Path | None = None, resume: bool = False,
          on_epoch: Callable[[EpochLog], None] | None = None,
          progress: Progress | None = None) -> list[EpochLog]:
    """Train `model` on `train_batches`, evaluating on `eval_batches` after every epoch.

    With `run_dir`, each epoch writes `checkpoint.pt` (model, optimizer, scheduler, epoch, history)
    and `log.jsonl`; `resume=True` continues from that checkpoint and ends with the same weights
    as an uninterrupted run, because every epoch reseeds all randomness from (seed, epoch); only
    the recipe must match, the runtime may differ.
    `on_epoch` may raise (the search raises optuna.TrialPruned) to stop early.
    """
    keep_freed_memory()
    check_trainable(recipe, len(train_batches) * recipe.batch_size)
    device, dtype = runtime.device, runtime.dtype
    model.to(device, memory_format=runtime.layout)
    optimizer = make_optimizer(model, recipe)
    schedule = make_schedule(optimizer, recipe, len(train_batches))
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    checkpoint = run_dir / "checkpoint.pt" if run_dir else None
    history = _restore(checkpoint, recipe, device, model, optimizer, schedule) if resume else []
    run_task = progress.add_task("epochs", total=recipe.epochs, completed=len(history),
                                 stats="") if progress else None
    task = None
    try:
        for epoch in range(len(history) + 1, recipe.epochs + 1):
            epoch_seed = recipe.seed * 100_003 + epoch
            torch.manual_seed(epoch_seed)  # dropout
            train_batches.seed(epoch_seed)  # shuffling and augmentation
            task = progress.add_task(f"epoch {epoch}/{recipe.epochs}", total=len(train_batches),
                                     stats="") if progress else None
            start = time.perf_counter()
            train_loss, train_acc, seen = train_epoch(
                model, train_batches, optimizer, schedule, criterion, device, dtype, epoch,
                progress, task)
            train_seconds = time.perf_counter() - start
            result = evaluate(model, eval_batches, device, dtype)
            log = EpochLog(epoch, train_loss, train_acc, result.loss,
                           result.accuracy, optimizer.param_groups[0]["lr"],
                           time.perf_counter() - start, seen / train_seconds)
            history.append(log)
            if progress:
                progress.remove_task(task)
                task = None
                progress.update(run_task, completed=epoch, stats=(
                    f"eval acc {log.eval_acc:.4f} (epoch {epoch}: {log.seconds:.0f} s)"))
            if run_dir:
                _save_checkpoint(checkpoint, model, optimizer, schedule, recipe, history)
                (run_dir / "log.jsonl").write_text("".join(json.dumps(asdict(h)) + "\n" for h in history))
            if on_epoch:
                on_epoch(log)
    finally:  # a pruned or interrupted run leaves no stale bars behind
        if progress:
            for t in (task, run_task):
                if t is not None and t in progress.task_ids:
                    progress.remove_task(t)
    return history


def train_epoch(model: nn.Module, batches: Batches, optimizer, schedule, criterion,
                device: torch.device, dtype: torch.dtype | None, epoch: int,
                progress: Progress | None, task) -> tuple[float, float, int]:
    """One pass over `batches` (already on the device): (mean loss, accuracy, images seen)."""
    model.train()
    start, seen = time.perf_counter(), 0
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for step, (images, labels) in enumerate(batches, 1):
        with autocast(device, dtype):
            logits = model(images)
            loss = criterion(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        loss_sum += loss.detach() * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
        if step % 20 == 0 or step == len(batches):
            mean_loss = loss_sum.item() / seen  # syncs the GPU: only every 20 steps
            if not math.isfinite(mean_loss):
                raise NonFiniteLoss(f"training loss became {mean_loss} in epoch {epoch} "
                                    f"(step {step}); lower --lr or check the design")
            if progress:
                rate = seen / (time.perf_counter() - start)
                progress.update(task, completed=step, stats=(
                    f"loss {mean_loss:.3f} acc {correct.item() / seen:.3f} {rate:,.0f} img/s"))
    return loss_sum.item() / seen, correct.item() / seen, seen


def _restore(checkpoint: Path | None, recipe: Recipe, device: torch.device, model: nn.Module,
             optimizer, schedule) -> list[EpochLog]:
    """Load model, optimizer and schedule from `checkpoint`; the epochs done so far."""
    if not (checkpoint and checkpoint.exists()):
        raise NasError(f"nothing to resume: {checkpoint or 'no run folder'} does not exist")
    state = torch.load(checkpoint, map_location=device, weights_only=False)
    if state["recipe"] != recipe.to_dict():
        diff = dict_diff(state["recipe"], recipe.to_dict())
        raise NasError(f"{checkpoint} was made with another recipe ({diff}); rerun with the "
                       "same options, or use a new output folder")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["scheduler"])
    return [EpochLog(**h) for h in state["history"]]


def _save_checkpoint(path: Path, model, optimizer, schedule, recipe: Recipe,
                     history: list[EpochLog]) -> None:
    """Write atomically: a kill mid-write leaves the previous checkpoint intact."""
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": schedule.state_dict(), "recipe": recipe.to_dict(),
                "epoch": len(history), "history": [asdict(h) for h in history]}, tmp)
    os.replace(tmp, path)

