//! Step `output` of `dedup`: the input's lines, byte for byte and in input
//! order, minus the near-duplicates.
//!
//! One task, parallel over the phase-1 shards. Each shard's kept lines go to
//! a known place in the output: phase 1 stored every record's line span
//! (`part-N.offsets`), so a shard's share of the output is the sum of its
//! kept records' line lengths (plus a newline each), and its offset is the
//! sum of the shares before it ([`layout`]). Every shard is then copied on
//! its own thread and written by position into the one temporary output
//! file, which is committed (synced and renamed) once: the bytes of a
//! sequential pass, for any shard size or thread count, with no second copy.
//! (A compressed input is one shard, written from offset 0.)
//!
//! A shard's copy reads its byte range of the input and keeps every line
//! that is a record the `clusters` step did not remove; blank lines and the
//! bad lines phase 1 listed (`part-N.lines.json`) are left out. No line is
//! parsed again, except for its text when tokens are counted. Each record's
//! line number and length are checked against what phase 1 stored, so an
//! input that changed since phase 1 is an error, not a wrong output. The
//! stats (stage `near_dedup`) and the token sums (`read` and `near_dedup`,
//! finished once by the report) go into the task's marker as a
//! [`DedupOutputSummary`].

use super::super::dedup_shard::{open_range, read_lines};
use super::super::record_lookup::{offsets_path, LineSpan};
use super::super::record_meta::read_meta;
use super::clusters::{read_stars, removals, Removal};
use super::components::read_components;
use super::view::PartInfo;
use super::{GlobalContext, CLUSTERS};
use crate::output::atomic::AtomicFile;
use crate::output::tool_jsonl::{is_blank, raw_lines};
use crate::stats::Stats;
use crate::tokens::count::TokenCounter;
use crate::tokens::stage::{StageTallies, StagesTokens};
use anyhow::{ensure, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Stage name in the stats.
pub const STAGE: &str = "near_dedup";
/// Drop reason of a near-duplicate.
pub const DROP_REASON: &str = "minhash_near_duplicate";

/// What the output task of `dedup` found and wrote.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DedupOutputSummary {
    pub stats: Stats,
    pub output_files: u64,
    /// Text bytes of the kept records.
    pub output_bytes: u64,
    /// Token sums of stages `read` and `near_dedup` (with `--tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_tallies: Option<StageTallies>,
}

pub fn run(ctx: &GlobalContext) -> Result<serde_json::Value> {
    let cfg = &ctx.cfg;
    let d = cfg.dedup.as_ref().context("not a dedup run")?;
    let view = &ctx.view;
    ensure!(
        view.parts.len() == d.ranges.len()
            && view
                .parts
                .iter()
                .enumerate()
                .all(|(i, p)| p.ordinal() as usize == i),
        "{} of {} input shards are done; run every task of step shards first",
        view.parts.len(),
        d.ranges.len()
    );
    ctx.done_markers(CLUSTERS)?;
    let removed = {
        let comps = read_components(ctx)?;
        removals(&read_stars(ctx, &comps)?)
    };
    // Each shard's removals, a slice of the list sorted by record number.
    let per_shard: Vec<&[Removal]> = view
        .parts
        .iter()
        .map(|p| {
            let from = removed.partition_point(|r| (r.rid as u64) < p.first_rid);
            let to = removed.partition_point(|r| (r.rid as u64) < p.first_rid + p.done.kept);
            &removed[from..to]
        })
        .collect();
    let input = cfg.resolve(&d.input);
    let counter = cfg
        .tokens
        .as_ref()
        .map(|t| t.counter())
        .transpose()?
        .flatten();
    let out = match (&d.output, cfg.dry_run) {
        (Some(o), false) => Some(AtomicFile::create(&cfg.resolve(o))?),
        _ => None,
    };
    let offsets = match (&out, view.parts.len()) {
        (Some(_), n) if n > 1 => layout(ctx, &per_shard, &input)?,
        _ => vec![0; view.parts.len() + 1],
    };
    let shards: Vec<ShardCopy> = view
        .parts
        .par_iter()
        .with_max_len(1)
        .enumerate()
        .map(|(i, p)| {
            let target = out.as_ref().map(|f| (f, offsets[i]));
            copy_shard(ctx, p, per_shard[i], &input, target, counter.as_ref())
        })
        .collect::<Result<_>>()?;
    let mut summary = DedupOutputSummary::default();
    let mut sums: Option<StageTallies> = None;
    for (i, s) in shards.into_iter().enumerate() {
        ensure!(
            out.is_none() || view.parts.len() == 1 || s.written == offsets[i + 1] - offsets[i],
            "internal: shard {i} wrote {} bytes of its {}",
            s.written,
            offsets[i + 1] - offsets[i]
        );
        summary.stats.merge(&s.stats);
        summary.output_files += s.files;
        summary.output_bytes += s.bytes;
        match (sums.as_mut(), s.tokens) {
            (Some(a), Some(t)) => a.merge(&t),
            (None, t) => sums = t,
            (Some(_), None) => {}
        }
    }
    summary.token_tallies = sums;
    if let Some(f) = out {
        f.commit()?;
    }
    Ok(serde_json::to_value(summary)?)
}

