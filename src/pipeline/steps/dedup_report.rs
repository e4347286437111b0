//! Step `report` of `dedup`: the `--clusters` file, the `--stats` file and
//! the report page, as the single-process `dedup` wrote them.
//!
//! Line numbers are the input's: a shard's bad lines and its records' rows
//! are numbered within the shard, so the line counts of the shards before it
//! are added (`part-N.lines.json`). Near dedup's keys are record numbers
//! (`dedup` has no exact step), i.e. positions among the input's valid
//! records, as before. The task's summary holds the count and the first of
//! the bad lines, from which the command takes its exit code.

use super::super::dedup_shard::{read_lines, BadInputLine, BAD_JSON};
use super::super::record_meta::read_meta;
use super::output::OutputSummary;
use super::report::{near_outcome, step_seconds};
use super::{global_plan, GlobalContext, OUTPUT, SHARDS};
use crate::dedup::near::report::write_clusters_jsonl;
use crate::output::atomic::write_atomic;
use crate::stats::Stats;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Bad lines listed by number in the stats file (all are counted).
const BAD_LINES_LISTED: usize = 1000;

/// The report task's summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DedupReportSummary {
    pub bad_lines: u64,
    pub first_bad: Option<BadInputLine>,
}

#[derive(Serialize)]
struct StatsFile<'a> {
    tool: String,
    command: &'static str,
    argv: Vec<String>,
    started_at: Option<String>,
    backend: &'a str,
    input: String,
    output: Option<String>,
    dry_run: bool,
    stats: &'a Stats,
    near_dedup: &'a crate::dedup::near::NearDedupReport,
    bad_lines: &'a [BadInputLine],
    bad_lines_total: u64,
    elapsed_seconds: f64,
    partitions: u32,
    steps: Vec<crate::usage::StepTiming>,
    resources: Option<crate::usage::Usage>,
}

pub fn run(ctx: &GlobalContext) -> Result<serde_json::Value> {
    let cfg = &ctx.cfg;
    let d = cfg.dedup.as_ref().context("not a dedup run")?;
    let near = cfg.near.as_ref().context("near dedup is off")?;
    let view = &ctx.view;
    let outcome = near_outcome(ctx)?;

    let mut stats = Stats::default();
    for p in &view.parts {
        stats.merge(&p.done.stats);
    }
    for o in ctx.summaries::<OutputSummary>(OUTPUT)? {
        stats.merge(&o.stats);
    }
    // Input line numbers: each shard's own, plus the lines before it.
    let want_lines = cfg.clusters.is_some() && !cfg.dry_run;
    let mut line_of: Vec<u64> = Vec::new();
    let mut bad: Vec<BadInputLine> = Vec::new();
    let mut bad_total = 0u64;
    let mut before = 0u64;
    for p in &view.parts {
        let work = p.work();
        let lines = read_lines(&work, p.ordinal())?;
        for b in &lines.bad {
            bad_total += 1;
            if bad.len() < BAD_LINES_LISTED {
                bad.push(BadInputLine {
                    line: before + b.line,
                    reason: BAD_JSON.to_string(),
                    error: b.error.clone(),
                });
            }
        }
        if want_lines {
            line_of.extend(
                read_meta(&work.meta_path(p.ordinal()))?
                    .iter()
                    .map(|m| before + m.row),
            );
        }
        before += lines.lines;
    }
    if bad_total > 0 {
        stats.note("bad_lines", bad_total);
    }
    if let (Some(path), true) = (&cfg.clusters, want_lines) {
        write_clusters_jsonl(
            &cfg.resolve(path),
            &outcome.clusters,
            &outcome.paths,
            near.verify,
            Some(&line_of),
        )?;
    }
    drop(line_of);

    // Seconds per step, in plan order, phase 1 first.
    let (seconds, first_start) = step_seconds(ctx)?;
    let mut steps = Vec::new();
    if let Some(wall) = ctx.phase1_seconds {
        steps.push(crate::usage::StepTiming {
            step: SHARDS.to_string(),
            wall_seconds: super::round_ms(wall),
            cpu_seconds: ctx.phase1_cpu_seconds.map(super::round_ms),
            files: None,
            bytes: None,
        });
    }
    for s in global_plan(cfg) {
        if let Some(t) = seconds.get(&s.name) {
            steps.push(crate::usage::StepTiming {
                step: s.name.clone(),
                wall_seconds: t.wall_seconds,
                cpu_seconds: t.cpu_seconds,
                files: None,
                bytes: None,
            });
        }
    }
    let elapsed = match ctx.started {
        Some(s) => s.elapsed().as_secs_f64(),
        None => (super::unix_now() - first_start.unwrap_or_else(super::unix_now)).max(0.0),
    };
    let stats_file = stats.with_retention();
    let (argv, started_at) = match &ctx.identity {
        Some(id) => (id.argv.clone(), id.started_at.clone()),
        None => (Vec::new(), None),
    };
    let file = StatsFile {
        tool: format!("tritter-gpu {}", env!("CARGO_PKG_VERSION")),
        command: "dedup",
        argv,
        started_at,
        backend: &d.backend,
        input: d.input.display().to_string(),
        output: d.output.as_ref().map(|o| o.display().to_string()),
        dry_run: cfg.dry_run,
        stats: &stats_file,
        near_dedup: &outcome.report,
        bad_lines: &bad,
        bad_lines_total: bad_total,
        elapsed_seconds: super::round_ms(elapsed),
        partitions: cfg.partitions,
        steps,
        resources: ctx
            .started
            .is_some()
            .then(|| crate::usage::Usage::now().rounded()),
    };
    if let Some(path) = &d.stats {
        let mut bytes = serde_json::to_vec_pretty(&file)?;
        bytes.push(b'\n');
        write_atomic(&cfg.resolve(path), &bytes)?;
    }
    // Next to the stats, else next to the output; a dry run writes a page
    // only when given a path.
    let target = match &cfg.report_html {
        crate::report::PageTarget::Path(p) => crate::report::PageTarget::Path(cfg.resolve(p)),
        other => other.clone(),
    };
    if !cfg.dry_run || matches!(target, crate::report::PageTarget::Path(_)) {
        let value = serde_json::to_value(&file)?;
        let stats_path = d.stats.as_ref().map(|p| cfg.resolve(p));
        let output = d.output.as_ref().map(|p| cfg.resolve(p));
        if let Some(page) =
            crate::report::write_page_or(&target, &value, stats_path.as_deref(), output.as_deref())?
        {
            crate::note!("tritter-gpu: report page {}", page.display());
        }
    }

    crate::pipeline::messages::note_block(&outcome.report.summary());
    for t in &file.steps {
        crate::note!("  time {:<22} {:>9.3} s", t.step, t.wall_seconds);
    }
    crate::note!("  time {:<22} {:>9.3} s", "total", file.elapsed_seconds);
    crate::pipeline::messages::note_block(&stats.retention_table());
    Ok(serde_json::to_value(DedupReportSummary {
        bad_lines: bad_total,
        first_bad: bad.into_iter().next(),
    })?)
}
