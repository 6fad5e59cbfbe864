#!/bin/bash
# How long must a trial be to separate v4's trial 12 (truth 87.84 % at M) from the twin (85.88 %)?
# Each at 10 and 30 epochs of the search's quarter of the images (439 and 1,318 steps of 256: about
# the twin's in 10 % and 30 % of M), two seeds; trials 4 and 47 at 30 epochs, seed 0.
cd /work/main; . .venv/bin/activate; export NAS_DATA_DIR=/work/shared/data
S=studies/equal-time-main
declare -A CFG=([twin]=$S/seed-0/trial-1-val [t12]=$S/v4-trial-12-val [t4]=$S/seed-0/trial-4-val [t47]=$S/seed-0/trial-47-val)
one() {  # one DESIGN EPOCHS SEED
    local out=$S/fidelity/$2ep-$1-s$3
    [ -f $out/metrics.json ] && return
    echo "== $out $(date -u +%T)"
    nas train ${CFG[$1]}/config.toml --validate --data-fraction 0.25 --epochs $2 --seed $3 --preset none --out $out 2>&1 | grep -v '━' | tail -1
}
one t12 30 0; one twin 30 0
for s in 0 1; do one t12 10 $s; one twin 10 $s; done
one t12 30 1; one twin 30 1
one t4 30 0; one t47 30 0
echo "== done $(date -u +%T)"
