//! Phase 1: one input shard through the per-record stages.
//!
//! read -> metadata filters -> content fetch (sources without inline content)
//! -> content filters -> MD5, then the survivors go to the shard's part file,
//! and everything that needs one file at a time is computed for them here,
//! once: exact-dedup keys, record facts ([`super::record_meta`]), near dedup's
//! signatures and band hashes ([`crate::dedup::near::shard_keys`], batched to
//! the backend) and decontamination verdicts ([`super::decontam_hits`]). The
//! shard is committed in the work dir when all of them are written.
//!
//! Stages that work on the kept records of a batch belong in
//! `KeptBatch::process`, where every kept text of the batch is at hand in
//! part order.
//!
//! Tokens (`--tokens`): each record's text is tokenised in the same parallel
//! map that runs its content filters, where the text is at hand, so the
//! count costs CPU spread over all cores and no second pass; the sequential
//! loop only adds the tallies, in row order, to the stages the record reached
//! (a sum of integers: the same for any thread count, and per shard, so the
//! same for any split of the shards into slices). A source without inline
//! content (The Stack v2) has no text before the content stage, so its
//! tokens are counted from the content filters on (`basic`, `quality`).
//!
//! A reader thread ([`super::read_ahead`], one per lane of shards, see
//! [`super::shard_lanes`]) decodes the next batches and has their blobs
//! requested while rayon runs the fetch and the content filters of the
//! current one over the pool; results are collected in row order, so the
//! part is the same whatever the thread count and whatever order the blobs
//! arrive in.
//!
//! Two stages per shard on a pool of more than one thread: the filter stage
//! (this thread: read, filters, the tally of verdicts) and the keys stage (a
//! thread of its own: append to the part, keys, signatures, decontamination)
//! overlap on consecutive batches, each feeding its parallel maps to the same
//! pool. Measured at 1M files on 2 cores, phase 1 went from 29.9 s to 19.9 s
//! (same output), because each stage's sequential stretches (writes,
//! tallies, the buffers between maps) no longer leave the pool idle. Several
//! shards, each on a pool of its own, do better still ([`super::shard_lanes`]).

use super::decontam_hits::{write_hits, DecontamHit};
use super::part::{PartRecord, PartWriter};
use super::progress::Progress;
use super::read_ahead::{ReadAhead, ReadAheadSpec, ShardBatches};
use super::record_meta::{write_meta, RecordMeta, LICENSE_ALLOWED, SHORT};
use super::work_dir::{ShardDone, WorkDir};
use crate::backends::Backend;
use crate::content::{self, ContentStore};
use crate::decontam::Decontaminator;
use crate::dedup::exact::{self, KeyEntry};
use crate::dedup::near::shard_keys::{KeySettings, ShardKeyWriter};
use crate::filters::Filters;
use crate::output::atomic::AtomicFile;
use crate::record::Record;
use crate::sources::{InputFile, ReadOptions, SchemaKind};
use crate::stats::Stats;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;

/// What phase 1 needs besides the shard.
#[derive(Clone)]
pub struct ShardContext<'a> {
    pub filters: &'a Filters,
    pub content_store: Option<Arc<dyn ContentStore>>,
    pub read: ReadOptions,
    pub work: &'a WorkDir,
    pub record_rejects: bool,
    pub progress: &'a Progress,
    /// Near dedup's key settings and the backend that computes them.
    pub near: Option<(&'a KeySettings, &'a dyn Backend)>,
    pub decontam: Option<&'a Decontaminator>,
    /// Which shards get their texts redacted (before MD5, keys and
    /// decontamination, so every later stage sees the redacted text).
    pub redact: &'a crate::redact::RedactScope,
    /// Token counting of the per-record stages; `None` with `--tokens off`.
    pub tokens: Option<&'a crate::tokens::TokenCounter>,
    /// The run's reader of the shards to come, across shard boundaries
    /// (`None`: each shard reads ahead within itself only).
    pub read_ahead: Option<&'a ReadAhead>,
}

