#!/usr/bin/env bash
# The main command, reproduced: README's `nas search --trials 50 && nas train-best` exactly as a
# user types it, twice, with search seeds 0 and 1 (two studies in one storage), and no flag but
# the study's name and storage, the seed and the budget. Seed 0's search times M itself (the
# reference twin's 20 epochs here); seed 1's is given the same M, so that both answer the same
# question. Then each search's best for M minutes, two training seeds each, and the twin for its 20
# epochs, two seeds, shared by both. Run it alone on the machine; rerun to continue after an
# interruption (each `nas search` continues its study, `run` resumes a training).
#
#   nohup bash studies/equal-time-main/run.sh >> studies/equal-time-main/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/equal-time-main
DB=(--storage "sqlite:///$S/study.db")
date -u +"start %F %T UTC on $(python -c 'from nas.training.runtime import Runtime; print(Runtime.pick("auto").device_name())')"

budget() {  # budget STUDY: the M a study in $S/study.db stores
    python - "$1" "sqlite:///$S/study.db" <<'EOF'
import sys, optuna
study = optuna.load_study(study_name=sys.argv[1], storage=sys.argv[2])
print(study.user_attrs["settings"]["budget_minutes"])
EOF
}

# 1. The two searches: trials, then the final rung, each a plain `nas search`
nas search --study seed-0 --seed 0 "${DB[@]}" --out "$S/seed-0"
M=$(budget seed-0)
date -u +"seed-0 searched, M = $M min %F %T UTC"
nas search --study seed-1 --seed 1 "${DB[@]}" --out "$S/seed-1" --budget-minutes "$M"
date -u +"seed-1 searched %F %T UTC"

# 2. Each search's best for M minutes (the study's budget, kept), training seeds 0 and 1
for study in seed-0 seed-1; do
    for seed in 0 1; do
        run "$S/$study/best-seed$seed" nas train-best --study "$study" "${DB[@]}" --seed "$seed"
    done
done

# 3. The twin (trial 1 of each study) for its 20 epochs, seeds 0 and 1
for seed in 0 1; do
    run "$S/twin-20ep-seed$seed" nas train-best --study seed-0 "${DB[@]}" --trial 1 --epochs 20 --seed "$seed"
done

for study in seed-0 seed-1; do
    nas report --study "$study" "${DB[@]}" --markdown "$S/$study/REPORT.md" \
        --compare "$S/twin-20ep-seed0" --compare "$S/twin-20ep-seed1"
done
date -u +"end %F %T UTC"
