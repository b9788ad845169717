#!/usr/bin/env bash
# The device plan of docs/performance.md: two calls in one lent GPU session, on a machine with
# PyTorch but not Snakemake. Every step has its own timeout, writes its JSON as soon as it ends,
# and a failed step does not stop the next; everything goes to $OUT (at most 8 files per call).
#
#   scripts/speed/device_session.sh call1   # ~7 min: conv probe, then 4-epoch trainer speeds
#   scripts/speed/device_session.sh call2   # the rest: the five baselines in order, 3 seeds, 200 epochs each,
#                                            # at the fastest setting; every finished unit comes back
#   STRATEGIES="drw drs" FULL_SETTING="reduce-overhead 3" scripts/speed/device_session.sh call2
#                                            # later sessions: those units, in order
#
# Data: results/data/<id>/ (materialized here), or results/data/<id>.tar.xz carried with the call
# (unpacked with Python's tarfile; no xz binary needed). Provenance: set LTBENCH_COMMIT to the
# commit (no .git travels). call2 picks the fastest configuration from call1's measurements, kept
# in results/speed/ on the machine while it is warm, else uses $FULL_SETTING ("<compile> <pack>").
# CPU dry run on tiny data: BENCHMARK=... CONFIG=... EPOCHS_FULL=2 PROBE_ARGS="--batch 8 --steps 2".
set -uo pipefail
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
OUT=${OUT:-results/speed/out}
KEEP=results/speed  # survives between calls while the machine is warm ($OUT is emptied)
BENCHMARK=${BENCHMARK:-resnet32-cifar10lt}
CONFIG=${CONFIG:-config.yaml}  # config files, merged in order as --configfile merges them
CONFIG_ARGS=()
for file in $CONFIG; do CONFIG_ARGS+=(--config "$file"); done
EPOCHS_SPEED=${EPOCHS_SPEED:-4}
EPOCHS_FULL=${EPOCHS_FULL:-200}
LIMIT_FACTOR=${LIMIT_FACTOR:-1}  # stretch every step's limit (a CPU dry run compiles for minutes)
mkdir -p "$OUT" "$KEEP"

step() {  # step NAME SECONDS CMD...: run CMD bounded by SECONDS (x LIMIT_FACTOR), report its exit status and time
    local name=$1 limit=$(($2 * LIMIT_FACTOR)) t0=$SECONDS
    shift 2
    echo "== $name (limit ${limit}s): $*"
    timeout --kill-after=10 "$limit" "$@"
    echo "== $name: exit $? after $((SECONDS - t0))s (session ${SECONDS}s)"
}

speed() {  # speed NAME LIMIT ARGS...: one measure.py measurement, JSON to $OUT and $KEEP
    local name=$1 limit=$2
    shift 2
    step "$name" "$limit" $PY scripts/speed/measure.py "${CONFIG_ARGS[@]}" --benchmark "$BENCHMARK" \
        --epochs "$EPOCHS_SPEED" --out "$OUT/$name.json" "$@"
    [ -f "$OUT/$name.json" ] && cp "$OUT/$name.json" "$KEEP/"
}

session() {
echo "$1: commit ${LTBENCH_COMMIT:-unknown}, $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
step unpack 120 $PY - <<'PY'
import pathlib, tarfile
for archive in sorted(pathlib.Path("results/data").glob("*.tar.xz")):
    target = archive.with_name(archive.name[: -len(".tar.xz")])
    if not (target / "cache.npz").is_file():
        with tarfile.open(archive) as tar:
            tar.extractall("results/data", filter="data")
        print("unpacked", archive)
PY

case "$1" in
call1)
    step probe 75 $PY scripts/speed/conv_probe.py --runs 1,3,8 --out "$OUT/probe.json" ${PROBE_ARGS:-}
    speed speed-eager 100 --seeds 0 --trainers reference,pipeline
    speed speed-compiled 130 --seeds 0 --trainers pipeline:compile=reduce-overhead
    speed speed-packed 190 --seeds 0,1,2 --trainers pipeline:pack=3,pipeline:compile=reduce-overhead:pack=3
    ;;
call2)
    read -r COMPILE PACK < <($PY scripts/speed/fastest.py "$KEEP"/speed-*.json --epochs "$EPOCHS_FULL" \
        --fallback "${FULL_SETTING:-reduce-overhead 3}")
    echo "fastest setting: compile $COMPILE, $PACK run(s) per process"
    # the merged config at that setting, as one file; prints the config's seeds
    SEEDS=$($PY - "$KEEP/full.yaml" "$COMPILE" "$EPOCHS_FULL" $CONFIG <<'PY'
import sys
import yaml
sys.path.insert(0, "scripts")
from ltbench import config as c
out, compile_mode, epochs, *files = sys.argv[1:]
config = c.load_config(*files)
config["train"]["compile"] = False if compile_mode == "off" else compile_mode
config["recipe"]["epochs"] = int(epochs)
with open(out, "w") as fh:
    yaml.safe_dump(config, fh, sort_keys=False)
print(*config["seeds"])
PY
) || { echo "== the config files ($CONFIG) could not be read: nothing trained"; exit 1; }
    echo "seeds: $SEEDS"
    if [ "$PACK" -ge 3 ]; then groups=("$SEEDS"); else read -ra groups <<< "$SEEDS"; fi
    # one unit each, in order (default: the results issue's five baselines); a post-hoc one is made after import
    for strategy in ${STRATEGIES:-ce inverse_freq sqrt_inverse effective_number balanced_softmax}; do
        if [ "$(find "$OUT" -name 'runs-*.tar.gz' | wc -l)" -ge 7 ]; then
            echo "== $strategy and after: not trained, 7 archives are waiting (a call brings back 8 files)"
            break
        fi
        # how the unit is made, and whether a stage 2 of the config builds on it (then its weights go back too)
        read -r stage model < <($PY - "$KEEP/full.yaml" "$strategy" <<'PY'
import sys
sys.path.insert(0, "scripts")
from ltbench import config as c
config = c.load_config(sys.argv[1])
name, specs = sys.argv[2], [c.strategy(config, s) for s in config["strategies"]]
upstream = any(spec.stage == "stage2" and spec.upstream == name for spec in specs)
print(c.strategy(config, name).stage, "--with-model" if upstream else "")
PY
)
        if [ -z "$stage" ]; then
            echo "== $strategy: not a strategy of the config, skipped"
            continue
        fi
        if [ "$stage" = posthoc ]; then
            echo "== $strategy: post hoc, no training (made after import, from its base run's predictions)"
            continue
        fi
        for seeds in "${groups[@]}"; do
            step "$strategy-seeds-${seeds// /-}" 500 $PY scripts/train.py --config "$KEEP/full.yaml" \
                --benchmark "$BENCHMARK" --strategy "$strategy" $(printf -- "--seed %s " $seeds)
        done
        # the unit's own files, as soon as it is done: one archive, or one per run
        $PY scripts/speed/pack_runs.py --benchmark "$BENCHMARK" --strategy "$strategy" --out-dir "$OUT" $model
    done
    ;;
esac
}

case "${1:-}" in
call1 | call2) session "$1" 2>&1 | tee -a "$OUT/session.log" ;;
*)
    echo "usage: $0 call1|call2" >&2
    exit 2
    ;;
esac
