#!/usr/bin/env bash
# The main command, reproduced on the Zen 4 (bf16): README's `nas search --trials 50 && nas
# train-best && nas report` exactly as a user types it, twice, with search seeds 0 and 1 (two
# studies in one storage), and no flag but the study's name and storage, the seed and the budget.
# The first search timed M itself (the reference twin's 20 epochs here); the second is given the
# same M, so that both answer the same question. Each search's best trains for M minutes with
# training seeds 0 and 1; the twin trains its 20 epochs with seeds 0 and 1, shared by both. Run it
# alone on the machine; rerun to continue after an interruption (`nas search` continues its study
# and its rungs, `run` resumes a training). Seed 0's search ran first with the rung of that day
# (its trial 4, in seed-0/best-seed0 and best-seed1); `nas search` run again on its study gives
# its trials the rungs of today.
#
#   nohup bash studies/equal-time-zen4/run.sh >> studies/equal-time-zen4/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/equal-time-zen4
DB=(--storage "sqlite:///$S/study.db")
started

search() {  # search SEED [--budget-minutes M]: the main command for one search seed
    local seed=$1; shift
    nas search --study "seed-$seed" --seed "$seed" "${DB[@]}" --out "$S/seed-$seed" "$@"
    date -u +"seed-$seed searched %F %T UTC"
    local n out
    n=$(best "sqlite:///$S/study.db" "seed-$seed")
    for t in 0 1; do
        out="$S/seed-$seed/best-trial$n-seed$t"
        [ "$seed-$n" = 0-4 ] && out="$S/seed-0/best-seed$t"  # the first rung's pick, tested so
        run "$out" nas train-best --study "seed-$seed" "${DB[@]}" --seed "$t"
    done
    for t in 0 1; do  # the twin (trial 1 of every study), the rival of both searches
        run "$S/twin-20ep-seed$t" nas train-best --study seed-0 "${DB[@]}" --trial 1 --epochs 20 --seed "$t"
    done
    nas report --study "seed-$seed" "${DB[@]}" --markdown "$S/seed-$seed/REPORT.md" \
        --compare "$S/twin-20ep-seed0" --compare "$S/twin-20ep-seed1"
}

time_to_85() {  # time_to_85 SEED: the winner for shorter budgets, two seeds each (0.6 M is the
    # aim; 5 min the short result's aim, studies/short-result), read by nas compare
    local seed=$1 n
    n=$(best "sqlite:///$S/study.db" "seed-$seed")
    for minutes in $(python -c "print(round(0.6 * $(budget "sqlite:///$S/study.db" "seed-$seed"), 1))") 5; do
        for t in 0 1; do
            run "$S/seed-$seed/best-trial$n-${minutes}min-seed$t" nas train-best --study "seed-$seed" \
                "${DB[@]}" --budget-minutes "$minutes" --seed "$t"
        done
    done
}

search 1 --budget-minutes "$(budget "sqlite:///$S/study.db" seed-0)"
search 0
nas compare seed-0 seed-1 "${DB[@]}" --markdown "$S/COMPARE.md"
time_to_85 1
time_to_85 0
nas compare seed-0 seed-1 "${DB[@]}" --markdown "$S/COMPARE.md"
date -u +"end %F %T UTC"
