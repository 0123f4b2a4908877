#!/usr/bin/env bash
# Every GPU figure of the speed notes in one run, a few minutes on one H100 or H200:
#
#     bash benchmarks/gpu.sh [OUTDIR]      # writes OUTDIR/gpu_benchmarks.txt as well
#
# Ours runs with the defaults (channels-last and points_per_batch timed automatically) and
# then with each choice pinned, so every default can be judged against the floor in one run.
set -uo pipefail
out=${1:-.}
log="$out/gpu_benchmarks.txt"
bench() {
    echo "\$ python benchmarks/bench_surface.py --device cuda $*" | tee -a "$log"
    python3 benchmarks/bench_surface.py --device cuda "$@" 2>&1 | tee -a "$log"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$log"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$log"
bench --case resnet56 --points 9
bench --case resnet56 --points 9 --methods ab --set compute.points_per_batch=1
bench --case resnet56 --points 9 --methods ab --set compute.points_per_batch=1 --set compute.channels_last=false
bench --case resnet56 --points 9 --methods ab --set compute.precision=bf16
bench --case resnet20 --points 16
bench --case resnet20 --points 16 --methods ab --set compute.points_per_batch=1
bench --case digits --points 32
bench --case digits --points 32 --methods ab --set compute.points_per_batch=1
timeout 180 bash -c "$(declare -f bench); log=$log; bench --case resnet20 --points 16 --methods ab --set compute.points_per_batch=1 --set compute.compile=true"
