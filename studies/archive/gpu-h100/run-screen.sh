#!/bin/bash
# Device call 3: recipe screen for the reference on the validation split (15 epochs each, side by side).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
cp -r .whl/site/* /tmp/site/
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1 OMP_NUM_THREADS=2
D=/tmp/cifar/cifar-10-batches-bin; mkdir -p $D
cp .gpudata/c/data_batch_5.bin .gpudata/c/batches.meta.txt $D/; ls -la $D
ln -sf $D/data_batch_5.bin $D/test_batch.bin   # placeholder: nothing here evaluates on "test"
export NAS_DATA_DIR=/tmp/cifar
G=/tmp/screen; mkdir -p $G; T0=$(date +%s)
nvidia-smi --query-gpu=name --format=csv
R=search_spaces/reference.toml
go() { name=$1; shift; (timeout 450 python3 -m nas.cli.main train $R --epochs 15 --validate --workers 2 --out $G/$name "$@" > $G/$name.out 2>&1; echo "$name rc=$? $(( $(date +%s) - T0 )) s") & }
go p10-wd5e-4-s0 --p-affine 0.1 --p-cutout 0.1
go p10-wd5e-4-s1 --p-affine 0.1 --p-cutout 0.1 --seed 1
go p10-wd1e-3-s0 --p-affine 0.1 --p-cutout 0.1 --weight-decay 1e-3
go p10-wd1e-3-s1 --p-affine 0.1 --p-cutout 0.1 --weight-decay 1e-3 --seed 1
go p10-wd2e-3 --p-affine 0.1 --p-cutout 0.1 --weight-decay 2e-3
go p10-wd1e-3-ls0.2 --p-affine 0.1 --p-cutout 0.1 --weight-decay 1e-3 --label-smoothing 0.2
go p10-wd1e-3-lr0.4 --p-affine 0.1 --p-cutout 0.1 --weight-decay 1e-3 --lr 0.4
go p05-wd1e-3 --p-affine 0.05 --p-cutout 0.05 --weight-decay 1e-3
go p25-wd1e-3 --p-affine 0.25 --p-cutout 0.25 --weight-decay 1e-3
go p10-wd1e-3-b512 --p-affine 0.1 --p-cutout 0.1 --weight-decay 1e-3 --batch-size 512 --lr 0.4
wait
echo "== end $(( $(date +%s) - T0 )) s"
for d in $G/*/; do python3 -c "import json,sys; m=json.load(open('$d/metrics.json')); print('$(basename $d)', m.get('accuracy'))" 2>/dev/null || echo "$(basename $d) no metrics; last: $(tail -1 $d/log.jsonl)"; done
cd $G && tar czf $OUT/screen.tgz --exclude='*.pt' --exclude='*.tmp' . && ls -la $OUT
