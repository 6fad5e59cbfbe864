#!/usr/bin/env bash
# The main command, reproduced on the Zen 4 (bf16): README's `nas search --trials 50 && nas
# train-best && nas report` exactly as a user types it, twice, with search seeds 0 and 1 (two
# studies in one storage), and no flag but the study's name and storage, the seed and the budget.
# The first search times M itself (the reference twin's 20 epochs here); the second is given the
# same M, so that both answer the same question. Each search's best trains for M minutes with
# training seeds 0 and 1; the twin trains its 20 epochs with seeds 0 and 1, shared by both. Run it
# alone on the machine; rerun to continue after an interruption (`nas search` continues its study,
# `run` resumes a training).
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
    for t in 0 1; do
        run "$S/seed-$seed/best-seed$t" nas train-best --study "seed-$seed" "${DB[@]}" --seed "$t"
    done
    for t in 0 1; do  # the twin (trial 1 of every study), the rival of both searches
        run "$S/twin-20ep-seed$t" nas train-best --study seed-0 "${DB[@]}" --trial 1 --epochs 20 --seed "$t"
    done
    nas report --study "seed-$seed" "${DB[@]}" --markdown "$S/seed-$seed/REPORT.md" \
        --compare "$S/twin-20ep-seed0" --compare "$S/twin-20ep-seed1"
    # the time to 85 %: the winner for shorter budgets, two seeds each (0.6 M is the aim; 5 min the
    # short result's aim, studies/short-result), read by nas compare
    for minutes in $(python -c "print(round(0.6 * $(budget "sqlite:///$S/study.db" "seed-$seed"), 1))") 5; do
        for t in 0 1; do
            run "$S/seed-$seed/best-${minutes}min-seed$t" nas train-best --study "seed-$seed" "${DB[@]}" \
                --budget-minutes "$minutes" --seed "$t"
        done
    done
}

search 0
search 1 --budget-minutes "$(budget "sqlite:///$S/study.db" seed-0)"
nas compare seed-0 seed-1 "${DB[@]}" --markdown "$S/COMPARE.md"
date -u +"end %F %T UTC"
