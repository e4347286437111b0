//! Compiling the kernels with NVRTC: a CUBIN for the device's own
//! architecture, PTX only for a GPU newer than this NVRTC knows.
//!
//! ## Why CUBIN
//! PTX is compiled again by the driver when the module loads, and a driver
//! accepts PTX of its own CUDA version's ISA or older only: NVRTC 13.5 writes
//! `.version 9.5` (also for its default target), a CUDA 13.0 driver (r580,
//! what H100/H200 fleets run) accepts at most 9.0, and the load fails with
//! `CUDA_ERROR_UNSUPPORTED_PTX_VERSION` (222). A CUBIN is machine code for one
//! `sm_XY`: the driver loads it as is, and CUDA's minor-version compatibility
//! lets a CUBIN from any 13.x toolkit run on any 13.x driver. So we ask NVRTC
//! for a CUBIN (`--gpu-architecture=sm_XY`, then `nvrtcGetCUBIN`) whenever it
//! lists the device's architecture (`nvrtcGetSupportedArchs`), and fall back
//! to PTX for the newest architecture it knows when the GPU is newer than the
//! NVRTC (a newer GPU comes with a newer driver, which JIT-compiles older
//! PTX). Before loading we check what the driver can take ([`check_loadable`]),
//! and a refused load names both versions.
//!
//! ## PTX ISA versions
//! [`PTX_ISA_OF_CUDA`] maps each CUDA release to the PTX ISA it writes and its
//! driver accepts at most, from the PTX ISA manual's release history ("PTX ISA
//! version ... CUDA release", docs.nvidia.com/cuda/parallel-thread-execution,
//! section "Release Notes"), as NVIDIA's `cuda-python` encodes it
//! (`cuda/bindings/utils/_ptx_utils.py`): 8.0-8.5 for CUDA 12.0-12.5, 8.5 for
//! 12.6, 8.6 for 12.7, 8.7 for 12.8, 8.8 for 12.9, 9.0 for 13.0, 9.1 for 13.1.
//! Checked here: NVRTC 12.9.86 writes `.version 8.8`, 13.0.88 writes 9.0. For
//! 13.x releases past the table we extrapolate 9.x (NVRTC 13.5 writes 9.5).
//!
//! ## CUBIN headers
//! A CUBIN is an ELF file with `e_machine = EM_CUDA` (190). Its architecture
//! is in `e_flags`: the low byte for ELF ABI version 7 (`EF_CUDA_SM`), bits
//! 8-15 for ABI version 8 (`EF_CUDA_SM_MASK`, `EF_CUDA_SM_OFFSET`), as
//! `llvm/include/llvm/BinaryFormat/ELF.h` and LLVM's
//! `ELFObjectFileBase::getNVPTXCPUName` read them. Seen here: NVRTC 12.9 writes
//! ABI 7 for sm_80/sm_90 (`e_flags` 0x500550, 0x5a055a) and ABI 8 for sm_120;
//! NVRTC 13.0 writes ABI 8 for every target (sm_90: 0x6005a04).

use super::probe;
use super::source::kernel_source;
use anyhow::{anyhow, bail, ensure, Context, Result};
use cudarc::nvrtc::sys;
use std::ffi::{c_char, c_int, CString};

/// `(CUDA version as major * 1000 + minor * 10, PTX ISA (major, minor))`:
/// the PTX a release writes and the newest its driver accepts.
pub const PTX_ISA_OF_CUDA: &[(i32, (u32, u32))] = &[
    (11000, (7, 0)),
    (11010, (7, 1)),
    (11020, (7, 2)),
    (11030, (7, 3)),
    (11040, (7, 4)),
    (11050, (7, 5)),
    (11060, (7, 6)),
    (11070, (7, 7)),
    (11080, (7, 8)),
    (12000, (8, 0)),
    (12010, (8, 1)),
    (12020, (8, 2)),
    (12030, (8, 3)),
    (12040, (8, 4)),
    (12050, (8, 5)),
    (12060, (8, 5)),
    (12070, (8, 6)),
    (12080, (8, 7)),
    (12090, (8, 8)),
    (13000, (9, 0)),
    (13010, (9, 1)),
];

