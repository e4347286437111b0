//! Step `output`: the curated files, phase-2 rejects and stats.
//!
//! Every kept record of phase 1 ends here with one verdict, in output order
//! (shard ordinal, row): an exact-dedup loser, a near duplicate, a
//! contaminated file, a survivor cut by `--max-samples`, or a line of the
//! output. The verdicts were decided by the earlier steps and phase 1; this
//! step applies them. With `--output-shards N` the survivors are split into N
//! consecutive ranges of (almost) equal counts, one task and one file
//! `{language}_curated-0000I-of-0000N.jsonl` each; without it one task
//! writes `{language}_curated.jsonl`. Concatenating the shards gives the
//! single file's bytes. With `--format parquet` the files end in `.parquet`
//! (see [`crate::output::curated_writer`]).
//!
//! A task owns the record numbers from its first survivor to the next task's
//! first survivor (the last task: to the end), so every dropped record is
//! counted and rejected by exactly one task. It writes its output file
//! atomically, its phase-2 rejects per shard
//! (`output/task-NNNNN.rejects-OOOOOO.jsonl`), the decontamination log of its
//! records (`output/task-NNNNN.decontam.jsonl`) and its stats (in its
//! marker).

use super::super::decontam_hits::{read_hits, DecontamHit};
use super::clusters::{read_stars, removals, Removal};
use super::components::read_components;
use super::output_piece::{self, PartInputs, PieceOutput};
use super::{GlobalContext, OUTPUT};
use crate::output::curated_writer::{CuratedWriter, OutputPiece};
use crate::stats::Stats;
use crate::tokens::stage::StageTallies;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputSummary {
    pub stats: Stats,
    pub output_files: u64,
    pub output_bytes: u64,
    /// Under `--tokens estimate`: the token sums of this task's stages, to
    /// be merged with the other tasks' and estimated once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_tallies: Option<crate::tokens::stage::StageTallies>,
}

/// The output file of task `task` of `tasks` (`shards`: `--output-shards`).
pub fn output_path(ctx: &GlobalContext, task: u32) -> PathBuf {
    let dir = ctx.cfg.resolve(&ctx.cfg.output_dir);
    let lang = &ctx.cfg.language;
    let ext = ctx.cfg.format.extension();
    match ctx.cfg.output_shards {
        None => dir.join(format!("{lang}_curated.{ext}")),
        Some(n) => dir.join(format!("{lang}_curated-{task:05}-of-{n:05}.{ext}")),
    }
}

/// What every record's verdict needs.
struct Verdicts {
    removals: Vec<Removal>,
    /// Per part, its decontamination hits (empty without decontamination).
    hits: Vec<Vec<DecontamHit>>,
    /// Per part, the positions of records that do not reach the output.
    drops: Vec<Vec<u32>>,
}

impl Verdicts {
    fn load(ctx: &GlobalContext) -> Result<Verdicts> {
        let view = &ctx.view;
        let losers = view.losers(ctx)?;
        let removals = if ctx.cfg.near.is_some() {
            ctx.done_markers(super::CLUSTERS)?;
            let comps = read_components(ctx)?;
            removals(&read_stars(ctx, &comps)?)
        } else {
            Vec::new()
        };
        let hits: Vec<Vec<DecontamHit>> = if ctx.cfg.decontam.is_some() {
            view.parts
                .iter()
                .map(|p| read_hits(&p.work().decontam_path(p.ordinal())))
                .collect::<Result<_>>()?
        } else {
            vec![Vec::new(); view.parts.len()]
        };
        let drop_hits = ctx.cfg.decontam.as_ref().is_some_and(|d| !d.flag_only);
        let mut drops: Vec<Vec<u32>> = vec![Vec::new(); view.parts.len()];
        for l in &losers.list {
            let (i, seq) = view.locate(l.rid);
            drops[i].push(seq);
        }
        for r in &removals {
            let (i, seq) = view.locate(r.rid);
            drops[i].push(seq);
        }
        if drop_hits {
            for (i, hs) in hits.iter().enumerate() {
                drops[i].extend(hs.iter().map(|h| h.seq));
            }
        }
        for d in &mut drops {
            d.sort_unstable();
            d.dedup();
        }
        Ok(Verdicts {
            removals,
            hits,
            drops,
        })
    }

