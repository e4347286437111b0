//! Part files: the records of one input shard that passed every per-record
//! filter, written by phase 1 and read by the global phases (dedup,
//! decontamination, output).
//!
//! A part is zstd-compressed JSONL of [`PartRecord`] (level 1: about 400 MB/s
//! per core and a third of the size of plain JSON for code), written as
//! independent frames of up to [`RECORDS_PER_FRAME`] records, each with its
//! content checksum (so a changed byte is an error, not a changed text; parts
//! of older runs have none and still read), with a frame
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
///
/// PERF: `text` stays the last field: [`PartLine`] finds the text of a line
/// as the JSON string after the first `,"text":` (which cannot occur inside
/// a JSON string, where every `"` is escaped) and copies its escaped bytes
/// to the output unchanged (tested below).
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

/// Records per zstd frame: large enough to compress well (about 3.3 KB of
/// JSON for 800-byte files), small enough that reading one record decodes
/// little else.
///
/// PERF: exact verification (step `clusters`) reads the members of its
/// components by position, and its P tasks each want a scattered 1-2% of all
/// records, so with 64 records a frame almost every task decoded almost every
/// frame: `PartLookup` was 24% of `curate --threads 1 --tokens estimate` on
/// the 1M-file scale corpus (`scripts/bench_scale.sh`), and `clusters` grew
/// 15x from 100k to 1M files. With 16, a task decodes a quarter as much:
/// `clusters` 14.6 -> 7.0 CPU s at 1M files (`N=1000000
/// scripts/bench_hot_paths.sh OLD NEW`, load 1.2), the work directory 2%
/// larger, the same output. Decompression was still a third of `clusters`'
/// samples: each of its 16 tasks decoded about a quarter of all frames for
/// its members. With 8: `clusters` 6.4-7.0 -> 4.8-5.0 CPU s at one thread,
/// 6.6 -> 4.9 at two, the parts 3.9% larger (320.8 -> 333.2 MB), step
/// `output` within the noise (2.4-2.7 against 2.5-3.0 CPU s), the same
/// output (alternating `curate` runs, AMD host, 2026-12-07). With 4:
/// `clusters` 5.4-6.0 -> 4.2-4.3 CPU s at one thread, 4.7-5.2 -> 3.8-3.9 at
/// two (1.97-2.03 s wall instead of 2.41-2.67), the parts 7.8% larger (332
/// -> 358 MB), step `output` and phase 1 within the noise, the same output
/// (2 alternating rounds at each thread count, 2026-12-08). 2 was tried and
/// not kept: `clusters` 3.9-4.5 -> 3.5-3.6 CPU s at one thread, but phase 1
/// 1.3-2.6 s and step `output` 0.2-0.4 s slower (a frame's header, checksum
/// and tables for 1.6 KB of JSON), the parts 11% larger. A reader takes
/// any frame size (the frame index says where each frame starts), so older
/// work directories still resume.
pub const RECORDS_PER_FRAME: usize = 4;

