#!/usr/bin/env bash
# The fourth search at equal time: equal-time-v3's (the fast space, 10 % of M a trial, no budget
# filling), now with every trial keeping its share while it trains (TrialClock: after each round
# the steps of the rounds left are re-planned from the real rounds' time). In v3 a trial's real
# time ran 0.93-1.35 of its share, the winner's 1.27 and the twin's 0.96. The search's M is v3's
# (the twin's 20 epochs on the same Zen 4 CPU model: 14.7 min); the proof measures M again in the
# same run: the twin's 20 epochs, then the best design for the twin's minutes, seed 0, then both
# again for seed 1. Then time to 85 %: the best design at 0.8 M. Run it alone on the machine;
# rerun to continue after an interruption.
#
#   nohup bash studies/equal-time-v4/run.sh >> studies/equal-time-v4/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/equal-time-v4
STUDY=(--study equal-time-v4 --storage "sqlite:///$S/study.db")
started

# 1. The search: each trial 10 % of 14.7 min, kept, the fast space, no budget filling
nas search --trials 50 --budget-minutes 14.7 --time-share 0.1 --space search_spaces/c1c2c3c4o-fast.toml \
    --fill-params 0 --rounds 4 --final-rung 0 "${STUDY[@]}"  # --fill-budget 0 and no rung when it ran
date -u +"search end %F %T UTC"

# 2. The proof (studies/run-lib.sh): the twin's 20 epochs, whose minutes are M, and the best
# design for M minutes, kept; seed 0, then seed 1
proof "$S" "${STUDY[@]}"

# 3. Time to 85 %: the best design at 0.8 M, kept
B=$(python -c "print(round($M * 0.8, 1))")
for seed in 0 1; do
    run "$S/best-${B}min-seed$seed" nas train-best "${STUDY[@]}" "${FINAL[@]}" --budget-minutes "$B" --seed "$seed"
done
nas report "${STUDY[@]}" --markdown "$S/REPORT.md" --compare "$S/twin-20ep-seed0" --compare "$S/twin-20ep-seed1"
date -u +"end %F %T UTC"
