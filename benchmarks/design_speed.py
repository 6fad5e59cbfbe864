"""Measured training speed of several designs in one run, each as a ratio to the first (the
baseline): which block kinds, widths and resolutions cost time on this device. Every design is
measured as `nas train --budget-minutes` and a search's speed floor measure it
(`nas.training.budget.plan_speed`: 5 s of training steps, with the default recipe and the runtime
picked for the machine), in `--rounds` interleaved rounds (A B C, A B C, ...) so that a drift of
the machine's speed falls on all designs alike; the median round is reported, with the seconds a
timing took (what the speed floor costs a trial).

    python benchmarks/design_speed.py BASELINE.toml OTHER.toml... [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics

import nas  # noqa: F401  (the package's thread settings)
from nas.design.files import load_config, resolve_design
from nas.design.rules import check
from nas.training.budget import plan_speed
from nas.training.recipe import Recipe
from nas.training.runtime import Runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", help="designs (.toml/.json or 'reference'); the first is the baseline")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configs = [load_config(resolve_design(c)) for c in args.configs]
    runtime, recipe = Runtime.pick(), Recipe()
    print(f"device: {runtime.device_name()}; batch {recipe.batch_size}; {args.rounds} rounds")
    rates: list[list[float]] = [[] for _ in configs]
    costs: list[list[float]] = [[] for _ in configs]  # the seconds each timing took
    for _ in range(args.rounds):
        for config, measured, cost in zip(configs, rates, costs):
            speed = plan_speed(config, recipe, runtime)
            measured.append(speed.train_images_per_s)
            cost.append(speed.measure_seconds)
    base = statistics.median(rates[0])
    print(f"{'design':<24} {'params':>8} {'MFLOPs':>7} {'RF':>4} {'img/s':>7} {'spread':>7} {'ratio':>6} "
          f"{'timing s':>8}  rules")
    for config, measured, cost in zip(configs, rates, costs):
        verdict, rate = check(config), statistics.median(measured)
        spread = (max(measured) - min(measured)) / rate  # over the rounds, of the median
        print(f"{config.name:<24} {verdict.params:>8,} {verdict.flops / 1e6:>7.1f} "
              f"{verdict.receptive_field:>4} {rate:>7.0f} {spread:>6.1%} {rate / base:>6.2f} "
              f"{statistics.median(cost):>8.1f}  {'pass' if verdict.passed else 'broken: ' + ', '.join(verdict.broken)}")


if __name__ == "__main__":
    main()
