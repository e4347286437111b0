//! One interface for the heavy per-shingle work, three implementations.
//!
//! The CPU (rayon) is the reference; CUDA (`cudarc`, kernels in `kernels/`,
//! compiled at run time with NVRTC) and wgpu (`shaders/`) must reproduce it bit
//! for bit (see [`ops`] for the exact arithmetic). `--backend auto` picks CUDA
//! when a driver and a device are present, else a hardware wgpu adapter, else
//! the CPU, and says which; an absent driver is an ordinary, reported fallback,
//! never a panic.

pub mod cpu;
pub mod cuda;
pub mod ops;
pub mod plan;
pub mod wgpu;

use anyhow::Result;
pub use ops::{BandLayout, NgramTable, Permutations, ShingleBatch, ShingleBuffer, NGRAM_MISS};
use std::sync::Arc;

/// The heavy ops every backend provides.
pub trait Backend: Send + Sync {
    /// Short name and device, e.g. `cpu (2 threads)` or `cuda (NVIDIA H100)`.
    fn describe(&self) -> String;

    /// Which backend this is.
    fn kind(&self) -> BackendKind;

    /// Signatures of every document of `batch`, document-major:
    /// `out[d * perms.len() + i]`.
    fn minhash_signatures(&self, batch: ShingleBatch<'_>, perms: &Permutations)
        -> Result<Vec<u32>>;

    /// Signatures and their band hashes in one call: the same values as
    /// [`Backend::minhash_signatures`] followed by [`Backend::band_hashes`],
    /// bit for bit. The GPU backends hash the bands while the signatures are
    /// still on the device, instead of downloading and uploading them again.
    fn signatures_and_bands(
        &self,
        batch: ShingleBatch<'_>,
        perms: &Permutations,
        layout: BandLayout,
    ) -> Result<(Vec<u32>, Vec<u64>)>;

    /// Band hashes of `signatures` (document-major, `num_perm` values each):
    /// `out[d * layout.bands + j]`.
    fn band_hashes(
        &self,
        signatures: &[u32],
        num_perm: usize,
        layout: BandLayout,
    ) -> Result<Vec<u64>>;

    /// For each query hash, its index in `table` or [`NGRAM_MISS`].
    fn ngram_membership(&self, queries: &[u64], table: &NgramTable) -> Result<Vec<u32>>;
}

/// The `--backend` choice.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Auto,
    Cpu,
    Cuda,
    Wgpu,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            BackendKind::Auto => "auto",
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
            BackendKind::Wgpu => "wgpu",
        };
        f.write_str(s)
    }
}

/// Environment variable that forces what `--backend auto` resolves to
/// (`cpu`, `cuda` or `wgpu`), so that a whole test suite or pipeline can be
/// run on one backend without changing its flags. An explicit `--backend`
/// wins over it.
pub const BACKEND_ENV: &str = "TRITTER_BACKEND";

fn forced_by_env() -> Result<Option<BackendKind>> {
    let Ok(v) = std::env::var(BACKEND_ENV) else {
        return Ok(None);
    };
    match v.trim().to_ascii_lowercase().as_str() {
        "" | "auto" => Ok(None),
        "cpu" => Ok(Some(BackendKind::Cpu)),
        "cuda" => Ok(Some(BackendKind::Cuda)),
        "wgpu" => Ok(Some(BackendKind::Wgpu)),
        other => anyhow::bail!("{BACKEND_ENV}={other} is not one of auto, cpu, cuda, wgpu"),
    }
}

/// Opens the requested backend. `Auto` tries CUDA, then a hardware wgpu
/// adapter, then falls back to the CPU, collecting why each was skipped in the
/// returned notes (unless [`BACKEND_ENV`] forces one). An explicit `Cuda` or
/// `Wgpu` that cannot start is an error; explicit `Wgpu` accepts a software
/// adapter (Mesa lavapipe), `Auto` does not.
pub fn select(kind: BackendKind) -> Result<(Arc<dyn Backend>, Vec<String>)> {
    let mut notes = Vec::new();
    match kind {
        BackendKind::Cpu => Ok((Arc::new(cpu::CpuBackend::new()), notes)),
        BackendKind::Cuda => Ok((Arc::new(cuda::CudaBackend::new()?), notes)),
        BackendKind::Wgpu => Ok((Arc::new(wgpu::WgpuBackend::new(true)?), notes)),
        BackendKind::Auto => {
            if let Some(forced) = forced_by_env()? {
                let (b, mut notes) = select(forced)?;
                notes.push(format!("{BACKEND_ENV}={forced} chose the backend"));
                return Ok((b, notes));
            }
            match cuda::CudaBackend::new() {
                Ok(b) => return Ok((Arc::new(b), notes)),
                Err(e) => notes.push(format!("cuda unavailable: {e:#}")),
            }
            match wgpu::WgpuBackend::new(false) {
                Ok(b) => return Ok((Arc::new(b), notes)),
                Err(e) => notes.push(format!("wgpu unavailable: {e:#}")),
            }
            Ok((Arc::new(cpu::CpuBackend::new()), notes))
        }
    }
}

/// The line a command prints at start about its backend, e.g.
/// `backend: cpu (2 threads) (cuda unavailable: no CUDA driver (libcuda.so.1
/// not found); wgpu unavailable: no hardware GPU adapter ...)`.
pub fn describe_choice(backend: &dyn Backend, notes: &[String]) -> String {
    if notes.is_empty() {
        format!("backend: {}", backend.describe())
    } else {
        format!("backend: {} ({})", backend.describe(), notes.join("; "))
    }
}
