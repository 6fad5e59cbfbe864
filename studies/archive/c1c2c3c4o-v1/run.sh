#!/usr/bin/env bash
# The main command's first study and its proof: the same steps as studies/c1c2c3c4o-v2/run.sh
# (read it), made on the first space, before C2 and C3 could keep their resolution: the space
# of commit 4f0157a (`git show 4f0157a:search_spaces/c1c2c3c4o.toml`). Today this repeats it on
# the current space.
#
#   nohup bash studies/archive/c1c2c3c4o-v1/run.sh > studies/archive/c1c2c3c4o-v1/run.log 2>&1 &
S=studies/archive/c1c2c3c4o-v1 exec bash "$(dirname "$0")/../../c1c2c3c4o-v2/run.sh"