/// The newest PTX ISA a driver (or NVRTC) of CUDA `version`
/// (`major * 1000 + minor * 10`) writes or accepts. CUDA 13 releases past
/// the table are extrapolated as ISA 9.minor; `None` before CUDA 11.
pub fn ptx_isa_of_cuda(version: i32) -> Option<(u32, u32)> {
    let (major, minor) = (version / 1000, (version % 1000) / 10);
    if major == 13 && minor as usize >= 2 {
        return Some((9, minor as u32));
    }
    PTX_ISA_OF_CUDA
        .iter()
        .rev()
        .find(|(v, _)| *v <= version)
        .map(|&(_, isa)| isa)
        .filter(|_| major >= 11)
}

/// The oldest CUDA release whose driver accepts PTX ISA `isa`.
pub fn min_cuda_for_ptx(isa: (u32, u32)) -> Option<i32> {
    if isa.0 == 9 && isa.1 >= 2 {
        return Some(13000 + isa.1 as i32 * 10);
    }
    PTX_ISA_OF_CUDA
        .iter()
        .find(|(_, i)| *i >= isa)
        .map(|&(v, _)| v)
}

/// A CUDA version `major * 1000 + minor * 10` as `major.minor`.
pub fn cuda_version_text(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// What to compile for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Machine code (a CUBIN) for `sm_N`.
    Sm(u32),
    /// PTX for the virtual architecture `compute_N`.
    Compute(u32),
}

impl Target {
    /// Parses `sm_90` / `compute_90` (also `sm90`, `90` as `sm_90`).
    pub fn parse(s: &str) -> Result<Target> {
        let t = s.trim().to_ascii_lowercase();
        let (kind, digits) = if let Some(d) = t.strip_prefix("compute_") {
            ("compute", d)
        } else if let Some(d) = t.strip_prefix("sm_").or_else(|| t.strip_prefix("sm")) {
            ("sm", d)
        } else {
            ("sm", t.as_str())
        };
        let n: u32 = digits.parse().map_err(|_| {
            anyhow!("{s:?} is not a CUDA architecture (expected sm_90 or compute_90)")
        })?;
        ensure!((30..=1000).contains(&n), "{s:?} is not a CUDA architecture");
        Ok(if kind == "compute" {
            Target::Compute(n)
        } else {
            Target::Sm(n)
        })
    }

    pub fn arch(self) -> u32 {
        match self {
            Target::Sm(n) | Target::Compute(n) => n,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Sm(n) => write!(f, "sm_{n}"),
            Target::Compute(n) => write!(f, "compute_{n}"),
        }
    }
}

/// The NVRTC this process loaded.
#[derive(Clone, Debug)]
pub struct NvrtcInfo {
    /// `(major, minor)`, from `nvrtcVersion`.
    pub version: (i32, i32),
    /// Architectures it compiles for, from `nvrtcGetSupportedArchs`.
    pub archs: Vec<u32>,
    pub location: probe::NvrtcLocation,
}

impl NvrtcInfo {
    /// The CUDA version number of this NVRTC (`major * 1000 + minor * 10`).
    pub fn cuda_version(&self) -> i32 {
        self.version.0 * 1000 + self.version.1 * 10
    }
}

/// Loads NVRTC (see [`probe`]) and asks it its version and architectures.
pub fn nvrtc_info() -> Result<NvrtcInfo> {
    let location = probe::nvrtc_location()?;
    std::panic::catch_unwind(|| -> Result<NvrtcInfo> {
        let (mut major, mut minor) = (0 as c_int, 0 as c_int);
        // SAFETY: NVRTC is loaded (probed above); both pointers are valid.
        unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
            .result()
            .map_err(|e| anyhow!("nvrtcVersion failed: {e:?}"))?;
        let mut n: c_int = 0;
        // SAFETY: as above; `n` receives the count.
        unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) }
            .result()
            .map_err(|e| anyhow!("nvrtcGetNumSupportedArchs failed: {e:?}"))?;
        let mut archs = vec![0 as c_int; n.max(0) as usize];
        if n > 0 {
            // SAFETY: `archs` holds the `n` ints NVRTC writes.
            unsafe { sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) }
                .result()
                .map_err(|e| anyhow!("nvrtcGetSupportedArchs failed: {e:?}"))?;
        }
        Ok(NvrtcInfo {
            version: (major, minor),
            archs: archs.into_iter().map(|a| a.max(0) as u32).collect(),
            location: location.clone(),
        })
    })
    .map_err(|_| anyhow!("NVRTC panicked while reporting its version"))?
}

