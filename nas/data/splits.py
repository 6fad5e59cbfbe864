"""What a run trains and evaluates on: the validation hold-out and data fractions.

Searches train on the 45,000 images outside a stratified, seeded 5,000-image hold-out and are judged
on that hold-out (the "val" split); a test run trains on all 50,000 and is scored on the official
10,000 (the "test" split). The test set is never seen by a search.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nas.data.augment_config import Stats
from nas.data.cifar10 import Cifar10
from nas.data.settings import VAL_IMAGES
from nas.errors import NasError

Split = Literal["val", "test"]  # where a run is scored: the validation hold-out, or the test set
SPLITS: tuple[Split, ...] = ("val", "test")


@dataclass(frozen=True)
class Splits:
    """What a run trains on and what it is scored on (`eval_split`: "val" or "test")."""

    train_images: np.ndarray
    train_labels: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    eval_split: Split
    classes: tuple[str, ...]

    @functools.cached_property
    def stats(self) -> tuple[Stats, Stats]:
        """Per-channel mean and std of the training images: the normalisation of this run
        (computed once: the batches, the proxy batch and model.pt all need it)."""
        return channel_stats(self.train_images)


def split_train_val(labels: np.ndarray, n_val: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified seeded hold-out: (train indices, val indices), disjoint and sorted, n_val/classes per class."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    per_class, rest = divmod(n_val, len(classes))
    if rest or n_val < 0:
        raise NasError(f"n_val={n_val} must be a non-negative multiple of the {len(classes)} classes "
                       "(the hold-out has the same count per class)")
    rng = np.random.default_rng(seed)
    val = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise NasError(f"n_val={n_val} needs {per_class} images of class {c} for validation, "
                           f"but there are only {len(idx)}")
        val.append(rng.choice(idx, size=per_class, replace=False))
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels), dtype=np.int64), val_idx)
    return train_idx, val_idx


def channel_stats(images: np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and (population) std of uint8 N×H×W×3 images, in the 0..1 scale."""
    # A histogram per channel is exact and avoids a float copy of the images (1.2 GB for CIFAR-10).
    values = np.arange(256) / 255.0
    means, stds = [], []
    for c in range(3):
        counts = np.bincount(images[..., c].ravel(), minlength=256)
        mean = counts @ values / counts.sum()
        means.append(float(mean))
        stds.append(float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum())))
    return (means[0], means[1], means[2]), (stds[0], stds[1], stds[2])


def make_splits(data: Cifar10, split: Split, fraction: float = 1.0, seed: int = 0,
                val_images: int = VAL_IMAGES) -> Splits:
    """"test": all 50,000 training images, scored on the official 10,000 test images.
    "val": the images outside the validation hold-out (or a stratified `fraction` of them, for
    cheap low-fidelity trials), evaluated on the held-out images. The hold-out is always drawn with
    seed 0, so every trial and run of a search is judged on the same images."""
    if not 0 < fraction <= 1:
        raise NasError(f"--data-fraction {fraction}: must be in (0, 1]")
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: one of {SPLITS}")
    if split == "test":
        train_idx = np.arange(len(data.train_labels))
        eval_images, eval_labels = data.test_images, data.test_labels
    else:
        train_idx, val_idx = split_train_val(data.train_labels, val_images, seed=0)
        eval_images, eval_labels = data.train_images[val_idx], data.train_labels[val_idx]
    if fraction < 1:
        classes = len(data.classes)
        keep = max(classes, round(fraction * len(train_idx) / classes) * classes)
        _, picked = split_train_val(data.train_labels[train_idx], keep, seed=seed)
        train_idx = train_idx[picked]
    return Splits(data.train_images[train_idx], data.train_labels[train_idx],
                  eval_images, eval_labels, split, data.classes)
