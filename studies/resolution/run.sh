#!/usr/bin/env bash
# Does keeping a higher resolution deeper in the network beat the reference's twin? The twin and
# two variants that skip one downsampling (C3's, so that C4 runs at 8×8; or C2's, so that C3 runs
# at 16×16 and C4 at 8×8), same parameters, trained alike at the calibration's truth fidelity
# (10 epochs on the 45,000 search-training images, validation hold-out), seeds 0 and 1.
# Rerun to continue: a finished run is skipped, an interrupted one resumes.
#
#   nohup bash studies/resolution/run.sh > studies/resolution/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
S=studies/resolution
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
date -u +"start %F %T UTC"
for seed in ${SEEDS:-0 1}; do
    for design in twin twin-c3-keep twin-c2-keep; do
        run "$S/$design-seed$seed" nas train "$S/$design.toml" --preset none --validate --epochs 10 --seed "$seed"
    done
done
date -u +"end %F %T UTC"