/// The target for a device of compute capability `cc`: its own `sm_XY` when
/// NVRTC knows it, else PTX for the newest architecture NVRTC knows that is
/// not newer than the device (the driver compiles it for the device).
pub fn target_for_device(cc: (i32, i32), archs: &[u32]) -> Result<Target> {
    let sm = (cc.0 * 10 + cc.1).max(0) as u32;
    if archs.contains(&sm) {
        return Ok(Target::Sm(sm));
    }
    archs
        .iter()
        .copied()
        .filter(|&a| a <= sm)
        .max()
        .map(Target::Compute)
        .ok_or_else(|| {
            anyhow!(
                "this NVRTC compiles for {archs:?} only, all newer than the device's sm_{sm}; \
                 use an older NVRTC"
            )
        })
}

/// A compiled module: machine code or PTX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Image {
    Cubin {
        sm: u32,
        /// ELF ABI version (`EI_ABIVERSION`): 7 or 8.
        abi: u8,
        bytes: Vec<u8>,
    },
    Ptx {
        isa: (u32, u32),
        target: String,
        text: String,
    },
}

/// The result of one compilation.
#[derive(Clone, Debug)]
pub struct Compiled {
    pub target: Target,
    pub image: Image,
    /// The NVRTC that produced it, `(major, minor)`.
    pub nvrtc: (i32, i32),
}

impl Compiled {
    /// e.g. `CUBIN sm_90 (ELF ABI 8, 14 KiB)` or `PTX ISA 9.0 for sm_90`.
    pub fn describe(&self) -> String {
        match &self.image {
            Image::Cubin { sm, abi, bytes } => {
                format!("CUBIN sm_{sm} (ELF ABI {abi}, {} bytes)", bytes.len())
            }
            Image::Ptx { isa, target, .. } => {
                format!("PTX ISA {}.{} for {target}", isa.0, isa.1)
            }
        }
    }

    /// What the driver must be at least, as a sentence.
    pub fn needs(&self) -> String {
        match &self.image {
            Image::Cubin { sm, .. } => format!(
                "a GPU of compute capability {}.{} and a CUDA {}.x driver or newer",
                sm / 10,
                sm % 10,
                self.nvrtc.0
            ),
            Image::Ptx { isa, .. } => match min_cuda_for_ptx(*isa) {
                Some(v) => format!(
                    "a driver for CUDA {} or newer (PTX ISA {}.{})",
                    cuda_version_text(v),
                    isa.0,
                    isa.1
                ),
                None => format!("a driver that accepts PTX ISA {}.{}", isa.0, isa.1),
            },
        }
    }

    /// The bytes `cuModuleLoadData` takes: the ELF image, or the PTX text
    /// with its terminating NUL.
    pub fn module_data(&self) -> Vec<u8> {
        match &self.image {
            Image::Cubin { bytes, .. } => bytes.clone(),
            Image::Ptx { text, .. } => {
                let mut v = text.as_bytes().to_vec();
                v.push(0);
                v
            }
        }
    }
}

/// Checks that a driver of CUDA `driver_version` (`cuDriverGetVersion`) can
/// load `c`: a CUBIN needs a driver of at least the NVRTC's major version
/// (minor-version compatibility covers the rest); PTX needs a driver whose
/// ISA is at least the PTX's `.version`.
pub fn check_loadable(c: &Compiled, driver_version: i32) -> Result<()> {
    let nvrtc = format!("{}.{}", c.nvrtc.0, c.nvrtc.1);
    let driver = cuda_version_text(driver_version);
    match &c.image {
        Image::Cubin { .. } => ensure!(
            driver_version / 1000 >= c.nvrtc.0,
            "NVRTC {nvrtc} makes CUBINs for CUDA {}.x drivers, but this driver is CUDA \
             {driver}: update the driver, or use an NVRTC {} (e.g. the \
             nvidia-cuda-nvrtc-cu{} wheel)",
            c.nvrtc.0,
            driver_version / 1000,
            driver_version / 1000
        ),
        Image::Ptx { isa, .. } => {
            let max = ptx_isa_of_cuda(driver_version).ok_or_else(|| {
                anyhow!("the CUDA {driver} driver is too old for these kernels (CUDA 11 or newer is needed)")
            })?;
            ensure!(
                *isa <= max,
                "NVRTC {nvrtc} wrote PTX ISA {}.{}, but this CUDA {driver} driver accepts PTX ISA \
                 {}.{} at most: use an NVRTC no newer than the driver (e.g. pip install \
                 nvidia-cuda-nvrtc=={driver}.*) or update the driver",
                isa.0,
                isa.1,
                max.0,
                max.1
            );
        }
    }
    Ok(())
}

