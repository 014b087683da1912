#!/usr/bin/env bash
# The GPU checks of docs/performance.md in one run, for a machine with a CUDA GPU and a CUDA PyTorch
# already installed (the package is used from this checkout through PYTHONPATH, not installed, so the
# machine's torch stays). Results and logs go to ${OUT:-gpu_out}.
#
#   bash benchmarks/gpu_check.sh            # parity (torch; Keras where TensorFlow sees a GPU), test_gpu, speed
#   WHEELS=dir bash benchmarks/gpu_check.sh # first pip-install the wheels in dir (no index): the oracle
#                                           # transformers==4.57.6 where the machine has another version
#
# Every step runs even when an earlier one fails; the exit status is the first failure's.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" USE_TF=0
PY=${PYTHON:-python3}
status=0
step() {  # step NAME COMMAND...: run, keep its log, remember the first failure
    local name=$1; shift
    echo "== $name: $*"
    "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    tail -n 15 "$OUT/$name.log"
    echo "== $name: exit $rc"
    [ "$status" -ne 0 ] || status=$rc
}
if [ -n "${WHEELS:-}" ]; then
    step wheels "$PY" -m pip install --no-index --no-deps "$WHEELS"/*.whl
fi
step versions "$PY" -c "import torch, transformers; print(torch.__version__, torch.cuda.get_device_name(), transformers.__version__)"
step test_gpu "$PY" -m pytest -q -p no:cacheprovider tests/torch/test_gpu.py
step parity_torch "$PY" -m pytest -q -p no:cacheprovider tests/torch/test_parity_reference.py -k cuda
if "$PY" -c "import tensorflow as tf, sys; sys.exit(not tf.config.list_physical_devices('GPU'))" 2>/dev/null; then
    USE_TF=1 step parity_keras "$PY" -m pytest -q -p no:cacheprovider tests/tf/test_tf_parity.py -k gpu
else
    echo "== parity_keras: skipped, TensorFlow sees no GPU here"
fi
step speed "$PY" benchmarks/speed.py --device cuda --families v3 --repeats 5 --out "$OUT"
exit $status
