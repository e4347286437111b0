//! Every backend against the scalar reference of `src/backends/ops.rs`, bit
//! for bit.
//!
//! `backend_test!(body, name_cpu, name_cuda, name_wgpu, name_cuda_emulated)`
//! expands one test body into four tests, one per backend (as candle's
//! `test_device!`); the fourth is the CUDA backend, host code and all, on the
//! host emulator (`kernels/emu/`, built here with AddressSanitizer and
//! UndefinedBehaviorSanitizer), which is how the CUDA path is tested on
//! machines without a GPU. A backend
//! whose device is missing is skipped with a line on stderr that says why
//! (written past the test harness's capture, so it shows in `cargo test`'s
//! output). Setting `TRITTER_REQUIRE_BACKENDS=cuda` (or `wgpu`, `emulator`,
//! or a list) turns those skips into failures: CI sets `wgpu,emulator` so
//! that a broken lavapipe install or C++ toolchain cannot pass silently, and
//! a GPU machine sets `cuda`.
//!
//! Each GPU backend is tested twice: with its default batch limits, and with
//! tiny ones (5 shingles per task, 97 shingles per sub-batch, ...) so that
//! task splits, sub-batch splits, documents spanning sub-batches and the
//! two-deep pipelining are all exercised on small inputs.

use std::io::Write;
use std::sync::{Arc, OnceLock};
use tritter_gpu::backends::cuda::emulator::EmulatorDriver;
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
    Emulator,
}

impl Device {
    fn name(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::Wgpu => "wgpu",
            Device::Emulator => "emulator",
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
    static EMU: OnceLock<Result<Under, String>> = OnceLock::new();
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
        Device::Emulator => EMU.get_or_init(|| {
            Ok(Under {
                default: Arc::new(emulated_backend(None).map_err(e)?),
                tiny: Arc::new(emulated_backend(Some(tiny_limits())).map_err(e)?),
            })
        }),
    }
}

/// The sanitizer build of `kernels/emu/run_kernels.cpp`, once per process,
/// under cargo's scratch directory for integration tests (a fresh temporary
/// directory where this binary runs outside its checkout).
fn emulator_exe() -> Result<std::path::PathBuf, String> {
    static EXE: OnceLock<Result<std::path::PathBuf, String>> = OnceLock::new();
    EXE.get_or_init(|| {
        let scratch = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = if scratch.is_dir() {
            // Earlier runs' builds, whose processes are gone, are removed.
            if let Ok(rd) = std::fs::read_dir(scratch) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let Some(pid) = name.strip_prefix("cuda-emulator-") {
                        if !std::path::Path::new("/proc").join(pid).exists() {
                            let _ = std::fs::remove_dir_all(e.path());
                        }
                    }
                }
            }
            let d = scratch.join(format!("cuda-emulator-{}", std::process::id()));
            std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
            d
        } else {
            tempfile::Builder::new()
                .prefix("tritter-emu")
                .tempdir()
                .map_err(|e| format!("temp dir: {e}"))?
                .keep()
        };
        build_emulator(&dir)
    })
    .clone()
}

