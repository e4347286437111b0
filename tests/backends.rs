//! Every backend against the scalar reference of `src/backends/ops.rs`, bit
//! for bit.
//!
//! `backend_test!(body, name_cpu, name_cuda, name_wgpu)` expands one test body
//! into three tests, one per backend (as candle's `test_device!`). A backend
//! whose device is missing is skipped with a line on stderr that says why
//! (written past the test harness's capture, so it shows in `cargo test`'s
//! output). Setting `TRITTER_REQUIRE_BACKENDS=cuda` (or `wgpu`, or
//! `cuda,wgpu`) turns those skips into failures: CI sets `wgpu` so that a
//! broken lavapipe install cannot pass silently, and a GPU machine sets
//! `cuda`.
//!
//! Each GPU backend is tested twice: with its default batch limits, and with
//! tiny ones (5 shingles per task, 97 shingles per sub-batch, ...) so that
//! task splits, sub-batch splits, documents spanning sub-batches and the
//! two-deep pipelining are all exercised on small inputs.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use tritter_gpu::backends::ops::{
    self, splitmix64, BandLayout, NgramTable, Permutations, ShingleBatch, ShingleBuffer, NGRAM_MISS,
};
use tritter_gpu::backends::plan::BatchLimits;
use tritter_gpu::backends::{self, cpu::CpuBackend, cuda::CudaBackend, wgpu::WgpuBackend};
use tritter_gpu::backends::{Backend, BackendKind};

// ---------------------------------------------------------------- harness

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Device {
    Cpu,
    Cuda,
    Wgpu,
}

impl Device {
    fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::Wgpu => "wgpu",
        }
    }
}

/// The backends under test on one device: default limits and tiny limits.
struct Under {
    default: Arc<dyn Backend>,
    tiny: Arc<dyn Backend>,
}

impl Under {
    fn both(&self) -> [(&'static str, &dyn Backend); 2] {
        [("default", &*self.default), ("tiny", &*self.tiny)]
    }
}

fn tiny_limits() -> BatchLimits {
    BatchLimits {
        shingles_per_task: 5,
        max_shingles: 97,
        max_tasks: 11,
        max_outputs: 600,
    }
}

fn open(device: Device) -> &'static Result<Under, String> {
    static CPU: OnceLock<Result<Under, String>> = OnceLock::new();
    static CUDA: OnceLock<Result<Under, String>> = OnceLock::new();
    static WGPU: OnceLock<Result<Under, String>> = OnceLock::new();
    let e = |e: anyhow::Error| format!("{e:#}");
    match device {
        Device::Cpu => CPU.get_or_init(|| {
            let b: Arc<dyn Backend> = Arc::new(CpuBackend::new());
            Ok(Under {
                default: b.clone(),
                tiny: b,
            })
        }),
        Device::Cuda => CUDA.get_or_init(|| {
            Ok(Under {
                default: Arc::new(CudaBackend::new().map_err(e)?),
                tiny: Arc::new(CudaBackend::with_limits(tiny_limits()).map_err(e)?),
            })
        }),
        Device::Wgpu => WGPU.get_or_init(|| {
            Ok(Under {
                default: Arc::new(WgpuBackend::new(true).map_err(e)?),
                tiny: Arc::new(WgpuBackend::with_limits(true, tiny_limits()).map_err(e)?),
            })
        }),
    }
}

fn required(device: Device) -> bool {
    std::env::var("TRITTER_REQUIRE_BACKENDS")
        .map(|v| v.split(',').any(|s| s.trim() == device.name()))
        .unwrap_or(false)
}

/// Prints past the test harness's output capture.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn with_backend(device: Device, test: &str, body: fn(&Under)) {
    match open(device) {
        Ok(u) => body(u),
        // A device that is there but fails (a shader that does not compile,
        // a kernel the driver rejects) is a bug, not a skip. Absence errors
        // are the ones that begin "no " ("no CUDA driver ...", "no hardware
        // GPU adapter ...").
        Err(reason) if !reason.starts_with("no ") => {
            panic!("{test}: backend {} failed to open: {reason}", device.name())
        }
        Err(reason) if required(device) => panic!(
            "{test}: backend {} is required by TRITTER_REQUIRE_BACKENDS but unavailable: {reason}",
            device.name()
        ),
        Err(reason) => say(&format!(
            "SKIPPED {test}: {} unavailable: {reason}",
            device.name()
        )),
    }
}

