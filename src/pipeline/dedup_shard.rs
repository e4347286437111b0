//! Phase 1 of `dedup`: one byte range of a tool-schema JSONL file in, the
//! same part and near-dedup sidecars as `curate`'s phase 1 out, so that the
//! global steps ([`super::steps`]) run on `dedup`'s input unchanged.
//!
//! ## Shards
//! A plain JSONL input is cut into byte ranges of about
//! [`DEFAULT_SHARD_BYTES`], each ending just after a `\n` ([`plan_shards`]),
//! so that phase 1 runs one task per range (in parallel, resumable range by
//! range) and the output step can seek to any range. A compressed input
//! (`.gz`, `.zst`) cannot be entered in the middle: it is one shard.
//!
//! ## Per shard
//! Lines are read in blocks of about 8 MiB and parsed in parallel
//! ([`crate::output::tool_jsonl::parse_tool_line`]); for every valid record
//! phase 1 stores where its line is (`part-N.offsets`; a compressed input,
//! which cannot be read by offset, gets a part `part-N.jsonl.zst` instead),
//! for exact verification and the report's samples
//! ([`super::record_lookup`]), its facts (`part-N.meta`: preference, text bytes, shingles, and
//! as `row` its line number within the range) and its signature and band
//! hashes ([`crate::dedup::near::shard_keys`], as `curate` computes them).
//! Blank lines are skipped; a line that is not a valid record is counted
//! under `read_bad_json` and listed in `part-N.lines.json` with the range's
//! line count, from which the global steps number lines across ranges.
//!
//! DETERMINISM: the preference's record id is `(shard, line within the
//! range)`, which orders records as their input line numbers do, so the
//! full-tie break of [`crate::rank::Preference`] is the one the
//! single-process driver used; ranges depend only on the file and the shard
//! size.

use super::part::{PartRecord, PartWriter};
use super::record_lookup::{offsets_path, write_offsets, LineSpan};
use super::record_meta::{write_meta, RecordMeta, LICENSE_ALLOWED, SHORT};
use super::work_dir::{ShardDone, WorkDir};
use crate::backends::Backend;
use crate::dedup::near::shard_keys::{KeySettings, ShardKeyWriter};
use crate::output::tool_jsonl::{is_blank, open_maybe_compressed, parse_tool_line, raw_lines};
use crate::record::RecordId;
use crate::stats::Stats;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Bytes of plain input per phase-1 shard when not told otherwise: large
/// enough that a shard's fixed costs (files, one sync) vanish, small enough
/// that a 1 GB input gives every core of a small machine work.
pub const DEFAULT_SHARD_BYTES: u64 = 128 << 20;

/// Drop reason of an input line that is not a valid record.
pub const BAD_JSON: &str = "read_bad_json";

/// Raw bytes of input read per block before the block is parsed in parallel.
const PARSE_BLOCK_BYTES: usize = 8 << 20;

/// One phase-1 shard of the input: bytes `start..end` (`end == None`: to the
/// end of the decompressed stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRange {
    pub start: u64,
    pub end: Option<u64>,
}

/// Whether `path` is read through a decompressor (one shard only).
pub fn is_compressed(path: &Path) -> bool {
    let name = path.to_string_lossy().to_ascii_lowercase();
    name.ends_with(".gz") || name.ends_with(".zst")
}

/// Cuts `path` into ranges of about `shard_bytes`, each ending just after a
/// newline (or at the end of the file).
pub fn plan_shards(path: &Path, shard_bytes: u64) -> Result<Vec<InputRange>> {
    if is_compressed(path) {
        return Ok(vec![InputRange {
            start: 0,
            end: None,
        }]);
    }
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = Vec::new();
    let mut start = 0u64;
    while start < size {
        let mut end = (start + shard_bytes.max(1)).min(size);
        if end < size {
            // The cut goes after the first newline at or past `end - 1`.
            file.seek(SeekFrom::Start(end - 1))?;
            let mut reader = BufReader::with_capacity(1 << 16, &mut file);
            let mut skipped = Vec::new();
            reader
                .read_until(b'\n', &mut skipped)
                .with_context(|| format!("cannot read {}", path.display()))?;
            end = end - 1 + skipped.len() as u64;
        }
        out.push(InputRange {
            start,
            end: Some(end),
        });
        start = end;
    }
    if out.is_empty() {
        out.push(InputRange {
            start: 0,
            end: Some(0),
        });
    }
    Ok(out)
}

