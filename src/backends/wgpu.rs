//! The wgpu backend: the three ops as WGSL compute shaders (`shaders/*.wgsl`)
//! on any Vulkan, Metal or DX12 adapter, including Mesa's software Vulkan
//! (lavapipe), which is how CI tests the shaders on every submission.
//!
//! `WgpuBackend::new(false)` (what `--backend auto` asks for) accepts only a
//! hardware adapter: a software rasteriser emulates the GPU on the CPU and is
//! slower than the CPU backend. `WgpuBackend::new(true)` (explicit
//! `--backend wgpu`) accepts a software adapter too.
//!
//! Each call cuts its input into device-sized sub-batches
//! ([`super::plan`]), and pipelines them: sub-batch `i + 1` is uploaded and
//! dispatched while sub-batch `i` is read back and merged on the CPU, with two
//! readback buffers in turn. Buffers, pipelines and the uploaded n-gram table
//! (keyed by [`NgramTable::generation`]) are kept between calls.
//!
//! DETERMINISM: the shaders use 32-bit integer arithmetic only, and every
//! result is independent of dispatch order (see each shader's header), so the
//! output equals the CPU reference bit for bit for any batch split.

mod device;
mod quiet_probe;

use super::ops::{self, BandLayout, NgramTable, Permutations, ShingleBatch, NGRAM_MISS};
use super::plan::{self, BatchLimits};
use super::{Backend, BackendKind};
use anyhow::{anyhow, bail, ensure, Context, Result};
use device::{bind, bind_at, grid_2d, Buf, Gpu, WORKGROUP};
use std::sync::Mutex;

pub use device::{list_adapters, BANDS_WGSL, MINHASH_WGSL, NGRAM_WGSL};

/// Default shingles per task (per workgroup).
const SHINGLES_PER_TASK: u32 = 2048;
/// Default cap on the bytes of one upload or one output, below the device
/// limit: large enough to amortise a submission, small enough to pipeline.
const TARGET_BYTES: u64 = 64 << 20;

pub struct WgpuBackend {
    name: String,
    software: bool,
    limits: BatchLimits,
    gpu: Mutex<Gpu>,
}

impl WgpuBackend {
    /// Opens the best adapter; with `allow_software == false` only a hardware
    /// one. Never panics: a missing Vulkan loader or driver is an `Err`.
    pub fn new(allow_software: bool) -> Result<WgpuBackend> {
        Self::open(allow_software, None)
    }

    /// As [`WgpuBackend::new`] with explicit batch limits (tests use tiny
    /// ones to exercise sub-batch and task boundaries).
    pub fn with_limits(allow_software: bool, limits: BatchLimits) -> Result<WgpuBackend> {
        limits.validate()?;
        Self::open(allow_software, Some(limits))
    }

    fn open(allow_software: bool, limits: Option<BatchLimits>) -> Result<WgpuBackend> {
        // wgpu and its drivers are foreign code; a panic inside them must not
        // take the program down when `auto` is only probing.
        let opened = std::panic::catch_unwind(|| Gpu::open(allow_software))
            .map_err(|p| anyhow!("wgpu panicked while opening a device: {}", panic_text(&p)))??;
        let (gpu, info) = opened;
        let max_binding = gpu.max_binding();
        let target = max_binding.min(TARGET_BYTES);
        let max_dim = gpu.limits.max_compute_workgroups_per_dimension;
        let auto = BatchLimits {
            shingles_per_task: SHINGLES_PER_TASK,
            max_shingles: (target / 4) as usize,
            max_tasks: max_dim as usize,
            max_outputs: (target / 8) as usize,
        };
        let software = info.device_type == ::wgpu::DeviceType::Cpu;
        let name = format!(
            "{} on {:?}{}",
            info.name,
            info.backend,
            if software { ", software" } else { "" }
        );
        Ok(WgpuBackend {
            name,
            software,
            limits: limits.unwrap_or(auto),
            gpu: Mutex::new(gpu),
        })
    }

    /// Whether the adapter is a software rasteriser (e.g. lavapipe).
    pub fn is_software(&self) -> bool {
        self.software
    }

    /// The batch limits in force.
    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Gpu>> {
        self.gpu
            .lock()
            .map_err(|_| anyhow!("the wgpu device was poisoned by an earlier failure"))
    }
}

