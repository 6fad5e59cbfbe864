#!/usr/bin/env bash
# The main command on the Zen 4 (bf16) after equal-time-zen4-v4: the fast space's C1 strides
# early only, with a standard first conv, and the twin stays trial 1 outside the space (README.md).
# README's `nas search --trials 50 && nas train-best && nas report` as a user types it, twice, with
# search seeds 1 and 0 (two studies in one storage), no flag but the study's name and storage, the
# seed and the budget: M = 11.7 min, the reference twin's 20 epochs as equal-time-zen4-v2's first
# search timed them on this machine (study seed-1-unconfirmed there). Seed 1 first, the seed that
# failed five times. Each search's proof pairs the twin's 20 epochs with the winner trained for the
# minutes those took (`--time-of`): equal time, measured in the same run, training seeds 0 and 1;
# each right after its search. Run it alone on the machine; rerun to continue after an interruption.
#
#   nohup bash studies/equal-time-zen4-v5/run.sh >> studies/equal-time-zen4-v5/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # main_command: both seeds searched and proven; run: skip or resume a run
S=studies/equal-time-zen4-v5
started

M=$(budget sqlite:///studies/equal-time-zen4-v2/study.db seed-1-unconfirmed)
main_command "$S" "$M"
