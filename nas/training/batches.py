"""The batches a run trains and evaluates on, from either augmentation engine, on the run's device."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from nas.data.augment import AugmentedDataset, eval_transform, train_transform
from nas.data.augment_config import AugmentConfig
from nas.data.batch_augment import DeviceBatches
from nas.data.splits import Splits
from nas.training.runtime import Runtime


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