    fn survivors(&self, ctx: &GlobalContext, part: usize) -> u64 {
        ctx.view.parts[part].done.kept - self.drops[part].len() as u64
    }

    /// The record number of survivor `k` (0-based, output order).
    fn survivor_rid(&self, ctx: &GlobalContext, mut k: u64) -> u64 {
        for (i, p) in ctx.view.parts.iter().enumerate() {
            let s = self.survivors(ctx, i);
            if k < s {
                let mut seq = k;
                for &d in &self.drops[i] {
                    if d as u64 <= seq {
                        seq += 1;
                    } else {
                        break;
                    }
                }
                return p.first_rid + seq;
            }
            k -= s;
        }
        ctx.view.total
    }
}

/// The first record number and first survivor index of each task, and one
/// past the end.
fn task_ranges(ctx: &GlobalContext, v: &Verdicts, tasks: u32) -> Vec<(u64, u64)> {
    let survivors: u64 = (0..ctx.view.parts.len()).map(|i| v.survivors(ctx, i)).sum();
    let written = survivors.min(ctx.cfg.max_samples.unwrap_or(u64::MAX));
    let mut out = vec![(0u64, 0u64)];
    for t in 1..tasks {
        let k = (written as u128 * t as u128 / tasks as u128) as u64;
        out.push((v.survivor_rid(ctx, k), k));
    }
    out.push((ctx.view.total, survivors));
    out
}

pub fn run(ctx: &GlobalContext, task: u32, tasks: u32) -> Result<serde_json::Value> {
    let view = &ctx.view;
    let losers = view.losers(ctx)?;
    let v = Verdicts::load(ctx)?;
    let ranges = task_ranges(ctx, &v, tasks);
    let (lo, mut index) = ranges[task as usize];
    let hi = ranges[task as usize + 1].0;

    let output = match ctx.cfg.dry_run {
        false => Some(CuratedWriter::create(
            &output_path(ctx, task),
            ctx.cfg.format,
        )?),
        true => None,
    };
    let decontam = ctx.cfg.decontam.as_ref();
    // Tokens of the stages this step decides, counted in parallel batches.
    let token_counter = ctx
        .cfg
        .tokens
        .as_ref()
        .map(|t| t.counter())
        .transpose()?
        .flatten();
    let mut token_stages = vec!["exact_dedup"];
    if ctx.cfg.near.is_some() {
        token_stages.push("near_dedup");
    }
    if decontam.is_some() {
        token_stages.push("decontam");
    }
    let mut acc = TaskOutput {
        summary: OutputSummary::default(),
        tallies: token_counter
            .as_ref()
            .map(|_| StageTallies::new(token_stages.clone())),
        rejects: Vec::new(),
        log_bytes: Vec::new(),
        samples: HitSamples::new(ctx),
        output,
    };
    let reuse_counts = phase1_counted_alike(ctx);
    // Pieces per window: eight per thread, so that waiting for the slowest
    // piece of a window idles a thread for an eighth of its share at most;
    // at most 64. Two windows are held at once (one running, one being
    // taken): at most 128 buffers of a piece's text each (about 2 MB, see
    // `output_piece::PIECE_TEXT_BYTES`), 32 at two threads.
    let window = (8 * rayon::current_num_threads()).clamp(1, 64);
    let buffers = output_piece::Buffers::default();
    for (i, p) in view.parts.iter().enumerate() {
        let (start, end) = (p.first_rid.max(lo), (p.first_rid + p.done.kept).min(hi));
        if start >= end {
            continue;
        }
        let w = p.work();
        // Phase 1's facts of this part's records: each text's length, and
        // its token count when phase 1 counted with this run's settings (the
        // texts are not measured or tokenised again).
        let meta = crate::pipeline::record_meta::read_meta(&w.meta_path(p.ordinal()))?;
        let frames = crate::pipeline::part::read_frames(&w.frames_path(p.ordinal()))?;
        let inputs = PartInputs {
            part: p,
            frames: &frames,
            losers,
            removals: &v.removals,
            near: ctx.cfg.near.is_some(),
            decontam: decontam.map(|d| d.flag_only),
            hits: &v.hits[i],
            meta: &meta,
            language: &ctx.cfg.language,
            max_samples: ctx.cfg.max_samples,
            record_rejects: ctx.cfg.rejects.is_some() && !ctx.cfg.dry_run,
            parquet: !matches!(
                ctx.cfg.format,
                crate::output::curated_writer::CuratedFormat::Jsonl
            ),
            tokens: token_counter.as_ref(),
            token_stages: &token_stages,
            reuse_tokens: reuse_counts,
            buffers: &buffers,
        };
        let (from, to) = ((start - p.first_rid) as u32, (end - p.first_rid) as u32);
        let pieces = output_piece::pieces(&frames, &meta, from, to, &v.drops[i], index);
        // Each window's pieces are written and taken while the next window
        // runs, so the pool does not wait for the writes.
        let mut pending: Vec<Result<PieceOutput>> = Vec::new();
        for group in pieces.chunks(window) {
            let (taken, done) = rayon::join(
                || acc.take_all(std::mem::take(&mut pending), &buffers),
                || {
                    group
                        .par_iter()
                        .map(|&piece| output_piece::run(&inputs, piece))
                        .collect()
                },
            );
            taken?;
            pending = done;
        }
        acc.take_all(pending, &buffers)?;
        let dropped =
            v.drops[i].partition_point(|&d| d < to) - v.drops[i].partition_point(|&d| d < from);
        index += (to - from) as u64 - dropped as u64;
        if !acc.rejects.is_empty() {
            crate::output::atomic::write_atomic_unsynced(
                &ctx.task_file(OUTPUT, task, &format!("rejects-{:06}.jsonl", p.ordinal())),
                &std::mem::take(&mut acc.rejects),
            )?;
        }
    }
    let TaskOutput {
        mut summary,
        tallies,
        log_bytes,
        samples,
        output,
        ..
    } = acc;
    if let (Some(t), Some(c)) = (tallies, token_counter.as_ref()) {
        summary.token_tallies = t.settle(c.mode(), &mut summary.stats);
    }
    crate::output::atomic::write_atomic_unsynced(
        &ctx.task_file(OUTPUT, task, "decontam.jsonl"),
        &log_bytes,
    )?;
    if decontam.is_some() {
        crate::output::atomic::write_atomic_unsynced(
            &ctx.task_file(OUTPUT, task, "decontam-samples.json"),
            &serde_json::to_vec(&samples.into_json())?,
        )?;
    }
    if let Some(out) = output {
        out.commit()
            .with_context(|| format!("cannot write {}", output_path(ctx, task).display()))?;
    }
    Ok(serde_json::to_value(summary)?)
}

