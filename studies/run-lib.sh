# Sourced by the studies' run.sh scripts: what they share.

run() {  # run OUT COMMAND...: skip a finished run, resume an interrupted one
    local out=$1; shift
    if [ -f "$out/metrics.json" ]; then echo "done: $out"; return; fi
    if [ -f "$out/checkpoint.pt" ]; then "$@" --out "$out" --resume; else "$@" --out "$out"; fi
}

started() {  # the log's first line: when, and on which device
    date -u +"start %F %T UTC on $(python -c 'from nas.training.runtime import Runtime; print(Runtime.pick("auto").device_name())')"
}

budget() {  # budget STORAGE STUDY: the budget M (minutes) a study stores
    python - "$1" "$2" <<'PY'
import sys, optuna
study = optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])
print(study.user_attrs["settings"]["budget_minutes"])
PY
}

# The final recipe these studies' `nas train-best` runs trained with: the presets' two knobs until
# 2026-12-06, named so that a rerun trains what ran whatever the presets say now
FINAL=(--preset none --no-decay-norm-bias --norm-bias-lr-scale 4)

proof() {  # proof FOLDER STUDY-ARGS...: the equal-time proof. The twin (trial 1) for 20 epochs,
    # whose minutes are M (set here), then the study's best design for M minutes, the budget kept;
    # seed 0, then seed 1. M is measured in the same run because the machine's speed drifts.
    local s=$1; shift
    run "$s/twin-20ep-seed0" nas train-best "$@" "${FINAL[@]}" --trial 1 --epochs 20 --seed 0
    M=$(python -c "import json; print(round(json.load(open('$s/twin-20ep-seed0/metrics.json'))['wall_seconds'] / 60, 1))")
    date -u +"M = $M min %F %T UTC"
    run "$s/best-${M}min-seed0" nas train-best "$@" "${FINAL[@]}" --budget-minutes "$M" --seed 0
    run "$s/twin-20ep-seed1" nas train-best "$@" "${FINAL[@]}" --trial 1 --epochs 20 --seed 1
    run "$s/best-${M}min-seed1" nas train-best "$@" "${FINAL[@]}" --budget-minutes "$M" --seed 1
}

best() {  # best STORAGE STUDY: the number of the trial the study picks, as nas train-best does
    python - "$1" "$2" <<'PY'
import sys, optuna
from nas.search.trials import best_trial
print(best_trial(optuna.load_study(study_name=sys.argv[2], storage=sys.argv[1])).number)
PY
}

# The main command's reproduction (studies/equal-time-zen4-v2 and later): one study a search seed
# in $S/study.db, each proven at equal time, measured: the twin's 20 epochs, then the winner for
# the minutes they took (`--time-of`), training seeds 0 and 1.

seed_search() {  # seed_search S SEED [--budget-minutes M]: the search of the main command
    local s=$1 seed=$2; shift 2
    nas search --study "seed-$seed" --seed "$seed" --storage "sqlite:///$s/study.db" --out "$s/seed-$seed" "$@"
    date -u +"seed-$seed searched %F %T UTC"
}

seed_proof() {  # seed_proof S SEED: the twin (trial 1) for 20 epochs, then the winner for their minutes
    local s=$1 seed=$2 n t db=(--storage "sqlite:///$1/study.db")
    local out="$s/seed-$seed"
    n=$(best "sqlite:///$s/study.db" "seed-$seed")
    for t in 0 1; do
        run "$out/twin-20ep-seed$t" nas train-best --study "seed-$seed" "${db[@]}" --trial 1 --epochs 20 --seed "$t"
        run "$out/best-trial$n-seed$t" nas train-best --study "seed-$seed" "${db[@]}" \
            --time-of "$out/twin-20ep-seed$t" --seed "$t"
    done
    nas report --study "seed-$seed" "${db[@]}" --markdown "$out/REPORT.md" \
        --compare "$out/twin-20ep-seed0" --compare "$out/twin-20ep-seed1"
}

main_command() {  # main_command S M: both search seeds, seed 1 first, each proven right after its search
    local s=$1 m=$2
    seed_search "$s" 1 --budget-minutes "$m"
    seed_proof "$s" 1
    seed_search "$s" 0 --budget-minutes "$m"
    seed_proof "$s" 0
    nas compare seed-0 seed-1 --storage "sqlite:///$s/study.db" --markdown "$s/COMPARE.md"
    date -u +"end %F %T UTC"
}
