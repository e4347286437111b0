//! A [`Driver`] that runs the CUDA kernels on the CPU, in a child process:
//! `kernels/emu/run_kernels.cpp`, the unchanged `kernels/*.cu` compiled as
//! C++ under `kernels/emu/cuda_host.hpp`, built with AddressSanitizer and
//! UndefinedBehaviorSanitizer by the tests. With it the whole CUDA backend,
//! host code included, runs where there is no GPU.
//!
//! What it checks that a plain run would not:
//! * **Device memory** lives in the child, one exact-size `malloc` per
//!   allocation, filled with garbage: AddressSanitizer reports any kernel
//!   access past an allocation, and an element the host never wrote reads as
//!   garbage, not zero. Copies and memsets outside a live allocation, a free
//!   of an unknown pointer and a pointer argument outside every allocation
//!   are errors.
//! * **Kernel arguments** are sent as `cuLaunchKernel` sees them (one value
//!   per parameter, of its size); the child checks their count and sizes
//!   against the kernel's C++ signature.
//! * **Asynchrony**: copies, memsets and launches are queued per stream here
//!   and run only when the stream is synchronised, as a GPU may run them
//!   late. A queued download first fills its host destination with garbage,
//!   so host code that reads results before synchronising, or rewrites a
//!   staging buffer while its upload is queued, gives wrong results.
//! * `free` first runs every queue (as `cuMemFree` waits for the device).
//!
//! The child reports kernel failures (sanitizer reports, a barrier deadlock
//! caught by its watchdog) on stderr and exits; this driver turns that into
//! an error carrying the child's stderr.
//!
//! Protocol (little-endian): a request is an op byte and its fields; every
//! reply starts with a u32 status and a u32-length message.
//!
//! | op | request | reply payload |
//! |---|---|---|
//! | 1 alloc | u64 bytes | u64 pointer |
//! | 2 free | u64 pointer | |
//! | 3 upload | u64 dst, u64 bytes, bytes | |
//! | 4 download | u64 src, u64 bytes | bytes |
//! | 5 memset | u64 dst, u8 value, u64 bytes | |
//! | 6 launch | u8 kernel, 6 x u32 grid and block, u32 n, n x (u32 size, value) | |

use super::driver::{Arg, DeviceInfo, DevicePtr, Driver, Kernel, KernelArgs};
use super::source::Shape;
use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;

/// Byte written over a download's destination when it is queued.
pub const GARBAGE: u8 = 0xA5;

/// An operation queued on a stream.
enum Op {
    Upload {
        dst: DevicePtr,
        src: *const u8,
        bytes: usize,
    },
    Download {
        dst: *mut u8,
        src: DevicePtr,
        bytes: usize,
    },
    Memset {
        dst: DevicePtr,
        value: u8,
        bytes: usize,
    },
    Launch {
        shape: Shape,
        args: KernelArgs,
    },
}

struct Io {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    queues: Vec<Vec<Op>>,
    /// Set once the child failed: every later call fails with it.
    dead: Option<String>,
}

// SAFETY: the raw pointers in queued ops are host buffers the backend keeps
// alive and untouched until the stream is synchronised (the Driver
// contract); they are only dereferenced under the mutex.
unsafe impl Send for Io {}

/// The emulated device; see the module doc.
pub struct EmulatorDriver {
    io: Mutex<Io>,
    info: DeviceInfo,
    stderr_log: std::path::PathBuf,
}

impl EmulatorDriver {
    /// Starts `exe` (a build of `kernels/emu/run_kernels.cpp`) with
    /// `streams` streams. The child's stderr goes to `stderr_log`, which
    /// errors quote.
    pub fn spawn(exe: &Path, streams: usize, stderr_log: &Path) -> Result<EmulatorDriver> {
        let log = std::fs::File::create(stderr_log)
            .with_context(|| format!("creating {}", stderr_log.display()))?;
        let mut cmd = Command::new(exe);
        // Sanitizer settings for a sanitizer build (ignored otherwise): stop
        // at the first report; no leak check (LeakSanitizer needs ptrace,
        // which containers often refuse, and leaks are not what we test).
        for (k, v) in [
            ("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=0"),
            ("UBSAN_OPTIONS", "halt_on_error=1:print_stacktrace=1"),
        ] {
            if std::env::var_os(k).is_none() {
                cmd.env(k, v);
            }
        }
        let mut child = cmd
            .arg("serve")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting the CUDA emulator {}", exe.display()))?;
        let stdin = child.stdin.take().context("emulator stdin")?;
        let stdout = child.stdout.take().context("emulator stdout")?;
        Ok(EmulatorDriver {
            io: Mutex::new(Io {
                child,
                stdin,
                stdout,
                queues: (0..streams.max(1)).map(|_| Vec::new()).collect(),
                dead: None,
            }),
            info: DeviceInfo {
                name: "host emulator".into(),
                capability: (9, 0),
                total_mem: 256 << 20,
                driver_version: 13000,
                code: format!("C++ build of the kernels ({})", exe.display()),
                multiprocessors: 0,
                clock_khz: 0,
            },
            stderr_log: stderr_log.to_path_buf(),
        })
    }

