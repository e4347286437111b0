//! The CUDA backend: the ops as CUDA kernels (`kernels/*.cu`), compiled at run
//! time with NVRTC into a CUBIN for the device ([`compile`]) and launched
//! through the driver API ([`driver`]).
//!
//! ## Opening
//! [`CudaBackend::new`] never panics. It checks for `libcuda` and `libnvrtc`
//! before `cudarc` touches them ([`probe`]), initialises the driver, takes
//! device 0's primary context, compiles the kernels for the device's compute
//! capability once per process, and checks the driver can load the result.
//! Then it allocates every buffer it will use (device memory and page-locked
//! host memory for each lane) and runs a small smoke test of every kernel
//! against the CPU reference, so that `--backend auto` falls back when the
//! device refuses memory or computes wrongly, before any real work is
//! committed to it. Every failure is an error naming its step ("no CUDA
//! driver (libcuda.so.1 not found)", "no CUDA device", an NVRTC log, both
//! versions when the driver refuses the code).
//!
//! ## Batching and overlap
//! A call is cut into sub-batches ([`super::plan`]): at least
//! [`plan::MIN_SUB_BATCHES`] when it is large enough ([`BatchLimits::spread`]),
//! at most the lanes' buffer sizes. Two *lanes*, each a stream with its own
//! device and page-locked buffers, take sub-batches in turn: while lane A's
//! copies and kernels run, the CPU stages the next sub-batch into lane B's
//! buffers (a parallel copy, `stage`) and queues its upload, memset,
//! launches and download. A lane is synchronised, and its result merged, only
//! when it is about to be reused. The fused
//! [`Backend::signatures_and_bands`] runs `band_hashes` on the signatures
//! while they are still on the device and downloads both.
//!
//! ## Failures
//! Every operation runs under the backend's mutex inside
//! `std::panic::catch_unwind`; after an error or a caught panic the lanes are
//! synchronised and forgotten, so the next call starts clean. A poisoned
//! mutex (a panic elsewhere) is recovered the same way.
//!
//! DETERMINISM: integer arithmetic only (see `kernels/common.cuh`); signature
//! minima are combined with `atomicMin` and merged with `min`, both
//! order-independent; band hashes of documents split over sub-batches are
//! computed on the host from the merged signatures.
//!
//! NOT YET RUN ON A GPU: the host code runs in the tests against the host
//! emulator ([`emulator`]), the kernels compile to CUBIN with NVRTC 12.9 and
//! 13.0, but the real driver path has not been executed on a device in this
//! repository's history; see docs/backends.md.

pub mod compile;
pub mod driver;
pub mod emulator;
pub mod probe;
pub mod source;

pub use probe::{driver_present, nvrtc_present};

use super::ops::{self, BandLayout, NgramTable, Permutations, ShingleBatch, NGRAM_MISS};
use super::plan::{self, BatchLimits, SubBatch};
use super::{Backend, BackendKind};
use anyhow::{anyhow, ensure, Context, Result};
use driver::{Arg, DeviceBuffer, DeviceInfo, Driver, HostBuffer, Kernel, KernelArgs};
use rayon::prelude::*;
use std::sync::{Arc, Mutex, OnceLock};

/// Default shingles per task (per thread block).
const SHINGLES_PER_TASK: u32 = 4096;
/// Default bytes of one lane's input buffer, and the scale of its others:
/// 32 MiB is about 0.6 ms of PCIe Gen5 transfer, far above the ~10 us launch
/// latency, while two lanes hold about 0.45 GiB of device and of page-locked
/// memory in all.
const TARGET_BYTES: usize = 32 << 20;
/// Lanes (streams) in turn.
const LANES: usize = 2;
/// `TRITTER_CUDA_EXACT_BUFFERS=1`: allocate every device buffer at exactly
/// the size one sub-batch needs, each time, so that compute-sanitizer sees
/// any overrun (a larger reused buffer hides small ones). Slower; for checks.
pub const EXACT_BUFFERS_ENV: &str = "TRITTER_CUDA_EXACT_BUFFERS";

