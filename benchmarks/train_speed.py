"""Training throughput, in one run on the same images: a seed-style baseline, `nas.training.loop` with the
albumentations engine, `nas.training.loop` with the batched engine, and the pure training-step rate of the
same design in the same layout and precision (the ceiling for a trainer).

Baseline (what the course's seed code does): fp32, NCHW, batch 64, per-sample albumentations in a
DataLoader with 2 workers, plain SGD with momentum. `nas.training.loop`: `Recipe()` defaults for one epoch
(batch 256, OneCycle SGD), the runtime picked for the machine (bf16 where fast; channels_last on
CUDA, and on CPU with --channels-last). All train the reference design on the detected device.

    python benchmarks/train_speed.py [--images 10240] [--data-dir DIR] [--channels-last]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).parent))

from layout import images_per_s  # noqa: E402

import nas  # noqa: E402
from nas.data.augment import AugmentedDataset, train_transform
from nas.data.augment_config import AugmentConfig
from nas.data.cifar10 import load_cifar10
from nas.data.settings import resolve_data_dir
from nas.data.splits import Splits
from nas.design.files import REFERENCE  # noqa: E402
from nas.training.batches import make_batches
from nas.training.loop import train  # noqa: E402
from nas.training.recipe import Recipe  # noqa: E402
from nas.training.runtime import Runtime, keep_freed_memory, sync  # noqa: E402


def baseline_images_per_s(config: nas.ArchConfig, splits: Splits, device: torch.device) -> float:
    mean, std = splits.stats
    dataset = AugmentedDataset(splits.train_images, splits.train_labels, train_transform(mean, std))
    torch.manual_seed(0)
    model = nas.build_model(config).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = DataLoader(dataset, batch_size=64, shuffle=True, num_workers=2)
    start, seen = time.perf_counter(), 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(labels)
    sync(device)
    return seen / (time.perf_counter() - start)


def trainer_images_per_s(config: nas.ArchConfig, splits: Splits, engine: str, runtime: Runtime,
                         batch_size: int) -> float:
    recipe = Recipe(epochs=1, batch_size=batch_size, augment=AugmentConfig(engine=engine))
    batches = make_batches(splits, recipe.batch_size, recipe.augment, runtime)
    torch.manual_seed(0)
    return train(nas.build_model(config), *batches, recipe, runtime)[0].images_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=10_240)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=Recipe().batch_size)
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    data = load_cifar10(resolve_data_dir(args.data_dir))
    n = args.images
    splits = Splits(data.train_images[:n], data.train_labels[:n], data.test_images[:1024],
                    data.test_labels[:1024], "test", data.classes)
    config = nas.load_config(REFERENCE)
    runtime = Runtime.pick(channels_last=args.channels_last)
    keep_freed_memory()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "unknown CPU")
    print(f"device {runtime.device} ({cpu}, {torch.get_num_threads()} threads), precision "
          f"{'bf16' if runtime.dtype else 'fp32'}, layout {'channels_last' if runtime.layout == torch.channels_last else 'NCHW'}, "
          f"{runtime.workers} loader worker(s), {n:,} images, reference design")
    rates = {"baseline (seed-style)": baseline_images_per_s(config, splits, runtime.device)}
    rates["nas.training.loop, albumentations"] = trainer_images_per_s(config, splits, "albumentations", runtime,
                                                              args.batch_size)
    rates["nas.training.loop, batched"] = trainer_images_per_s(config, splits, "batched",
                                                       replace(runtime, workers=0), args.batch_size)
    torch.manual_seed(0)
    rates["pure training steps"] = images_per_s(nas.build_model(config), runtime.layout,
                                                args.batch_size, 16, runtime.device)
    base, pure = rates["baseline (seed-style)"], rates["pure training steps"]
    print(f"{'':>26}  images/s  s per 50,000  × baseline  of pure steps")
    for name, rate in rates.items():
        print(f"{name:>26}  {rate:8,.0f}  {50_000 / rate:12.1f}  {rate / base:9.2f}×  {rate / pure:11.0%}")


if __name__ == "__main__":
    main()
