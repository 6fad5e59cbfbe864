#!/usr/bin/env bash
# The third search at equal time, with the fidelity the calibration said under-rates slow designs
# least (10 % of M a trial instead of 5 %), and the budget kept during each run (train-best's
# Deadline); then time to 85 % of equal-time-v2's winner with the budget kept. M and the twin's
# runs are equal-time-v2's (the twin's 20 epochs on the same Zen 4 CPU model: 14.9 min). Run it
# alone on the machine; rerun to continue after an interruption.
#
#   nohup bash studies/equal-time-v3/run.sh >> studies/equal-time-v3/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/equal-time-v3
V2=studies/equal-time-v2
M=14.9
STUDY=(--study equal-time-v3 --storage "sqlite:///$S/study.db")
V2STUDY=(--study equal-time-v2 --storage "sqlite:///$V2/study.db")
date -u +"start %F %T UTC on $(python -c 'from nas.training.runtime import Runtime; print(Runtime.pick("auto").device_name())')"

# 1. The search: each trial 10 % of M at its measured speed, the fast space, no budget filling
nas search --trials 50 --budget-minutes "$M" --time-share 0.1 --space search_spaces/c1c2c3c4o-fast.toml \
    --fill-budget 0 "${STUDY[@]}"
date -u +"search end %F %T UTC"

# 2. The proof: its best design for M minutes (kept), seeds 0 and 1; the twin's are v2's
for seed in 0 1; do
    run "$S/best-${M}min-seed$seed" nas train-best "${STUDY[@]}" --seed "$seed"
done

# 3. Time to 85 %: v2's winner (trial 45, 85.63 % in M) at 0.8 M, the budget kept
for seed in 0 1; do
    run "$S/v2-trial45-11.9min-seed$seed" nas train-best "${V2STUDY[@]}" --trial 45 --budget-minutes 11.9 --seed "$seed"
done
nas report "${STUDY[@]}" --markdown "$S/REPORT.md" --compare "$V2/twin-20ep-seed0" --compare "$V2/twin-20ep-seed1"
date -u +"end %F %T UTC"
