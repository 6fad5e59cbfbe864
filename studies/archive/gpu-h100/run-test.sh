#!/bin/bash
# Device call 6: the recipe chosen on validation (p 0.1, wd 2e-3) against the old one (wd 5e-4),
# 8 seeds each, all 50,000 training images, official test set, 15 epochs.
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1 OMP_NUM_THREADS=2 NAS_DATA_DIR=/tmp/cifar
D=/tmp/cifar/cifar-10-batches-bin; rm -f $D/test_batch.bin; cp .gpudata/d/test_batch.bin $D/ && md5sum $D/*.bin
G=/tmp/test8; mkdir -p $G; T0=$(date +%s)
R=search_spaces/reference.toml
go() { name=$1; shift; (timeout 220 python3 -m nas.cli.main train $R --epochs 15 --workers 1 --out $G/$name "$@" > $G/$name.out 2>&1; echo "$name rc=$? $(( $(date +%s) - T0 )) s") & }
for s in 0 1 2 3 4 5 6 7; do
go wd2e-3-s$s --p-affine 0.1 --p-cutout 0.1 --weight-decay 2e-3 --seed $s
go wd5e-4-s$s --p-affine 0.1 --p-cutout 0.1 --seed $s
done
wait
echo "== end $(( $(date +%s) - T0 )) s"
for d in $G/*/; do python3 -c "import json,sys; m=json.load(open('$d/metrics.json')); print('$(basename $d)', m.get('accuracy'), m.get('accuracy_flip_tta'))" 2>/dev/null || echo "$(basename $d) no metrics"; done
cd $G && tar czf $OUT/test8.tgz --exclude='*.pt' --exclude='*.tmp' . && ls -la $OUT
