"""Searching designs: the space, budget filling, zero-cost proxies, studies on disk, the Optuna
search itself and the calibration of its fidelity."""