    fn with_io<R>(&self, f: impl FnOnce(&mut Io) -> Result<R>) -> Result<R> {
        let mut io = self
            .io
            .lock()
            .map_err(|_| anyhow!("the emulator connection was poisoned"))?;
        if let Some(d) = &io.dead {
            bail!("the CUDA emulator failed earlier: {d}");
        }
        let r = f(&mut io);
        if let Err(e) = &r {
            // Any failure leaves the child in an unknown state: stop it and
            // keep the reason, with what it printed.
            let _ = io.child.kill();
            let _ = io.child.wait();
            let stderr = std::fs::read_to_string(&self.stderr_log).unwrap_or_default();
            let tail: String = stderr
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            let msg = format!("{e:#}\n--- emulator stderr (tail)\n{tail}");
            io.dead = Some(msg.clone());
            bail!(msg);
        }
        r
    }

    fn run_queue(io: &mut Io, stream: usize) -> Result<()> {
        let ops = std::mem::take(
            io.queues
                .get_mut(stream)
                .ok_or_else(|| anyhow!("no stream {stream}"))?,
        );
        for op in ops {
            match op {
                Op::Upload { dst, src, bytes } => {
                    let mut req = vec![3u8];
                    req.extend(dst.to_le_bytes());
                    req.extend((bytes as u64).to_le_bytes());
                    // SAFETY: the Driver contract keeps `src` valid and
                    // unchanged until this synchronisation.
                    req.extend_from_slice(unsafe { std::slice::from_raw_parts(src, bytes) });
                    call(io, &req, 0)?;
                }
                Op::Download { dst, src, bytes } => {
                    let mut req = vec![4u8];
                    req.extend(src.to_le_bytes());
                    req.extend((bytes as u64).to_le_bytes());
                    let data = call(io, &req, bytes)?;
                    // SAFETY: the Driver contract keeps `dst` valid and
                    // unread until this synchronisation.
                    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, bytes) };
                }
                Op::Memset { dst, value, bytes } => {
                    let mut req = vec![5u8];
                    req.extend(dst.to_le_bytes());
                    req.push(value);
                    req.extend((bytes as u64).to_le_bytes());
                    call(io, &req, 0)?;
                }
                Op::Launch { shape, args } => {
                    let mut req = vec![6u8, kernel_id(args.kernel)];
                    for v in [
                        shape.grid.0,
                        shape.grid.1,
                        shape.grid.2,
                        shape.block.0,
                        shape.block.1,
                        shape.block.2,
                    ] {
                        req.extend(v.to_le_bytes());
                    }
                    req.extend((args.args.len() as u32).to_le_bytes());
                    for a in &args.args {
                        match *a {
                            Arg::Ptr(p) => {
                                req.extend(8u32.to_le_bytes());
                                req.extend(p.to_le_bytes());
                            }
                            Arg::U32(v) => {
                                req.extend(4u32.to_le_bytes());
                                req.extend(v.to_le_bytes());
                            }
                        }
                    }
                    call(io, &req, 0)
                        .with_context(|| format!("emulated launch of {}", args.kernel.name()))?;
                }
            }
        }
        Ok(())
    }

    fn flush_all(io: &mut Io) -> Result<()> {
        for s in 0..io.queues.len() {
            Self::run_queue(io, s)?;
        }
        Ok(())
    }
}

fn kernel_id(k: Kernel) -> u8 {
    match k {
        Kernel::MinhashSignatures => 0,
        Kernel::BandHashes => 1,
        Kernel::NgramMembership => 2,
    }
}

