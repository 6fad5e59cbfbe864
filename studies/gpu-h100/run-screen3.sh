#!/bin/bash
# Device call 5: seeds 2-5 of four more recipes (reference, validation split, 15 epochs).
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1 OMP_NUM_THREADS=2 NAS_DATA_DIR=/tmp/cifar
ls /tmp/cifar/cifar-10-batches-bin | wc -l
G=/tmp/screen3; mkdir -p $G; T0=$(date +%s)
R=search_spaces/reference.toml
go() { name=$1; shift; (timeout 400 python3 -m nas.cli train $R --epochs 15 --validate --workers 1 --out $G/$name "$@" > $G/$name.out 2>&1; echo "$name rc=$? $(( $(date +%s) - T0 )) s") & }
for s in 2 3 4 5; do
go p10-wd2e-3-lr0.4-s$s --p-affine 0.1 --p-cutout 0.1 --weight-decay 2e-3 --lr 0.4 --seed $s
go p10-wd2e-3-ls0.2-s$s --p-affine 0.1 --p-cutout 0.1 --weight-decay 2e-3 --label-smoothing 0.2 --seed $s
go p10-wd3e-3-s$s --p-affine 0.1 --p-cutout 0.1 --weight-decay 3e-3 --seed $s
go p10-wd2e-3-b128-s$s --p-affine 0.1 --p-cutout 0.1 --weight-decay 2e-3 --batch-size 128 --lr 0.1 --seed $s
done
wait
echo "== end $(( $(date +%s) - T0 )) s"
for d in $G/*/; do python3 -c "import json,sys; m=json.load(open('$d/metrics.json')); print('$(basename $d)', m.get('accuracy'))" 2>/dev/null || echo "$(basename $d) no metrics"; done
cd $G && tar czf $OUT/screen3.tgz --exclude='*.pt' --exclude='*.tmp' . && ls -la $OUT
