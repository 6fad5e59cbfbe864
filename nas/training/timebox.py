"""Training for minutes instead of epochs (`nas search --budget-minutes`): how many steps, or
epochs, a design's measured speed buys in a time, batches cut to any number of steps per round,
and the re-plans that keep those minutes while the training runs: a budgeted run's `Deadline`
(its epochs), a search trial's `TrialClock` (its steps per round).

At equal time a design twice as fast gets twice the steps; the training loop sizes its learning-rate
schedule to rounds × steps per round, and resizes it at every re-plan, so every schedule
completes whatever the speed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from nas.training.batches import Batches
from nas.training.checkpoints import EpochLog
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
    `minutes` at the measured `speed`, the final evaluation (two passes: flip-TTA) kept apart:
    the plan `nas train-best` starts a budgeted run with (its `Deadline` re-plans it from the real
    epochs), with the figures it was derived from (written to the run folder's budget.json)."""
    evaluation = eval_images / speed.infer_images_per_s
    epoch = speed.epoch_seconds * train_images / EPOCH_IMAGES + evaluation
    return {"budget_minutes": minutes, "epochs": epochs_in(minutes * 60 - 2 * evaluation, epoch),
            "epoch_seconds": round(epoch, 2), "final_eval_seconds": round(2 * evaluation, 2),
            "device": device, "speed": speed.attrs()}


RECENT_EPOCHS = 3  # a re-plan's epoch time: the median of the last three epochs


class Replan(Protocol):
    """What the training loop asks after every epoch: given the epochs done, the plan's epochs and
    its steps per epoch, the epochs and the steps per epoch left to run."""

    def plan(self, history: Sequence[EpochLog], epochs: int, steps: int) -> tuple[int, int]: ...


@dataclass(frozen=True)
class Deadline:
    """A time budget kept while the run runs. A speed measured before the run does not hold it:
    on the 2-core EPYC one design measured 2,759 and 2,155 images/s for two seeds, and a run took
    11.5 of its 8.9 minutes (studies/equal-time-v2). So after every epoch the loop asks `epochs`
    how many the run has in all, from the real epochs' time, and resizes its learning-rate
    schedule to end at the last of them. The median of the last RECENT_EPOCHS epochs follows the
    machine's drift over minutes; one slow epoch (another process's burst) does not move it."""

    seconds: float  # the whole run: epochs with their evaluations, then the final evaluation
    reserve: float = 0.0  # of those, the final evaluation's

    def epochs(self, history: Sequence[EpochLog], planned: int) -> int:
        """The run's epochs in all, `history` done of the `planned` so far. A finished schedule is
        never extended (its lr has annealed); an unfinished one gets at least one more epoch,
        even past the deadline, so that its lr anneals: a run overruns by under an epoch only
        when its last epoch is much slower than the ones before it."""
        done = len(history)
        if done >= planned:
            return done
        epoch = statistics.median(h.seconds for h in history[-RECENT_EPOCHS:])
        left = self.seconds - self.reserve - sum(h.seconds for h in history)
        return done + epochs_in(left, epoch)

    def plan(self, history: Sequence[EpochLog], epochs: int, steps: int) -> tuple[int, int]:
        return self.epochs(history, epochs), steps


@dataclass(frozen=True)
class TrialClock:
    """A search trial's share of the budget, kept while it trains. Its steps are bought at a speed
    measured in half a second before it trains, and that does not hold either: in equal-time-v3
    trials trained 0.93 to 1.35 of their share, the winner 1.27 and the twin it was compared with
    0.96. So after every round the steps of the rounds left are re-planned: the time left, less
    a round's evaluation, at the recent rounds' real seconds per step. The rounds stay, so
    Hyperband's rungs still fall at equal shares of the time."""

    seconds: float  # the trial's share: its rounds with their evaluations
    batch_size: int

    def plan(self, history: Sequence[EpochLog], epochs: int, steps: int) -> tuple[int, int]:
        """`epochs` rounds, and the steps per round of the ones left (at least one)."""
        if len(history) >= epochs:
            return epochs, steps
        recent = history[-RECENT_EPOCHS:]
        step = statistics.median(self.batch_size / h.images_per_s for h in recent)
        evaluation = statistics.median(h.seconds - h.steps * self.batch_size / h.images_per_s
                                       for h in recent)
        left = self.seconds - sum(h.seconds for h in history)
        return epochs, max(1, round((left / (epochs - len(history)) - evaluation) / step))


def equal_time(batches: Batches, seconds: float, images_per_s: float, batch_size: int, rounds: int,
               least: int = 1) -> tuple[RoundBatches, TrialClock]:
    """A search or calibration trial at equal time: `rounds` rounds of the steps that `seconds`
    buy at the measured `images_per_s` (at least `least` in all), and the clock that keeps them."""
    steps = steps_per_round(seconds, images_per_s, batch_size, rounds, least)
    return RoundBatches(batches, steps), TrialClock(seconds, batch_size)


def deadline_of(plan: dict[str, Any]) -> Deadline:
    """The deadline of a run folder's budget.json (`budget_plan`; saved before the final
    evaluation was kept apart: no reserve)."""
    return Deadline(plan["budget_minutes"] * 60, plan.get("final_eval_seconds", 0.0))


class RoundBatches:
    """A batch source that yields `steps` batches per pass (a "round"), drawing from `batches` and
    starting it over when it runs out: the rounds of a time-budgeted trial, each ending on a
    validation score that the pruner reads. Seeding goes to the source, so a round's batches are
    decided by the loop's per-epoch seed as an epoch's are."""

    def __init__(self, batches: Batches, steps: int) -> None:
        self.batches, self.steps = batches, steps

    def __len__(self) -> int:
        return self.steps

    def resize(self, steps: int) -> None:
        """Make the next rounds `steps` long (a `TrialClock`'s re-plan)."""
        self.steps = steps

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
