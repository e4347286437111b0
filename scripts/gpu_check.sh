#!/usr/bin/env bash
# The CUDA check on a GPU machine, in one run of under 8 minutes on one H200,
# with no cargo and no network there: binaries built beforehand with
# `scripts/gpu_check.sh prepare` (on a build machine, with cargo) and carried
# as .gpu/ (ignored by git).
#
#   scripts/gpu_check.sh prepare     # build machine: release binary, test binaries -> .gpu/
#   scripts/gpu_check.sh             # GPU machine, from the repository root
#
# Steps, each with its own time limit, logged under $OUT (default ./gpu-out):
#   1. preflight: nvidia-smi, the driver, NVRTC, `backends` and `backends --compile-only`
#   2. `backends --self-test --require cuda` (every kernel against the CPU reference)
#   3. the CUDA test binaries with TRITTER_REQUIRE_BACKENDS=cuda
#   4. `dedup` on a >= 300 MB corpus with --backend cpu and --backend cuda,
#      outputs and clusters compared byte for byte
#   5. `backends --bench`
#   6. compute-sanitizer memcheck and racecheck on the CUDA kernel tests
# and a summary table last (summary.txt). Exit status: 0 when every step
# that ran passed.
set -uo pipefail
cd "$(dirname "$0")/.."

GPU_DIR="${GPU_DIR:-.gpu}"

if [ "${1:-}" = prepare ]; then
  set -e
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  rm -rf "$GPU_DIR" && mkdir -p "$GPU_DIR/bin"
  cargo build --release --locked --bin tritter-gpu
  cp target/release/tritter-gpu "$GPU_DIR/bin/"
  for t in backends backend_pipeline; do
    exe=$(cargo test --release --locked --test "$t" --no-run --message-format=json 2>/dev/null \
      | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])' | tail -1)
    [ -n "$exe" ] || { echo "no test binary for $t" >&2; exit 1; }
    cp "$exe" "$GPU_DIR/bin/$t-test"
  done
  strip "$GPU_DIR"/bin/*
  # The carry is limited to 64 MiB: compress.
  tar -C "$GPU_DIR" -cJf "$GPU_DIR/bin.tar.xz" bin && rm -rf "${GPU_DIR:?}/bin"
  du -sh "$GPU_DIR"/bin.tar.xz
  exit 0
fi

OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
START=$(date +%s)
# Steps that would start after this many seconds are skipped (the device
# lease is short; the summary says what was skipped).
DEADLINE="${GPU_CHECK_DEADLINE:-450}"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
FAILED=0

elapsed() { echo $(( $(date +%s) - START )); }

# step NAME LIMIT_SECONDS LOG COMMAND...: runs COMMAND with a time limit,
# appending its output to $OUT/LOG, and records the result.
step() {
  local name=$1 limit=$2 log=$3
  shift 3
  if [ "$(elapsed)" -ge "$DEADLINE" ]; then
    printf '%-34s %-8s %s\n' "$name" SKIPPED "past the ${DEADLINE}s deadline" >> "$SUMMARY"
    return 0
  fi
  local t0 rc
  t0=$(date +%s)
  { echo "=== $name ($(date -u +%FT%TZ)): $*"; } >> "$OUT/$log"
  timeout --kill-after=10 "$limit" "$@" >> "$OUT/$log" 2>&1
  rc=$?
  local status=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    status=TIMEOUT
  elif [ "$rc" != 0 ]; then
    status=FAIL
  fi
  [ "$status" = ok ] || FAILED=$((FAILED + 1))
  printf '%-34s %-8s %4ss  rc=%s  (%s)\n' "$name" "$status" "$(( $(date +%s) - t0 ))" "$rc" "$log" >> "$SUMMARY"
  echo "=== $name: $status rc=$rc" >> "$OUT/$log"
  return 0
}

if [ -f "$GPU_DIR/bin.tar.xz" ] && [ ! -d "$GPU_DIR/bin" ]; then
  tar -C "$GPU_DIR" -xJf "$GPU_DIR/bin.tar.xz"
fi
BIN="$GPU_DIR/bin"
if [ ! -x "$BIN/tritter-gpu" ]; then
  echo "no $BIN/tritter-gpu: run 'scripts/gpu_check.sh prepare' on the build machine and carry $GPU_DIR" | tee "$SUMMARY"
  exit 2
fi
T="$BIN/tritter-gpu"
export RUST_BACKTRACE=1

# 1. Preflight.
step "preflight: nvidia-smi" 30 preflight.log \
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,pcie.link.gen.max,pcie.link.width.max --format=csv
step "preflight: libraries" 30 preflight.log bash -c \
  'ldconfig -p | grep -E "libcuda\.so|libnvrtc" ; ls -l /usr/local/cuda*/lib64/libnvrtc* 2>/dev/null; python3 -c "import nvidia, os; print(nvidia.__path__)" 2>&1; uname -a; nproc; free -g'
