#!/usr/bin/env bash
# Byte-identity check between two builds of tritter-gpu: runs the same set of
# commands (the bundled sample and a corpus generated from the Rust crates
# under ~/.cargo/registry/src) with each binary and compares every output,
# rejects, clusters and report file byte for byte, and the stats files with
# their timings removed (elapsed_seconds, phase_seconds, step_seconds,
# download durations, the benchmark index's build time) and near dedup's spill
# counters (they describe where intermediate data lived, which the global
# steps changed; the removed files do not depend on them).
#
# Usage:
#   scripts/compare_outputs.sh REV             build REV (e.g. main) in a temporary worktree and compare it with this checkout
#   scripts/compare_outputs.sh BASE_BIN NEW_BIN [MAKE_CORPUS_BIN]
#   scripts/compare_outputs.sh --record BIN DIR [MAKE_CORPUS_BIN]   only run the cases, into DIR
#
# Debug builds are enough (the outputs do not depend on the profile); the
# corpus is small (a few thousand files) so that the whole check takes a few
# minutes on two cores. Exits 1 and prints the differing files on a mismatch.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bench_dir="$(cd "$repo/.." && pwd)/shared/benchmarks"
[ -d "$bench_dir" ] || bench_dir=""

# run_cases BIN DIR MAKE_CORPUS
run_cases() {
  local bin="$1" dir="$2" make_corpus="$3"
  mkdir -p "$dir"
  cd "$dir"
  cp -r "$repo/data/sample" sample
  local decontam=()
  [ -n "$bench_dir" ] && decontam=(--benchmark-dir "$bench_dir")
  local sample=(curate --source sample --content-store sample/content --language python --min-stars 100)
  set +e
  "$bin" --quiet --backend cpu "${sample[@]}" --output a --rejects a/rejects.jsonl --clusters a/clusters.jsonl "${decontam[@]}" --report a/decontam.jsonl 2>a.err; echo "a $?" >>codes
  "$bin" --quiet --backend cpu --threads 1 "${sample[@]}" --output b --near-dedup off --decontaminate off 2>b.err; echo "b $?" >>codes
  "$bin" --quiet --backend cpu "${sample[@]}" --output c --max-samples 40 --rejects c/rejects.jsonl "${decontam[@]}" 2>c.err; echo "c $?" >>codes
  "$bin" --quiet --backend cpu --threads 2 "${sample[@]}" --output d --verify signature --flag-only "${decontam[@]}" 2>d.err; echo "d $?" >>codes
  # Two slices, merged. Without --benchmark-dir: merge takes the slices'
  # decontamination settings (builds before that took merge's own flags), so
  # the slices use the defaults that merge had.
  "$bin" --quiet --backend cpu "${sample[@]}" --output e --shard 0/2 --work-dir e-w0 2>e0.err; echo "e0 $?" >>codes
  "$bin" --quiet --backend cpu "${sample[@]}" --output e --shard 1/2 --work-dir e-w1 2>e1.err; echo "e1 $?" >>codes
  "$bin" --quiet --backend cpu merge --work-dir e-w0 e-w1 --output e 2>e.err; echo "e $?" >>codes
  # A generated corpus: many shards, exact copies (--copies 2), real near-duplicates.
  "$make_corpus" corpus --format v1-parquet --rows-per-shard 700 --copies 2 >/dev/null 2>&1
  # Keep the corpus small: the first 6 shards.
  find corpus -name '*.parquet' | sort | tail -n +7 | xargs -r rm -f
  local corpus=(curate --source corpus --language rust --min-stars 0)
  "$bin" --quiet --backend cpu "${corpus[@]}" --output f --rejects f/rejects.jsonl --clusters f/clusters.jsonl "${decontam[@]}" 2>f.err; echo "f $?" >>codes
  "$bin" --quiet --backend cpu --threads 1 "${corpus[@]}" --output g --memory 64KiB --verify signature --clusters g/clusters.jsonl --decontaminate off 2>g.err; echo "g $?" >>codes
  # The stand-alone dedup command on the sample's output.
  "$bin" --backend cpu dedup --input a/python_curated.jsonl --output h.jsonl --clusters h.clusters.jsonl --stats h.stats.json 2>h.err; echo "h $?" >>codes
  set -e
  rm -rf sample corpus ./*/.work e-w0 e-w1 ./*.err
  # The report pages show timings and the command line (tests/report.rs
  # checks their content).
  find . -name '*.report.html' -delete
  # Timings differ between any two runs: drop them.
  find . -name '*stats.json' | while read -r f; do
    python3 - "$f" <<'PY'
import json, sys
p = sys.argv[1]
s = json.load(open(p))
import re
# So do the command line, start date, resources and the backend's
# description (it names the thread count).
for k in ("elapsed_seconds", "phase_seconds", "step_seconds", "steps", "command", "argv",
          "started_at", "resources", "backend"):
    s.pop(k, None)
# Download counters include their durations and rates.
for t in (s.get("transfers") or {}).values():
    for k in [k for k in t if k.endswith("_secs") or "per_s" in k]:
        t.pop(k)
# The benchmark index description ends with its build time.
d = s.get("decontam")
if isinstance(d, dict) and isinstance(d.get("benchmarks"), str):
    d["benchmarks"] = re.sub(r"built in [0-9.]+s", "built in Xs", d["benchmarks"])
# Spill counters follow the storage layout, not the data: the global steps
# keep signatures in the shards' sidecars and sort per partition.
n = s.get("near_dedup")
if isinstance(n, dict):
    n.pop("spill", None)
open(p, "w").write(json.dumps(s, indent=1, sort_keys=True) + "\n")
PY
  done
  cd - >/dev/null
}

if [ "${1:-}" = "--record" ]; then
  run_cases "$(realpath "$2")" "$3" "$(realpath "${4:-$(dirname "$2")/examples/make_corpus}")"
  exit 0
fi

work="$(mktemp -d /tmp/tritter-compare.XXXXXX)"
trap 'rm -rf "$work"' EXIT
if [ $# -eq 1 ]; then
  rev="$1"
  git -C "$repo" worktree add --detach "$work/base-src" "$rev" >/dev/null
  trap 'git -C "$repo" worktree remove --force "$work/base-src"; rm -rf "$work"' EXIT
  (cd "$work/base-src" && CARGO_TARGET_DIR="$work/base-target" cargo build --quiet --bin tritter-gpu --example make_corpus)
  (cd "$repo" && cargo build --quiet --bin tritter-gpu --example make_corpus)
  base_bin="$work/base-target/debug/tritter-gpu"
  new_bin="$repo/target/debug/tritter-gpu"
  make_corpus="$repo/target/debug/examples/make_corpus"
else
  base_bin="$(realpath "$1")"
  new_bin="$(realpath "$2")"
  make_corpus="$(realpath "${3:-$repo/target/debug/examples/make_corpus}")"
fi
run_cases "$base_bin" "$work/base" "$make_corpus"
run_cases "$new_bin" "$work/new" "$make_corpus"
if diff -r "$work/base" "$work/new"; then
  echo "identical: $(find "$work/base" -type f | wc -l) files"
else
  echo "outputs differ" >&2
  exit 1
fi
