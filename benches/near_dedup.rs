//! Near-dedup benchmarks, CPU first.
//!
//! * `shingling`: text -> shingle sets, MB/s of real Rust source per core.
//! * `minhash_signatures/<kernel>`: signatures of pre-shingled documents,
//!   shingle x permutation operations per second per core, per CPU kernel.
//! * `shingles+signatures`: both, one core, MB/s of source (the issue's
//!   >= 100 MB/s per core target).
//! * `lsh+cluster`: band hashes, band-record sort, candidate edges,
//!   verification, union-find and stars for 100,000 synthetic signatures
//!   (10% of them in families of near-copies); multiply by 10 for a million.
//! * `giant_cluster/<members>`: greedy stars of one component of 10k, 20k and
//!   40k shingle sets (one family of copies below a preferred chain of
//!   edited copies, one chain step per 50 members), exact Jaccard through the
//!   candidate index, and the all-pairs reference at 10k; the index's time
//!   should double with the size, one thread.
//!
//! The source corpus is up to 16 MB of `.rs` files from the local cargo
//! registry, picked by a hash of their paths. Run:
//! `cargo bench --bench near_dedup` (single-threaded groups run inside a
//! one-thread rayon pool so "per core" means one core).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::path::PathBuf;
use tritter_gpu::backends::cpu::{CpuBackend, MinhashKernel};
use tritter_gpu::backends::ops::{splitmix64, Permutations};
use tritter_gpu::backends::{Backend, BandLayout, ShingleBuffer};
use tritter_gpu::dedup::near::cluster::stars;
use tritter_gpu::dedup::near::lsh::BandRecord;
use tritter_gpu::dedup::near::shingle::Shingler;
use tritter_gpu::dedup::near::spill::ExternalSorter;
use tritter_gpu::dedup::near::star_index::exact_stars;
use tritter_gpu::dedup::near::store::SignatureStore;
use tritter_gpu::dedup::near::verify::Thresholds;
use tritter_gpu::dedup::near::{link_components, signature_stars, LshParams};
use tritter_gpu::rank::Preference;
use tritter_gpu::record::RecordId;

const NUM_PERM: usize = 256;

fn corpus(max_bytes: usize) -> Vec<String> {
    let root = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"))
        .join("registry/src");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(&root).unwrap().to_string_lossy().to_string();
                files.push((xxhash_rust::xxh3::xxh3_64(rel.as_bytes()), p));
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    let mut total = 0;
    for (_, p) in files {
        if total >= max_bytes {
            break;
        }
        if let Ok(t) = std::fs::read_to_string(&p) {
            if t.len() < 200_000 {
                total += t.len();
                out.push(t);
            }
        }
    }
    assert!(
        total > 1 << 20,
        "need real Rust sources under {}",
        root.display()
    );
    out
}

fn one_thread<T>(f: impl FnOnce() -> T + Send) -> T
where
    T: Send,
{
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(f)
}