/// Compiles `kernels/*.cu` for `target`. Needs NVRTC only, no GPU or driver.
pub fn compile(target: Target) -> Result<Compiled> {
    let info = nvrtc_info()?;
    let src = CString::new(kernel_source()).context("the kernel source holds a NUL byte")?;
    let name = CString::new("tritter_kernels.cu").context("program name")?;
    let options: Vec<CString> = [
        "--std=c++17".to_string(),
        // Line numbers for compute-sanitizer and profilers; no code change.
        "--generate-line-info".to_string(),
        format!("--gpu-architecture={target}"),
    ]
    .into_iter()
    .map(|o| CString::new(o).context("option"))
    .collect::<Result<_>>()?;
    let image = std::panic::catch_unwind(|| compile_program(&src, &name, &options, target))
        .map_err(|_| anyhow!("NVRTC panicked while compiling the kernels"))??;
    Ok(Compiled {
        target,
        image,
        nvrtc: info.version,
    })
}

/// An NVRTC program, destroyed on drop (errors there are ignored: nothing
/// depends on them, and a panic in a destructor would abort).
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: created by nvrtcCreateProgram and destroyed once, here.
            let _ = unsafe { sys::nvrtcDestroyProgram(&mut self.0) };
        }
    }
}

fn compile_program(
    src: &CString,
    name: &CString,
    options: &[CString],
    target: Target,
) -> Result<Image> {
    let mut prog = Program(std::ptr::null_mut());
    // SAFETY: `src` and `name` are NUL-terminated and outlive `prog` (they
    // are borrowed for this whole function); no headers are passed.
    unsafe {
        sys::nvrtcCreateProgram(
            &mut prog.0,
            src.as_ptr(),
            name.as_ptr(),
            0,
            std::ptr::null(),
            std::ptr::null(),
        )
    }
    .result()
    .map_err(|e| anyhow!("nvrtcCreateProgram failed: {e:?}"))?;
    let opts: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
    // SAFETY: `prog` is live; `opts` points at `options.len()` C strings
    // that outlive the call.
    let compiled = unsafe { sys::nvrtcCompileProgram(prog.0, opts.len() as c_int, opts.as_ptr()) };
    if let Err(e) = compiled.result() {
        bail!(
            "NVRTC could not compile kernels/*.cu for {target} ({e:?}, options {options:?}):\n{}",
            program_log(&prog).unwrap_or_else(|e| format!("(no log: {e:#})"))
        );
    }
    match target {
        Target::Sm(_) => {
            let mut size = 0usize;
            // SAFETY: `prog` compiled; `size` receives the CUBIN's size.
            unsafe { sys::nvrtcGetCUBINSize(prog.0, &mut size) }
                .result()
                .map_err(|e| anyhow!("nvrtcGetCUBINSize failed: {e:?}"))?;
            ensure!(size > 0, "NVRTC returned an empty CUBIN for {target}");
            let mut bytes = vec![0u8; size];
            // SAFETY: `bytes` holds the `size` bytes NVRTC writes.
            unsafe { sys::nvrtcGetCUBIN(prog.0, bytes.as_mut_ptr() as *mut c_char) }
                .result()
                .map_err(|e| anyhow!("nvrtcGetCUBIN failed: {e:?}"))?;
            let (sm, abi) = cubin_arch(&bytes)?;
            Ok(Image::Cubin { sm, abi, bytes })
        }
        Target::Compute(_) => {
            let mut size = 0usize;
            // SAFETY: as for the CUBIN.
            unsafe { sys::nvrtcGetPTXSize(prog.0, &mut size) }
                .result()
                .map_err(|e| anyhow!("nvrtcGetPTXSize failed: {e:?}"))?;
            let mut bytes = vec![0u8; size];
            // SAFETY: `bytes` holds the `size` bytes (text and NUL) NVRTC writes.
            unsafe { sys::nvrtcGetPTX(prog.0, bytes.as_mut_ptr() as *mut c_char) }
                .result()
                .map_err(|e| anyhow!("nvrtcGetPTX failed: {e:?}"))?;
            while bytes.last() == Some(&0) {
                bytes.pop();
            }
            let text = String::from_utf8(bytes).context("NVRTC's PTX is not UTF-8")?;
            let (isa, ptx_target) = ptx_header(&text)?;
            Ok(Image::Ptx {
                isa,
                target: ptx_target,
                text,
            })
        }
    }
}