/// The decompressed bytes of `range` of `path`.
pub fn open_range(path: &Path, range: InputRange) -> Result<Box<dyn BufRead + Send>> {
    let reader: Box<dyn Read + Send> = match range.end {
        None => open_maybe_compressed(path)?,
        Some(end) => {
            let mut f = std::fs::File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))?;
            f.seek(SeekFrom::Start(range.start))
                .with_context(|| format!("cannot read {}", path.display()))?;
            Box::new(f.take(end - range.start))
        }
    };
    Ok(Box::new(BufReader::with_capacity(1 << 20, reader)))
}

/// A line of the input that is not a valid record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BadInputLine {
    /// Line number (1-based): within the shard in `part-N.lines.json`,
    /// within the input in the stats file.
    pub line: u64,
    pub reason: String,
    pub error: String,
}

/// `part-N.lines.json`: what the global steps need to number the input's
/// lines and to skip its bad ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardLines {
    /// Lines of the range (blank and bad ones included).
    pub lines: u64,
    /// Bad lines, ascending.
    pub bad: Vec<StoredBadLine>,
}

/// A bad line as stored per shard (with its bytes, which the stats count).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredBadLine {
    pub line: u64,
    pub error: String,
    pub bytes: u64,
}

pub fn lines_path(work: &WorkDir, ordinal: u32) -> std::path::PathBuf {
    work.meta_path(ordinal).with_extension("lines.json")
}

pub fn read_lines(work: &WorkDir, ordinal: u32) -> Result<ShardLines> {
    let path = lines_path(work, ordinal);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is corrupt", path.display()))
}

/// A record's license allows redistribution unless it is empty or
/// `no_license` (the value `curate --allow-no-license` writes for files
/// without a detected license).
pub fn license_allowed(license: &str) -> bool {
    let l = license.trim();
    !l.is_empty() && !l.eq_ignore_ascii_case("no_license")
}

/// What phase 1 computes for each record of a shard, and with what.
#[derive(Clone, Copy)]
pub struct RecordWork<'a> {
    /// Near dedup's key settings, and the backend that computes the keys.
    pub settings: &'a KeySettings,
    pub backend: &'a dyn Backend,
    /// Token counting (`None` with `--tokens off`).
    pub tokens: Option<&'a crate::tokens::TokenCounter>,
}