/// Frames compressed by one rayon task (sharing one zstd context): 64
/// records, so that a context is made once per 50 KB or so of JSON.
const FRAMES_PER_TASK: usize = 64 / RECORDS_PER_FRAME;

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
        // PERF: one compressor (and one line buffer) per group of frames
        // instead of a fresh zstd context per frame: with frames of 16
        // records, creating the context cost about as much as compressing.
        let frames: Vec<Vec<u8>> = records
            .par_chunks(RECORDS_PER_FRAME * FRAMES_PER_TASK)
            .map(|group| -> Result<Vec<Vec<u8>>> {
                let mut zstd = zstd::bulk::Compressor::new(1)?;
                // A checksum per frame: the decoder then refuses a frame
                // whose bytes changed (the output step copies texts
                // through without parsing them).
                zstd.set_parameter(zstd::stream::raw::CParameter::ChecksumFlag(true))?;
                let mut lines = Vec::new();
                group
                    .chunks(RECORDS_PER_FRAME)
                    .map(|chunk| -> Result<Vec<u8>> {
                        lines.clear();
                        for r in chunk {
                            serde_json::to_writer(&mut lines, r)?;
                            lines.push(b'\n');
                        }
                        Ok(zstd.compress(&lines)?)
                    })
                    .collect()
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
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
    let frames = read_frames(frames_path)?;
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

/// A part line read without decoding its text: the other fields parsed
/// (borrowed where they have no escapes), the text as the escaped JSON string
/// that serde_json wrote, quotes included.
///
/// PERF: step `output` wrote every survivor by parsing its line into a
/// [`PartRecord`] (unescaping the text into a new `String`), cloning it into
/// an [`OutputRecord`] and escaping it again; the escaped bytes are the same
/// both times (one serializer, one escaping rule), so the text is now copied
/// through as it is, and decoded only where a step needs it (a token count, a
/// decontamination sample, Parquet output).
#[derive(Debug)]
pub struct PartLine<'a> {
    pub head: PartHead<'a>,
    raw_text: &'a [u8],
}

/// Every field of a part line but the text (which serde skips).
#[derive(Debug, Deserialize)]
pub struct PartHead<'a> {
    pub id: RecordId,
    pub license_allowed: bool,
    pub stars: Option<u64>,
    #[serde(borrow)]
    pub license: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub path: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub repo: std::borrow::Cow<'a, str>,
}

impl<'a> PartLine<'a> {
    /// Parses one JSON line of a part. The fields before the text are
    /// parsed from a copy of them in `head` (closed with `}`), so the text
    /// is not scanned here; it is checked where it is decoded, and a part's
    /// frames carry zstd checksums (see [`PartWriter`]).
    ///
    /// PERF: skipping the text inside serde_json (`skip_to_escape`,
    /// `ignore_str`) was 16% of step `output`'s samples with `--threads 2`
    /// on 1M files, on the thread that limits the step.
    pub fn parse(line: &'a [u8], head: &'a mut Vec<u8>) -> Result<PartLine<'a>> {
        // PERF: one searcher for every line (`memmem::find` builds one per
        // call: 1.4% of step `output`).
        static TEXT_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b",\"text\":"));
        let at = TEXT_KEY
            .find(line)
            .context("the record has no text field")?;
        let raw_text = line[at + 8..]
            .strip_suffix(b"}")
            .filter(|t| t.len() >= 2 && t[0] == b'"' && t[t.len() - 1] == b'"')
            .context("the record's text is not its last field")?;
        head.clear();
        head.extend_from_slice(&line[..at]);
        head.push(b'}');
        let head: PartHead = serde_json::from_slice(head)?;
        Ok(PartLine { head, raw_text })
    }

    /// The text, decoded.
    pub fn text(&self) -> Result<String> {
        Ok(serde_json::from_slice(self.raw_text)?)
    }

    /// Writes the seed-schema output line (see [`PartRecord::to_output`]),
    /// byte for byte what serde_json writes for that [`OutputRecord`].
    pub fn write_output_json(&self, out: &mut impl Write, language: &str) -> Result<()> {
        out.write_all(b"{\"text\":")?;
        out.write_all(self.raw_text)?;
        out.write_all(b",\"language\":")?;
        serde_json::to_writer(&mut *out, language)?;
        out.write_all(b",\"license\":")?;
        serde_json::to_writer(&mut *out, &*self.head.license)?;
        write!(out, ",\"stars\":{}", self.head.stars.unwrap_or(0))?;
        out.write_all(b",\"path\":")?;
        serde_json::to_writer(&mut *out, &*self.head.path)?;
        out.write_all(b",\"repo\":")?;
        serde_json::to_writer(&mut *out, &*self.head.repo)?;
        out.write_all(b"}\n")?;
        Ok(())
    }

    /// The seed-schema output row, text decoded.
    pub fn to_output(&self, language: &str) -> Result<OutputRecord> {
        let mut row = self.to_output_without_text(language);
        row.text = self.text()?;
        Ok(row)
    }

    /// The seed-schema output row with an empty text.
    pub fn to_output_without_text(&self, language: &str) -> OutputRecord {
        OutputRecord {
            text: String::new(),
            language: language.to_string(),
            license: self.head.license.to_string(),
            stars: self.head.stars.unwrap_or(0),
            path: self.head.path.to_string(),
            repo: self.head.repo.to_string(),
        }
    }
}

