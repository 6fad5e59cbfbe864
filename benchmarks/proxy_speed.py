"""What the zero-cost proxies cost: `scores` (synflow, naswot, grad_norm) on the reference design
and 64 images, against one SGD training step of the same design on a 256-image batch, measured
in the same run.

    python benchmarks/proxy_speed.py [--repeats 5]

Prints the median of each and the ratio: how many training steps one design's proxies cost.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from nas import build_model, load_config
from nas.search.proxies import scores

REFERENCE = Path(__file__).resolve().parents[1] / "search_spaces" / "reference.toml"


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of each (default 5)")
    repeats = parser.parse_args().repeats
    config = load_config(REFERENCE)
    gen = torch.Generator().manual_seed(0)
    images, labels = torch.randn(64, 3, 32, 32, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    model = build_model(config)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batch, targets = torch.randn(256, 3, 32, 32, generator=gen), torch.randint(0, 10, (256,), generator=gen)

    def step() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(batch), targets).backward()
        optimizer.step()

    proxies = median_ms(lambda: scores(config, images, labels), repeats)
    training = median_ms(step, repeats)
    print(f"{torch.get_num_threads()} threads, torch {torch.__version__}, median of {repeats}")
    print(f"scores(reference, 64 images): {proxies:,.0f} ms")
    print(f"one training step (256 images): {training:,.0f} ms")
    print(f"proxies / step: {proxies / training:.1f}x")


if __name__ == "__main__":
    main()
