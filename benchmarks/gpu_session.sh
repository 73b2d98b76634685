#!/bin/bash
# The GPU half of issues 3-5 in three device-tool calls (each under the tool's 10-minute limit), run in the
# repository root on the lent machine.  The GPU image has torch and triton but no internet: veriformer is
# installed from the working tree without dependencies.  Results go to $OUT (at most 8 files come back).
#
#   bash benchmarks/gpu_session.sh tests      # pytest -m gpu (every GPU-marked test) + the sm_90 compile tests
#   bash benchmarks/gpu_session.sh report     # veriformer report --device cuda  -> $OUT/h100/*
#   bash benchmarks/gpu_session.sh bench attention rope linear_attention   # -> $OUT/benchmarks.txt
#   bash benchmarks/gpu_session.sh bench vq_attention selective_scan ssm   # (two calls: each script <= 180 s)
#   bash benchmarks/gpu_session.sh tune fwd          # flash-attention launch-config sweeps (one call each,
#   bash benchmarks/gpu_session.sh tune dkdv dq      #  about 5 min) -> $OUT/tune_attention.txt
#
# Commit $OUT's report under reports/h100/ and the benchmark table under reports/h100/benchmarks.md with the
# device name and the date (nvidia-smi's first line is printed into each file).
set -eo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
stamp() { date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; python3 -c \
  "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"; }
case "$1" in
  tests)
    { stamp; VERIFORMER_PROFILE=deep python3 -m pytest -q -x -m gpu -k "not compile" tests 2>&1 | tail -40
      VERIFORMER_PROFILE=deep python3 -m pytest -q -k compile tests 2>&1 | tail -5; } | tee "$OUT/gpu_tests.txt" ;;
  report)
    { stamp; veriformer report --device cuda --out "$OUT/h100" 2>&1 | tail -20; } | tee "$OUT/report_log.txt" ;;
  bench)
    { stamp
      shift; for b in ${@:-attention rope linear_attention vq_attention selective_scan ssm}; do
        echo "== benchmarks/$b.py"; timeout 180 python3 "benchmarks/$b.py" 2>&1 | tail -80 || echo "($b: exit $?)"
      done; } | tee "$OUT/benchmarks.txt" ;;
  tune)
    shift
    { stamp; timeout 540 python3 benchmarks/tune_attention.py --kernels ${@:-fwd dkdv dq} 2>&1 | tail -200; } \
      | tee "$OUT/tune_attention.txt" ;;
  *) echo "usage: $0 tests|report|bench|tune" >&2; exit 2 ;;
esac
