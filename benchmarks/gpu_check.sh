#!/usr/bin/env bash
# Every GPU parity test and a GPU latency pass, for a machine with a CUDA device (about 5 minutes).
#   pip install -c constraints.txt -e ".[test,cuda]"   # mamba-ssm, causal-conv1d (needs nvcc for the sLSTM kernel)
#   bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
python -m pytest -q -ra tests/test_gpu_paths.py tests/test_mamba.py -k "cuda or gpu or compiled"
python benchmarks/training_speed.py --rounds 3 --device cuda --out runs/gpu_check   # wall-time ratios