/// Where each shard's kept lines start in the output, and the output's
/// length last: prefix sums of the shards' shares.
fn layout(ctx: &GlobalContext, per_shard: &[&[Removal]], input: &Path) -> Result<Vec<u64>> {
    let shares: Vec<u64> = ctx
        .view
        .parts
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let spans = read_spans(p, input)?;
            let mut share: u64 = spans.iter().map(|s| s.len + 1).sum();
            for r in per_shard[i] {
                let seq = (r.rid as u64 - p.first_rid) as usize;
                share -= spans
                    .get(seq)
                    .map(|s| s.len + 1)
                    .with_context(|| format!("internal: shard {i} has no record {seq}"))?;
            }
            Ok(share)
        })
        .collect::<Result<_>>()?;
    let mut offsets = Vec::with_capacity(shares.len() + 1);
    let mut at = 0u64;
    offsets.push(at);
    for s in shares {
        at += s;
        offsets.push(at);
    }
    Ok(offsets)
}

/// The line spans phase 1 stored for part `p`'s records.
fn read_spans(p: &PartInfo, input: &Path) -> Result<Vec<LineSpan>> {
    let path = offsets_path(&p.work(), p.ordinal());
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    ensure!(
        bytes.len() % std::mem::size_of::<LineSpan>() == 0
            && (bytes.len() / std::mem::size_of::<LineSpan>()) as u64 == p.done.kept,
        "{} does not list the {} records of {}'s shard {}; rerun with --fresh",
        path.display(),
        p.done.kept,
        input.display(),
        p.ordinal()
    );
    Ok(bytemuck::pod_collect_to_vec(&bytes))
}

/// What one shard's copy found and wrote.
struct ShardCopy {
    stats: Stats,
    files: u64,
    bytes: u64,
    written: u64,
    tokens: Option<StageTallies>,
}

/// Kept lines collected before one positioned write.
const WRITE_BLOCK: usize = 1 << 20;