fn program_log(prog: &Program) -> Result<String> {
    let mut size = 0usize;
    // SAFETY: `prog` is live; `size` receives the log's size.
    unsafe { sys::nvrtcGetProgramLogSize(prog.0, &mut size) }
        .result()
        .map_err(|e| anyhow!("{e:?}"))?;
    let mut log = vec![0u8; size.max(1)];
    // SAFETY: `log` holds the `size` bytes NVRTC writes.
    unsafe { sys::nvrtcGetProgramLog(prog.0, log.as_mut_ptr() as *mut c_char) }
        .result()
        .map_err(|e| anyhow!("{e:?}"))?;
    while log.last() == Some(&0) {
        log.pop();
    }
    Ok(String::from_utf8_lossy(&log).into_owned())
}

/// The architecture (`sm_N` as N) and ELF ABI version of a CUBIN.
pub fn cubin_arch(elf: &[u8]) -> Result<(u32, u8)> {
    const EM_CUDA: u16 = 190;
    ensure!(
        elf.len() >= 64 && elf[..4] == *b"\x7fELF",
        "not an ELF file ({} bytes)",
        elf.len()
    );
    ensure!(elf[4] == 2 && elf[5] == 1, "not a 64-bit little-endian ELF");
    let machine = u16::from_le_bytes([elf[18], elf[19]]);
    ensure!(
        machine == EM_CUDA,
        "ELF e_machine is {machine}, not EM_CUDA ({EM_CUDA})"
    );
    let abi = elf[8];
    let flags = u32::from_le_bytes([elf[48], elf[49], elf[50], elf[51]]);
    let sm = match abi {
        // ELFABIVERSION_CUDA_V1: EF_CUDA_SM = 0xff.
        0..=7 => flags & 0xff,
        // ELFABIVERSION_CUDA_V2: EF_CUDA_SM_MASK = 0xff00, offset 8.
        _ => (flags & 0xff00) >> 8,
    };
    ensure!(
        sm > 0,
        "the CUBIN's e_flags ({flags:#x}) name no architecture"
    );
    Ok((sm, abi))
}