/// The real driver, opened once per process.
fn real_driver() -> Result<Arc<dyn Driver>> {
    static DRIVER: OnceLock<std::result::Result<Arc<driver::CudaDriver>, String>> = OnceLock::new();
    let d = DRIVER
        .get_or_init(|| {
            let opened = std::panic::catch_unwind(|| {
                driver::CudaDriver::open(LANES, &|cc, _driver_version| {
                    let info = compile::nvrtc_info()?;
                    let target = compile::target_for_device(cc, &info.archs)?;
                    compile::compile(target)
                })
            });
            match opened {
                Ok(Ok(d)) => Ok(Arc::new(d)),
                Ok(Err(e)) => Err(format!("{e:#}")),
                Err(p) => Err(format!(
                    "cudarc panicked while opening the CUDA device: {}",
                    panic_text(&*p)
                )),
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)?;
    Ok(d)
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// A device buffer of one role in a lane, reused while large enough.
#[derive(Default)]
struct DevBuf(Option<DeviceBuffer>);

impl DevBuf {
    fn get(&mut self, d: &Arc<dyn Driver>, bytes: usize, exact: bool) -> Result<&DeviceBuffer> {
        let bytes = bytes.max(4);
        let fits = self
            .0
            .as_ref()
            .is_some_and(|b| b.bytes() == bytes || (!exact && b.bytes() > bytes));
        if !fits {
            // The lane is idle (synchronised) whenever its buffers are
            // fetched, so dropping the old one cannot race a copy.
            self.0 = None;
            self.0 = Some(DeviceBuffer::new(d, bytes)?);
        }
        self.0
            .as_ref()
            .ok_or_else(|| anyhow!("internal: device buffer vanished"))
    }
}

/// A page-locked host buffer of one role in a lane.
struct PinBuf {
    buf: Option<HostBuffer>,
    write_combined: bool,
}

impl PinBuf {
    fn new(write_combined: bool) -> PinBuf {
        PinBuf {
            buf: None,
            write_combined,
        }
    }

    fn get(&mut self, d: &Arc<dyn Driver>, bytes: usize) -> Result<&mut HostBuffer> {
        let bytes = bytes.max(4);
        if self.buf.as_ref().is_none_or(|b| b.bytes() < bytes) {
            self.buf = None;
            self.buf = Some(HostBuffer::new(d, bytes, self.write_combined)?);
        }
        self.buf
            .as_mut()
            .ok_or_else(|| anyhow!("internal: host buffer vanished"))
    }
}

/// One stream with its buffers. Reused only after `synchronize`: until
/// then the queued copies read and write its page-locked buffers.
struct Lane {
    stream: usize,
    input: DevBuf,
    tasks: DevBuf,
    out_a: DevBuf,
    out_b: DevBuf,
    pin_input: PinBuf,
    pin_tasks: PinBuf,
    pin_a: PinBuf,
    pin_b: PinBuf,
    /// The step whose results are in flight in this lane.
    pending: Option<usize>,
}

impl Lane {
    fn new(stream: usize) -> Lane {
        Lane {
            stream,
            input: DevBuf::default(),
            tasks: DevBuf::default(),
            out_a: DevBuf::default(),
            out_b: DevBuf::default(),
            pin_input: PinBuf::new(true),
            pin_tasks: PinBuf::new(true),
            pin_a: PinBuf::new(false),
            pin_b: PinBuf::new(false),
            pending: None,
        }
    }

    /// Allocates every buffer at the capacity `limits` imply.
    fn reserve(&mut self, d: &Arc<dyn Driver>, c: &Capacity) -> Result<()> {
        self.input.get(d, c.input, false)?;
        self.tasks.get(d, c.tasks, false)?;
        self.out_a.get(d, c.out_a, false)?;
        self.out_b.get(d, c.out_b, false)?;
        self.pin_input.get(d, c.input)?;
        self.pin_tasks.get(d, c.tasks)?;
        self.pin_a.get(d, c.out_a)?;
        self.pin_b.get(d, c.out_b)?;
        Ok(())
    }
}

/// Bytes of each lane buffer for given limits: the input holds shingle
/// hashes (u32), signatures for `band_hashes` (u32) or queries (u64); the
/// tasks 12 bytes each; `out_a` signatures or n-gram results (u32); `out_b`
/// band hashes (u64).
struct Capacity {
    input: usize,
    tasks: usize,
    out_a: usize,
    out_b: usize,
}

impl Capacity {
    fn of(l: &BatchLimits) -> Capacity {
        Capacity {
            input: l.max_shingles * 4,
            tasks: l.max_tasks * 12,
            out_a: l.max_outputs * 4,
            out_b: l.max_outputs * 8,
        }
    }
}

/// Mutable state behind the backend's mutex.
struct State {
    lanes: Vec<Lane>,
    perm_a: DevBuf,
    perm_b: DevBuf,
    /// The uploaded n-gram table: its generation and keys.
    table: Option<(u64, DeviceBuffer)>,
}

impl State {
    /// After a failure: wait for whatever was queued and forget it.
    fn reset(&mut self, d: &dyn Driver) {
        for lane in &mut self.lanes {
            let _ = d.synchronize(lane.stream);
            lane.pending = None;
        }
    }
}

pub struct CudaBackend {
    driver: Arc<dyn Driver>,
    limits: BatchLimits,
    exact: bool,
    state: Mutex<State>,
}

impl CudaBackend {
    /// Opens CUDA device 0. Errors (never panics) when there is no driver, no
    /// device, no NVRTC, the kernels do not compile or load, the buffers
    /// cannot be allocated or the smoke test fails.
    pub fn new() -> Result<CudaBackend> {
        Self::with_driver(real_driver()?, None)
    }

    /// As [`CudaBackend::new`] with explicit batch limits (tests use tiny
    /// ones to exercise sub-batch and task boundaries).
    pub fn with_limits(limits: BatchLimits) -> Result<CudaBackend> {
        limits.validate()?;
        Self::with_driver(real_driver()?, Some(limits))
    }

    /// The backend on any [`Driver`], e.g. the host emulator.
    pub fn with_driver(
        driver: Arc<dyn Driver>,
        limits: Option<BatchLimits>,
    ) -> Result<CudaBackend> {
        if let Some(l) = &limits {
            l.validate()?;
        }
        let info = driver.info();
        let target = if info.total_mem > 0 {
            TARGET_BYTES.min(info.total_mem / 16).max(1 << 20)
        } else {
            TARGET_BYTES
        };
        let auto = BatchLimits {
            shingles_per_task: SHINGLES_PER_TASK,
            max_shingles: target / 4,
            max_tasks: target / 12,
            max_outputs: target / 8,
        };
        let limits = limits.unwrap_or(auto);
        let exact = std::env::var(EXACT_BUFFERS_ENV).is_ok_and(|v| v == "1");
        let lanes = driver.streams().clamp(1, LANES);
        let backend = CudaBackend {
            driver,
            limits,
            exact,
            state: Mutex::new(State {
                lanes: (0..lanes).map(Lane::new).collect(),
                perm_a: DevBuf::default(),
                perm_b: DevBuf::default(),
                table: None,
            }),
        };
        if !exact {
            let cap = Capacity::of(&limits);
            backend
                .with_state("allocating the lanes' buffers", |st| {
                    for lane in &mut st.lanes {
                        lane.reserve(&backend.driver, &cap)?;
                    }
                    Ok(())
                })
                .context("the CUDA device refused the backend's memory")?;
        }
        backend.smoke_test()?;
        Ok(backend)
    }

    /// The batch limits in force.
    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// What the driver reports about the device and the loaded code.
    pub fn device_info(&self) -> &DeviceInfo {
        self.driver.info()
    }

    /// Every kernel once on a small seeded batch (documents split over
    /// sub-batches under small limits, an empty document), against the CPU
    /// reference.
    fn smoke_test(&self) -> Result<()> {
        let mut state = 0x5A0C_E7E5u64;
        let mut buf = ops::ShingleBuffer::new();
        for n in [0usize, 1, 37, 300, 5, 0, 1200, 64] {
            let doc: Vec<u32> = (0..n).map(|_| ops::splitmix64(&mut state) as u32).collect();
            buf.push_doc(&doc);
        }
        let perms = Permutations::new(130, 7);
        let layout = BandLayout {
            bands: 13,
            rows: 10,
        };
        let (sigs, bands) = self
            .signatures_and_bands(buf.as_batch(), &perms, layout)
            .context("CUDA smoke test")?;
        let mut want = vec![0u32; buf.docs() * perms.len()];
        let mut want_bands = vec![0u64; buf.docs() * layout.bands as usize];
        for d in 0..buf.docs() {
            let sig = &mut want[d * perms.len()..(d + 1) * perms.len()];
            ops::minhash_signature(buf.as_batch().doc(d), &perms, sig);
            ops::band_hashes_of(
                sig,
                layout,
                &mut want_bands[d * layout.bands as usize..(d + 1) * layout.bands as usize],
            );
        }
        ensure!(
            sigs == want && bands == want_bands,
            "the CUDA smoke test computed wrong signatures or band hashes on {}",
            self.describe()
        );
        let table = NgramTable::new(
            (0..500u64)
                .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .collect(),
        );
        let queries: Vec<u64> = (0..700u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i & 1))
            .collect();
        let got = self
            .ngram_membership(&queries, &table)
            .context("CUDA smoke test")?;
        let want: Vec<u32> = queries
            .iter()
            .map(|&q| ops::ngram_lookup(q, table.keys()))
            .collect();
        ensure!(
            got == want,
            "the CUDA smoke test computed wrong n-gram lookups on {}",
            self.describe()
        );
        Ok(())
    }

    /// Runs `body` on the state under the mutex, turning a panic into an
    /// error and resetting the lanes after any failure.
    fn with_state<R>(&self, what: &str, body: impl FnOnce(&mut State) -> Result<R>) -> Result<R> {
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => {
                let mut g = poisoned.into_inner();
                g.reset(&*self.driver);
                self.state.clear_poison();
                g
            }
        };
        let st = &mut *guard;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(st)))
            .unwrap_or_else(|p| Err(anyhow!("panicked: {}", panic_text(&*p))));
        if r.is_err() {
            st.reset(&*self.driver);
        }
        r.with_context(|| format!("{what} on {}", self.describe()))
    }

    /// Signatures of `batch`, and their band hashes when `layout` is given.
    fn signatures(
        &self,
        batch: ShingleBatch<'_>,
        perms: &Permutations,
        layout: Option<BandLayout>,
    ) -> Result<(Vec<u32>, Vec<u64>)> {
        let num_perm = perms.len();
        ensure!(
            perms.b.len() == num_perm,
            "permutations have {} multipliers but {} offsets",
            num_perm,
            perms.b.len()
        );
        ensure!(
            num_perm <= u32::MAX as usize / 2,
            "{num_perm} permutations are too many"
        );
        if let Some(l) = layout {
            ensure!(
                num_perm > 0 && l.bands as u64 * l.rows as u64 <= num_perm as u64,
                "{} bands x {} rows exceed {num_perm} permutations",
                l.bands,
                l.rows
            );
        }
        let docs = batch.docs();
        let nb = layout.map_or(0, |l| l.bands as usize);
        let limits = self.limits.spread(batch.hashes.len(), docs * num_perm);
        let subs: Vec<SubBatch> = plan::plan_signatures(&batch, num_perm, &limits)?;
        let mut out = plan::empty_signatures(docs, num_perm);
        let mut bands = vec![0u64; docs * nb];
        if !subs.is_empty() {
            let launches = subs
                .iter()
                .map(|sb| source::minhash_shape(sb.tasks.len() as u32, num_perm as u32))
                .collect::<Result<Vec<_>>>()?;
            self.with_state("minhash_signatures", |st| {
                self.run_signatures(
                    st, batch, perms, layout, &subs, &launches, &mut out, &mut bands,
                )
            })?;
        }
        if let Some(l) = layout {
            // Documents the device could not finish: no shingles outside every
            // sub-batch, or split over several (see plan::band_fixups).
            for d in plan::band_fixups(docs, &subs) {
                ops::band_hashes_of(
                    &out[d * num_perm..(d + 1) * num_perm],
                    l,
                    &mut bands[d * nb..(d + 1) * nb],
                );
            }
        }
        Ok((out, bands))
    }

    #[allow(clippy::too_many_arguments)]
    fn run_signatures(
        &self,
        st: &mut State,
        batch: ShingleBatch<'_>,
        perms: &Permutations,
        layout: Option<BandLayout>,
        subs: &[SubBatch],
        launches: &[source::MinhashLaunch],
        out: &mut [u32],
        bands: &mut [u64],
    ) -> Result<()> {
        let d = &self.driver;
        let num_perm = perms.len();
        let nb = layout.map_or(0, |l| l.bands as usize);
        // Permutations go up on stream 0, which is then synchronised, so
        // every lane's launches see them (and `perms` may change after).
        let pa = st.perm_a.get(d, num_perm * 4, self.exact)?.ptr();
        let pb = st.perm_b.get(d, num_perm * 4, self.exact)?.ptr();
        let s0 = st.lanes[0].stream;
        // SAFETY: pageable sources, synchronised right after; the device
        // buffers hold num_perm u32.
        unsafe {
            d.upload(s0, pa, perms.a.as_ptr() as *const u8, num_perm * 4)?;
            d.upload(s0, pb, perms.b.as_ptr() as *const u8, num_perm * 4)?;
        }
        d.synchronize(s0)?;
        let exact = self.exact;
        let mut encode = |lane: &mut Lane, i: usize| -> Result<()> {
            let sb = &subs[i];
            let hashes = &batch.hashes[sb.shingle_begin..sb.shingle_end];
            let tasks: &[u32] = bytemuck::cast_slice(&sb.tasks);
            let n_out = sb.docs() * num_perm;
            let n_bands = sb.docs() * nb;
            // 1. Stage into page-locked memory (the lane is synchronised).
            stage(
                lane.pin_input
                    .get(d, hashes.len() * 4)?
                    .slice_mut(hashes.len())?,
                hashes,
            );
            stage(
                lane.pin_tasks
                    .get(d, tasks.len() * 4)?
                    .slice_mut(tasks.len())?,
                tasks,
            );
            // 2. Queue the uploads, exactly the sub-batch's bytes.
            let d_in = lane.input.get(d, hashes.len() * 4, exact)?.ptr();
            let d_tasks = lane.tasks.get(d, tasks.len() * 4, exact)?.ptr();
            let d_out = lane.out_a.get(d, n_out * 4, exact)?.ptr();
            // SAFETY: the pinned buffers hold these bytes and are untouched
            // until the lane is synchronised; the device buffers are at
            // least as large (DevBuf::get).
            unsafe {
                if !hashes.is_empty() {
                    d.upload(
                        lane.stream,
                        d_in,
                        lane.pin_input.get(d, 0)?.as_ptr(),
                        hashes.len() * 4,
                    )?;
                }
                d.upload(
                    lane.stream,
                    d_tasks,
                    lane.pin_tasks.get(d, 0)?.as_ptr(),
                    tasks.len() * 4,
                )?;
            }
            // 3. Pre-fill the output with u32::MAX (0xFF bytes).
            d.memset(lane.stream, d_out, 0xFF, n_out * 4)?;
            // 4. One block per (task, permutation slice); every index the
            // kernel forms is inside these buffers: tasks address
            // [0, hashes.len()), docs < sb.docs(), permutations < num_perm.
            let l = launches[i];
            let args = KernelArgs::new(
                Kernel::MinhashSignatures,
                &[
                    ("hashes", Arg::Ptr(d_in)),
                    ("tasks", Arg::Ptr(d_tasks)),
                    ("perm_a", Arg::Ptr(pa)),
                    ("perm_b", Arg::Ptr(pb)),
                    ("out", Arg::Ptr(d_out)),
                    ("num_perm", Arg::U32(num_perm as u32)),
                    ("perms_per_thread", Arg::U32(l.perms_per_thread)),
                ],
            )?;
            d.launch(lane.stream, l.shape, &args)?;
            // 5. Band hashes of the signatures still on the device.
            if let Some(layout) = layout.filter(|_| n_bands > 0) {
                let d_bands = lane.out_b.get(d, n_bands * 8, exact)?.ptr();
                let args = KernelArgs::new(
                    Kernel::BandHashes,
                    &[
                        ("sigs", Arg::Ptr(d_out)),
                        ("out", Arg::Ptr(d_bands)),
                        ("num_docs", Arg::U32(sb.docs() as u32)),
                        ("num_perm", Arg::U32(num_perm as u32)),
                        ("bands", Arg::U32(layout.bands)),
                        ("rows", Arg::U32(layout.rows)),
                    ],
                )?;
                d.launch(lane.stream, source::bands_shape(n_bands as u64)?, &args)?;
                let pin = lane.pin_b.get(d, n_bands * 8)?;
                // SAFETY: `pin` holds n_bands u64 and is read only after the
                // lane is synchronised.
                unsafe { d.download(lane.stream, pin.as_mut_ptr(), d_bands, n_bands * 8)? };
            }
            // 6. Queue the download of the signatures.
            let pin = lane.pin_a.get(d, n_out * 4)?;
            // SAFETY: as above, n_out u32.
            unsafe { d.download(lane.stream, pin.as_mut_ptr(), d_out, n_out * 4) }
        };
        let mut consume = |lane: &mut Lane, i: usize| -> Result<()> {
            let sb = &subs[i];
            let n_out = sb.docs() * num_perm;
            plan::merge_min(
                out,
                sb,
                num_perm,
                lane.pin_a.get(d, n_out * 4)?.slice(n_out)?,
            );
            let n_bands = sb.docs() * nb;
            if n_bands > 0 {
                bands[sb.doc_begin * nb..sb.doc_end * nb]
                    .copy_from_slice(lane.pin_b.get(d, n_bands * 8)?.slice(n_bands)?);
            }
            Ok(())
        };
        pipelined(&**d, &mut st.lanes, subs.len(), &mut encode, &mut consume)
    }
}

