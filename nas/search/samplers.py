"""What Optuna runs a search with: the sampler that proposes designs (`--sampler`) and the pruner
that stops poor trainings early (`--pruner`)."""

from __future__ import annotations

import optuna


def make_sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    """"tpe": TPE, which reads each trial's rule verdicts from its constraints (set by `judge`);
    constant liar keeps parallel workers from sampling the same design. "random": uniform random
    sampling of the same space, the control TPE must beat (`nas compare`); it reads no verdict."""
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True,
                                      n_startup_trials=10)


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """The pruner of a trial of `epochs` passes (epochs, or at equal time rounds). "hyperband" and
    "median" may stop it after any pass but its last; "first" only after its first, below the
    median of the complete trials' first passes (once five are complete): later passes add a
    trial's last quarter, which is not worth a noisier ranking (studies/equal-time-main)."""
    if name == "first":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1,
                                           interval_steps=max(epochs, 1))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    return optuna.pruners.NopPruner()
