#!/usr/bin/env bash
# Another seed of the final training, for the spread of the 90.64 %: `nas train-best --seed SEED`
# on the committed study (run.sh first), into best-seedSEED/. Rerun to continue after an
# interruption (on the machine that holds its checkpoint.pt: an unfinished run is not committed).
# A background job ignores Ctrl-C's SIGINT: stop it with `kill -TERM PID` (the PID of its
# `nas train-best`); it loses only the epoch under way (the checkpoint is written, atomically,
# after each one).
#
#   nohup bash studies/c1c2c3c4o-final/run-seed.sh 1 >> studies/c1c2c3c4o-final/run-seed1.log 2>&1 &
set -euo pipefail
SEED=${1:?give the seed, e.g. 1}
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/c1c2c3c4o-final
date -u +"start %F %T UTC"
run "$S/best-seed$SEED" nas train-best --study c1c2c3c4o --storage "sqlite:///$S/study.db" "${FINAL[@]}" --seed "$SEED"
date -u +"end %F %T UTC"
