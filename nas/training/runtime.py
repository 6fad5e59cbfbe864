"""Where the math runs: the device, the autocast precision, DataLoader workers, the memory layout
(`Runtime`); memory settings; and a record of the machine for each run's metrics."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from nas.errors import NasError


@dataclass(frozen=True)
class Runtime:
    """Where a recipe runs. Nothing here changes what is learned (up to float rounding), so a
    run may be resumed under another runtime."""

    device: torch.device
    dtype: torch.dtype | None  # autocast precision; None is plain fp32
    workers: int  # DataLoader worker processes
    layout: torch.memory_format

    @classmethod
    def pick(cls, device: str = "auto", precision: Literal["auto", "fp32", "bf16"] = "auto",
             workers: int = -1, channels_last: bool | None = None) -> Runtime:
        """Resolve the command line's choices ("auto", -1, None) for this machine.

        channels_last None: on CUDA (what cuDNN's fast convolutions want), not on CPU, where it ran
        the reference 1.6× faster but oneDNN stalled for minutes in the backward pass of some
        searched designs in that layout, so there it is opt-in."""
        if workers < -1:
            raise NasError(f"--workers {workers}: give 0 or more (-1 picks for the machine)")
        dev = pick_device(device)
        on = dev.type == "cuda" if channels_last is None else channels_last
        return cls(dev, autocast_dtype(dev, precision), loader_workers(dev, workers),
                   torch.channels_last if on else torch.contiguous_format)

    @property
    def precision(self) -> str:
        """The resolved precision, "bf16" or "fp32": stored on a study or a calibration, whose
        designs are only comparable when trained alike."""
        return "bf16" if self.dtype else "fp32"

    def record(self) -> dict[str, Any]:
        """What the run ran on, for its metrics."""
        return machine(self.device, self.dtype)

    def device_name(self) -> str:
        """The device and precision a speed is measured with, in words, e.g. "NVIDIA H200, bf16
        autocast" or "AMD EPYC 9R14 (2 cores), fp32": what a study with a time budget keeps."""
        m = self.record()
        where = m["device"] if self.device.type == "cuda" else f"{m['cpu']} ({m['cores']} cores)"
        return f"{where}, {m['precision']}"


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise NasError("--device cuda: no CUDA device is visible; use --device cpu or auto")
    return torch.device(name)


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """bf16 where it is fast, else None (plain fp32)."""
    if precision == "fp32":
        return None
    if precision == "bf16" or device.type == "cuda":
        return torch.bfloat16
    return torch.bfloat16 if native_bf16() else None


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX; elsewhere it is emulated,
    about 10× slower than fp32)."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def loader_workers(device: torch.device, requested: int) -> int:
    """On CUDA, enough workers to keep the GPU fed; on a small CPU, one worker overlaps the
    augmentation with the math without taking both cores from it."""
    if requested >= 0:
        return requested
    cores = len(os.sched_getaffinity(0))
    return min(8, cores) if device.type == "cuda" else max(1, cores // 2)


def keep_freed_memory() -> None:
    """Let glibc keep freed memory for reuse instead of returning it to the kernel.

    glibc serves blocks over 32 MB (a batch-256 activation is 40+ MB) with fresh mmap pages and
    unmaps them on free, so every step page-faults its activations in again, and much of a CPU
    step's time goes to the kernel (`benchmarks/layout.py --keep-freed-memory` measures the
    difference; studies/cpu-speed). No-op outside glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl or another libc
        return
    m_trim_threshold, m_mmap_max = -1, -4  # from <malloc.h>
    libc.mallopt(m_mmap_max, 0)
    libc.mallopt(m_trim_threshold, 2**31 - 1)


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager:
    """Autocast to `dtype` on `device`; a no-op context for None (plain fp32)."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer measures it; nothing to wait for on CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine(device: torch.device, dtype: torch.dtype | None) -> dict[str, Any]:
    """What the run ran on, for the record."""
    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").exists():
        names = [l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                 if l.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "native_bf16": native_bf16(),
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "precision": "bf16 autocast" if dtype else "fp32", "python": platform.python_version()}
