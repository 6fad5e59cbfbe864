#!/usr/bin/env bash
# The main command on the Zen 4 (bf16) with the speed floor (`nas search --speed-floor`, 0.85 by
# default): README's `nas search --trials 50 && nas train-best && nas report` as a user types it,
# twice, with search seeds 0 and 1 (two studies in one storage), no flag but the study's name and
# storage, the seed and the budget: M = 11.7 min, the reference twin's 20 epochs as the first
# search with the floor timed them (study seed-1-unconfirmed, section 1 of README.md). Each
# search's proof pairs the twin's 20 epochs with the winner trained for the minutes those took
# (`--time-of`): equal time, measured in the same run, training seeds 0 and 1. Run it alone on the
# machine; rerun to continue after an interruption.
#
#   nohup bash studies/equal-time-zen4-v2/run.sh >> studies/equal-time-zen4-v2/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/equal-time-zen4-v2
started

# Superseded before its proofs: seed 1 failed again at its truth, and the main command changed
# (studies/equal-time-zen4-v3). Its searches ran by the commands in README.md, with the defaults of
# their day, which the studies store; what is left of it is its proofs, here.
seed_proof "$S" 0
seed_proof "$S" 1
nas compare seed-0 seed-1 --storage "sqlite:///$S/study.db" --markdown "$S/COMPARE.md"
date -u +"end %F %T UTC"
