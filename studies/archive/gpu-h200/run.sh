#!/bin/bash
# Device check, call 3: real-data benchmarks, recipe exploration on the validation split, search.
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1
D=/tmp/cifar/cifar-10-batches-bin; mkdir -p $D
cp .gpudata/c/data_batch_*.bin $D/; ls -la $D
ln -sf $D/data_batch_5.bin $D/test_batch.bin   # placeholder: nothing here evaluates on "test"
export NAS_DATA_DIR=/tmp/cifar
G=/tmp/gpu; mkdir -p $G
T0=$(date +%s)
nvidia-smi dmon -s u -d 2 > $G/dmon.log 2>&1 &
echo "== layout"; timeout 60 python3 benchmarks/layout.py search_spaces/reference.toml --steps 30 --device cuda
timeout 60 python3 benchmarks/layout.py studies/c1c2c3c4o/best/config.toml --steps 30 --device cuda
echo "== train_speed"; timeout 90 python3 benchmarks/train_speed.py --images 20480
echo "== explore $(( $(date +%s) - T0 )) s"
R=search_spaces/reference.toml; B=studies/c1c2c3c4o/best/config.toml
go() { name=$1; shift; (timeout 240 python3 -m nas.cli.main train "$@" --validate --workers 2 --out $G/$name > $G/$name.out 2>&1; echo "$name rc=$?") & }
go ref-b256-lr0.2 $R --epochs 15
go ref-b128-lr0.1 $R --epochs 15 --batch-size 128 --lr 0.1
go ref-b128-lr0.05 $R --epochs 15 --batch-size 128 --lr 0.05
go ref-b512-lr0.4 $R --epochs 15 --batch-size 512 --lr 0.4
go ref-b256-lr0.4 $R --epochs 15 --lr 0.4
go ref-b256-wd1e-4 $R --epochs 15 --weight-decay 1e-4
go ref-b256-ls0 $R --epochs 15 --label-smoothing 0
go t42-30ep-b256 $B --epochs 30
go t42-30ep-b128 $B --epochs 30 --batch-size 128 --lr 0.1
go ref-30ep-b256 $R --epochs 30
wait
echo "== search $(( $(date +%s) - T0 )) s"
for w in 1 2 3; do
  (timeout $(( 430 - ($(date +%s) - T0) )) python3 -m nas.cli.main search --trials 50 --study gpu-full --epochs 15 --data-fraction 1.0 --workers 4 --storage sqlite:///$G/gpu.db > $G/search$w.out 2>&1; echo "search $w rc=$?") &
  sleep 5
done
wait
echo "== end $(( $(date +%s) - T0 )) s"
kill %1 2>/dev/null
python3 -m nas.cli.main report --study gpu-full --storage sqlite:///$G/gpu.db > $G/report.txt 2>&1
cd $G && tar czf $OUT/gpu.tgz --exclude='*.pt' --exclude='*.tmp' . && ls -la $OUT
