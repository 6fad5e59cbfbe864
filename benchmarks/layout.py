"""Training-step speed of one design in NCHW and in channels_last, in the same run.

On CPU channels_last is opt-in (`--channels-last`): it ran the reference 1.6× faster on the 2-core
EPYC, but oneDNN stalled in it on some searched designs. Run this before a long training to pick.

    python benchmarks/layout.py CONFIG [--batch-size 256] [--steps 8] [--keep-freed-memory]
                                       [--device auto|cpu|cuda]

With --keep-freed-memory it first applies the trainer's allocator setting
(`nas.training.loop.keep_freed_memory`); run it with and without to see that setting's effect.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import nas
from nas.training.runtime import autocast, autocast_dtype, keep_freed_memory, pick_device, sync


def images_per_s(model: nn.Module, layout: torch.memory_format, batch: int, steps: int,
                 device: torch.device) -> float:
    model = model.to(device, memory_format=layout).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    images = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=layout)
    labels = torch.randint(0, 10, (batch,), device=device)
    dtype = autocast_dtype(device, "auto")
    for step in range(steps + 2):  # two warm-up steps: oneDNN picks its kernels there
        if step == 2:
            sync(device)
            start = time.perf_counter()
        with autocast(device, dtype):
            loss = nn.functional.cross_entropy(model(images).float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    sync(device)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--keep-freed-memory", action="store_true")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = parser.parse_args()
    if args.keep_freed_memory:
        keep_freed_memory()
    config = nas.load_config(args.config)
    device = pick_device(args.device)
    print(f"device {device}, precision {autocast_dtype(device, 'auto') or 'fp32'}")
    rates = {}
    for name, layout in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
        torch.manual_seed(0)
        rates[name] = images_per_s(nas.build_model(config), layout, args.batch_size, args.steps,
                                     device)
        print(f"{name:>13}: {rates[name]:6.0f} images/s (batch {args.batch_size})")
    print(f"channels_last / NCHW: {rates['channels_last'] / rates['NCHW']:.2f}×")


if __name__ == "__main__":
    main()
