#!/usr/bin/env bash
# Why search seed 0 failed: the truths at M here (11.9 min on 45,000 images, scored on the hold-out)
# of the twin and of v4's winner (trial 12 of equal-time-v4, trial 12 of seed-0 here too, which
# scored below the twin at the search's fidelity), beside the rung's two. `nas train` on their
# configs with the study's recipe (--preset none), so that the study's own pick is not overruled
# by hand-typed truths.
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh
S=studies/equal-time-zen4
started
M=$(budget "sqlite:///$S/study.db" seed-0)
run "$S/truths/twin-val" nas train studies/equal-time-main/seed-0/trial-1-val/config.toml --validate \
    --budget-minutes "$M" --preset none
run "$S/truths/trial-12-val" nas train studies/equal-time-v4/final-rung/trial-12-val/config.toml --validate \
    --budget-minutes "$M" --preset none
date -u +"end %F %T UTC"
