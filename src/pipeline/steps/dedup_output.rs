//! Step `output` of `dedup`: the input's lines, byte for byte and in input
//! order, minus the near-duplicates.
//!
//! One task reads the input range by range (the phase-1 shards, in order)
//! and copies every line that is a kept record; blank lines, the bad lines
//! phase 1 listed (`part-N.lines.json`) and the records the `clusters` step
//! removed are left out. No line is parsed again, except for its text when
//! tokens are counted. Each record's line number is checked against the one
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
        (Some(o), false) => Some(AtomicFile::create(&cfg.resolve(o))?),
        _ => None,
    };
    let mut next_removed = 0usize;
    // Lines whose texts go to the token counter, parsed in parallel blocks.
    let mut pending: Vec<(u64, Vec<u8>, bool)> = Vec::new();
    let mut pending_bytes = 0usize;
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
                pending_bytes += raw.len();
                pending.push((number, raw.clone(), is_removed));
                if pending_bytes >= PARSE_BLOCK_BYTES {
                    count_tokens(t, &mut pending, &|n| {
                        changed(format!("shard {o}, line {n}"))
                    })?;
                    pending_bytes = 0;
                }
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
        if let Some(t) = tokens.as_mut() {
            count_tokens(t, &mut pending, &|n| {
                changed(format!("shard {o}, line {n}"))
            })?;
            pending_bytes = 0;
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
    t: &mut crate::tokens::stage::StageTokens<'_>,
    pending: &mut Vec<(u64, Vec<u8>, bool)>,
    changed: &(dyn Fn(u64) -> anyhow::Error + Sync),
) -> Result<()> {
    use crate::tokens::stage::Fate;
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
        t.push(
            text?,
            if *is_removed {
                Fate::Dropped(DROP_REASON.to_string())
            } else {
                Fate::Kept
            },
        )?;
    }
    pending.clear();
    Ok(())
}
