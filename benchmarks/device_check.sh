#!/usr/bin/env bash
# The device check for a machine with an NVIDIA GPU, in one call of under five minutes: the CUDA tests, then the
# training benchmark on CUDA against the CPU in the same run (JSON lines). On a machine without a usable GPU it says
# so in one line and exits 0, having run nothing.
#
#     bash benchmarks/device_check.sh            # from the repository root, with the project installed
set -uo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen

if ! python -c "import sys; from core import runtime; sys.exit(0 if runtime.cuda_usable() else 1)" 2>/dev/null; then
    echo "no GPU: ONNX Runtime cannot start a CUDA session here (no NVIDIA device, driver or CUDA libraries); the" \
         "CUDA path was not checked"
    exit 0
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python -c "import onnxruntime as ort; print('onnxruntime', ort.__version__, ort.get_available_providers())"

status=0
# Every test that chooses a device: on a GPU machine they check that CUDA is used and computes what the CPU does.
timeout 180 python -m pytest -q -p no:cacheprovider -k "cuda or device" \
    tests/core/test_training.py tests/core/test_recurrent_training.py tests/app/test_cli_train.py \
    tests/app/test_training_window.py || status=$?
timeout 100 python benchmarks/train_bench.py --devices --epochs 3 || status=$?
exit $status