/// The per-file work on the records a batch kept: the part they are
/// appended to, and its sidecars.
struct KeptBatch<'a> {
    part: PartWriter,
    near: Option<ShardKeyWriter<'a>>,
    decontam: Option<&'a Decontaminator>,
    ngram: usize,
    keys: Vec<KeyEntry>,
    meta: Vec<RecordMeta>,
    hits: Vec<DecontamHit>,
}

impl KeptBatch<'_> {
    /// Appends a batch's kept records to the part, then computes their keys.
    fn append(&mut self, batch: KeptRecords) -> Result<()> {
        let records: Vec<&PartRecord> = batch.kept.iter().map(|(r, _)| r).collect();
        let first_seq = self.part.push_batch(&records)?;
        self.process(&batch.kept, &batch.tokens, first_seq)
            .context("near-dedup keys and decontamination")
    }

    /// Keys, facts, signatures, bands and verdicts of records `first_seq..`
    /// of the part, in order.
    fn process(
        &mut self,
        kept: &[(PartRecord, [u8; 16])],
        tokens: &[u32],
        first_seq: u32,
    ) -> Result<()> {
        let texts: Vec<&str> = kept.iter().map(|(r, _)| r.text.as_str()).collect();
        let counts = match self.near.as_mut() {
            Some(w) => w.push_batch(&texts)?,
            None => Vec::new(),
        };
        if let Some(d) = self.decontam {
            for (i, verdict) in d.check_batch(&texts)?.into_iter().enumerate() {
                if let Some(c) = verdict {
                    self.hits.push(DecontamHit::new(first_seq + i as u32, &c)?);
                }
            }
        }
        for (i, (rec, md5)) in kept.iter().enumerate() {
            let pref = rec.preference();
            self.keys
                .push(KeyEntry::new(*md5, &pref, first_seq + i as u32));
            let count = counts.get(i).copied().unwrap_or_default();
            let mut flags = 0;
            if pref.license_allowed {
                flags |= LICENSE_ALLOWED;
            }
            if count.is_short(self.ngram) {
                flags |= SHORT;
            }
            self.meta.push(RecordMeta {
                stars: pref.stars,
                tiebreak: pref.tiebreak,
                row: pref.id.row,
                text_bytes: u32::try_from(rec.text.len()).with_context(|| {
                    format!(
                        "row {} of shard {} has a text over 4 GiB",
                        pref.id.row, pref.id.shard
                    )
                })?,
                shingles: count.shingles,
                flags,
                tokens: tokens
                    .get(i)
                    .copied()
                    .unwrap_or(super::record_meta::NOT_COUNTED),
            });
        }
        Ok(())
    }
}

/// Kept batches queued for the keys stage beyond the one it works on: the
/// two stages' batch times vary, and a queue of one left them waiting on
/// each other.
const KEYS_QUEUE: usize = 3;

/// The kept records of one batch, in part order, with their token counts,
/// on their way from the filter stage to the keys stage.
struct KeptRecords {
    kept: Vec<(PartRecord, [u8; 16])>,
    tokens: Vec<u32>,
}

/// The input shard as the filter stage reads it.
struct ShardSource<'a, 'b> {
    batches: &'a mut ShardBatches<'b>,
    display: &'a str,
    schema: SchemaKind,
    /// Whether rows get a content stage (metadata-only schemas).
    needs_content: bool,
}

/// What the filter stage tallies over a shard: every verdict's stats, the
/// token tallies, the rejects file.
struct FilterTally {
    stats: Stats,
    tokens: Option<ShardTokens>,
    rejects: Option<AtomicFile>,
}

