//! Criterion groups comparing the backends on identical batches, one group
//! per op (STYLE.md: bench group = op name), the CPU first.
//!
//! ```text
//! cargo bench --bench backends                      # all groups, every backend present
//! cargo bench --bench backends -- minhash_signatures/cpu
//! TRITTER_BENCH_SCALE=16 cargo bench --bench backends   # 16x larger batches (GPU runs)
//! ```
//!
//! Inputs are seeded and identical for every backend. A backend that is not
//! available (no CUDA driver, no Vulkan adapter) is skipped with a printed
//! reason. wgpu here may be Mesa's lavapipe, which runs the shaders on the
//! CPU: its numbers measure an emulation, not a GPU.
//!
//! Throughput units: `minhash_signatures` and `signatures_and_bands` count
//! shingle x permutation pairs (elements) and, on real code, source bytes; `band_hashes` counts
//! documents; `ngram_membership` counts queries.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use tritter_gpu::backends::ops::{splitmix64, BandLayout, NgramTable, Permutations, ShingleBuffer};
use tritter_gpu::backends::{cpu::CpuBackend, cuda::CudaBackend, wgpu::WgpuBackend, Backend};

/// The backends present on this machine, CPU first, with skip notes printed.
fn backends() -> Vec<(&'static str, Arc<dyn Backend>)> {
    let mut v: Vec<(&'static str, Arc<dyn Backend>)> = vec![("cpu", Arc::new(CpuBackend::new()))];
    match WgpuBackend::new(true) {
        Ok(b) => {
            eprintln!("wgpu: {}", b.describe());
            v.push(("wgpu", Arc::new(b)));
        }
        Err(e) => eprintln!("wgpu skipped: {e:#}"),
    }
    match CudaBackend::new() {
        Ok(b) => {
            eprintln!("cuda: {}", b.describe());
            v.push(("cuda", Arc::new(b)));
        }
        Err(e) => eprintln!("cuda skipped: {e:#}"),
    }
    for (_, b) in &v {
        eprintln!("backend: {}", b.describe());
    }
    v
}

fn scale() -> usize {
    std::env::var("TRITTER_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// A synthetic batch shaped like source files: 2000 x scale documents of
/// roughly log-uniform length between 8 and 8192 shingles (mean about 1200).
fn synthetic_batch(scale: usize) -> ShingleBuffer {
    let mut s = 0xB3_4C_u64;
    let mut buf = ShingleBuffer::new();
    let mut doc = Vec::new();
    for _ in 0..2000 * scale {
        let bits = 3 + splitmix64(&mut s) % 11;
        let n = (1usize << bits) + (splitmix64(&mut s) % (1 << bits)) as usize / 2;
        doc.clear();
        doc.extend((0..n).map(|_| splitmix64(&mut s) as u32));
        buf.push_doc(&doc);
    }
    buf
}

/// Real code: Rust sources from the local cargo registry, word 5-grams
/// hashed with xxh3 and truncated to u32. Returns the batch and the bytes of
/// source it came from.
fn real_code_batch(max_bytes: usize) -> Option<(ShingleBuffer, usize)> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")))?;
    let mut stack = vec![home.join("registry/src")];
    let mut buf = ShingleBuffer::new();
    let mut bytes = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        for p in entries.into_iter().rev() {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let Ok(text) = std::fs::read_to_string(&p) else {
                    continue;
                };
                let words: Vec<&str> = text.split_whitespace().collect();
                let sh: Vec<u32> = words
                    .windows(5)
                    .map(|w| xxhash_rust::xxh3::xxh3_64(w.join(" ").as_bytes()) as u32)
                    .collect();
                buf.push_doc(&sh);
                bytes += text.len();
                if bytes >= max_bytes {
                    return Some((buf, bytes));
                }
            }
        }
    }
    (buf.docs() > 0).then_some((buf, bytes))
}

fn configure(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
}

