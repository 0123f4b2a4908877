#!/usr/bin/env bash
# Issue 27's GPU checks in one run, a few minutes on one H100 or H200:
#
#     bash benchmarks/gpu_batch.sh [OUTDIR]      # writes OUTDIR/gpu_batch.txt as well
#
# 1. ResNet-56 on 10,000 CIFAR-shaped samples: the size data.batch_size = "auto" chooses,
#    its probe's figures, and ours against the best-batch floor (and the command line's
#    marginal cost per point, --cli).
# 2. The digits MLP, a model too small to fill a GPU at 1024.
# 3. A model that cannot take a batch of 1024 (benchmarks/big_activations.py, 268 MB of
#    activations a sample): "auto" backs off from the sizes that run out of memory and
#    computes the surface; a fixed 1024 fails in one line.
set -uo pipefail
out=${1:-.}
log="$out/gpu_batch.txt"
run() {
    echo "\$ $*" | tee -a "$log"
    "$@" 2>&1 | tee -a "$log"
    echo "exit ${PIPESTATUS[0]}" | tee -a "$log"
}
export TUI_LANDSCAPE_CACHE="$out/cache"  # a fresh cache: the probe runs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$log"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$log"
run python3 benchmarks/bench_batch.py --case resnet56 --device cuda --cli
run python3 benchmarks/bench_batch.py --case mlp --device cuda
cat > "$out/big.toml" <<TOML
[model]
arch = "$PWD/benchmarks/big_activations.py:model"
checkpoint = ""
[data]
dataset = "$PWD/benchmarks/big_activations.py:data"
splits = ["train"]
[directions]
kind = "random"
[grid]
x = "-1:1:3"
y = "-1:1:3"
[compute]
device = "cuda"
TOML
run timeout 300 python3 -m tui_landscape compute "$out/big.toml" --out "$out/big-auto.h5"
run timeout 120 python3 -m tui_landscape compute "$out/big.toml" --out "$out/big-1024.h5" \
    --set data.batch_size=1024
run python3 -c "import h5py, sys; f = h5py.File(sys.argv[1]); print('batch_size', f.attrs.get('batch_size'), 'train_loss', f['train_loss'][()])" "$out/big-auto.h5"
