#!/usr/bin/env python3
"""Near-dedup peer benchmark: tritter-gpu against datasketch, rensa, gaoya and
datatrove's MinHash pipeline, on one corpus, with one definition of a shingle.

Every tool gets the same job: Jaccard threshold 0.75 on word 5-grams of the
lowercased text split on non-word characters (Python's `\\w+`), 28 bands of 9
rows (256 permutations; rensa 252 because it needs bands to divide the
permutations; datatrove 28 x 9 = 252 hashes), and the same survivor rule: the
corpus is written in preference order (unique star counts, descending), and
the Python peers keep the first of each group. datasketch and rensa run the
usual greedy "query, verify the estimate, else insert" loop over the file
order; datatrove runs its four stages (signatures, buckets, clusters, filter)
with a word tokenizer and text normalisation matched to ours, and has no
verification step (every bucket collision links two documents).

For each tool we report wall time and peak resident memory (GNU time's
maximum RSS of the process tree's largest member), files removed, agreement
with our removed set (Jaccard of the two sets), precision (removed files whose
exact Jaccard with the file the tool kept for them is >= 0.75), and pooled
recall (of the files that some tool removed with a justified partner, the
fraction this tool removed).

Usage (throwaway virtualenv, never in the repo; datatrove 0.10 needs the
extras listed, and xxhash 4 rejects the str input datatrove passes it):

    python3 -m venv /tmp/peers
    /tmp/peers/bin/pip install datasketch rensa gaoya datatrove regex tokenizers orjson "xxhash<4"
    cargo build --release
    /tmp/peers/bin/python scripts/bench_near_dedup_peers.py \\
        --binary $CARGO_TARGET_DIR/release/tritter-gpu --files 6000 --work /tmp/nd-bench

At scale, on a corpus from examples/make_scale_corpus.rs (in preference
order), with the peers that finish in minutes:

    /tmp/peers/bin/python scripts/bench_near_dedup_peers.py --binary target/release/tritter-gpu \\
        --corpus /tmp/tritter-scale/corpus-1000000.jsonl --peers rensa,gaoya

gaoya runs its own Rust word analyzer (lowercased word 5-grams) with
multi-threaded bulk insert and query; its tokenisation splits words its own
way, so its precision is measured with ours like every tool's.

The corpus comes from the `.rs` files of the local cargo registry. The work
folder (corpus, outputs, datatrove's folders) is removed at the end unless
--keep is given.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

THRESHOLD = 0.75
NGRAM = 5
BANDS, ROWS = 28, 9
WORD = re.compile(r"\w+")


def shingles(text):
    toks = WORD.findall(text.lower())
    if not toks:
        return set()
    if len(toks) < NGRAM:
        return {" ".join(toks)}
    return {" ".join(toks[i : i + NGRAM]) for i in range(len(toks) - NGRAM + 1)}


def jaccard(a, b):
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


# ---------------------------------------------------------------- corpus


def registry_files():
    home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    root = home / "registry" / "src"
    files = []
    for p in root.rglob("*.rs"):
        try:
            size = p.stat().st_size
        except OSError:
            continue
        if 500 <= size <= 64_000:
            rel = str(p.relative_to(root))
            files.append((hashlib.blake2b(rel.encode(), digest_size=8).hexdigest(), p))
    files.sort()
    return [p for _, p in files]


def rename(text, rng):
    ids = sorted({w for w in re.findall(r"\b[a-z_][a-z0-9_]{3,}\b", text)})
    for _ in range(rng.randint(1, 3)):
        if ids:
            old = rng.choice(ids)
            text = re.sub(rf"\b{re.escape(old)}\b", f"renamed_{rng.randint(0, 10**6)}", text)
    return text


def reformat(text, rng):
    out = []
    for line in text.splitlines():
        s = line.lstrip(" ")
        out.append("\t" * ((len(line) - len(s)) // 4) + s)
        out.append(" " if s.endswith(("{", ",")) and rng.random() < 0.5 else "\n")
    return "".join(out)


def comments(text, rng):
    vocab = "note this handles the edge case when buffer is empty see issue".split()
    return "\n".join(
        (l[: l.index("//")] + "// " + " ".join(rng.choice(vocab) for _ in range(5))) if "//" in l else l
        for l in text.splitlines()
    )


def edit(text, frac, donor, rng):
    dl = [l for l in donor.splitlines() if l.strip()] or ["x"]
    out = []
    for l in text.splitlines():
        if rng.random() >= frac:
            out.append(l)
            continue
        k = rng.randrange(3)
        if k == 0:
            out.append(rng.choice(dl))
        elif k == 2:
            out += [l, rng.choice(dl)]
    return "\n".join(out)


HEADER = (
    "// Licensed under the Apache License, Version 2.0 (the \"License\");\n"
    "// you may not use this file except in compliance with the License.\n"
    "// You may obtain a copy of the License at http://www.apache.org/licenses/LICENSE-2.0\n"
    "// Unless required by applicable law or agreed to in writing, software distributed\n"
    "// under the License is distributed on an \"AS IS\" BASIS, WITHOUT WARRANTIES.\n"
    "use std::collections::{BTreeMap, HashMap, HashSet};\nuse std::io::{self, Read, Write};\n"
)


def build_corpus(n_files, path):
    rng = random.Random(1234)
    texts = []
    for p in registry_files():
        if len(texts) == n_files:
            break
        try:
            texts.append(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
    docs = []
    for i, t in enumerate(texts):
        if rng.random() < 0.1:
            t = HEADER + t
        docs.append((t, f"base{i}"))
        if rng.random() < 0.4:
            for v in range(rng.randint(1, 2)):
                donor = rng.choice(texts)
                k = rng.randrange(5)
                if k == 0:
                    vt = reformat(t, rng)
                elif k == 1:
                    vt = reformat(rename(t, rng), rng)
                elif k == 2:
                    vt = comments(t, rng)
                else:
                    vt = edit(t, rng.choice([0.05, 0.1, 0.2, 0.3]), donor, rng)
                docs.append((vt, f"var{i}_{v}"))
    stars = list(range(len(docs)))
    rng.shuffle(stars)
    rows = [
        {"text": t, "language": "rust", "license": "mit", "stars": s, "path": f"src/{name}.rs", "repo": f"o/{name}"}
        for (t, name), s in zip(docs, stars)
    ]
    # Preference order: most stars first.
    rows.sort(key=lambda r: -r["stars"])
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return rows


# ---------------------------------------------------------------- peers
# Each peer reads the corpus and writes {"removed": i, "kept": j} lines
# (0-based line indices).


def read_texts(path):
    with open(path) as f:
        return [json.loads(l)["text"] for l in f]


def peer_datasketch(inp, out):
    from datasketch import MinHash, MinHashLSH

    texts = read_texts(inp)
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=256, params=(BANDS, ROWS))
    kept = {}
    with open(out, "w") as f:
        for i, t in enumerate(texts):
            sh = shingles(t)
            if not sh:
                continue
            m = MinHash(num_perm=256, seed=42)
            m.update_batch([s.encode() for s in sh])
            match = None
            for c in sorted(lsh.query(m)):
                if m.jaccard(kept[c]) >= THRESHOLD:
                    match = c
                    break
            if match is None:
                lsh.insert(i, m)
                kept[i] = m
            else:
                f.write(json.dumps({"removed": i, "kept": match}) + "\n")


def peer_rensa(inp, out):
    from rensa import RMinHash, RMinHashLSH

    texts = read_texts(inp)
    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=BANDS * ROWS, num_bands=BANDS)
    kept = {}
    with open(out, "w") as f:
        for i, t in enumerate(texts):
            sh = shingles(t)
            if not sh:
                continue
            m = RMinHash(num_perm=BANDS * ROWS, seed=42)
            m.update(list(sh))
            match = None
            for c in sorted(lsh.query(m)):
                if m.jaccard(kept[c]) >= THRESHOLD:
                    match = c
                    break
            if match is None:
                lsh.insert(i, m)
                kept[i] = m
            else:
                f.write(json.dumps({"removed": i, "kept": match}) + "\n")


def peer_datatrove(inp, out):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.text import TextNormConfig
    from datatrove.utils.word_tokenizers import WordTokenizer

    class RegexTokenizer(WordTokenizer):
        """Our tokenisation: \\w+ runs (text already lowercased by datatrove)."""

        def word_tokenize(self, text):
            return WORD.findall(text)

        def sent_tokenize(self, text):
            return [text]

        def span_tokenize(self, text):
            return [m.span() for m in WORD.finditer(text)]

    work = Path(out).parent / "datatrove"
    inp_dir = work / "input"
    inp_dir.mkdir(parents=True, exist_ok=True)
    # Keep the line index so removed documents map back to lines.
    with open(inp) as src, open(inp_dir / "corpus.jsonl", "w") as dst:
        for i, l in enumerate(src):
            r = json.loads(l)
            dst.write(json.dumps({"text": r["text"], "id": str(i), "line": i}) + "\n")
    cfg = MinhashConfig(
        n_grams=NGRAM,
        num_buckets=BANDS,
        hashes_per_bucket=ROWS,
        seed=42,
        hash_config=HashConfig(precision=64),
        norm_config=TextNormConfig(
            lowercase=True,
            norm_whitespace=True,
            remove_punctuation=False,
            norm_unicode_diacritics=False,
            norm_numbers=False,
        ),
    )
    reader = lambda: JsonlReader(str(inp_dir), glob_pattern="*.jsonl")  # noqa: E731
    stages = [
        [reader(), MinhashDedupSignature(str(work / "sigs"), config=cfg, language=RegexTokenizer())],
        [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=cfg)],
        [MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=cfg, save_cluster_id=True)],
        [
            reader(),
            MinhashDedupFilter(
                str(work / "remove"),
                exclusion_writer=JsonlWriter(str(work / "removed"), compression=None),
                load_cluster_ids=True,
            ),
            JsonlWriter(str(work / "kept"), compression=None),
        ],
    ]
    for i, pipe in enumerate(stages):
        tasks = BANDS if i == 1 else 1
        LocalPipelineExecutor(
            pipeline=pipe, tasks=tasks, workers=min(tasks, 2), logging_dir=str(work / f"logs{i}")
        ).run()

    def docs(folder):
        for p in sorted(Path(folder).glob("*.jsonl")):
            with open(p) as f:
                for l in f:
                    d = json.loads(l)
                    yield d["metadata"]["line"], d["metadata"].get("minhash_cluster_id")

    kept_of = {}
    for line, cid in docs(work / "kept"):
        if cid is not None and cid not in kept_of:
            kept_of[cid] = line
    with open(out, "w") as f:
        for line, cid in docs(work / "removed"):
            f.write(json.dumps({"removed": line, "kept": kept_of.get(cid, -1)}) + "\n")


def peer_gaoya(inp, out):
    """gaoya's own pipeline: its Rust word analyzer (lowercased, word 5-grams),
    multi-threaded bulk insert of every document, then a multi-threaded bulk
    query that returns the candidates whose estimated Jaccard is >= the
    threshold. The greedy rule runs on the answers: a file is removed for the
    first earlier file in preference order that is kept and in its answer,
    which is what "query, verify, else insert" over the file order gives."""
    from gaoya.minhash import MinHashStringIndex

    texts = read_texts(inp)
    index = MinHashStringIndex(
        hash_size=32,
        jaccard_threshold=THRESHOLD,
        num_bands=BANDS,
        band_size=ROWS,
        analyzer="word",
        lowercase=True,
        ngram_range=(NGRAM, NGRAM),
        id_container="smallvec",
    )
    ids = list(range(len(texts)))
    chunk = 100_000
    for lo in range(0, len(texts), chunk):
        index.par_bulk_insert_docs(ids[lo : lo + chunk], texts[lo : lo + chunk])
    kept = bytearray(len(texts))
    with open(out, "w") as f:
        for lo in range(0, len(texts), chunk):
            answers = index.par_bulk_query(texts[lo : lo + chunk])
            for i, cands in enumerate(answers, lo):
                match = min((c for c in cands if c < i and kept[c]), default=None)
                if match is None:
                    kept[i] = 1
                else:
                    f.write(json.dumps({"removed": i, "kept": match}) + "\n")


PEERS = {
    "datasketch": peer_datasketch,
    "rensa": peer_rensa,
    "datatrove": peer_datatrove,
    "gaoya": peer_gaoya,
}


# ---------------------------------------------------------------- driver


CPU = {}


def timed(cmd, env=None):
    t = time.time()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    wall = time.time() - t
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", p.stderr))
    CPU[cmd[0] if cmd[0] != sys.executable else cmd[3]] = cpu
    return wall, (int(rss.group(1)) / 1024 if rss else float("nan")), p.stderr


def ours_pairs(clusters_path):
    pairs = []
    with open(clusters_path) as f:
        for l in f:
            c = json.loads(l)
            k = c["kept"]["line"] - 1
            pairs += [(m["line"] - 1, k) for m in c["removed"]]
    return pairs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="tritter-gpu release binary")
    ap.add_argument("--files", type=int, default=6000, help="base files taken from the registry")
    ap.add_argument("--work", default="/tmp/nd-bench")
    ap.add_argument("--corpus", help="use this tool-schema JSONL (in preference order) instead of building one")
    ap.add_argument("--peers", default="rensa,gaoya,datasketch,datatrove")
    ap.add_argument("--verify", default="signature,exact", help="tritter-gpu --verify modes to run")
    ap.add_argument("--threads", default="2", help="RAYON_NUM_THREADS for tritter-gpu")
    ap.add_argument("--tokens", default="off", help="tritter-gpu --tokens (the peers count no tokens)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.peer:
        PEERS[a.peer](a.input, a.out)
        return

    work = Path(a.work)
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    try:
        if a.corpus:
            # A corpus made elsewhere (examples/make_scale_corpus.rs), already
            # in preference order, read in place.
            corpus = Path(a.corpus)
            texts = read_texts(corpus)
        else:
            corpus = work / "corpus.jsonl"
            texts = [r["text"] for r in build_corpus(a.files, corpus)]
        mb = corpus.stat().st_size / 1e6
        print(f"corpus: {len(texts)} files, {mb:.1f} MB JSONL, {sum(map(len, texts)) / 1e6:.1f} MB text")
        print(f"load average before the run: {open('/proc/loadavg').read().split()[:3]}")
        results, cpu = {}, {}
        env = dict(os.environ, RAYON_NUM_THREADS=a.threads)
        runs = [("tritter-gpu", "signature"), ("tritter-gpu --verify exact", "exact")]
        for label, verify in [r for r in runs if r[1] in a.verify.split(",")]:
            cmd = [a.binary, "dedup", "--backend", "cpu", "--input", str(corpus), "--output",
                   str(work / f"ours-{verify}.jsonl"), "--clusters", str(work / f"ours-{verify}.clusters"),
                   "--verify", verify, "--tokens", a.tokens]
            wall, rss, err = timed(cmd, env)
            cpu[label] = CPU[a.binary]
            results[label] = (wall, rss, ours_pairs(work / f"ours-{verify}.clusters"))
            print(f"{label}: {wall:.2f} s, {rss:.0f} MiB\n" + "\n".join(l for l in err.splitlines() if "time " in l))
        for name in [p for p in a.peers.split(",") if p]:
            out = work / f"{name}.pairs.jsonl"
            wall, rss, _ = timed([sys.executable, __file__, "--peer", name, "--input", str(corpus), "--out", str(out)])
            with open(out) as f:
                pairs = [(d["removed"], d["kept"]) for d in map(json.loads, f)]
            cpu[name] = CPU[name]
            results[name] = (wall, rss, pairs)
            print(f"{name}: {wall:.2f} s, {rss:.0f} MiB, {len(pairs)} removed")

        cache = {}

        def sh(i):
            if i not in cache:
                cache[i] = shingles(texts[i])
            return cache[i]

        justified = {}
        for name, (_, _, pairs) in results.items():
            justified[name] = {r for r, k in pairs if k >= 0 and jaccard(sh(r), sh(k)) >= THRESHOLD}
        pool = set().union(*justified.values())
        first = next(iter(results))
        ours = {r for r, _ in results[first][2]}
        base = results[first][0]
        print()
        print("| tool | wall s | vs ours | CPU s | peak RSS MiB | removed | agreement with ours | precision | pooled recall |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, (wall, rss, pairs) in results.items():
            rem = {r for r, _ in pairs}
            agree = len(rem & ours) / max(1, len(rem | ours))
            prec = len(justified[name]) / max(1, len(rem))
            rec = len(rem & pool) / max(1, len(pool))
            print(f"| {name} | {wall:.2f} | {wall / base:.1f}x | {cpu[name]:.1f} | {rss:.0f} | {len(rem)} | {agree:.3f} | {prec:.4f} | {rec:.4f} |")
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
