//! Reading single records of a finished shard by position, for the steps
//! that need a few texts (exact verification in `clusters`, the report's
//! samples): from the part file ([`PartLookup`], a zstd frame of
//! [`super::part::RECORDS_PER_FRAME`] records at a time), or, for `dedup`
//! over a plain JSONL file, straight from the input line (one `pread` and
//! one JSON parse per record), whose offset phase 1 stored in
//! `part-N.offsets` in place of a part.
//!
//! PERF: `dedup` first wrote parts like `curate`. Its `clusters` step read
//! the members of its components from them; members are scattered, so each
//! of the P tasks decompressed most frames of every part, and the step's CPU
//! grew with P: 0.48 s at P = 2, 1.60 s at P = 16 on the 100k corpus
//! (`dedup --backend cpu --input corpus-100000.jsonl --tokens estimate
//! --partitions P`, load 4.4; CPU seconds of the step), 22.1 s at 1M files
//! and P = 16, while phase 1 spent its time serialising and compressing
//! every record. Reading the input lines by offset costs per member only
//! (4.7 s at 1M files, P = 16), and phase 1 writes 16 bytes per record
//! instead of a part.

use super::part::{PartLookup, PartRecord};
use super::work_dir::WorkDir;
use crate::record::RecordId;
use anyhow::{ensure, Context, Result};
use bytemuck::{Pod, Zeroable};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where one record's line lies in the input (without its `\n`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct LineSpan {
    pub offset: u64,
    pub len: u64,
}

/// `part-N.offsets`: one [`LineSpan`] per record of the shard, in order.
pub fn offsets_path(work: &WorkDir, ordinal: u32) -> PathBuf {
    work.meta_path(ordinal).with_extension("offsets")
}

pub fn write_offsets(path: &Path, spans: &[LineSpan]) -> Result<()> {
    crate::output::atomic::write_atomic_unsynced(path, bytemuck::cast_slice(spans))
}

/// One shard's records by position.
pub enum RecordLookup {
    Part(PartLookup),
    Lines(LineLookup),
}

impl RecordLookup {
    /// Opens shard `ordinal` of `work`: its input lines when phase 1 stored
    /// their offsets (`input` is then the file they are in), else its part.
    pub fn open(work: &WorkDir, ordinal: u32, input: Option<&Path>) -> Result<RecordLookup> {
        let offsets = offsets_path(work, ordinal);
        match input {
            Some(input) if offsets.exists() => Ok(RecordLookup::Lines(LineLookup::open(
                input, &offsets, ordinal,
            )?)),
            _ => Ok(RecordLookup::Part(PartLookup::open(
                &work.part_path(ordinal),
                &work.frames_path(ordinal),
            )?)),
        }
    }

    /// The record at position `seq`. From input lines, `id.row` is 0 and
    /// `stars` is always known: the steps that look records up read only
    /// texts, paths and repositories.
    pub fn get(&mut self, seq: u32) -> Result<PartRecord> {
        match self {
            RecordLookup::Part(p) => p.get(seq),
            RecordLookup::Lines(l) => l.get(seq),
        }
    }

    /// The text alone of the record at position `seq` (the other fields
    /// are not decoded).
    pub fn text(&mut self, seq: u32) -> Result<String> {
        match self {
            RecordLookup::Part(p) => p.text(seq),
            RecordLookup::Lines(l) => l.text(seq),
        }
    }
}

/// Records read from their input lines.
pub struct LineLookup {
    file: std::fs::File,
    spans: Vec<LineSpan>,
    ordinal: u32,
    display: String,
}

impl LineLookup {
    fn open(input: &Path, offsets: &Path, ordinal: u32) -> Result<LineLookup> {
        let bytes =
            std::fs::read(offsets).with_context(|| format!("cannot read {}", offsets.display()))?;
        ensure!(
            bytes.len() % std::mem::size_of::<LineSpan>() == 0,
            "{} is truncated",
            offsets.display()
        );
        Ok(LineLookup {
            file: std::fs::File::open(input)
                .with_context(|| format!("cannot open {}", input.display()))?,
            spans: bytemuck::pod_collect_to_vec(&bytes),
            ordinal,
            display: input.display().to_string(),
        })
    }

    /// The raw input line of record `seq` and its byte offset.
    fn line(&mut self, seq: u32) -> Result<(Vec<u8>, u64)> {
        let span = *self
            .spans
            .get(seq as usize)
            .with_context(|| format!("shard {} has no record {seq}", self.ordinal))?;
        let mut raw = vec![0u8; span.len as usize];
        self.file
            .read_exact_at(&mut raw, span.offset)
            .with_context(|| format!("cannot read {}", self.display))?;
        Ok((raw, span.offset))
    }

    /// Decodes a line read by [`Self::line`], naming the input if it changed.
    fn decode<T: serde::de::DeserializeOwned>(&self, raw: &[u8], offset: u64) -> Result<T> {
        serde_json::from_slice(raw).with_context(|| {
            format!(
                "{} changed since phase 1 (byte {offset} is no longer a record); rerun with --fresh",
                self.display
            )
        })
    }

    fn text(&mut self, seq: u32) -> Result<String> {
        let (raw, offset) = self.line(seq)?;
        let t: super::part::TextOnly = self.decode(&raw, offset)?;
        Ok(t.text)
    }

    fn get(&mut self, seq: u32) -> Result<PartRecord> {
        let (raw, offset) = self.line(seq)?;
        let rec: crate::record::OutputRecord = self.decode(&raw, offset)?;
        Ok(PartRecord {
            id: RecordId {
                shard: self.ordinal,
                row: 0,
            },
            license_allowed: super::dedup_shard::license_allowed(&rec.license),
            stars: Some(rec.stars),
            license: rec.license,
            path: rec.path,
            repo: rec.repo,
            text: rec.text,
        })
    }
}