/// [`PartLines`]' read buffer.
const LINE_BUFFER: usize = 256 << 10;

/// The JSON lines of a part from position `seq` on, one line buffer reused
/// for all ([`PartLines::next_line`]).
pub struct PartLines {
    reader: Option<Box<dyn BufRead>>,
    display: String,
    seq: u32,
    skip: u32,
    /// A line across the reader's buffer end, copied.
    line: Vec<u8>,
    /// Bytes of the reader's buffer returned by the last call, to consume.
    consumed: usize,
}

impl PartLines {
    /// Opens part `path` at position `seq` (seeking to the frame that holds
    /// it), with the part's frame index ([`read_frames`]).
    pub fn open(path: &Path, frames: &[FrameEntry], seq: u32) -> Result<PartLines> {
        use std::io::{Seek, SeekFrom};
        let f = frames.partition_point(|fr| fr.first_seq + fr.count <= seq);
        let display = path.display().to_string();
        let Some(fr) = frames.get(f) else {
            return Ok(PartLines {
                reader: None,
                display,
                seq,
                skip: 0,
                line: Vec::new(),
                consumed: 0,
            });
        };
        let mut file = std::fs::File::open(path)
            .with_context(|| format!("cannot open part {}", path.display()))?;
        file.seek(SeekFrom::Start(fr.offset))
            .with_context(|| format!("cannot read part {display}"))?;
        let decoder = zstd::stream::read::Decoder::new(file)?;
        // A piece of step `output` opens its part for about 2 MB of lines:
        // a 1 MiB buffer per piece was a fresh `mmap` and its page faults.
        let reader: Box<dyn BufRead> = Box::new(BufReader::with_capacity(LINE_BUFFER, decoder));
        Ok(PartLines {
            reader: Some(reader),
            display,
            seq: fr.first_seq,
            skip: seq - fr.first_seq.min(seq),
            line: Vec::new(),
            consumed: 0,
        })
    }

    /// The next line (without its newline) and its position, or `None` at
    /// the end of the part.
    ///
    /// PERF: a line that lies whole in the reader's buffer is returned from
    /// there (consumed on the next call); only a line across the buffer's
    /// end is copied. Copying every line out (`read_until`) was 9% of step
    /// `output`'s samples.
    pub fn next_line(&mut self) -> Option<Result<(u32, &[u8])>> {
        let reader = self.reader.as_mut()?;
        reader.consume(std::mem::take(&mut self.consumed));
        loop {
            let buf = match reader.fill_buf() {
                Ok([]) => return None,
                Ok(b) => b,
                Err(e) => return Some(Err(self.corrupt(e))),
            };
            let seq = self.seq;
            self.seq += 1;
            let whole = memchr::memchr(b'\n', buf);
            if self.skip > 0 {
                self.skip -= 1;
                match whole {
                    Some(i) => reader.consume(i + 1),
                    None => {
                        let n = buf.len();
                        reader.consume(n);
                        self.line.clear();
                        if let Err(e) = reader.read_until(b'\n', &mut self.line) {
                            return Some(Err(self.corrupt(e)));
                        }
                    }
                }
                continue;
            }
            if let Some(i) = whole {
                self.consumed = i + 1;
                // The same buffer again (nothing was consumed, so `fill_buf`
                // reads nothing): borrowed anew, to return from the loop.
                let display = &self.display;
                return Some(match self.reader.as_mut()?.fill_buf() {
                    Ok(buf) if buf.len() > i => Ok((seq, &buf[..i])),
                    _ => Err(anyhow::anyhow!(
                        "part {display}: its reader lost a line at record {seq}"
                    )),
                });
            }
            self.line.clear();
            self.line.extend_from_slice(buf);
            let n = buf.len();
            reader.consume(n);
            if let Err(e) = reader.read_until(b'\n', &mut self.line) {
                return Some(Err(self.corrupt(e)));
            }
            if self.line.last() == Some(&b'\n') {
                self.line.pop();
            }
            return Some(Ok((seq, &self.line)));
        }
    }

