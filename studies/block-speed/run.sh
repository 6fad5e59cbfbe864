#!/usr/bin/env bash
# The designs of this folder: their measured training speed in one run (bench.txt), then the
# reference's twin and the fastest resolution-keeping variant trained for the same 12.6 minutes
# here on the 45,000 search-training images, scored on the validation hold-out (never the test set).
# Rerun to continue: a finished run is skipped, an interrupted one resumes.
#
#   nohup bash studies/block-speed/run.sh >> studies/block-speed/run.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
source studies/run-lib.sh  # run OUT COMMAND...: skip a finished run, resume an interrupted one
S=studies/block-speed
[ -f "$S/bench.txt" ] || (cd "$S" && python ../../benchmarks/design_speed.py twin.toml twin-c1-16.toml \
    twin-c1-early.toml twin-stride2.toml twin-sep-c4.toml twin-c2-keep.toml twin-c1-16-c2-keep.toml \
    trial-27.toml --rounds 3 > bench.txt)
for design in twin twin-c1-16-c2-keep; do
    date -u +"$design start %F %T UTC"
    run "$S/$design-12.6min-val" nas train "$S/$design.toml" --preset none --validate --budget-minutes 12.6
done
date -u +"end %F %T UTC"
