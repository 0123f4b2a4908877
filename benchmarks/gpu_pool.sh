#!/usr/bin/env bash
# The worker pool on one GPU (two workers sharing cuda:0) and the speed cases again:
#     bash benchmarks/gpu_pool.sh [OUTDIR]
set -uo pipefail
out=${1:-.}
log="$out/gpu_pool.txt"
run() { echo "\$ $*" | tee -a "$log"; "$@" 2>&1 | tee -a "$log"; }
nvidia-smi --query-gpu=name --format=csv,noheader | tee -a "$log"
run python3 benchmarks/bench_pool.py --device cuda --devices cuda:0,cuda:0 --grid 41
run python3 benchmarks/bench_surface.py --device cuda --case resnet20 --points 16 --methods ab --set compute.points_per_batch=1
run python3 benchmarks/bench_surface.py --device cuda --case digits --points 32 --methods ab --set compute.points_per_batch=1
run python3 benchmarks/bench_surface.py --device cuda --case resnet56 --points 9 --methods ab
