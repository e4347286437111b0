//! The CPU backend: the scalar reference ops of [`super::ops`], spread over
//! documents with rayon. It is the reference every other backend is tested
//! against.
//!
//! `minhash_signatures` has an AVX2 twin of [`ops::minhash_signature`] on
//! x86-64, picked once at start-up by CPU feature detection;
//! `TRITTER_CPU_KERNEL=scalar|avx2` forces one (an unsupported choice falls
//! back to the best available and says so in [`Backend::describe`]). The
//! twin computes exactly the reference arithmetic: 32-bit wrapping
//! multiply-add and unsigned minimum per lane, which are exact integer
//! operations, so its results are bit-identical (tested below on seeded
//! random sizes around every block boundary).
//!
//! PERF: the reference loops shingle-outer, permutation-inner and keeps
//! `num_perm` running minima in memory. The twin blocks the permutations (32
//! per block: 4 accumulators + 4 `a` + 4 `b` vectors in 12 of the 16 ymm
//! registers) and streams every shingle of the document through a block
//! while its minima stay in registers: 18 G shingle x permutation operations
//! per second on one core against 2.0 G for the reference (`cargo bench
//! --bench near_dedup -- minhash_signatures`, 256 permutations, shared 2-core
//! VM; see benches/results/near-dedup.md). An AVX-512 twin measured 24 G but
//! its intrinsics need Rust 1.89, above our MSRV of 1.85.
//!
//! DETERMINISM: each document's output depends only on its own input and the
//! parameters, and rayon's indexed collection keeps document order, so the
//! result is the same for any thread count.

use super::ops::{self, BandLayout, NgramTable, Permutations, ShingleBatch};
use super::{Backend, BackendKind};
use anyhow::{ensure, Result};
use rayon::prelude::*;

#[derive(Debug, Default)]
pub struct CpuBackend {
    kernel: MinhashKernel,
    /// Why a forced kernel was not honoured, for `describe`.
    note: Option<String>,
}

impl CpuBackend {
    /// The backend with the fastest kernel this CPU supports, or the one
    /// `TRITTER_CPU_KERNEL` forces.
    pub fn new() -> CpuBackend {
        let best = MinhashKernel::best();
        match std::env::var("TRITTER_CPU_KERNEL") {
            Ok(v) if !v.is_empty() => match MinhashKernel::parse(&v) {
                Some(k) if k.is_supported() => CpuBackend {
                    kernel: k,
                    note: None,
                },
                _ => CpuBackend {
                    kernel: best,
                    note: Some(format!("TRITTER_CPU_KERNEL={v} unavailable")),
                },
            },
            _ => CpuBackend {
                kernel: best,
                note: None,
            },
        }
    }

    /// The backend with a given kernel (which must be supported).
    pub fn with_kernel(kernel: MinhashKernel) -> anyhow::Result<CpuBackend> {
        ensure!(
            kernel.is_supported(),
            "the {kernel:?} kernel is not supported by this CPU"
        );
        Ok(CpuBackend { kernel, note: None })
    }

    pub fn kernel(&self) -> MinhashKernel {
        self.kernel
    }
}

/// Implementations of the MinHash signature op on the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MinhashKernel {
    /// [`ops::minhash_signature`] itself.
    #[default]
    Scalar,
    Avx2,
}

impl MinhashKernel {
    pub const ALL: [MinhashKernel; 2] = [MinhashKernel::Scalar, MinhashKernel::Avx2];

