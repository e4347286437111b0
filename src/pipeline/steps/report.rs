//! Step `report`: one task that merges what the other steps found and writes
//! the run's reports: the rejects file (each shard's phase-1 rejects, then
//! its phase-2 rejects, shard by shard), the `--clusters` file, the
//! decontamination report, and `{language}_curated.stats.json` with the
//! near-dedup report, every stage's counts and each step's wall and CPU
//! seconds.
//!
//! DETERMINISM: summaries are merged in task order and counts by addition;
//! near dedup's keys are record numbers among the exact-dedup survivors, as
//! in [`crate::dedup::near::find_near_duplicates`], so the report is the same
//! for any partition count.

use super::clusters::read_stars;
use super::components::{read_components, ComponentsSummary};
use super::exact::ExactSummary;
use super::lsh::LshSummary;
use super::output::{output_path, OutputSummary};
use super::verify::VerifySummary;
use super::{
    global_plan, GlobalContext, StepTiming, COMPONENTS, EXACT, LSH, OUTPUT, REPORT, VERIFY,
};
use crate::dedup::near::report::{self, Cluster, ClusterMember, DocRef};
use crate::dedup::near::verify::Thresholds;
use crate::output::atomic::AtomicFile;
use crate::output::run_report::RunReport;
use crate::stats::Stats;
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

/// What the global steps did, for the stats file.
#[derive(Debug, Default, Serialize)]
pub struct GlobalReport {
    pub exact_unique: u64,
    pub exact_duplicates: u64,
    pub output_files: u64,
    pub output_bytes: u64,
    /// The near-dedup report (clusters, sizes, parameters and seeds).
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub near_dedup: serde_json::Value,
    /// Per-benchmark totals and the removed files.
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    pub decontam: serde_json::Value,
}

/// Wall and CPU seconds of one step, in the stats file.
#[derive(Clone, Debug, Serialize)]
pub struct StepSeconds {
    pub tasks: u32,
    pub wall_seconds: f64,
    pub cpu_seconds: Option<f64>,
}