/// What an output task has taken from its pieces so far, in order.
struct TaskOutput {
    summary: OutputSummary,
    tallies: Option<StageTallies>,
    /// The current part's rejects-file lines.
    rejects: Vec<u8>,
    log_bytes: Vec<u8>,
    samples: HitSamples,
    output: Option<CuratedWriter>,
}

impl TaskOutput {
    /// Takes the next pieces' results, in order: their output is written
    /// at once (in parallel, see [`CuratedWriter::write_pieces`]), then
    /// the rest is taken piece by piece. The first failed piece fails the
    /// task.
    fn take_all(
        &mut self,
        pieces: Vec<Result<PieceOutput>>,
        buffers: &output_piece::Buffers,
    ) -> Result<()> {
        let mut taken = pieces.into_iter().collect::<Result<Vec<_>>>()?;
        if let Some(out) = self.output.as_mut() {
            out.write_pieces(
                taken
                    .iter_mut()
                    .map(|p| OutputPiece {
                        lines: &p.lines,
                        rows: std::mem::take(&mut p.rows),
                    })
                    .collect(),
            )?;
        }
        taken
            .into_iter()
            .try_for_each(|piece| self.take(piece, buffers))
    }

    /// Takes one written piece's results; its line buffer goes back to
    /// `buffers`.
    fn take(&mut self, piece: PieceOutput, buffers: &output_piece::Buffers) -> Result<()> {
        self.summary.stats.merge(&piece.stats);
        self.summary.output_files += piece.output_files;
        self.summary.output_bytes += piece.output_bytes;
        if let (Some(t), Some(o)) = (self.tallies.as_mut(), &piece.tallies) {
            t.merge(o);
        }
        self.rejects.extend_from_slice(&piece.rejects);
        for entry in &piece.log {
            serde_json::to_writer(&mut self.log_bytes, entry)?;
            self.log_bytes.push(b'\n');
        }
        for h in &piece.hits {
            self.samples
                .record(&h.repo, &h.path, &h.text, &h.hit, h.flagged);
        }
        buffers.give(piece.lines);
        Ok(())
    }
}

