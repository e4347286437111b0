//! `tritter-gpu backends`: what this machine's backends can do, and the proof.
//!
//! * no flag: each backend with its state and reason: CUDA (driver, device,
//!   compute capability, memory, the NVRTC found and where, the code loaded),
//!   wgpu (every adapter, software or hardware), CPU (threads, SIMD kernel),
//!   and what `--backend auto` picks;
//! * `--self-test`: every available backend against the CPU reference on
//!   seeded batches at the pipeline's sizes, batch-boundary cases and empty
//!   documents, and (GPU backends, memory permitting) one call of more than
//!   2^31 outputs; `ok` or `FAIL` per kernel, exit 1 on any failure;
//! * `--bench`: per backend, shingle x permutation pairs per second, bytes of
//!   source code per second through signatures, band hashes and n-gram
//!   lookups per second, and for CUDA the fraction of the floor counted in
//!   docs/backends.md;
//! * `--compile-only [--arch sm_90]`: compiles the kernels with the NVRTC
//!   found and reports the binary's kind and ISA; needs no GPU.

use crate::backends::cuda::compile::{self, Image, Target};
use crate::backends::cuda::driver::DeviceInfo;
use crate::backends::cuda::CudaBackend;
use crate::backends::ops::{self, splitmix64, BandLayout, NgramTable, Permutations, ShingleBuffer};
use crate::backends::{self, cpu::CpuBackend, wgpu::WgpuBackend, Backend, BackendKind};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug, Clone)]
pub struct BackendsArgs {
    /// Run every available backend against the CPU reference; exit 1 on any mismatch.
    #[arg(long, help_heading = "Backends")]
    pub self_test: bool,
    /// Measure each available backend's throughput per kernel.
    #[arg(long, help_heading = "Backends")]
    pub bench: bool,
    /// Compile the CUDA kernels with the NVRTC found and report the result (no GPU needed).
    #[arg(long, help_heading = "Backends")]
    pub compile_only: bool,
    /// Target of --compile-only: sm_XY (a CUBIN) or compute_XY (PTX); default: the device's, else sm_90.
    #[arg(
        long,
        value_name = "sm_XY|compute_XY",
        requires = "compile_only",
        help_heading = "Backends"
    )]
    pub arch: Option<String>,
    /// With --compile-only: also check the result loads on a driver of this CUDA version (e.g. 13.0).
    #[arg(
        long,
        value_name = "X.Y",
        requires = "compile_only",
        help_heading = "Backends"
    )]
    pub driver: Option<String>,
    /// With --compile-only: write the CUBIN or PTX to FILE (for cuobjdump).
    #[arg(
        long,
        value_name = "FILE",
        requires = "compile_only",
        help_heading = "Backends"
    )]
    pub output: Option<PathBuf>,
    /// With --self-test: fail when one of these backends is unavailable (e.g. cuda,wgpu).
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        help_heading = "Backends"
    )]
    pub require: Vec<String>,
    /// With --bench: seconds per measurement (after one warm-up call).
    #[arg(
        long,
        default_value_t = 2.0,
        value_name = "S",
        help_heading = "Backends"
    )]
    pub bench_seconds: f64,
    /// With --bench and --self-test: multiply the batch sizes by N (GPU runs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64), value_name = "N", help_heading = "Backends")]
    pub scale: u64,
}

/// Runs the command; the exit code.
pub fn run(args: BackendsArgs) -> Result<i32> {
    if args.compile_only {
        return compile_only(&args);
    }
    let found = open_all();
    print_list(&found);
    let mut code = 0;
    if args.self_test {
        code = code.max(self_test(&found, &args)?);
    }
    if args.bench {
        bench(&found, &args)?;
    }
    Ok(code)
}

/// A backend that opened, or why not.
struct Found {
    name: &'static str,
    backend: std::result::Result<Arc<dyn Backend>, String>,
    /// The CUDA device's facts, for the floor.
    cuda: Option<DeviceInfo>,
}

