#!/usr/bin/env bash
# Full-budget reproduction of Madono et al. 2020, Table 3 (CIFAR-10) on one GPU: ResNet-18 (the
# paper's Shake-PyramidNet-110 is not in leia), 300 epochs, the paper's schedule, all 50,000 images.
# Writes its own section of docs/BENCHMARKS.md. About 6 rows × 300 epochs: hours, not minutes.
#
#   CIFAR=/path/to/cifar10-image-folder bash bench/gpu_madono2020.sh
#
# CIFAR must be an image-folder copy (train/<class>/, test/<class>/), e.g. ../shared/data/cifar10.
set -euo pipefail
cd "$(dirname "$0")/.."
make install
CIFAR=${CIFAR:-../shared/data/cifar10}
.venv/bin/python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
.venv/bin/python bench/reproduce_madono.py --trainer gpu --model resnet18 --epochs 300 --train-images 50000 \
    --workers 8 --cifar "$CIFAR" --runs runs/bench_madono_gpu --out docs/BENCHMARKS.md