    pub fn parse(s: &str) -> Option<MinhashKernel> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(MinhashKernel::Scalar),
            "avx2" => Some(MinhashKernel::Avx2),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            MinhashKernel::Scalar => "scalar",
            MinhashKernel::Avx2 => "avx2",
        }
    }

    pub fn is_supported(self) -> bool {
        match self {
            MinhashKernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            MinhashKernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    pub fn best() -> MinhashKernel {
        if MinhashKernel::Avx2.is_supported() {
            MinhashKernel::Avx2
        } else {
            MinhashKernel::Scalar
        }
    }

    /// One document's signature with this kernel; bit-identical to
    /// [`ops::minhash_signature`].
    pub fn signature(self, shingles: &[u32], perms: &Permutations, out: &mut [u32]) {
        assert_eq!(out.len(), perms.len());
        assert!(self.is_supported(), "{self:?} kernel on a CPU without it");
        match self {
            MinhashKernel::Scalar => ops::minhash_signature(shingles, perms, out),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `is_supported` checked the CPU feature the function
            // is compiled for; slices carry their own bounds.
            MinhashKernel::Avx2 => unsafe { simd::minhash_avx2(shingles, &perms.a, &perms.b, out) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => ops::minhash_signature(shingles, perms, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::ops::EMPTY_SIGNATURE_VALUE;
    use std::arch::x86_64::*;

    /// Permutations per AVX2 block (4 vectors of 8 lanes).
    const BLOCK256: usize = 32;

    /// The scalar reference on permutations `[from, a.len())`.
    fn tail(shingles: &[u32], a: &[u32], b: &[u32], out: &mut [u32], from: usize) {
        for i in from..a.len() {
            let mut m = EMPTY_SIGNATURE_VALUE;
            for &x in shingles {
                m = m.min(a[i].wrapping_mul(x).wrapping_add(b[i]));
            }
            out[i] = m;
        }
    }

    /// # Safety
    /// The CPU must support AVX2; `a`, `b`, `out` have equal lengths.
    #[target_feature(enable = "avx2")]
    pub unsafe fn minhash_avx2(shingles: &[u32], a: &[u32], b: &[u32], out: &mut [u32]) {
        const V: usize = BLOCK256 / 8;
        let n = a.len();
        debug_assert!(b.len() == n && out.len() == n);
        let mut p = 0;
        while p + BLOCK256 <= n {
            // SAFETY (all loads/stores): p + BLOCK256 <= n bounds every
            // 8-lane access at p + 8 k; unaligned forms are used.
            let mut av = [_mm256_setzero_si256(); V];
            let mut bv = [_mm256_setzero_si256(); V];
            let mut acc = [_mm256_set1_epi32(-1); V];
            for k in 0..V {
                av[k] = _mm256_loadu_si256(a.as_ptr().add(p + 8 * k) as *const _);
                bv[k] = _mm256_loadu_si256(b.as_ptr().add(p + 8 * k) as *const _);
            }
            for &x in shingles {
                let xv = _mm256_set1_epi32(x as i32);
                for k in 0..V {
                    let h = _mm256_add_epi32(_mm256_mullo_epi32(av[k], xv), bv[k]);
                    acc[k] = _mm256_min_epu32(acc[k], h);
                }
            }
            for (k, v) in acc.iter().enumerate() {
                _mm256_storeu_si256(out.as_mut_ptr().add(p + 8 * k) as *mut _, *v);
            }
            p += BLOCK256;
        }
        while p + 8 <= n {
            let av = _mm256_loadu_si256(a.as_ptr().add(p) as *const _);
            let bv = _mm256_loadu_si256(b.as_ptr().add(p) as *const _);
            let mut acc = _mm256_set1_epi32(-1);
            for &x in shingles {
                let h = _mm256_add_epi32(_mm256_mullo_epi32(av, _mm256_set1_epi32(x as i32)), bv);
                acc = _mm256_min_epu32(acc, h);
            }
            _mm256_storeu_si256(out.as_mut_ptr().add(p) as *mut _, acc);
            p += 8;
        }
        tail(shingles, a, b, out, p);
    }
}

impl Backend for CpuBackend {
    fn describe(&self) -> String {
        let mut d = format!(
            "cpu ({} threads, {} minhash kernel",
            rayon::current_num_threads(),
            self.kernel.name()
        );
        if let Some(n) = &self.note {
            d.push_str("; ");
            d.push_str(n);
        }
        d.push(')');
        d
    }

    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn minhash_signatures(
        &self,
        batch: ShingleBatch<'_>,
        perms: &Permutations,
    ) -> Result<Vec<u32>> {
        let n = perms.len();
        let mut out = vec![0u32; batch.docs() * n];
        if n == 0 {
            return Ok(out);
        }
        let kernel = self.kernel;
        out.par_chunks_mut(n)
            .with_min_len(16)
            .enumerate()
            .for_each(|(d, sig)| kernel.signature(batch.doc(d), perms, sig));
        Ok(out)
    }

    fn signatures_and_bands(
        &self,
        batch: ShingleBatch<'_>,
        perms: &Permutations,
        layout: BandLayout,
    ) -> Result<(Vec<u32>, Vec<u64>)> {
        // The same checks and loops as the two ops, one after the other: on
        // the CPU the signatures never leave memory anyway.
        // The layout is checked before any work, as the GPU backends do.
        super::plan::validate_bands(&[], perms.len(), layout.bands, layout.rows)?;
        let sigs = self.minhash_signatures(batch, perms)?;
        let bands = self.band_hashes(&sigs, perms.len(), layout)?;
        Ok((sigs, bands))
    }

    fn band_hashes(
        &self,
        signatures: &[u32],
        num_perm: usize,
        layout: BandLayout,
    ) -> Result<Vec<u64>> {
        // One check for every backend (in u64, so huge layouts cannot overflow).
        let docs = super::plan::validate_bands(signatures, num_perm, layout.bands, layout.rows)?;
        let bands = layout.bands as usize;
        let mut out = vec![0u64; docs * bands];
        if bands == 0 {
            return Ok(out);
        }
        out.par_chunks_mut(bands).enumerate().for_each(|(d, o)| {
            ops::band_hashes_of(&signatures[d * num_perm..(d + 1) * num_perm], layout, o)
        });
        Ok(out)
    }

    fn ngram_membership(&self, queries: &[u64], table: &NgramTable) -> Result<Vec<u32>> {
        Ok(queries
            .par_iter()
            .map(|&q| ops::ngram_lookup(q, table.keys()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::ShingleBuffer;

    fn random_u32s(n: usize, state: &mut u64) -> Vec<u32> {
        (0..n).map(|_| ops::splitmix64(state) as u32).collect()
    }

    #[test]
    fn every_kernel_matches_the_reference_bit_for_bit() {
        let mut state = 0x5EED;
        // Sizes around every block boundary (8, 16, 32, 128 lanes).
        let perm_counts = [
            1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 127, 128, 129, 256, 300,
        ];
        let shingle_counts = [0, 1, 2, 3, 17, 100, 1000];
        let mut checked = 0;
        for &np in &perm_counts {
            let perms = Permutations::new(np, np as u64 * 31);
            for &ns in &shingle_counts {
                let mut sh = random_u32s(ns, &mut state);
                // Extremes of the input range too.
                if ns >= 3 {
                    sh[0] = 0;
                    sh[1] = u32::MAX;
                }
                let mut expect = vec![0; np];
                ops::minhash_signature(&sh, &perms, &mut expect);
                for k in MinhashKernel::ALL {
                    if !k.is_supported() {
                        continue;
                    }
                    let mut got = vec![7; np];
                    k.signature(&sh, &perms, &mut got);
                    assert_eq!(got, expect, "{k:?}, {np} permutations, {ns} shingles");
                    checked += 1;
                }
            }
        }
        assert!(checked >= perm_counts.len() * shingle_counts.len());
    }

    #[test]
    fn batched_signatures_equal_the_reference_for_every_kernel() {
        let mut state = 99;
        let perms = Permutations::new(256, 1);
        let mut buf = ShingleBuffer::new();
        for d in 0..70 {
            buf.push_doc(&random_u32s((d * 37) % 500, &mut state));
        }
        let mut expect = vec![0u32; buf.docs() * 256];
        for d in 0..buf.docs() {
            ops::minhash_signature(
                buf.as_batch().doc(d),
                &perms,
                &mut expect[d * 256..(d + 1) * 256],
            );
        }
        for k in MinhashKernel::ALL.into_iter().filter(|k| k.is_supported()) {
            let b = CpuBackend::with_kernel(k).unwrap();
            assert_eq!(
                b.minhash_signatures(buf.as_batch(), &perms).unwrap(),
                expect,
                "{k:?}"
            );
        }
    }

    #[test]
    fn kernel_names_parse() {
        for k in MinhashKernel::ALL {
            assert_eq!(MinhashKernel::parse(k.name()), Some(k));
        }
        assert_eq!(MinhashKernel::parse("neon"), None);
        assert!(MinhashKernel::Scalar.is_supported());
    }
}
