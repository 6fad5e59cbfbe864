"""The one training loop, used by `nas train`, `nas search` and `nas train-best`.

What is trained is a `nas.recipe.Recipe`, where it runs a `nas.device.Runtime`. The loop is plain
PyTorch: SGD (Nesterov) or AdamW, OneCycle or cosine, label smoothing; autocast in bf16 where the
hardware runs it fast (CUDA; CPUs with AVX512-BF16 or AMX; elsewhere bf16 is emulated, ~10× slower).
The knobs of a stronger recipe, each off by default: MixUp / CutMix, an exponential moving average
of the weights (EMA), no weight decay on BatchNorm and biases, a separate lr for BatchNorm biases.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.progress import Progress
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from nas.batch_augment import MixBatch
from nas.config import dict_diff
from nas.device import Runtime, autocast, keep_freed_memory
from nas.errors import NasError
from nas.metrics import evaluate
from nas.recipe import Recipe, as_written_today
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


@dataclass(frozen=True)
class Learner:
    """What a run updates every step, and what its checkpoint holds."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    ema: AveragedModel | None = None  # recipe.ema > 0: the averaged copy of `model`

    @property
    def evaluated(self) -> nn.Module:
        """The weights a run is judged by: the average when there is one."""
        return self.ema.module if self.ema is not None else self.model


NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def param_groups(model: nn.Module, recipe: Recipe) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: one, unless a knob sets norms and biases apart; then
    "weights" (conv and linear: decayed; first, so that its lr is the one logged),
    "norm_weights_and_biases" (norm weights, other biases) and "norm_biases" (lr × scale)."""
    if not recipe.no_decay_norm_bias and recipe.norm_bias_lr_scale == 1:
        return [{"params": list(model.parameters())}]  # as before the knobs: old checkpoints load
    norms = [m for m in model.modules() if isinstance(m, NORMS)]
    norm_weights = {id(m.weight) for m in norms if m.weight is not None}
    norm_biases = {id(m.bias) for m in norms if m.bias is not None}
    groups: dict[str, list[nn.Parameter]] = {"weights": [], "norm_weights_and_biases": [],
                                             "norm_biases": []}
    for name, param in model.named_parameters():
        groups["norm_biases" if id(param) in norm_biases else "norm_weights_and_biases"
               if id(param) in norm_weights or name.endswith("bias") else "weights"].append(param)
    # Decay shrinks a weight towards 0 to keep the function simple; a BatchNorm scale or an
    # offset has no such role (BN undoes the scale of the conv before it), so decay only bends it.
    decay = 0.0 if recipe.no_decay_norm_bias else recipe.weight_decay
    settings = {"weights": (recipe.weight_decay, 1.0), "norm_weights_and_biases": (decay, 1.0),
                "norm_biases": (decay, recipe.norm_bias_lr_scale)}
    return [{"params": params, "name": name, "weight_decay": settings[name][0],
             "lr": recipe.lr * settings[name][1]} for name, params in groups.items() if params]


def make_optimizer(model: nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    groups = param_groups(model, recipe)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=recipe.lr, momentum=recipe.momentum,
                               nesterov=True, weight_decay=recipe.weight_decay)
    return torch.optim.AdamW(groups, lr=recipe.lr, weight_decay=recipe.weight_decay)


def make_ema(model: nn.Module, recipe: Recipe) -> AveragedModel | None:
    """An averaged copy of `model` (recipe.ema > 0): evaluated and kept instead of the raw weights,
    which the last noisy steps of a run still shake. Only the weights are averaged: the BatchNorm
    statistics are measured anew for the averaged weights (`measure_norm_stats`) before each use."""
    if recipe.ema == 0:
        return None
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema), use_buffers=False)


NORM_STATS_IMAGES = 5_120  # enough training images to measure BatchNorm statistics to ~1 %


@torch.no_grad()
def measure_norm_stats(model: nn.Module, batches: Batches, device: torch.device,
                       dtype: torch.dtype | None, images: int = NORM_STATS_IMAGES) -> None:
    """Set every BatchNorm's running statistics to those of `model`'s own activations over the
    first `images` training images of `batches`. Averaging the statistics along with the weights
    (what timm does) fails early in a run: at a high lr an average of weights 100 steps apart is
    a network whose activations the averaged statistics do not describe (8 epochs, EMA 0.99: 53 %
    validation accuracy with averaged statistics, 69 % with measured ones, 71 % raw)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = {m: m.momentum for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches below
    was_training = model.training
    model.train()
    seen = 0
    for batch, _ in batches:
        with autocast(device, dtype):
            model(batch)
        seen += len(batch)
        if seen >= images:
            break
    for m in norms:
        m.momentum = momenta[m]
    model.train(was_training)


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
    if recipe.schedule == "onecycle":  # each group's peak is its own lr (norm_bias_lr_scale)
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total,
                                                   pct_start=recipe.warmup)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)


