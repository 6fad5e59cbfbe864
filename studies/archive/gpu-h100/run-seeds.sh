#!/bin/bash
# Device calls 4 and 5: seeds 2-5 of four recipes each (reference, validation split, 15 epochs).
#   bash run-seeds.sh screen2   # call 4: the leaders of run-screen.sh and the old recipe
#   bash run-seeds.sh screen3   # call 5: variations of the leader (wd 2e-3)
# (They ran as two copies of this script, one recipe list each.)
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1 OMP_NUM_THREADS=2 NAS_DATA_DIR=/tmp/cifar
STAGE=$1
ls /tmp/cifar/cifar-10-batches-bin | wc -l
G=/tmp/$STAGE; mkdir -p $G; T0=$(date +%s)
R=search_spaces/reference.toml
go() { name=$1; shift; (timeout 400 python3 -m nas.cli.main train $R --epochs 15 --validate --workers 1 --out $G/$name "$@" > $G/$name.out 2>&1; echo "$name rc=$? $(( $(date +%s) - T0 )) s") & }
for s in 2 3 4 5; do
  if [ "$STAGE" = screen2 ]; then
    go p10-wd5e-4-s$s --p-affine 0.1 --p-cutout 0.1 --seed $s
    go p10-wd2e-3-s$s --p-affine 0.1 --p-cutout 0.1 --weight-decay 2e-3 --seed $s
    go p05-wd1e-3-s$s --p-affine 0.05 --p-cutout 0.05 --weight-decay 1e-3 --seed $s
    go p05-wd2e-3-s$s --p-affine 0.05 --p-cutout 0.05 --weight-decay 2e-3 --seed $s
  else
    go p10-wd2e-3-lr0.4-s$s --p-affine 0.1 --p-cutout 0.1 --weight-decay 2e-3 --lr 0.4 --seed $s
    go p10-wd2e-3-ls0.2-s$s --p-affine 0.1 --p-cutout 0.1 --weight-decay 2e-3 --label-smoothing 0.2 --seed $s
    go p10-wd3e-3-s$s --p-affine 0.1 --p-cutout 0.1 --weight-decay 3e-3 --seed $s
    go p10-wd2e-3-b128-s$s --p-affine 0.1 --p-cutout 0.1 --weight-decay 2e-3 --batch-size 128 --lr 0.1 --seed $s
  fi
done
wait
echo "== end $(( $(date +%s) - T0 )) s"
for d in $G/*/; do python3 -c "import json,sys; m=json.load(open('$d/metrics.json')); print('$(basename $d)', m.get('accuracy'))" 2>/dev/null || echo "$(basename $d) no metrics"; done
cd $G && tar czf $OUT/$STAGE.tgz --exclude='*.pt' --exclude='*.tmp' . && ls -la $OUT