fn bench_signatures(c: &mut Criterion) {
    let docs = corpus(16 << 20);
    let bytes: usize = docs.iter().map(|d| d.len()).sum();
    let perms = Permutations::new(NUM_PERM, 42);

    let mut g = c.benchmark_group("shingling");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    g.bench_function("word_5grams", |b| {
        let mut sh = Shingler::new(5);
        let mut out = Vec::new();
        b.iter(|| {
            out.clear();
            for d in &docs {
                sh.shingles(d, &mut out);
            }
            out.len()
        })
    });
    g.finish();

    let mut buf = ShingleBuffer::new();
    let mut sh = Shingler::new(5);
    let mut tmp = Vec::new();
    for d in &docs {
        tmp.clear();
        sh.shingles(d, &mut tmp);
        buf.push_doc(&tmp);
    }
    let shingles = buf.hashes.len() as u64;
    eprintln!(
        "corpus: {} files, {bytes} bytes, {shingles} distinct shingles ({:.1} bytes per shingle)",
        docs.len(),
        bytes as f64 / shingles as f64
    );
    let mut g = c.benchmark_group("minhash_signatures");
    g.throughput(Throughput::Elements(shingles * NUM_PERM as u64));
    g.sample_size(10);
    for k in MinhashKernel::ALL.into_iter().filter(|k| k.is_supported()) {
        let backend = CpuBackend::with_kernel(k).unwrap();
        g.bench_function(BenchmarkId::new("1 thread", k.name()), |b| {
            b.iter(|| one_thread(|| backend.minhash_signatures(buf.as_batch(), &perms).unwrap()))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("shingles+signatures");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    let backend = CpuBackend::new();
    let layout = BandLayout { bands: 28, rows: 9 };
    g.bench_function(BenchmarkId::new("1 thread", backend.kernel().name()), |b| {
        b.iter(|| {
            one_thread(|| {
                let mut sh = Shingler::new(5);
                let mut buf = ShingleBuffer::new();
                let mut tmp = Vec::new();
                let mut n = 0;
                for chunk in docs.chunks(512) {
                    buf.clear();
                    for d in chunk {
                        tmp.clear();
                        sh.shingles(d, &mut tmp);
                        buf.push_doc(&tmp);
                    }
                    let sigs = backend.minhash_signatures(buf.as_batch(), &perms).unwrap();
                    n += backend.band_hashes(&sigs, NUM_PERM, layout).unwrap().len();
                }
                n
            })
        })
    });
    g.finish();
}

/// `n` synthetic signatures: 90% random singletons, 10% in families of 2-5
/// copies of a base with 5-20% of positions redrawn.
fn synthetic_signatures(n: usize) -> (Vec<u32>, Vec<Preference>) {
    let mut s = 7u64;
    let mut sigs = Vec::with_capacity(n * NUM_PERM);
    let mut prefs = Vec::with_capacity(n);
    while prefs.len() < n {
        let base: Vec<u32> = (0..NUM_PERM).map(|_| splitmix64(&mut s) as u32).collect();
        let copies = if splitmix64(&mut s) % 100 < 4 {
            1 + (splitmix64(&mut s) % 4) as usize
        } else {
            0
        };
        sigs.extend_from_slice(&base);
        for _ in 0..copies {
            let redraw = 5 + splitmix64(&mut s) % 16;
            sigs.extend(base.iter().map(|&v| {
                if splitmix64(&mut s) % 100 < redraw {
                    splitmix64(&mut s) as u32
                } else {
                    v
                }
            }));
        }
        for _ in 0..=copies {
            let k = prefs.len() as u64;
            prefs.push(Preference {
                license_allowed: true,
                stars: splitmix64(&mut s) % 1000,
                tiebreak: splitmix64(&mut s),
                id: RecordId { shard: 0, row: k },
            });
        }
    }
    sigs.truncate(n * NUM_PERM);
    prefs.truncate(n);
    (sigs, prefs)
}

fn bench_lsh_cluster(c: &mut Criterion) {
    const N: usize = 100_000;
    let (sigs, prefs) = synthetic_signatures(N);
    let backend = CpuBackend::new();
    let params = LshParams::optimal(0.75, NUM_PERM);
    let layout = BandLayout {
        bands: params.bands,
        rows: params.rows,
    };
    let thresholds = Thresholds::new(0.75, NUM_PERM);
    let dir = tempfile::tempdir().unwrap();
    let mut g = c.benchmark_group("lsh+cluster");
    g.sample_size(10);
    g.throughput(Throughput::Elements(N as u64));
    for (label, memory) in [("in memory", 4u64 << 30), ("spilled (8 MiB)", 8 << 20)] {
        g.bench_function(BenchmarkId::new("100k docs", label), |b| {
            b.iter(|| {
                let mut store = SignatureStore::new(NUM_PERM, memory / 2, dir.path());
                store.append(&sigs).unwrap();
                store.seal().unwrap();
                let hashes = backend.band_hashes(&sigs, NUM_PERM, layout).unwrap();
                let mut bands = ExternalSorter::new(memory / 4, false, dir.path(), "bands");
                let bb = layout.bands as usize;
                for (d, hs) in hashes.chunks(bb).enumerate() {
                    for &h in hs {
                        bands.push(BandRecord::new(h, d as u32)).unwrap();
                    }
                }
                let linked =
                    link_components(&prefs, &store, bands, &thresholds, memory / 4, dir.path())
                        .unwrap();
                let stars = signature_stars(&linked.components, &store, &thresholds).unwrap();
                (linked.components.len(), stars.len())
            })
        });
    }
    g.finish();
}

/// One component of `n` sorted shingle sets in preference order: a chain
/// of `n / 50` sets, each a 20-token shift of the previous (neighbours at
/// Jaccard 0.8), then `n - n / 50` copies of the chain's first set with one
/// token of their own.
fn giant_component(n: usize) -> Vec<Vec<u32>> {
    let mut s = 13u64;
    let chain = n / 50;
    let tokens: Vec<u32> = (0..chain * 20 + 200)
        .map(|_| splitmix64(&mut s) as u32)
        .collect();
    let mut sets: Vec<Vec<u32>> = (0..chain)
        .map(|i| tokens[i * 20..i * 20 + 200].to_vec())
        .collect();
    // The chain in a shuffled preference order, as ties broken by hash are.
    for i in (1..sets.len()).rev() {
        let j = (splitmix64(&mut s) % (i as u64 + 1)) as usize;
        sets.swap(i, j);
    }
    for _ in chain..n {
        let mut v = tokens[..200].to_vec();
        v.push(splitmix64(&mut s) as u32);
        sets.push(v);
    }
    for v in &mut sets {
        v.sort_unstable();
        v.dedup();
    }
    sets
}

fn bench_giant_cluster(c: &mut Criterion) {
    let thresholds = Thresholds::new(0.75, NUM_PERM);
    let mut g = c.benchmark_group("giant_cluster");
    g.sample_size(10);
    for n in [10_000, 20_000, 40_000] {
        let sets = giant_component(n);
        let refs: Vec<&[u32]> = sets.iter().map(|v| v.as_slice()).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("indexed, 1 thread", n), |b| {
            b.iter(|| one_thread(|| exact_stars(&refs, &thresholds).len()))
        });
        if n == 10_000 {
            g.bench_function(BenchmarkId::new("all pairs, 1 thread", n), |b| {
                b.iter(|| {
                    one_thread(|| {
                        stars(refs.len(), |i, j| {
                            thresholds.member_passes_exact(refs[i], refs[j])
                        })
                        .len()
                    })
                })
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    bench_signatures,
    bench_lsh_cluster,
    bench_giant_cluster
);
criterion_main!(benches);