/// Copies `src` into the page-locked `dst`, in parallel for large copies.
///
/// PERF: one core copies about 10 GB/s into write-combined memory, below a
/// PCIe Gen5 x16 link's ~50 GB/s, so a large staging copy on one thread would
/// bound the upload; chunks of 1 MiB over rayon's threads raise the copy
/// rate with the cores (not measured on a GPU machine yet).
fn stage<T: bytemuck::Pod + Send + Sync>(dst: &mut [T], src: &[T]) {
    let chunk = (1usize << 20) / std::mem::size_of::<T>().max(1);
    if src.len() <= 4 * chunk {
        dst.copy_from_slice(src);
    } else {
        dst.par_chunks_mut(chunk)
            .zip(src.par_chunks(chunk))
            .for_each(|(d, s)| d.copy_from_slice(s));
    }
}

/// Runs `n` steps over the lanes in turn. `encode(lane, i)` stages step `i`
/// and queues its copies and launches on the lane's stream; `consume(lane,
/// i)` reads its results after the lane is synchronised. A lane is
/// synchronised only when it is about to be reused, and at the end, in step
/// order.
fn pipelined(
    d: &dyn Driver,
    lanes: &mut [Lane],
    n: usize,
    encode: &mut dyn FnMut(&mut Lane, usize) -> Result<()>,
    consume: &mut dyn FnMut(&mut Lane, usize) -> Result<()>,
) -> Result<()> {
    let k = lanes.len();
    for i in 0..n {
        let lane = &mut lanes[i % k];
        if let Some(j) = lane.pending.take() {
            d.synchronize(lane.stream)?;
            consume(lane, j)?;
        }
        encode(lane, i)?;
        lane.pending = Some(i);
    }
    let mut rest: Vec<usize> = (0..k).filter(|&l| lanes[l].pending.is_some()).collect();
    rest.sort_by_key(|&l| lanes[l].pending);
    for l in rest {
        let lane = &mut lanes[l];
        if let Some(j) = lane.pending.take() {
            d.synchronize(lane.stream)?;
            consume(lane, j)?;
        }
    }
    Ok(())
}

