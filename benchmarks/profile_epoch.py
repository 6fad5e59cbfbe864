"""Where a training epoch's time goes on this machine: torch.profiler over training steps of one
design with the trainer's own batches, runtime and recipe, grouped into convolutions (forward,
backward), BatchNorm, augmentation and data, optimizer, loss and the rest (ReLU, adds, Python).

    python benchmarks/profile_epoch.py [CONFIG] [--steps 40] [--augment batched|albumentations]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

import nas
from nas.data.augment_config import AugmentConfig
from nas.data.cifar10 import load_cifar10
from nas.data.settings import resolve_data_dir
from nas.data.splits import make_splits
from nas.design.files import REFERENCE
from nas.training.batches import make_batches
from nas.training.loop import make_optimizer
from nas.training.recipe import Recipe
from nas.training.runtime import Runtime, autocast, keep_freed_memory

# op-name fragments → category, first match wins (self time, so nothing is counted twice)
CATEGORIES = (("convolution_backward", "conv backward"), ("convolution", "conv forward"),
              ("conv", "conv forward"), ("batch_norm_backward", "BatchNorm backward"),
              ("batch_norm", "BatchNorm forward"), ("grid_sampler", "augmentation and data"),
              ("threshold_backward", "ReLU"), ("relu", "ReLU"), ("nll_loss", "loss"),
              ("log_softmax", "loss"), ("_foreach", "optimizer"))


def category(name: str, phase: str) -> str:
    for fragment, label in CATEGORIES:
        if fragment in name:
            return label
    return {"data": "augmentation and data", "optimizer": "optimizer"}.get(phase, "other ops and Python")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", nargs="?", default=str(REFERENCE))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--augment", choices=["batched", "albumentations"], default="batched")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    keep_freed_memory()
    config = nas.load_config(args.config)
    runtime = Runtime.pick(channels_last=args.channels_last)
    recipe = Recipe(epochs=1, augment=AugmentConfig(engine=args.augment))
    splits = make_splits(load_cifar10(resolve_data_dir()), "test")
    train_batches, _ = make_batches(splits, recipe.batch_size, recipe.augment, runtime)
    torch.manual_seed(0)
    model = nas.build_model(config).to(runtime.device, memory_format=runtime.layout).train()
    optimizer = make_optimizer(model, recipe)
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    batches = iter(train_batches)
    phases = {}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for _ in range(args.steps):
            with record_function("phase:data"):
                images, labels = next(batches)
            with record_function("phase:forward"), autocast(runtime.device, runtime.dtype):
                loss = criterion(model(images).float(), labels)
            with record_function("phase:backward"):
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            with record_function("phase:optimizer"):
                optimizer.step()
        wall = time.perf_counter() - start
    # each op's self time, filed under its category (its phase decides for unnamed ops)
    totals: dict[str, float] = defaultdict(float)
    for event in prof.events():
        if event.name.startswith("phase:"):
            phases[event.id] = event.name.removeprefix("phase:")
    for event in prof.events():
        if event.name.startswith("phase:"):
            continue
        parent, phase = event.cpu_parent, "other"
        while parent is not None:
            if parent.name.startswith("phase:"):
                phase = parent.name.removeprefix("phase:")
                break
            parent = parent.cpu_parent
        totals[category(event.name, phase)] += event.self_cpu_time_total / 1e6
    measured = sum(totals.values())
    print(f"{config.name}: {args.steps} steps of batch {recipe.batch_size} ({args.augment} augmentation, "
          f"{'bf16' if runtime.dtype else 'fp32'}, {runtime.device}) in {wall:.1f} s wall, "
          f"{args.steps * recipe.batch_size / wall:,.0f} images/s under the profiler")
    print(f"{'where':>24}  share  seconds (self CPU time, summed over threads)")
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{name:>24}  {seconds / measured:5.0%}  {seconds:7.2f}")


if __name__ == "__main__":
    main()