impl WgpuBackend {
    /// Signatures of `batch`, and their band hashes when `layout` is given
    /// (hashed in the same submission, from the signatures on the device).
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
        if let Some(l) = layout {
            plan::validate_bands(&[], num_perm, l.bands, l.rows)?;
        }
        let nb = layout.map_or(0, |l| l.bands as usize);
        let docs = batch.docs();
        let limits = self.limits.spread(batch.hashes.len(), docs * num_perm);
        let subs = plan::plan_signatures(&batch, num_perm, &limits)?;
        let mut out = plan::empty_signatures(docs, num_perm);
        let mut bands = vec![0u64; docs * nb];
        let fix = |out: &[u32], bands: &mut [u64]| {
            if let Some(l) = layout {
                for d in plan::band_fixups(docs, &subs) {
                    ops::band_hashes_of(
                        &out[d * num_perm..(d + 1) * num_perm],
                        l,
                        &mut bands[d * nb..(d + 1) * nb],
                    );
                }
            }
        };
        if subs.is_empty() {
            fix(&out, &mut bands);
            return Ok((out, bands));
        }
        let mut gpu = self.lock()?;
        let max_dim = gpu.limits.max_compute_workgroups_per_dimension;
        let slices = (num_perm as u32).div_ceil(WORKGROUP);
        ensure!(
            slices <= max_dim,
            "{num_perm} permutations exceed this wgpu device's dispatch limit of {} workgroups ({} permutations)",
            max_dim,
            max_dim as u64 * WORKGROUP as u64
        );
        ensure!(
            subs.iter().all(|s| s.tasks.len() <= max_dim as usize),
            "batch limits allow more tasks per dispatch than the device's {max_dim} workgroups"
        );

        // Permutations: uploaded once per call (8 bytes per permutation).
        let pa = gpu.buffer(Buf::PermA, num_perm as u64 * 4)?;
        let pb = gpu.buffer(Buf::PermB, num_perm as u64 * 4)?;
        gpu.queue
            .write_buffer(&pa, 0, bytemuck::cast_slice(&perms.a));
        gpu.queue
            .write_buffer(&pb, 0, bytemuck::cast_slice(&perms.b));

