"""The time budget: training for minutes instead of epochs, its one home.

- `Plan`: what a budgeted run starts with, its run folder's budget.json: the epochs that fit its
  minutes at the design's speed measured here before the run (`PLAN_TIMING`), and that speed.
- `Deadline`: the run's epochs re-planned after every epoch from the real epochs' time.
- `TrialClock`: a search or calibration trial's steps per round re-planned after every round.
- `RoundBatches`, `equal_time` and `equal_steps`: a trial's rounds, each as many steps as its
  share buys at its speed, or as the study gives every trial.

A speed measured before a run does not hold on a machine whose speed drifts
(studies/archive/equal-time-v2); that is why both keep re-planning
while they train. The training loop asks them through its `Replan` protocol and resizes its
learning-rate schedule to end at the last step, so every schedule completes whatever the speed.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import NasError
from nas.training.speed import EPOCH_IMAGES, TIMING, Speed, Timing, measure_speed

if TYPE_CHECKING:
    import torch

    from nas.design.config import ArchConfig
    from nas.training.batches import Batches
    from nas.training.checkpoints import EpochLog
    from nas.training.recipe import Recipe
    from nas.training.runtime import Runtime

PLAN_FILE = "budget.json"  # a budgeted run folder's Plan
RECENT_EPOCHS = 3  # a re-plan's epoch time: the median of the last three (one slow epoch does not move it)


def check_budget(minutes: float) -> None:
    """NasError (one line) unless `minutes` can be a time budget (0: none)."""
    if not 0 <= minutes < 10_000_000:  # also refuses nan and inf, which argparse reads as floats
        raise NasError(f"--budget-minutes {minutes}: give the minutes of the final training you "
                       "mean to run, e.g. 12.5 (0: equal epochs)")


# How `plan_budget` times a design before its run: 5 s of training steps. The plan only has to be
# near: the run's `Deadline` keeps the budget. The two inference figures, which plan only the
# evaluations (a tenth of an epoch's time or less), are timed as a search times them (`TIMING`,
# half a second each): timing them for 5 s each too made a plan's timing 12.3-13.4 s instead of
# 6.4-6.6 on the Zen 4, paid by every design a speed floor times (docs/search.md, the speed floor).
PLAN_TIMING = Timing(warmup=3, min_steps=10, max_steps=500, seconds=5.0)


def epochs_in(seconds: float, epoch_seconds: float) -> int:
    """The whole epochs that fit `seconds` at `epoch_seconds` each (at least one)."""
    return max(1, math.floor(seconds / epoch_seconds + 1e-9))


def steps_per_round(seconds: float, images_per_s: float, batch_size: int, rounds: int,
                    least: int = 1) -> int:
    """The optimizer steps per round when `seconds` of training at `images_per_s` are cut into
    `rounds` equal rounds (at least `least` steps in all, e.g. what OneCycle needs)."""
    steps = round(seconds * images_per_s / batch_size / rounds)
    return max(1, steps, math.ceil(least / rounds))


@dataclass(frozen=True)
class Deadline:
    """A time budget kept while the run runs: after every epoch the loop asks how many epochs the
    run has in all, from the real epochs' time, and resizes its schedule to end at the last."""

    seconds: float  # the whole run: epochs with their evaluations, then the final evaluation
    reserve: float = 0.0  # of those, the final evaluation's

    def epochs(self, history: Sequence[EpochLog], planned: int) -> int:
        """The run's epochs in all, `history` done of the `planned` so far. A finished schedule is
        never extended (its lr has annealed); an unfinished one gets at least one more epoch,
        even past the deadline, so that its lr anneals."""
        done = len(history)
        if done >= planned:
            return done
        epoch = statistics.median(h.seconds for h in history[-RECENT_EPOCHS:])
        left = self.seconds - self.reserve - sum(h.seconds for h in history)
        return done + epochs_in(left, epoch)

    def plan(self, history: Sequence[EpochLog], epochs: int, steps: int) -> tuple[int, int]:
        return self.epochs(history, epochs), steps


@dataclass(frozen=True)
class Plan:
    """A budgeted run's plan before it starts: `epochs` of `epoch_seconds` (training and its
    evaluation) fit `budget_minutes`, the final evaluation's `final_eval_seconds` kept apart, at
    `speed` (`Speed.attrs`) measured on `device`. Written to the run folder first, so that a
    resumed run keeps its epochs; the run's `Deadline` re-plans them."""

    budget_minutes: float
    epochs: int
    epoch_seconds: float
    device: str
    speed: dict[str, float] = field(default_factory=dict)
    final_eval_seconds: float = 0.0  # 0 in a budget.json written before it was kept apart

    def deadline(self) -> Deadline:
        return Deadline(self.budget_minutes * 60, self.final_eval_seconds)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def describe(self) -> str:
        """One line: what the run was planned at."""
        rate = self.speed.get("train_images_per_s")
        return (f"a budget of {self.budget_minutes:g} min, planned at {self.epochs} epochs of "
                f"{self.epoch_seconds:.1f} s"
                + (f" ({rate:,.0f} training images/s measured on {self.device})" if rate else "")
                + ", re-planned after every epoch from the real epochs' time")