fn open_all() -> Vec<Found> {
    let e = |e: anyhow::Error| format!("{e:#}");
    let (cuda, info) = match CudaBackend::new() {
        Ok(b) => {
            let info = b.device_info().clone();
            (Ok(Arc::new(b) as Arc<dyn Backend>), Some(info))
        }
        Err(err) => (Err(e(err)), None),
    };
    vec![
        Found {
            name: "cpu",
            backend: Ok(Arc::new(CpuBackend::new())),
            cuda: None,
        },
        Found {
            name: "cuda",
            backend: cuda,
            cuda: info,
        },
        Found {
            name: "wgpu",
            backend: WgpuBackend::new(true)
                .map(|b| Arc::new(b) as Arc<dyn Backend>)
                .map_err(e),
            cuda: None,
        },
    ]
}

fn print_list(found: &[Found]) {
    println!(
        "cpu: available: {}",
        found[0]
            .backend
            .as_ref()
            .map(|b| b.describe())
            .unwrap_or_default()
    );
    // CUDA: each layer on its own line, so a user sees which one is missing.
    match crate::backends::cuda::driver_present() {
        Ok(()) => println!("cuda: driver library: found"),
        Err(e) => println!("cuda: driver library: {e:#}"),
    }
    match compile::nvrtc_info() {
        Ok(i) => println!(
            "cuda: NVRTC {}.{} at {}; architectures {:?}",
            i.version.0, i.version.1, i.location, i.archs
        ),
        Err(e) => println!("cuda: NVRTC: {e:#}"),
    }
    match &found[1].backend {
        Ok(b) => println!("cuda: available: {}", b.describe()),
        Err(e) => println!("cuda: unavailable: {e}"),
    }
    let adapters = std::panic::catch_unwind(crate::backends::wgpu::list_adapters)
        .unwrap_or_else(|_| vec!["(wgpu panicked while listing adapters)".into()]);
    if adapters.is_empty() {
        println!("wgpu: no Vulkan, Metal or DX12 adapter");
    }
    for a in adapters {
        println!("wgpu: adapter {a}");
    }
    match &found[2].backend {
        Ok(b) => println!("wgpu: available: {}", b.describe()),
        Err(e) => println!("wgpu: unavailable: {e}"),
    }
    match backends::select(BackendKind::Auto) {
        Ok((b, notes)) => println!("auto: {}", backends::describe_choice(&*b, &notes)),
        Err(e) => println!("auto: error: {e:#}"),
    }
}

fn compile_only(args: &BackendsArgs) -> Result<i32> {
    let info = compile::nvrtc_info()?;
    println!(
        "nvrtc: {}.{} at {}; architectures {:?}",
        info.version.0, info.version.1, info.location, info.archs
    );
    let target = match &args.arch {
        Some(a) => Target::parse(a)?,
        None => match CudaBackend::new() {
            Ok(b) => compile::target_for_device(b.device_info().capability, &info.archs)?,
            Err(_) => Target::Sm(90),
        },
    };
    let c = compile::compile(target)?;
    println!("target: {target}");
    println!("result: {}", c.describe());
    match &c.image {
        Image::Cubin { bytes, .. } => {
            let (sm, abi) = compile::cubin_arch(bytes)?;
            println!("elf header: EM_CUDA, ELF ABI {abi}, sm_{sm}");
        }
        Image::Ptx { isa, target, .. } => println!(
            "ptx header: .version {}.{}, .target {target}; NVRTC {}.{} writes {}",
            isa.0,
            isa.1,
            info.version.0,
            info.version.1,
            compile::ptx_isa_of_cuda(info.cuda_version())
                .map(|(a, b)| format!("{a}.{b}"))
                .unwrap_or_else(|| "an unknown ISA".into())
        ),
    }
    println!("needs: {}", c.needs());
    if let Some(path) = &args.output {
        std::fs::write(path, c.module_data())
            .with_context(|| format!("writing {}", path.display()))?;
        println!("written: {}", path.display());
    }
    if let Some(v) = &args.driver {
        let (maj, min) = v
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse::<i32>().ok()?, b.parse::<i32>().ok()?)))
            .with_context(|| format!("--driver {v:?} is not a CUDA version like 13.0"))?;
        match compile::check_loadable(&c, maj * 1000 + min * 10) {
            Ok(()) => println!("loadable by a CUDA {v} driver: yes"),
            Err(e) => {
                println!("loadable by a CUDA {v} driver: NO: {e:#}");
                return Ok(1);
            }
        }
    }
    Ok(0)
}

