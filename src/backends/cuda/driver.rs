//! The device operations the CUDA backend uses, behind one trait, so that the
//! backend's host code (planning, staging, argument lists, memsets, copies,
//! merges, lanes) runs unchanged against the real driver ([`CudaDriver`],
//! `cudarc`'s driver API) or the host emulator
//! ([`super::emulator::EmulatorDriver`], the kernels compiled as C++ with
//! sanitizers in a child process), which is how it is tested without a GPU.
//!
//! The trait is the subset of the CUDA driver API we need, with its
//! semantics: copies, memsets and launches are queued on a stream and run in
//! order on it; host buffers are page-locked (`cuMemHostAlloc`); a host buffer
//! given to an asynchronous copy must not be touched until its stream is
//! synchronised. Device pointers are plain `u64` (`CUdeviceptr`).

use super::compile::Compiled;
use super::source::{Shape, BANDS_PARAMS, MINHASH_PARAMS, NGRAM_PARAMS};
use anyhow::{anyhow, ensure, Result};
use std::sync::Arc;

/// A device address.
pub type DevicePtr = u64;

/// The three kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    MinhashSignatures,
    BandHashes,
    NgramMembership,
}

impl Kernel {
    pub const ALL: [Kernel; 3] = [
        Kernel::MinhashSignatures,
        Kernel::BandHashes,
        Kernel::NgramMembership,
    ];

    /// The `__global__` function's name (= op name, file stem).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::MinhashSignatures => "minhash_signatures",
            Kernel::BandHashes => "band_hashes",
            Kernel::NgramMembership => "ngram_membership",
        }
    }
}

/// One kernel argument, as `cuLaunchKernel` takes it (a pointer to a value
/// of the parameter's size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    Ptr(DevicePtr),
    U32(u32),
}

/// A kernel's arguments by parameter name, in the order of its parameter list
/// in `source` (checked when built, so a launch cannot pass them shuffled).
#[derive(Clone, Debug)]
pub struct KernelArgs {
    pub kernel: Kernel,
    pub args: Vec<Arg>,
}

impl KernelArgs {
    /// `named` must list exactly the kernel's parameters, in order.
    pub fn new(kernel: Kernel, named: &[(&str, Arg)]) -> Result<KernelArgs> {
        let params = match kernel {
            Kernel::MinhashSignatures => MINHASH_PARAMS,
            Kernel::BandHashes => BANDS_PARAMS,
            Kernel::NgramMembership => NGRAM_PARAMS,
        };
        ensure!(
            named.len() == params.len()
                && named.iter().zip(params).all(|((n, a), (pn, pk))| {
                    n == pn
                        && matches!(
                            (a, pk),
                            (Arg::Ptr(_), super::source::ParamKind::Ptr)
                                | (Arg::U32(_), super::source::ParamKind::U32)
                        )
                }),
            "internal: the arguments {:?} do not match {}'s parameters {:?}",
            named.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            kernel.name(),
            params.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        );
        Ok(KernelArgs {
            kernel,
            args: named.iter().map(|&(_, a)| a).collect(),
        })
    }
}

/// What a driver reports about its device.
#[derive(Clone, Debug)]
pub struct DeviceInfo {
    pub name: String,
    pub capability: (i32, i32),
    pub total_mem: usize,
    /// `cuDriverGetVersion`: CUDA `major * 1000 + minor * 10`.
    pub driver_version: i32,
    /// What was loaded, e.g. `CUBIN sm_90 (ELF ABI 8, ...) from NVRTC 13.0`.
    pub code: String,
    /// Multiprocessors and their clock (kHz), 0 where unknown: the integer
    /// floor of `backends --bench` comes from them.
    pub multiprocessors: i32,
    pub clock_khz: i32,
}