/// The filter stage of [`process_opened`]: reads the shard's batches, runs
/// the per-record stages, tallies every verdict and hands each batch's kept
/// records to `sink` (the keys stage). Returns the row it stopped at when
/// `--max-samples` ran out.
fn filter_batches(
    source: &mut ShardSource<'_, '_>,
    ctx: &ShardContext<'_>,
    redact: Option<&std::sync::Mutex<crate::redact::Counts>>,
    remaining: &mut Option<u64>,
    tally: &mut FilterTally,
    sink: &mut dyn FnMut(KeptRecords) -> Result<()>,
) -> Result<Option<u64>> {
    let (display, schema, needs_content) = (source.display, source.schema, source.needs_content);
    loop {
        let Some(rows) = source
            .batches
            .next_batch()
            .with_context(|| format!("reading {display}"))?
        else {
            return Ok(None);
        };
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            match row {
                Ok(r) => {
                    tally.stats.pass("read", r.byte_len());
                    if r.stars.is_none() {
                        tally.stats.note("stars_unknown", 1);
                    }
                    records.push(r);
                }
                Err(rej) => {
                    tally.stats.drop("read", rej.reason, 0);
                    write_reject(
                        &mut tally.rejects,
                        &RejectLine {
                            input: display,
                            row: rej.row,
                            repo: "",
                            path: "",
                            stage: "read",
                            reason: rej.reason,
                            detail: &rej.detail,
                        },
                    )?;
                }
            }
        }
        let last_row = records.last().map(|r| r.id.row);
        let verdicts = run_records(records, ctx, needs_content, redact)
            .with_context(|| format!("{display} (schema {schema:?})"))?;
        let stages: &[&str] = if needs_content {
            &["metadata", "content", "basic", "quality"]
        } else {
            &["metadata", "basic", "quality"]
        };
        let mut batch_bytes = 0;
        let batch_files = verdicts.len() as u64;
        let mut kept: Vec<(PartRecord, [u8; 16])> = Vec::new();
        // Per kept record, its tokens where counted (kept in its facts).
        let mut kept_tokens: Vec<u32> = Vec::new();
        for (row, repo, path, v, counted) in verdicts {
            if let (Some(t), Some(counted)) = (tally.tokens.as_mut(), counted.as_ref()) {
                t.add(&v, counted)?;
            }
            match v {
                Verdict::Keep(rec, md5) => {
                    kept_tokens.push(match &counted {
                        Some(t) => super::record_meta::tokens_of(t),
                        None => super::record_meta::NOT_COUNTED,
                    });
                    batch_bytes += rec.text.len() as u64;
                    for s in stages {
                        tally.stats.pass(s, rec.text.len() as u64);
                    }
                    kept.push((rec, md5));
                    if let Some(n) = remaining.as_mut() {
                        *n = n.saturating_sub(1);
                    }
                }
                Verdict::Drop {
                    stage,
                    reason,
                    detail,
                    bytes,
                } => {
                    batch_bytes += bytes;
                    // A record dropped at `stage` went through every stage before it.
                    for s in stages.iter().take_while(|s| **s != stage) {
                        tally.stats.pass(s, bytes);
                    }
                    tally.stats.drop(stage, reason, bytes);
                    write_reject(
                        &mut tally.rejects,
                        &RejectLine {
                            input: display,
                            row,
                            repo: &repo,
                            path: &path,
                            stage,
                            reason,
                            detail: &detail,
                        },
                    )?;
                }
            }
        }
        sink(KeptRecords {
            kept,
            tokens: kept_tokens,
        })?;
        ctx.progress.records(batch_files, batch_bytes);
        if *remaining == Some(0) {
            return Ok(last_row);
        }
    }
}

/// One line of a rejects file.
#[derive(Serialize)]
pub struct RejectLine<'a> {
    pub input: &'a str,
    pub row: u64,
    pub repo: &'a str,
    pub path: &'a str,
    pub stage: &'a str,
    pub reason: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub detail: &'a str,
}

/// Outcome of the per-record stages for one record.
enum Verdict {
    Keep(PartRecord, [u8; 16]),
    Drop {
        stage: &'static str,
        reason: &'static str,
        detail: String,
        bytes: u64,
    },
}

