#!/bin/bash
# The GPU half of the project in device-tool-sized calls, run in the repository root on the lent machine.  The GPU
# image has torch and triton but no internet: veriformer is installed from the working tree without dependencies.
# Results go to $OUT (at most 8 files come back).
#
#   bash benchmarks/gpu_session.sh all --budget 540   # THE short run: GPU tests, then every benchmark, each step
#                                                     #  under its own share of the budget -> $OUT/gpu_session.txt,
#                                                     #  $OUT/gpu_session_summary.txt
#   bash benchmarks/gpu_session.sh all --smoke --budget 60   # the same plumbing on the CPU (tiny shapes, forward
#                                                            #  only; tests/core/test_benchmarks_smoke.py)
#   bash benchmarks/gpu_session.sh tests      # pytest -m gpu (every GPU-marked test) + the sm_90 compile tests
#   bash benchmarks/gpu_session.sh report     # veriformer report --device cuda  -> $OUT/h100/*
#   bash benchmarks/gpu_session.sh bench attention rope linear_attention   # -> $OUT/benchmarks.txt
#   bash benchmarks/gpu_session.sh bench vq_attention selective_scan ssm   # (two calls: each script <= 180 s)
#   bash benchmarks/gpu_session.sh tune fwd          # flash-attention launch-config sweeps (one call each,
#   bash benchmarks/gpu_session.sh tune dkdv dq      #  about 5 min) -> $OUT/tune_attention.txt
#
# `all` options: --budget S (default 540: seconds for all steps together), --smoke, --steps "a b" (a subset, in
# that order), --extra-step 'name=command' (a step of your own, appended unless --steps names it; repeatable),
# --grace S (SIGKILL this long after a step's SIGINT, default 10).  Steps, in order of value, with their weights:
#   tests 28 (pytest -m gpu, ci profile, the kernels' files first), attention 12, attention_bwd 8 (attention.py
#   fwd+bwd: our backward fused / as two kernels / at the 2026-12-04 tiles / at FlexAttention's tiles / autotuned,
#   SDPA-flash beside), linear_attention 14, ssm 13 (SSD), selective_scan 9, vq_attention 6, rope 3, ssm_conv 5 (FFT
#   convolution, S4D kernel), mla 4 (MLA decode), monarch 4 (Monarch product), rerope 4 (ReRoPE attention),
#   streaming 3 (sinks + window); an extra step weighs 10.
#   With --budget 540 and every step using its whole share: tests 134 s, attention 57, attention_bwd 38,
#   linear_attention 67, ssm 62, selective_scan 43, vq_attention 29, rope 14, ssm_conv 24, mla 19, monarch 19,
#   rerope 19, streaming 14 (a step that ends early leaves its time to the rest).
# Each step gets (budget left) x weight / (weights of the steps left) seconds, runs under
# `timeout -s INT -k <grace> <share>`, and a benchmark gets --deadline <step start + share - 2 s> (cells it has no
# time for print as skipped) and --call-timeout <share x 0.5> (each first call / timing: a 'timeout' row, then
# the next peer).  The whole session can overrun --budget by the last step's grace.
# A step is skipped for time when less than 15 s (smoke: 2 s) of the budget is left.  Every row is printed as it is
# measured (python -u); the summary at the end gives, per step, the status (ok / timeout / killed / failed /
# skipped), the exit code, its share, wall seconds and, for a benchmark, the seconds of first calls (compilation,
# autotuning, warm-up: the 'compile s' column summed) against timed iterations (its '## timing' line).
# The session's exit status is 0 when every step ran and exited 0, else 1.
#
# fla and mamba_ssm wheels in .whl/ (docs/third_party.md; carry them) are installed to /tmp/site first.
# Commit $OUT's files under reports/h200/ (or the device's name) with the device name and the date (the stamp is
# printed first in each file).
set -eo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
PY=${PYTHON:-python3}
install() { "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null; }
# fla and mamba_ssm for the peers' rows, from the wheels of docs/third_party.md when they were carried to .whl/
# (as benchmarks/third_party_gpu.sh does); without them those rows say "not installed"
third_party() {
  local w; w=$(ls .whl/fla_core-*.whl .whl/mamba_ssm-*.whl 2>/dev/null || true)
  [ -n "$w" ] || return 0
  # shellcheck disable=SC2086
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site $w \
    && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  "$PY" -c "import fla; print('fla', fla.__version__)" 2>&1 | tail -1 || true
  "$PY" -c "import mamba_ssm; print('mamba_ssm', mamba_ssm.__version__)" 2>&1 | tail -1 || true
}
stamp() { date -u; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
  if [ "$1" = smoke ]; then echo "(smoke: torch and triton versions not looked up)"; else
    "$PY" -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)" 2>/dev/null || true
  fi
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo 'unknown (no .git here)')"; }