        let mut encode = |gpu: &mut Gpu, i: usize, role: Buf| -> Result<Encoded> {
            let sb = &subs[i];
            let hashes = &batch.hashes[sb.shingle_begin..sb.shingle_end];
            let h_bytes = hashes.len() as u64 * 4;
            let t_bytes = sb.tasks.len() as u64 * 12;
            let o_bytes = (sb.docs() * num_perm) as u64 * 4;
            let b_bytes = (sb.docs() * nb) as u64 * 8;
            let params = [num_perm as u32, sb.tasks.len() as u32, 0, 0];
            let pbuf = gpu.buffer(Buf::MinhashParams, 16)?;
            let hbuf = gpu.buffer(Buf::Hashes, h_bytes)?;
            let tbuf = gpu.buffer(Buf::Tasks, t_bytes)?;
            let obuf = gpu.buffer(Buf::Signatures, o_bytes)?;
            // Signatures, then band hashes, in one readback buffer.
            let rb = gpu.buffer(role, o_bytes + b_bytes)?;
            // 1. Upload: queue writes land before this submission's commands
            //    and after the previous submission's, so one set of input
            //    buffers serves every sub-batch.
            gpu.queue
                .write_buffer(&pbuf, 0, bytemuck::cast_slice(&params));
            gpu.queue
                .write_buffer(&hbuf, 0, bytemuck::cast_slice(hashes));
            gpu.queue
                .write_buffer(&tbuf, 0, bytemuck::cast_slice(&sb.tasks));
            // 2. Bind exactly this sub-batch's ranges.
            let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("minhash_signatures"),
                layout: &gpu.minhash.layout,
                entries: &[
                    bind(0, &pbuf, 16),
                    bind(1, &hbuf, h_bytes),
                    bind(2, &tbuf, t_bytes),
                    bind(3, &pa, num_perm as u64 * 4),
                    bind(4, &pb, num_perm as u64 * 4),
                    bind(5, &obuf, o_bytes),
                ],
            });
            let (band_group, band_out) = match layout.filter(|_| b_bytes > 0) {
                Some(l) => {
                    let bp = gpu.buffer(Buf::BandParams, 16)?;
                    let bo = gpu.buffer(Buf::BandOutput, b_bytes)?;
                    let p = [num_perm as u32, l.bands, l.rows, sb.docs() as u32];
                    gpu.queue.write_buffer(&bp, 0, bytemuck::cast_slice(&p));
                    let g = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some("band_hashes"),
                        layout: &gpu.bands.layout,
                        entries: &[
                            bind(0, &bp, 16),
                            bind(1, &obuf, o_bytes),
                            bind(2, &bo, b_bytes),
                        ],
                    });
                    (Some(g), Some(bo))
                }
                None => (None, None),
            };
            let fill_bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("fill_max"),
                layout: &gpu.fill.layout,
                entries: &[bind(5, &obuf, o_bytes)],
            });
            // 3. Fill the output with u32::MAX, fold the minima in, copy out.
            let mut enc = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("minhash_signatures"),
                    timestamp_writes: None,
                });
                let (fx, fy) = grid_2d((sb.docs() * num_perm) as u64, max_dim);
                pass.set_pipeline(&gpu.fill.pipeline);
                pass.set_bind_group(0, &fill_bg, &[]);
                pass.dispatch_workgroups(fx, fy, 1);
                pass.set_pipeline(&gpu.minhash.pipeline);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(sb.tasks.len() as u32, slices, 1);
                if let Some(bgb) = &band_group {
                    // 4. Band hashes of the signatures just computed: a
                    //    later dispatch of the pass sees the earlier one's
                    //    writes (wgpu orders storage use between dispatches).
                    let (x, y) = grid_2d((sb.docs() * nb) as u64, max_dim);
                    pass.set_pipeline(&gpu.bands.pipeline);
                    pass.set_bind_group(0, bgb, &[]);
                    pass.dispatch_workgroups(x, y, 1);
                }
            }
            enc.copy_buffer_to_buffer(&obuf, 0, &rb, 0, o_bytes);
            if let Some(bbuf) = &band_out {
                enc.copy_buffer_to_buffer(bbuf, 0, &rb, o_bytes, b_bytes);
            }
            Ok((gpu.queue.submit([enc.finish()]), rb, o_bytes + b_bytes))
        };
        let mut consume = |i: usize, bytes: &[u8]| {
            let sb = &subs[i];
            let o_bytes = sb.docs() * num_perm * 4;
            let part: &[u32] = bytemuck::cast_slice(&bytes[..o_bytes]);
            plan::merge_min(&mut out, sb, num_perm, part);
            if nb > 0 {
                // vec2<u32>(low, high) is the little-endian layout of a u64.
                let dst: &mut [u8] =
                    bytemuck::cast_slice_mut(&mut bands[sb.doc_begin * nb..sb.doc_end * nb]);
                dst.copy_from_slice(&bytes[o_bytes..]);
            }
        };
        pipelined(&mut gpu, subs.len(), &mut encode, &mut consume)
            .with_context(|| format!("minhash_signatures on wgpu ({})", self.name))?;
        drop(gpu);
        fix(&out, &mut bands);
        Ok((out, bands))
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// What one pipelined step leaves to read back: its submission, the readback
/// buffer and the byte count.
type Encoded = (wgpu::SubmissionIndex, wgpu::Buffer, u64);

/// The readback buffer of step `i`: two in turn, so that step `i + 1` can be
/// in flight while step `i` is mapped.
fn readback_role(i: usize) -> Buf {
    if i.is_multiple_of(2) {
        Buf::Readback0
    } else {
        Buf::Readback1
    }
}

/// Runs `n` round trips, pipelined two deep: `encode(gpu, i, role)` uploads,
/// dispatches and copies the result of step `i` into the readback buffer
/// `role`; `consume(i, bytes)` takes the result of step `i` while step `i + 1`
/// runs on the device.
fn pipelined(
    gpu: &mut Gpu,
    n: usize,
    encode: &mut dyn FnMut(&mut Gpu, usize, Buf) -> Result<Encoded>,
    consume: &mut dyn FnMut(usize, &[u8]),
) -> Result<()> {
    let scope_v = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let scope_m = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let mut run = || -> Result<()> {
        let mut pending: Option<(usize, Encoded)> = None;
        for i in 0..n {
            let step = encode(gpu, i, readback_role(i))?;
            if let Some((j, (sub, buf, bytes))) = pending.take() {
                gpu.read_back(&buf, bytes, sub, &mut |b| consume(j, b))?;
            }
            pending = Some((i, step));
        }
        if let Some((j, (sub, buf, bytes))) = pending.take() {
            gpu.read_back(&buf, bytes, sub, &mut |b| consume(j, b))?;
        }
        Ok(())
    };
    let result = run();
    let oom = pollster::block_on(scope_m.pop());
    let invalid = pollster::block_on(scope_v.pop());
    if let Some(e) = invalid {
        bail!("wgpu rejected a dispatch: {e}");
    }
    if let Some(e) = oom {
        bail!("the wgpu device ran out of memory: {e}");
    }
    result?;
    gpu.check_uncaptured()
}