// ------------------------------------------------------------- batches

/// A batch shaped like one near-dedup call: `docs` documents of roughly
/// log-uniform length between 8 and 8192 shingles (mean about 1200), so 2000
/// documents are about 2.4M shingles, what the pipeline sends per call.
fn pipeline_batch(docs: usize, seed: u64) -> ShingleBuffer {
    let mut s = seed;
    let mut buf = ShingleBuffer::new();
    let mut doc = Vec::new();
    for _ in 0..docs {
        let bits = 3 + splitmix64(&mut s) % 11;
        let n = (1usize << bits) + (splitmix64(&mut s) % (1 << bits)) as usize / 2;
        doc.clear();
        doc.extend((0..n).map(|_| splitmix64(&mut s) as u32));
        buf.push_doc(&doc);
    }
    buf
}

/// Sizes at every tile, task and workgroup boundary of the GPU backends,
/// with empty documents among them.
fn boundary_batch(seed: u64) -> ShingleBuffer {
    let mut s = seed;
    let mut buf = ShingleBuffer::new();
    for n in [
        0usize, 1, 2, 0, 31, 32, 33, 63, 64, 65, 255, 256, 257, 0, 0, 1023, 1024, 1025, 2047, 2048,
        2049, 4095, 4096, 4097, 9000, 70_000, 0,
    ] {
        let doc: Vec<u32> = (0..n).map(|_| splitmix64(&mut s) as u32).collect();
        buf.push_doc(&doc);
    }
    buf
}

/// The pipeline's defaults: 256 permutations, 28 bands of 9 rows.
const NUM_PERM: usize = 256;
const LAYOUT: BandLayout = BandLayout { bands: 28, rows: 9 };

fn random_table(n: usize, seed: u64) -> NgramTable {
    let mut s = seed;
    NgramTable::new((0..n).map(|_| splitmix64(&mut s)).collect())
}

fn queries_for(table: &NgramTable, n: usize, seed: u64) -> Vec<u64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            let r = splitmix64(&mut s);
            if r.is_multiple_of(2) && !table.is_empty() {
                table.keys()[(r / 2 % table.len() as u64) as usize]
            } else {
                r
            }
        })
        .collect()
}

// ----------------------------------------------------------- self-test

fn self_test(found: &[Found], args: &BackendsArgs) -> Result<i32> {
    let scale = args.scale as usize;
    let reference = CpuBackend::new();
    let mut failed = 0usize;
    for f in found {
        if let Err(e) = &f.backend {
            if args.require.iter().any(|r| r == f.name) {
                println!("self-test {}: FAIL: required but unavailable: {e}", f.name);
                failed += 1;
            } else {
                println!("self-test {}: skipped: unavailable", f.name);
            }
        }
    }
    let cases: Vec<(&str, ShingleBuffer, usize)> = vec![
        (
            "pipeline batch",
            pipeline_batch(2000 * scale, 0x5E1F),
            NUM_PERM,
        ),
        ("boundaries", boundary_batch(0xB0), NUM_PERM),
        ("boundaries, 64 permutations", boundary_batch(0xB1), 64),
        ("boundaries, 257 permutations", boundary_batch(0xB2), 257),
    ];
    let table = random_table(1_000_000, 0x7AB1E);
    let queries = queries_for(&table, 4_000_000 * scale, 0x9E);
    let want_hits = reference.ngram_membership(&queries, &table)?;
    for f in found {
        let Ok(b) = &f.backend else { continue };
        let mut check = |kernel: &str, case: &str, ok: Result<bool>| match ok {
            Ok(true) => println!("self-test {} {kernel} ({case}): ok", f.name),
            Ok(false) => {
                failed += 1;
                println!(
                    "self-test {} {kernel} ({case}): FAIL: differs from the CPU reference",
                    f.name
                )
            }
            Err(e) => {
                failed += 1;
                println!("self-test {} {kernel} ({case}): FAIL: {e:#}", f.name)
            }
        };
        for (case, buf, np) in &cases {
            let perms = Permutations::new(*np, 42);
            let layout = if *np >= 252 {
                LAYOUT
            } else {
                BandLayout { bands: 16, rows: 4 }
            };
            let want = reference.minhash_signatures(buf.as_batch(), &perms)?;
            let want_bands = reference.band_hashes(&want, *np, layout)?;
            check(
                "minhash_signatures",
                case,
                b.minhash_signatures(buf.as_batch(), &perms)
                    .map(|g| g == want),
            );
            check(
                "band_hashes",
                case,
                b.band_hashes(&want, *np, layout).map(|g| g == want_bands),
            );
            check(
                "signatures_and_bands",
                case,
                b.signatures_and_bands(buf.as_batch(), &perms, layout)
                    .map(|(s, h)| s == want && h == want_bands),
            );
        }
        check(
            "ngram_membership",
            "1M keys",
            b.ngram_membership(&queries, &table).map(|g| g == want_hits),
        );
        if b.kind() != BackendKind::Cpu {
            check("minhash_signatures", "over 2^31 outputs", huge_call(&**b));
        }
    }
    println!(
        "self-test: {}",
        if failed == 0 {
            "all ok".to_string()
        } else {
            format!("{failed} FAILED")
        }
    );
    Ok(if failed == 0 { 0 } else { 1 })
}