impl Backend for CudaBackend {
    fn describe(&self) -> String {
        let s = self.driver.info();
        format!(
            "cuda ({}, sm_{}{}, {} MiB, driver {}; {})",
            s.name,
            s.capability.0,
            s.capability.1,
            s.total_mem >> 20,
            compile::cuda_version_text(s.driver_version),
            s.code
        )
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn minhash_signatures(
        &self,
        batch: ShingleBatch<'_>,
        perms: &Permutations,
    ) -> Result<Vec<u32>> {
        Ok(self.signatures(batch, perms, None)?.0)
    }

    fn signatures_and_bands(
        &self,
        batch: ShingleBatch<'_>,
        perms: &Permutations,
        layout: BandLayout,
    ) -> Result<(Vec<u32>, Vec<u64>)> {
        self.signatures(batch, perms, Some(layout))
    }

    fn band_hashes(
        &self,
        signatures: &[u32],
        num_perm: usize,
        layout: BandLayout,
    ) -> Result<Vec<u64>> {
        let docs = plan::validate_bands(signatures, num_perm, layout.bands, layout.rows)?;
        let bands = layout.bands as usize;
        let mut out = vec![0u64; docs * bands];
        if docs == 0 || bands == 0 {
            return Ok(out);
        }
        ensure!(
            num_perm <= u32::MAX as usize,
            "{num_perm} permutations are too many"
        );
        let limits = self.limits.spread(signatures.len(), docs * bands);
        let chunk = (limits.max_outputs / bands)
            .min(limits.max_shingles / num_perm)
            .min(u32::MAX as usize / bands)
            .max(1);
        let chunks: Vec<(usize, usize)> = plan::chunks(docs, chunk).collect();
        for &(d0, d1) in &chunks {
            source::bands_shape(((d1 - d0) * bands) as u64)?;
        }
        let d = &self.driver;
        let exact = self.exact;
        self.with_state("band_hashes", |st| {
            let mut encode = |lane: &mut Lane, i: usize| -> Result<()> {
                let (d0, d1) = chunks[i];
                let n = d1 - d0;
                let sigs = &signatures[d0 * num_perm..d1 * num_perm];
                let n_out = n * bands;
                stage(
                    lane.pin_input
                        .get(d, sigs.len() * 4)?
                        .slice_mut(sigs.len())?,
                    sigs,
                );
                let d_in = lane.input.get(d, sigs.len() * 4, exact)?.ptr();
                let d_out = lane.out_b.get(d, n_out * 8, exact)?.ptr();
                // SAFETY: staged bytes, untouched until the lane syncs.
                unsafe {
                    d.upload(
                        lane.stream,
                        d_in,
                        lane.pin_input.get(d, 0)?.as_ptr(),
                        sigs.len() * 4,
                    )?
                };
                // The kernel reads d * num_perm + j * rows + k < n * num_perm
                // (validated bands * rows <= num_perm) and writes < n * bands.
                let args = KernelArgs::new(
                    Kernel::BandHashes,
                    &[
                        ("sigs", Arg::Ptr(d_in)),
                        ("out", Arg::Ptr(d_out)),
                        ("num_docs", Arg::U32(n as u32)),
                        ("num_perm", Arg::U32(num_perm as u32)),
                        ("bands", Arg::U32(layout.bands)),
                        ("rows", Arg::U32(layout.rows)),
                    ],
                )?;
                d.launch(lane.stream, source::bands_shape(n_out as u64)?, &args)?;
                let pin = lane.pin_b.get(d, n_out * 8)?;
                // SAFETY: read only after the lane syncs.
                unsafe { d.download(lane.stream, pin.as_mut_ptr(), d_out, n_out * 8) }
            };
            let mut consume = |lane: &mut Lane, i: usize| -> Result<()> {
                let (d0, d1) = chunks[i];
                let n_out = (d1 - d0) * bands;
                out[d0 * bands..d1 * bands]
                    .copy_from_slice(lane.pin_b.get(d, n_out * 8)?.slice(n_out)?);
                Ok(())
            };
            pipelined(&**d, &mut st.lanes, chunks.len(), &mut encode, &mut consume)
        })?;
        Ok(out)
    }

    fn ngram_membership(&self, queries: &[u64], table: &NgramTable) -> Result<Vec<u32>> {
        if let Some(trivial) = plan::ngram_without_device(queries, table)? {
            return Ok(trivial);
        }
        let n_keys = table.len();
        let limits = self.limits.spread(queries.len(), queries.len());
        let q_chunk = (limits.max_shingles / 2)
            .min(limits.max_outputs)
            .min(u32::MAX as usize)
            .max(1);
        let chunks: Vec<(usize, usize)> = plan::chunks(queries.len(), q_chunk).collect();
        let mut out = vec![NGRAM_MISS; queries.len()];
        let d = &self.driver;
        let exact = self.exact;
        self.with_state("ngram_membership", |st| {
            // The table stays on the device while its generation is the
            // same (NgramTable's keys cannot change after construction).
            if !matches!(&st.table, Some((g, _)) if *g == table.generation()) {
                st.table = None;
                let keys = DeviceBuffer::new(d, n_keys * 8)
                    .with_context(|| format!("uploading an n-gram table of {n_keys} keys"))?;
                let s0 = st.lanes[0].stream;
                // SAFETY: pageable source, synchronised before returning.
                unsafe {
                    d.upload(
                        s0,
                        keys.ptr(),
                        table.keys().as_ptr() as *const u8,
                        n_keys * 8,
                    )?
                };
                d.synchronize(s0)?;
                st.table = Some((table.generation(), keys));
            }
            let keys = match &st.table {
                Some((_, k)) => k.ptr(),
                None => return Err(anyhow!("internal: the n-gram table upload was lost")),
            };
            let mut encode = |lane: &mut Lane, i: usize| -> Result<()> {
                let (q0, q1) = chunks[i];
                let n = q1 - q0;
                stage(
                    lane.pin_input.get(d, n * 8)?.slice_mut(n)?,
                    &queries[q0..q1],
                );
                let d_q = lane.input.get(d, n * 8, exact)?.ptr();
                let d_out = lane.out_a.get(d, n * 4, exact)?.ptr();
                // SAFETY: staged bytes, untouched until the lane syncs.
                unsafe { d.upload(lane.stream, d_q, lane.pin_input.get(d, 0)?.as_ptr(), n * 8)? };
                // Reads stay below n queries and n_keys keys, writes below n.
                let args = KernelArgs::new(
                    Kernel::NgramMembership,
                    &[
                        ("queries", Arg::Ptr(d_q)),
                        ("keys", Arg::Ptr(keys)),
                        ("out", Arg::Ptr(d_out)),
                        ("num_queries", Arg::U32(n as u32)),
                        ("num_keys", Arg::U32(n_keys as u32)),
                    ],
                )?;
                d.launch(lane.stream, source::ngram_shape(n as u32), &args)?;
                let pin = lane.pin_a.get(d, n * 4)?;
                // SAFETY: read only after the lane syncs.
                unsafe { d.download(lane.stream, pin.as_mut_ptr(), d_out, n * 4) }
            };
            let mut consume = |lane: &mut Lane, i: usize| -> Result<()> {
                let (q0, q1) = chunks[i];
                out[q0..q1].copy_from_slice(lane.pin_a.get(d, (q1 - q0) * 4)?.slice(q1 - q0)?);
                Ok(())
            };
            pipelined(&**d, &mut st.lanes, chunks.len(), &mut encode, &mut consume)
        })?;
        Ok(out)
    }
}