/// A CUDA backend on its own emulator process.
fn emulated_backend(limits: Option<BatchLimits>) -> anyhow::Result<CudaBackend> {
    let exe = emulator_exe().map_err(anyhow::Error::msg)?;
    let log = exe.with_file_name(format!(
        "stderr-{}.log",
        if limits.is_some() { "tiny" } else { "default" }
    ));
    let driver = EmulatorDriver::spawn(&exe, 2, &log)?;
    CudaBackend::with_driver(Arc::new(driver), limits)
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
    ($body:ident, $cpu:ident, $cuda:ident, $wgpu:ident, $emu:ident) => {
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
        #[test]
        fn $emu() {
            with_backend(Device::Emulator, stringify!($emu), $body)
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
    signatures_on_random_batches_wgpu,
    signatures_on_random_batches_cuda_emulated
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
    signatures_of_edge_batches_wgpu,
    signatures_of_edge_batches_cuda_emulated
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
    signatures_do_not_depend_on_batch_split_wgpu,
    signatures_do_not_depend_on_batch_split_cuda_emulated
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
    band_hashes_on_random_signatures_wgpu,
    band_hashes_on_random_signatures_cuda_emulated
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
    band_hashes_reject_bad_layouts_wgpu,
    band_hashes_reject_bad_layouts_cuda_emulated
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
    ngram_membership_on_random_tables_wgpu,
    ngram_membership_on_random_tables_cuda_emulated
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
    ngram_table_cache_follows_generation_wgpu,
    ngram_table_cache_follows_generation_cuda_emulated
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
    real_code_matches_the_reference_wgpu,
    real_code_matches_the_reference_cuda_emulated
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
fn malformed_batches_are_errors_cuda_emulated() {
    with_backend(
        Device::Emulator,
        "malformed_batches_are_errors_cuda_emulated",
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

// ------------------------------------------------- fused signatures + bands

/// `signatures_and_bands` is `minhash_signatures` then `band_hashes`, bit for
/// bit: documents split over sub-batches (tiny limits), empty documents
/// inside, between and after sub-batches, a batch of only empty documents,
/// and a layout error before any work.
fn signatures_and_bands_equal_the_two_ops(u: &Under) {
    let mut rng = Rng(0xF05E);
    let mut sizes = boundary_sizes(&mut rng);
    sizes.extend([0, 0, 0]);
    let buf = random_batch(&mut rng, &sizes);
    let small: Vec<usize> = sizes.iter().map(|&s| s.min(300)).take(45).collect();
    let small = random_batch(&mut rng, &small);
    let mut blanks = ShingleBuffer::new();
    for _ in 0..4 {
        blanks.push_doc(&[]);
    }
    for (num_perm, bands, rows) in [
        (128usize, 16u32, 8u32),
        (256, 28, 9),
        (65, 13, 5),
        (7, 7, 1),
    ] {
        let perms = Permutations::new(num_perm, 3 + num_perm as u64);
        let layout = BandLayout { bands, rows };
        for (name, b) in u.both() {
            for (what, batch) in [("boundaries", &buf), ("small", &small), ("blank", &blanks)] {
                let want = ref_signatures(batch.as_batch(), &perms);
                let want_bands = ref_bands(&want, num_perm, layout);
                let (sigs, got_bands) = b
                    .signatures_and_bands(batch.as_batch(), &perms, layout)
                    .unwrap();
                let label = format!("{name}, {what}, {num_perm} perms, {bands}x{rows}");
                assert_same(&format!("{label}: signatures"), &sigs, &want);
                assert_same(&format!("{label}: bands"), &got_bands, &want_bands);
            }
        }
    }
    for (_, b) in u.both() {
        let perms = Permutations::new(16, 1);
        assert!(b
            .signatures_and_bands(buf.as_batch(), &perms, BandLayout { bands: 5, rows: 4 })
            .is_err());
        assert!(b
            .signatures_and_bands(
                buf.as_batch(),
                &Permutations::new(0, 1),
                BandLayout { bands: 1, rows: 1 }
            )
            .is_err());
        let none = ShingleBuffer::new();
        let (s, bands) = b
            .signatures_and_bands(none.as_batch(), &perms, BandLayout { bands: 4, rows: 4 })
            .unwrap();
        assert!(s.is_empty() && bands.is_empty());
    }
}
backend_test!(
    signatures_and_bands_equal_the_two_ops,
    signatures_and_bands_equal_the_two_ops_cpu,
    signatures_and_bands_equal_the_two_ops_cuda,
    signatures_and_bands_equal_the_two_ops_wgpu,
    signatures_and_bands_equal_the_two_ops_cuda_emulated
);

// ------------------------------------------------------- CUDA compilation

/// The kernels compile with NVRTC to a CUBIN for Hopper whose ELF header says
/// sm_90, loadable by a CUDA 13.0 (r580) driver, and to PTX whose `.version`
/// is the one this NVRTC's release writes; that PTX is accepted for a 13.0
/// driver exactly when it is not newer. No GPU needed, only libnvrtc
/// (`TRITTER_NVRTC`, `CUDA_HOME` or a pip wheel; see docs/backends.md).
#[test]
fn cuda_kernels_compile_with_nvrtc() {
    use tritter_gpu::backends::cuda::compile::{self, Image, Target};
    let info = match compile::nvrtc_info() {
        Ok(i) => i,
        Err(e) => {
            if required(Device::Cuda) {
                panic!("NVRTC required: {e:#}");
            }
            say(&format!("SKIPPED cuda_kernels_compile_with_nvrtc: {e:#}"));
            return;
        }
    };
    say(&format!(
        "NVRTC {}.{} at {}; archs {:?}",
        info.version.0, info.version.1, info.location, info.archs
    ));
    assert!(
        info.archs.contains(&90),
        "NVRTC without sm_90: {:?}",
        info.archs
    );
    assert_eq!(
        compile::target_for_device((9, 0), &info.archs).unwrap(),
        Target::Sm(90)
    );
    let cubin = compile::compile(Target::Sm(90)).unwrap();
    let Image::Cubin { sm, bytes, .. } = &cubin.image else {
        panic!("sm_90 did not give a CUBIN: {}", cubin.describe());
    };
    assert_eq!(*sm, 90);
    assert_eq!(compile::cubin_arch(bytes).unwrap().0, 90);
    assert_eq!(&bytes[..4], b"\x7fELF");
    for k in ["minhash_signatures", "band_hashes", "ngram_membership"] {
        assert!(
            bytes.windows(k.len()).any(|w| w == k.as_bytes()),
            "CUBIN has no symbol {k}"
        );
    }
    // A CUBIN from NVRTC 12 or 13 loads on a CUDA 13.0 driver.
    if info.version.0 <= 13 {
        compile::check_loadable(&cubin, 13000).unwrap();
    }
    let ptx = compile::compile(Target::Compute(90)).unwrap();
    let Image::Ptx { isa, text, .. } = &ptx.image else {
        panic!("compute_90 did not give PTX");
    };
    assert_eq!(Some(*isa), compile::ptx_isa_of_cuda(info.cuda_version()));
    for k in ["minhash_signatures", "band_hashes", "ngram_membership"] {
        assert!(
            text.contains(&format!(".entry {k}(")),
            "PTX has no entry {k}"
        );
    }
    // Integer arithmetic only: no floating-point instruction at all.
    assert!(!text.contains(".f32") && !text.contains(".f64"));
    let r580 = compile::check_loadable(&ptx, 13000);
    assert_eq!(
        r580.is_ok(),
        *isa <= (9, 0),
        "PTX ISA {isa:?} vs a CUDA 13.0 driver: {r580:?}"
    );
}

// ---------------------------------------------------- CUDA host emulator

/// Builds kernels/emu/run_kernels.cpp (the CUDA kernels, unchanged, under a
/// CPU emulation of blocks, barriers and atomics, serving the driver
/// operations) with AddressSanitizer and UndefinedBehaviorSanitizer.
fn build_emulator(dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
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
            "-g",
            "-pthread",
            "-fsanitize=address,undefined",
            "-fno-sanitize-recover=undefined",
            "-fno-omit-frame-pointer",
            "-Wall",
            "-Wno-unknown-pragmas",
        ])
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output();
    match out {
        Err(e) => Err(format!(
            "no C++ compiler for the CUDA emulator ({cxx}: {e})"
        )),
        Ok(o) if !o.status.success() => Err(format!(
            "the CUDA host emulator did not build:\n{}",
            String::from_utf8_lossy(&o.stderr)
        )),
        Ok(_) => Ok(exe),
    }
}

/// A raw emulated driver for the checks below, or `None` (skipped).
fn raw_emulator(
    test: &str,
) -> Option<(
    Arc<dyn tritter_gpu::backends::cuda::driver::Driver>,
    std::path::PathBuf,
)> {
    match emulator_exe() {
        Ok(exe) => {
            let log = exe.with_file_name(format!("stderr-{test}.log"));
            let d = EmulatorDriver::spawn(&exe, 2, &log).unwrap();
            Some((Arc::new(d), log))
        }
        Err(e) if required(Device::Emulator) || !e.starts_with("no ") => panic!("{test}: {e}"),
        Err(e) => {
            say(&format!("SKIPPED {test}: {e}"));
            None
        }
    }
}

/// The emulator refuses what a GPU would refuse or corrupt: arguments that do
/// not match the kernel's parameters, copies outside an allocation, blocks
/// larger than the kernel's `__launch_bounds__`.
#[test]
fn the_emulator_refuses_bad_launches_and_copies() {
    use tritter_gpu::backends::cuda::driver::{Arg, DeviceBuffer, Kernel, KernelArgs};
    use tritter_gpu::backends::cuda::source;
    let Some((d, _)) = raw_emulator("bad_launches") else {
        return;
    };
    let q = DeviceBuffer::new(&d, 64 * 8).unwrap();
    let k = DeviceBuffer::new(&d, 64 * 8).unwrap();
    let o = DeviceBuffer::new(&d, 64 * 4).unwrap();
    let good = KernelArgs::new(
        Kernel::NgramMembership,
        &[
            ("queries", Arg::Ptr(q.ptr())),
            ("keys", Arg::Ptr(k.ptr())),
            ("out", Arg::Ptr(o.ptr())),
            ("num_queries", Arg::U32(64)),
            ("num_keys", Arg::U32(64)),
        ],
    )
    .unwrap();
    d.memset(0, k.ptr(), 0, 64 * 8).unwrap();
    d.memset(0, q.ptr(), 0, 64 * 8).unwrap();
    d.launch(0, source::ngram_shape(64), &good).unwrap();
    d.synchronize(0).unwrap();
    // A u32 where a pointer goes (the order a swapped argument list makes).
    let mut swapped = good.clone();
    swapped.args.swap(2, 3);
    d.launch(0, source::ngram_shape(64), &swapped).unwrap();
    let e = format!("{:#}", d.synchronize(0).unwrap_err());
    assert!(e.contains("bytes but parameter"), "{e}");

    let Some((d, _)) = raw_emulator("bad_copies") else {
        return;
    };
    let b = DeviceBuffer::new(&d, 100).unwrap();
    d.memset(0, b.ptr() + 50, 0, 51).unwrap();
    let e = format!("{:#}", d.synchronize(0).unwrap_err());
    assert!(e.contains("outside every allocation"), "{e}");

    let Some((d, _)) = raw_emulator("bad_block") else {
        return;
    };
    let q = DeviceBuffer::new(&d, 8).unwrap();
    let args = KernelArgs::new(
        Kernel::NgramMembership,
        &[
            ("queries", Arg::Ptr(q.ptr())),
            ("keys", Arg::Ptr(q.ptr())),
            ("out", Arg::Ptr(q.ptr())),
            ("num_queries", Arg::U32(1)),
            ("num_keys", Arg::U32(1)),
        ],
    )
    .unwrap();
    let mut shape = source::ngram_shape(1);
    shape.block.0 = source::NGRAM_BLOCK * 2;
    d.launch(0, shape, &args).unwrap();
    let e = format!("{:#}", d.synchronize(0).unwrap_err());
    assert!(e.contains("__launch_bounds__"), "{e}");
}

/// A kernel that reads past its buffer is caught by AddressSanitizer in the
/// emulator (the class of bug a -O1 build without sanitizers let through):
/// `num_queries` one larger than the queries buffer.
#[test]
fn the_emulator_catches_an_out_of_bounds_kernel_read() {
    use tritter_gpu::backends::cuda::driver::{Arg, DeviceBuffer, Kernel, KernelArgs};
    use tritter_gpu::backends::cuda::source;
    let Some((d, log)) = raw_emulator("oob_read") else {
        return;
    };
    let q = DeviceBuffer::new(&d, 100 * 8).unwrap();
    let k = DeviceBuffer::new(&d, 10 * 8).unwrap();
    let o = DeviceBuffer::new(&d, 101 * 4).unwrap();
    d.memset(0, q.ptr(), 1, 100 * 8).unwrap();
    d.memset(0, k.ptr(), 0, 10 * 8).unwrap();
    let args = KernelArgs::new(
        Kernel::NgramMembership,
        &[
            ("queries", Arg::Ptr(q.ptr())),
            ("keys", Arg::Ptr(k.ptr())),
            ("out", Arg::Ptr(o.ptr())),
            ("num_queries", Arg::U32(101)),
            ("num_keys", Arg::U32(10)),
        ],
    )
    .unwrap();
    d.launch(0, source::ngram_shape(101), &args).unwrap();
    let e = format!("{:#}", d.synchronize(0).unwrap_err());
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        stderr.contains("AddressSanitizer") && stderr.contains("heap-buffer-overflow"),
        "no ASan report: {e}\n{stderr}"
    );
}

/// Host code that reads a download before synchronising sees garbage under
/// the emulator (downloads land at the synchronisation, as a GPU may finish
/// them late): the backend's own results are right only because it waits.
#[test]
fn the_emulator_lands_downloads_only_at_synchronisation() {
    use tritter_gpu::backends::cuda::driver::{DeviceBuffer, HostBuffer};
    use tritter_gpu::backends::cuda::emulator::GARBAGE;
    let Some((d, _)) = raw_emulator("late_downloads") else {
        return;
    };
    let b = DeviceBuffer::new(&d, 16).unwrap();
    let mut h = HostBuffer::new(&d, 16, false).unwrap();
    d.memset(0, b.ptr(), 7, 16).unwrap();
    // SAFETY: `h` is read only after the synchronisation below (and once
    // before it, which is the point: the bytes are the garbage marker).
    unsafe { d.download(0, h.as_mut_ptr(), b.ptr(), 16).unwrap() };
    assert_eq!(h.slice::<u8>(16).unwrap(), &[GARBAGE; 16]);
    d.synchronize(0).unwrap();
    assert_eq!(h.slice::<u8>(16).unwrap(), &[7u8; 16]);
}