/// One call of 8.4M one-shingle documents x 256 permutations: 2^31 + 2^21
/// outputs (8.6 GB), past every 32-bit count; checked on a sample of
/// documents around the 2^31 boundary and spread over the batch. Skipped
/// (as ok, with a note) when the machine lacks the memory.
fn huge_call(b: &dyn Backend) -> Result<bool> {
    let docs = (1usize << 31) / NUM_PERM + (1 << 13);
    let need = docs * NUM_PERM * 4 + docs * 8;
    let avail = mem_available().unwrap_or(0);
    if avail < need * 3 / 2 {
        println!(
            "  (over 2^31 outputs: skipped, needs about {} GiB of free memory, {} GiB available)",
            (need * 3 / 2) >> 30,
            avail >> 30
        );
        return Ok(true);
    }
    let mut s = 0x2F31u64;
    let hashes: Vec<u32> = (0..docs).map(|_| splitmix64(&mut s) as u32).collect();
    let offsets: Vec<u32> = (0..=docs as u32).collect();
    let perms = Permutations::new(NUM_PERM, 7);
    let got = b.minhash_signatures(
        ops::ShingleBatch {
            hashes: &hashes,
            offsets: &offsets,
        },
        &perms,
    )?;
    if got.len() != docs * NUM_PERM {
        return Ok(false);
    }
    let boundary = (1usize << 31) / NUM_PERM;
    let mut sample: Vec<usize> = (0..docs).step_by(997).collect();
    sample.extend(boundary.saturating_sub(3)..(boundary + 3).min(docs));
    sample.push(docs - 1);
    let mut want = vec![0u32; NUM_PERM];
    Ok(sample.into_iter().all(|d| {
        ops::minhash_signature(&hashes[d..d + 1], &perms, &mut want);
        got[d * NUM_PERM..(d + 1) * NUM_PERM] == want[..]
    }))
}

fn mem_available() -> Option<usize> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: usize = m
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

// --------------------------------------------------------------- bench

/// Median seconds per call of `f` over at least `seconds` (after a warm-up).
fn time(seconds: f64, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let mut runs = Vec::new();
    let start = Instant::now();
    while runs.len() < 3 || start.elapsed() < Duration::from_secs_f64(seconds) {
        let t = Instant::now();
        f()?;
        runs.push(t.elapsed().as_secs_f64());
        if runs.len() >= 1000 {
            break;
        }
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[runs.len() / 2])
}

/// Real code for the bytes-per-second figure: the Python standard library
/// (on every GPU image), else the cargo registry's Rust sources, shingled
/// with the pipeline's own shingler. `None` when neither is there.
fn real_code(max_bytes: usize) -> Option<(ShingleBuffer, usize)> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(o) = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
    {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    }
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cargo/registry/src"));
    }
    let mut files = Vec::new();
    for root in dirs {
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut es: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            es.sort();
            for p in es.into_iter().rev() {
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|e| e == "py" || e == "rs") {
                    files.push(p);
                }
            }
        }
        if !files.is_empty() {
            break;
        }
    }
    let mut sh = crate::dedup::near::shingle::Shingler::new(5);
    let mut buf = ShingleBuffer::new();
    let mut bytes = 0usize;
    let mut hashes = Vec::new();
    for p in files {
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        hashes.clear();
        sh.shingles(&text, &mut hashes);
        buf.push_doc(&hashes);
        bytes += text.len();
        if bytes >= max_bytes {
            break;
        }
    }
    (buf.docs() > 100).then_some((buf, bytes))
}