/// The device operations of the CUDA backend. See the module doc for the
/// semantics every implementation keeps.
pub trait Driver: Send + Sync {
    fn info(&self) -> &DeviceInfo;
    /// Streams available (the backend's lanes use `0..streams()`).
    fn streams(&self) -> usize;
    fn alloc(&self, bytes: usize) -> Result<DevicePtr>;
    fn free(&self, ptr: DevicePtr);
    /// Page-locked host memory; `write_combined` for upload-only buffers.
    fn alloc_host(&self, bytes: usize, write_combined: bool) -> Result<*mut u8>;
    /// Frees what `alloc_host(bytes, _)` returned.
    ///
    /// # Safety
    /// `ptr` and `bytes` are those of one `alloc_host` call, freed once.
    unsafe fn free_host(&self, ptr: *mut u8, bytes: usize);
    /// Queues a host-to-device copy.
    ///
    /// # Safety
    /// `src..src + bytes` must stay valid and unchanged until `stream` is
    /// synchronised (or be pageable memory, which the real driver stages
    /// before returning; the backend synchronises then anyway).
    unsafe fn upload(
        &self,
        stream: usize,
        dst: DevicePtr,
        src: *const u8,
        bytes: usize,
    ) -> Result<()>;
    /// Queues a device-to-host copy.
    ///
    /// # Safety
    /// `dst..dst + bytes` must stay valid and unread until `stream` is
    /// synchronised.
    unsafe fn download(
        &self,
        stream: usize,
        dst: *mut u8,
        src: DevicePtr,
        bytes: usize,
    ) -> Result<()>;
    fn memset(&self, stream: usize, dst: DevicePtr, value: u8, bytes: usize) -> Result<()>;
    fn launch(&self, stream: usize, shape: Shape, args: &KernelArgs) -> Result<()>;
    fn synchronize(&self, stream: usize) -> Result<()>;
}

/// A device allocation of exactly `bytes`, freed on drop.
pub struct DeviceBuffer {
    driver: Arc<dyn Driver>,
    ptr: DevicePtr,
    bytes: usize,
}

impl DeviceBuffer {
    pub fn new(driver: &Arc<dyn Driver>, bytes: usize) -> Result<DeviceBuffer> {
        ensure!(bytes > 0, "internal: a device allocation of 0 bytes");
        let ptr = driver.alloc(bytes)?;
        Ok(DeviceBuffer {
            driver: driver.clone(),
            ptr,
            bytes,
        })
    }

