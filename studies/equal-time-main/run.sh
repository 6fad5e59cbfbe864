#!/usr/bin/env bash
# The main command, reproduced: README's `nas search --trials 50 && nas train-best` exactly as a
# user types it, twice, with search seeds 0 and 1 (two studies in one storage), and no flag but
# the study's name and storage, the seed and the budget. The first search times M itself (the
# reference twin's 20 epochs here); the others are given the same M, so that all answer the same
# question. Then each search's best for M minutes, two training seeds each, and the twin for its 20
# epochs, two seeds, shared by all. Run it alone on the machine; rerun to continue after an
# interruption (each `nas search` continues its study, `run` resumes a training).
#
#   nohup bash studies/equal-time-main/run.sh >> studies/equal-time-main/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/equal-time-main
DB=(--storage "sqlite:///$S/study.db")
started

# 1. Search seed 0 as the defaults were until 2026-12-07: trials paced by time (sections 1-5)
nas search --study seed-0 --seed 0 "${DB[@]}" --out "$S/seed-0" --trial-steps 0
M=$(budget "sqlite:///$S/study.db" seed-0)
date -u +"seed-0 searched, M = $M min %F %T UTC"
run "$S/seed-0/best-seed0" nas train-best --study seed-0 "${DB[@]}" --trial 4 --seed 0
run "$S/seed-0/trial-1-val" nas train-best --study seed-0 "${DB[@]}" --trial 1 --validate
run "$S/v4-trial-12-val" nas train studies/equal-time-v4/final-rung/trial-12-val/config.toml \
    --validate --budget-minutes "$M" --preset none

# 2. The twin (trial 1 of each study) for its 20 epochs, seeds 0 and 1: the rival of every search
for seed in 0 1; do
    run "$S/twin-20ep-seed$seed" nas train-best --study seed-0 "${DB[@]}" --trial 1 --epochs 20 --seed "$seed"
done

# 3. The fidelity (section 6): five designs with a truth at M, each the same steps, about the
# twin's in 10 % of M (9 epochs of a quarter of the images: 396 steps of 256); section 8's runs
# at 10 and 30 epochs, two seeds: fidelity/len.sh
declare -A CONFIG=([twin]=$S/seed-0/trial-1-val [t12]=$S/v4-trial-12-val [t4]=$S/seed-0/trial-4-val
                   [t47]=$S/seed-0/trial-47-val [t21]=$S/seed-0/trial-21-val)
for d in t12 twin t4 t47 t21; do
    run "$S/fidelity/steps-$d" nas train "${CONFIG[$d]}/config.toml" --validate --data-fraction 0.25 \
        --epochs 9 --preset none
done

# 4. The main command with today's defaults (trials paced by steps, pruned after their first
# round only), seeds 0 and 1, the same M; each search's best for M minutes, training seeds 0 and 1.
# (Its first try with Hyperband, stopped after 15 trials, is kept as steps-hyperband-seed-0.)
for search in 0 1; do
    nas search --study "steps-seed-$search" --seed "$search" "${DB[@]}" --out "$S/steps-seed-$search" \
        --budget-minutes "$M"
    date -u +"steps-seed-$search searched %F %T UTC"
    for seed in 0 1; do
        run "$S/steps-seed-$search/best-seed$seed" nas train-best --study "steps-seed-$search" "${DB[@]}" --seed "$seed"
    done
    nas report --study "steps-seed-$search" "${DB[@]}" --markdown "$S/steps-seed-$search/REPORT.md" \
        --compare "$S/twin-20ep-seed0" --compare "$S/twin-20ep-seed1"
done
date -u +"end %F %T UTC"
