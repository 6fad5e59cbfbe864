#!/usr/bin/env bash
# The main command on the Zen 4 (bf16) after equal-time-zen4-v2: C1 narrowed in the fast space, a
# speed floor of 0.95 judged by 5-s timings, C3 and C4 narrowed (README.md). README's `nas search --trials 50 && nas train-best
# && nas report` as a user types it, twice, with search seeds 1 and 0 (two studies in one
# storage), no flag but the study's name and storage, the seed and the budget: M = 11.7 min, the
# reference twin's 20 epochs as equal-time-zen4-v2's first search timed them on this machine
# (study seed-1-unconfirmed there). Seed 1 first, the seed that failed twice. Each search's proof
# pairs the twin's 20 epochs with the winner trained for the minutes those took (`--time-of`):
# equal time, measured in the same run, training seeds 0 and 1. Run it alone on the machine;
# rerun to continue after an interruption.
#
#   nohup bash studies/equal-time-zen4-v3/run.sh >> studies/equal-time-zen4-v3/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # seed_search, seed_proof; run OUT COMMAND...: skip or resume a run
S=studies/equal-time-zen4-v3
started

M=$(budget sqlite:///studies/equal-time-zen4-v2/study.db seed-1-unconfirmed)
seed_search "$S" 1 --budget-minutes "$M"
# Superseded by equal-time-zen4-v4 after search seed 1's truth (85.02 %, the twin's 84.84 %): search
# seed 0 and the proofs were not run here.
date -u +"end %F %T UTC"
