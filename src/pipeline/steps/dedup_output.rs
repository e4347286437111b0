//! Step `output` of `dedup`: the input's lines, byte for byte and in input
//! order, minus the near-duplicates.
//!
//! One task per phase-1 shard, run in parallel: task `I` reads shard `I`'s
//! byte range of the input and copies every line that is a kept record into
//! its piece, `output/task-0000I.piece.jsonl`; blank lines, the bad lines
//! phase 1 listed (`part-N.lines.json`) and the records the `clusters` step
//! removed are left out. No line is parsed again, except for its text when
//! tokens are counted. Each record's line number is checked against the one
//! phase 1 stored, so an input that changed since phase 1 is an error, not
//! a wrong output. A task's stats (stage `near_dedup`) and its token sums
//! (`read` and `near_dedup`, finished once over all tasks by the report) go
//! into its marker as a [`DedupOutputSummary`].
//!
//! The `report` step then writes `--output` as the pieces concatenated in
//! task order ([`assemble`]): the bytes one sequential pass over the input
//! would write, for any shard size. The copy stays in the kernel
//! (`copy_file_range`), so it costs a fraction of the pass that filled the
//! pieces, and the pieces are removed once the output is in place; meanwhile
//! the work directory holds about one output's size in pieces.

use super::super::dedup_shard::{open_range, read_lines};
use super::super::record_meta::read_meta;
use super::clusters::{read_stars, removals};
use super::components::read_components;
use super::{GlobalContext, CLUSTERS, OUTPUT};
use crate::output::atomic::AtomicFile;
use crate::output::tool_jsonl::{is_blank, raw_lines};
use crate::stats::Stats;
use crate::tokens::stage::{StageTallies, StagesTokens};
use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

/// Stage name in the stats.
pub const STAGE: &str = "near_dedup";
/// Drop reason of a near-duplicate.
pub const DROP_REASON: &str = "minhash_near_duplicate";

/// What an output task of `dedup` found and wrote.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DedupOutputSummary {
    pub stats: Stats,
    pub output_files: u64,
    /// Text bytes of the kept records.
    pub output_bytes: u64,
    /// Bytes of the task's piece (kept lines with their newlines).
    pub piece_bytes: u64,
    /// Token sums of stages `read` and `near_dedup` (with `--tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_tallies: Option<StageTallies>,
}

/// The piece of output task `task`.
pub fn piece_path(ctx: &GlobalContext, task: u32) -> PathBuf {
    ctx.task_file(OUTPUT, task, "piece.jsonl")
}

pub fn run(ctx: &GlobalContext, task: u32) -> Result<serde_json::Value> {
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
    let p = view
        .parts
        .get(task as usize)
        .with_context(|| format!("internal: no input shard {task}"))?;
    let removed = {
        let comps = read_components(ctx)?;
        let all = removals(&read_stars(ctx, &comps)?);
        let part = p.first_rid..p.first_rid + p.done.kept;
        let from = all.partition_point(|r| (r.rid as u64) < part.start);
        let to = all.partition_point(|r| (r.rid as u64) < part.end);
        all[from..to].to_vec()
    };
    let input = cfg.resolve(&d.input);
    let o = p.ordinal();
    let changed = |what: String| {
        anyhow::anyhow!(
            "{} changed since phase 1 ({what}); rerun with --fresh",
            input.display()
        )
    };
    let mut summary = DedupOutputSummary::default();
    let token_counter = cfg
        .tokens
        .as_ref()
        .map(|t| t.counter())
        .transpose()?
        .flatten();
    let mut tokens = token_counter
        .as_ref()
        .map(|c| StagesTokens::new(c, vec!["read", STAGE]));
    let mut piece = match (&d.output, cfg.dry_run) {
        (Some(_), false) => Some(AtomicFile::create(&piece_path(ctx, task))?),
        _ => None,
    };
    let work = p.work();
    let lines = read_lines(&work, o)?;
    let meta = read_meta(&work.meta_path(o))?;
    let mut next_removed = 0usize;
    let mut next_bad = 0usize;
    let mut seq = 0usize;
    // Lines whose texts go to the token counter, parsed in parallel blocks.
    let mut pending: Vec<(u64, Vec<u8>, bool)> = Vec::new();
    let mut pending_bytes = 0usize;
    let changed_line = |n: u64| changed(format!("shard {o}, line {n}"));
    for line in raw_lines(open_range(&input, d.ranges[o as usize])?) {
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
            summary.stats.drop(STAGE, DROP_REASON, bytes);
            continue;
        }
        summary.stats.pass(STAGE, bytes);
        summary.output_files += 1;
        summary.output_bytes += bytes;
        summary.piece_bytes += raw.len() as u64 + 1;
        if let Some(w) = piece.as_mut() {
            w.write_all(&raw)
                .and_then(|_| w.write_all(b"\n"))
                .with_context(|| format!("cannot write {}", w.target().display()))?;
        }
    }
    if let Some(mut t) = tokens {
        count_tokens(&mut t, &mut pending, &changed_line)?;
        summary.token_tallies = Some(t.finish_sums()?);
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
    if let Some(w) = piece {
        w.commit_unsynced()?;
    }
    Ok(serde_json::to_value(summary)?)
}

/// Writes `--output` as the output tasks' pieces in task order, then
/// removes the pieces (no-op with `--dry-run`).
///
/// A report task killed after the output was renamed into place, while it
/// removed the pieces, finds some of them gone: the output is then the one
/// this run wrote if its length is the pieces' total, and is kept; anything
/// else is an error that says how to recover.
pub fn assemble(ctx: &GlobalContext, outputs: &[DedupOutputSummary]) -> Result<()> {
    let cfg = &ctx.cfg;
    let d = cfg.dedup.as_ref().context("not a dedup run")?;
    let (Some(target), false) = (&d.output, cfg.dry_run) else {
        return Ok(());
    };
    let target = cfg.resolve(target);
    let pieces: Vec<PathBuf> = (0..outputs.len() as u32)
        .map(|t| piece_path(ctx, t))
        .collect();
    if pieces.iter().all(|p| p.exists()) {
        let mut out = AtomicFile::create(&target)?;
        for p in &pieces {
            out.append_file(p)?;
        }
        out.commit()?;
    } else {
        let total: u64 = outputs.iter().map(|o| o.piece_bytes).sum();
        let len = std::fs::metadata(&target).map(|m| m.len()).ok();
        ensure!(
            len == Some(total),
            "pieces of the output are missing under {} and {} is not the output they made; rerun with --fresh",
            ctx.step_dir(OUTPUT).display(),
            target.display()
        );
    }
    for p in &pieces {
        match std::fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", p.display())),
        }
    }
    Ok(())
}

/// Adds the output tasks' token sums to `stats`, finished once over all
/// tasks (so an estimate does not depend on the shard split).
pub fn add_tokens(ctx: &GlobalContext, outputs: &[DedupOutputSummary], stats: &mut Stats) {
    let sums: Vec<&StageTallies> = outputs
        .iter()
        .filter_map(|o| o.token_tallies.as_ref())
        .collect();
    if sums.is_empty() {
        return;
    }
    crate::tokens::stage::add_estimates(sums, stats);
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
    use rayon::prelude::*;
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