macro_rules! backend_test {
    ($body:ident, $cpu:ident, $cuda:ident, $wgpu:ident) => {
        #[test]
        fn $cpu() {
            with_backend(Device::Cpu, stringify!($cpu), $body)
        }
        #[test]
        fn $cuda() {
            with_backend(Device::Cuda, stringify!($cuda), $body)
        }
        #[test]
        fn $wgpu() {
            with_backend(Device::Wgpu, stringify!($wgpu), $body)
        }
    };
}

// ------------------------------------------------------------- references

/// The reference signatures: `ops::minhash_signature` per document.
fn ref_signatures(batch: ShingleBatch<'_>, perms: &Permutations) -> Vec<u32> {
    let n = perms.len();
    let mut out = vec![0u32; batch.docs() * n];
    for d in 0..batch.docs() {
        ops::minhash_signature(batch.doc(d), perms, &mut out[d * n..(d + 1) * n]);
    }
    out
}

fn ref_bands(sigs: &[u32], num_perm: usize, layout: BandLayout) -> Vec<u64> {
    let docs = sigs.len() / num_perm;
    let b = layout.bands as usize;
    let mut out = vec![0u64; docs * b];
    for d in 0..docs {
        ops::band_hashes_of(
            &sigs[d * num_perm..(d + 1) * num_perm],
            layout,
            &mut out[d * b..(d + 1) * b],
        );
    }
    out
}

fn ref_ngram(queries: &[u64], table: &NgramTable) -> Vec<u32> {
    queries
        .iter()
        .map(|&q| ops::ngram_lookup(q, table.keys()))
        .collect()
}

/// Seeded random source (splitmix64, the reference's own seeder).
struct Rng(u64);

impl Rng {
    fn u64(&mut self) -> u64 {
        splitmix64(&mut self.0)
    }
    fn u32(&mut self) -> u32 {
        (self.u64() >> 16) as u32
    }
    fn below(&mut self, n: usize) -> usize {
        (self.u64() % n as u64) as usize
    }
    /// A shingle hash, sometimes an extreme value.
    fn shingle(&mut self) -> u32 {
        match self.below(50) {
            0 => 0,
            1 => u32::MAX,
            _ => self.u32(),
        }
    }
}

fn random_batch(rng: &mut Rng, sizes: &[usize]) -> ShingleBuffer {
    let mut buf = ShingleBuffer::new();
    for &n in sizes {
        let doc: Vec<u32> = (0..n).map(|_| rng.shingle()).collect();
        buf.push_doc(&doc);
    }
    buf
}

/// Compares exactly, reporting the first differing index.
fn assert_same<T: PartialEq + std::fmt::Debug>(what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!(
            "{what}: first difference at {i}: got {:?}, want {:?}",
            got[i], want[i]
        );
    }
}

// ------------------------------------------------------------- signatures

/// Document sizes around every boundary the backends have: the CUDA tile
/// (1024) and task (4096), the wgpu tile (256) and task (2048), workgroup
/// sizes, plus random sizes and empty documents between them.
fn boundary_sizes(rng: &mut Rng) -> Vec<usize> {
    let mut sizes = vec![
        0, 1, 2, 0, 31, 32, 33, 63, 64, 65, 255, 256, 257, 0, 0, 1023, 1024, 1025, 2047, 2048,
        2049, 4095, 4096, 4097, 9000, 0,
    ];
    for _ in 0..40 {
        sizes.push(rng.below(600));
    }
    sizes
}

