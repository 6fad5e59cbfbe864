#!/usr/bin/env bash
# The README's main command, run as written except that every output is named here: the study in
# this folder's study.db (`--storage`), the run folders (`--out`) and the report (`--markdown`):
# `nas search --trials 50`, `nas train-best` (the best design with train-best's final recipe),
# `nas train-best --trial 1` (the reference's feasible twin, the same recipe) and `nas report`.
# Rerun to continue after an interruption: the search resumes, a finished run is skipped, an
# interrupted one resumes from its last epoch (on the machine that holds its checkpoint.pt).
#
#   nohup bash studies/c1c2c3c4o-final/run.sh >> studies/c1c2c3c4o-final/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/c1c2c3c4o-final
DB=(--study c1c2c3c4o --storage "sqlite:///$S/study.db")  # named after its space
date -u +"start %F %T UTC"
if [ ! -f "$S/search.done" ]; then  # resumes an interrupted search; skipped once done
    nas search --trials 50 --budget-minutes 0 "${DB[@]}"  # at equal epochs (the default until 2026-12-06)
    touch "$S/search.done"
    date -u +"search end %F %T UTC"
fi
run "$S/best" nas train-best "${DB[@]}" "${FINAL[@]}"  # writes its test result back onto the study
run "$S/trial-1" nas train-best "${DB[@]}" "${FINAL[@]}" --trial 1
nas report "${DB[@]}" --markdown "$S/REPORT.md" --compare studies/reference-20ep
date -u +"end %F %T UTC"