/// Runs shard `input` through phase 1 and commits it. `remaining` is the
/// `--max-samples` budget left (records that passed every filter), decreased
/// by what this shard keeps.
pub fn process_shard(
    input: &InputFile,
    ctx: &ShardContext<'_>,
    remaining: &mut Option<u64>,
) -> Result<ShardDone> {
    // The run's read-ahead, which is already reading (and prefetching the
    // blobs of) this shard; else one for this shard alone.
    if let Some(opened) = ctx.read_ahead.and_then(|ra| ra.open(input)) {
        let (schema, batches) = opened?;
        return process_opened(input, ctx, remaining, schema, batches);
    }
    std::thread::scope(|scope| {
        let ahead = ReadAhead::start(
            scope,
            ReadAheadSpec {
                inputs: vec![(input.clone(), true)],
                read: ctx.read.clone(),
                filters: ctx.filters,
                store: ctx.content_store.clone(),
            },
        );
        let (schema, batches) = ahead.open(input).expect("the read-ahead's own shard")?;
        process_opened(input, ctx, remaining, schema, batches)
    })
}

fn process_opened(
    input: &InputFile,
    ctx: &ShardContext<'_>,
    remaining: &mut Option<u64>,
    schema: SchemaKind,
    mut batches: ShardBatches<'_>,
) -> Result<ShardDone> {
    let display = input.path.display().to_string();
    // Metadata-only schemas (The Stack v2, Stack-Edu) get a content stage;
    // rows that still lack text when they reach it need a content store.
    let needs_content = !schema.has_inline_content();

    let redact = ctx
        .redact
        .covers(input.ordinal)
        .then(|| std::sync::Mutex::new(crate::redact::Counts::new()));
    let mut batch_work = KeptBatch {
        part: PartWriter::create(&ctx.work.part_path(input.ordinal))?,
        near: match ctx.near {
            Some((settings, backend)) => Some(ShardKeyWriter::create(
                settings,
                backend,
                &ctx.work.signatures_path(input.ordinal),
            )?),
            None => None,
        },
        decontam: ctx.decontam,
        ngram: ctx.near.map(|(s, _)| s.ngram).unwrap_or(0),
        keys: Vec::new(),
        meta: Vec::new(),
        hits: Vec::new(),
    };
    let mut tally = FilterTally {
        stats: Stats::default(),
        tokens: ctx.tokens.map(|_| ShardTokens::new(needs_content)),
        rejects: if ctx.record_rejects {
            Some(AtomicFile::create(&ctx.work.rejects_path(input.ordinal))?)
        } else {
            None
        },
    };
    let mut source = ShardSource {
        batches: &mut batches,
        display: &display,
        schema,
        needs_content,
    };

    // Two stages overlap: this thread reads and filters batch k+1 (its
    // parallel maps over the pool, then the sequential tally) while a keys
    // thread appends batch k to the part and computes its keys, signatures
    // and verdicts (again parallel maps with sequential writes between).
    // Each stage's sequential stretches leave the pool to the other's
    // parallel work: with one stage, about 45% of two cores stood idle. The
    // keys thread takes the batches in order over a short queue, so the
    // part and its sidecars are the same as with one stage. With a pool of
    // one thread the stages take turns on this thread, so that `--threads 1`
    // computes on one core.
    let pipelined = rayon::current_num_threads() > 1;
    let (batch_work, stopped_at_row) = std::thread::scope(|scope| -> Result<_> {
        let mut filter = |sink: &mut dyn FnMut(KeptRecords) -> Result<()>| {
            filter_batches(
                &mut source,
                ctx,
                redact.as_ref(),
                remaining,
                &mut tally,
                sink,
            )
        };
        if !pipelined {
            let stopped = filter(&mut |kept| batch_work.append(kept))?;
            return Ok((batch_work, stopped));
        }
        let (to_keys, kept_batches) = std::sync::mpsc::sync_channel::<KeptRecords>(KEYS_QUEUE);
        let keys_stage = scope.spawn(move || -> Result<KeptBatch<'_>> {
            for kept in kept_batches {
                batch_work.append(kept)?;
            }
            Ok(batch_work)
        });
        let filtered = filter(&mut |kept| {
            to_keys
                .send(kept)
                .map_err(|_| anyhow::anyhow!("the keys stage stopped"))
        });
        drop(to_keys);
        let keyed = keys_stage
            .join()
            .map_err(|_| anyhow::anyhow!("{display}: the keys thread panicked"))?;
        // A failed keys stage stops the filter stage at its next send: its
        // error is the cause, the filter stage's only the closed channel.
        Ok((keyed?, filtered?))
    })?;
    drop(batches);
    let FilterTally {
        mut stats,
        tokens,
        rejects,
    } = tally;

    let KeptBatch {
        part,
        near,
        mut keys,
        meta,
        hits,
        ..
    } = batch_work;
    let kept = keys.len() as u64;
    let o = input.ordinal;
    part.commit(&ctx.work.frames_path(o))?;
    exact::write_keys(&ctx.work.keys_path(o), &mut keys)?;
    write_meta(&ctx.work.meta_path(o), &meta)?;
    if let Some(w) = near {
        let spill = w.commit(&ctx.work.bands_path(o))?;
        crate::dedup::near::shard_keys::note_band_spill(&mut stats, spill);
    }
    if ctx.decontam.is_some() {
        write_hits(&ctx.work.decontam_path(o), &hits)?;
    }
    if let Some(r) = rejects {
        r.commit_unsynced()?;
    }
    if let Some(counts) = redact {
        for (kind, n) in counts.into_inner().unwrap_or_default() {
            stats.note(&crate::redact::note_name(&kind), n);
        }
    }
    let token_tallies = match (tokens, ctx.tokens) {
        (Some(t), Some(counter)) => t.tallies.settle(counter.mode(), &mut stats),
        _ => None,
    };
    let done = ShardDone {
        ordinal: input.ordinal,
        input: display,
        input_bytes: input.size,
        kept,
        stopped_at_row,
        stats,
        token_tallies,
    };
    // Every file above was renamed into place unsynced: one filesystem sync
    // makes them durable before the marker commits the shard.
    crate::output::atomic::sync_filesystem(&ctx.work.root)?;
    ctx.work.commit(&done)?;
    Ok(done)
}

