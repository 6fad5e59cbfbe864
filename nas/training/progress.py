"""What the training loop tells whoever shows its progress. The loop never prints: the command
line passes `nas.cli.views.TrainingBars`, which draws bars; everyone else gets these no-ops."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nas.training.checkpoints import EpochLog


class TrainingProgress:
    """The events of one `train` call, in order; each does nothing here, a subclass shows it."""

    def run_started(self, epochs: int, done: int) -> None:
        """A run of `epochs` epochs starts, `done` of them trained before (a resumed run)."""

    def epoch_started(self, epoch: int, epochs: int, steps: int) -> None:
        """Epoch `epoch` of `epochs` starts; it has `steps` training steps."""

    def step_done(self, step: int, loss: float, accuracy: float, images_per_s: float) -> None:
        """Every 20 steps and at the epoch's last: the epoch's mean loss and accuracy so far."""

    def epoch_ended(self, log: EpochLog) -> None:
        """The epoch is trained and evaluated."""

    def run_ended(self) -> None:
        """The run ends: finished, or stopped early (pruned, interrupted, failed)."""


class SeriesProgress(TrainingProgress):
    """A series of trainings (`nas calibrate`'s), with one bar over the whole series besides
    each training's own."""

    def series_started(self, description: str, total: float, done: float) -> None:
        """The series counts `total` units of work (say epochs), `done` of them before."""

    def training_started(self, what: str) -> None:
        """One training of the series starts: `what` names it."""

    def training_done(self, work: float) -> None:
        """That training ended, having done `work` units."""