/// Sends `req`, reads the status and `payload` bytes of reply.
fn call(io: &mut Io, req: &[u8], payload: usize) -> Result<Vec<u8>> {
    io.stdin
        .write_all(req)
        .and_then(|_| io.stdin.flush())
        .context("writing to the CUDA emulator (did it crash?)")?;
    let mut head = [0u8; 8];
    io.stdout
        .read_exact(&mut head)
        .context("reading from the CUDA emulator (did it crash?)")?;
    let status = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let mut msg = vec![0u8; len];
    io.stdout.read_exact(&mut msg).context("emulator message")?;
    if status != 0 {
        bail!("CUDA emulator: {}", String::from_utf8_lossy(&msg));
    }
    let mut data = vec![0u8; payload];
    io.stdout
        .read_exact(&mut data)
        .context("emulator payload")?;
    Ok(data)
}

impl Driver for EmulatorDriver {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn streams(&self) -> usize {
        self.io.lock().map(|io| io.queues.len()).unwrap_or(1)
    }

    fn alloc(&self, bytes: usize) -> Result<DevicePtr> {
        self.with_io(|io| {
            let mut req = vec![1u8];
            req.extend((bytes as u64).to_le_bytes());
            let p = call(io, &req, 8)?;
            Ok(u64::from_le_bytes(
                p.try_into().map_err(|_| anyhow!("short reply"))?,
            ))
        })
    }

    fn free(&self, ptr: DevicePtr) {
        let _ = self.with_io(|io| {
            Self::flush_all(io)?;
            let mut req = vec![2u8];
            req.extend(ptr.to_le_bytes());
            call(io, &req, 0).map(|_| ())
        });
    }

    fn alloc_host(&self, bytes: usize, _write_combined: bool) -> Result<*mut u8> {
        let layout = std::alloc::Layout::from_size_align(bytes, 4096)
            .map_err(|e| anyhow!("host allocation of {bytes} bytes: {e}"))?;
        // SAFETY: `layout` has a non-zero size (HostBuffer refuses 0).
        let p = unsafe { std::alloc::alloc(layout) };
        if p.is_null() {
            bail!("cannot allocate {bytes} bytes of host memory");
        }
        // Garbage, as uninitialised page-locked memory may hold.
        // SAFETY: `p` points at `bytes` writable bytes.
        unsafe { std::ptr::write_bytes(p, GARBAGE, bytes) };
        Ok(p)
    }

    unsafe fn free_host(&self, ptr: *mut u8, bytes: usize) {
        // Queued copies may still name this buffer: run them first, as
        // cuMemFreeHost waits for them.
        let _ = self.with_io(Self::flush_all);
        if let Ok(layout) = std::alloc::Layout::from_size_align(bytes, 4096) {
            // SAFETY: allocated by `alloc_host` with this layout.
            unsafe { std::alloc::dealloc(ptr, layout) };
        }
    }

    unsafe fn upload(
        &self,
        stream: usize,
        dst: DevicePtr,
        src: *const u8,
        bytes: usize,
    ) -> Result<()> {
        self.with_io(|io| {
            io.queues
                .get_mut(stream)
                .ok_or_else(|| anyhow!("no stream {stream}"))?
                .push(Op::Upload { dst, src, bytes });
            Ok(())
        })
    }

    unsafe fn download(
        &self,
        stream: usize,
        dst: *mut u8,
        src: DevicePtr,
        bytes: usize,
    ) -> Result<()> {
        // SAFETY: the caller hands us `dst..dst + bytes` until the sync.
        std::ptr::write_bytes(dst, GARBAGE, bytes);
        self.with_io(|io| {
            io.queues
                .get_mut(stream)
                .ok_or_else(|| anyhow!("no stream {stream}"))?
                .push(Op::Download { dst, src, bytes });
            Ok(())
        })
    }

    fn memset(&self, stream: usize, dst: DevicePtr, value: u8, bytes: usize) -> Result<()> {
        self.with_io(|io| {
            io.queues
                .get_mut(stream)
                .ok_or_else(|| anyhow!("no stream {stream}"))?
                .push(Op::Memset { dst, value, bytes });
            Ok(())
        })
    }

    fn launch(&self, stream: usize, shape: Shape, args: &KernelArgs) -> Result<()> {
        self.with_io(|io| {
            io.queues
                .get_mut(stream)
                .ok_or_else(|| anyhow!("no stream {stream}"))?
                .push(Op::Launch {
                    shape,
                    args: args.clone(),
                });
            Ok(())
        })
    }

    fn synchronize(&self, stream: usize) -> Result<()> {
        self.with_io(|io| Self::run_queue(io, stream))
    }
}

impl Drop for EmulatorDriver {
    fn drop(&mut self) {
        if let Ok(io) = self.io.get_mut() {
            let _ = io.stdin.write_all(&[0u8]);
            let _ = io.stdin.flush();
            let _ = io.child.wait();
        }
    }
}