/// Appends `line` to the shard's rejects file, when rejects are recorded.
fn write_reject(out: &mut Option<AtomicFile>, line: &RejectLine<'_>) -> Result<()> {
    if let Some(f) = out {
        serde_json::to_writer(&mut *f, line)?;
        f.write_all(b"\n")?;
    }
    Ok(())
}

/// The token tallies of phase 1's stages for one shard.
struct ShardTokens {
    tallies: crate::tokens::stage::StageTallies,
}

impl ShardTokens {
    fn new(needs_content: bool) -> ShardTokens {
        // Without inline content a record has no text before the content
        // stage: its tokens are known from the content filters on.
        let stages = if needs_content {
            vec!["basic", "quality"]
        } else {
            vec!["read", "metadata", "basic", "quality"]
        };
        ShardTokens {
            tallies: crate::tokens::stage::StageTallies::new(stages),
        }
    }

    /// Adds a record's tally to the stages its verdict says it reached.
    fn add(&mut self, v: &Verdict, t: &crate::tokens::count::TokenTally) -> Result<()> {
        match v {
            Verdict::Keep(..) => self.tallies.kept(t),
            Verdict::Drop { stage, reason, .. } => {
                let i = self.tallies.index(stage)?;
                self.tallies.dropped_at(i, reason, t);
            }
        }
        Ok(())
    }
}

/// A record's verdict, with its repository, path and row, and its token
/// tally where tokens are counted and its text was known.
type RecordOutcome = (
    u64,
    String,
    String,
    Verdict,
    Option<crate::tokens::count::TokenTally>,
);

