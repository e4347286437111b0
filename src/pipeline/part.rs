//! Part files: the records of one input shard that passed every per-record
//! filter, written by phase 1 and read by the global phases (dedup,
//! decontamination, output).
//!
//! A part is zstd-compressed JSONL of [`PartRecord`] (level 1: about 400 MB/s
//! per core and a third of the size of plain JSON for code), written as
//! independent frames of up to [`RECORDS_PER_FRAME`] records, with a frame
//! index (`frames`: byte offset, first record and count of every frame) so
//! that a global step can read a few records (the candidates of exact
//! verification, the sample paths of the report) by decompressing only their
//! frames. Its sidecars (keys, record facts, signatures, bands, decontamination
//! hits, rejects) are described in [`super::work_dir`]. Everything is written
//! through [`crate::output::atomic::AtomicFile`], so a killed run never leaves
//! a torn part behind.

use crate::output::atomic::AtomicFile;
use crate::record::{OutputRecord, Record, RecordId};
use anyhow::{Context, Result};
use bytemuck::{Pod, Zeroable};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A record as kept in a part file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartRecord {
    pub id: RecordId,
    pub license_allowed: bool,
    /// `None` when the source has no stars.
    pub stars: Option<u64>,
    /// Output license string (see [`Record::output_license`]).
    pub license: String,
    pub path: String,
    pub repo: String,
    pub text: String,
}

impl PartRecord {
    pub fn from_record(record: &Record, text: String, license_allowed: bool) -> PartRecord {
        PartRecord {
            id: record.id,
            license_allowed,
            stars: record.stars,
            license: record.output_license(),
            path: record.path.clone(),
            repo: record.repo.clone(),
            text,
        }
    }

    pub fn preference(&self) -> crate::rank::Preference {
        crate::rank::Preference {
            license_allowed: self.license_allowed,
            stars: self.stars.unwrap_or(0),
            tiebreak: crate::rank::repo_path_hash(&self.repo, &self.path),
            id: self.id,
        }
    }

    /// The seed-schema output row.
    pub fn to_output(&self, language: &str) -> OutputRecord {
        OutputRecord {
            text: self.text.clone(),
            language: language.to_string(),
            license: self.license.clone(),
            stars: self.stars.unwrap_or(0),
            path: self.path.clone(),
            repo: self.repo.clone(),
        }
    }
}

/// Writes a part file: a sequence of independent zstd frames, each holding
/// the JSON lines of up to [`RECORDS_PER_FRAME`] records.
///
/// PERF: frames are serialised and compressed in parallel (rayon) and
/// appended in order, so writing a part scales with cores instead of running
/// on the pipeline's one writer thread; a zstd reader decodes concatenated
/// frames as one stream, so readers need not know.
pub struct PartWriter {
    file: AtomicFile,
    count: u32,
    offset: u64,
    frames: Vec<FrameEntry>,
}

/// Where one zstd frame of a part starts and which records it holds.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct FrameEntry {
    pub offset: u64,
    pub first_seq: u32,
    pub count: u32,
}

/// Records per zstd frame: large enough to compress well, small enough to
/// give every core work in a 1024-row batch.
pub const RECORDS_PER_FRAME: usize = 64;

impl PartWriter {
    pub fn create(path: &Path) -> Result<PartWriter> {
        Ok(PartWriter {
            file: AtomicFile::create(path)?,
            count: 0,
            offset: 0,
            frames: Vec::new(),
        })
    }

