#!/usr/bin/env bash
# The control experiment of the search (docs/search.md, "The search against random sampling"):
# three TPE and three random-sampling searches of the default space, 50 trials each with the
# default (equal-epoch) search, seeds 0, 1, 2, in the order TPE 0, random 0, TPE 1, ...; then each
# study's best trial at its truth (`nas train-best --validate`: the calibration's truth fidelity,
# scored on the validation hold-out, never the test set); then `nas compare`. Every step is
# resumable: rerun to continue after an interruption (a search runs only its missing trials, a
# finished truth is skipped, an interrupted one resumes). Run it alone: nothing timed is in it,
# but a search beside it would share the 2 cores.
#
#   nohup bash studies/sampler-control/run.sh >> studies/sampler-control/run.log 2>&1 &
#   SEARCHES_ONLY=1 ...: the searches only (the truths and the comparison later)
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/sampler-control
DB="sqlite:///$S/study.db"
date -u +"start %F %T UTC"
for seed in 0 1 2; do
    for sampler in tpe random; do
        date -u +"search $sampler-$seed %F %T UTC"
        nas search --trials 50 --budget-minutes 0 --seed "$seed" --sampler "$sampler" --study "$sampler-$seed" --storage "$DB"
    done
done
[ -n "${SEARCHES_ONLY:-}" ] && { date -u +"searches done %F %T UTC"; exit 0; }
for seed in 0 1 2; do
    for sampler in tpe random; do
        run "$S/$sampler-$seed-best-val" nas train-best --study "$sampler-$seed" --storage "$DB" --validate
    done
done
nas compare tpe-0 tpe-1 tpe-2 random-0 random-1 random-2 --storage "$DB" --markdown "$S/REPORT.md"
date -u +"end %F %T UTC"