    /// The error of a part that cannot be read at the current record.
    fn corrupt(&self, e: std::io::Error) -> anyhow::Error {
        anyhow::Error::new(e).context(format!(
            "part {} is corrupt at record {}",
            self.display, self.seq
        ))
    }

    /// The part's name, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }
}

/// A part's frame index: where each frame starts and which records it holds.
pub fn read_frames(frames_path: &Path) -> Result<Vec<FrameEntry>> {
    let bytes = std::fs::read(frames_path)
        .with_context(|| format!("cannot read frame index {}", frames_path.display()))?;
    anyhow::ensure!(
        bytes.len() % std::mem::size_of::<FrameEntry>() == 0,
        "frame index {} is truncated",
        frames_path.display()
    );
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}

/// Reads single records of a part by position, decompressing only the frame
/// that holds each; the last frame read is kept, so reading positions in
/// ascending order decompresses every needed frame once.
///
/// PERF: one zstd context for every frame, the frame's bytes kept as they
/// are (with the start of each line) instead of one `String` per line, and
/// [`PartLookup::text`] parses only the text of the one line it needs.
pub struct PartLookup {
    file: std::fs::File,
    len: u64,
    frames: Vec<FrameEntry>,
    display: String,
    zstd: zstd::bulk::Decompressor<'static>,
    raw: Vec<u8>,
    /// The frame decoded last, its JSON lines, and where each line starts.
    cached: Option<usize>,
    lines: Vec<u8>,
    starts: Vec<usize>,
}

/// The text alone of a part line (serde skips the other fields).
#[derive(Deserialize)]
pub(crate) struct TextOnly {
    pub(crate) text: String,
}

impl PartLookup {
    pub fn open(part: &Path, frames_path: &Path) -> Result<PartLookup> {
        let file = std::fs::File::open(part)
            .with_context(|| format!("cannot open part {}", part.display()))?;
        let len = file.metadata()?.len();
        Ok(PartLookup {
            file,
            len,
            frames: read_frames(frames_path)?,
            display: part.display().to_string(),
            zstd: zstd::bulk::Decompressor::new()?,
            raw: Vec::new(),
            cached: None,
            lines: Vec::new(),
            starts: Vec::new(),
        })
    }

    /// Where the JSON line of the record at position `seq` lies in
    /// `self.lines`, once its frame is decoded there.
    fn line(&mut self, seq: u32) -> Result<std::ops::Range<usize>> {
        let f = self
            .frames
            .partition_point(|fr| fr.first_seq + fr.count <= seq);
        let frame = *self
            .frames
            .get(f)
            .filter(|fr| fr.first_seq <= seq)
            .with_context(|| format!("part {} has no record {seq}", self.display))?;
        let corrupt = || format!("part {} is corrupt near record {seq}", self.display);
        if self.cached != Some(f) {
            self.cached = None;
            let end = self.frames.get(f + 1).map(|n| n.offset).unwrap_or(self.len);
            anyhow::ensure!(end >= frame.offset, "{}", corrupt());
            self.raw.resize((end - frame.offset) as usize, 0);
            self.file
                .read_exact_at(&mut self.raw, frame.offset)
                .with_context(|| format!("cannot read part {}", self.display))?;
            self.lines.clear();
            match zstd::bulk::Decompressor::upper_bound(&self.raw) {
                // Our frames record their size (bulk compression does).
                Some(n) if n <= 1 << 31 => {
                    self.lines.reserve(n);
                    self.zstd
                        .decompress_to_buffer(&self.raw[..], &mut self.lines)
                        .with_context(corrupt)?;
                }
                _ => {
                    self.lines = zstd::stream::decode_all(&self.raw[..]).with_context(corrupt)?;
                }
            }
            self.starts.clear();
            self.starts.push(0);
            self.starts.extend(
                memchr::memchr_iter(b'\n', &self.lines)
                    .map(|i| i + 1)
                    .filter(|&i| i < self.lines.len()),
            );
            self.cached = Some(f);
        }
        let i = (seq - frame.first_seq) as usize;
        let start = *self.starts.get(i).with_context(corrupt)?;
        let end = self.starts.get(i + 1).copied().unwrap_or(self.lines.len());
        let end = if end > start && self.lines[end - 1] == b'\n' {
            end - 1
        } else {
            end
        };
        Ok(start..end)
    }

