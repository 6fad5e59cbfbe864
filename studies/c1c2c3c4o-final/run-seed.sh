#!/usr/bin/env bash
# Another seed of the final training, for the spread of the 90.64 %: `nas train-best --seed SEED`
# on the committed study (run.sh first), into best-seedSEED/. Rerun to continue after an
# interruption (commit best-seedSEED/checkpoint.pt with `git add -f` to continue in a fresh
# checkout). A background job ignores Ctrl-C's SIGINT: stop it with `pkill -TERM -f "nas train-best"`;
# it loses only the epoch under way (the checkpoint is written, atomically, after each one).
#
#   nohup bash studies/c1c2c3c4o-final/run-seed.sh 2 >> studies/c1c2c3c4o-final/run-seed2.log 2>&1 &
set -euo pipefail
SEED=${1:?give the seed, e.g. 2}
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/c1c2c3c4o-final
date -u +"start %F %T UTC"
if [ ! -f studies/nas.db ]; then cp "$S/study.db" studies/nas.db; fi
run "$S/best-seed$SEED" nas train-best --seed "$SEED"
cp studies/nas.db "$S/study.db"  # with the test result train-best wrote back
date -u +"end %F %T UTC"
