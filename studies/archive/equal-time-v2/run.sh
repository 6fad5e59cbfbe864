#!/usr/bin/env bash
# The second search at equal time and its proof: the steps of studies/archive/equal-time/run.sh (the twin's
# 20 epochs measure M here; `nas search --trials 50 --budget-minutes M`; the best design for M
# minutes and the twin for 20 epochs, two seeds each, on the test set; time to 85 %), with the
# search changed by what the first one and its calibration measured (README.md): the space
# search_spaces/c1c2c3c4o-fast.toml, and no budget filling. Rerun to continue.
#
#   nohup bash studies/archive/equal-time-v2/run.sh >> studies/archive/equal-time-v2/run.log 2>&1 &
S=studies/archive/equal-time-v2 SEARCH="--space search_spaces/c1c2c3c4o-fast.toml --fill-budget 0" \
    exec bash "$(dirname "$0")/../equal-time/run.sh"
