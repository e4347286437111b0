//! Step `output` of `dedup`: the input's lines, byte for byte and in input
//! order, minus the near-duplicates.
//!
//! One task reads the input range by range (the phase-1 shards, in order)
//! and copies every line that is a kept record; blank lines, the bad lines
//! phase 1 listed (`part-N.lines.json`) and the records the `clusters` step
//! removed are left out. No line is parsed again: phase 1 counted each
//! record's tokens into its facts, with the token settings of the work
//! directory's fingerprint. Each record's line number is checked against the one
//! phase 1 stored, so an input that changed since phase 1 is an error, not
//! a wrong output. The task's stats (stage `near_dedup`, and the tokens of
//! `read` and `near_dedup`) go into its marker as an
//! [`super::output::OutputSummary`].
//!
//! PERF: one sequential pass is the fastest we measured. On the 1M-file
//! corpus (1 GB, 2 threads, side by side) it takes 1.4-1.7 s wall, 1.0 CPU
//! s. Copying the shards in parallel, each written by position at its
//! offset in the one output file (known from phase 1's line spans), took
//! 2.1-2.5 s wall and 2.6-3.4 CPU s: buffered writes to one file serialise
//! on its inode lock, and the waiting threads spin. Writing a piece per
//! shard and joining the pieces with `copy_file_range` spent about 3.5 CPU s
//! in the join alone: the kernel copies the bytes again.

use super::super::dedup_shard::{open_range, read_lines};
use super::super::record_meta::read_meta;
use super::clusters::{read_stars, removals};
use super::components::read_components;
use super::output::OutputSummary;
use super::{GlobalContext, CLUSTERS};
use crate::output::atomic::AtomicFile;
use crate::output::tool_jsonl::{is_blank, raw_lines};
use crate::stats::Stats;
use crate::tokens::stage::Fate;
use anyhow::{ensure, Context, Result};
use std::io::Write;

/// Stage name in the stats.
pub const STAGE: &str = "near_dedup";
/// Drop reason of a near-duplicate.
pub const DROP_REASON: &str = "minhash_near_duplicate";

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
    let comps = read_components(ctx)?;
    let removed = removals(&read_stars(ctx, &comps)?);
    drop(comps);
    let input = cfg.resolve(&d.input);
    let changed = |what: String| {
        anyhow::anyhow!(
            "{} changed since phase 1 ({what}); rerun with --fresh",
            input.display()
        )
    };
    let mut summary = OutputSummary::default();
    let mut stats = Stats::default();
    let token_counter = cfg
        .tokens
        .as_ref()
        .map(|t| t.counter())
        .transpose()?
        .flatten();
    let mut tokens = token_counter
        .as_ref()
        .map(|c| crate::tokens::stage::StageTokens::new(c, STAGE));
    let mut out = match (&d.output, cfg.dry_run) {
        // One task: with a second thread, the writes run on it while this
        // one reads and picks the lines.
        (Some(o), false) if rayon::current_num_threads() > 1 => {
            Some(AtomicFile::create_write_behind(&cfg.resolve(o))?)
        }
        (Some(o), false) => Some(AtomicFile::create(&cfg.resolve(o))?),
        _ => None,
    };
    let mut next_removed = 0usize;
    let removed_fate = Fate::Dropped(DROP_REASON.to_string());
    // Phase 1 counted every record's tokens into its facts, with the
    // settings the work directory's fingerprint holds.
    if tokens.is_some() {
        let counted = cfg.work_dirs.first().is_some_and(|w| {
            crate::pipeline::dedup_run::phase1_counted(
                &crate::pipeline::work_dir::WorkDir {
                    root: cfg.resolve(w),
                },
                cfg.tokens.as_ref(),
            )
        });
        ensure!(
            counted,
            "the work directory's phase 1 did not count tokens with these settings; rerun with --fresh"
        );
    }
    for p in &view.parts {
        let o = p.ordinal();
        let work = p.work();
        let lines = read_lines(&work, o)?;
        let meta = read_meta(&work.meta_path(o))?;
        let mut next_bad = 0usize;
        let mut seq = 0usize;
        for line in raw_lines(open_range(&input, d.ranges[o as usize])?) {
            let (number, raw) =
                line.with_context(|| format!("{}: cannot read", input.display()))?;
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
                .ok_or_else(|| changed(format!("shard {o}, line {number}")))?;
            let rid = p.first_rid + seq as u64;
            let bytes = m.text_bytes as u64;
            seq += 1;
            let is_removed = removed.get(next_removed).map(|r| r.rid as u64) == Some(rid);
            if let Some(t) = tokens.as_mut() {
                let fate = if is_removed {
                    &removed_fate
                } else {
                    &Fate::Kept
                };
                t.push_tally(&m.token_tally(), fate);
            }
            if is_removed {
                next_removed += 1;
                stats.drop(STAGE, DROP_REASON, bytes);
                continue;
            }
            stats.pass(STAGE, bytes);
            summary.output_files += 1;
            summary.output_bytes += bytes;
            if let Some(w) = out.as_mut() {
                w.write_all(&raw)
                    .and_then(|_| w.write_all(b"\n"))
                    .with_context(|| format!("cannot write {}", w.target().display()))?;
            }
        }
        ensure!(
            seq == meta.len() && next_bad == lines.bad.len(),
            "{}",
            changed(format!("shard {o} ended early"))
        );
    }
    ensure!(
        next_removed == removed.len(),
        "internal: {} of {} removals applied",
        next_removed,
        removed.len()
    );
    if let Some(t) = tokens {
        t.finish(&mut stats, &["read"])?;
    }
    if let Some(w) = out {
        w.commit()?;
    }
    summary.stats = stats;
    Ok(serde_json::to_value(summary)?)
}