    pub fn ptr(&self) -> DevicePtr {
        self.ptr
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for DeviceBuffer {
    fn drop(&mut self) {
        self.driver.free(self.ptr);
    }
}

/// Page-locked host memory of exactly `bytes`, freed on drop.
pub struct HostBuffer {
    driver: Arc<dyn Driver>,
    ptr: *mut u8,
    bytes: usize,
}

// SAFETY: the buffer is plain memory owned by this value; access goes
// through `&self` / `&mut self`, so Rust's aliasing rules hold across threads.
unsafe impl Send for HostBuffer {}
// SAFETY: as above; shared access is read-only.
unsafe impl Sync for HostBuffer {}

impl HostBuffer {
    pub fn new(driver: &Arc<dyn Driver>, bytes: usize, write_combined: bool) -> Result<HostBuffer> {
        ensure!(bytes > 0, "internal: a host allocation of 0 bytes");
        let ptr = driver.alloc_host(bytes, write_combined)?;
        ensure!(
            !ptr.is_null() && (ptr as usize).is_multiple_of(64),
            "page-locked allocation returned a misaligned pointer"
        );
        Ok(HostBuffer {
            driver: driver.clone(),
            ptr,
            bytes,
        })
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }

    /// The first `len` values as `T`.
    pub fn slice<T: bytemuck::Pod>(&self, len: usize) -> Result<&[T]> {
        self.check::<T>(len)?;
        // SAFETY: in bounds and aligned (checked), `T` is Pod so any bytes
        // are a valid value, and `&self` prevents concurrent writes through
        // this buffer.
        Ok(unsafe { std::slice::from_raw_parts(self.ptr as *const T, len) })
    }

    /// The first `len` values as `T`, writable.
    pub fn slice_mut<T: bytemuck::Pod>(&mut self, len: usize) -> Result<&mut [T]> {
        self.check::<T>(len)?;
        // SAFETY: as in `slice`, with `&mut self` for exclusive access.
        Ok(unsafe { std::slice::from_raw_parts_mut(self.ptr as *mut T, len) })
    }

    fn check<T>(&self, len: usize) -> Result<()> {
        let need = len
            .checked_mul(std::mem::size_of::<T>())
            .ok_or_else(|| anyhow!("host buffer view overflows"))?;
        ensure!(
            need <= self.bytes,
            "internal: a view of {need} bytes of a {}-byte host buffer",
            self.bytes
        );
        ensure!((self.ptr as usize).is_multiple_of(std::mem::align_of::<T>()));
        Ok(())
    }
}

impl Drop for HostBuffer {
    fn drop(&mut self) {
        // SAFETY: this value owns the allocation and frees it once.
        unsafe { self.driver.free_host(self.ptr, self.bytes) };
    }
}

/// The real CUDA driver: device 0's primary context, the module compiled by
/// NVRTC, and one stream per lane.
pub struct CudaDriver {
    ctx: Arc<cudarc::driver::CudaContext>,
    // Kept alive for the functions' sake.
    _module: Arc<cudarc::driver::CudaModule>,
    functions: [cudarc::driver::CudaFunction; 3],
    streams: Vec<Arc<cudarc::driver::CudaStream>>,
    info: DeviceInfo,
}

fn driver_err(what: &str) -> impl Fn(cudarc::driver::DriverError) -> anyhow::Error + '_ {
    move |e| anyhow!("{what}: {e}")
}

impl CudaDriver {
    /// Opens device 0 and loads `code` into it, with `streams` streams.
    /// `load_code` compiles for the device, given its compute capability and
    /// driver version.
    pub fn open(
        streams: usize,
        load_code: &dyn Fn((i32, i32), i32) -> Result<Compiled>,
    ) -> Result<CudaDriver> {
        use cudarc::driver::{sys, CudaContext};
        super::probe::driver_present()?;
        let count = CudaContext::device_count().map_err(|e| {
            anyhow!(
                "no CUDA device (the driver is present but cuInit/cuDeviceGetCount failed: {e})"
            )
        })?;
        ensure!(count >= 1, "no CUDA device");
        super::probe::nvrtc_present()?;
        let ctx = CudaContext::new(0).map_err(|e| anyhow!("could not open CUDA device 0: {e}"))?;
        // We order our own copies and launches per stream and synchronise
        // before reusing buffers; cudarc's per-allocation events would only
        // add work (we do not use its slices).
        // SAFETY: no cudarc slice of this context exists yet, and we create
        // none whose cross-stream use needs the tracking.
        unsafe { ctx.disable_event_tracking() };
        let name = ctx.name().unwrap_or_else(|_| "unknown CUDA device".into());
        let capability = ctx
            .compute_capability()
            .map_err(|e| anyhow!("could not read the compute capability of {name}: {e}"))?;
        let total_mem = ctx.total_mem().unwrap_or(0);
        let multiprocessors = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .unwrap_or(0);
        let clock_khz = ctx
            .attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CLOCK_RATE)
            .unwrap_or(0);
        let mut driver_version = 0i32;
        // SAFETY: writes one int through a valid pointer; cuInit ran above.
        unsafe { sys::cuDriverGetVersion(&mut driver_version) }
            .result()
            .map_err(driver_err("cuDriverGetVersion"))?;
        let compiled = load_code(capability, driver_version)?;
        super::compile::check_loadable(&compiled, driver_version)?;
        let image = match &compiled.image {
            super::compile::Image::Cubin { bytes, .. } => {
                cudarc::nvrtc::Ptx::from_binary(bytes.clone())
            }
            super::compile::Image::Ptx { text, .. } => cudarc::nvrtc::Ptx::from_src(text.clone()),
        };
        let module = ctx.load_module(image).map_err(|e| {
            let unsupported = e.0 == sys::CUresult::CUDA_ERROR_UNSUPPORTED_PTX_VERSION;
            anyhow!(
                "the CUDA driver (CUDA {}) rejected the kernels ({}, from NVRTC {}.{}) on {name}: {e}{}",
                super::compile::cuda_version_text(driver_version),
                compiled.describe(),
                compiled.nvrtc.0,
                compiled.nvrtc.1,
                if unsupported {
                    "; the PTX is newer than this driver accepts: use an NVRTC no newer than the driver, or update the driver"
                } else {
                    ""
                }
            )
        })?;
        let f = |k: Kernel| {
            module
                .load_function(k.name())
                .map_err(|e| anyhow!("kernel {} missing from the compiled module: {e}", k.name()))
        };
        let functions = [
            f(Kernel::MinhashSignatures)?,
            f(Kernel::BandHashes)?,
            f(Kernel::NgramMembership)?,
        ];
        let streams = (0..streams)
            .map(|_| {
                ctx.new_stream()
                    .map_err(|e| anyhow!("cannot create a CUDA stream: {e}"))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CudaDriver {
            info: DeviceInfo {
                name,
                capability,
                total_mem,
                driver_version,
                code: format!(
                    "{} from NVRTC {}.{}",
                    compiled.describe(),
                    compiled.nvrtc.0,
                    compiled.nvrtc.1
                ),
                multiprocessors,
                clock_khz,
            },
            ctx,
            _module: module,
            functions,
            streams,
        })
    }

