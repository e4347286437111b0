//! One piece of step `output`: consecutive records of one part, read,
//! given their verdicts and formatted, on a core of their own.
//!
//! An output task's records are cut into pieces of whole frames of the
//! part (so no frame is decoded twice), each about [`PIECE_RECORDS`] records
//! or [`PIECE_TEXT_BYTES`] of text, whichever comes first: a piece's buffer
//! then stays a few MB however large the files are.
//! Pieces run in parallel, each decompressing its own frames and writing
//! its survivors' lines into a buffer of its own; the task then takes the
//! pieces' results in order (see [`super::output`]). So the output file
//! receives the same bytes as from one loop over the records, and everything
//! else a piece returns is either in record order (rejects, the
//! decontamination log, sampled hits) or a sum (stats, token tallies).
//!
//! PERF: step `output` wrote the single curated file from one thread, with
//! decompression on a second one and the write on a third: 1.5x at two
//! threads against one, its formatting thread the limit (`perf`: 52% of the
//! samples). Pieces spread that formatting over the pool, with the
//! decompression beside it on the same core.

use super::super::decontam_hits::DecontamHit;
use super::super::part::{FrameEntry, PartLine, PartLines};
use super::super::process_shard::RejectLine;
use super::super::record_meta::RecordMeta;
use super::clusters::Removal;
use super::view::{LoserRecord, Losers, PartInfo};
use crate::record::OutputRecord;
use crate::stats::Stats;
use crate::tokens::count::TokenTally;
use crate::tokens::stage::{StageTallies, StagesTokens};
use anyhow::{Context, Result};

/// Records per piece, about: 1.6 MB of text for 800-byte files, so that a
/// task of a million such files runs about 500 pieces.
pub const PIECE_RECORDS: u32 = 2048;

/// Text per piece, about. The Stack v2 Python averages 4 KB a file and has
/// files of megabytes: by records alone a piece's buffer would be 8 MB on
/// average and hundreds of MB at worst, and a task holds two windows of up
/// to 64 pieces (see [`super::output`]). A piece ends with the frame that
/// reaches this, so one file larger than it is a piece of its own.
pub const PIECE_TEXT_BYTES: u64 = 2 << 20;

/// A line buffer larger than this after its piece is not kept for the next
/// one: it held a file far above [`PIECE_TEXT_BYTES`].
const KEPT_BUFFER_BYTES: usize = 4 * PIECE_TEXT_BYTES as usize;

/// Records `from..to` (positions in part `part`) and the survivor index of
/// the first survivor among them (for `--max-samples`).
#[derive(Clone, Copy, Debug)]
pub struct Piece {
    pub from: u32,
    pub to: u32,
    pub first_index: u64,
}

/// Cuts positions `from..to` of a part into pieces on the bounds of its
/// `frames`; `meta` gives each record's text length, `drops` are the part's
/// positions that do not reach the output (sorted), `index` the survivor
/// index at `from`.
pub fn pieces(
    frames: &[FrameEntry],
    meta: &[RecordMeta],
    from: u32,
    to: u32,
    drops: &[u32],
    mut index: u64,
) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut at = from;
    let mut f = frames.partition_point(|fr| fr.first_seq + fr.count <= from);
    while at < to {
        let (mut end, mut text) = (at, 0u64);
        while end < to && end - at < PIECE_RECORDS && text < PIECE_TEXT_BYTES {
            // The end of the frame holding `end`; past the index (which
            // reading the piece then reports), one record at a time.
            let frame_end = frames
                .get(f)
                .filter(|fr| fr.first_seq <= end)
                .map_or(end + 1, |fr| fr.first_seq + fr.count)
                .clamp(end + 1, to);
            text += meta
                .get(end as usize..frame_end as usize)
                .map_or(0, |m| m.iter().map(|r| r.text_bytes as u64).sum());
            end = frame_end;
            f += 1;
        }
        out.push(Piece {
            from: at,
            to: end,
            first_index: index,
        });
        let dropped = drops.partition_point(|&d| d < end) - drops.partition_point(|&d| d < at);
        index += (end - at) as u64 - dropped as u64;
        at = end;
    }
    out
}

/// Line buffers of finished pieces, for the next pieces to fill: a fresh
/// buffer per piece was about 3 MB of fresh pages to fault in each time
/// (system time 0.5 s -> 1.1 s of step `output` on 1M files, one thread).
#[derive(Default)]
pub struct Buffers(std::sync::Mutex<Vec<Vec<u8>>>);