def seed_epoch(recipe: Recipe, epoch: int, batches: Batches, mix: MixBatch | None) -> None:
    """Reseed every random draw of `epoch` from (seed, epoch): a resumed run repeats it exactly."""
    epoch_seed = recipe.seed * 100_003 + epoch
    torch.manual_seed(epoch_seed)  # dropout
    batches.seed(epoch_seed)  # shuffling and augmentation
    batches.set_epoch(epoch, recipe.seed)  # alternating flip
    if mix is not None:
        mix.seed(epoch_seed, recipe.mix_probability(epoch))


def train(model: nn.Module, train_batches: Batches, eval_batches: Batches, recipe: Recipe,
          runtime: Runtime, *,
          run_dir: Path | None = None, resume: bool = False,
          on_epoch: Callable[[EpochLog], None] | None = None,
          progress: Progress | None = None) -> list[EpochLog]:
    """Train `model` on `train_batches`, evaluating on `eval_batches` after every epoch.

    With `run_dir`, each epoch writes `checkpoint.pt` (model, EMA, optimizer, scheduler, epoch,
    history) and `log.jsonl`; `resume=True` continues from that checkpoint and ends with the same
    weights as an uninterrupted run, because every epoch reseeds all randomness from (seed, epoch);
    only the recipe must match, the runtime may differ. With `recipe.ema` the averaged weights are
    evaluated every epoch, and `model` ends holding them (the raw ones stay in the checkpoint).
    `on_epoch` may raise (the search raises optuna.TrialPruned) to stop early.
    """
    keep_freed_memory()
    check_trainable(recipe, len(train_batches) * recipe.batch_size)
    device, dtype = runtime.device, runtime.dtype
    model.to(device, memory_format=runtime.layout)
    optimizer = make_optimizer(model, recipe)
    learner = Learner(model, optimizer, make_schedule(optimizer, recipe, len(train_batches)),
                      make_ema(model, recipe))
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    mix = MixBatch(recipe.mixup, recipe.cutmix) if recipe.mixup or recipe.cutmix else None
    checkpoint = run_dir / "checkpoint.pt" if run_dir else None
    history = _restore(checkpoint, recipe, device, learner) if resume else []
    run_task = progress.add_task("epochs", total=recipe.epochs, completed=len(history),
                                 stats="") if progress else None
    task = None
    try:
        for epoch in range(len(history) + 1, recipe.epochs + 1):
            seed_epoch(recipe, epoch, train_batches, mix)
            task = progress.add_task(f"epoch {epoch}/{recipe.epochs}", total=len(train_batches),
                                     stats="") if progress else None
            start = time.perf_counter()
            train_loss, train_acc, seen = train_epoch(
                learner, train_batches, criterion, mix, device, dtype, epoch, progress, task)
            train_seconds = time.perf_counter() - start
            if learner.ema is not None:
                measure_norm_stats(learner.ema.module, train_batches, device, dtype)
            result = evaluate(learner.evaluated, eval_batches, device, dtype)
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
                _save_checkpoint(checkpoint, learner, recipe, history)
                (run_dir / "log.jsonl").write_text("".join(json.dumps(asdict(h)) + "\n" for h in history))
            if on_epoch:
                on_epoch(log)
        if learner.ema is not None:  # callers test and save `model`: the weights evaluated above
            model.load_state_dict(learner.ema.module.state_dict())
    finally:  # a pruned or interrupted run leaves no stale bars behind
        if progress:
            for t in (task, run_task):
                if t is not None and t in progress.task_ids:
                    progress.remove_task(t)
    return history


