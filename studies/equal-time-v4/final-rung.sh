#!/usr/bin/env bash
# The final rung of equal-time-v4: the search ranked its trials after 10 % of M on a quarter of
# the images, and its top three were within 1.2 points (trial 39 71.56 %, 12 71.08 %, 30 70.34 %).
# Each of them now gets its truth: the study's full budget (14.7 min) on all 45,000
# search-training images, scored on the validation hold-out (nas train-best --validate). The best
# trial is then the highest truth (docs/search.md, "The final rung"). If that is not trial 39,
# whose proof is run.sh's, the proof is run again for it: the twin's 20 epochs, whose minutes are
# M, then the truth-best for M minutes, two seeds; then time to 85 %: the truth-best at 0.8 M.
# Run it alone on the machine; rerun to continue.
#
#   nohup bash studies/equal-time-v4/final-rung.sh >> studies/equal-time-v4/final-rung.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run, proof
S=studies/equal-time-v4
STUDY=(--study equal-time-v4 --storage "sqlite:///$S/study.db")
started

for n in 39 12 30; do
    run "$S/final-rung/trial-$n-val" nas train-best "${STUDY[@]}" --validate --trial "$n"
done
BEST=$(python -c "
from nas.search.storage import load_existing
from nas.search.trials import best_trial
print(best_trial(load_existing('equal-time-v4', 'sqlite:///$S/study.db')).number)")
date -u +"the truth-best is trial $BEST %F %T UTC"
if [ "$BEST" = 39 ]; then echo "trial 39's proof is run.sh's: nothing more to run"; exit 0; fi

proof "$S/final-rung" "${STUDY[@]}"

# Time to 85 %: the truth-best at 0.8 M, kept
B=$(python -c "print(round($M * 0.8, 1))")
for seed in 0 1; do
    run "$S/final-rung/best-${B}min-seed$seed" nas train-best "${STUDY[@]}" "${FINAL[@]}" --budget-minutes "$B" --seed "$seed"
done
nas report "${STUDY[@]}" --markdown "$S/REPORT.md" \
    --compare "$S/final-rung/twin-20ep-seed0" --compare "$S/final-rung/twin-20ep-seed1"
date -u +"end %F %T UTC"
