# Sourced by the studies' run.sh scripts: what they share.

run() {  # run OUT COMMAND...: skip a finished run, resume an interrupted one
    local out=$1; shift
    if [ -f "$out/metrics.json" ]; then echo "done: $out"; return; fi
    if [ -f "$out/checkpoint.pt" ]; then "$@" --out "$out" --resume; else "$@" --out "$out"; fi
}