impl Buffers {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut b| b.pop())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Takes back a piece's buffer, emptied; one grown far past a piece's
    /// usual size is freed instead.
    pub fn give(&self, mut buf: Vec<u8>) {
        if buf.capacity() > KEPT_BUFFER_BYTES {
            return;
        }
        buf.clear();
        if let Ok(mut b) = self.0.lock() {
            b.push(buf);
        }
    }
}

/// What every piece of one part reads, shared.
pub struct PartInputs<'a> {
    pub part: &'a PartInfo,
    /// The part's frame index.
    pub frames: &'a [FrameEntry],
    pub losers: &'a Losers,
    /// Near-dedup removals of the whole run, by `rid` (empty without near
    /// dedup).
    pub removals: &'a [Removal],
    pub near: bool,
    /// Decontamination: `Some(flag_only)`.
    pub decontam: Option<bool>,
    pub hits: &'a [DecontamHit],
    pub meta: &'a [RecordMeta],
    pub language: &'a str,
    pub max_samples: Option<u64>,
    pub record_rejects: bool,
    /// Parquet output: survivors as rows with their texts, not JSON lines.
    pub parquet: bool,
    pub tokens: Option<&'a crate::tokens::count::TokenCounter>,
    pub token_stages: &'a [&'static str],
    /// Phase 1 counted tokens with this run's settings: its counts are used.
    pub reuse_tokens: bool,
    pub buffers: &'a Buffers,
}

/// A contaminated record that reached the decontamination stage, for the
/// task's sampled hits.
pub struct SampledHit {
    pub repo: String,
    pub path: String,
    pub text: String,
    pub hit: serde_json::Value,
    pub flagged: bool,
}

/// What one piece did, for the task to take in order.
#[derive(Default)]
pub struct PieceOutput {
    /// The survivors' JSON lines (JSONL output), in a buffer to give back
    /// to [`Buffers`].
    pub lines: Vec<u8>,
    /// The survivors' rows (Parquet output).
    pub rows: Vec<OutputRecord>,
    pub output_files: u64,
    pub output_bytes: u64,
    pub stats: Stats,
    pub tallies: Option<StageTallies>,
    /// Rejects-file lines of this piece's dropped records.
    pub rejects: Vec<u8>,
    /// Decontamination-log entries, in record order.
    pub log: Vec<serde_json::Value>,
    pub hits: Vec<SampledHit>,
}