/// Metadata filters, content fetch, content filters and MD5 for one batch,
/// in parallel, results in row order. Every record gets exactly one verdict
/// and every stage it reaches is counted by the caller. Where tokens are
/// counted, each text is tokenised here, in the parallel map.
fn run_records(
    records: Vec<Record>,
    ctx: &ShardContext<'_>,
    needs_content: bool,
    redact: Option<&std::sync::Mutex<crate::redact::Counts>>,
) -> Result<Vec<RecordOutcome>> {
    let filters = ctx.filters;
    // Cheap metadata filters first, so that nothing is fetched for records
    // that would be dropped anyway.
    let mut staged: Vec<(Record, Option<Verdict>)> = records
        .into_iter()
        .map(|r| match filters.check_metadata(&r) {
            Ok(()) => (r, None),
            Err(d) => {
                let bytes = r.byte_len();
                (
                    r,
                    Some(Verdict::Drop {
                        stage: d.stage,
                        reason: d.reason,
                        detail: String::new(),
                        bytes,
                    }),
                )
            }
        })
        .collect();

    let wanted: Vec<usize> = staged
        .iter()
        .enumerate()
        .filter(|(_, (r, v))| v.is_none() && r.text.is_none())
        .map(|(i, _)| i)
        .collect();
    if needs_content && !wanted.is_empty() {
        let Some(store) = ctx.content_store.as_ref() else {
            anyhow::bail!("rows have no inline content: pass --content-store DIR (or s3://.., https://..) holding the gzip blobs by blob_id");
        };
        let mut ids: Vec<&str> = Vec::with_capacity(wanted.len());
        let mut missing_id = Vec::new();
        for &i in &wanted {
            match staged[i].0.blob_id.as_deref() {
                Some(id) if !id.is_empty() => ids.push(id),
                _ => missing_id.push(i),
            }
        }
        let fetched = store.fetch_batch(&ids);
        store.health()?;
        let with_id: Vec<usize> = wanted
            .iter()
            .copied()
            .filter(|i| !missing_id.contains(i))
            .collect();
        let decoded: Vec<(usize, Result<String, content::FetchError>)> = with_id
            .into_par_iter()
            .zip(fetched.into_par_iter())
            .map(|(i, bytes)| {
                (
                    i,
                    bytes.and_then(|b| content::decode(b, staged[i].0.src_encoding.as_deref())),
                )
            })
            .collect();
        for i in missing_id {
            let bytes = staged[i].0.byte_len();
            staged[i].1 = Some(Verdict::Drop {
                stage: "content",
                reason: "content_no_blob_id",
                detail: String::new(),
                bytes,
            });
        }
        for (i, res) in decoded {
            match res {
                Ok(text) => staged[i].0.text = Some(text),
                Err(e) => {
                    let bytes = staged[i].0.byte_len();
                    staged[i].1 = Some(Verdict::Drop {
                        stage: "content",
                        reason: e.reason,
                        detail: e.detail,
                        bytes,
                    });
                }
            }
        }
    }

    let tokens = ctx.tokens;
    staged
        .into_par_iter()
        .map(|(mut r, v)| {
            let mut tally = None;
            let verdict = match v {
                // Dropped before the content filters: a text is counted
                // when the source had it inline (see the module doc).
                Some(v) => {
                    if let (Some(c), false, Some(text)) = (tokens, needs_content, r.text.as_deref())
                    {
                        tally = Some(c.tally_one(text)?);
                    }
                    v
                }
                None => {
                    let mut text = r.text.take().unwrap_or_default();
                    if let Some(tally) = redact {
                        let (clean, counts) = crate::redact::redact(&r.path, &text);
                        if !counts.is_empty() {
                            text = clean;
                            crate::redact::add_counts(
                                &mut tally.lock().unwrap_or_else(|e| e.into_inner()),
                                &counts,
                            );
                        }
                    }
                    if let Some(c) = tokens {
                        tally = Some(c.tally_one(&text)?);
                    }
                    match filters.check_content(&r, &text) {
                        Ok(()) => {
                            let md5 = exact::md5_of(&text);
                            let allowed = filters.license_allowed(&r);
                            Verdict::Keep(PartRecord::from_record(&r, text, allowed), md5)
                        }
                        Err(d) => Verdict::Drop {
                            stage: d.stage,
                            reason: d.reason,
                            detail: String::new(),
                            bytes: text.len() as u64,
                        },
                    }
                }
            };
            Ok((r.id.row, r.repo, r.path, verdict, tally))
        })
        .collect()
}
