#!/usr/bin/env bash
# The scale ladder: `dedup` and `curate` (every stage) on realistic corpora of
# growing size, built by examples/make_scale_corpus.rs from the real code on
# the machine (windows of cargo-registry Rust files, about 30% lightly edited
# copies, about 800 B a file), with 1 and 2 threads and `--memory 2GiB`,
# under GNU time.
#
# Usage: scripts/bench_scale.sh [SIZES] [THREADS] [COMMANDS]
#   SIZES     comma-separated file counts (default 100000,1000000; 10000000
#             needs about 8 GB of corpus per format and an hour on 2 cores)
#   THREADS   comma-separated thread counts (default 1,2)
#   COMMANDS  dedup,curate (default both)
# Environment: WORK (default /tmp/tritter-scale), SEED (default 1),
#   BENCH_DIR (curate's --benchmark-dir; default shared/benchmarks beside
#   the main checkout),
#   NO_BUILD=1 (skip the release build), ZSTD=1 (dedup reads a zstd JSONL
#   corpus, corpus-N.jsonl.zst, and no Parquet copy is made when curate is
#   not run: the 10M rung then needs about 2.5 GB of corpus instead of 16),
#   TOKENS (--tokens for both commands; default estimate: the exact count,
#   the commands' default, tokenises every text with cl100k_base and takes
#   most of the run at these sizes, which is not what this ladder measures).
# Prints a Markdown table (wall, CPU s, peak RSS, peak scratch disk, time per
# stage, growth exponent of wall time between consecutive sizes); the numbers
# in benches/results/near-dedup.md and BENCHMARKS.md come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes="${1:-100000,1000000}"
threads_list="${2:-1,2}"
commands="${3:-dedup,curate}"
work="${WORK:-/tmp/tritter-scale}"
seed="${SEED:-1}"
# shared/ sits beside the main checkout (also when this is a worktree).
bench_dir="${BENCH_DIR:-$(cd "$(git rev-parse --git-common-dir)/../.." && pwd)/shared/benchmarks}"
tokens="${TOKENS:-estimate}"
mkdir -p "$work"
[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install time" >&2; exit 2; }

# NO_BUILD=1: use the release binaries as they are.
[ -n "${NO_BUILD:-}" ] || cargo build --quiet --release --bin tritter-gpu --example make_scale_corpus
bin=target/release/tritter-gpu
gen=target/release/examples/make_scale_corpus

# Peak disk use of a folder while a command runs: sampled every half second.
watch_disk() {
  local dir="$1" out="$2" peak=0 now
  while :; do
    # du exits non-zero when a file vanishes under it, but still prints.
    now=$(du -sb "$dir" 2>/dev/null | cut -f1 | head -n1) || true
    [ "${now:-0}" -gt "$peak" ] && peak=$now && echo "$peak" > "$out"
    sleep 0.5
  done
}

rows="$work/rows.tsv"
: > "$rows"
: > "$work/sums.txt"
echo "machine: $(nproc) cores, $(grep MemTotal /proc/meminfo | awk '{print int($2/1024/1024)}') GiB; load before the run: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for n in ${sizes//,/ }; do
  corpus="$work/corpus-$n"
  jsonl="$corpus.jsonl"
  if [ -n "${ZSTD:-}" ]; then
    jsonl="$corpus.jsonl.zst"
    if [ ! -s "$jsonl" ]; then
      "$gen" --files "$n" --seed "$seed" --languages rust --jsonl /dev/stdout \
        | zstd -q -3 -T1 -o "$jsonl.partial" && mv "$jsonl.partial" "$jsonl"
    fi
  fi
  needs_parquet=0
  case ",$commands," in *,curate,*) needs_parquet=1 ;; esac
  if { [ -z "${ZSTD:-}" ] && [ ! -s "$jsonl" ]; } || { [ $needs_parquet = 1 ] && [ ! -d "$corpus.parquet" ]; }; then
    rm -rf "$corpus.parquet"
    [ -n "${ZSTD:-}" ] || rm -f "$jsonl"
    jsonl_flag=(--jsonl "$jsonl"); [ -n "${ZSTD:-}" ] && jsonl_flag=()
    /usr/bin/time -f 'generator: %e s wall, %U+%S s CPU, %M KB peak' \
      "$gen" --files "$n" --seed "$seed" --languages rust \
      "${jsonl_flag[@]}" --parquet "$corpus.parquet" --rows-per-shard 100000
  fi
  # MB of JSONL text (uncompressed).
  if [ -n "${ZSTD:-}" ]; then
    # A streamed frame does not record its size: count it.
    mb=$(( $(zstd -dc "$jsonl" | wc -c) / 1000000 ))
  else
    mb=$(( $(stat -c %s "$jsonl") / 1000000 ))
  fi
  for cmd in ${commands//,/ }; do
    for t in ${threads_list//,/ }; do
      out="$work/out-$cmd-$n-$t"
      rm -rf "$out"; mkdir -p "$out/scratch"
      echo 0 > "$out/disk"
      # Scratch: dedup's spill directory; curate's work directory (parts,
      # sidecars, global steps and the output file).
      if [ "$cmd" = dedup ]; then watched="$out/scratch"; else mkdir -p "$out/run"; watched="$out/run"; fi
      watch_disk "$watched" "$out/disk" & watcher=$!
      load=$(cut -d' ' -f1 /proc/loadavg)
      if [ "$cmd" = dedup ]; then
        /usr/bin/time -v -o "$out/time.txt" "$bin" --threads "$t" dedup --backend cpu \
          --input "$jsonl" --output "$out/kept.jsonl" --memory 2GiB \
          --scratch-dir "$out/scratch" --stats "$out/stats.json" --tokens "$tokens" 2> "$out/stderr.txt"
      else
        /usr/bin/time -v -o "$out/time.txt" "$bin" --threads "$t" --quiet curate --backend cpu \
          --source "$corpus.parquet" --language rust --min-stars 0 --memory 2GiB \
          --benchmark-dir "$bench_dir" --tokens "$tokens" --output "$out/run" 2> "$out/stderr.txt"
      fi
      kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null || true
      wall=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$out/time.txt")
      cpu=$(awk -F': ' '/User time|System time/{s+=$2} END{print s}' "$out/time.txt")
      rss=$(awk -F': ' '/Maximum resident set size/{print int($2/1024)}' "$out/time.txt")
      disk=$(( $(cat "$out/disk") / 1000000 ))
      if [ "$cmd" = dedup ]; then stats="$out/stats.json"; else stats="$out/run/rust_curated.stats.json"; fi
      stages=$(python3 - "$stats" "$cmd" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
parts = []
if sys.argv[2] == "dedup":
    for st in s.get("steps", []):
        name = st["step"].replace("near_dedup/", "")
        if name.startswith(("shingling", "minhash", "band_hashes")) or name == "near_dedup":
            continue
        parts.append(f"{name} {st['wall_seconds']:.1f}")
    nd = s.get("near_dedup", {})
    removed = nd.get("files_removed", nd.get("removed_files", "?"))
    parts.append(f"removed {removed}")
else:
    for k, v in s.get("phase_seconds", {}).items():
        parts.append(f"{k} {v:.1f}")
    steps = s.get("step_seconds") or {}
    items = steps.items() if isinstance(steps, dict) else [(x.get("step", "?"), x) for x in steps]
    for k, v in items:
        w = v.get("wall_seconds", v.get("wall")) if isinstance(v, dict) else v
        if isinstance(w, (int, float)):
            parts.append(f"{k} {w:.1f}")
print(", ".join(parts))
PY
)
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$cmd" "$n" "$mb" "$t" "$wall" "$cpu" "$rss" "$disk" "$load" "$stages" >> "$rows"
      echo "$cmd n=$n threads=$t: ${wall}s wall, ${cpu}s CPU, ${rss} MiB, scratch ${disk} MB, load $load: $stages" >&2
      # Output bytes must not depend on the thread count.
      if [ "$cmd" = dedup ]; then sum=$(md5sum < "$out/kept.jsonl" | cut -c1-12); else sum=$(cat "$out/run/"*_curated*.jsonl | md5sum | cut -c1-12); fi
      echo "$cmd n=$n threads=$t output md5 $sum" >&2
      echo "$cmd $n $sum" >> "$work/sums.txt"
      rm -rf "$out/kept.jsonl" "$out/run/"*.jsonl
    done
  done
done

python3 - "$rows" <<'PY'
import math, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
print("| command | files | JSONL MB | threads | wall s | CPU s | peak RSS MiB | peak scratch MB | load | growth exponent (wall) | 2 threads vs 1 | time per stage (s) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
prev, one = {}, {}
for cmd, n, mb, t, wall, cpu, rss, disk, load, stages in rows:
    n, wall = int(n), float(wall)
    key = (cmd, t)
    exp = ""
    if key in prev:
        pn, pw = prev[key]
        exp = f"{math.log(wall / pw) / math.log(n / pn):.2f}"
    prev[key] = (n, wall)
    if t == "1":
        one[(cmd, n)] = wall
    speed = f"{one[(cmd, n)] / wall:.2f}x" if t != "1" and (cmd, n) in one else ""
    print(f"| {cmd} | {n:,} | {mb} | {t} | {wall:.1f} | {float(cpu):.1f} | {rss} | {disk} | {load} | {exp} | {speed} | {stages} |")
PY
echo
echo "output bytes for every thread count (md5 of the output per command and size):"
sort -u "$work/sums.txt" | awk '{k=$1" "$2; c[k]++; s[k]=s[k]" "$3} END{for(k in c) print "  "k": "(c[k]==1?"identical":"DIFFERENT:"s[k])}' | sort