fn signatures_on_random_batches(u: &Under) {
    let mut rng = Rng(0x5157_0001);
    let sizes = boundary_sizes(&mut rng);
    let buf = random_batch(&mut rng, &sizes);
    for num_perm in [1usize, 7, 64, 100, 128, 129, 256, 257] {
        let perms = Permutations::new(num_perm, 42 + num_perm as u64);
        let want = ref_signatures(buf.as_batch(), &perms);
        let got = u
            .default
            .minhash_signatures(buf.as_batch(), &perms)
            .unwrap();
        assert_same(&format!("{num_perm} permutations"), &got, &want);
    }
    // Tiny limits on a smaller batch (hundreds of sub-batches).
    let small: Vec<usize> = sizes.iter().map(|&s| s.min(300)).take(40).collect();
    let buf = random_batch(&mut rng, &small);
    for num_perm in [1usize, 7, 65, 130] {
        let perms = Permutations::new(num_perm, 7);
        let want = ref_signatures(buf.as_batch(), &perms);
        let got = u.tiny.minhash_signatures(buf.as_batch(), &perms).unwrap();
        assert_same(
            &format!("tiny limits, {num_perm} permutations"),
            &got,
            &want,
        );
    }
}
backend_test!(
    signatures_on_random_batches,
    signatures_on_random_batches_cpu,
    signatures_on_random_batches_cuda,
    signatures_on_random_batches_wgpu
);

fn signatures_of_edge_batches(u: &Under) {
    let perms = Permutations::new(100, 3);
    for (name, b) in u.both() {
        // No documents at all, with and without the leading offset.
        let empty = ShingleBuffer::new();
        assert!(b
            .minhash_signatures(empty.as_batch(), &perms)
            .unwrap()
            .is_empty());
        let none = ShingleBatch {
            hashes: &[],
            offsets: &[],
        };
        assert!(b.minhash_signatures(none, &perms).unwrap().is_empty());
        // Only empty documents: all u32::MAX.
        let mut blanks = ShingleBuffer::new();
        for _ in 0..5 {
            blanks.push_doc(&[]);
        }
        let got = b.minhash_signatures(blanks.as_batch(), &perms).unwrap();
        assert_same(name, &got, &vec![u32::MAX; 500]);
        // One shingle, and the extreme shingle values.
        let mut ones = ShingleBuffer::new();
        for x in [0u32, 1, u32::MAX, 0x8000_0000] {
            ones.push_doc(&[x]);
        }
        let got = b.minhash_signatures(ones.as_batch(), &perms).unwrap();
        assert_same(name, &got, &ref_signatures(ones.as_batch(), &perms));
        // Offsets that do not start at zero: hashes before them are unused.
        let hashes: Vec<u32> = (0..50u32).map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
        let offs = [10u32, 10, 20, 49];
        let batch = ShingleBatch {
            hashes: &hashes,
            offsets: &offs,
        };
        let got = b.minhash_signatures(batch, &perms).unwrap();
        assert_same(name, &got, &ref_signatures(batch, &perms));
        // No permutations: an empty signature per document.
        let none = Permutations::new(0, 1);
        assert!(b
            .minhash_signatures(ones.as_batch(), &none)
            .unwrap()
            .is_empty());
    }
}
backend_test!(
    signatures_of_edge_batches,
    signatures_of_edge_batches_cpu,
    signatures_of_edge_batches_cuda,
    signatures_of_edge_batches_wgpu
);

/// DETERMINISM: a batch's signatures are the concatenation of its halves'.
fn signatures_do_not_depend_on_batch_split(u: &Under) {
    let mut rng = Rng(99);
    let sizes: Vec<usize> = (0..30).map(|_| rng.below(3000)).collect();
    let buf = random_batch(&mut rng, &sizes);
    let perms = Permutations::new(128, 5);
    let whole = u
        .default
        .minhash_signatures(buf.as_batch(), &perms)
        .unwrap();
    let mut halves = Vec::new();
    for part in [&sizes[..13], &sizes[13..]] {
        let mut b = ShingleBuffer::new();
        let mut at = if part.len() == 13 {
            0
        } else {
            sizes[..13].iter().sum()
        };
        for &n in part {
            b.push_doc(&buf.hashes[at..at + n]);
            at += n;
        }
        halves.extend(u.default.minhash_signatures(b.as_batch(), &perms).unwrap());
    }
    assert_same("halves", &halves, &whole);
    let tiny = u.tiny.minhash_signatures(buf.as_batch(), &perms).unwrap();
    assert_same("tiny limits", &tiny, &whole);
}
backend_test!(
    signatures_do_not_depend_on_batch_split,
    signatures_do_not_depend_on_batch_split_cpu,
    signatures_do_not_depend_on_batch_split_cuda,
    signatures_do_not_depend_on_batch_split_wgpu
);

