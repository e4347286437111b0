//! The CUDA kernel sources, embedded, and their launch shapes.
//!
//! `kernels/*.cu` (one file per op, file stem = op name = `__global__` name)
//! are embedded with `include_str!` and compiled at run time with NVRTC into
//! one module, once per process ([`super::compile`]). NVRTC compiles one
//! in-memory source without an include path, so [`kernel_source`] pastes
//! `common.cuh` first and drops the kernels' `#include "common.cuh"` lines.
//!
//! The launch shapes and the kernels' parameter lists live here, next to the
//! sources whose `#define`s and signatures they must match (unit tests check
//! that they do).

pub const COMMON_CUH: &str = include_str!("../../../kernels/common.cuh");
pub const MINHASH_CU: &str = include_str!("../../../kernels/minhash_signatures.cu");
pub const BANDS_CU: &str = include_str!("../../../kernels/band_hashes.cu");
pub const NGRAM_CU: &str = include_str!("../../../kernels/ngram_membership.cu");

/// Largest block of `minhash_signatures` (`MINHASH_BLOCK`, its
/// `__launch_bounds__`).
pub const MINHASH_BLOCK: u32 = 128;
/// Smallest block of `minhash_signatures`: two warps, so that a block never
/// runs as one warp (an SM holds at most 32 blocks, so 1-warp blocks cap it
/// at half its warps).
pub const MINHASH_MIN_BLOCK: u32 = 64;
/// Most permutations per thread of `minhash_signatures`
/// (`MINHASH_PERMS_PER_THREAD`).
pub const MINHASH_PERMS_PER_THREAD: u32 = 2;
/// Shingles staged in shared memory per tile (`MINHASH_TILE`).
pub const MINHASH_TILE: u32 = 1024;
/// Block of `band_hashes` (`BANDS_BLOCK`).
pub const BANDS_BLOCK: u32 = 256;
/// Block of `ngram_membership` (`NGRAM_BLOCK`).
pub const NGRAM_BLOCK: u32 = 256;
/// The hardware's grid limits: 2^31 - 1 blocks in x, 65535 in y and z.
pub const MAX_GRID_X: u64 = (1 << 31) - 1;
pub const MAX_GRID_Y: u64 = 65535;

/// A launch shape: grid and block dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub grid: (u32, u32, u32),
    pub block: (u32, u32, u32),
}

/// The launch of `minhash_signatures`: its shape and how many permutations
/// each thread folds (the kernel's `perms_per_thread` argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinhashLaunch {
    pub shape: Shape,
    pub perms_per_thread: u32,
}

/// `minhash_signatures` over `tasks` tasks and `num_perm` permutations: one
/// block per (task, slice of permutations). Up to 64 permutations a thread
/// takes one permutation and a block has 64 threads; above, a thread takes
/// two (halving the shared-memory loads per operation) and the block is the
/// smallest multiple of 32 threads from 64 to [`MINHASH_BLOCK`] that covers
/// the permutations, so that 128 permutations do not leave half the threads
/// idle. Errors when the grid exceeds the hardware's limits.
pub fn minhash_shape(tasks: u32, num_perm: u32) -> anyhow::Result<MinhashLaunch> {
    let ppt = if num_perm <= MINHASH_MIN_BLOCK {
        1
    } else {
        MINHASH_PERMS_PER_THREAD
    };
    let threads = num_perm
        .div_ceil(ppt)
        .next_multiple_of(32)
        .clamp(MINHASH_MIN_BLOCK, MINHASH_BLOCK);
    let slices = num_perm.div_ceil(threads * ppt).max(1);
    anyhow::ensure!(
        (slices as u64) <= MAX_GRID_Y,
        "{num_perm} permutations need {slices} blocks in grid.y, above CUDA's {MAX_GRID_Y}"
    );
    anyhow::ensure!(
        (tasks as u64) <= MAX_GRID_X,
        "{tasks} tasks exceed CUDA's {MAX_GRID_X} blocks in grid.x"
    );
    Ok(MinhashLaunch {
        shape: Shape {
            grid: (tasks, slices, 1),
            block: (threads, 1, 1),
        },
        perms_per_thread: ppt,
    })
}

