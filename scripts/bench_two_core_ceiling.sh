#!/usr/bin/env bash
# What two cores can give `curate` at best, against what `--threads 2` gets.
#
# A speed-up target for 2 threads (>= 1.7x of 1 thread) only means something
# next to what the machine itself allows for the same work. Two independent
# `curate --threads 1` processes, on two copies of the work, share nothing in
# the program: no pool, no locks, no barriers. What they still share is the
# machine: caches, memory bandwidth, the kernel's page cache and the disk. So
# their combined throughput against one process alone is the ceiling that no
# scheduling inside the program can beat. The script runs, in rounds:
#
#   alone    one `curate --threads 1`
#   pair     two `curate --threads 1` at once, each into its own output
#   threads  one `curate --threads 2`
#
# and prints, per round, wall and CPU seconds of each and of the `shards`
# step (phase 1), the pair's ceiling (2 x alone / pair wall) and the speed-up
# of `--threads 2` (alone / threads wall), with the output MD5s (all equal).
#
# Usage: scripts/bench_two_core_ceiling.sh [FILES] [ROUNDS]
#   FILES   size of the scale corpus (default 1000000; built by
#           scripts/bench_scale.sh as WORK/corpus-FILES.parquet)
#   ROUNDS  default 2
# Environment: WORK (default /tmp/tritter-scale), BENCH_DIR (as in
#   bench_scale.sh), BIN (default target/release/tritter-gpu, not rebuilt).
set -euo pipefail
cd "$(dirname "$0")/.."
files="${1:-1000000}"
rounds="${2:-2}"
work="${WORK:-/tmp/tritter-scale}"
bench_dir="${BENCH_DIR:-$(cd "$(git rev-parse --git-common-dir)/../.." && pwd)/shared/benchmarks}"
bin="${BIN:-target/release/tritter-gpu}"
corpus="$work/corpus-$files.parquet"
[ -e "$corpus" ] || { echo "no corpus $corpus: run scripts/bench_scale.sh $files 1 curate first" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install time" >&2; exit 2; }
[ -x "$bin" ] || { echo "no binary $bin: cargo build --release --bin tritter-gpu" >&2; exit 2; }
out="$work/ceiling"
mkdir -p "$out"

# One run: NAME THREADS. Leaves NAME.time, NAME.md5 and NAME.shards in $out.
run() {
  local name="$1" threads="$2"
  rm -rf "${out:?}/$name"
  # The previous run's writes are on disk before this one starts.
  sync
  sleep 2
  /usr/bin/time -f "%e %U %S" -o "$out/$name.time" "$bin" --threads "$threads" --quiet \
    curate --backend cpu --source "$corpus" --language rust --min-stars 0 --memory 2GiB \
    --benchmark-dir "$bench_dir" --tokens estimate --output "$out/$name"
  md5sum < "$out/$name/rust_curated.jsonl" | cut -c1-12 > "$out/$name.md5"
  python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["step_seconds"]["shards"]; print(s["wall_seconds"], s["cpu_seconds"])' \
    "$out/$name/rust_curated.stats.json" > "$out/$name.shards"
  rm -rf "${out:?}/$name"
}
wall() { cut -d' ' -f1 "$out/$1.time"; }
cpu() { awk '{print $2 + $3}' "$out/$1.time"; }
shards_wall() { cut -d' ' -f1 "$out/$1.shards"; }
shards_cpu() { cut -d' ' -f2 "$out/$1.shards"; }
ratio() { awk -v x="$1" -v y="$2" 'BEGIN{printf "%.2fx", x / y}'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "| round | run | wall s | CPU s | shards wall s | shards CPU s | speed-up (end to end) | speed-up (shards) | output MD5 |"
echo "|---|---|---|---|---|---|---|---|---|"
for r in $(seq 1 "$rounds"); do
  run alone 1
  run threads 2
  run pair-a 1 & a=$!
  run pair-b 1 & b=$!
  wait "$a" "$b"
  pair_wall=$(awk -v a="$(wall pair-a)" -v b="$(wall pair-b)" 'BEGIN{print (a > b ? a : b)}')
  pair_shards=$(awk -v a="$(shards_wall pair-a)" -v b="$(shards_wall pair-b)" 'BEGIN{print (a > b ? a : b)}')
  echo "| $r | 1 thread alone | $(wall alone) | $(cpu alone) | $(shards_wall alone) | $(shards_cpu alone) | | | $(cat "$out/alone.md5") |"
  for p in pair-a pair-b; do
    echo "| $r | 1 thread, $p of two at once | $(wall $p) | $(cpu $p) | $(shards_wall $p) | $(shards_cpu $p) | | | $(cat "$out/$p.md5") |"
  done
  echo "| $r | the pair: ceiling of 2 cores | | | | | **$(ratio "$(awk -v w="$(wall alone)" 'BEGIN{print 2 * w}')" "$pair_wall")** | **$(ratio "$(awk -v w="$(shards_wall alone)" 'BEGIN{print 2 * w}')" "$pair_shards")** | |"
  echo "| $r | --threads 2 | $(wall threads) | $(cpu threads) | $(shards_wall threads) | $(shards_cpu threads) | **$(ratio "$(wall alone)" "$(wall threads)")** | **$(ratio "$(shards_wall alone)" "$(shards_wall threads)")** | $(cat "$out/threads.md5") |"
done
