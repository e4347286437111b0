//! Decontamination benchmarks: index build cost, and throughput of each part
//! of a check over real code (a sample of the Python standard library and of
//! the Rust crates in ~/.cargo/registry/src, read at bench time) with every
//! built-in benchmark of the benchmark directory loaded.
//!
//! `cargo bench --bench decontam`; per-core numbers with
//! `RAYON_NUM_THREADS=1 cargo bench --bench decontam`. The benchmark
//! directory is `$TRITTER_BENCHMARK_DIR`, else `../shared/benchmarks` next to
//! the repository. Results: benches/results/decontam.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tritter_gpu::backends::{select, BackendKind};
use tritter_gpu::decontam::exact::ExactScratch;
use tritter_gpu::decontam::ngram::NgramHasher;
use tritter_gpu::decontam::normalize;
use tritter_gpu::decontam::scan::Scanner;
use tritter_gpu::decontam::{DecontamConfig, Decontaminator};

fn bench_dir() -> Option<PathBuf> {
    let d = std::env::var_os("TRITTER_BENCHMARK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/benchmarks"))
        });
    d.is_dir().then_some(d)
}

fn collect(root: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

/// About `bytes` of real code: every 5th file of the Python standard library
/// and of the cargo registry, half each.
fn corpus(bytes: usize) -> Vec<String> {
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_default();
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    let mut out = Vec::new();
    for (root, ext) in [(py, "py"), (home.join(".cargo/registry/src"), "rs")] {
        let mut files = Vec::new();
        collect(&root, ext, &mut files);
        let mut total = 0;
        for p in files.iter().step_by(5) {
            let t = String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
            if t.len() > 500_000 {
                continue;
            }
            total += t.len();
            out.push(t);
            if total >= bytes / 2 {
                break;
            }
        }
    }
    out
}

fn config(dir: PathBuf) -> DecontamConfig {
    DecontamConfig {
        benchmark_dir: Some(dir),
        ..DecontamConfig::default()
    }
}

fn benches(c: &mut Criterion) {
    let Some(dir) = bench_dir() else {
        eprintln!("decontam bench skipped: no benchmark directory (set TRITTER_BENCHMARK_DIR)");
        return;
    };
    let (backend, _) = select(BackendKind::Cpu).expect("cpu backend");
    eprintln!("threads: {}", rayon::current_num_threads());

    let mut g = c.benchmark_group("decontam_build");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("all_builtin_benchmarks", |b| {
        b.iter(|| Decontaminator::build(&config(dir.clone()), backend.clone()).unwrap())
    });
    g.finish();

    let d = Decontaminator::build(&config(dir.clone()), backend.clone()).unwrap();
    eprintln!("{}", d.describe());
    let texts = corpus(16 << 20);
    let bytes: usize = texts.iter().map(String::len).sum();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    eprintln!(
        "corpus: {} files, {:.1} MB",
        texts.len(),
        bytes as f64 / 1e6
    );

    let mut g = c.benchmark_group("decontam_check");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(BenchmarkId::new("check_batch", "all_tiers"), |b| {
        b.iter(|| black_box(d.check_batch(&refs).unwrap()))
    });
    // The parts, single-threaded. What a check runs: the one-pass scan, the
    // exact search over its two forms, the filtered n-gram queries. Then the
    // reference functions the scan replaces, for comparison: both
    // normalisations, the exact tier from the text, all n-grams.
    g.bench_function(BenchmarkId::new("scan", "1_thread"), |b| {
        let mut sc = Scanner::new();
        b.iter(|| {
            let mut n = 0;
            for t in &refs {
                n += sc.scan(t).hashes.len();
            }
            black_box(n)
        })
    });
    g.bench_function(BenchmarkId::new("exact_search", "1_thread"), |b| {
        let mut sc = Scanner::new();
        let scanned: Vec<(Vec<u8>, Vec<u8>)> = refs
            .iter()
            .map(|t| {
                let s = sc.scan(t);
                (s.literal.clone(), s.code.clone())
            })
            .collect();
        b.iter(|| {
            let mut hits = 0;
            for (lit, code) in &scanned {
                hits += d.exact_index().find_forms(lit, code).len();
            }
            black_box(hits)
        })
    });
    g.bench_function(BenchmarkId::new("ngram_filtered", "1_thread"), |b| {
        let mut sc = Scanner::new();
        let mut h = NgramHasher::new(d.ngram_index().params.n);
        let mut q = Vec::new();
        b.iter(|| {
            q.clear();
            for t in &refs {
                let s = sc.scan(t);
                h.filtered_distinct_into(s, d.ngram_index().filter(), &mut q);
            }
            black_box(q.len())
        })
    });
    g.bench_function(BenchmarkId::new("exact_tier", "1_thread"), |b| {
        let mut s = ExactScratch::default();
        b.iter(|| {
            let mut hits = 0;
            for t in &refs {
                hits += d.exact_index().find(t, &mut s).len();
            }
            black_box(hits)
        })
    });
    g.bench_function(BenchmarkId::new("exact_normalize", "1_thread"), |b| {
        let mut lit = Vec::new();
        let mut code = Vec::new();
        b.iter(|| {
            for t in &refs {
                lit.clear();
                code.clear();
                normalize::literal_into(t, &mut lit);
                normalize::code_into(t, &mut code);
            }
            black_box(lit.len() + code.len())
        })
    });
    // All n-grams, unfiltered (the reference `NgramHasher::distinct_into`).
    g.bench_function(BenchmarkId::new("ngram_hashes", "1_thread"), |b| {
        let mut h = NgramHasher::new(d.ngram_index().params.n);
        let mut q = Vec::new();
        b.iter(|| {
            q.clear();
            for t in &refs {
                h.distinct_into(t, &mut q);
            }
            black_box(q.len())
        })
    });
    g.finish();

    let mut h = NgramHasher::new(d.ngram_index().params.n);
    let mut queries = Vec::new();
    for t in &refs {
        h.distinct_into(t, &mut queries);
    }
    let mut g = c.benchmark_group("ngram_membership");
    g.sample_size(10);
    g.throughput(Throughput::Elements(queries.len() as u64));
    g.bench_function(BenchmarkId::new("cpu", queries.len()), |b| {
        b.iter(|| {
            black_box(
                backend
                    .ngram_membership(&queries, d.ngram_index().table())
                    .unwrap(),
            )
        })
    });
    g.finish();
}

criterion_group!(decontam, benches);
criterion_main!(decontam);