def train_epoch(learner: Learner, batches: Batches, criterion, mix: MixBatch | None,
                device: torch.device, dtype: torch.dtype | None, epoch: int,
                progress: Progress | None, task) -> tuple[float, float, int]:
    """One pass over `batches` (already on the device): (mean loss, accuracy, images seen); a
    mixed batch's accuracy counts each image's dominant label."""
    model, optimizer = learner.model, learner.optimizer
    model.train()
    start, seen = time.perf_counter(), 0
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for step, (images, labels) in enumerate(batches, 1):
        images, partners, lam = mix(images, labels) if mix else (images, labels, 1.0)
        with autocast(device, dtype):
            logits = model(images)
            loss = mixed_loss(criterion, logits.float(), labels, partners, lam)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        learner.schedule.step()
        if learner.ema is not None:
            learner.ema.update_parameters(model)
        loss_sum += loss.detach() * len(labels)
        correct += (logits.argmax(1) == (labels if lam >= 0.5 else partners)).sum()
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


def mixed_loss(criterion: nn.Module, logits: torch.Tensor, labels: torch.Tensor,
               partners: torch.Tensor, lam: float) -> torch.Tensor:
    """The loss of a batch whose images are λ themselves and 1 - λ their partners' (MixUp,
    CutMix): so are the targets, each smoothed by `criterion`. Unmixed (λ = 1): plain."""
    loss = criterion(logits, labels)
    if lam < 1:
        loss = lam * loss + (1 - lam) * criterion(logits, partners)
    return loss


def _restore(checkpoint: Path | None, recipe: Recipe, device: torch.device,
             learner: Learner) -> list[EpochLog]:
    """Load model, EMA, optimizer and schedule from `checkpoint`; the epochs done so far."""
    if not (checkpoint and checkpoint.exists()):
        raise NasError(f"nothing to resume: {checkpoint or 'no run folder'} does not exist")
    state = torch.load(checkpoint, map_location=device, weights_only=False)
    if (saved := as_written_today(state["recipe"])) != recipe.to_dict():
        diff = dict_diff(saved, recipe.to_dict())
        raise NasError(f"{checkpoint} was made with another recipe ({diff}); rerun with the "
                       "same options, or use a new output folder")
    learner.model.load_state_dict(state["model"])
    if learner.ema is not None:  # the same recipe: the checkpoint holds the average too
        learner.ema.load_state_dict(state["ema"])
    learner.optimizer.load_state_dict(state["optimizer"])
    learner.schedule.load_state_dict(state["scheduler"])
    return [EpochLog(**h) for h in state["history"]]


def _save_checkpoint(path: Path, learner: Learner, recipe: Recipe, history: list[EpochLog]) -> None:
    """Write atomically: a kill mid-write leaves the previous checkpoint intact."""
    tmp = path.with_suffix(".tmp")
    ema = learner.ema.state_dict() if learner.ema is not None else None
    torch.save({"model": learner.model.state_dict(), "ema": ema,
                "optimizer": learner.optimizer.state_dict(),
                "scheduler": learner.schedule.state_dict(), "recipe": recipe.to_dict(),
                "epoch": len(history), "history": [asdict(h) for h in history]}, tmp)
    os.replace(tmp, path)

