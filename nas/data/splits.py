"""What a run trains and evaluates on: the validation hold-out, data fractions, and the batches
(from either augmentation engine).

Searches train on the 45,000 images outside a stratified, seeded 5,000-image hold-out and are judged
on that hold-out; final runs train on all 50,000 and are tested on the official 10,000. The test set
is never seen by a search.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader

from nas.augment import AugmentConfig, AugmentedDataset, eval_transform, train_transform
from nas.batch_augment import DeviceBatches
from nas.data import Cifar10
from nas.device import Runtime
from nas.errors import NasError

VAL_IMAGES = 5_000  # the stratified hold-out searched on; never the official test set

Stats = tuple[float, float, float]


@dataclass(frozen=True)
class Splits:
    """What a run trains on and what it evaluates on ("val" during search, "test" for finals)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    eval_name: str
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


def make_splits(data: Cifar10, final: bool, fraction: float = 1.0, seed: int = 0,
                val_images: int = VAL_IMAGES) -> Splits:
    """final: all 50,000 training images, evaluated on the official 10,000 test images.
    Otherwise: the images outside the validation hold-out (or a stratified `fraction` of them, for
    cheap low-fidelity trials), evaluated on the held-out images. The hold-out is always drawn with
    seed 0, so every trial and run of a search is judged on the same images."""
    if not 0 < fraction <= 1:
        raise NasError(f"--data-fraction {fraction}: must be in (0, 1]")
    if final:
        train_idx = np.arange(len(data.train_labels))
        eval_images, eval_labels, name = data.test_images, data.test_labels, "test"
    else:
        train_idx, val_idx = split_train_val(data.train_labels, val_images, seed=0)
        eval_images, eval_labels, name = data.train_images[val_idx], data.train_labels[val_idx], "val"
    if fraction < 1:
        classes = len(data.classes)
        keep = max(classes, round(fraction * len(train_idx) / classes) * classes)
        _, picked = split_train_val(data.train_labels[train_idx], keep, seed=seed)
        train_idx = train_idx[picked]
    return Splits(data.train_images[train_idx], data.train_labels[train_idx],
                  eval_images, eval_labels, name, data.classes)


class LoaderBatches:
    """An albumentations dataset behind a DataLoader, as a batch source: (images, labels) on the
    device, `seed(s)` before each epoch (the shuffling, and the workers' augmentation seeds)."""

    def __init__(self, dataset: AugmentedDataset, batch_size: int, shuffle: bool, runtime: Runtime) -> None:
        self.dataset, self.runtime, self.generator = dataset, runtime, torch.Generator()
        self.loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle,
                                 num_workers=runtime.workers, generator=self.generator,
                                 pin_memory=runtime.device.type == "cuda")

    def __len__(self) -> int:
        return len(self.loader)

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(seed)
        if self.runtime.workers == 0:  # with workers, each worker's transform is seeded from the generator
            self.dataset.transform.set_random_seed(seed)

    def set_epoch(self, epoch: int, seed: int) -> None:
        """Nothing to do: alternating flip, which needs the epoch, is refused for this engine."""

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device, layout = self.runtime.device, self.runtime.layout
        for images, labels in self.loader:
            yield (images.to(device, non_blocking=True, memory_format=layout),
                   labels.to(device, non_blocking=True))


Batches = DeviceBatches | LoaderBatches
EVAL_BATCH = 1024  # evaluation holds no gradients: large batches are cheap


def make_batches(splits: Splits, batch_size: int, augment: AugmentConfig, runtime: Runtime
                 ) -> tuple[Batches, Batches]:
    """The training batches (shuffled, augmented by `augment.engine`) and the evaluation batches,
    both normalised with the training images' own statistics."""
    mean, std = splits.stats
    if augment.engine == "batched":
        return (DeviceBatches(splits.train_images, splits.train_labels, batch_size, runtime.device,
                              mean, std, augment, shuffle=True, memory_format=runtime.layout),
                DeviceBatches(splits.eval_images, splits.eval_labels, EVAL_BATCH, runtime.device,
                              mean, std, memory_format=runtime.layout))
    train_set = AugmentedDataset(splits.train_images, splits.train_labels,
                                 train_transform(mean, std, cfg=augment))
    eval_set = AugmentedDataset(splits.eval_images, splits.eval_labels, eval_transform(mean, std))
    return (LoaderBatches(train_set, batch_size, True, runtime),
            LoaderBatches(eval_set, EVAL_BATCH, False, runtime))
