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
use super::super::part::{PartLine, PartLines};
use super::super::process_shard::RejectLine;
use super::clusters::{read_stars, removals, Removal};
use super::components::read_components;
use super::{GlobalContext, OUTPUT};
use crate::output::curated_writer::CuratedWriter;
use crate::stats::Stats;
use anyhow::{Context, Result};
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

    let mut summary = OutputSummary::default();
    let stats = &mut summary.stats;
    // With fewer tasks than threads, cores are free: parts are
    // decompressed and the output written on threads of their own while
    // this one checks and formats the records.
    let spare_cores = (tasks as usize) < rayon::current_num_threads();
    let mut output = match ctx.cfg.dry_run {
        false => Some(CuratedWriter::create(
            &output_path(ctx, task),
            ctx.cfg.format,
            spare_cores,
        )?),
        true => None,
    };
    let record_rejects = ctx.cfg.rejects.is_some() && !ctx.cfg.dry_run;
    let mut log = Vec::new();
    let decontam = ctx.cfg.decontam.as_ref();
    let mut samples = HitSamples::new(ctx);
    // Tokens of the stages this step decides, counted in parallel batches.
    let token_counter = ctx
        .cfg
        .tokens
        .as_ref()
        .map(|t| t.counter())
        .transpose()?
        .flatten();
    let mut tokens = token_counter.as_ref().map(|c| {
        let mut stages = vec!["exact_dedup"];
        if ctx.cfg.near.is_some() {
            stages.push("near_dedup");
        }
        if decontam.is_some() {
            stages.push("decontam");
        }
        crate::tokens::stage::StagesTokens::new(c, stages)
    });
    let reuse_counts = phase1_counted_alike(ctx);
    for (i, p) in view.parts.iter().enumerate() {
        let (start, end) = (p.first_rid.max(lo), (p.first_rid + p.done.kept).min(hi));
        if start >= end {
            continue;
        }
        let w = p.work();
        let mut rejects: Vec<u8> = Vec::new();
        let mut records = PartLines::open(
            &w.part_path(p.ordinal()),
            &w.frames_path(p.ordinal()),
            (start - p.first_rid) as u32,
            spare_cores,
        )?;
        // Phase 1's facts of this part's records: each text's length, and
        // its token count when phase 1 counted with this run's settings (the
        // texts are not measured or tokenised again).
        let meta = crate::pipeline::record_meta::read_meta(&w.meta_path(p.ordinal()))?;
        let reuse_tokens = tokens.is_some() && reuse_counts;
        let known = |seq: u32| -> Option<crate::tokens::count::TokenTally> {
            reuse_tokens.then(|| Some(meta.get(seq as usize)?.token_tally()))?
        };
        let hits = &v.hits[i];
        let mut next_hit = hits.partition_point(|h| (h.seq as u64) < start - p.first_rid);
        let input = p.done.input.as_str();
        let parquet = !matches!(
            ctx.cfg.format,
            crate::output::curated_writer::CuratedFormat::Jsonl
        );
        while let Some(line) = records.next_line() {
            let (seq, line) = line?;
            let rid = p.first_rid + seq as u64;
            if rid >= end {
                break;
            }
            let rec = PartLine::parse(line).with_context(|| {
                format!(
                    "part {} has a bad record {seq}",
                    w.part_path(p.ordinal()).display()
                )
            })?;
            let rid = rid as u32;
            crate::pipeline::progress::count_within_step(1);
            let bytes = meta
                .get(seq as usize)
                .with_context(|| {
                    format!(
                        "the record facts of part {} end before record {seq}",
                        w.part_path(p.ordinal()).display()
                    )
                })?
                .text_bytes as u64;
            let mut reject = |stage: &str, reason: &str, detail: &str| -> Result<()> {
                if record_rejects {
                    serde_json::to_writer(
                        &mut rejects,
                        &RejectLine {
                            input,
                            row: rec.head.id.row,
                            repo: &rec.head.repo,
                            path: &rec.head.path,
                            stage,
                            reason,
                            detail,
                        },
                    )?;
                    rejects.push(b'\n');
                }
                Ok(())
            };
            while next_hit < hits.len() && hits[next_hit].seq < seq {
                next_hit += 1;
            }
            let hit = hits.get(next_hit).filter(|h| h.seq == seq);
            // The decoded text, only where something needs it.
            let text = match (tokens.is_some() && known(seq).is_none()) || hit.is_some() || parquet
            {
                true => rec.text().with_context(|| {
                    format!(
                        "part {} has a bad record {seq}",
                        w.part_path(p.ordinal()).display()
                    )
                })?,
                false => String::new(),
            };
            if let Some(l) = losers.get(rid) {
                stats.drop("exact_dedup", "exact_duplicate", bytes);
                if let Some(t) = tokens.as_mut() {
                    count(
                        t,
                        known(seq),
                        &text,
                        Some(("exact_dedup", "exact_duplicate")),
                    )?;
                }
                let kept = l.kept();
                reject(
                    "exact_dedup",
                    "exact_duplicate",
                    &format!("same MD5 as shard {} row {}", kept.shard, kept.row),
                )?;
                continue;
            }
            stats.pass("exact_dedup", bytes);
            if ctx.cfg.near.is_some() {
                if let Ok(r) = v.removals.binary_search_by_key(&rid, |r| r.rid) {
                    let r = v.removals[r];
                    stats.drop("near_dedup", "minhash_near_duplicate", bytes);
                    if let Some(t) = tokens.as_mut() {
                        count(
                            t,
                            known(seq),
                            &text,
                            Some(("near_dedup", "minhash_near_duplicate")),
                        )?;
                    }
                    let kept = r.kept_rid - losers.before(r.kept_rid);
                    reject(
                        "near_dedup",
                        "minhash_near_duplicate",
                        &format!(
                            "near-duplicate (similarity {:.3}) of the kept file #{kept} of the exact-dedup survivors",
                            r.similarity
                        ),
                    )?;
                    continue;
                }
                stats.pass("near_dedup", bytes);
            }
            if let Some(d) = decontam {
                match hit {
                    Some(h) if !d.flag_only => {
                        samples.record(&rec, &text, &h.hit, false);
                        stats.drop("decontam", &h.reason, bytes);
                        if let Some(t) = tokens.as_mut() {
                            count(t, known(seq), &text, Some(("decontam", &h.reason)))?;
                        }
                        reject("decontam", &h.reason, &h.detail)?;
                        log.push(serde_json::json!({ "repo": &*rec.head.repo, "path": &*rec.head.path, "hit": &h.hit }));
                        continue;
                    }
                    Some(h) => {
                        samples.record(&rec, &text, &h.hit, true);
                        stats.note("decontam_flagged", 1);
                        log.push(serde_json::json!({ "repo": &*rec.head.repo, "path": &*rec.head.path, "flagged": true, "hit": &h.hit }));
                        stats.pass("decontam", bytes);
                    }
                    None => stats.pass("decontam", bytes),
                }
            }
            if let Some(t) = tokens.as_mut() {
                count(t, known(seq), &text, None)?;
            }
            // A survivor: written, or cut by --max-samples.
            if ctx.cfg.max_samples.is_some_and(|n| index >= n) {
                stats.note("max_samples_cut", 1);
            } else {
                summary.output_files += 1;
                summary.output_bytes += bytes;
                if let Some(out) = output.as_mut() {
                    out.write_part_line(&rec, text, &ctx.cfg.language)?;
                }
            }
            index += 1;
        }
        if !rejects.is_empty() {
            crate::output::atomic::write_atomic_unsynced(
                &ctx.task_file(OUTPUT, task, &format!("rejects-{:06}.jsonl", p.ordinal())),
                &rejects,
            )?;
        }
    }
    if let Some(t) = tokens {
        summary.token_tallies = t.finish(&mut summary.stats)?;
    }
    let mut log_bytes = Vec::new();
    for entry in &log {
        serde_json::to_writer(&mut log_bytes, entry)?;
        log_bytes.push(b'\n');
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

/// Hands one record to the token counter, dropped at `fate`'s stage for its
/// reason or kept: with phase 1's tally when there is one, else its text.
fn count(
    t: &mut crate::tokens::stage::StagesTokens<'_>,
    known: Option<crate::tokens::count::TokenTally>,
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

    fn record(&mut self, rec: &PartLine<'_>, text: &str, hit: &serde_json::Value, flagged: bool) {
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
            self.sampler.offer_with(
                items,
                cfg.ngram,
                text,
                &rec.head.repo,
                &rec.head.path,
                &c,
                action,
            );
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
