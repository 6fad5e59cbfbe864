#!/usr/bin/env bash
# The search at equal time and its proof, on this machine alone: the reference's twin trained for
# 20 epochs (its wall time is the budget M), `nas search --trials 50 --budget-minutes M`, the best
# design trained for M minutes and the twin for 20 epochs, two seeds each, on the official test set;
# then time to 85 %: the best design at shorter budgets, two seeds each. Rerun it to continue after
# an interruption: the search resumes, a finished run is skipped, an interrupted one resumes.
#
#   nohup bash studies/archive/equal-time/run.sh >> studies/archive/equal-time/run.log 2>&1 &
#
# Another study runs the same steps with other search settings: S (its folder, whose name is the
# study's), SEARCH (more `nas search` flags), e.g. studies/archive/equal-time-v2/run.sh.
set -euo pipefail
cd "$(dirname "$0")/../../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=${S:-studies/archive/equal-time}
read -r -a SEARCH <<< "${SEARCH:-}"
DB="sqlite:///$S/study.db"
STUDY=(--study "$(basename "$S")" --storage "$DB")

# 1. The twin, 20 epochs, seed 0, trained from the final study (trial 1 of every study is the twin)
FINAL_COPY=$(mktemp -d)/study.db
cp studies/c1c2c3c4o-final/study.db "$FINAL_COPY"
run "$S/twin-20ep-seed0" nas train-best --storage "sqlite:///$FINAL_COPY" --trial 1 --epochs 20 --seed 0
M=$(python -c "import json; print(round(json.load(open('$S/twin-20ep-seed0/metrics.json'))['wall_seconds'] / 60, 1))")

# 2. The search at equal time: each trial trains 5 % of M at its measured speed
date -u +"search start %F %T UTC, budget $M min"
nas search --trials 50 --budget-minutes "$M" "${STUDY[@]}" "${SEARCH[@]}"
date -u +"search end %F %T UTC"

# 3. The proof: the best design for M minutes, the twin for 20 epochs, seeds 0 and 1
for seed in 0 1; do
    run "$S/best-${M}min-seed$seed" nas train-best "${STUDY[@]}" --seed "$seed"
done
run "$S/twin-20ep-seed1" nas train-best "${STUDY[@]}" --trial 1 --epochs 20 --seed 1

# 4. Time to 85 %, when the best design reached 85.0 % on average in M minutes: 0.6 M first; then
# 0.45 M if it reached 85.0 % there too, else 0.8 M
mean() { python -c "import json, sys; print(sum(json.load(open(f'{d}/metrics.json'))['accuracy'] for d in sys.argv[1:]) / (len(sys.argv) - 1))" "$@"; }
budget() {  # budget FRACTION: the best design for FRACTION x M minutes, two seeds; its mean
    local b; b=$(python -c "print(round($M * $1, 1))")
    for seed in 0 1; do run "$S/best-${b}min-seed$seed" nas train-best "${STUDY[@]}" --budget-minutes "$b" --seed "$seed" >&2; done
    mean "$S/best-${b}min-seed0" "$S/best-${b}min-seed1"
}
reached() { python -c "import sys; sys.exit(not float(sys.argv[1]) >= 0.85)" "$1"; }
if ! reached "$(mean "$S/best-${M}min-seed0" "$S/best-${M}min-seed1")"; then
    echo "the best design stayed under 85.0 % in $M min: its time to 85 % is longer than M"
elif reached "$(budget 0.6)"; then
    budget 0.45 > /dev/null
else
    budget 0.8 > /dev/null
fi
nas report "${STUDY[@]}" --markdown "$S/REPORT.md" --compare "$S/twin-20ep-seed0" --compare "$S/twin-20ep-seed1"
date -u +"end %F %T UTC"