# ------------------------------------------------------------------------------------------------------ all
now() { date +%s.%N; }
fsub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }'; }

session_all() {
  set +e  # every step's status is handled here
  local budget=540 smoke=0 grace=10 steps="" extra=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --budget) budget=$2; shift 2 ;;
      --smoke) smoke=1; shift ;;
      --steps) steps=$2; shift 2 ;;
      --extra-step) extra+=("$2"); shift 2 ;;
      --grace) grace=$2; shift 2 ;;
      *) echo "all: unknown option $1" >&2; return 2 ;;
    esac
  done
  local log="$OUT/gpu_session.txt" summary="$OUT/gpu_session_summary.txt" tmp
  tmp=$(mktemp -d)
  : > "$log"
  # weights: the GPU tests first; then the benchmarks that printed no row on 2026-12-04 (linear_attention, ssm,
  # selective_scan) and attention (the backward under work) before those measured then (vq, rope, ssm_conv)
  local -A weight=([tests]=28 [attention]=12 [attention_bwd]=8 [linear_attention]=14 [ssm]=13 [selective_scan]=9
                   [vq_attention]=6 [rope]=3 [ssm_conv]=5 [mla]=4 [monarch]=4 [rerope]=4 [streaming]=3)
  local -A cmd
  local size
  local prio="tests/core/test_gpu_suspect.py tests/attention/test_fast_kernels.py tests/rope/test_rope_kernel.py
    tests/linear_attention/test_triton_linear_attention.py tests/ssm/test_triton_ssd.py
    tests/ssm/test_triton_selective_scan.py tests/vq/test_vq_attention_fast.py tests/ssm/test_ssm_conv.py
    tests/ssm/test_mamba_chunk_scan.py tests/core/test_third_party.py tests/core/test_plugin_and_gpu.py" files f
  if [ "$smoke" = 1 ]; then
    files="tests/attention/test_fast_kernels.py"  # on the CPU every gpu test skips: one file shows the plumbing
  else
    files=$(echo $prio)
    for f in tests/*/test_*.py; do case " $files " in *" $f "*) ;; *) files="$files $f" ;; esac; done
  fi
  cmd[tests]="VERIFORMER_PROFILE=ci $PY -u -m pytest -v -m gpu -p no:cacheprovider -p no:xdist -p no:randomly \
--durations=15 $files"
  for b in attention linear_attention ssm selective_scan vq_attention rope ssm_conv mla monarch rerope streaming; do
    if [ "$smoke" = 1 ]; then size="--smoke --modes fwd"; else  # CI: forward only (the interpreter is slow)
      case $b in
        mla|monarch|rerope|streaming) size="" ;;  # their own GPU defaults (decode cache lengths; n 1K-4K; T 4K-16K)
        attention|linear_attention|ssm) size="--T 4096 16384" ;;
        selective_scan) size="--L 4096 16384 --d 2048" ;;
        vq_attention) size="--T 8192 16384" ;;
        rope) size="--T 16384" ;;
        ssm_conv) size="--dtypes bfloat16 --C 4096 --H 4096 --L 4096 16384" ;;
      esac
    fi
    [ "$b" = ssm ] && size="$size --no-conv"
    [ "$b" = mla ] && [ "$smoke" = 1 ] && size="--smoke"  # decode: forward only anyway
    cmd[$b]="$PY -u benchmarks/$b.py $size"
  done
  # the attention backward's design choices side by side (fused vs two kernels, the 2026-12-04 tiles, Flex's tiles,
  # autotuned) with SDPA-flash as the reference; smoke: the plumbing, forward only
  if [ "$smoke" = 1 ]; then size="--smoke --modes fwd --peers MATH --variants split"; else
    size="--T 4096 16384 --modes fwd+bwd --peers FLASH_ATTENTION --variants split tiles-12-04 flex-tiles autotuned"; fi
  cmd[attention_bwd]="$PY -u benchmarks/attention.py --no-tma $size"
  local order=(tests attention attention_bwd linear_attention ssm selective_scan vq_attention rope ssm_conv mla monarch
                rerope streaming) e name
  for e in "${extra[@]}"; do
    name=${e%%=*}; cmd[$name]=${e#*=}; weight[$name]=10; order+=("$name")
  done
  [ -z "$steps" ] || read -r -a order <<< "$steps"
  for name in "${order[@]}"; do
    [ -n "${cmd[$name]}" ] || { echo "all: unknown step $name" >&2; return 2; }
  done

  local min_step=15; [ "$smoke" = 1 ] && min_step=2
  local t_start left share wsum call_to rc status t0 wall i=0 n=${#order[@]} bad=0 interrupted=0 steplog pid
  local -a rows=()
  trap 'interrupted=1; [ -s "$tmp/pid" ] && kill -INT "$(cat "$tmp/pid")" 2>/dev/null' INT TERM
  { echo "== gpu_session all: budget ${budget} s, smoke=${smoke}, steps: ${order[*]}"
    stamp "$([ "$smoke" = 1 ] && echo smoke)"; } | tee -a "$log"
  t_start=$(now)
  for name in "${order[@]}"; do
    i=$((i + 1))
    left=$(fsub "$budget" "$(fsub "$(now)" "$t_start")")
    if [ "$interrupted" = 1 ] || awk -v l="$left" -v m="$min_step" 'BEGIN { exit !(l < m) }'; then
      status="skipped"; [ "$interrupted" = 1 ] && status="skipped (session interrupted)" || status="skipped (time)"
      echo "== [$i/$n] $name: $status, ${left} s of the budget left" | tee -a "$log"
      rows+=("$(printf '%-18s %-30s %5s %8s %8s %10s %8s %8s  %s' "$name" "$status" - - - - - - "")")
      bad=1; continue
    fi
    wsum=0; for f in "${order[@]:$((i - 1))}"; do wsum=$((wsum + ${weight[$f]})); done
    share=$(awk -v l="$left" -v w="${weight[$name]}" -v s="$wsum" -v m="$min_step" \
      'BEGIN { x = l * w / s; if (x < m) x = m; if (x > l) x = l; printf "%d", x }')
    local c="${cmd[$name]}"
    if [[ "$c" == *benchmarks/*.py* ]]; then
      call_to=$(awk -v s="$share" 'BEGIN { x = s * 0.5; if (x < 2) x = 2; printf "%d", x }')
      c="$c --deadline $(awk -v t="$(date +%s.%N)" -v s="$share" 'BEGIN { printf "%.1f", t + s - 2 }') \
--call-timeout $call_to"
    fi
    echo "== [$i/$n] $name: ${share} s of ${left} s left :: $c" | tee -a "$log"
    steplog="$tmp/$name.txt"; : > "$tmp/pid"; rm -f "$tmp/rc"
    t0=$(now)
    { timeout -s INT -k "$grace" "$share" bash -c "$c" < /dev/null 2>&1 & echo $! > "$tmp/pid"; wait $!
      echo $? > "$tmp/rc"; } | tee -a "$log" "$steplog" &
    pid=$!
    wait "$pid"
    while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
    rc=$(cat "$tmp/rc" 2>/dev/null || echo 130)
    wall=$(fsub "$(now)" "$t0")
    case $rc in
      0) status=ok ;; 124) status=timeout ;; 137) status="killed (no exit ${grace} s after SIGINT)" ;;
      130) status=interrupted ;; *) status=failed ;;
    esac
    [ "$rc" = 0 ] || bad=1
    echo "== [$i/$n] $name: exit $rc ($status) in ${wall} s" | tee -a "$log"
    local tl comp timed other nrows note=""
    tl=$(grep -a '^## timing' "$steplog" | tail -1 || true)
    comp=$(sed -n 's/.*compile_s=\([0-9.]*\).*/\1/p' <<< "$tl"); timed=$(sed -n 's/.*timed_s=\([0-9.]*\).*/\1/p' <<< "$tl")
    other=$(sed -n 's/.*other_s=\([0-9.]*\).*/\1/p' <<< "$tl"); nrows=$(sed -n 's/.* rows=\([0-9]*\).*/\1/p' <<< "$tl")
    if [ -n "$tl" ]; then
      note=$(sed -n 's/.*\(skipped=[0-9]* timeouts=[0-9]* failed=[0-9]* status=[a-z-]*\).*/\1/p' <<< "$tl")
    elif [ "$name" = tests ]; then
      note=$(grep -aE '[0-9]+ (passed|failed|skipped|deselected|errors?)' "$steplog" | tail -1 | tr -d '=' \
        | sed 's/^ *//; s/ *$//' || true)
    fi
    rows+=("$(printf '%-18s %-30s %5s %8s %8s %10s %8s %8s  %s' "$name" "$status" "$rc" "$share" "$wall" \
      "${comp:--}" "${timed:--}" "${nrows:--}" "$note")")
  done
  trap - INT TERM
  local used; used=$(fsub "$(now)" "$t_start")
  {
    echo
    echo "== gpu_session summary: budget ${budget} s, used ${used} s (smoke=${smoke}); status $([ "$bad" = 0 ] && echo ok || echo 'not all steps ok')"
    printf '%-18s %-30s %5s %8s %8s %10s %8s %8s  %s\n' step status rc share_s wall_s compile_s timed_s rows \
      "notes (benchmarks: skipped/timeouts/failed rows; tests: pytest's last count)"
    printf '%s\n' "${rows[@]}"
    echo "(wall_s - compile_s - timed_s = process start, imports, ceilings, inputs; compile_s = first calls:"
    echo " Triton compilation and autotuning, torch.compile, warm-up and one run, summed over the rows)"
  } | tee "$summary" | tee -a "$log"
  rm -rf "$tmp"
  [ "$bad" = 0 ]
}

