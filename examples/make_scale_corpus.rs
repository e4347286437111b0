//! Builds a realistic near-dedup corpus of any size from the real code on
//! the machine: the `.rs` files of the crates under `~/.cargo/registry/src`
//! and the `.py` files of the Python standard library (`/usr/lib/python3*`).
//! Every file of the corpus is a window of lines of a real source file;
//! about 30% are lightly edited copies of another window, so near-duplicate
//! rates and cluster sizes look like those of scraped code rather than of
//! random words. Used by `scripts/bench_scale.sh` and by the peer benchmark
//! (`scripts/bench_near_dedup_peers.py --corpus`).
//!
//! ```text
//! cargo run --release --example make_scale_corpus -- --files 1000000 \
//!     [--seed 1] [--jsonl OUT.jsonl] [--parquet DIR] [--rows-per-shard 100000] \
//!     [--languages rust,python] [--mean-bytes 800]
//! ```
//!
//! ## How a file is made
//! Document `i` (generation index) is a pure function of `(seed, i)`, so the
//! corpus is generated in parallel, streamed (nothing is held but one shard),
//! and is the same bytes for a seed on any machine with the same sources:
//!
//! - **Base window of `i`.** The pool (all source files, sorted by path) is
//!   cut into slots of `--mean-bytes`; a per-cycle affine permutation picks
//!   slot `s` for `i`, and the window starts at the first line at or after
//!   `s * mean + (cycle mod 4) * mean / 4` and runs for a log-normal number
//!   of bytes (median about 0.8 x mean, clipped to 150 B - 10 x mean), in
//!   whole lines of one file. Windows of one cycle never overlap; windows of
//!   two cycles overlap by at most three quarters of a slot, so two bases are
//!   rarely at Jaccard >= 0.75 by chance. From the fifth pass over the pool on
//!   (corpora larger than about 4 x the pool), 40% of a base's lines are
//!   swapped for lines of another window, so bases stay distinct.
//! - **Copies.** With probability 0.3 document `i` is instead a copy of the
//!   base window of an earlier document `b = floor(i * u^3)` (`u` uniform), so
//!   early documents are copied far more often (a heavy-tailed cluster-size
//!   distribution: at 1M files the most copied base has about a thousand
//!   copies, most have none). A copy gets one or two light edits: exact copy,
//!   1-3 identifiers renamed, re-indented, comments rewritten, 3-15% of lines
//!   replaced, deleted or duplicated from another window, or a license
//!   header added; some land below the 0.75 threshold, as real edits do.
//! - **Order and preference.** Documents are written in the order of an
//!   affine permutation of `0..n`, with stars `n - position` (unique and
//!   descending), so the file order is the preference order (the peer
//!   benchmark's greedy peers keep the first file of a group) and is not the
//!   generation order. Licenses are permissive (mit, apache-2.0, bsd-3-clause)
//!   so that stars alone decide the survivor.
//!
//! ## Outputs
//! `--jsonl`: the tool schema (`text`, `language`, `license`, `stars`,
//! `path`, `repo`) that `dedup` reads. `--parquet`: The Stack v1 schema with
//! content inline, `shard-NNNNN.parquet`, a `curate --source`. Each can be
//! left out.

use rayon::prelude::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use tritter_gpu::record::OutputRecord;
use tritter_gpu::sources::writer::{ShardWriter, SourceFile, WriteOptions};
use tritter_gpu::sources::SchemaKind;

/// One source file of the pool: its lines as byte ranges of `Pool::text`.
struct PoolFile {
    rel: String,
    language: &'static str,
    /// Start of the file in `Pool::text`.
    start: usize,
}

struct Pool {
    text: Vec<u8>,
    files: Vec<PoolFile>,
    /// Start offset of every line of every file, ascending.
    line_starts: Vec<usize>,
    /// `file_of_line[k]`: index into `files` of the line starting at `line_starts[k]`.
    file_of_line: Vec<u32>,
}

