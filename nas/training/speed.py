"""A design's measured speed on the run's device: training images/s with a recipe's batch size,
precision and memory layout (and so the seconds of a 50,000-image epoch), inference images/s at
batch 256 and the latency of one image.

FLOPs stand in poorly for time: a depthwise convolution is cheap in FLOPs and slow on real
hardware. So a search measures every feasible design before training it (`nas show --speed` one
design). Each figure is the median time of a step, timed on a fresh model of the design (the
weights a training starts from are not touched, nor the global random state) fed synthetic
batches of the right shape, since a step's time does not depend on the pixel values. The training
step is the loop's own (`nas.training.loop.train_step`: autocast, loss, backward, optimizer,
schedule, EMA, MixUp / CutMix); the data pipeline is left out (about 1 % of a CPU epoch with the
batched augmentation, studies/cpu-speed).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from nas.data.batch_augment import MixBatch
from nas.data.settings import TRAIN_IMAGES
from nas.design.config import ArchConfig
from nas.design.model import build_model
from nas.training.loop import make_learner, train_step
from nas.training.recipe import Recipe
from nas.training.runtime import Runtime, autocast, keep_freed_memory, sync

EPOCH_IMAGES = TRAIN_IMAGES  # what "seconds per epoch" counts: CIFAR-10's training set
INFER_BATCH = 256  # inference throughput is measured at this batch (serving many images)


@dataclass(frozen=True)
class Timing:
    """How each figure is timed: `warmup` untimed steps, then at least `min_steps` timed ones, more
    while the timed ones took under `seconds` in all, at most `max_steps`; the median is kept.

    The first steps of a fresh model are slow (memory is allocated, oneDNN and cuDNN pick their
    kernels, the optimizer makes its buffers), so `warmup` steps are not timed, and the median
    ignores a few slow steps more (another process's burst). A GPU step takes milliseconds: there
    the `seconds` rule times tens of steps for the same cost. What a design's timing costs on the
    2-core CPU: [studies/cpu-speed](../../studies/cpu-speed/README.md)."""

    warmup: int = 2
    min_steps: int = 5
    max_steps: int = 50
    seconds: float = 0.5


TIMING = Timing()  # what a search and `nas show --speed` use


@dataclass(frozen=True)
class Speed:
    """A design's measured speed (each a median over steps; see `Timing`)."""

    train_images_per_s: float  # at the recipe's batch size
    epoch_seconds: float  # training, per EPOCH_IMAGES images
    infer_images_per_s: float  # eval mode, no gradients, batch INFER_BATCH
    latency_ms: float  # one image alone
    measure_seconds: float  # what measuring all this cost

    def attrs(self) -> dict[str, float]:
        """The figures as a search stores them on a trial: four significant digits."""
        return {name: float(f"{value:.4g}") for name, value in asdict(self).items()}


SPEED_ATTRS = tuple(f.name for f in fields(Speed))  # the attributes `Speed.attrs` stores


def measure_speed(config: ArchConfig, recipe: Recipe, runtime: Runtime, *, timing: Timing | None = None,
                  infer_timing: Timing | None = None,
                  clock: Callable[[], float] = time.perf_counter) -> Speed:
    """Measure `config`'s speed with `recipe`'s batch size and training step on `runtime` (see the
    module docstring): the training step timed as `timing` says (default TIMING), the two
    inference figures as `infer_timing` says (default: as `timing`); `clock` reads the time in
    seconds."""
    timing = timing or TIMING
    infer_timing = infer_timing or timing
    keep_freed_memory()  # as the training does: its steps are what is measured
    begin = clock()
    device, dtype = runtime.device, runtime.dtype
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(0)
        learner = make_learner(build_model(config), recipe, runtime, timing.warmup + timing.max_steps)
        images = synthetic(config, recipe.batch_size, runtime)
        labels = torch.randint(config.num_classes, (recipe.batch_size,)).to(device)
        criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
        mix = MixBatch(recipe.mixup, recipe.cutmix) if recipe.mixup or recipe.cutmix else None
        learner.model.train()
        step = median_seconds(lambda: train_step(learner, images, labels, criterion, mix, device, dtype),
                              device, timing, clock)
        model = learner.model.eval()

        def infer(batch: torch.Tensor) -> Callable[[], torch.Tensor]:
            def run() -> torch.Tensor:
                with torch.inference_mode(), autocast(device, dtype):
                    return model(batch)
            return run

        batch_seconds = median_seconds(infer(synthetic(config, INFER_BATCH, runtime)), device,
                                       infer_timing, clock)
        latency = median_seconds(infer(synthetic(config, 1, runtime)), device, infer_timing, clock)
    train_rate = recipe.batch_size / step
    return Speed(train_rate, EPOCH_IMAGES / train_rate, INFER_BATCH / batch_seconds, latency * 1000,
                 clock() - begin)


def synthetic(config: ArchConfig, batch: int, runtime: Runtime) -> torch.Tensor:
    """A batch of random images of `config`'s shape, on the runtime's device and in its layout."""
    shape = (batch, config.in_channels, config.input_size, config.input_size)
    return torch.randn(shape).to(runtime.device, memory_format=runtime.layout)


def median_seconds(step: Callable[[], object], device: torch.device, timing: Timing,
                   clock: Callable[[], float]) -> float:
    """The median time of one call of `step`, timed as `timing` says; the device is synchronised
    before each reading of the clock, so that queued GPU work is counted where it belongs."""
    for _ in range(timing.warmup):
        step()
    times: list[float] = []
    sync(device)
    while len(times) < timing.min_steps or (sum(times) < timing.seconds
                                           and len(times) < timing.max_steps):
        start = clock()
        step()
        sync(device)
        times.append(clock() - start)
    return statistics.median(times)
