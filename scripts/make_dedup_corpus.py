#!/usr/bin/env python3
"""Writes a JSONL corpus in tritter-gpu's output schema from the Python
sources a machine already has, for `tritter-gpu dedup` runs (the GPU check
compares --backend cpu and --backend cuda on it byte for byte).

Usage: make_dedup_corpus.py OUT.jsonl MEGABYTES [DIR ...]

Reads *.py files under DIR (default: the standard library and every
site-packages directory of this Python), in sorted order, and writes one
record per file until MEGABYTES of text are written. Every fifth file is also
written a second time, lightly edited (a comment appended to every 20th
line), under another repository, so that near dedup has real near-duplicates
to find; exact copies are written too when a package is installed twice.
Deterministic: the same files give the same bytes. Standard library only.
"""

import json
import os
import sys
import sysconfig
import site


def sources(dirs):
    for root in dirs:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                if name.endswith(".py"):
                    yield os.path.join(dirpath, name)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, megabytes = sys.argv[1], float(sys.argv[2])
    dirs = sys.argv[3:] or [sysconfig.get_paths()["stdlib"]] + site.getsitepackages()
    limit = int(megabytes * 1e6)
    written = files = 0
    seen = set()
    with open(out, "w", encoding="utf-8") as f:
        for i, path in enumerate(sources(dirs)):
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            try:
                with open(path, encoding="utf-8") as src:
                    text = src.read()
            except (OSError, UnicodeDecodeError):
                continue
            if text.count("\n") < 10 or len(text) > 400_000:
                continue
            rel = os.path.relpath(path, "/")
            rec = {"text": text, "language": "python", "license": "mit",
                   "stars": 100 + i % 997, "path": rel, "repo": "local/" + rel.split("/")[0]}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            written += len(text)
            files += 1
            if files % 5 == 0:
                lines = text.split("\n")
                edited = "\n".join(l + "  # edited" if n % 20 == 3 else l for n, l in enumerate(lines))
                rec = dict(rec, text=edited, repo="fork/" + rel.split("/")[0], stars=rec["stars"] // 2)
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
                written += len(edited)
                files += 1
            if written >= limit:
                break
    print(f"{out}: {files} records, {written / 1e6:.1f} MB of text")
    if written < limit:
        sys.exit(f"only {written / 1e6:.1f} MB of Python found, {megabytes} MB asked")


if __name__ == "__main__":
    main()
