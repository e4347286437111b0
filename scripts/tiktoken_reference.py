#!/usr/bin/env python3
"""Reference token counts from OpenAI's Python `tiktoken`, for tests/tokens.rs.

Writes tests/data/tiktoken_reference.json: for each of a fixed set of real
files on this machine (Python standard library, crate sources under
~/.cargo/registry/src, /usr/share/common-licenses), its path, sha256, bytes
and its `encode_ordinary` token count under cl100k_base and o200k_base.

tiktoken downloads its BPE rank files from an OpenAI URL on first use, which
is not reachable here. The encodings are still tiktoken's own: we call
`tiktoken_ext.openai_public.cl100k_base()` / `o200k_base()` (the official
pattern strings and special tokens) with `load_tiktoken_bpe` replaced by a
loader that reads the same rank file from the tiktoken-rs crate source and
checks it against the sha256 that tiktoken itself expects. A mismatch stops
the script, so the reference cannot silently use other vocabularies.

Usage (a throwaway venv, never in the repository):
    python3 -m venv /tmp/tiktoken-venv && /tmp/tiktoken-venv/bin/pip install tiktoken
    /tmp/tiktoken-venv/bin/python scripts/tiktoken_reference.py > tests/data/tiktoken_reference.json
"""

import base64
import glob
import hashlib
import json
import os
import sys
import sysconfig

import tiktoken
import tiktoken_ext.openai_public as openai_public

HOME = os.path.expanduser("~")
REGISTRY = glob.glob(os.path.join(HOME, ".cargo/registry/src/*/"))


def crate_asset(name):
    hits = sorted(glob.glob(os.path.join(HOME, ".cargo/registry/src/*/tiktoken-rs-*/assets", name)))
    if not hits:
        sys.exit(f"tiktoken_reference: no tiktoken-rs crate source with assets/{name}")
    return hits[-1]


def local_load_tiktoken_bpe(url, expected_hash=None):
    path = crate_asset(url.rsplit("/", 1)[-1])
    data = open(path, "rb").read()
    digest = hashlib.sha256(data).hexdigest()
    if expected_hash and digest != expected_hash:
        sys.exit(f"tiktoken_reference: {path}: sha256 {digest} is not tiktoken's {expected_hash}")
    return {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }


openai_public.load_tiktoken_bpe = local_load_tiktoken_bpe
ENCODINGS = {
    name: tiktoken.Encoding(**getattr(openai_public, name)())
    for name in ("cl100k_base", "o200k_base")
}


def files():
    stdlib = sysconfig.get_paths()["stdlib"]
    for rel in ("json/__init__.py", "difflib.py", "textwrap.py", "tokenize.py",
                "unicodedata.py", "email/_header_value_parser.py", "turtle.py",
                "locale.py", "encodings/cp1252.py", "this.py"):
        yield os.path.join(stdlib, rel)
    for pattern in ("serde_json-*/src/de.rs", "regex-syntax-*/src/unicode.rs",
                    "encoding_rs-*/src/lib.rs", "unicode-segmentation-*/src/grapheme.rs",
                    "tiktoken-rs-*/README.md", "clap_builder-*/src/builder/command.rs"):
        for reg in REGISTRY:
            hits = sorted(glob.glob(os.path.join(reg, pattern)))
            if hits:
                yield hits[-1]
                break
    for lic in ("Apache-2.0", "GPL-3", "MPL-2.0"):
        yield os.path.join("/usr/share/common-licenses", lic)


def main():
    out = []
    for path in files():
        if not os.path.isfile(path):
            continue
        data = open(path, "rb").read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        row = {
            "path": path.replace(HOME, "~", 1) if path.startswith(HOME) else path,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        }
        for name, enc in ENCODINGS.items():
            row[name] = len(enc.encode_ordinary(text))
        out.append(row)
    json.dump({
        "made_with": f"tiktoken {tiktoken.__version__}, encode_ordinary, scripts/tiktoken_reference.py",
        "files": out,
    }, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