// ------------------------------------------------------------ band hashes

fn band_hashes_on_random_signatures(u: &Under) {
    let mut rng = Rng(0xBA4D);
    for num_perm in [1usize, 16, 128, 130, 256] {
        for docs in [0usize, 1, 3, 1000] {
            let sigs: Vec<u32> = (0..docs * num_perm).map(|_| rng.shingle()).collect();
            let mut layouts = vec![(0, 5), (1, 1), (3, 0)];
            for (b, r) in [
                (16, 8),
                (20, 5),
                (32, 4),
                (9, 13),
                (128, 1),
                (1, 128),
                (2, 65),
            ] {
                if b * r <= num_perm as u32 {
                    layouts.push((b, r));
                }
            }
            layouts.push((num_perm as u32, 1));
            for (bands, rows) in layouts {
                let layout = BandLayout { bands, rows };
                let want = ref_bands(&sigs, num_perm, layout);
                for (name, b) in u.both() {
                    let got = b.band_hashes(&sigs, num_perm, layout).unwrap();
                    assert_same(
                        &format!("{name}: {docs} docs, {num_perm} perms, {bands}x{rows}"),
                        &got,
                        &want,
                    );
                }
            }
        }
    }
}
backend_test!(
    band_hashes_on_random_signatures,
    band_hashes_on_random_signatures_cpu,
    band_hashes_on_random_signatures_cuda,
    band_hashes_on_random_signatures_wgpu
);

fn band_hashes_reject_bad_layouts(u: &Under) {
    let sigs = vec![1u32; 64];
    for (_, b) in u.both() {
        // More bands x rows than permutations.
        assert!(b
            .band_hashes(&sigs, 16, BandLayout { bands: 5, rows: 4 })
            .is_err());
        // A buffer that is not whole signatures.
        assert!(b
            .band_hashes(&sigs[..60], 16, BandLayout { bands: 4, rows: 4 })
            .is_err());
        // Zero permutations.
        assert!(b
            .band_hashes(&sigs, 0, BandLayout { bands: 0, rows: 0 })
            .is_err());
    }
}
backend_test!(
    band_hashes_reject_bad_layouts,
    band_hashes_reject_bad_layouts_cpu,
    band_hashes_reject_bad_layouts_cuda,
    band_hashes_reject_bad_layouts_wgpu
);

// ---------------------------------------------------------- n-gram lookup

fn random_table(rng: &mut Rng, n: usize) -> NgramTable {
    let mut keys: Vec<u64> = (0..n).map(|_| rng.u64()).collect();
    if n > 4 {
        // Keys that differ only in the low word, or only in the high word,
        // and the extremes: the cases a (lo, hi) comparison can get wrong.
        let k = keys[0];
        keys.extend([k ^ 1, k ^ (1 << 32), 0, u64::MAX, 1 << 32, (1 << 32) - 1]);
    }
    NgramTable::new(keys)
}

fn queries_for(rng: &mut Rng, table: &NgramTable, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| {
            if table.is_empty() || rng.below(2) == 0 {
                return rng.u64();
            }
            let k = table.keys()[rng.below(table.len())];
            match rng.below(4) {
                0 => k.wrapping_add(1),
                1 => k.wrapping_sub(1),
                2 => k ^ (1 << 32),
                _ => k,
            }
        })
        .collect()
}