pub fn run(ctx: &GlobalContext) -> Result<serde_json::Value> {
    let cfg = &ctx.cfg;
    let view = &ctx.view;
    let mut stats = Stats::default();
    for p in &view.parts {
        stats.merge(&p.done.stats);
    }
    if cfg.decontam_skipped {
        stats.note(crate::stats::DECONTAM_SKIPPED_NOTE, 1);
    }
    let mut fin = GlobalReport::default();
    for e in ctx.summaries::<ExactSummary>(EXACT)? {
        fin.exact_unique += e.unique;
        fin.exact_duplicates += e.duplicates;
    }
    let outputs = ctx.summaries::<OutputSummary>(OUTPUT)?;
    for o in &outputs {
        stats.merge(&o.stats);
        fin.output_files += o.output_files;
        fin.output_bytes += o.output_bytes;
    }
    // Estimated tokens: the sums of every shard and task, estimated once.
    crate::tokens::stage::add_estimates(
        view.parts
            .iter()
            .filter_map(|p| p.done.token_tallies.as_ref())
            .chain(outputs.iter().filter_map(|o| o.token_tallies.as_ref())),
        &mut stats,
    );
    if cfg.near.is_some() {
        fin.near_dedup = near_report(ctx)?;
    }
    if let Some(d) = &cfg.decontam {
        let mut files = Vec::new();
        for t in 0..ctx.tasks_of(OUTPUT) {
            let path = ctx.task_file(OUTPUT, t, "decontam.jsonl");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            for line in text.lines() {
                files.push(serde_json::from_str::<serde_json::Value>(line)?);
            }
        }
        if let (Some(path), false) = (&d.report, cfg.dry_run) {
            let mut lines = Vec::new();
            for f in &files {
                serde_json::to_writer(&mut lines, f)?;
                lines.push(b'\n');
            }
            crate::output::atomic::write_atomic(&cfg.resolve(path), &lines)?;
        }
        let (totals, samples) = super::output::decontam_samples(ctx)?;
        fin.decontam = serde_json::json!({ "benchmarks": d.description, "flag_only": d.flag_only, "files": files, "totals": totals, "samples": samples });
    } else if cfg.decontam_skipped {
        fin.decontam = serde_json::json!({ "status": "skipped (no benchmarks)" });
    }
    if let (Some(path), false) = (&cfg.rejects, cfg.dry_run) {
        write_rejects(ctx, &cfg.resolve(path))?;
    }

    let mut failed = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for dir in &cfg.work_dirs {
        let work = crate::pipeline::work_dir::WorkDir {
            root: cfg.resolve(dir),
        };
        for f in work.all_failed()? {
            if seen.insert(f.input.clone()) {
                failed.push(f);
            }
        }
    }

    let (steps, first_start) = step_seconds(ctx)?;
    let elapsed = match ctx.started {
        Some(s) => s.elapsed(),
        None => std::time::Duration::from_secs_f64(
            (super::unix_now() - first_start.unwrap_or_else(super::unix_now)).max(0.0),
        ),
    };
    let (single, _) = crate::pipeline::output_paths(&cfg.output_dir, &cfg.language);
    let ext = cfg.format.extension();
    let single = single.with_extension(ext);
    let shown_path = match cfg.output_shards {
        None => single.clone(),
        Some(n) => cfg.output_dir.join(format!(
            "{}_curated-{{00000..{:05}}}-of-{n:05}.{ext}",
            cfg.language,
            n.saturating_sub(1)
        )),
    };
    let mut report = RunReport::new(
        &cfg.language,
        &stats,
        &fin,
        cfg.input_count as usize,
        view.parts.len(),
        failed,
        (!cfg.dry_run).then_some(single.as_path()),
        elapsed,
    );
    if let (Some(n), false) = (cfg.output_shards, cfg.dry_run) {
        report.output.path = None;
        report.output.shards = Some(
            (0..n)
                .map(|t| {
                    let p = output_path(ctx, t);
                    cfg.output_dir
                        .join(p.file_name().expect("a file name"))
                        .display()
                        .to_string()
                })
                .collect(),
        );
    }
    report.transfers = ctx.transfers.clone();
    let global: f64 = steps.values().map(|s| s.wall_seconds).sum();
    if let Some(p1) = ctx.phase1_seconds {
        report
            .phase_seconds
            .insert("per_shard".into(), super::round_ms(p1));
        report
            .phase_seconds
            .insert("global".into(), super::round_ms(elapsed.as_secs_f64() - p1));
    } else {
        report
            .phase_seconds
            .insert("global".into(), super::round_ms(global));
    }
    let mut steps = serde_json::to_value(&steps)?;
    if let (Some(wall), Some(obj)) = (ctx.phase1_seconds, steps.as_object_mut()) {
        // Phase 1 of this invocation, as one more step.
        obj.insert(
            super::SHARDS.to_string(),
            serde_json::to_value(StepSeconds {
                tasks: view.parts.len() as u32,
                wall_seconds: super::round_ms(wall),
                cpu_seconds: ctx.phase1_cpu_seconds.map(super::round_ms),
            })?,
        );
    }
    report.step_seconds = steps;
    describe_run(ctx, &mut report);
    crate::pipeline::messages::note_block(&stats.retention_table());
    crate::note!(
        "tritter-gpu: {} files ({:.1} MB) {} in {:.1}s",
        fin.output_files,
        fin.output_bytes as f64 / 1e6,
        if cfg.dry_run {
            "would be written (dry run)".to_string()
        } else {
            format!("written to {}", shown_path.display())
        },
        elapsed.as_secs_f64()
    );
    if !cfg.dry_run {
        let (_, stats_path) =
            crate::pipeline::output_paths(&cfg.resolve(&cfg.output_dir), &cfg.language);
        crate::output::atomic::write_atomic(&stats_path, &serde_json::to_vec_pretty(&report)?)?;
    }
    // The page is rendered from the stats as written, so `tritter-gpu report`
    // of the stats file gives the same page. A dry run writes one only when
    // asked for by path.
    let target = &cfg.report_html;
    if !cfg.dry_run || matches!(target, crate::report::PageTarget::Path(_)) {
        let (_, stats_path) =
            crate::pipeline::output_paths(&cfg.resolve(&cfg.output_dir), &cfg.language);
        let target = match target {
            crate::report::PageTarget::Path(p) => crate::report::PageTarget::Path(cfg.resolve(p)),
            other => other.clone(),
        };
        let value = serde_json::to_value(&report)?;
        if let Some(page) = crate::report::write_page(&target, &value, Some(&stats_path))? {
            crate::note!("tritter-gpu: report page {}", page.display());
        }
    }
    Ok(serde_json::json!({ "failed_inputs": report.failed_inputs.len() }))
}

