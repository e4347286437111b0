#!/usr/bin/env bash
# Side by side: `curate --threads T --tokens estimate` (every stage, the scale
# ladder's flags) with each binary given, on one scale corpus, printing wall
# and CPU seconds, peak RSS, per-step CPU and wall seconds from the stats
# file, the output's MD5 (must be equal for every binary) and the work
# directory's size.
#
# Usage: N=100000 T=1 scripts/bench_hot_paths.sh OLD_BINARY NEW_BINARY ...
# Environment: N (corpus size, default 100000; the corpus is
#   $WORK/corpus-N.parquet from scripts/bench_scale.sh), T (threads, default
#   1), WORK (default /tmp/tritter-scale), OUT (default /tmp/hot-paths),
#   BENCH_DIR (default /work/shared/benchmarks).
set -euo pipefail
work="${WORK:-/tmp/tritter-scale}"
out="${OUT:-/tmp/hot-paths}"
mkdir -p "$out"
for b in "$@"; do
  n=$(basename "$b"); run="$out/run-$n"; rm -rf "$run"
  echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
  /usr/bin/time -f "$n: %e s wall, %U+%S s CPU, %M KB" "$b" --threads "${T:-1}" --quiet curate \
    --backend cpu --source "$work/corpus-${N:-100000}.parquet" --language rust --min-stars 0 \
    --memory 2GiB --benchmark-dir "${BENCH_DIR:-/work/shared/benchmarks}" --tokens estimate \
    --output "$run" 2>&1 | tail -1
  python3 -c "
import json; d = json.load(open('$run/rust_curated.stats.json'))
print('  ', {k: (v['cpu_seconds'], v['wall_seconds']) for k, v in d['step_seconds'].items()})"
  md5sum "$run/rust_curated.jsonl"; du -sb "$run/.work" | cut -f1
done