fn ngram_membership_on_random_tables(u: &Under) {
    let mut rng = Rng(0x4E47);
    for n_keys in [0usize, 1, 2, 7, 1000, 100_000] {
        let table = random_table(&mut rng, n_keys);
        for n_q in [0usize, 1, 63, 64, 65, 5000] {
            let q = queries_for(&mut rng, &table, n_q);
            let want = ref_ngram(&q, &table);
            for (name, b) in u.both() {
                let got = b.ngram_membership(&q, &table).unwrap();
                assert_same(
                    &format!("{name}: {n_keys} keys, {n_q} queries"),
                    &got,
                    &want,
                );
            }
        }
    }
}
backend_test!(
    ngram_membership_on_random_tables,
    ngram_membership_on_random_tables_cpu,
    ngram_membership_on_random_tables_cuda,
    ngram_membership_on_random_tables_wgpu
);

/// The GPU backends cache the uploaded table by generation: alternating
/// tables must never answer from the wrong one.
fn ngram_table_cache_follows_generation(u: &Under) {
    let mut rng = Rng(12);
    let t1 = random_table(&mut rng, 500);
    let t2 = random_table(&mut rng, 700);
    let q: Vec<u64> = t1.keys().iter().chain(t2.keys()).copied().collect();
    for t in [&t1, &t2, &t1, &t2] {
        let got = u.default.ngram_membership(&q, t).unwrap();
        assert_same("alternating tables", &got, &ref_ngram(&q, t));
        assert!(got.iter().any(|&i| i != NGRAM_MISS));
    }
}
backend_test!(
    ngram_table_cache_follows_generation,
    ngram_table_cache_follows_generation_cpu,
    ngram_table_cache_follows_generation_cuda,
    ngram_table_cache_follows_generation_wgpu
);

// -------------------------------------------------------------- real code

/// Up to `max_files` Rust sources from the local cargo registry, in a fixed
/// order, as (path, text).
fn registry_sources(max_files: usize) -> Vec<(String, String)> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo")));
    let Some(root) = home.map(|h| h.join("registry/src")) else {
        return Vec::new();
    };
    let mut stack = vec![root];
    let mut files = Vec::new();
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
                files.push(p);
            }
        }
        if files.len() >= max_files * 4 {
            break;
        }
    }
    files
        .into_iter()
        .filter_map(|p| Some((p.display().to_string(), std::fs::read_to_string(&p).ok()?)))
        .take(max_files)
        .collect()
}

/// Word 5-gram shingles, hashed with xxh3 and truncated to u32 (the kernels
/// see only u32 hashes; the real shingling belongs to near-dedup).
fn shingles(text: &str) -> Vec<u32> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(5)
        .map(|w| xxhash_rust::xxh3::xxh3_64(w.join(" ").as_bytes()) as u32)
        .collect()
}

fn ngrams64(text: &str) -> Vec<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(5)
        .map(|w| xxhash_rust::xxh3::xxh3_64(w.join(" ").as_bytes()))
        .collect()
}

/// Python standard-library sources (the GPU machines have Python but no
/// cargo registry), in a fixed order.
fn python_sources(max_files: usize) -> Vec<(String, String)> {
    let Ok(o) = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
    else {
        return Vec::new();
    };
    let dir = std::path::PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| Some((p.display().to_string(), std::fs::read_to_string(&p).ok()?)))
        .take(max_files)
        .collect()
}

