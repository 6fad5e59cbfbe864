#!/usr/bin/env bash
# Was search seed 1's proof decided by the whitened first conv? At the twin's minutes trial 20
# trains 37 epochs, past the `short` preset's 30, so `nas train-best` gave it the `long` preset
# (no whitening) while the twin's 20 epochs had the `short` one (whitening). Here trial 20 trains
# again for each twin run's minutes, with `--preset short` (the `long` knobs plus the whitened
# first conv), the same training seed: the difference to best-trial20-seedT is the whitening.
# `nas train` on its truth run's config, so that the study records nothing. Run it alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh
S=studies/equal-time-zen4-v5/seed-1
started
for t in 0 1; do
    run "$S/trial20-short-seed$t" nas train "$S/trial-20-val/config.toml" \
        --time-of "$S/twin-20ep-seed$t" --preset short --seed "$t"
done
date -u +"end %F %T UTC"
