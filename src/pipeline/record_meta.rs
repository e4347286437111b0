//! Per-record facts the global steps need without reading texts: the
//! preference fields, the text length and the shingle count, one fixed-size
//! [`RecordMeta`] per kept record of a shard, in part order (`seq`).
//!
//! At The Stack v2 Python scale this is 57M x 40 B = 2.3 GB on disk; the
//! steps that rank records (LSH heads, components) load it once per process
//! into [`crate::rank::Preference`]s (40 B per file in memory).

use crate::rank::Preference;
use crate::record::RecordId;
use anyhow::{ensure, Context, Result};
use bytemuck::{Pod, Zeroable};
use std::path::Path;

/// Bit of [`RecordMeta::flags`]: the record's licenses are all allowed.
pub const LICENSE_ALLOWED: u32 = 1;
/// Bit of [`RecordMeta::flags`]: fewer words than the shingle size (one
/// whole-text shingle).
pub const SHORT: u32 = 2;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct RecordMeta {
    pub stars: u64,
    pub tiebreak: u64,
    pub row: u64,
    pub text_bytes: u32,
    /// Distinct shingles (0 without near dedup or without words).
    pub shingles: u32,
    pub flags: u32,
    /// The text's tokens as phase 1 counted them ([`NOT_COUNTED`] when it
    /// did not: `--tokens off`, or outside the estimate's sample), so the
    /// output step need not tokenise the kept texts again.
    pub tokens: u32,
}

/// [`RecordMeta::tokens`] of a text phase 1 did not tokenise.
pub const NOT_COUNTED: u32 = u32::MAX;

/// [`RecordMeta::tokens`] for one text's tally: its count where the text was
/// tokenised, else [`NOT_COUNTED`].
pub fn tokens_of(t: &crate::tokens::count::TokenTally) -> u32 {
    match t.sampled_files {
        1 => t.sampled_tokens.min(NOT_COUNTED as u64 - 1) as u32,
        _ => NOT_COUNTED,
    }
}

impl RecordMeta {
    /// The text's token tally as phase 1 counted it: what counting the
    /// text again with the same settings gives.
    pub fn token_tally(&self) -> crate::tokens::count::TokenTally {
        let counted = self.tokens != NOT_COUNTED;
        crate::tokens::count::TokenTally::of(
            self.text_bytes as u64,
            counted.then_some(self.tokens as u64),
        )
    }

    pub fn preference(&self, shard: u32) -> Preference {
        Preference {
            license_allowed: self.flags & LICENSE_ALLOWED != 0,
            stars: self.stars,
            tiebreak: self.tiebreak,
            id: RecordId {
                shard,
                row: self.row,
            },
        }
    }

    pub fn is_short(&self) -> bool {
        self.flags & SHORT != 0
    }
}

pub fn write_meta(path: &Path, meta: &[RecordMeta]) -> Result<()> {
    crate::output::atomic::write_atomic_unsynced(path, bytemuck::cast_slice(meta))
}

pub fn read_meta(path: &Path) -> Result<Vec<RecordMeta>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read record facts {}", path.display()))?;
    ensure!(
        bytes.len() % std::mem::size_of::<RecordMeta>() == 0,
        "record facts {} are truncated ({} bytes)",
        path.display(),
        bytes.len()
    );
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}