fn real_code_matches_the_reference(u: &Under) {
    let mut files = registry_sources(400);
    if files.len() < 50 {
        files = python_sources(400);
    }
    if files.len() < 50 {
        say(&format!(
            "SKIPPED real-code check: only {} registry or Python sources found",
            files.len()
        ));
        return;
    }
    let mut buf = ShingleBuffer::new();
    for (_, text) in &files {
        buf.push_doc(&shingles(text));
    }
    let perms = Permutations::new(128, 0x7472_6974);
    let want = ref_signatures(buf.as_batch(), &perms);
    let got = u
        .default
        .minhash_signatures(buf.as_batch(), &perms)
        .unwrap();
    assert_same("real code signatures", &got, &want);
    let layout = BandLayout { bands: 16, rows: 8 };
    let bands = u.default.band_hashes(&got, 128, layout).unwrap();
    assert_same("real code bands", &bands, &ref_bands(&want, 128, layout));
    // n-grams of the first half of the files as the "benchmark" table, and
    // every n-gram of all files as queries: hits and misses on real text.
    let table = NgramTable::new(
        files[..files.len() / 2]
            .iter()
            .flat_map(|(_, t)| ngrams64(t))
            .collect(),
    );
    let queries: Vec<u64> = files.iter().flat_map(|(_, t)| ngrams64(t)).collect();
    let hits = u.default.ngram_membership(&queries, &table).unwrap();
    let want_hits = ref_ngram(&queries, &table);
    assert_same("real code n-grams", &hits, &want_hits);
    assert!(want_hits.contains(&NGRAM_MISS));
    assert!(want_hits.iter().any(|&h| h != NGRAM_MISS));
}
backend_test!(
    real_code_matches_the_reference,
    real_code_matches_the_reference_cpu,
    real_code_matches_the_reference_cuda,
    real_code_matches_the_reference_wgpu
);

// ------------------------------------------------------ GPU-only checks

/// A malformed batch is an error on the GPU backends, never a panic (the
/// CPU reference indexes the hashes directly and is not tested here).
fn malformed_batches_are_errors(u: &Under) {
    let hashes = [1u32, 2, 3];
    let perms = Permutations::new(8, 1);
    for (_, b) in u.both() {
        for offsets in [&[0u32, 2, 1][..], &[0, 5][..]] {
            let batch = ShingleBatch {
                hashes: &hashes,
                offsets,
            };
            assert!(b.minhash_signatures(batch, &perms).is_err());
        }
    }
}

#[test]
fn malformed_batches_are_errors_cuda() {
    with_backend(
        Device::Cuda,
        "malformed_batches_are_errors_cuda",
        malformed_batches_are_errors,
    )
}

#[test]
fn malformed_batches_are_errors_wgpu() {
    with_backend(
        Device::Wgpu,
        "malformed_batches_are_errors_wgpu",
        malformed_batches_are_errors,
    )
}

// -------------------------------------------------------------- selection

#[test]
fn explicit_cuda_without_a_gpu_is_a_clear_error() {
    match CudaBackend::new() {
        Ok(b) => {
            say(&format!("CUDA present: {}", b.describe()));
            let (sel, _) = backends::select(BackendKind::Cuda).unwrap();
            assert_eq!(sel.kind(), BackendKind::Cuda);
        }
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(
                msg.contains("CUDA") || msg.contains("NVRTC"),
                "unclear error: {msg}"
            );
            let err = match backends::select(BackendKind::Cuda) {
                Ok(_) => panic!("select(cuda) succeeded although CudaBackend::new failed"),
                Err(e) => format!("{e:#}"),
            };
            assert!(err.contains(&msg), "{err} does not carry {msg}");
            say(&format!("cuda correctly unavailable here: {msg}"));
        }
    }
}

#[test]
fn auto_never_panics_and_explains_its_choice() {
    let (b, notes) = backends::select(BackendKind::Auto).unwrap();
    say(&backends::describe_choice(&*b, &notes));
    if std::env::var_os(backends::BACKEND_ENV).is_some() {
        assert!(notes.iter().any(|n| n.contains(backends::BACKEND_ENV)));
        return;
    }
    match b.kind() {
        BackendKind::Cuda => assert!(notes.is_empty()),
        BackendKind::Wgpu => assert!(notes.iter().any(|n| n.starts_with("cuda"))),
        BackendKind::Cpu => {
            assert!(notes.iter().any(|n| n.starts_with("cuda")));
            assert!(notes.iter().any(|n| n.starts_with("wgpu")));
        }
        BackendKind::Auto => panic!("auto resolved to auto"),
    }
    // A software adapter must not be chosen automatically.
    if b.kind() == BackendKind::Wgpu {
        assert!(!b.describe().contains("software"), "{}", b.describe());
    }
}

