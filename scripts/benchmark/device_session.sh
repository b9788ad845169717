#!/usr/bin/env bash
# The GPU measurements of docs/performance.md as one prepared script for a machine that has
# PyTorch but not Snakemake, in priority order; each step writes <name>.json and <name>.log
# under $OUT (default results/speed) and a failed or timed-out step does not stop the others.
#
#   scripts/benchmark/device_session.sh r32      # trainers side by side, ResNet-32 CIFAR-10-LT, 1-8 jobs
#   scripts/benchmark/device_session.sh vgg      # the same for VGG-16-BN CIFAR-100-LT rho=50
#   scripts/benchmark/device_session.sh parity   # 30-epoch accuracy parity, 3 seeds, ce + inverse_freq
#   scripts/benchmark/device_session.sh full     # one 200-epoch packed, compiled ResNet-32 job
#
# Needs the materialized subsets under results/data/ (python scripts/materialize.py --dataset
# cifar10 --ratio 100; --dataset cifar100 --ratio 50 for vgg), as folders or as
# results/data/<id>.tar.xz archives, which are unpacked first. Each archive is about 50 MB
# (xz -9), so a 64 MiB transfer carries one: r32, parity and full need cifar10-lt100, vgg
# needs cifar100-lt50.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-results/speed}
STEP_TIMEOUT=${STEP_TIMEOUT:-240}
mkdir -p "$OUT"

for archive in results/data/*.tar.xz; do
    [ -e "$archive" ] && tar -xJf "$archive" -C results/data
done
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
    python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} | tee "$OUT/device.txt"

speed() {  # speed NAME ARGS...: one speed.py invocation, bounded by STEP_TIMEOUT seconds
    local name=$1
    shift
    echo "== $name: speed.py $*"
    timeout "$STEP_TIMEOUT" python scripts/benchmark/speed.py "$@" --out "$OUT/$name.json" >"$OUT/$name.log" 2>&1
    echo "   exit $? after ${SECONDS}s in all"
    grep -E '^\|' "$OUT/$name.log" || tail -5 "$OUT/$name.log"
}

case "${1:-r32}" in
r32)
    speed r32-eager --benchmark resnet32-cifar10lt --epochs 5 --seeds 0,1,2 \
        --trainers reference,pipeline,pipeline:pack=3
    speed r32-compiled --benchmark resnet32-cifar10lt --epochs 5 --seeds 0,1,2 \
        --trainers pipeline:compile=reduce-overhead:pack=3
    speed r32-compiled-single --benchmark resnet32-cifar10lt --epochs 5 --seeds 0 \
        --trainers pipeline:compile=reduce-overhead
    speed r32-concurrent --benchmark resnet32-cifar10lt --epochs 5 --seeds 0 \
        --trainers pipeline --concurrent 1,2,4,8
    ;;
vgg)
    speed vgg-eager --benchmark vgg16bn-cifar100lt --epochs 3 --seeds 0,1,2 \
        --trainers reference,pipeline,pipeline:pack=3
    speed vgg-compiled --benchmark vgg16bn-cifar100lt --epochs 3 --seeds 0,1,2 \
        --trainers pipeline:compile=reduce-overhead:pack=3
    ;;
parity)
    STEP_TIMEOUT=${STEP_TIMEOUT_PARITY:-560}
    speed r32-parity --benchmark resnet32-cifar10lt --epochs 30 --seeds 0,1,2 --strategies ce,inverse_freq \
        --trainers pipeline:pack=3,reference
    ;;
full)
    STEP_TIMEOUT=${STEP_TIMEOUT_FULL:-560}
    speed r32-200 --benchmark resnet32-cifar10lt --epochs 200 --seeds 0,1,2 \
        --trainers pipeline:compile=reduce-overhead:pack=3
    ;;
*)
    echo "usage: $0 r32|vgg|parity|full" >&2
    exit 2
    ;;
esac