step "preflight: backends" 120 preflight.log "$T" backends
step "preflight: compile-only" 60 preflight.log "$T" backends --compile-only --driver 13.0

# 2. Every kernel against the CPU reference, a call over 2^31 outputs included.
step "backends --self-test" 240 selftest.log "$T" backends --self-test --require cuda

# 3. The CUDA tests (the emulator's own tests are for machines without a GPU).
export TRITTER_REQUIRE_BACKENDS=cuda
step "tests: backends (cuda)" 240 tests.log "$BIN/backends-test" --test-threads=4 --skip emulat
step "tests: backend_pipeline (cuda)" 240 tests.log env TRITTER_TEST_BIN="$T" "$BIN/backend_pipeline-test" --test-threads=4
unset TRITTER_REQUIRE_BACKENDS

# 4. dedup, CPU against CUDA, byte for byte.
WORK="${TMPDIR:-/tmp}/tritter-gpu-check"
rm -rf "$WORK" && mkdir -p "$WORK"
step "corpus: 320 MB of Python" 120 dedup.log python3 scripts/make_dedup_corpus.py "$WORK/corpus.jsonl" 320
for b in cpu cuda; do
  step "dedup --backend $b" 240 dedup.log bash -c \
    "/usr/bin/time -v '$T' --backend $b dedup --input '$WORK/corpus.jsonl' --output '$WORK/$b.jsonl' --clusters '$WORK/$b.clusters.jsonl' --stats '$WORK/$b.stats.json' 2>&1 | grep -vE '^\s+(Page size|Exit status|Socket|Signals|Swaps|Average)'"
done
step "dedup: cpu = cuda (output)" 60 dedup.log cmp "$WORK/cpu.jsonl" "$WORK/cuda.jsonl"
step "dedup: cpu = cuda (clusters)" 60 dedup.log cmp "$WORK/cpu.clusters.jsonl" "$WORK/cuda.clusters.jsonl"
step "dedup: sizes" 30 dedup.log bash -c "wc -lc '$WORK'/*.jsonl; grep -h -o '\"removed[^,]*' '$WORK'/*.stats.json"

# 5. Throughput per backend and kernel.
step "backends --bench" 200 bench.log "$T" backends --bench --bench-seconds 2 --scale 8

# 6. compute-sanitizer on the kernel tests, exact-size buffers so that small
#    overruns are not hidden inside a larger reused allocation.
if command -v compute-sanitizer >/dev/null 2>&1; then
  export TRITTER_REQUIRE_BACKENDS=cuda TRITTER_CUDA_EXACT_BUFFERS=1
  for tool in memcheck racecheck; do
    step "compute-sanitizer $tool" 150 sanitizer.log \
      compute-sanitizer --tool "$tool" --error-exitcode 99 --target-processes all \
      "$BIN/backends-test" --test-threads=1 signatures_of_edge_batches_cuda band_hashes_reject_bad_layouts_cuda ngram_table_cache_follows_generation_cuda signatures_and_bands_equal_the_two_ops_cuda
  done
  unset TRITTER_REQUIRE_BACKENDS TRITTER_CUDA_EXACT_BUFFERS
else
  printf '%-34s %-8s %s\n' "compute-sanitizer" SKIPPED "not installed" >> "$SUMMARY"
fi

rm -rf "$WORK"
printf '\ntotal %ss, %s step(s) failed\n' "$(elapsed)" "$FAILED" >> "$SUMMARY"
cat "$SUMMARY"
[ "$FAILED" = 0 ]
