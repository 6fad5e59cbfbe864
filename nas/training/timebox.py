"""Training for minutes instead of epochs (`nas search --budget-minutes`): how many steps, or
epochs, a design's measured speed buys in a time, and batches cut to any number of steps per round.

At equal time a design twice as fast gets twice the steps; the training loop sizes its learning-rate
schedule to rounds × steps per round, so every schedule completes whatever the speed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch

from nas.training.batches import Batches
from nas.training.speed import EPOCH_IMAGES, Speed


def steps_per_round(seconds: float, images_per_s: float, batch_size: int, rounds: int,
                    least: int = 1) -> int:
    """The optimizer steps per round when `seconds` of training at `images_per_s` are cut into
    `rounds` equal rounds (at least `least` steps in all, e.g. what OneCycle needs)."""
    steps = round(seconds * images_per_s / batch_size / rounds)
    return max(1, steps, math.ceil(least / rounds))


def epochs_in(seconds: float, epoch_seconds: float) -> int:
    """The whole epochs that fit `seconds` at `epoch_seconds` each (at least one)."""
    return max(1, math.floor(seconds / epoch_seconds + 1e-9))


def budget_plan(minutes: float, speed: Speed, train_images: int, eval_images: int, device: str
                ) -> dict[str, Any]:
    """How many epochs of `train_images`, each followed by an evaluation of `eval_images`, fit
    `minutes` at the measured `speed`: what `nas train-best` runs for a study with a time budget,
    with the figures it was derived from (written to the run folder's budget.json)."""
    epoch = (speed.epoch_seconds * train_images / EPOCH_IMAGES
             + eval_images / speed.infer_images_per_s)
    return {"budget_minutes": minutes, "epochs": epochs_in(minutes * 60, epoch),
            "epoch_seconds": round(epoch, 2), "device": device, "speed": speed.attrs()}


class RoundBatches:
    """A batch source that yields `steps` batches per pass (a "round"), drawing from `batches` and
    starting it over when it runs out: the rounds of a time-budgeted trial, each ending on a
    validation score that the pruner reads. Seeding goes to the source, so a round's batches are
    decided by the loop's per-epoch seed as an epoch's are."""

    def __init__(self, batches: Batches, steps: int) -> None:
        self.batches, self.steps = batches, steps

    def __len__(self) -> int:
        return self.steps

    def seed(self, seed: int) -> None:
        self.batches.seed(seed)

    def set_epoch(self, epoch: int, seed: int) -> None:
        self.batches.set_epoch(epoch, seed)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        given = 0
        while given < self.steps:
            before = given
            for batch in self.batches:
                yield batch
                given += 1
                if given == self.steps:  # return before the source makes a batch nobody takes
                    return
            if given == before:  # an empty source would loop for ever
                raise ValueError("RoundBatches: the batch source yields no batch")
