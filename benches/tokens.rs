//! Token counting throughput on real code: the Python standard library's
//! `.py` files (from the Python that runs `python3`, else skipped with a
//! message), read at bench time.
//!
//! Groups (throughput in bytes of text, one thread; elements are tokens):
//! * `count_cl100k_base`, `count_o200k_base`: `Tokenizer::count` over the
//!   corpus, the cost of `--tokens exact` per core;
//! * `estimate_1pct`: `--tokens estimate` at the default 1 % rate (hashing
//!   every text, tokenising the sample).
//!
//! Run: `cargo bench --bench tokens`; `TRITTER_BENCH_MB` caps the corpus
//! (default 8 MB).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tritter_gpu::tokens::count::{TokensConfig, DEFAULT_SAMPLE_RATE};
use tritter_gpu::tokens::{TokenizerSpec, TokensMode};

fn stdlib() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "py") {
            out.push(p);
        }
    }
}

fn corpus(cap: usize) -> Vec<String> {
    let Some(root) = stdlib() else {
        return Vec::new();
    };
    let mut files = Vec::new();
    collect(&root, &mut files);
    files.sort();
    let mut out = Vec::new();
    let mut total = 0;
    for f in files {
        if let Ok(t) = std::fs::read_to_string(&f) {
            total += t.len();
            out.push(t);
            if total >= cap {
                break;
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let mb: usize = std::env::var("TRITTER_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let texts = corpus(mb << 20);
    if texts.is_empty() {
        eprintln!("SKIP: no Python standard library found (python3 -c 'import sysconfig')");
        return;
    }
    let bytes: u64 = texts.iter().map(|t| t.len() as u64).sum();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut g = c.benchmark_group("tokens");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(bytes));
    for (name, spec) in [
        ("count_cl100k_base", TokenizerSpec::Cl100kBase),
        ("count_o200k_base", TokenizerSpec::O200kBase),
    ] {
        let tok = spec.load().unwrap();
        let tokens: u64 = texts.iter().map(|t| tok.count(t).unwrap()).sum();
        eprintln!(
            "{name}: {bytes} bytes, {tokens} tokens in {} files",
            texts.len()
        );
        g.bench_function(name, |b| {
            b.iter(|| {
                texts
                    .iter()
                    .map(|t| tok.count(black_box(t)).unwrap())
                    .sum::<u64>()
            })
        });
    }
    let est = TokensConfig {
        tokenizer: TokenizerSpec::Cl100kBase,
        mode: TokensMode::Estimate,
        sample_rate: DEFAULT_SAMPLE_RATE,
    }
    .counter()
    .unwrap()
    .unwrap();
    g.bench_function("estimate_1pct", |b| {
        b.iter(|| pool.install(|| est.tally(black_box(&texts)).unwrap().finish()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