    /// Appends records in order and returns the position (`seq`) of the
    /// first one in the part.
    pub fn push_batch(&mut self, records: &[&PartRecord]) -> Result<u32> {
        use rayon::prelude::*;
        let frames: Vec<Vec<u8>> = records
            .par_chunks(RECORDS_PER_FRAME)
            .map(|chunk| -> Result<Vec<u8>> {
                let mut lines = Vec::with_capacity(chunk.iter().map(|r| r.text.len() + 128).sum());
                for r in chunk {
                    serde_json::to_writer(&mut lines, r)?;
                    lines.push(b'\n');
                }
                Ok(zstd::bulk::compress(&lines, 1)?)
            })
            .collect::<Result<_>>()?;
        let mut seq = self.count;
        for (f, chunk) in frames.iter().zip(records.chunks(RECORDS_PER_FRAME)) {
            self.file.write_all(f)?;
            self.frames.push(FrameEntry {
                offset: self.offset,
                first_seq: seq,
                count: chunk.len() as u32,
            });
            self.offset += f.len() as u64;
            seq += chunk.len() as u32;
        }
        let first = self.count;
        self.count += records.len() as u32;
        Ok(first)
    }

    /// Commits the part, then its frame index (unsynced: the shard's commit
    /// syncs its files at once, see [`crate::output::atomic::sync_filesystem`]).
    pub fn commit(self, frames_path: &Path) -> Result<()> {
        self.file.commit_unsynced()?;
        crate::output::atomic::write_atomic_unsynced(
            frames_path,
            bytemuck::cast_slice(&self.frames),
        )
    }
}

/// Streams the records of a part from position `seq` on (seeking to the
/// frame that holds it), as `(seq, record)`.
pub fn read_part_from(
    path: &Path,
    frames_path: &Path,
    seq: u32,
) -> Result<impl Iterator<Item = Result<(u32, PartRecord)>>> {
    use std::io::{Seek, SeekFrom};
    let bytes = std::fs::read(frames_path)
        .with_context(|| format!("cannot read frame index {}", frames_path.display()))?;
    anyhow::ensure!(
        bytes.len() % std::mem::size_of::<FrameEntry>() == 0,
        "frame index {} is truncated",
        frames_path.display()
    );
    let frames: Vec<FrameEntry> = bytemuck::pod_collect_to_vec(&bytes);
    let f = frames.partition_point(|fr| fr.first_seq + fr.count <= seq);
    let (offset, first) = frames
        .get(f)
        .map(|fr| (fr.offset, fr.first_seq))
        .unwrap_or((u64::MAX, seq));
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("cannot open part {}", path.display()))?;
    let display = path.display().to_string();
    let lines: Box<dyn Iterator<Item = std::io::Result<String>>> = if offset == u64::MAX {
        Box::new(std::iter::empty())
    } else {
        file.seek(SeekFrom::Start(offset))
            .with_context(|| format!("cannot read part {display}"))?;
        Box::new(BufReader::with_capacity(1 << 20, zstd::stream::read::Decoder::new(file)?).lines())
    };
    Ok(lines
        .enumerate()
        .map(move |(i, line)| (first + i as u32, line))
        .skip((seq - first.min(seq)) as usize)
        .map(move |(s, line)| {
            let line = line.with_context(|| format!("part {display} is corrupt at record {s}"))?;
            let rec = serde_json::from_str(&line)
                .with_context(|| format!("part {display} has a bad record {s}"))?;
            Ok((s, rec))
        }))
}

/// Reads single records of a part by position, decompressing only the frame
/// that holds each; the last frame read is kept, so reading positions in
/// ascending order decompresses every needed frame once.
pub struct PartLookup {
    file: std::fs::File,
    len: u64,
    frames: Vec<FrameEntry>,
    display: String,
    cached: Option<(usize, Vec<String>)>,
}

impl PartLookup {
    pub fn open(part: &Path, frames_path: &Path) -> Result<PartLookup> {
        let file = std::fs::File::open(part)
            .with_context(|| format!("cannot open part {}", part.display()))?;
        let len = file.metadata()?.len();
        let bytes = std::fs::read(frames_path)
            .with_context(|| format!("cannot read frame index {}", frames_path.display()))?;
        anyhow::ensure!(
            bytes.len() % std::mem::size_of::<FrameEntry>() == 0,
            "frame index {} is truncated",
            frames_path.display()
        );
        Ok(PartLookup {
            file,
            len,
            frames: bytemuck::pod_collect_to_vec(&bytes),
            display: part.display().to_string(),
            cached: None,
        })
    }