/// What the run was, for the page: the invocation (local runs), the inputs,
/// the filters and the backend of phase 1, and the process's resources when
/// it ran the whole run.
fn describe_run(ctx: &GlobalContext, report: &mut RunReport<'_>) {
    let cfg = &ctx.cfg;
    if let Some(id) = &ctx.identity {
        report.command = Some(id.command);
        report.argv = id.argv.clone();
        report.started_at = id.started_at.clone();
        if ctx.started.is_some() {
            report.resources = Some(crate::usage::Usage::now().rounded());
        }
    }
    report.input_names = ctx
        .view
        .parts
        .iter()
        .take(crate::output::run_report::INPUTS_LISTED)
        .map(|p| p.done.input.clone())
        .collect();
    let first = cfg
        .work_dirs
        .first()
        .map(|d| crate::pipeline::work_dir::WorkDir {
            root: cfg.resolve(d),
        });
    let shards: Option<crate::pipeline::run_config::ShardsConfig> =
        first.and_then(|w| crate::pipeline::run_config::load(&w.config_path()).ok());
    if let Some(s) = shards {
        report.sources = s.sources;
        report.filters = Some(s.filters);
        report.backend = s.backend_description;
    }
}

/// Each step's seconds (tasks, wall, CPU), and when the first task started.
pub(super) fn step_seconds(
    ctx: &GlobalContext,
) -> Result<(BTreeMap<String, StepSeconds>, Option<f64>)> {
    let mut out = BTreeMap::new();
    let mut first: Option<f64> = None;
    for step in global_plan(&ctx.cfg) {
        if step.name == REPORT {
            continue;
        }
        let markers = ctx.done_markers(&step.name)?;
        let start = markers
            .iter()
            .map(|m| m.started_unix)
            .fold(f64::INFINITY, f64::min);
        let end = markers
            .iter()
            .map(|m| m.started_unix + m.wall_seconds)
            .fold(0.0, f64::max);
        if start.is_finite() {
            first = Some(first.map_or(start, |f: f64| f.min(start)));
        }
        let local: Option<StepTiming> = std::fs::read(ctx.step_dir(&step.name).join("step.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let seconds = match local {
            Some(t) => StepSeconds {
                tasks: step.tasks,
                wall_seconds: t.wall_seconds,
                cpu_seconds: Some(t.cpu_seconds),
            },
            None => StepSeconds {
                tasks: step.tasks,
                wall_seconds: super::round_ms((end - start).max(0.0)),
                cpu_seconds: markers
                    .iter()
                    .map(|m| m.cpu_seconds)
                    .sum::<Option<f64>>()
                    .map(super::round_ms),
            },
        };
        out.insert(step.name.clone(), seconds);
    }
    Ok((out, first))
}

/// The near-dedup report, and the `--clusters` file.
fn near_report(ctx: &GlobalContext) -> Result<serde_json::Value> {
    let cfg = &ctx.cfg;
    let near = cfg.near.as_ref().context("near dedup is off")?;
    let o = near_outcome(ctx)?;
    if let (Some(path), false) = (&cfg.clusters, cfg.dry_run) {
        report::write_clusters_jsonl(&cfg.resolve(path), &o.clusters, &o.paths, near.verify, None)?;
    }
    Ok(serde_json::to_value(&o.report)?)
}

/// What near dedup found, merged from the steps' files and summaries.
pub(super) struct NearOutcome {
    pub report: report::NearDedupReport,
    /// In preference order of the kept files; keys are positions among the
    /// exact-dedup survivors.
    pub clusters: Vec<Cluster>,
    /// Paths of the report's samples (of every member with `--clusters`).
    pub paths: HashMap<u64, DocRef>,
}

/// The near-dedup report with its clusters and paths.
pub(super) fn near_outcome(ctx: &GlobalContext) -> Result<NearOutcome> {
    let cfg = &ctx.cfg;
    let near = cfg.near.as_ref().context("near dedup is off")?;
    let view = &ctx.view;
    let losers = view.losers(ctx)?;
    let records = view.records()?;
    let params = near.layout()?;
    let thresholds = Thresholds::new(near.jaccard, near.num_perm);
    let comps = read_components(ctx)?;
    let csum: ComponentsSummary = ctx
        .summaries::<ComponentsSummary>(COMPONENTS)?
        .pop()
        .unwrap_or_default();
    let lsh = LshSummary::merge(&ctx.summaries::<LshSummary>(LSH)?);
    let mut unique_edges = 0;
    let mut verified_edges = 0;
    for v in ctx.summaries::<VerifySummary>(VERIFY)? {
        unique_edges += v.candidate_edges;
        verified_edges += v.verified_edges;
    }
    // Keys are positions among the exact-dedup survivors.
    let key = |rid: u32| (rid - losers.before(rid)) as u64;
    let mut rid_of: HashMap<u64, u32> = HashMap::new();
    let mut clusters = Vec::new();
    let mut bytes_removed = 0u64;
    for (kept, members) in read_stars(ctx, &comps)? {
        rid_of.insert(key(kept), kept);
        clusters.push(Cluster {
            kept: key(kept),
            removed: members
                .iter()
                .map(|&(rid, similarity)| {
                    rid_of.insert(key(rid), rid);
                    bytes_removed += records.text_bytes[rid as usize] as u64;
                    ClusterMember {
                        key: key(rid),
                        similarity,
                    }
                })
                .collect(),
        });
    }
    let cluster_paths = near.cluster_paths || cfg.clusters.is_some();
    let samples = report::sample_keys(&clusters, cluster_paths);
    let mut wanted: Vec<u32> = samples.iter().map(|k| rid_of[k]).collect();
    wanted.sort_unstable();
    let mut paths: HashMap<u64, DocRef> = HashMap::with_capacity(wanted.len());
    let mut sample_texts = report::SampleTexts::new(&clusters);
    let mut lookup: Option<(usize, crate::pipeline::record_lookup::RecordLookup)> = None;
    for rid in wanted {
        let (part, seq) = view.locate(rid);
        if lookup.as_ref().map(|l| l.0) != Some(part) {
            lookup = Some((part, ctx.record_lookup(part)?));
        }
        let rec = lookup.as_mut().expect("opened above").1.get(seq)?;
        sample_texts.offer(key(rid), &rec.text);
        paths.insert(
            key(rid),
            DocRef {
                path: rec.path,
                repo: rec.repo,
            },
        );
    }
    let signature_bytes = csum.docs * near.num_perm as u64 * 4;
    let report = report::build(report::ReportInput {
        cfg: near,
        params,
        thresholds: &thresholds,
        docs: csum.docs,
        text_bytes: csum.text_bytes,
        short_docs: csum.docs_short,
        empty_docs: csum.docs_without_shingles,
        lsh,
        unique_edges,
        verified_edges,
        components: csum.components,
        largest_component: csum.largest_component,
        clusters: &clusters,
        bytes_removed,
        paths: &paths,
        // Where today's single-process store would have kept them: the
        // signatures always live in the shards' sidecars now.
        signatures_on_disk: signature_bytes > near.memory_bytes / 2,
        // Phase 1 sorts each shard's band entries under its share of the
        // budget; the shards' stats note what spilled.
        band_spill: crate::dedup::near::shard_keys::band_spill_of(
            ctx.view.parts.iter().map(|p| &p.done.stats),
        ),
        edge_spill: Default::default(),
        sample_texts,
    });
    Ok(NearOutcome {
        report,
        clusters,
        paths,
    })
}

/// The rejects file: per shard, its phase-1 rejects, then its phase-2
/// rejects from the output tasks in order.
fn write_rejects(ctx: &GlobalContext, target: &std::path::Path) -> Result<()> {
    let mut out = AtomicFile::create(target)?;
    let tasks = ctx.tasks_of(OUTPUT);
    for p in &ctx.view.parts {
        let mut sources = vec![p.work().rejects_path(p.ordinal())];
        for t in 0..tasks {
            sources.push(ctx.task_file(OUTPUT, t, &format!("rejects-{:06}.jsonl", p.ordinal())));
        }
        for s in sources {
            match std::fs::File::open(&s) {
                Ok(mut f) => {
                    std::io::copy(&mut f, &mut out)
                        .with_context(|| format!("cannot copy {}", s.display()))?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", s.display())),
            }
        }
    }
    out.flush()?;
    out.commit()
}
