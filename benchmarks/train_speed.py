"""Training throughput of `nas.train` against a seed-style baseline, in the same run.

Baseline (what the course's seed code does): fp32, NCHW, batch 64, per-sample albumentations in a
DataLoader with 2 workers, plain SGD with momentum. Ours: `Recipe()` defaults with channels_last
opted in (batch 256, bf16 where fast, one loader worker per two cores on CPU, OneCycle SGD).
Both run on the detected device (CUDA if visible).
Both train the reference design for one epoch on the same real CIFAR-10 images.
For scale it also times a large matrix product in the trainer's precision (the best rate this
device's math reaches) and prints the training arithmetic rate as a share of it: a training step costs about three
forward passes, 2 × 3 × the design's multiply-adds per image.

    python benchmarks/train_speed.py [--images 10240] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.data import DataLoader

import nas
from nas.augment import AugmentedDataset, eval_transform, train_transform
from nas.data import load_cifar10, resolve_data_dir
from nas.designs import REFERENCE
from nas.device import Runtime, sync
from nas.recipe import Recipe
from nas.splits import channel_stats
from nas.train import train


def baseline_images_per_s(config: nas.ArchConfig, dataset: AugmentedDataset,
                          device: torch.device) -> float:
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


def matmul_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """Matrix-product rate: an upper bound for convolution arithmetic on this device."""
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b  # warm-up
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=10_240)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    data = load_cifar10(resolve_data_dir(args.data_dir))
    images, labels = data.train_images[:args.images], data.train_labels[:args.images]
    mean, std = channel_stats(images)
    train_set = AugmentedDataset(images, labels, train_transform(mean, std))
    eval_set = AugmentedDataset(data.test_images[:1024], data.test_labels[:1024],
                                eval_transform(mean, std))
    config = nas.load_config(REFERENCE)
    recipe = Recipe(epochs=1)
    runtime = Runtime.pick(channels_last=True)  # opt-in on CPU (see Runtime.pick)
    device, dtype = runtime.device, runtime.dtype
    precision = "bf16" if dtype else "fp32"
    print(f"device {device}, {torch.get_num_threads()} threads, precision {precision}, "
          f"{runtime.workers} loader worker(s), {len(images):,} images")
    base = baseline_images_per_s(config, train_set, device)
    torch.manual_seed(0)
    ours = train(nas.build_model(config), train_set, eval_set, recipe, runtime)[0].images_per_s
    for name, rate in (("baseline", base), ("nas.train", ours)):
        print(f"{name:>10}: {rate:7.0f} images/s, {50_000 / rate:6.1f} s per 50,000-image epoch")
    print(f"speed-up: {ours / base:.2f}×")
    flops_per_image = 2 * 3 * nas.check(config).flops  # forward + backward ≈ 3 forward passes
    peak = matmul_gflops(device, dtype or torch.float32)
    print(f"arithmetic: {precision} matmul peak {peak:.0f} GFLOP/s; baseline uses "
          f"{base * flops_per_image / 1e9 / peak:.0%} of it, nas.train "
          f"{ours * flops_per_image / 1e9 / peak:.0%}, 2.5× the baseline would need "
          f"{2.5 * base * flops_per_image / 1e9 / peak:.0%}")


if __name__ == "__main__":
    main()