/// Phase 1 of shard `ordinal` (range `range` of `input`), committed in
/// `work`; `durable`: its files are synced before its marker (not in a
/// scratch work directory, which a crash loses anyway).
pub fn process(
    work: &WorkDir,
    input: &Path,
    ordinal: u32,
    range: InputRange,
    per_record: RecordWork<'_>,
    durable: bool,
) -> Result<ShardDone> {
    let RecordWork {
        settings,
        backend,
        tokens,
    } = per_record;
    let o = ordinal;
    // A plain input is read again by offset (record_lookup); only a
    // compressed one needs its records in a part.
    let mut part = match range.end {
        Some(_) => None,
        None => Some(PartWriter::create(&work.part_path(o))?),
    };
    let mut spans: Vec<LineSpan> = Vec::new();
    let mut pos = range.start;
    let mut keys = ShardKeyWriter::create(settings, backend, &work.signatures_path(o))?;
    let mut meta: Vec<RecordMeta> = Vec::new();
    let mut stats = Stats::default();
    let mut lines = ShardLines::default();
    let mut raw = raw_lines(open_range(input, range)?);
    let mut last = 0u64;
    loop {
        let mut block: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut block_spans: Vec<LineSpan> = Vec::new();
        let mut block_bytes = 0usize;
        while block_bytes < PARSE_BLOCK_BYTES {
            match raw.next() {
                None => break,
                Some(Err(e)) => bail!("{}: line {} of shard {o}: {e}", input.display(), last + 1),
                Some(Ok((number, bytes))) => {
                    last = number;
                    let span = LineSpan {
                        offset: pos,
                        len: bytes.len() as u64,
                    };
                    pos += bytes.len() as u64 + 1;
                    if is_blank(&bytes) {
                        continue;
                    }
                    block_bytes += bytes.len();
                    block.push((number, bytes));
                    block_spans.push(span);
                }
            }
        }
        if block.is_empty() {
            break;
        }
        crate::pipeline::progress::count_within_step(block.len() as u64);
        let parsed: Vec<crate::output::tool_jsonl::ToolLine> = block
            .into_par_iter()
            .with_min_len(64)
            .map(|(number, bytes)| parse_tool_line(number, bytes))
            .collect();
        let mut recs: Vec<PartRecord> = Vec::with_capacity(parsed.len());
        for (line, span) in parsed.into_iter().zip(block_spans) {
            match line.record {
                Err(error) => {
                    let bytes = line.raw.len() as u64;
                    stats.drop("read", BAD_JSON, bytes);
                    lines.bad.push(StoredBadLine {
                        line: line.number,
                        error,
                        bytes,
                    });
                }
                Ok(rec) => {
                    stats.pass("read", rec.text.len() as u64);
                    spans.push(span);
                    recs.push(PartRecord {
                        id: RecordId {
                            shard: o,
                            row: line.number,
                        },
                        license_allowed: license_allowed(&rec.license),
                        stars: Some(rec.stars),
                        license: rec.license,
                        path: rec.path,
                        repo: rec.repo,
                        text: rec.text,
                    });
                }
            }
        }
        let texts: Vec<&str> = recs.iter().map(|r| r.text.as_str()).collect();
        let counts = keys.push_batch(&texts)?;
        // Each text's tokens, counted here where it is parsed anyway, so the
        // output step does not parse the kept lines again (see
        // `RecordMeta::tokens`).
        let record_tokens: Vec<u32> = match tokens {
            Some(c) => texts
                .par_iter()
                .with_min_len(64)
                .map(|t| c.tally_one(t).map(|t| super::record_meta::tokens_of(&t)))
                .collect::<Result<_>>()?,
            None => vec![super::record_meta::NOT_COUNTED; texts.len()],
        };
        for ((rec, count), &tokens) in recs.iter().zip(&counts).zip(&record_tokens) {
            let pref = rec.preference();
            let mut flags = 0;
            if pref.license_allowed {
                flags |= LICENSE_ALLOWED;
            }
            if count.is_short(settings.ngram) {
                flags |= SHORT;
            }
            meta.push(RecordMeta {
                stars: pref.stars,
                tiebreak: pref.tiebreak,
                row: pref.id.row,
                text_bytes: u32::try_from(rec.text.len()).with_context(|| {
                    format!(
                        "{}: line {} of shard {o} has a text over 4 GiB",
                        input.display(),
                        pref.id.row
                    )
                })?,
                shingles: count.shingles,
                flags,
                tokens,
            });
        }
        if let Some(part) = part.as_mut() {
            let refs: Vec<&PartRecord> = recs.iter().collect();
            part.push_batch(&refs)?;
        }
    }
    lines.lines = last;
    let kept = meta.len() as u64;
    match part {
        Some(part) => part.commit(&work.frames_path(o))?,
        None => write_offsets(&offsets_path(work, o), &spans)?,
    }
    write_meta(&work.meta_path(o), &meta)?;
    let spill = keys.commit(&work.bands_path(o))?;
    crate::dedup::near::shard_keys::note_band_spill(&mut stats, spill);
    crate::output::atomic::write_atomic_unsynced(
        &lines_path(work, o),
        &serde_json::to_vec(&lines)?,
    )?;
    let input_bytes = match range.end {
        Some(end) => end - range.start,
        None => std::fs::metadata(input).map(|m| m.len()).unwrap_or(0),
    };
    let done = ShardDone {
        ordinal: o,
        input: input.display().to_string(),
        input_bytes,
        kept,
        stopped_at_row: None,
        stats,
        token_tallies: None,
    };
    if durable {
        crate::output::atomic::sync_filesystem(&work.root)?;
    }
    work.commit(&done)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_end_after_newlines_and_cover_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let mut text = String::new();
        for i in 0..500 {
            text.push_str(&"x".repeat(i % 37));
            text.push('\n');
        }
        text.push_str("no newline at the end");
        std::fs::write(&path, &text).unwrap();
        for size in [1u64, 7, 100, 1000, 1 << 20] {
            let ranges = plan_shards(&path, size).unwrap();
            let mut at = 0;
            let mut lines = 0;
            for r in &ranges {
                assert_eq!(r.start, at);
                let end = r.end.unwrap();
                assert!(end > r.start);
                if (end as usize) < text.len() {
                    assert_eq!(text.as_bytes()[end as usize - 1], b'\n');
                }
                let mut body = Vec::new();
                open_range(&path, *r)
                    .unwrap()
                    .read_to_end(&mut body)
                    .unwrap();
                assert_eq!(body, text.as_bytes()[r.start as usize..end as usize]);
                lines += raw_lines(&body[..]).count();
                at = end;
            }
            assert_eq!(at as usize, text.len());
            assert_eq!(lines, 501);
        }
        let empty = dir.path().join("empty.jsonl");
        std::fs::write(&empty, "").unwrap();
        assert_eq!(plan_shards(&empty, 10).unwrap().len(), 1);
        let gz = dir.path().join("in.jsonl.gz");
        std::fs::write(&gz, "").unwrap();
        assert_eq!(
            plan_shards(&gz, 10).unwrap(),
            vec![InputRange {
                start: 0,
                end: None
            }]
        );
    }
}
