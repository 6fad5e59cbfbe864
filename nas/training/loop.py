"""The one training loop, used by `nas train`, `nas search` and `nas train-best`.

What is trained is a `nas.training.recipe.Recipe`, where it runs a `nas.training.runtime.Runtime`. The loop is plain
PyTorch: SGD (Nesterov) or AdamW, OneCycle (cosine or linear) or cosine, label smoothing; autocast in bf16 where the
hardware runs it fast (CUDA; CPUs with AVX512-BF16 or AMX; elsewhere bf16 is emulated, ~10× slower).
The knobs of a stronger recipe, each off by default: MixUp / CutMix, an exponential moving average
of the weights (EMA), no weight decay on BatchNorm and biases, a separate lr for BatchNorm biases,
a whitened first conv.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from nas.data.batch_augment import MixBatch
from nas.errors import NasError
from nas.training.batches import Batches
from nas.training.checkpoints import EpochLog, Learner, restore, save
from nas.training.ema import make_ema, measure_norm_stats
from nas.training.metrics import evaluate
from nas.training.progress import TrainingProgress
from nas.training.recipe import Recipe
from nas.training.runtime import Runtime, autocast, keep_freed_memory
from nas.training.whiten import whiten_first_conv

ONECYCLE_MIN_STEPS = 8  # fewer steps than this and OneCycle's phases are empty


class NonFiniteLoss(NasError):
    """The training loss became NaN or infinite."""


class Replan(Protocol):
    """What the loop asks after every pass when a time budget is kept (`nas.training.budget`:
    a run's `Deadline`, a trial's `TrialClock`): given the passes done, the passes planned and
    the steps per pass, the passes and the steps per pass to run from now on."""

    def plan(self, history: Sequence[EpochLog], epochs: int, steps: int) -> tuple[int, int]: ...


@dataclass
class Hooks:
    """Who hears of a training as it runs, and who may change it: `progress` hears of every pass
    and every 20th step; `on_epoch` of every pass, and may raise to stop the run (the search's
    pruner raises optuna.TrialPruned); `replan` re-plans the passes left (a time budget)."""

    progress: TrainingProgress = field(default_factory=TrainingProgress)
    on_epoch: Callable[[EpochLog], None] | None = None
    replan: Replan | None = None


NORMS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def param_groups(model: nn.Module, recipe: Recipe) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: one, unless a knob sets norms and biases apart; then
    "weights" (conv and linear: decayed; first, so that its lr is the one logged),
    "norm_weights_and_biases" (norm weights, other biases) and "norm_biases" (lr × scale)."""
    if not recipe.no_decay_norm_bias and recipe.norm_bias_lr_scale == 1:
        return [{"params": list(model.parameters())}]  # the optimizer state's layout without the knobs
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


def check_trainable(recipe: Recipe, train_images: int, timed: bool = False) -> None:
    """NasError, before anything is trained, when `train_images` cannot fill the schedule: make no
    full batch, or (unless `timed`: at equal time a round is as many steps as the time buys, from
    batches drawn again and again) too few steps for OneCycle."""
    if train_images < recipe.batch_size:
        raise NasError(f"{train_images} training images make no full batch of --batch-size "
                       f"{recipe.batch_size}: use more images or a smaller batch")
    steps = train_images // recipe.batch_size
    if not timed and recipe.schedule != "cosine" and steps * recipe.epochs < ONECYCLE_MIN_STEPS:
        raise NasError(f"OneCycle needs at least {ONECYCLE_MIN_STEPS} steps, this run has "
                       f"{steps * recipe.epochs} ({recipe.epochs} epochs of {steps} batches of "
                       f"{recipe.batch_size} from {train_images} images): use more epochs or "
                       "images, a smaller batch, or --schedule cosine")


def make_schedule(optimizer: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    total = recipe.epochs * steps_per_epoch
    if recipe.schedule != "cosine":  # each group's peak is its own lr (norm_bias_lr_scale)
        peaks = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=total, pct_start=recipe.warmup,
            anneal_strategy="cos" if recipe.schedule == "onecycle" else "linear")
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)


def schedule_steps(schedule: torch.optim.lr_scheduler.LRScheduler) -> int:
    """The steps `schedule` ends after (as made, or as last resized)."""
    if isinstance(schedule, torch.optim.lr_scheduler.OneCycleLR):
        return schedule.total_steps
    return schedule.T_max


