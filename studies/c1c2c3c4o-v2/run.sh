#!/usr/bin/env bash
# The main command's study on the space with "none" downsampling, and its proof: `nas search
# --trials 50` with the defaults, then its best design and the reference's feasible twin (trial 1
# of every study) re-trained with the study's recipe for the same 20 epochs, seeds 0 and 1 each,
# tested on the official test set; then the report. Every output is named: the study in
# $S/study.db (the run of 2026-11-28 kept it in the then-default studies/nas.db, uncommitted),
# the run folders and the report in $S. Rerun it to continue after an interruption: the search
# resumes, a finished run is skipped, an interrupted one resumes from its last epoch.
#
#   nohup bash studies/c1c2c3c4o-v2/run.sh > studies/c1c2c3c4o-v2/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
S=${S:-studies/c1c2c3c4o-v2}  # archive/c1c2c3c4o-v1/run.sh gives its own
EPOCHS=20

DB=(--study c1c2c3c4o --storage "sqlite:///$S/study.db")  # named after its space

source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one

date -u +"search start %F %T UTC"
nas search --trials 50 --budget-minutes 0 "${DB[@]}"  # at equal epochs (the default until 2026-12-06)
date -u +"search end %F %T UTC"
for seed in 0 1; do
    run "$S/best-${EPOCHS}ep-seed$seed" nas train-best "${DB[@]}" --preset none --epochs "$EPOCHS" --seed "$seed"
    run "$S/twin-${EPOCHS}ep-seed$seed" nas train-best "${DB[@]}" --preset none --trial 1 --epochs "$EPOCHS" --seed "$seed"
done
nas report "${DB[@]}" --markdown "$S/REPORT.md" --compare "$S/twin-${EPOCHS}ep-seed0"
date -u +"end %F %T UTC"
