"""The limits a design must meet: their one home, read by the verdict and the command line
(no heavy imports, so that `nas --help` shows the defaults at once)."""

from __future__ import annotations

from dataclasses import dataclass

# The reference design costs 19,984,000 multiply-adds per image. The default cap is 2× that: room
# for wider early blocks, while a CPU epoch stays within about twice the reference's time.
DEFAULT_MAX_FLOPS = 40_000_000
@dataclass(frozen=True)
class Limits:
    """The hard limits. `max_params` is strict (the assignment says "less than")."""

    max_params: int = 200_000
    max_flops: int = DEFAULT_MAX_FLOPS
    min_rf: int = 44  # the total receptive field must be greater than this
