#!/usr/bin/env bash
# Recipe screen: each knob alone against the current recipe, on the validation split (train on the
# 45,000 search-training images' DATA share, score on the 5,000 held-out ones), SEEDS seeds each,
# a short schedule. Rerun to continue: finished runs are skipped, an interrupted one resumes.
#
#   nohup bash studies/recipe-screen/run.sh DESIGN.toml > studies/recipe-screen/run.log 2>&1 &
#   python studies/recipe-screen/tabulate.py studies/recipe-screen
set -euo pipefail
cd "$(dirname "$0")/../.."
DESIGN=${1:?give the design to screen on, e.g. studies/c1c2c3c4o-v2/best-20ep-seed0/config.toml}
S=studies/recipe-screen
EPOCHS=${EPOCHS:-10} DATA=${DATA:-0.5} SEEDS=${SEEDS:-"0 1 2"}

declare -A KNOBS=(
    [base]=""
    [ema-0.99]="--ema 0.99"
    [label-smoothing-0.2]="--label-smoothing 0.2"
    [no-decay-norm-bias]="--no-decay-norm-bias"
    [norm-bias-lr-x4]="--norm-bias-lr-scale 4"
    [flip-alternating]="--flip alternating"
    [mixup-0.2-ramp]="--mixup 0.2 --mix-ramp 0.3"
    [cutmix-1.0-ramp]="--cutmix 1.0 --mix-ramp 0.3"
    [adamw-cosine]="--optimizer adamw --schedule cosine"
    [batch-512-lr-0.4]="--batch-size 512 --lr 0.4"
)
for seed in $SEEDS; do  # seed by seed: an early stop still leaves every knob compared
    for name in base ema-0.99 label-smoothing-0.2 no-decay-norm-bias norm-bias-lr-x4 \
                flip-alternating mixup-0.2-ramp cutmix-1.0-ramp adamw-cosine batch-512-lr-0.4; do
        out=$S/$name-s$seed
        if [ -f "$out/metrics.json" ]; then continue; fi
        resume=""; if [ -f "$out/checkpoint.pt" ]; then resume="--resume"; fi
        # shellcheck disable=SC2086  # the knob's flags are words
        nas train "$DESIGN" --validate --epochs "$EPOCHS" --data-fraction "$DATA" --seed "$seed" \
            ${KNOBS[$name]} --out "$out" $resume
    done
done
python studies/recipe-screen/tabulate.py "$S"