fn minhash_signatures(c: &mut Criterion) {
    let all = backends();
    let buf = synthetic_batch(scale());
    for num_perm in [128usize, 256] {
        let perms = Permutations::new(num_perm, 1);
        let mut g = c.benchmark_group("minhash_signatures");
        configure(&mut g);
        g.throughput(Throughput::Elements((buf.hashes.len() * num_perm) as u64));
        for (name, b) in &all {
            g.bench_with_input(
                BenchmarkId::new(*name, format!("synthetic/{num_perm}")),
                &(),
                |bch, _| {
                    bch.iter(|| black_box(b.minhash_signatures(buf.as_batch(), &perms).unwrap()))
                },
            );
        }
        g.finish();
    }
    if let Some((real, bytes)) = real_code_batch(32 << 20) {
        eprintln!(
            "real code: {} files, {} bytes, {} shingles",
            real.docs(),
            bytes,
            real.hashes.len()
        );
        let perms = Permutations::new(128, 1);
        let mut g = c.benchmark_group("minhash_signatures");
        configure(&mut g);
        g.throughput(Throughput::Bytes(bytes as u64));
        for (name, b) in &all {
            g.bench_with_input(BenchmarkId::new(*name, "real_code/128"), &(), |bch, _| {
                bch.iter(|| black_box(b.minhash_signatures(real.as_batch(), &perms).unwrap()))
            });
        }
        g.finish();
    }
}

/// The fused call at the pipeline's defaults (256 permutations, 28 x 9
/// bands): what near dedup asks per batch. Throughput in shingle x
/// permutation pairs, as `minhash_signatures/synthetic/256`, so the two read
/// side by side (the difference is the band hashing and, on GPUs, the
/// signature round trip it saves).
fn signatures_and_bands(c: &mut Criterion) {
    let all = backends();
    let buf = synthetic_batch(scale());
    let perms = Permutations::new(256, 1);
    let layout = BandLayout { bands: 28, rows: 9 };
    let mut g = c.benchmark_group("signatures_and_bands");
    configure(&mut g);
    g.throughput(Throughput::Elements((buf.hashes.len() * 256) as u64));
    for (name, b) in &all {
        g.bench_with_input(
            BenchmarkId::new(*name, "synthetic/256/28x9"),
            &(),
            |bch, _| {
                bch.iter(|| {
                    black_box(
                        b.signatures_and_bands(buf.as_batch(), &perms, layout)
                            .unwrap(),
                    )
                })
            },
        );
    }
    g.finish();
}

fn band_hashes(c: &mut Criterion) {
    let all = backends();
    let num_perm = 128usize;
    let docs = 100_000 * scale();
    let mut s = 7u64;
    let sigs: Vec<u32> = (0..docs * num_perm)
        .map(|_| splitmix64(&mut s) as u32)
        .collect();
    let layout = BandLayout { bands: 16, rows: 8 };
    let mut g = c.benchmark_group("band_hashes");
    configure(&mut g);
    g.throughput(Throughput::Elements(docs as u64));
    for (name, b) in &all {
        g.bench_with_input(BenchmarkId::new(*name, "128/16x8"), &(), |bch, _| {
            bch.iter(|| black_box(b.band_hashes(&sigs, num_perm, layout).unwrap()))
        });
    }
    g.finish();
}

fn ngram_membership(c: &mut Criterion) {
    let all = backends();
    let mut s = 11u64;
    // About the n-gram count of HumanEval + MBPP + a few other benchmarks.
    let table = NgramTable::new((0..1_000_000).map(|_| splitmix64(&mut s)).collect());
    let n_q = 2_000_000 * scale();
    let queries: Vec<u64> = (0..n_q)
        .map(|i| {
            if i % 50 == 0 {
                table.keys()[(splitmix64(&mut s) % table.len() as u64) as usize]
            } else {
                splitmix64(&mut s)
            }
        })
        .collect();
    let mut g = c.benchmark_group("ngram_membership");
    configure(&mut g);
    g.throughput(Throughput::Elements(n_q as u64));
    for (name, b) in &all {
        g.bench_with_input(BenchmarkId::new(*name, "1M_keys"), &(), |bch, _| {
            bch.iter(|| black_box(b.ngram_membership(&queries, &table).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    minhash_signatures,
    signatures_and_bands,
    band_hashes,
    ngram_membership
);
criterion_main!(benches);