    /// The record at position `seq`.
    pub fn get(&mut self, seq: u32) -> Result<PartRecord> {
        let line = self.line(seq)?;
        serde_json::from_slice(&self.lines[line])
            .with_context(|| format!("part {} has a bad record {seq}", self.display))
    }

    /// The text of the record at position `seq`.
    pub fn text(&mut self, seq: u32) -> Result<String> {
        let line = self.line(seq)?;
        let t: TextOnly = serde_json::from_slice(&self.lines[line])
            .with_context(|| format!("part {} has a bad record {seq}", self.display))?;
        Ok(t.text)
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
        for seq in [0u32, 299, 17, 16, 15] {
            assert_eq!(lookup.text(seq).unwrap(), all[seq as usize].text);
        }
        for from in [0u32, 15, 16, 17, 299, 300] {
            let mut lines = PartLines::open(&p, &read_frames(&frames).unwrap(), from).unwrap();
            let mut want = from;
            while let Some(l) = lines.next_line() {
                let (seq, line) = l.unwrap();
                assert_eq!(seq, want);
                let back: PartRecord = serde_json::from_slice(line).unwrap();
                assert_eq!(back, all[seq as usize]);
                want += 1;
            }
            assert_eq!(want, 300.max(from));
        }
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

    /// The text copied through escaped gives serde_json's own output line,
    /// Lines that cross the reader's buffer end ([`LINE_BUFFER`]), lines longer than
    /// the buffer and skipped lines across it come back whole, in order,
    /// from any start.
    #[test]
    fn part_lines_come_back_whole_across_buffer_ends() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part.jsonl.zst");
        let frames = dir.path().join("part.frames");
        // Lines of many sizes against 256 KiB buffers: some end near a
        // buffer's end, five are longer than a buffer.
        let sizes = [
            10,
            700_000,
            348_000,
            5,
            1 << 20,
            3_000_000,
            1,
            0,
            524_288,
            524_270,
        ];
        let all: Vec<PartRecord> = (0..60u64)
            .map(|row| PartRecord {
                id: RecordId { shard: 0, row },
                license_allowed: row % 2 == 0,
                stars: Some(row),
                license: "mit".into(),
                path: format!("{row}.py"),
                repo: "o/r".into(),
                text: "x\n".repeat(sizes[row as usize % sizes.len()] / 3)
                    + &"é".repeat(row as usize % 5),
            })
            .collect();
        let mut w = PartWriter::create(&p).unwrap();
        w.push_batch(&all.iter().collect::<Vec<_>>()).unwrap();
        w.commit(&frames).unwrap();
        for start in [0u32, 1, 17, 33, 59, 60] {
            let mut lines = PartLines::open(&p, &read_frames(&frames).unwrap(), start).unwrap();
            let mut seen = Vec::new();
            while let Some(line) = lines.next_line() {
                let (seq, line) = line.unwrap();
                let want = serde_json::to_vec(&all[seq as usize]).unwrap();
                assert!(line == want, "record {seq} from {start}");
                seen.push(seq);
            }
            assert_eq!(seen, (start..60).collect::<Vec<_>>());
        }
    }