impl Pool {
    fn load(languages: &[String]) -> anyhow::Result<Pool> {
        let mut sources: Vec<(PathBuf, PathBuf, &'static str)> = Vec::new();
        if languages.iter().any(|l| l == "rust") {
            let root = PathBuf::from(std::env::var("CARGO_HOME").unwrap_or_else(|_| {
                format!("{}/.cargo", std::env::var("HOME").unwrap_or_default())
            }))
            .join("registry/src");
            let mut files = Vec::new();
            walk(&root, "rs", &mut files);
            sources.extend(files.into_iter().map(|f| (root.clone(), f, "rust")));
        }
        if languages.iter().any(|l| l == "python") {
            let mut roots: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
                .map(|d| {
                    d.flatten()
                        .map(|e| e.path())
                        .filter(|p| {
                            p.file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with("python3"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            roots.sort();
            for root in roots {
                let mut files = Vec::new();
                walk(&root, "py", &mut files);
                sources.extend(files.into_iter().map(|f| (root.clone(), f, "python")));
            }
        }
        let mut pool = Pool {
            text: Vec::new(),
            files: Vec::new(),
            line_starts: Vec::new(),
            file_of_line: Vec::new(),
        };
        for (root, path, language) in sources {
            // Inline-content schemas hold text: skip the rare non-UTF-8 file,
            // and tiny or huge ones (generated tables, vendored blobs).
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if text.len() < 200 || text.len() > 200_000 {
                continue;
            }
            let start = pool.text.len();
            let file = pool.files.len() as u32;
            let mut at = start;
            for line in text.split_inclusive('\n') {
                pool.line_starts.push(at);
                pool.file_of_line.push(file);
                at += line.len();
            }
            pool.text.extend_from_slice(text.as_bytes());
            if !text.ends_with('\n') {
                pool.text.push(b'\n');
            }
            let rel = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .to_string();
            pool.files.push(PoolFile {
                rel,
                language,
                start,
            });
        }
        anyhow::ensure!(
            pool.text.len() > 1 << 20,
            "found only {} bytes of source under ~/.cargo/registry/src and /usr/lib/python3*; \
             build the project once (cargo fetches the crates) or pass --languages",
            pool.text.len()
        );
        Ok(pool)
    }

    fn file_end(&self, file: u32) -> usize {
        self.files
            .get(file as usize + 1)
            .map_or(self.text.len(), |f| f.start)
    }

    /// The line index of the first line starting at or after `byte`.
    fn line_at(&self, byte: usize) -> usize {
        self.line_starts
            .partition_point(|&s| s < byte)
            .min(self.line_starts.len() - 1)
    }

    /// Whole lines of one file from line `first`, about `want` bytes.
    fn window(&self, first: usize, want: usize) -> (u32, &str) {
        let file = self.file_of_line[first];
        let (fs, fe) = (self.files[file as usize].start, self.file_end(file));
        let mut lo = self.line_starts[first];
        // The rest of the file is short: end the window at the file's end
        // instead, so windows are not stubs.
        if lo + want > fe {
            let from = fe.saturating_sub(want).max(fs);
            lo = self.line_starts[self.line_starts.partition_point(|&s| s <= from) - 1];
        }
        let target = lo + want;
        let mut hi = if target >= fe {
            fe
        } else {
            let k = self.line_starts.partition_point(|&s| s < target);
            self.line_starts.get(k).copied().unwrap_or(fe).min(fe)
        };
        if hi <= lo {
            hi = fe;
        }
        let text = std::str::from_utf8(&self.text[lo..hi]).unwrap_or("");
        (file, text)
    }
}

fn walk(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_symlink() {
            continue;
        }
        if p.is_dir() {
            walk(&p, ext, out);
        } else if p.extension().is_some_and(|e| e == ext) {
            out.push(p);
        }
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): a tiny seeded generator, so the
/// corpus depends on nothing but the seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64, i: u64) -> Rng {
        let mut r = Rng(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        r.0 ^= r.next().wrapping_add(i);
        Rng(r.next())
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// A standard normal deviate (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// A multiplier coprime to `n` near `n * 0.618`, for the affine permutation
/// `x -> (a x + c) mod n`.
fn coprime_near(n: u64, salt: u64) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let mut a = ((n as f64 * 0.618_033_988_7) as u64 + salt * 7919) % n.max(1);
    a = a.max(1);
    while gcd(a, n) != 1 {
        a += 1;
    }
    a
}

const HEADER_RS: &str = "// Licensed under the Apache License, Version 2.0 (the \"License\");\n\
// you may not use this file except in compliance with the License.\n\
// You may obtain a copy of the License at http://www.apache.org/licenses/LICENSE-2.0\n\
// Unless required by applicable law or agreed to in writing, software distributed\n\
// under the License is distributed on an \"AS IS\" BASIS, WITHOUT WARRANTIES.\n";
const HEADER_PY: &str = "# Licensed under the Apache License, Version 2.0 (the \"License\");\n\
# you may not use this file except in compliance with the License.\n\
# You may obtain a copy of the License at http://www.apache.org/licenses/LICENSE-2.0\n\
# Unless required by applicable law or agreed to in writing, software distributed\n\
# under the License is distributed on an \"AS IS\" BASIS, WITHOUT WARRANTIES.\n";
const LICENSES: [&str; 3] = ["mit", "apache-2.0", "bsd-3-clause"];

struct Gen<'a> {
    pool: &'a Pool,
    seed: u64,
    n: u64,
    mean: usize,
    slots: u64,
    /// Output position -> generation index: `(order_a * p + order_c) mod n`.
    order_a: u64,
    order_c: u64,
}

struct Doc {
    text: String,
    language: &'static str,
    path: String,
    repo: String,
    license: &'static str,
}

impl Gen<'_> {
    /// Base window of generation index `j`: (file, text).
    fn base(&self, j: u64) -> (u32, String) {
        let cycle = j / self.slots;
        let a = coprime_near(self.slots, cycle);
        let slot = (a.wrapping_mul(j % self.slots) + cycle * 104_729) % self.slots;
        let offset = slot as usize * self.mean + (cycle % 4) as usize * self.mean / 4;
        let mut rng = Rng::new(self.seed, 1, j);
        let want = ((self.mean as f64 * 0.8) * (0.6 * rng.normal()).exp())
            .clamp(150.0, 10.0 * self.mean as f64);
        let first = self.pool.line_at(offset.min(self.pool.text.len() - 1));
        let (file, text) = self.pool.window(first, want as usize);
        let mut text = text.to_string();
        if cycle >= 4 {
            text = self.swap_lines(&text, 0.4, &mut rng);
        }
        (file, text)
    }

    /// Lines of a random window elsewhere in the pool.
    fn donor_lines(&self, rng: &mut Rng) -> Vec<&str> {
        let first = rng.below(self.pool.line_starts.len());
        let (_, text) = self.pool.window(first, 2 * self.mean);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            vec!["x"]
        } else {
            lines
        }
    }

    fn swap_lines(&self, text: &str, frac: f64, rng: &mut Rng) -> String {
        let donor = self.donor_lines(rng);
        let mut out = String::with_capacity(text.len() + 64);
        for line in text.lines() {
            if rng.unit() < frac {
                out.push_str(donor[rng.below(donor.len())]);
            } else {
                out.push_str(line);
            }
            out.push('\n');
        }
        out
    }

    fn edit_lines(&self, text: &str, frac: f64, rng: &mut Rng) -> String {
        let donor = self.donor_lines(rng);
        let mut out = String::with_capacity(text.len() + 64);
        for line in text.lines() {
            if rng.unit() >= frac {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            match rng.below(3) {
                0 => {
                    out.push_str(donor[rng.below(donor.len())]);
                    out.push('\n');
                }
                1 => {} // deleted
                _ => {
                    out.push_str(line);
                    out.push('\n');
                    out.push_str(donor[rng.below(donor.len())]);
                    out.push('\n');
                }
            }
        }
        out
    }

    fn rename(text: &str, rng: &mut Rng) -> String {
        let words: Vec<&str> = identifiers(text).collect();
        if words.is_empty() {
            return text.to_string();
        }
        let mut text = text.to_string();
        for _ in 0..1 + rng.below(3) {
            let old = words[rng.below(words.len())].to_string();
            let new = format!("{old}_{}", rng.below(1_000_000));
            text = replace_word(&text, &old, &new);
        }
        text
    }

    fn reindent(text: &str, rng: &mut Rng) -> String {
        let tabs = rng.below(2) == 0;
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let body = line.trim_start_matches(' ');
            let depth = (line.len() - body.len()) / 4;
            for _ in 0..depth {
                out.push_str(if tabs { "\t" } else { "  " });
            }
            out.push_str(body.trim_end());
            out.push('\n');
        }
        out
    }

    fn comments(text: &str, language: &str, rng: &mut Rng) -> String {
        const VOCAB: [&str; 12] = [
            "note", "this", "handles", "the", "edge", "case", "when", "buffer", "is", "empty",
            "see", "upstream",
        ];
        let mark = if language == "python" { "#" } else { "//" };
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            match line.find(mark) {
                Some(at) => {
                    out.push_str(&line[..at]);
                    out.push_str(mark);
                    for _ in 0..5 {
                        out.push(' ');
                        out.push_str(VOCAB[rng.below(VOCAB.len())]);
                    }
                }
                None => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }

    /// Document at output position `p`.
    fn doc(&self, p: u64) -> Doc {
        let i = (self.order_a.wrapping_mul(p) % self.n + self.order_c) % self.n;
        let mut rng = Rng::new(self.seed, 2, i);
        let copy_of = (i > 0 && rng.unit() < 0.3).then(|| (i as f64 * rng.unit().powi(3)) as u64);
        let (file, mut text) = self.base(copy_of.unwrap_or(i));
        let source = &self.pool.files[file as usize];
        let mut repo = format!("gen/{}", source.rel.split('/').next().unwrap_or("src"));
        if copy_of.is_some() {
            repo = format!("{repo}-fork{}", i % 997);
            for _ in 0..1 + rng.below(2) {
                text = match rng.below(10) {
                    0 => text,
                    1 | 2 => Self::rename(&text, &mut rng),
                    3 => Self::reindent(&text, &mut rng),
                    4 => Self::comments(&text, source.language, &mut rng),
                    5 => format!(
                        "{}{text}",
                        if source.language == "python" {
                            HEADER_PY
                        } else {
                            HEADER_RS
                        }
                    ),
                    _ => {
                        let frac = [0.03, 0.05, 0.1, 0.15][rng.below(4)];
                        self.edit_lines(&text, frac, &mut rng)
                    }
                };
            }
        }
        Doc {
            text,
            language: source.language,
            path: format!("{}#{i}", source.rel),
            repo,
            license: LICENSES[rng.below(LICENSES.len())],
        }
    }
}

/// Words that look like identifiers: `[a-z_][a-z0-9_]{3,}`, deduplicated.
fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    let mut seen = std::collections::BTreeSet::new();
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| {
            w.len() >= 4
                && w.as_bytes()[0].is_ascii_lowercase()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .filter(move |w| seen.insert(*w))
}

fn replace_word(text: &str, old: &str, new: &str) -> String {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    let mut last = 0;
    for (at, _) in text.match_indices(old) {
        let before = at.checked_sub(1).map(|k| bytes[k]);
        let after = bytes.get(at + old.len()).copied();
        if before.is_some_and(is_word) || after.is_some_and(is_word) || at < last {
            continue;
        }
        out.push_str(&text[last..at]);
        out.push_str(new);
        last = at + old.len();
    }
    out.push_str(&text[last..]);
    out
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n: u64 = flag("--files")
        .ok_or_else(|| anyhow::anyhow!("--files N is required"))?
        .parse()?;
    anyhow::ensure!(n > 0, "--files must be at least 1");
    let seed: u64 = flag("--seed").map(|s| s.parse()).transpose()?.unwrap_or(1);
    let mean: usize = flag("--mean-bytes")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(800);
    anyhow::ensure!(mean >= 100, "--mean-bytes must be at least 100");
    let rows_per_shard: u64 = flag("--rows-per-shard")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    anyhow::ensure!(rows_per_shard > 0, "--rows-per-shard must be at least 1");
    let languages: Vec<String> = flag("--languages")
        .unwrap_or_else(|| "rust,python".into())
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .collect();
    let jsonl = flag("--jsonl").map(PathBuf::from);
    let parquet = flag("--parquet").map(PathBuf::from);
    anyhow::ensure!(
        jsonl.is_some() || parquet.is_some(),
        "give --jsonl FILE and/or --parquet DIR"
    );

    let pool = Pool::load(&languages)?;
    eprintln!(
        "pool: {} files, {:.1} MB, {} lines",
        pool.files.len(),
        pool.text.len() as f64 / 1e6,
        pool.line_starts.len()
    );
    let gen = Gen {
        pool: &pool,
        seed,
        n,
        mean,
        slots: (pool.text.len() / mean).max(1) as u64,
        order_a: coprime_near(n, seed),
        order_c: seed % n,
    };
    let mut jsonl_out = match &jsonl {
        Some(p) => Some(std::io::BufWriter::with_capacity(
            1 << 20,
            std::fs::File::create(p)
                .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", p.display()))?,
        )),
        None => None,
    };
    if let Some(dir) = &parquet {
        std::fs::create_dir_all(dir)?;
    }
    let (mut text_bytes, mut shard) = (0u64, 0usize);
    let mut lo = 0u64;
    while lo < n {
        let hi = (lo + rows_per_shard).min(n);
        let docs: Vec<Doc> = (lo..hi).into_par_iter().map(|p| gen.doc(p)).collect();
        if let Some(w) = jsonl_out.as_mut() {
            for (p, d) in (lo..hi).zip(&docs) {
                let rec = OutputRecord {
                    text: d.text.clone(),
                    language: d.language.to_string(),
                    license: d.license.to_string(),
                    stars: n - p,
                    path: d.path.clone(),
                    repo: d.repo.clone(),
                };
                serde_json::to_writer(&mut *w, &rec)?;
                w.write_all(b"\n")?;
            }
        }
        if let Some(dir) = &parquet {
            let rows: Vec<SourceFile> = (lo..hi)
                .zip(&docs)
                .map(|(p, d)| {
                    let language = if d.language == "python" {
                        "Python"
                    } else {
                        "Rust"
                    };
                    let mut row = SourceFile::new(&d.path, &d.repo, language, &d.text);
                    row.licenses = vec![d.license.to_string()];
                    row.stars = Some(n - p);
                    row
                })
                .collect();
            let path = dir.join(format!("shard-{shard:05}.parquet"));
            let mut w = ShardWriter::create(&path, SchemaKind::StackV1, WriteOptions::default())?;
            w.write(&rows)?;
            w.finish()?;
        }
        text_bytes += docs.iter().map(|d| d.text.len() as u64).sum::<u64>();
        shard += 1;
        lo = hi;
    }
    if let Some(mut w) = jsonl_out {
        w.flush()?;
    }
    eprintln!(
        "wrote {n} files, {:.1} MB of text{}{}",
        text_bytes as f64 / 1e6,
        jsonl
            .map(|p| format!(", {}", p.display()))
            .unwrap_or_default(),
        parquet
            .map(|p| format!(", {shard} Parquet shard(s) in {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}
