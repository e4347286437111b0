#!/usr/bin/env bash
# Throughput of `tritter-gpu mix` on a real-code corpus built at run time
# from this machine's files: Rust from ~/.cargo/registry/src, Python from
# the standard library, Markdown docs from both, repeated under distinct
# paths until the corpus holds MIX_MB megabytes (default 1024). Nothing
# downloaded, nothing written into the repository.
#
# Usage: scripts/bench_mix.sh [BIN]   (default target/release/tritter-gpu)
# Env:   MIX_MB (corpus size), MIX_DIR (scratch, default /tmp/tritter-mix-bench),
#        MIX_FORMAT (parquet | jsonl | jsonl.zst)
set -euo pipefail
BIN=${1:-target/release/tritter-gpu}
MB=${MIX_MB:-1024}
DIR=${MIX_DIR:-/tmp/tritter-mix-bench}
FORMAT=${MIX_FORMAT:-parquet}
mkdir -p "$DIR/in"
python3 - "$DIR/in" "$MB" <<'PY'
import json, os, sys, sysconfig, glob
out, mb = sys.argv[1], int(sys.argv[2])
home = os.path.expanduser("~")
groups = {
    "rust": sorted(glob.glob(f"{home}/.cargo/registry/src/*/*/src/**/*.rs", recursive=True)),
    "python": sorted(glob.glob(sysconfig.get_paths()["stdlib"] + "/**/*.py", recursive=True)),
    "docs": sorted(glob.glob(f"{home}/.cargo/registry/src/*/*/**/*.md", recursive=True)),
}
share = {"rust": 0.45, "python": 0.45, "docs": 0.10}
for name, files in groups.items():
    path = f"{out}/{name}.jsonl"
    want = int(mb * share[name] * 1e6)
    if os.path.exists(path) and os.path.getsize(path) >= want:
        continue
    texts = []
    for f in files:
        try:
            t = open(f, encoding="utf-8").read()
        except (UnicodeDecodeError, OSError):
            continue
        if 0 < len(t) < 200_000:
            texts.append((f, t))
    n = 0
    with open(path, "w") as w:
        rep = 0
        while n < want:
            for f, t in texts:
                row = {"text": t, "language": name, "license": "mit", "stars": rep,
                       "path": f"{rep}/{os.path.basename(f)}", "repo": f"copy{rep}/{os.path.dirname(f)[-40:]}"}
                line = json.dumps(row) + "\n"
                w.write(line)
                n += len(line)
                if n >= want:
                    break
            rep += 1
    print(f"{path}: {n/1e6:.0f} MB", file=sys.stderr)
PY
# Targets: 70% of the corpus's tokens at about 3.6 bytes per token.
TOTAL=$(( MB * 1000000 * 7 / 36 ))
cat > "$DIR/plan.toml" <<TOML
total_tokens = $TOTAL
tokenizer = "cl100k_base"
seed = 0
shard_tokens = 50_000_000
format = "$FORMAT"

[[component]]
name = "python"
share = 0.45
sources = ["in/python.jsonl"]
max_epochs = 2.0

[[component]]
name = "rust"
share = 0.45
sources = ["in/rust.jsonl"]
max_epochs = 2.0

[[component]]
name = "docs"
share = 0.10
sources = ["in/docs.jsonl"]
max_epochs = 2.0
TOML
BIN=$(realpath "$BIN")
cd "$DIR"
rm -rf out
du -sh in
/usr/bin/time -v "$BIN" mix --plan plan.toml --output out --rescale 2> time.log
grep -E "Elapsed|Maximum resident" time.log
du -sh out