def resize_schedule(schedule: torch.optim.lr_scheduler.LRScheduler, recipe: Recipe, total: int) -> None:
    """Make `schedule` end after `total` steps (a `Deadline`'s re-plan), going on from the lr it
    stands at: the steps taken keep their lrs, and the rest of the annealing is stretched or
    squeezed to end at `total` (past its peak a resized OneCycle only falls; in its warm-up, the
    peak moves to `recipe.warmup` of the new total). OneCycle keeps its phases' ends in
    `_schedule_phases`, set only when it is made; tests/test_budget.py holds this to torch's."""
    if isinstance(schedule, torch.optim.lr_scheduler.OneCycleLR):
        rise, fall = schedule._schedule_phases
        step, end = schedule.last_epoch, float(total) - 1
        if step <= rise["end_step"]:
            rise["end_step"] = max(float(recipe.warmup * total) - 1, float(step))
        else:  # the share of the fall done so far stays done: the new fall starts where it is
            done = (step - rise["end_step"]) / (fall["end_step"] - rise["end_step"])
            rise["end_step"] = (step - done * end) / (1 - done)
        if end >= 1:  # a fall of at least one step: one of none divides by zero in torch's get_lr
            rise["end_step"] = min(rise["end_step"], end - 1)
        fall["end_step"], schedule.total_steps = end, total
    else:  # cosine's recursive form anneals from the lr it stands at to 0 at the new T_max
        schedule.T_max = total


def make_learner(model: nn.Module, recipe: Recipe, runtime: Runtime, steps_per_epoch: int) -> Learner:
    """`model` moved to the runtime's device and layout, with the recipe's optimizer, schedule
    (over `steps_per_epoch` × its epochs) and EMA."""
    model.to(runtime.device, memory_format=runtime.layout)
    optimizer = make_optimizer(model, recipe)
    return Learner(model, optimizer, make_schedule(optimizer, recipe, steps_per_epoch),
                   make_ema(model, recipe))


def seed_of(recipe: Recipe, epoch: int) -> int:
    """The seed of every random draw of `epoch` (from 1; 0: before the first)."""
    return recipe.seed * 100_003 + epoch


def seed_epoch(recipe: Recipe, epoch: int, batches: Batches, mix: MixBatch | None) -> None:
    """Reseed every random draw of `epoch` from (seed, epoch): a resumed run repeats it exactly."""
    epoch_seed = seed_of(recipe, epoch)
    torch.manual_seed(epoch_seed)  # dropout
    batches.seed(epoch_seed)  # shuffling and augmentation
    batches.set_epoch(epoch, recipe.seed)  # alternating flip
    if mix is not None:
        mix.seed(epoch_seed, recipe.mix_probability(epoch))


