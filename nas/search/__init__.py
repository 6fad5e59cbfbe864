"""Searching designs: the space, filling designs to the parameter limit, zero-cost proxies, studies on disk, the Optuna
search itself and the calibration of its fidelity."""