    /// Every frame carries a checksum, so a changed byte of decompressed
    /// content (one the JSON would not reveal: the output step copies texts
    /// through) is an error naming the part, not a different text.
    #[test]
    fn a_frame_whose_checksum_does_not_match_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("part.jsonl.zst");
        let frames = dir.path().join("part.frames");
        let all: Vec<PartRecord> = (0..40u64)
            .map(|row| PartRecord {
                id: RecordId { shard: 0, row },
                license_allowed: true,
                stars: None,
                license: "mit".into(),
                path: format!("{row}.py"),
                repo: "o/r".into(),
                text: format!("def f{row}():\n    return {row}\n"),
            })
            .collect();
        let mut w = PartWriter::create(&p).unwrap();
        w.push_batch(&all.iter().collect::<Vec<_>>()).unwrap();
        w.commit(&frames).unwrap();
        let index = read_frames(&frames).unwrap();
        let mut bytes = std::fs::read(&p).unwrap();
        for f in &index {
            // The frame header's descriptor: Content_Checksum_flag (bit 2).
            assert_ne!(
                bytes[f.offset as usize + 4] & 0b100,
                0,
                "frame at {}",
                f.offset
            );
        }
        // The last byte of the second frame is its checksum's.
        let end = index[2].offset as usize;
        bytes[end - 1] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        let mut lines = PartLines::open(&p, &read_frames(&frames).unwrap(), 0).unwrap();
        let err = loop {
            match lines.next_line() {
                Some(Ok(_)) => continue,
                Some(Err(e)) => break e,
                None => panic!("a part with a bad checksum read to its end"),
            }
        };
        let msg = format!("{err:#}");
        assert!(msg.contains("part.jsonl.zst is corrupt at record"), "{msg}");
        let mut lookup = PartLookup::open(&p, &frames).unwrap();
        assert!(lookup.get(0).is_ok());
        assert!(lookup.get(RECORDS_PER_FRAME as u32).is_err());
    }

    /// for texts with every kind of escape.
    #[test]
    fn part_lines_write_the_output_serde_json_writes() {
        let texts = [
            "",
            "plain",
            "line\nnext\r\n\ttab \"quoted\" back\\slash",
            "control \u{0}\u{1f}\u{7f} bell\u{7}",
            "unicode é ✓ 𝄞 中文",
            ",\"text\":\"fake\"}",
        ];
        for (i, text) in texts.iter().enumerate() {
            let rec = PartRecord {
                id: RecordId {
                    shard: 1,
                    row: i as u64,
                },
                license_allowed: i % 2 == 0,
                stars: (i % 3 != 0).then_some(i as u64 * 7),
                license: "mit AND \"x\"".into(),
                path: format!("dir/\"{i}\".rs"),
                repo: ",\"text\":\"o/r\"".into(),
                text: text.to_string(),
            };
            let line = serde_json::to_vec(&rec).unwrap();
            let mut head = Vec::new();
            let view = PartLine::parse(&line, &mut head).unwrap();
            assert_eq!(view.text().unwrap(), *text);
            let mut got = Vec::new();
            view.write_output_json(&mut got, "rust").unwrap();
            let mut want = serde_json::to_vec(&rec.to_output("rust")).unwrap();
            want.push(b'\n');
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
            assert_eq!(view.to_output("rust").unwrap(), rec.to_output("rust"));
        }
        // Escapes serde_json does not write, from another writer: \u for
        // non-control characters and surrogate pairs.
        let line = br#"{"id":{"shard":0,"row":0},"license_allowed":true,"stars":null,"license":"","path":"","repo":"","text":"\u00e9\u4e2d\ud834\udd1e\/x"}"#;
        let mut head = Vec::new();
        let view = PartLine::parse(line, &mut head).unwrap();
        assert_eq!(view.text().unwrap(), "é中𝄞/x");
    }
}
