"""The rules' verdict: every rule of the assignment checked before any training.

Parameters and FLOPs come from fvcore on the built model in eval mode. fvcore counts one
multiply-add as one FLOP, so our FLOPs are multiply-adds (MACs) for one 32×32 image.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

with warnings.catch_warnings():  # fvcore's import touches the deprecated torch.jit.script
    warnings.simplefilter("ignore", FutureWarning)
    from fvcore.nn import FlopCountAnalysis, parameter_count

from nas.design.config import ArchConfig
from nas.design.geometry import activation_count, param_count, receptive_field
from nas.design.limits import Limits
from nas.design.model import build_model
from nas.errors import NasError

# A design this large is never built: it could not meet any limit of this tool, and its weights
# alone could fill the memory (a width of 100,000 asks for 360 GB).
BUILD_LIMIT = 50_000_000
ACTIVATION_LIMIT = 20_000_000  # per image; the reference holds 0.2 M


@dataclass(frozen=True)
class Rule:
    """One rule of the verdict with its measured value and limit."""

    name: str
    value: int | str
    limit: str
    passed: bool
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    """Every rule, passed or not, plus the measured totals."""

    params: int
    flops: int
    receptive_field: int
    rules: tuple[Rule, ...]
    flops_by_module: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    params_by_module: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)

    @property
    def broken(self) -> list[str]:
        return [rule.name for rule in self.rules if not rule.passed]

    def to_dict(self) -> dict[str, Any]:
        """Totals and rules as plain data (for `nas show --json` and trial attributes)."""
        return {"params": self.params, "flops": self.flops,
                "receptive_field": self.receptive_field, "passed": self.passed,
                "rules": [asdict(rule) for rule in self.rules]}


def count(model: nn.Module, config: ArchConfig) -> tuple[dict[str, int], dict[str, int]]:
    """fvcore's parameter and FLOP counts per module name ("" is the whole model)."""
    model.eval()
    image = torch.zeros(1, config.in_channels, config.input_size, config.input_size)
    flops = FlopCountAnalysis(model, image)
    flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return dict(parameter_count(model)), dict(flops.by_module())


def ensure_buildable(config: ArchConfig) -> None:
    """NasError when the design is too large to build at all (counted from the config alone)."""
    if (params := param_count(config)) > BUILD_LIMIT:
        raise NasError(f"design {config.name} has {params:,} parameters, too many to build "
                       f"(the limit for building is {BUILD_LIMIT:,}): use narrower blocks")
    if (values := activation_count(config)) > ACTIVATION_LIMIT:
        raise NasError(f"design {config.name} holds {values:,} activations per image, too many to "
                       f"build (the limit is {ACTIVATION_LIMIT:,}): use narrower blocks or smaller maps")


def check(config: ArchConfig, limits: Limits = Limits(), model: nn.Module | None = None) -> Verdict:
    """Measure a design and judge it against every rule (all of them, not just the first miss)."""
    ensure_buildable(config)
    model = model if model is not None else build_model(config)
    params_by_module, flops_by_module = count(model, config)
    params, flops = params_by_module[""], flops_by_module[""]
    rf = receptive_field(config)
    convs = [(f"c{b}.conv{c}", conv) for b, block in enumerate(config.blocks, 1)
             for c, conv in enumerate(block.convs, 1)]
    separable = [name for name, conv in convs if conv.kind == "separable"]
    depthwise_only = [name for name, conv in convs if conv.kind == "depthwise"]
    dilated = [name for name, conv in convs if conv.dilation > 1]
    maxpools = [name for name, m in model.named_modules() if isinstance(m, nn.MaxPool2d)]
    head = getattr(model, "output", None)
    gap = isinstance(head, nn.Sequential) and isinstance(head[0], nn.AdaptiveAvgPool2d)
    shape = [len(block.convs) for block in config.blocks]
    sep_note = ("" if separable else
                f"{', '.join(depthwise_only)} {'is' if len(depthwise_only) == 1 else 'are'} "
                "depthwise only (no pointwise 1×1); a depthwise-separable conv is depthwise 3×3 "
                "followed by pointwise 1×1" if depthwise_only else "")
    rules = (
        Rule("params", params, f"< {limits.max_params:,}", params < limits.max_params),
        Rule("flops", flops, f"<= {limits.max_flops:,}", flops <= limits.max_flops),
        Rule("receptive_field", rf, f"> {limits.min_rf}", rf > limits.min_rf),
        Rule("depthwise_separable", len(separable), ">= 1", bool(separable),
             ", ".join(separable) or sep_note),
        Rule("dilated", len(dilated), ">= 1", bool(dilated), ", ".join(dilated)),
        Rule("no_maxpool", len(maxpools), "0", not maxpools, ", ".join(maxpools)),
        Rule("gap_before_output", "yes" if gap else "no", "yes", gap),
        Rule("macro_shape", "×".join(map(str, shape)), "4 blocks × 3 convs", shape == [3] * 4),
    )
    return Verdict(params, flops, rf, rules, flops_by_module, params_by_module)