def train(model: nn.Module, batches: tuple[Batches, Batches], recipe: Recipe, runtime: Runtime, *,
          run_dir: Path | None = None, resume: bool = False, hooks: Hooks | None = None
          ) -> list[EpochLog]:
    """Train `model` on the first of `batches`, evaluating on the second after every epoch.

    With `run_dir`, each epoch writes `checkpoint.pt` and `log.jsonl` (`nas.training.checkpoints`);
    `resume=True` continues from that checkpoint and ends with the same weights as an
    uninterrupted run, because every epoch reseeds all randomness from (seed, epoch); only the
    recipe must match, the runtime may differ. With `recipe.ema` the averaged weights are
    evaluated every epoch, and `model` ends holding them (the raw ones stay in the checkpoint).
    With `hooks.replan` the run's epochs, or a search trial's steps per round, are re-planned
    after every pass from the real passes' time, and the schedule resized to end at the last
    step: `recipe.epochs` is then the plan the run starts with, and the checkpoint's schedule the
    plan a resumed run continues.
    """
    train_batches, eval_batches = batches
    hooks = hooks or Hooks()
    keep_freed_memory()
    check_trainable(recipe, len(train_batches) * recipe.batch_size)
    device, dtype = runtime.device, runtime.dtype
    if recipe.whiten_init and not resume:  # a resumed run's weights come from its checkpoint
        train_batches.seed(seed_of(recipe, 0))  # "epoch 0"'s draws: the same in every run
        whiten_first_conv(model, train_batches)
    learner = make_learner(model, recipe, runtime, len(train_batches))
    optimizer = learner.optimizer
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    mix = MixBatch(recipe.mixup, recipe.cutmix) if recipe.mixup or recipe.cutmix else None
    history = restore(run_dir, recipe, device, learner) if resume else []
    epochs = schedule_steps(learner.schedule) // len(train_batches)  # recipe.epochs, or re-planned
    progress = hooks.progress
    progress.run_started(epochs, len(history))
    try:  # a pruned or interrupted run tells `progress` too: it leaves no stale bars behind
        while len(history) < epochs:
            epoch = len(history) + 1
            seed_epoch(recipe, epoch, train_batches, mix)
            progress.epoch_started(epoch, epochs, len(train_batches))
            start = time.perf_counter()
            train_loss, train_acc, seen = train_epoch(
                learner, train_batches, criterion, mix, device, dtype, epoch, progress)
            train_seconds = time.perf_counter() - start
            if learner.ema is not None:
                measure_norm_stats(learner.ema.module, train_batches, device, dtype)
            result = evaluate(learner.evaluated, eval_batches, device, dtype)
            log = EpochLog(epoch, train_loss, train_acc, result.loss,
                           result.accuracy, optimizer.param_groups[0]["lr"],
                           time.perf_counter() - start, seen / train_seconds, len(train_batches))
            history.append(log)
            progress.epoch_ended(log)
            if hooks.replan is not None:
                replanned, steps = hooks.replan.plan(history, epochs, len(train_batches))
                if (replanned, steps) != (epochs, len(train_batches)):
                    if steps != len(train_batches):  # a search trial's rounds (RoundBatches)
                        train_batches.resize(steps)
                    epochs = replanned
                    resize_schedule(learner.schedule, recipe,  # last_epoch: the steps taken
                                    learner.schedule.last_epoch + (epochs - epoch) * steps)
            if run_dir:
                save(run_dir, learner, recipe, history)
            if hooks.on_epoch:
                hooks.on_epoch(log)
        if learner.ema is not None:  # callers test and save `model`: the weights evaluated above
            model.load_state_dict(learner.ema.module.state_dict())
    finally:
        progress.run_ended()
    return history


def train_epoch(learner: Learner, batches: Batches, criterion, mix: MixBatch | None,
                device: torch.device, dtype: torch.dtype | None, epoch: int,
                progress: TrainingProgress) -> tuple[float, float, int]:
    """One pass over `batches` (already on the device): (mean loss, accuracy, images seen); a
    mixed batch's accuracy counts each image's dominant label."""
    learner.model.train()
    start, seen = time.perf_counter(), 0
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for step, (images, labels) in enumerate(batches, 1):
        loss, logits, dominant = train_step(learner, images, labels, criterion, mix, device, dtype)
        loss_sum += loss.detach() * len(labels)
        correct += (logits.argmax(1) == dominant).sum()
        seen += len(labels)
        if step % 20 == 0 or step == len(batches):
            mean_loss = loss_sum.item() / seen  # syncs the GPU: only every 20 steps
            if not math.isfinite(mean_loss):
                raise NonFiniteLoss(f"training loss became {mean_loss} in epoch {epoch} "
                                    f"(step {step}); lower --lr or check the design")
            progress.step_done(step, mean_loss, correct.item() / seen,
                               seen / (time.perf_counter() - start))
    return loss_sum.item() / seen, correct.item() / seen, seen


def train_step(learner: Learner, images: torch.Tensor, labels: torch.Tensor, criterion: nn.Module,
               mix: MixBatch | None, device: torch.device, dtype: torch.dtype | None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimizer step on a batch (mixed first, with `mix`): (loss, logits, each image's
    dominant label). `nas.training.speed` times this very step."""
    model, optimizer = learner.model, learner.optimizer
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
    return loss, logits, labels if lam >= 0.5 else partners


def mixed_loss(criterion: nn.Module, logits: torch.Tensor, labels: torch.Tensor,
               partners: torch.Tensor, lam: float) -> torch.Tensor:
    """The loss of a batch whose images are λ themselves and 1 - λ their partners' (MixUp,
    CutMix): so are the targets, each smoothed by `criterion`. Unmixed (λ = 1): plain."""
    loss = criterion(logits, labels)
    if lam < 1:
        loss = lam * loss + (1 - lam) * criterion(logits, partners)
    return loss