    fn bind(&self) -> Result<()> {
        self.ctx
            .bind_to_thread()
            .map_err(driver_err("binding the CUDA context to this thread"))
    }

    fn stream(&self, i: usize) -> Result<cudarc::driver::sys::CUstream> {
        self.streams
            .get(i)
            .map(|s| s.cu_stream())
            .ok_or_else(|| anyhow!("internal: no CUDA stream {i}"))
    }
}

impl Driver for CudaDriver {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn streams(&self) -> usize {
        self.streams.len()
    }

    fn alloc(&self, bytes: usize) -> Result<DevicePtr> {
        self.bind()?;
        // SAFETY: plain allocation; the memory is unset and every user writes
        // before reading (the backend's memsets and uploads).
        unsafe { cudarc::driver::result::malloc_sync(bytes) }
            .map_err(|e| anyhow!("cannot allocate {bytes} bytes on the GPU: {e}"))
    }

    fn free(&self, ptr: DevicePtr) {
        if self.bind().is_ok() {
            // SAFETY: `ptr` came from `alloc` and is freed once (DeviceBuffer
            // owns it); cuMemFree waits for work using it to finish.
            let _ = unsafe { cudarc::driver::result::free_sync(ptr) };
        }
    }

    fn alloc_host(&self, bytes: usize, write_combined: bool) -> Result<*mut u8> {
        self.bind()?;
        // Write-combined memory is fast for the CPU to write and the GPU to
        // read, and very slow for the CPU to read: uploads only.
        let flags = if write_combined {
            cudarc::driver::sys::CU_MEMHOSTALLOC_WRITECOMBINED
        } else {
            0
        };
        // SAFETY: plain page-locked allocation, freed by `free_host`.
        unsafe { cudarc::driver::result::malloc_host(bytes, flags) }
            .map(|p| p as *mut u8)
            .map_err(|e| anyhow!("cannot allocate {bytes} bytes of page-locked memory: {e}"))
    }

    unsafe fn free_host(&self, ptr: *mut u8, _bytes: usize) {
        if self.bind().is_ok() {
            // SAFETY: `ptr` came from `alloc_host`, freed once by HostBuffer.
            let _ = unsafe { cudarc::driver::result::free_host(ptr as _) };
        }
    }

    unsafe fn upload(
        &self,
        stream: usize,
        dst: DevicePtr,
        src: *const u8,
        bytes: usize,
    ) -> Result<()> {
        self.bind()?;
        let s = self.stream(stream)?;
        // SAFETY: the caller keeps `src` valid until the stream syncs; `dst`
        // is a live allocation of at least `bytes` (DeviceBuffer sizes).
        cudarc::driver::sys::cuMemcpyHtoDAsync_v2(dst, src as *const _, bytes, s)
            .result()
            .map_err(driver_err("host-to-device copy"))
    }