/// Whether phase 1 counted tokens with this run's settings (the slices'
/// stored configuration; equal in every slice of a merge), so that its
/// per-record counts can be reused.
fn phase1_counted_alike(ctx: &GlobalContext) -> bool {
    let Some(d) = ctx.cfg.work_dirs.first() else {
        return false;
    };
    let w = crate::pipeline::work_dir::WorkDir {
        root: ctx.cfg.resolve(d),
    };
    crate::pipeline::run_config::load::<crate::pipeline::run_config::ShardsConfig>(&w.config_path())
        .is_ok_and(|s| s.tokens.is_some() && s.tokens == ctx.cfg.tokens)
}

/// The contaminated files of one output task that reach the decontamination
/// stage: totals per benchmark and tier, and sampled hits with their texts
/// for the run's page (see [`crate::decontam::samples`]). The benchmark
/// texts are loaded again from the run's stored decontamination settings the
/// first time a task sees a hit; if they cannot be, the task records totals
/// and no samples.
struct HitSamples {
    config: Option<crate::decontam::DecontamConfig>,
    items: Option<Option<crate::decontam::samples::ItemTexts>>,
    sampler: crate::decontam::samples::HitSampler,
    totals: crate::decontam::report::Totals,
}

impl HitSamples {
    fn new(ctx: &GlobalContext) -> HitSamples {
        let config = ctx.cfg.work_dirs.first().and_then(|d| {
            let w = crate::pipeline::work_dir::WorkDir {
                root: ctx.cfg.resolve(d),
            };
            crate::pipeline::run_config::load::<crate::pipeline::run_config::ShardsConfig>(
                &w.config_path(),
            )
            .ok()
            .and_then(|s| s.decontam)
        });
        HitSamples {
            config,
            items: None,
            sampler: Default::default(),
            totals: Default::default(),
        }
    }

    fn record(
        &mut self,
        repo: &str,
        path: &str,
        text: &str,
        hit: &serde_json::Value,
        flagged: bool,
    ) {
        let Ok(c) = serde_json::from_value::<crate::decontam::Contamination>(hit.clone()) else {
            return;
        };
        self.totals.add(&c, text.len() as u64);
        let Some(cfg) = &self.config else {
            return;
        };
        let items = self.items.get_or_insert_with(|| {
            match crate::decontam::samples::ItemTexts::load(cfg) {
                Ok(t) => Some(t),
                Err(e) => {
                    eprintln!("tritter-gpu: warning: the report page gets no sampled decontamination hits: cannot load the benchmarks again ({e:#})");
                    None
                }
            }
        });
        if let Some(items) = items {
            let action = if flagged { "flagged" } else { "dropped" };
            self.sampler
                .offer_with(items, cfg.ngram, text, repo, path, &c, action);
        }
    }

    fn into_json(self) -> serde_json::Value {
        serde_json::json!({ "totals": self.totals, "candidates": self.sampler.candidates() })
    }
}

/// Totals per benchmark and sampled hits of every output task, merged (for
/// the stats file).
pub fn decontam_samples(
    ctx: &GlobalContext,
) -> Result<(
    crate::decontam::report::Totals,
    Vec<crate::decontam::samples::HitSample>,
)> {
    let mut totals = crate::decontam::report::Totals::default();
    let mut sampler = crate::decontam::samples::HitSampler::new();
    for t in 0..ctx.tasks_of(OUTPUT) {
        let path = ctx.task_file(OUTPUT, t, "decontam-samples.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        #[derive(Deserialize)]
        struct TaskSamples {
            totals: crate::decontam::report::Totals,
            candidates: Vec<(u64, crate::decontam::samples::HitSample)>,
        }
        let s: TaskSamples = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is corrupt", path.display()))?;
        totals.merge(&s.totals);
        sampler.add_candidates(s.candidates);
    }
    Ok((totals, sampler.finish()))
}
