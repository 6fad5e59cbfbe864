"""What a run leaves in its folder after every epoch, and how a resumed run reads it back:
`checkpoint.pt` (model, EMA, optimizer, schedule, recipe, epoch, history; a pickle for
`torch.load(weights_only=False)`) and `log.jsonl` (one `EpochLog` a line)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from nas.design.config import dict_diff
from nas.errors import NasError
from nas.training.recipe import Recipe, as_written_today

CHECKPOINT, LOG = "checkpoint.pt", "log.jsonl"


@dataclass(frozen=True)
class EpochLog:
    """One line of the per-epoch log."""

    epoch: int
    train_loss: float
    train_acc: float
    eval_loss: float
    eval_acc: float
    lr: float
    seconds: float  # training and evaluation
    images_per_s: float  # training only
    steps: int = 0  # optimizer steps (0: a log written before they were kept)


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


def save(run_dir: Path, learner: Learner, recipe: Recipe, history: list[EpochLog]) -> None:
    """Write the checkpoint atomically (a kill mid-write leaves the previous one intact), then
    the log of every epoch so far."""
    path = run_dir / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    ema = learner.ema.state_dict() if learner.ema is not None else None
    torch.save({"model": learner.model.state_dict(), "ema": ema,
                "optimizer": learner.optimizer.state_dict(),
                "scheduler": learner.schedule.state_dict(), "recipe": recipe.to_dict(),
                "epoch": len(history), "history": [asdict(h) for h in history]}, tmp)
    os.replace(tmp, path)
    (run_dir / LOG).write_text("".join(json.dumps(asdict(h)) + "\n" for h in history))


def restore(run_dir: Path | None, recipe: Recipe, device: torch.device,
            learner: Learner) -> list[EpochLog]:
    """Load model, EMA, optimizer and schedule from the checkpoint in `run_dir`; the epochs done
    so far. NasError when there is none, or it was made with another recipe."""
    checkpoint = run_dir / CHECKPOINT if run_dir else None
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


def epochs_done(run_dir: Path) -> int:
    """How many epochs the checkpoint in `run_dir` holds; NasError when it cannot be read."""
    checkpoint = run_dir / CHECKPOINT
    try:
        return int(torch.load(checkpoint, map_location="cpu", weights_only=False)["epoch"])
    except Exception as err:  # a truncated or foreign file raises anything from EOFError to KeyError
        raise NasError(f"{checkpoint} cannot be read ({type(err).__name__}): it is not a checkpoint "
                       "of nas; start a new run with another --out") from None
