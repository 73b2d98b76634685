#!/bin/bash
# Run veriformer's third-party rows (fla, mamba) on the GPU box (no internet; torch 2.11+cu130, triton 3.6,
# python 3.12, nvcc 13.0, einops/transformers/huggingface_hub already there).
# Usage, in the repo root on the device, with the wheels of docs/third_party.md and this script copied to .whl/
# (git-ignored locally via .git/info/exclude) and carried:
#   bash .whl/third_party_gpu.sh            # fla + mamba (Triton and torch paths; no selective_scan_fn)
#   bash .whl/third_party_gpu.sh build      # also build mamba's selective_scan_cuda for sm_90 only (several minutes)
set -eo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/fla_core-0.6.0-py3-none-any.whl .whl/mamba_ssm-2.3.2.post1-py3-none-any.whl
export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e .
if [ "$1" = build ]; then
  rm -rf /tmp/msb && mkdir /tmp/msb && tar xzf .whl/mamba_ssm-2.3.2.post1.tar.gz -C /tmp/msb
  ( cd /tmp/msb/mamba_ssm-2.3.2.post1 && python3 - <<'PY'
import re
s = open("setup.py").read()  # keep only -gencode arch=compute_90,code=sm_90 (H100/H200)
s = re.sub(r'cc_flag\.append\("-gencode"\)\n\s*cc_flag\.append\("arch=compute_(?!90\b)\d+,code=sm_\d+"\)\n', "", s)
open("setup.py", "w").write(s)
PY
    TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 python3 setup.py build_ext --inplace 2>&1 | tail -5 )
  export PYTHONPATH=/tmp/msb/mamba_ssm-2.3.2.post1:$PYTHONPATH   # mamba_ssm + selective_scan_cuda*.so
fi
python3 -c "import fla, mamba_ssm.ops.triton.ssd_combined as m; print('fla', fla.__version__)" 2>&1 | tail -1 || true
PYTHONUNBUFFERED=1 python3 - <<'PY' 2>&1 | tee "$OUT/third_party_checks.txt"
import time, veriformer
from veriformer.implementations import IMPLEMENTATIONS
for i in IMPLEMENTATIONS:
    if i.name.startswith(("fla.", "mamba.")):
        t0 = time.time()
        r = veriformer.check(i.fn, op=i.op, dtypes=("float16", "bfloat16", "float32"), device="cuda",
                             features=i.features, grad=i.grad, name=i.name, **i.options)
        print(r.summary(), f"\n[{i.name}: {time.time() - t0:.1f} s; note: {i.note}]\n", flush=True)
PY
python3 -m pytest -q tests/core/test_third_party.py 2>&1 | tee "$OUT/test_third_party.txt" | tail -15