#[test]
fn auto_skips_a_software_adapter() {
    match WgpuBackend::new(true) {
        Ok(sw) if sw.is_software() => {
            let err = WgpuBackend::new(false).err().map(|e| format!("{e:#}"));
            // Either a hardware adapter exists too, or auto refuses lavapipe.
            if let Some(e) = err {
                assert!(e.contains("no hardware GPU adapter"), "{e}");
            }
        }
        Ok(hw) => say(&format!("hardware wgpu adapter here: {}", hw.describe())),
        Err(e) => say(&format!(
            "SKIPPED auto_skips_a_software_adapter: no wgpu adapter: {e:#}"
        )),
    }
}

// ------------------------------------------------------- CUDA compilation

/// The kernels compile with NVRTC for Hopper (and NVRTC's default target);
/// no GPU needed, only libnvrtc. Run with the toolkit's directory on
/// LD_LIBRARY_PATH (or CUDA_HOME set) to make this check run here.
#[test]
fn cuda_kernels_compile_with_nvrtc() {
    if let Err(e) = tritter_gpu::backends::cuda::nvrtc_present() {
        if required(Device::Cuda) {
            panic!("NVRTC required: {e:#}");
        }
        say(&format!("SKIPPED cuda_kernels_compile_with_nvrtc: {e:#}"));
        return;
    }
    for arch in [Some("compute_90"), None] {
        let ptx = tritter_gpu::backends::cuda::source::compile_ptx(arch)
            .unwrap_or_else(|e| panic!("{arch:?}: {e:#}"))
            .to_src();
        for k in ["minhash_signatures", "band_hashes", "ngram_membership"] {
            assert!(
                ptx.contains(&format!(".entry {k}(")),
                "{arch:?}: PTX has no entry {k}"
            );
        }
        // Integer arithmetic only: no floating-point instruction at all.
        assert!(
            !ptx.contains(".f32") && !ptx.contains(".f64"),
            "floating point in PTX"
        );
    }
}

// ---------------------------------------------------- CUDA host emulator

