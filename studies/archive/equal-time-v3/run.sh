#!/usr/bin/env bash
# The third search at equal time, with the fidelity the calibration said under-rates slow designs
# least (10 % of M a trial instead of 5 %), and the budget kept during each run (train-best's
# Deadline). The search's M is equal-time-v2's (the twin's 20 epochs on the same Zen 4 CPU model:
# 14.9 min); the proof measures M again in the same run, since the machine's speed drifts: the
# twin's 20 epochs, then the best design for the twin's minutes, seed 0, then both again for seed 1.
# Then time to 85 %: v2's winner (trial 45) at 0.8 of that M. Run it alone on the machine; rerun
# to continue after an interruption.
#
#   nohup bash studies/archive/equal-time-v3/run.sh >> studies/archive/equal-time-v3/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/archive/equal-time-v3
V2=studies/archive/equal-time-v2
STUDY=(--study equal-time-v3 --storage "sqlite:///$S/study.db")
date -u +"start %F %T UTC on $(python -c 'from nas.training.runtime import Runtime; print(Runtime.pick("auto").device_name())')"

# 1. The search: each trial 10 % of 14.9 min at its measured speed, the fast space, no budget filling
nas search --trials 50 --budget-minutes 14.9 --time-share 0.1 --space search_spaces/c1c2c3c4o-fast.toml \
    --fill-budget 0 "${STUDY[@]}"
date -u +"search end %F %T UTC"

# 2. The proof (studies/run-lib.sh): the twin's 20 epochs, whose minutes are M, and the best
# design for M minutes, kept; seed 0, then seed 1
proof "$S" "${STUDY[@]}"
nas report "${STUDY[@]}" --markdown "$S/REPORT.md" --compare "$S/twin-20ep-seed0" --compare "$S/twin-20ep-seed1"

# 3. Time to 85 %: v2's winner (trial 45, 85.63 % in its 14.9 min) at 0.8 M, kept
B=$(python -c "print(round($M * 0.8, 1))")
for seed in 0 1; do
    run "$S/v2-trial45-${B}min-seed$seed" nas train-best --study equal-time-v2 \
        --storage "sqlite:///$V2/study.db" --trial 45 --budget-minutes "$B" --seed "$seed"
done
date -u +"end %F %T UTC"
