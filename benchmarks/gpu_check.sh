#!/usr/bin/env bash
# The GPU check in one call: the CUDA tests, the speed benchmarks, a 15-epoch reference training
# (evaluation included), the --jobs measurement and a 50-trial full-fidelity search, everything
# written to one folder with the device's name.
#
#   bash benchmarks/gpu_check.sh OUT_DIR [DATA_DIR]        # on a GPU machine (~10 min)
#   TINY=1 bash benchmarks/gpu_check.sh OUT_DIR DATA_DIR    # any machine: the same steps, tiny sizes
set -uo pipefail
OUT=$(realpath -m "${1:?give an output folder}"); DATA=${2:-}
mkdir -p "$OUT"
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1
[ -n "$DATA" ] && export NAS_DATA_DIR=$DATA
if [ "${TINY:-0}" = 1 ]; then  # tiny synthetic data: every step runs, nothing is measured
  EPOCHS=1; TRIALS=3; IMAGES=1000; FRACTION=0.25; VAL=200; JOBS="1 2"; STEPS=2; TESTS="-k batch_augment"
  SEARCH_EPOCHS=2; BATCH="--batch-size 32"
else
  EPOCHS=15; TRIALS=50; IMAGES=20480; FRACTION=1.0; VAL=5000; JOBS="1 2 4 8"; STEPS=30; TESTS=""
  SEARCH_EPOCHS=15; BATCH=""
fi
step() { echo "== $1 ($(( $(date +%s) - T0 )) s)" | tee -a "$OUT/steps.log"; }
T0=$(date +%s)
python - > "$OUT/device.txt" <<'PY'
import torch; from nas.training.runtime import Runtime
r = Runtime.pick(); print(r.record())
PY
cat "$OUT/device.txt"
(command -v nvidia-smi > /dev/null && nvidia-smi dmon -s u -d 2 > "$OUT/dmon.log" 2>&1) &
DMON=$!
step "tests"; timeout 300 python -m pytest -q -x $TESTS tests/test_batch_augment.py tests/test_train.py > "$OUT/pytest.log" 2>&1; tail -2 "$OUT/pytest.log"
step "augment speed"; timeout 120 python benchmarks/augment_speed.py > "$OUT/augment_speed.txt" 2>&1; cat "$OUT/augment_speed.txt"
step "train speed"; timeout 180 python benchmarks/train_speed.py --images $IMAGES $BATCH > "$OUT/train_speed.txt" 2>&1; cat "$OUT/train_speed.txt"
step "layout"; timeout 60 python benchmarks/layout.py search_spaces/reference.toml --steps $STEPS > "$OUT/layout.txt" 2>&1; cat "$OUT/layout.txt"
step "reference, $EPOCHS epochs"; /usr/bin/time -f "%e s wall" -o "$OUT/ref.time" timeout 300 nas train reference --epochs $EPOCHS $BATCH --out "$OUT/reference-${EPOCHS}ep" > "$OUT/reference.log" 2>&1; tail -1 "$OUT/reference.log"; cat "$OUT/ref.time"
for j in $JOBS; do  # trials per minute at each --jobs, on a short search
  step "jobs $j"; S=$(date +%s)
  timeout 240 nas search --study jobs$j --storage "sqlite:///$OUT/jobs.db" --trials $(( 4 * j > 8 ? 4 * j : 8 )) --epochs 2 --data-fraction 0.25 --val-images $VAL $BATCH --jobs $j > "$OUT/jobs$j.log" 2>&1
  echo "jobs $j: rc $?, $(( $(date +%s) - S )) s" | tee -a "$OUT/jobs.txt"
done
BEST=$(python - "$OUT/jobs.txt" <<'PY'
import re, sys
rates = {}
for line in open(sys.argv[1]):
    j, rc, s = map(int, re.findall(r"\d+", line)[:3])
    if rc == 0: rates[j] = max(4 * j, 8) / s
print(max(rates, key=rates.get) if rates else 1)
PY
)
step "search: $TRIALS trials, $SEARCH_EPOCHS epochs, fraction $FRACTION, --jobs $BEST"
S=$(date +%s)
timeout 900 nas search --study full --storage "sqlite:///$OUT/search.db" --trials $TRIALS --epochs $SEARCH_EPOCHS --data-fraction $FRACTION --val-images $VAL $BATCH --jobs $BEST > "$OUT/search.log" 2>&1
echo "search: rc $?, $(( $(date +%s) - S )) s, --jobs $BEST" | tee -a "$OUT/steps.log"
nas report --study full --storage "sqlite:///$OUT/search.db" --markdown "$OUT/search-report/REPORT.md" > "$OUT/search-report.txt" 2>&1
kill $DMON 2>/dev/null
step "end"