/// Builds kernels/emu/run_kernels.cpp (the CUDA kernels, unchanged, under a
/// CPU emulation of blocks, barriers and atomics) with the C++ compiler.
fn build_emulator(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let exe = dir.join("run_kernels");
    // The checkout this test was built in, else the current directory (a
    // test binary carried to another machine runs in a copy of the repo).
    let built = std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/kernels/emu/run_kernels.cpp"
    ));
    let src = if built.exists() {
        built
    } else {
        std::path::PathBuf::from("kernels/emu/run_kernels.cpp")
    };
    let out = std::process::Command::new(&cxx)
        .args([
            "-std=c++20",
            "-O1",
            "-pthread",
            "-Wall",
            "-Wno-unknown-pragmas",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output();
    match out {
        Err(e) => {
            say(&format!(
                "SKIPPED cuda_kernels_on_the_host_emulator: no C++ compiler ({cxx}: {e})"
            ));
            None
        }
        Ok(o) if !o.status.success() => panic!(
            "the CUDA host emulator did not build:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Ok(_) => Some(exe),
    }
}

fn run_emulator(exe: &std::path::Path, op: &str, input: &[u8], dir: &std::path::Path) -> Vec<u8> {
    let inp = dir.join(format!("{op}.in"));
    let outp = dir.join(format!("{op}.out"));
    std::fs::write(&inp, input).unwrap();
    let o = std::process::Command::new(exe)
        .arg(op)
        .arg(&inp)
        .arg(&outp)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "run_kernels {op}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(&outp).unwrap()
}

fn push32(buf: &mut Vec<u8>, words: &[u32]) {
    for w in words {
        buf.extend_from_slice(&w.to_le_bytes());
    }
}

fn push64(buf: &mut Vec<u8>, words: &[u64]) {
    for w in words {
        buf.extend_from_slice(&w.to_le_bytes());
    }
}

/// The CUDA kernels, run on the CPU by the host emulator with the launch
/// shapes of `cuda::source` and the sub-batch plan of `plan`, reproduce the
/// reference. This is how the kernels' logic is tested where no GPU is.
#[test]
fn cuda_kernels_on_the_host_emulator() {
    use tritter_gpu::backends::cuda::source;
    use tritter_gpu::backends::plan;
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = build_emulator(dir.path()) else {
        return;
    };
    let mut rng = Rng(0xE3E3);

    // Signatures: tasks longer than a shared-memory tile, documents split
    // over tasks and sub-batches, permutation counts around the block sizes.
    let sizes = boundary_sizes(&mut rng);
    let buf = random_batch(&mut rng, &sizes);
    let limits = BatchLimits {
        shingles_per_task: 2500,
        max_shingles: 6000,
        max_tasks: 40,
        max_outputs: 20_000,
    };
    for num_perm in [1usize, 100, 129, 257] {
        let perms = Permutations::new(num_perm, 11);
        let subs = plan::plan_signatures(&buf.as_batch(), num_perm, &limits).unwrap();
        assert!(subs.len() > 1);
        let mut out = plan::empty_signatures(buf.docs(), num_perm);
        for sb in &subs {
            let shape = source::minhash_shape(sb.tasks.len() as u32, num_perm as u32);
            let n_out = sb.docs() * num_perm;
            let mut input = Vec::new();
            push32(
                &mut input,
                &[
                    shape.grid.0,
                    shape.grid.1,
                    shape.block.0,
                    num_perm as u32,
                    sb.shingles() as u32,
                    sb.tasks.len() as u32 * 3,
                    n_out as u32,
                ],
            );
            push32(&mut input, &buf.hashes[sb.shingle_begin..sb.shingle_end]);
            for t in &sb.tasks {
                push32(&mut input, &[t.doc, t.start, t.len]);
            }
            push32(&mut input, &perms.a);
            push32(&mut input, &perms.b);
            let bytes = run_emulator(&exe, "minhash_signatures", &input, dir.path());
            let part: Vec<u32> = bytes
                .chunks_exact(4)
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            plan::merge_min(&mut out, sb, num_perm, &part);
        }
        assert_same(
            &format!("emulated minhash_signatures, {num_perm} perms"),
            &out,
            &ref_signatures(buf.as_batch(), &perms),
        );
    }

    // Band hashes.
    let num_perm = 128usize;
    let docs = 300usize;
    let sigs: Vec<u32> = (0..docs * num_perm).map(|_| rng.shingle()).collect();
    for (bands, rows) in [(16u32, 8u32), (9, 13), (3, 0), (128, 1)] {
        let shape = source::bands_shape(docs as u64 * bands as u64);
        let mut input = Vec::new();
        push32(
            &mut input,
            &[
                shape.grid.0,
                shape.block.0,
                docs as u32,
                num_perm as u32,
                bands,
                rows,
            ],
        );
        push32(&mut input, &sigs);
        let bytes = run_emulator(&exe, "band_hashes", &input, dir.path());
        let got: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let layout = BandLayout { bands, rows };
        assert_same(
            &format!("emulated band_hashes {bands}x{rows}"),
            &got,
            &ref_bands(&sigs, num_perm, layout),
        );
    }

    // n-gram membership.
    for n_keys in [1usize, 2, 5000] {
        let table = random_table(&mut rng, n_keys);
        let q = queries_for(&mut rng, &table, 3000);
        let shape = source::ngram_shape(q.len() as u32);
        let mut input = Vec::new();
        push32(
            &mut input,
            &[
                shape.grid.0,
                shape.block.0,
                q.len() as u32,
                table.len() as u32,
            ],
        );
        push64(&mut input, &q);
        push64(&mut input, table.keys());
        let bytes = run_emulator(&exe, "ngram_membership", &input, dir.path());
        let got: Vec<u32> = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_same(
            &format!("emulated ngram_membership, {n_keys} keys"),
            &got,
            &ref_ngram(&q, &table),
        );
    }
}
