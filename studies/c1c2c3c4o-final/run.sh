#!/usr/bin/env bash
# The README's main command, run as written except that its outputs go to this folder (`--out`,
# `--markdown`; the study is copied here as study.db: commit it, and each run's checkpoint.pt
# with `git add -f`, to continue in a fresh checkout): `nas search --trials 50`, `nas train-best`
# (the best design with train-best's final recipe), `nas train-best --trial 1` (the reference's
# feasible twin, the same recipe) and `nas report`. Rerun to continue after an interruption: the
# search resumes, a finished run is skipped, an interrupted one resumes from its last epoch.
#
#   nohup bash studies/c1c2c3c4o-final/run.sh >> studies/c1c2c3c4o-final/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/c1c2c3c4o-final
date -u +"start %F %T UTC"
if [ ! -f studies/nas.db ] && [ -f "$S/study.db" ]; then  # a fresh checkout: the committed copy
    cp "$S/study.db" studies/nas.db
fi
if [ ! -f "$S/search.done" ]; then  # resumes an interrupted search; skipped once done
    nas search --trials 50
    touch "$S/search.done"
    date -u +"search end %F %T UTC"
fi
cp studies/nas.db "$S/study.db"
run "$S/best" nas train-best
cp studies/nas.db "$S/study.db"  # with the test result train-best wrote back
run "$S/trial-1" nas train-best --trial 1
cp studies/nas.db "$S/study.db"
nas report --markdown "$S/REPORT.md"
date -u +"end %F %T UTC"