/// `band_hashes` over `docs * bands` (document, band) pairs.
pub fn bands_shape(items: u64) -> anyhow::Result<Shape> {
    let blocks = items.div_ceil(BANDS_BLOCK as u64);
    anyhow::ensure!(
        blocks <= MAX_GRID_X,
        "{items} band hashes exceed one launch's {MAX_GRID_X} blocks"
    );
    Ok(Shape {
        grid: (blocks as u32, 1, 1),
        block: (BANDS_BLOCK, 1, 1),
    })
}

/// `ngram_membership` over `queries` queries.
pub fn ngram_shape(queries: u32) -> Shape {
    Shape {
        grid: (queries.div_ceil(NGRAM_BLOCK), 1, 1),
        block: (NGRAM_BLOCK, 1, 1),
    }
}

/// How a kernel parameter is passed: a device pointer (8 bytes) or a `u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    Ptr,
    U32,
}

/// The parameter lists of the three kernels, in order, as the `.cu` files
/// declare them (a unit test parses the sources and compares). The launches
/// build their arguments from these names ([`super::driver::KernelArgs`]).
pub const MINHASH_PARAMS: &[(&str, ParamKind)] = &[
    ("hashes", ParamKind::Ptr),
    ("tasks", ParamKind::Ptr),
    ("perm_a", ParamKind::Ptr),
    ("perm_b", ParamKind::Ptr),
    ("out", ParamKind::Ptr),
    ("num_perm", ParamKind::U32),
    ("perms_per_thread", ParamKind::U32),
];
pub const BANDS_PARAMS: &[(&str, ParamKind)] = &[
    ("sigs", ParamKind::Ptr),
    ("out", ParamKind::Ptr),
    ("num_docs", ParamKind::U32),
    ("num_perm", ParamKind::U32),
    ("bands", ParamKind::U32),
    ("rows", ParamKind::U32),
];
pub const NGRAM_PARAMS: &[(&str, ParamKind)] = &[
    ("queries", ParamKind::Ptr),
    ("keys", ParamKind::Ptr),
    ("out", ParamKind::Ptr),
    ("num_queries", ParamKind::U32),
    ("num_keys", ParamKind::U32),
];

/// The parameters of `__global__` function `name` in `src`, parsed from its
/// declaration: `(name, kind)` per parameter, in order.
pub fn parse_params(src: &str, name: &str) -> anyhow::Result<Vec<(String, ParamKind)>> {
    let head = format!(") {name}(");
    let at = src
        .find(&head)
        .ok_or_else(|| anyhow::anyhow!("no __global__ {name} in the source"))?;
    // Drop `// ...` comments line by line, then cut at the closing paren.
    let rest: String = src[at + head.len()..]
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    let end = rest
        .find(')')
        .ok_or_else(|| anyhow::anyhow!("{name}: unterminated parameter list"))?;
    let list = &rest[..end];
    list.split(',')
        .map(|p| {
            let p = p.trim();
            let name = p
                .rsplit(|c: char| c.is_whitespace() || c == '*')
                .next()
                .unwrap_or("")
                .to_string();
            let kind = if p.contains('*') {
                ParamKind::Ptr
            } else if p.starts_with("u32 ") {
                ParamKind::U32
            } else {
                anyhow::bail!("{name}: parameter {p:?} is neither a pointer nor a u32")
            };
            Ok((name, kind))
        })
        .collect()
}