/// Copies part `p`'s kept lines to `target` (the output and this shard's
/// offset in it; `None` on a dry run), counting them.
fn copy_shard(
    ctx: &GlobalContext,
    p: &PartInfo,
    removed: &[Removal],
    input: &Path,
    target: Option<(&AtomicFile, u64)>,
    counter: Option<&TokenCounter>,
) -> Result<ShardCopy> {
    let d = ctx.cfg.dedup.as_ref().context("not a dedup run")?;
    let o = p.ordinal();
    let work = p.work();
    let lines = read_lines(&work, o)?;
    let meta = read_meta(&work.meta_path(o))?;
    // Lengths are checked where the layout relied on them.
    let spans = match (target, ctx.view.parts.len()) {
        (Some(_), n) if n > 1 => Some(read_spans(p, input)?),
        _ => None,
    };
    let changed = |what: String| {
        anyhow::anyhow!(
            "{} changed since phase 1 ({what}); rerun with --fresh",
            input.display()
        )
    };
    let changed_line = |n: u64| changed(format!("shard {o}, line {n}"));
    let mut copy = ShardCopy {
        stats: Stats::default(),
        files: 0,
        bytes: 0,
        written: 0,
        tokens: None,
    };
    let mut tokens = counter.map(|c| StagesTokens::new(c, vec!["read", STAGE]));
    let mut block: Vec<u8> = Vec::with_capacity(WRITE_BLOCK + (64 << 10));
    let flush = |block: &mut Vec<u8>, written: &mut u64| -> Result<()> {
        if let Some((f, at)) = target {
            f.write_all_at(block, at + *written)?;
        }
        *written += block.len() as u64;
        block.clear();
        Ok(())
    };
    let mut next_removed = 0usize;
    let mut next_bad = 0usize;
    let mut seq = 0usize;
    // Lines whose texts go to the token counter, parsed in parallel blocks.
    let mut pending: Vec<(u64, Vec<u8>, bool)> = Vec::new();
    let mut pending_bytes = 0usize;
    for line in raw_lines(open_range(input, d.ranges[o as usize])?) {
        let (number, raw) = line.with_context(|| format!("{}: cannot read", input.display()))?;
        if is_blank(&raw) {
            continue;
        }
        crate::pipeline::progress::count_within_step(1);
        if lines.bad.get(next_bad).map(|b| b.line) == Some(number) {
            next_bad += 1;
            continue;
        }
        let m = meta
            .get(seq)
            .filter(|m| m.row == number)
            .ok_or_else(|| changed_line(number))?;
        if let Some(spans) = &spans {
            ensure!(
                spans.get(seq).map(|s| s.len) == Some(raw.len() as u64),
                "{}",
                changed_line(number)
            );
        }
        let rid = p.first_rid + seq as u64;
        let bytes = m.text_bytes as u64;
        seq += 1;
        let is_removed = removed.get(next_removed).map(|r| r.rid as u64) == Some(rid);
        if let Some(t) = tokens.as_mut() {
            pending_bytes += raw.len();
            pending.push((number, raw.clone(), is_removed));
            if pending_bytes >= PARSE_BLOCK_BYTES {
                count_tokens(t, &mut pending, &changed_line)?;
                pending_bytes = 0;
            }
        }
        if is_removed {
            next_removed += 1;
            copy.stats.drop(STAGE, DROP_REASON, bytes);
            continue;
        }
        copy.stats.pass(STAGE, bytes);
        copy.files += 1;
        copy.bytes += bytes;
        block.extend_from_slice(&raw);
        block.push(b'\n');
        if block.len() >= WRITE_BLOCK {
            flush(&mut block, &mut copy.written)?;
        }
    }
    flush(&mut block, &mut copy.written)?;
    if let Some(mut t) = tokens {
        count_tokens(&mut t, &mut pending, &changed_line)?;
        copy.tokens = Some(t.finish_sums()?);
    }
    ensure!(
        seq == meta.len() && next_bad == lines.bad.len(),
        "{}",
        changed(format!("shard {o} ended early"))
    );
    ensure!(
        next_removed == removed.len(),
        "internal: {} of {} removals of shard {o} applied",
        next_removed,
        removed.len()
    );
    Ok(copy)
}

/// Adds the output task's token sums to `stats`, finished once over all
/// shards (so an estimate does not depend on the shard split).
pub fn add_tokens(ctx: &GlobalContext, output: &DedupOutputSummary, stats: &mut Stats) {
    let Some(sums) = &output.token_tallies else {
        return;
    };
    sums.add_to(stats);
    let estimated = ctx
        .cfg
        .tokens
        .as_ref()
        .is_some_and(|t| t.mode == crate::tokens::count::TokensMode::Estimate);
    if estimated {
        stats.note("tokens_estimated", 1);
    }
}

/// Raw bytes of lines parsed per block for the token counter.
const PARSE_BLOCK_BYTES: usize = 8 << 20;

/// Parses the texts of `pending` lines (in parallel) and hands them to the
/// token counter in order, with their fate.
///
/// PERF: parsing every line for its text on the writing thread was most of
/// the output step with `--tokens estimate`; in parallel blocks the step
/// went from 5.0 s wall (4.4 CPU s) to 3.7 s wall (4.2 CPU s) on the 1M
/// corpus (`--threads 2 dedup --backend cpu --tokens estimate`, load 4-7;
/// the second run also skipped the per-task syncfs, see
/// benches/results/near-dedup.md).
fn count_tokens(
    t: &mut StagesTokens<'_>,
    pending: &mut Vec<(u64, Vec<u8>, bool)>,
    changed: &(dyn Fn(u64) -> anyhow::Error + Sync),
) -> Result<()> {
    let texts: Vec<Result<String>> = pending
        .par_iter()
        .with_min_len(64)
        .map(|(number, raw, _)| {
            serde_json::from_slice::<crate::record::OutputRecord>(raw)
                .map(|r| r.text)
                .map_err(|_| changed(*number))
        })
        .collect();
    for (text, (_, _, is_removed)) in texts.into_iter().zip(pending.iter()) {
        match is_removed {
            true => t.dropped(text?, STAGE, DROP_REASON)?,
            false => t.kept(text?)?,
        }
    }
    pending.clear();
    Ok(())
}