    unsafe fn download(
        &self,
        stream: usize,
        dst: *mut u8,
        src: DevicePtr,
        bytes: usize,
    ) -> Result<()> {
        self.bind()?;
        let s = self.stream(stream)?;
        // SAFETY: as for `upload`, the other way.
        cudarc::driver::sys::cuMemcpyDtoHAsync_v2(dst as *mut _, src, bytes, s)
            .result()
            .map_err(driver_err("device-to-host copy"))
    }

    fn memset(&self, stream: usize, dst: DevicePtr, value: u8, bytes: usize) -> Result<()> {
        self.bind()?;
        let s = self.stream(stream)?;
        // SAFETY: `dst..dst + bytes` lies in a live allocation (the backend
        // sizes its memsets from its buffers); ordered on `s`.
        unsafe { cudarc::driver::result::memset_d8_async(dst, value, bytes, s) }
            .map_err(driver_err("device memset"))
    }

    fn launch(&self, stream: usize, shape: Shape, args: &KernelArgs) -> Result<()> {
        self.bind()?;
        let s = self.stream(stream)?;
        let f = match args.kernel {
            Kernel::MinhashSignatures => &self.functions[0],
            Kernel::BandHashes => &self.functions[1],
            Kernel::NgramMembership => &self.functions[2],
        };
        // cuLaunchKernel reads each parameter's size from the pointer it is
        // given: a u64 slot holds a pointer, and its low 4 bytes (we run on
        // little-endian hosts only) hold a u32.
        let mut slots: Vec<u64> = args
            .args
            .iter()
            .map(|a| match *a {
                Arg::Ptr(p) => p,
                Arg::U32(v) => v as u64,
            })
            .collect();
        let mut params: Vec<*mut std::ffi::c_void> = slots
            .iter_mut()
            .map(|v| v as *mut u64 as *mut std::ffi::c_void)
            .collect();
        // SAFETY: `params` matches the kernel's parameter list (KernelArgs
        // checked names and kinds against the source); `slots` outlives the
        // call, which copies the values; the indices the kernel forms are
        // bounded by the buffers the backend allocated (see each launch).
        unsafe {
            cudarc::driver::result::launch_kernel(
                f.cu_function(),
                shape.grid,
                shape.block,
                0,
                s,
                &mut params,
            )
        }
        .map_err(|e| anyhow!("launching {}: {e}", args.kernel.name()))
    }

    fn synchronize(&self, stream: usize) -> Result<()> {
        self.bind()?;
        let s = self.stream(stream)?;
        // SAFETY: a live stream of this context.
        unsafe { cudarc::driver::result::stream::synchronize(s) }
            .map_err(driver_err("CUDA stream failed"))
    }
}

impl Drop for CudaDriver {
    fn drop(&mut self) {
        // Let queued work finish before the streams and module go.
        for i in 0..self.streams.len() {
            let _ = self.synchronize(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_arguments_must_follow_the_parameter_list() {
        let ok = KernelArgs::new(
            Kernel::NgramMembership,
            &[
                ("queries", Arg::Ptr(1)),
                ("keys", Arg::Ptr(2)),
                ("out", Arg::Ptr(3)),
                ("num_queries", Arg::U32(4)),
                ("num_keys", Arg::U32(5)),
            ],
        )
        .unwrap();
        assert_eq!(ok.args[3], Arg::U32(4));
        // Swapped names, a wrong kind, a missing one: all refused.
        for bad in [
            vec![
                ("keys", Arg::Ptr(2)),
                ("queries", Arg::Ptr(1)),
                ("out", Arg::Ptr(3)),
                ("num_queries", Arg::U32(4)),
                ("num_keys", Arg::U32(5)),
            ],
            vec![
                ("queries", Arg::Ptr(1)),
                ("keys", Arg::Ptr(2)),
                ("out", Arg::U32(3)),
                ("num_queries", Arg::U32(4)),
                ("num_keys", Arg::U32(5)),
            ],
            vec![
                ("queries", Arg::Ptr(1)),
                ("keys", Arg::Ptr(2)),
                ("out", Arg::Ptr(3)),
                ("num_queries", Arg::U32(4)),
            ],
        ] {
            assert!(KernelArgs::new(Kernel::NgramMembership, &bad).is_err());
        }
    }
}