/// The one source NVRTC compiles: `common.cuh`, then the three kernels.
pub fn kernel_source() -> String {
    let mut s = String::with_capacity(
        COMMON_CUH.len() + MINHASH_CU.len() + BANDS_CU.len() + NGRAM_CU.len() + 256,
    );
    for (name, text) in [
        ("common.cuh", COMMON_CUH),
        ("minhash_signatures.cu", MINHASH_CU),
        ("band_hashes.cu", BANDS_CU),
        ("ngram_membership.cu", NGRAM_CU),
    ] {
        s.push_str(&format!("// ---- kernels/{name} ----\n"));
        for line in text.lines() {
            let t = line.trim();
            if t == "#include \"common.cuh\"" || t == "#pragma once" {
                s.push_str("//");
            }
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn define(src: &str, name: &str) -> u32 {
        let line = src
            .lines()
            .find(|l| l.starts_with(&format!("#define {name} ")))
            .unwrap_or_else(|| panic!("#define {name} missing"));
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    }

    #[test]
    fn launch_constants_match_the_kernel_defines() {
        assert_eq!(define(MINHASH_CU, "MINHASH_BLOCK"), MINHASH_BLOCK);
        assert_eq!(define(MINHASH_CU, "MINHASH_MIN_BLOCK"), MINHASH_MIN_BLOCK);
        assert_eq!(
            define(MINHASH_CU, "MINHASH_PERMS_PER_THREAD"),
            MINHASH_PERMS_PER_THREAD
        );
        assert_eq!(define(MINHASH_CU, "MINHASH_TILE"), MINHASH_TILE);
        assert_eq!(define(BANDS_CU, "BANDS_BLOCK"), BANDS_BLOCK);
        assert_eq!(define(NGRAM_CU, "NGRAM_BLOCK"), NGRAM_BLOCK);
    }

    #[test]
    fn minhash_shape_covers_every_permutation() {
        for p in [
            1u32, 2, 31, 64, 65, 100, 128, 129, 255, 256, 257, 1000, 4096,
        ] {
            let l = minhash_shape(7, p).unwrap();
            let s = l.shape;
            assert_eq!(s.grid.0, 7);
            assert!(s.block.0.is_multiple_of(32));
            assert!((MINHASH_MIN_BLOCK..=MINHASH_BLOCK).contains(&s.block.0));
            let covered = s.grid.1 * s.block.0 * l.perms_per_thread;
            assert!(covered >= p, "{p} permutations, {l:?}");
            assert!(covered - p < s.block.0 * l.perms_per_thread);
        }
        // 128 permutations: 64 threads of two, none idle; 64: 64 threads of one.
        let l = minhash_shape(1, 128).unwrap();
        assert_eq!((l.shape.block.0, l.perms_per_thread), (64, 2));
        let l = minhash_shape(1, 64).unwrap();
        assert_eq!((l.shape.block.0, l.perms_per_thread), (64, 1));
        let l = minhash_shape(1, 256).unwrap();
        assert_eq!((l.shape.block.0, l.perms_per_thread), (128, 2));
    }

    #[test]
    fn grids_beyond_the_hardware_are_errors() {
        // grid.y: 65535 slices of 256 permutations is the most.
        assert!(minhash_shape(1, 65535 * 256).is_ok());
        assert!(minhash_shape(1, 65535 * 256 + 1).is_err());
        assert!(bands_shape(MAX_GRID_X * BANDS_BLOCK as u64).is_ok());
        assert!(bands_shape(MAX_GRID_X * BANDS_BLOCK as u64 + 1).is_err());
    }

    #[test]
    fn parameter_lists_match_the_kernel_sources() {
        for (src, name, want) in [
            (MINHASH_CU, "minhash_signatures", MINHASH_PARAMS),
            (BANDS_CU, "band_hashes", BANDS_PARAMS),
            (NGRAM_CU, "ngram_membership", NGRAM_PARAMS),
        ] {
            let got = parse_params(src, name).unwrap();
            let want: Vec<(String, ParamKind)> =
                want.iter().map(|&(n, k)| (n.to_string(), k)).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn the_nvrtc_source_has_no_includes_left() {
        let s = kernel_source();
        assert!(!s.lines().any(|l| l.trim_start().starts_with("#include")));
        assert_eq!(s.matches("extern \"C\" __global__").count(), 3);
        for f in ["minhash_signatures", "band_hashes", "ngram_membership"] {
            assert!(s.contains(&format!(") {f}(")), "{f} missing");
        }
    }
}
