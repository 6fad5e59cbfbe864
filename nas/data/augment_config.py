"""The augmentation's hyperparameters, part of every recipe (no heavy imports: the command line
reads its defaults)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nas.errors import NasError

Stats = tuple[float, float, float]


@dataclass(frozen=True)
class AugmentConfig:
    """Every hyperparameter of the training pipeline, in one place."""

    # "batched": the whole batch at once on the training device (nas.data.batch_augment), 10-20× the
    # per-image rate on the 2-core CPU (benchmarks/augment_speed.py); "albumentations": per image
    # in DataLoader workers, the reference implementation.
    engine: Literal["batched", "albumentations"] = "batched"
    p_flip: float = 0.5
    # "alternating" (airbench; batched engine only): each image flipped on every other epoch,
    # from a per-image random bit, so that two epochs show both mirror images of every image;
    # p_flip > 0 turns it on, its value is then unused
    flip: Literal["random", "alternating"] = "random"
    p_affine: float = 0.5
    shift: float = 0.0625  # fraction of the side, each axis drawn independently (±2 px)
    scale: tuple[float, float] = (0.9, 1.1)  # isotropic
    rotate: float = 15.0  # degrees, ±
    p_cutout: float = 0.5
    hole: int = 16  # side of the single square cutout hole, pixels

    def __post_init__(self) -> None:
        for name in ("p_flip", "p_affine", "p_cutout"):
            if not 0 <= (p := getattr(self, name)) <= 1:
                raise NasError(f"augmentation {name} = {p}: a probability, give a number from 0 to 1")
        if self.flip not in ("random", "alternating"):
            raise NasError(f"--flip {self.flip}: must be random or alternating")


def mean_fill(mean: Stats) -> tuple[int, int, int]:
    """The mean colour in the uint8 scale, e.g. (125, 123, 114) for CIFAR-10."""
    r, g, b = (round(m * 255) for m in mean)
    return r, g, b