impl Backend for WgpuBackend {
    fn describe(&self) -> String {
        format!("wgpu ({})", self.name)
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
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
        let mut gpu = self.lock()?;
        let max_dim = gpu.limits.max_compute_workgroups_per_dimension;
        let max_binding = gpu.max_binding();
        let per_doc_in = num_perm as u64 * 4;
        let per_doc_out = bands as u64 * 8;
        let chunk = (max_binding / per_doc_in)
            .min(max_binding / per_doc_out)
            .min((self.limits.max_outputs / bands) as u64)
            .min(u32::MAX as u64 / bands as u64) as usize;
        ensure!(
            chunk > 0,
            "one signature of {num_perm} values does not fit a wgpu storage binding"
        );
        let chunks: Vec<(usize, usize)> = plan::chunks(docs, chunk).collect();
        let mut encode = |gpu: &mut Gpu, i: usize, role: Buf| -> Result<Encoded> {
            let (d0, d1) = chunks[i];
            let n = d1 - d0;
            let in_bytes = n as u64 * per_doc_in;
            let out_bytes = n as u64 * per_doc_out;
            let params = [num_perm as u32, layout.bands, layout.rows, n as u32];
            let pbuf = gpu.buffer(Buf::BandParams, 16)?;
            let ibuf = gpu.buffer(Buf::BandInput, in_bytes)?;
            let obuf = gpu.buffer(Buf::BandOutput, out_bytes)?;
            let rb = gpu.buffer(role, out_bytes)?;
            gpu.queue
                .write_buffer(&pbuf, 0, bytemuck::cast_slice(&params));
            gpu.queue.write_buffer(
                &ibuf,
                0,
                bytemuck::cast_slice(&signatures[d0 * num_perm..d1 * num_perm]),
            );
            let bg = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("band_hashes"),
                layout: &gpu.bands.layout,
                entries: &[
                    bind(0, &pbuf, 16),
                    bind(1, &ibuf, in_bytes),
                    bind(2, &obuf, out_bytes),
                ],
            });
            let mut enc = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("band_hashes"),
                    timestamp_writes: None,
                });
                let (x, y) = grid_2d((n * bands) as u64, max_dim);
                pass.set_pipeline(&gpu.bands.pipeline);
                pass.set_bind_group(0, &bg, &[]);
                pass.dispatch_workgroups(x, y, 1);
            }
            enc.copy_buffer_to_buffer(&obuf, 0, &rb, 0, out_bytes);
            Ok((gpu.queue.submit([enc.finish()]), rb, out_bytes))
        };
        let mut consume = |i: usize, bytes: &[u8]| {
            let (d0, d1) = chunks[i];
            // vec2<u32>(low, high) is the little-endian layout of a u64.
            let dst: &mut [u8] = bytemuck::cast_slice_mut(&mut out[d0 * bands..d1 * bands]);
            dst.copy_from_slice(bytes);
        };
        pipelined(&mut gpu, chunks.len(), &mut encode, &mut consume)
            .with_context(|| format!("band_hashes on wgpu ({})", self.name))?;
        drop(gpu);
        Ok(out)
    }

    fn ngram_membership(&self, queries: &[u64], table: &NgramTable) -> Result<Vec<u32>> {
        if let Some(trivial) = plan::ngram_without_device(queries, table)? {
            return Ok(trivial);
        }
        let n_keys = table.len();
        let mut gpu = self.lock()?;
        let max_dim = gpu.limits.max_compute_workgroups_per_dimension;
        let max_binding = gpu.max_binding();
        // Upload the table once per generation.
        let cached = matches!(&gpu.table, Some((g, _, _)) if *g == table.generation());
        if !cached {
            let bytes = n_keys as u64 * 8;
            ensure!(
                bytes <= gpu.limits.max_buffer_size,
                "an n-gram table of {n_keys} keys ({bytes} bytes) exceeds this wgpu device's buffer limit of {} bytes; use --backend cpu or cuda",
                gpu.limits.max_buffer_size
            );
            gpu.table = None;
            let buf = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("ngram table"),
                size: bytes.next_multiple_of(16),
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            gpu.queue
                .write_buffer(&buf, 0, bytemuck::cast_slice(table.keys()));
            gpu.table = Some((table.generation(), buf, n_keys));
        }
        let table_buf = match &gpu.table {
            Some((_, b, _)) => b.clone(),
            None => bail!("the n-gram table upload was lost"),
        };
        // Table chunks: whole bindings, offsets aligned for storage bindings.
        let align = gpu.limits.min_storage_buffer_offset_alignment.max(8) as u64;
        let keys_per_chunk =
            ((max_binding / 8) / (align / 8) * (align / 8)).max(align / 8) as usize;
        let table_chunks: Vec<(usize, usize)> = plan::chunks(n_keys, keys_per_chunk).collect();
        let q_chunk = (max_binding / 8)
            .min(self.limits.max_outputs as u64)
            .min(u32::MAX as u64) as usize;
        let q_chunks: Vec<(usize, usize)> = plan::chunks(queries.len(), q_chunk).collect();
        let mut out = vec![NGRAM_MISS; queries.len()];
        let mut encode = |gpu: &mut Gpu, i: usize, role: Buf| -> Result<Encoded> {
            let (q0, q1) = q_chunks[i];
            let n = q1 - q0;
            let q_bytes = n as u64 * 8;
            let o_bytes = n as u64 * 4;
            let qbuf = gpu.buffer(Buf::Queries, q_bytes)?;
            let obuf = gpu.buffer(Buf::NgramOutput, o_bytes)?;
            let rb = gpu.buffer(role, o_bytes)?;
            gpu.queue
                .write_buffer(&qbuf, 0, bytemuck::cast_slice(&queries[q0..q1]));
            // One params slot per table chunk: each is written before the
            // submission, so each dispatch needs its own uniform range.
            let p_stride = gpu.limits.min_uniform_buffer_offset_alignment.max(16) as u64;
            let pbuf = gpu.buffer(Buf::NgramParams, p_stride * table_chunks.len() as u64)?;
            let mut groups = Vec::with_capacity(table_chunks.len());
            for (c, &(k0, k1)) in table_chunks.iter().enumerate() {
                let params = [n as u32, (k1 - k0) as u32, k0 as u32, (c == 0) as u32];
                gpu.queue
                    .write_buffer(&pbuf, c as u64 * p_stride, bytemuck::cast_slice(&params));
                groups.push(gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("ngram_membership"),
                    layout: &gpu.ngram.layout,
                    entries: &[
                        bind_at(0, &pbuf, c as u64 * p_stride, 16),
                        bind(1, &qbuf, q_bytes),
                        bind_at(2, &table_buf, k0 as u64 * 8, (k1 - k0) as u64 * 8),
                        bind(3, &obuf, o_bytes),
                    ],
                }));
            }
            let mut enc = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("ngram_membership"),
                    timestamp_writes: None,
                });
                let (x, y) = grid_2d(n as u64, max_dim);
                pass.set_pipeline(&gpu.ngram.pipeline);
                for bg in &groups {
                    pass.set_bind_group(0, bg, &[]);
                    pass.dispatch_workgroups(x, y, 1);
                }
            }
            enc.copy_buffer_to_buffer(&obuf, 0, &rb, 0, o_bytes);
            Ok((gpu.queue.submit([enc.finish()]), rb, o_bytes))
        };
        let mut consume = |i: usize, bytes: &[u8]| {
            let (q0, q1) = q_chunks[i];
            out[q0..q1].copy_from_slice(bytemuck::cast_slice(bytes));
        };
        pipelined(&mut gpu, q_chunks.len(), &mut encode, &mut consume)
            .with_context(|| format!("ngram_membership on wgpu ({})", self.name))?;
        drop(gpu);
        Ok(out)
    }
}