fn bench(found: &[Found], args: &BackendsArgs) -> Result<()> {
    let scale = args.scale as usize;
    let secs = args.bench_seconds;
    if secs.is_nan() || secs <= 0.0 {
        bail!("--bench-seconds must be positive");
    }
    let batch = pipeline_batch(2000 * scale, 0xBE7C);
    let perms = Permutations::new(NUM_PERM, 42);
    let pairs = batch.hashes.len() as f64 * NUM_PERM as f64;
    let code = real_code(32 << 20);
    let sigs = CpuBackend::new().minhash_signatures(batch.as_batch(), &perms)?;
    let table = random_table(1_000_000, 0x7AB1E);
    let queries = queries_for(&table, 4_000_000 * scale, 0x9E);
    println!(
        "bench: {} documents, {} shingles, {NUM_PERM} permutations, {}x{} bands; real code: {}",
        batch.docs(),
        batch.hashes.len(),
        LAYOUT.bands,
        LAYOUT.rows,
        code.as_ref()
            .map(|(b, n)| format!(
                "{} files, {:.1} MB, {} shingles",
                b.docs(),
                *n as f64 / 1e6,
                b.hashes.len()
            ))
            .unwrap_or_else(|| "none found".into())
    );
    println!(
        "{:<6} {:>14} {:>14} {:>12} {:>14} {:>14} {:>10}",
        "", "pairs/s", "fused pairs/s", "code MB/s", "bands/s", "lookups/s", "of floor"
    );
    for f in found {
        let Ok(b) = &f.backend else {
            println!("{:<6} unavailable", f.name);
            continue;
        };
        let t_sig = time(secs, || {
            b.minhash_signatures(batch.as_batch(), &perms).map(|_| ())
        })?;
        let t_fused = time(secs, || {
            b.signatures_and_bands(batch.as_batch(), &perms, LAYOUT)
                .map(|_| ())
        })?;
        let t_bands = time(secs, || b.band_hashes(&sigs, NUM_PERM, LAYOUT).map(|_| ()))?;
        let t_ngram = time(secs, || b.ngram_membership(&queries, &table).map(|_| ()))?;
        let code_rate = match &code {
            Some((cb, n)) => {
                let t = time(secs, || {
                    b.minhash_signatures(cb.as_batch(), &perms).map(|_| ())
                })?;
                format!("{:.0}", *n as f64 / t / 1e6)
            }
            None => "n/a".into(),
        };
        let rate = pairs / t_sig;
        println!(
            "{:<6} {:>14.3e} {:>14.3e} {:>12} {:>14.3e} {:>14.3e} {:>10}",
            f.name,
            rate,
            pairs / t_fused,
            code_rate,
            (sigs.len() / NUM_PERM * LAYOUT.bands as usize) as f64 / t_bands,
            queries.len() as f64 / t_ngram,
            floor_fraction(f.cuda.as_ref(), rate)
        );
    }
    println!(
        "floor (docs/backends.md): min(INT32 issue = multiprocessors x 64 lanes x clock / 2 ops per pair, \
         host link 50 GB/s / 4 B per shingle x {NUM_PERM} permutations)"
    );
    Ok(())
}

/// The achieved signature rate over the floor of docs/backends.md, for CUDA
/// (where the device reports its multiprocessors and clock).
fn floor_fraction(cuda: Option<&DeviceInfo>, pairs_per_s: f64) -> String {
    match cuda {
        Some(i) if i.multiprocessors > 0 && i.clock_khz > 0 => {
            let int_floor = i.multiprocessors as f64 * 64.0 * i.clock_khz as f64 * 1e3 / 2.0;
            let link_floor = 50e9 / 4.0 * NUM_PERM as f64;
            format!("{:.1}%", 100.0 * pairs_per_s / int_floor.min(link_floor))
        }
        _ => "n/a".into(),
    }
}