/// Reads, decides and formats the records of `piece`.
pub fn run(inputs: &PartInputs<'_>, piece: Piece) -> Result<PieceOutput> {
    let p = inputs.part;
    let w = p.work();
    let part_path = w.part_path(p.ordinal());
    let bad = |seq: u32| format!("part {} has a bad record {seq}", part_path.display());
    let mut out = PieceOutput {
        lines: inputs.buffers.take(),
        ..Default::default()
    };
    let mut tokens = inputs
        .tokens
        .map(|c| StagesTokens::new(c, inputs.token_stages.to_vec()));
    let known = |seq: u32| -> Option<TokenTally> {
        inputs
            .reuse_tokens
            .then(|| Some(inputs.meta.get(seq as usize)?.token_tally()))?
    };
    let mut records = PartLines::open(&part_path, inputs.frames, piece.from)?;
    let mut next_hit = inputs.hits.partition_point(|h| h.seq < piece.from);
    let mut index = piece.first_index;
    let mut head = Vec::new();
    let input = p.done.input.as_str();
    let stats = &mut out.stats;
    while let Some(line) = records.next_line() {
        let (seq, line) = line?;
        if seq >= piece.to {
            break;
        }
        let rec = PartLine::parse(line, &mut head).with_context(|| bad(seq))?;
        let rid = (p.first_rid + seq as u64) as u32;
        crate::pipeline::progress::count_within_step(1);
        let bytes = inputs
            .meta
            .get(seq as usize)
            .with_context(|| {
                format!(
                    "the record facts of part {} end before record {seq}",
                    part_path.display()
                )
            })?
            .text_bytes as u64;
        while next_hit < inputs.hits.len() && inputs.hits[next_hit].seq < seq {
            next_hit += 1;
        }
        let hit = inputs.hits.get(next_hit).filter(|h| h.seq == seq);
        // The decoded text, only where something needs it.
        let text =
            match (tokens.is_some() && known(seq).is_none()) || hit.is_some() || inputs.parquet {
                true => rec.text().with_context(|| bad(seq))?,
                false => String::new(),
            };
        let drop = verdict(inputs, rid, hit);
        // A hit is sampled and logged where the record reaches the
        // decontamination stage.
        let reached = matches!(
            &drop,
            None | Some(Dropped {
                stage: DECONTAM,
                ..
            })
        );
        if let Some(h) = hit.filter(|_| inputs.decontam.is_some() && reached) {
            let flagged = drop.is_none();
            out.hits.push(SampledHit {
                repo: rec.head.repo.to_string(),
                path: rec.head.path.to_string(),
                text: text.clone(),
                hit: h.hit.clone(),
                flagged,
            });
            out.log.push(match flagged {
                true => serde_json::json!({ "repo": &*rec.head.repo, "path": &*rec.head.path, "flagged": true, "hit": &h.hit }),
                false => serde_json::json!({ "repo": &*rec.head.repo, "path": &*rec.head.path, "hit": &h.hit }),
            });
            if flagged {
                stats.note("decontam_flagged", 1);
            }
        }
        // Every stage before the one that drops the record passes it.
        let stages = [
            Some(EXACT_DEDUP),
            inputs.near.then_some(NEAR_DEDUP),
            inputs.decontam.map(|_| DECONTAM),
        ];
        for stage in stages.into_iter().flatten() {
            if drop.as_ref().is_some_and(|d| d.stage == stage) {
                break;
            }
            stats.pass(stage, bytes);
        }
        if let Some(d) = drop {
            stats.drop(d.stage, d.reason, bytes);
            if let Some(t) = tokens.as_mut() {
                count(t, known(seq), &text, Some((d.stage, d.reason)))?;
            }
            if inputs.record_rejects {
                serde_json::to_writer(
                    &mut out.rejects,
                    &RejectLine {
                        input,
                        row: rec.head.id.row,
                        repo: &rec.head.repo,
                        path: &rec.head.path,
                        stage: d.stage,
                        reason: d.reason,
                        detail: &d.detail(inputs),
                    },
                )?;
                out.rejects.push(b'\n');
            }
            continue;
        }
        if let Some(t) = tokens.as_mut() {
            count(t, known(seq), &text, None)?;
        }
        // A survivor: written, or cut by --max-samples.
        if inputs.max_samples.is_some_and(|n| index >= n) {
            stats.note("max_samples_cut", 1);
        } else {
            out.output_files += 1;
            out.output_bytes += bytes;
            if inputs.parquet {
                let mut row = rec.to_output_without_text(inputs.language);
                row.text = text;
                out.rows.push(row);
            } else {
                rec.write_output_json(&mut out.lines, inputs.language)?;
            }
        }
        index += 1;
    }
    if let Some(t) = tokens {
        out.tallies = Some(t.into_tallies()?);
    }
    Ok(out)
}

const EXACT_DEDUP: &str = "exact_dedup";
const NEAR_DEDUP: &str = "near_dedup";
const DECONTAM: &str = "decontam";

/// The stage that drops a record on its way to the output, and why.
struct Dropped<'a> {
    stage: &'static str,
    reason: &'a str,
    cause: Cause<'a>,
}

/// What a dropped record's rejects line names as the evidence.
enum Cause<'a> {
    /// The exact-dedup loser's entry, which names the kept copy.
    SameMd5(&'a LoserRecord),
    Near(Removal),
    Benchmark(&'a str),
}

impl Dropped<'_> {
    fn detail(&self, inputs: &PartInputs<'_>) -> String {
        match &self.cause {
            Cause::SameMd5(l) => {
                let kept = l.kept();
                format!("same MD5 as shard {} row {}", kept.shard, kept.row)
            }
            Cause::Near(r) => format!(
                "near-duplicate (similarity {:.3}) of the kept file #{} of the exact-dedup survivors",
                r.similarity,
                r.kept_rid - inputs.losers.before(r.kept_rid)
            ),
            Cause::Benchmark(detail) => detail.to_string(),
        }
    }
}

/// The first stage, in pipeline order, that drops record `rid` (with its
/// decontamination `hit`, if any), or `None` for a survivor; a hit under
/// `--decontam-flag-only` flags and does not drop.
fn verdict<'a>(
    inputs: &'a PartInputs<'_>,
    rid: u32,
    hit: Option<&'a DecontamHit>,
) -> Option<Dropped<'a>> {
    if let Some(l) = inputs.losers.get(rid) {
        return Some(Dropped {
            stage: EXACT_DEDUP,
            reason: "exact_duplicate",
            cause: Cause::SameMd5(l),
        });
    }
    if inputs.near {
        if let Ok(i) = inputs.removals.binary_search_by_key(&rid, |r| r.rid) {
            return Some(Dropped {
                stage: NEAR_DEDUP,
                reason: "minhash_near_duplicate",
                cause: Cause::Near(inputs.removals[i]),
            });
        }
    }
    match (inputs.decontam, hit) {
        (Some(false), Some(h)) => Some(Dropped {
            stage: DECONTAM,
            reason: &h.reason,
            cause: Cause::Benchmark(&h.detail),
        }),
        _ => None,
    }
}