/// The `.version` (PTX ISA) and `.target` of a PTX text.
pub fn ptx_header(ptx: &str) -> Result<((u32, u32), String)> {
    let directive = |name: &str| {
        ptx.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| rest.trim().to_string())
    };
    let version = directive(".version ").ok_or_else(|| anyhow!("PTX without .version"))?;
    let (maj, min) = version
        .split_once('.')
        .ok_or_else(|| anyhow!("PTX .version {version:?} is not major.minor"))?;
    let isa = (
        maj.trim()
            .parse()
            .map_err(|_| anyhow!("PTX .version {version:?}"))?,
        min.trim()
            .parse()
            .map_err(|_| anyhow!("PTX .version {version:?}"))?,
    );
    let target = directive(".target ").unwrap_or_default();
    Ok((isa, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ptx_table_matches_the_releases_checked_here() {
        assert_eq!(ptx_isa_of_cuda(12090), Some((8, 8)));
        assert_eq!(ptx_isa_of_cuda(13000), Some((9, 0)));
        assert_eq!(ptx_isa_of_cuda(13050), Some((9, 5)));
        assert_eq!(ptx_isa_of_cuda(12060), Some((8, 5)));
        assert_eq!(ptx_isa_of_cuda(12040), Some((8, 4)));
        assert_eq!(ptx_isa_of_cuda(10020), None);
        assert_eq!(min_cuda_for_ptx((9, 5)), Some(13050));
        assert_eq!(min_cuda_for_ptx((9, 0)), Some(13000));
        assert_eq!(min_cuda_for_ptx((8, 5)), Some(12050));
        assert_eq!(cuda_version_text(13000), "13.0");
    }

    fn ptx(isa: (u32, u32), nvrtc: (i32, i32)) -> Compiled {
        Compiled {
            target: Target::Compute(90),
            image: Image::Ptx {
                isa,
                target: "sm_90".into(),
                text: String::new(),
            },
            nvrtc,
        }
    }

    #[test]
    fn ptx_newer_than_the_driver_is_refused_with_both_versions() {
        // NVRTC 13.5's PTX on a CUDA 13.0 driver (r580): the failure of
        // error 222, caught before the load.
        let e = check_loadable(&ptx((9, 5), (13, 5)), 13000).unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("13.5") && msg.contains("13.0"), "{msg}");
        assert!(msg.contains("9.5") && msg.contains("9.0"), "{msg}");
        check_loadable(&ptx((9, 0), (13, 0)), 13000).unwrap();
        check_loadable(&ptx((8, 8), (12, 9)), 13000).unwrap();
        assert!(check_loadable(&ptx((8, 8), (12, 9)), 12040).is_err());
    }

    #[test]
    fn cubins_need_a_driver_of_the_nvrtc_major() {
        let c = Compiled {
            target: Target::Sm(90),
            image: Image::Cubin {
                sm: 90,
                abi: 8,
                bytes: Vec::new(),
            },
            nvrtc: (13, 5),
        };
        check_loadable(&c, 13000).unwrap();
        let e = format!("{:#}", check_loadable(&c, 12090).unwrap_err());
        assert!(e.contains("13.5") && e.contains("12.9"), "{e}");
    }

    #[test]
    fn targets_parse_and_follow_the_device() {
        assert_eq!(Target::parse("sm_90").unwrap(), Target::Sm(90));
        assert_eq!(Target::parse("compute_90").unwrap(), Target::Compute(90));
        assert_eq!(Target::parse("90").unwrap(), Target::Sm(90));
        assert!(Target::parse("hopper").is_err());
        let archs = [75, 80, 86, 89, 90, 100, 120];
        assert_eq!(target_for_device((9, 0), &archs).unwrap(), Target::Sm(90));
        // A GPU newer than this NVRTC: PTX for the newest it knows.
        assert_eq!(
            target_for_device((13, 0), &archs).unwrap(),
            Target::Compute(120)
        );
        // An arch in between (sm_87 not listed): the newest older one.
        assert_eq!(
            target_for_device((8, 7), &archs).unwrap(),
            Target::Compute(86)
        );
        assert!(target_for_device((7, 0), &archs).is_err());
    }

    #[test]
    fn cubin_headers_of_both_abi_versions() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18..20].copy_from_slice(&190u16.to_le_bytes());
        // Seen from NVRTC 12.9 for sm_90 (ABI 7) and 13.0 for sm_90 (ABI 8).
        elf[8] = 7;
        elf[48..52].copy_from_slice(&0x005a_055au32.to_le_bytes());
        assert_eq!(cubin_arch(&elf).unwrap(), (90, 7));
        elf[8] = 8;
        elf[48..52].copy_from_slice(&0x0600_5a04u32.to_le_bytes());
        assert_eq!(cubin_arch(&elf).unwrap(), (90, 8));
        elf[48..52].copy_from_slice(&0x0600_7802u32.to_le_bytes());
        assert_eq!(cubin_arch(&elf).unwrap(), (120, 8));
        elf[18] = 62; // x86-64
        assert!(cubin_arch(&elf).is_err());
        assert!(cubin_arch(b"//\n.version 9.0\n").is_err());
    }

    #[test]
    fn ptx_headers_parse() {
        let text = "//\n// Generated by NVIDIA NVVM Compiler\n.version 9.0\n.target sm_90\n.address_size 64\n";
        assert_eq!(ptx_header(text).unwrap(), ((9, 0), "sm_90".to_string()));
        assert!(ptx_header(".target sm_90\n").is_err());
    }
}