    /// The record at position `seq`.
    pub fn get(&mut self, seq: u32) -> Result<PartRecord> {
        let f = self
            .frames
            .partition_point(|fr| fr.first_seq + fr.count <= seq);
        let frame = *self
            .frames
            .get(f)
            .filter(|fr| fr.first_seq <= seq)
            .with_context(|| format!("part {} has no record {seq}", self.display))?;
        if self.cached.as_ref().map(|c| c.0) != Some(f) {
            let end = self.frames.get(f + 1).map(|n| n.offset).unwrap_or(self.len);
            let mut raw = vec![0u8; (end - frame.offset) as usize];
            self.file
                .read_exact_at(&mut raw, frame.offset)
                .with_context(|| format!("cannot read part {}", self.display))?;
            let text = zstd::stream::decode_all(&raw[..])
                .with_context(|| format!("part {} is corrupt near record {seq}", self.display))?;
            let text = String::from_utf8(text)
                .with_context(|| format!("part {} is corrupt near record {seq}", self.display))?;
            self.cached = Some((f, text.lines().map(str::to_string).collect()));
        }
        let lines = &self.cached.as_ref().expect("cached above").1;
        let line = lines
            .get((seq - frame.first_seq) as usize)
            .with_context(|| format!("part {} is corrupt near record {seq}", self.display))?;
        serde_json::from_str(line)
            .with_context(|| format!("part {} has a bad record {seq}", self.display))
    }
}

/// Streams the records of a part file in order.
pub fn read_part(path: &Path) -> Result<impl Iterator<Item = Result<PartRecord>>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open part {}", path.display()))?;
    let reader = BufReader::with_capacity(1 << 20, zstd::stream::read::Decoder::new(file)?);
    let display = path.display().to_string();
    Ok(reader.lines().enumerate().map(move |(i, line)| {
        let line = line.with_context(|| format!("part {display} is corrupt at line {}", i + 1))?;
        serde_json::from_str(&line)
            .with_context(|| format!("part {display} has a bad record at line {}", i + 1))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_in_order_across_batches_and_frames() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part.jsonl.zst");
        let rec = |row: u64| PartRecord {
            id: RecordId { shard: 3, row },
            license_allowed: true,
            stars: Some(row),
            license: "mit".into(),
            path: format!("{row}.py"),
            repo: "o/r".into(),
            text: format!("print({row})\n\"é\""),
        };
        let all: Vec<PartRecord> = (0..300).map(rec).collect();
        let mut w = PartWriter::create(&p).unwrap();
        let first: Vec<&PartRecord> = all[..1].iter().collect();
        let rest: Vec<&PartRecord> = all[1..].iter().collect();
        assert_eq!(w.push_batch(&first).unwrap(), 0);
        assert_eq!(w.push_batch(&[]).unwrap(), 1);
        assert_eq!(w.push_batch(&rest).unwrap(), 1);
        let frames = dir.path().join("part.frames");
        w.commit(&frames).unwrap();
        let back: Vec<PartRecord> = read_part(&p).unwrap().collect::<Result<_>>().unwrap();
        assert_eq!(back, all);
        let mut lookup = PartLookup::open(&p, &frames).unwrap();
        for seq in [0u32, 1, 64, 65, 299, 3, 200] {
            assert_eq!(lookup.get(seq).unwrap(), all[seq as usize]);
        }
        assert!(lookup.get(300).is_err());
        for from in [0u32, 1, 63, 64, 65, 299, 300] {
            let got: Vec<(u32, PartRecord)> = read_part_from(&p, &frames, from)
                .unwrap()
                .collect::<Result<_>>()
                .unwrap();
            let want: Vec<(u32, PartRecord)> =
                (from..300).map(|s| (s, all[s as usize].clone())).collect();
            assert_eq!(got, want, "from {from}");
        }
    }
}