/// Hands one record to the token counter, dropped at `fate`'s stage for its
/// reason or kept: with phase 1's tally when there is one, else its text.
fn count(
    t: &mut StagesTokens<'_>,
    known: Option<TokenTally>,
    text: &str,
    fate: Option<(&str, &str)>,
) -> Result<()> {
    match (known, fate) {
        (Some(k), Some((stage, reason))) => t.dropped_tally(&k, stage, reason),
        (Some(k), None) => {
            t.kept_tally(&k);
            Ok(())
        }
        (None, Some((stage, reason))) => t.dropped(text.to_string(), stage, reason),
        (None, None) => t.kept(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames of `sizes` records, from position 0 on.
    fn frames(sizes: &[u32]) -> Vec<FrameEntry> {
        let mut at = 0;
        sizes
            .iter()
            .map(|&count| {
                at += count;
                FrameEntry {
                    offset: at as u64,
                    first_seq: at - count,
                    count,
                }
            })
            .collect()
    }

    fn texts(bytes: &[u32]) -> Vec<RecordMeta> {
        bytes
            .iter()
            .map(|&text_bytes| RecordMeta {
                text_bytes,
                ..bytemuck::Zeroable::zeroed()
            })
            .collect()
    }

    #[test]
    fn pieces_cover_the_range_on_frame_bounds_with_survivor_indices() {
        // A first batch of 7 records, then frames of 16: no frame bound is
        // a multiple of 16.
        let mut sizes = vec![7];
        sizes.extend([16; 400]);
        let drops = [3u32, 2047, 2048, 5000, 9000];
        let meta = texts(&[800; 6407]);
        let got = pieces(&frames(&sizes), &meta, 5, 6200, &drops, 100);
        let bounds: Vec<(u32, u32)> = got.iter().map(|p| (p.from, p.to)).collect();
        assert_eq!(
            bounds,
            [(5, 2055), (2055, 4103), (4103, 6151), (6151, 6200)]
        );
        // Survivors before each piece: 2050 records, two dropped (2047,
        // 2048); then 2048, none dropped; then 2048, one dropped (5000).
        let first: Vec<u64> = got.iter().map(|p| p.first_index).collect();
        assert_eq!(first, [100, 2148, 4196, 6243]);
        assert!(pieces(&frames(&sizes), &meta, 7, 7, &drops, 0).is_empty());
        assert_eq!(
            pieces(&frames(&sizes), &meta, 0, 1, &[], 9)[0].first_index,
            9
        );
    }

    #[test]
    fn pieces_end_with_the_frame_that_reaches_the_text_bound() {
        let mut bytes = vec![100 << 10; 64];
        bytes.push(10 << 20);
        bytes.extend([800; 135]);
        let got = pieces(&frames(&[16; 13]), &texts(&bytes), 0, 200, &[], 0);
        let bounds: Vec<(u32, u32)> = got.iter().map(|p| (p.from, p.to)).collect();
        // 100 KB files: 2 MiB after 21, so the piece ends with the second
        // frame; the 10 MB file's frame is a piece of its own.
        assert_eq!(bounds, [(0, 32), (32, 64), (64, 80), (80, 200)]);
    }

    #[test]
    fn pieces_past_the_frame_index_still_cover_the_range() {
        // Reading reports the missing frames; cutting must not loop or skip.
        let got = pieces(&[], &[], 0, 3000, &[], 0);
        let bounds: Vec<(u32, u32)> = got.iter().map(|p| (p.from, p.to)).collect();
        assert_eq!(bounds, [(0, 2048), (2048, 3000)]);
    }

    #[test]
    fn a_buffer_grown_past_the_bound_is_not_kept() {
        let buffers = Buffers::default();
        buffers.give(Vec::with_capacity(1 << 20));
        buffers.give(Vec::with_capacity(KEPT_BUFFER_BYTES + 1));
        assert_eq!(buffers.0.lock().unwrap().len(), 1);
        assert!(buffers.take().capacity() >= 1 << 20);
        assert_eq!(buffers.take().capacity(), 0);
    }
}