case "$1" in
  all)
    shift
    smoke_flag=0; for a in "$@"; do [ "$a" = --smoke ] && smoke_flag=1; done
    [ "$smoke_flag" = 1 ] || { install; third_party; }
    session_all "$@" ;;
  tests)
    install
    { stamp; VERIFORMER_PROFILE=deep python3 -m pytest -q -x -m gpu -k "not compile" tests 2>&1 | tail -40
      VERIFORMER_PROFILE=deep python3 -m pytest -q -k compile tests 2>&1 | tail -5; } | tee "$OUT/gpu_tests.txt" ;;
  report)
    install
    { stamp; veriformer report --device cuda --out "$OUT/h100" 2>&1 | tail -20; } | tee "$OUT/report_log.txt" ;;
  bench)
    install
    { stamp
      shift; for b in ${@:-attention rope linear_attention vq_attention selective_scan ssm}; do
        echo "== benchmarks/$b.py"; timeout -s INT -k 10 180 python3 -u "benchmarks/$b.py" 2>&1 || echo "($b: exit $?)"
      done; } | tee "$OUT/benchmarks.txt" ;;
  tune)
    install
    shift
    { stamp; timeout 540 python3 benchmarks/tune_attention.py --kernels ${@:-fwd dkdv dq} 2>&1 | tail -200; } \
      | tee "$OUT/tune_attention.txt" ;;
  *) echo "usage: $0 all|tests|report|bench|tune" >&2; exit 2 ;;
esac
