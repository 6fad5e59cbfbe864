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
DB=(--storage "sqlite:///$S/study.db")
started

search() {  # search SEED [--budget-minutes M]: the search of the main command for one seed
    local seed=$1; shift
    nas search --study "seed-$seed" --seed "$seed" "${DB[@]}" --out "$S/seed-$seed" "$@"
    date -u +"seed-$seed searched %F %T UTC"
}

proof() {  # proof SEED: the twin (trial 1) for 20 epochs, then the winner for the minutes they took
    local seed=$1 out="$S/seed-$1" n t
    n=$(best "sqlite:///$S/study.db" "seed-$seed")
    for t in 0 1; do
        run "$out/twin-20ep-seed$t" nas train-best --study "seed-$seed" "${DB[@]}" --trial 1 --epochs 20 --seed "$t"
        run "$out/best-trial$n-seed$t" nas train-best --study "seed-$seed" "${DB[@]}" \
            --time-of "$out/twin-20ep-seed$t" --seed "$t"
    done
    nas report --study "seed-$seed" "${DB[@]}" --markdown "$out/REPORT.md" \
        --compare "$out/twin-20ep-seed0" --compare "$out/twin-20ep-seed1"
}

M=$(budget "sqlite:///$S/study.db" seed-1-unconfirmed)
search 0 --budget-minutes "$M"
proof 0
search 1 --budget-minutes "$M"
proof 1
nas compare seed-0 seed-1 "${DB[@]}" --markdown "$S/COMPARE.md"
date -u +"end %F %T UTC"