def make_plan(minutes: float, speed: Speed, train_images: int, eval_images: int, device: str) -> Plan:
    """How many epochs of `train_images`, each followed by an evaluation of `eval_images`, fit
    `minutes` at the measured `speed`, the final evaluation (two passes: flip-TTA) kept apart."""
    epoch, final = epoch_and_final_seconds(speed, train_images, eval_images)
    return Plan(minutes, epochs_in(minutes * 60 - final, epoch), round(epoch, 2), device,
                speed.attrs(), round(final, 2))


def epoch_and_final_seconds(speed: Speed, train_images: int, eval_images: int) -> tuple[float, float]:
    """The seconds of an epoch of `train_images` with its evaluation of `eval_images` at `speed`,
    and those of a final evaluation (two passes: flip-TTA)."""
    evaluation = eval_images / speed.infer_images_per_s
    return speed.epoch_seconds * train_images / EPOCH_IMAGES + evaluation, 2 * evaluation


def minutes_of(epochs: int, speed: Speed, train_images: int, eval_images: int) -> float:
    """The minutes `epochs` epochs with their evaluations and the final one take at `speed`:
    what `make_plan` fits into a budget."""
    epoch, final = epoch_and_final_seconds(speed, train_images, eval_images)
    return (epochs * epoch + final) / 60


def plan_speed(config: ArchConfig, recipe: Recipe, runtime: Runtime) -> Speed:
    """`config`'s speed with `recipe` here, timed now as a plan is: training for 5 s
    (`PLAN_TIMING`), inference as a search times it (`TIMING`)."""
    return measure_speed(config, recipe, runtime, timing=PLAN_TIMING, infer_timing=TIMING)


def plan_budget(out: Path, minutes: float, config: ArchConfig, recipe: Recipe, runtime: Runtime,
                train_images: int, eval_images: int) -> Plan:
    """Time `config` here (`PLAN_TIMING`), plan `minutes` from that speed and write the plan to
    `out` before the run starts."""
    speed = plan_speed(config, recipe, runtime)
    plan = make_plan(minutes, speed, train_images, eval_images, runtime.device_name())
    out.mkdir(parents=True, exist_ok=True)
    (out / PLAN_FILE).write_text(json.dumps(plan.to_dict(), indent=1) + "\n")
    return plan


def read_plan(out: Path) -> Plan:
    """The plan a budgeted run to resume started with (its epochs must not change)."""
    try:
        return Plan.from_dict(json.loads((out / PLAN_FILE).read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise NasError(f"cannot read {out / PLAN_FILE} ({type(err).__name__}), the epochs this run's "
                       "budget gave: resume with --epochs N, or start a new run with another --out") from None


@dataclass(frozen=True)
class TrialClock:
    """A search trial's share of the budget, kept while it trains: after every round the steps of
    the rounds left are re-planned from the time left, less a round's evaluation, at the recent
    rounds' real seconds per step. The rounds stay, so Hyperband's rungs still fall at equal
    shares of the time."""

    seconds: float  # the trial's share: its rounds with their evaluations
    batch_size: int

    def plan(self, history: Sequence[EpochLog], rounds: int, steps: int) -> tuple[int, int]:
        """`rounds` rounds, and the steps per round of the ones left (at least one)."""
        if len(history) >= rounds:
            return rounds, steps
        recent = history[-RECENT_EPOCHS:]
        step = statistics.median(self.batch_size / h.images_per_s for h in recent)
        evaluation = statistics.median(h.seconds - h.steps * self.batch_size / h.images_per_s
                                       for h in recent)
        left = self.seconds - sum(h.seconds for h in history)
        return rounds, max(1, round((left / (rounds - len(history)) - evaluation) / step))


class RoundBatches:
    """A batch source that yields `steps` batches per pass (a round), drawing from `batches` and
    starting it over when it runs out. Seeding goes to the source, so a round's batches are
    decided by the loop's per-pass seed as an epoch's are."""

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


def equal_steps(batches: Batches, steps: int, rounds: int, least: int = 1) -> RoundBatches:
    """A search trial at equal steps: `rounds` equal rounds that together make `steps` optimizer
    steps (at least `least`; rounded up to whole rounds), whatever the design's speed."""
    return RoundBatches(batches, max(1, math.ceil(max(steps, least) / rounds)))


def equal_time(batches: Batches, seconds: float, images_per_s: float, batch_size: int, rounds: int,
               least: int = 1) -> tuple[RoundBatches, TrialClock]:
    """A search or calibration trial at equal time: `rounds` rounds of the steps that `seconds`
    buy at the measured `images_per_s` (at least `least` in all), and the clock that keeps them."""
    steps = steps_per_round(seconds, images_per_s, batch_size, rounds, least)
    return RoundBatches(batches, steps), TrialClock(seconds, batch_size)
