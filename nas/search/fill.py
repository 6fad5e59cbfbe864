"""Filling designs (`nas search --fill-params F`): widen a sampled design, all its widths by one
common factor, each rounded to a multiple of 8, to use at least F of the parameter limit while
keeping every rule."""

from __future__ import annotations

import math

from nas.design.config import ArchConfig
from nas.design.geometry import param_count
from nas.design.limits import Limits
from nas.design.rules import Verdict, check
from nas.search.space import MAX_WIDTH, with_widths

WIDTH_STEP = 8  # filled widths are multiples of 8, as the space's own widths


def scaled_widths(widths: tuple[int, ...], factor: float) -> tuple[int, ...]:
    """Each width times `factor`, rounded to a multiple of WIDTH_STEP, never narrower than before."""
    return tuple(max(w, WIDTH_STEP * math.floor(w * factor / WIDTH_STEP + 0.5)) for w in widths)


def width_ladder(widths: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Every distinct width vector that one common factor >= 1 gives, narrowest (`widths`) first,
    none wider than MAX_WIDTH: one step at each factor where some width's rounding goes up."""
    steps = range(1, MAX_WIDTH // WIDTH_STEP + 1)
    factors = sorted({WIDTH_STEP * (k + 0.5) / w for w in widths for k in steps} - {1.0})
    ladder = [widths]
    for factor in (f * (1 + 1e-9) for f in factors if f > 1):  # just past the step: round up
        scaled = scaled_widths(widths, factor)
        if max(scaled) > MAX_WIDTH:
            break
        if scaled != ladder[-1]:
            ladder.append(scaled)
    return ladder


def last_passing(ladder: list[tuple[int, ...]], passes) -> int:
    """The index of the last rung for which `passes` holds, where it holds up to some rung and
    not above it (0, the design as sampled, when no wider rung passes): a binary search."""
    low, high = 0, len(ladder)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if passes(ladder[middle]) else (low, middle)
    return low


def fill_params(config: ArchConfig, limits: Limits, share: float) -> tuple[ArchConfig, Verdict]:
    """Widen a design that uses less than `share` of the parameter limit: every width scaled up by
    the largest common factor (each rounded to a multiple of 8) that keeps every rule. Parameters
    grow with every width, so the factor is found by a binary search on the count from the config
    alone (microseconds a try), then confirmed by one verdict; only a filled design that breaks
    the FLOP limit costs more verdicts. Returns the design (filled, or as it was) and its verdict."""
    if param_count(config) >= share * limits.max_params:
        return config, check(config, limits)
    ladder = width_ladder(tuple(block.channels for block in config.blocks))
    top = last_passing(ladder, lambda w: param_count(with_widths(config, w)) < limits.max_params)
    filled = with_widths(config, ladder[top])
    verdict = check(filled, limits)
    if top == 0 or verdict.passed:
        return filled, verdict
    if verdict.broken != ["flops"]:  # a rule no width mends (no separable conv, ...): keep it as sampled
        return config, check(config, limits)
    # FLOPs grow with every width too: the widest rung under both limits
    top = last_passing(ladder[:top], lambda w: check(with_widths(config, w), limits).passed)
    filled = with_widths(config, ladder[top])
    return filled, check(filled, limits)
