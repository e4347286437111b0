//! Phase 2: the global stages over every finished part, then the output.
//!
//! exact dedup (MD5 across all parts) -> near dedup (MinHash LSH over the
//! exact survivors) -> decontamination -> `{language}_curated.jsonl`, rejects
//! and stats. The output lists records in (shard ordinal, row) order, so it is
//! byte-identical whatever the thread count or backend, and a resumed or
//! merged run writes the same bytes as one uninterrupted run.

use super::part::{read_part, PartRecord};
use super::process_shard::RejectLine;
use super::work_dir::{ShardDone, WorkDir};
use crate::backends::Backend;
use crate::decontam::Decontaminator;
use crate::dedup::exact::{self, ExactDedupIndex, ExactDedupResult};
use crate::dedup::near::{self, NearDedupConfig, NearDoc, NearDocSource};
use crate::output::atomic::AtomicFile;
use crate::stats::Stats;
use crate::usage::{StepClock, StepTiming};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// A finished part and the work dir holding it.
pub struct PartRef<'a> {
    pub work: &'a WorkDir,
    pub done: ShardDone,
}

/// The near-dedup stage's settings.
pub struct NearStage {
    pub config: NearDedupConfig,
    /// `--clusters FILE`.
    pub clusters: Option<PathBuf>,
}

/// The decontamination stage: the built index and whether to keep and mark
/// (`--flag-only`) rather than drop.
pub struct DecontamStage {
    pub decontaminator: Decontaminator,
    pub flag_only: bool,
}

/// Settings of phase 2.
pub struct FinalizeConfig {
    /// Canonical language written to every output row.
    pub language: String,
    /// `None` for `--dry-run`.
    pub output: Option<PathBuf>,
    pub rejects: Option<PathBuf>,
    pub max_samples: Option<u64>,
    pub scratch: PathBuf,
    pub near: Option<NearStage>,
    pub decontam: Option<DecontamStage>,
    /// Backend for the heavy kernels (needed by near dedup and decontamination).
    pub backend: Option<std::sync::Arc<dyn Backend>>,
}

/// What phase 2 did.
#[derive(Debug, Default, serde::Serialize)]
pub struct FinalizeReport {
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
    /// Wall and CPU time of each step.
    pub steps: Vec<StepTiming>,
}

/// What [`for_each_record`] calls for each record.
type RecordVisitor<'f> =
    dyn FnMut(&PartRef<'_>, PartRecord, Option<exact::Loser>) -> Result<()> + 'f;

/// Calls `f` for every record of every part in order, with the exact-dedup
/// verdict: `Some(loser)` for a copy that lost to an identical file.
fn for_each_record(
    parts: &[PartRef<'_>],
    dedup: &ExactDedupResult,
    f: &mut RecordVisitor<'_>,
) -> Result<()> {
    for p in parts {
        let losers = dedup.losers_of(p.done.ordinal);
        let mut next_loser = 0;
        for (seq, rec) in read_part(&p.work.part_path(p.done.ordinal))?.enumerate() {
            let rec = rec?;
            let loser = if next_loser < losers.len() && losers[next_loser].seq as usize == seq {
                next_loser += 1;
                Some(losers[next_loser - 1])
            } else {
                None
            };
            f(p, rec, loser)?;
        }
    }
    Ok(())
}

/// The exact-dedup survivors as near-dedup documents; keys are dense in
/// output order.
struct SurvivorDocs<'a, 'b> {
    parts: &'a [PartRef<'b>],
    dedup: &'a ExactDedupResult,
}

impl NearDocSource for SurvivorDocs<'_, '_> {
    fn for_each(&mut self, f: &mut dyn FnMut(NearDoc<'_>) -> Result<()>) -> Result<()> {
        let mut key = 0u64;
        for_each_record(self.parts, self.dedup, &mut |_, rec, loser| {
            if loser.is_some() {
                return Ok(());
            }
            let doc = NearDoc {
                key,
                pref: rec.preference(),
                text: &rec.text,
                path: &rec.path,
                repo: &rec.repo,
            };
            key += 1;
            f(doc)
        })
    }
}

/// Runs phase 2 over `parts` (sorted by ordinal), adding its stages to `stats`.
pub fn finalize(
    parts: &[PartRef<'_>],
    cfg: &FinalizeConfig,
    stats: &mut Stats,
) -> Result<FinalizeReport> {
    let mut report = FinalizeReport::default();

    // Exact dedup over every part's keys.
    let clock = StepClock::start();
    let mut index = ExactDedupIndex::create(&cfg.scratch)?;
    for p in parts {
        index.add(&exact::read_keys(&p.work.keys_path(p.done.ordinal))?)?;
    }
    let dedup = index.finish()?;
    report.exact_unique = dedup.unique;
    report.exact_duplicates = dedup.duplicates;
    report.steps.push(clock.finish("exact_dedup"));

    // Near dedup over the exact survivors: removed key -> (kept key, similarity).
    let mut near_removed: HashMap<u64, (u64, f64)> = HashMap::new();
    if let Some(stage) = &cfg.near {
        let clock = StepClock::start();
        let backend = cfg.backend.as_ref().context("near dedup needs a backend")?;
        let mut docs = SurvivorDocs {
            parts,
            dedup: &dedup,
        };
        let mut config = stage.config.clone();
        config.cluster_paths |= stage.clusters.is_some();
        let outcome =
            near::find_near_duplicates(&mut docs, &config, backend.as_ref(), &cfg.scratch)?;
        for c in &outcome.clusters {
            for m in &c.removed {
                near_removed.insert(m.key, (c.kept, m.similarity));
            }
        }
        if let (Some(path), Some(_)) = (&stage.clusters, &cfg.output) {
            outcome.write_clusters_jsonl(path, None)?;
        }
        report.near_dedup = serde_json::to_value(&outcome.report)?;
        report.steps.push(clock.finish("near_dedup"));
        for (name, took) in &outcome.timings {
            let name = format!("near_dedup/{}", name.trim());
            report.steps.push(StepTiming::wall(name, *took));
        }
    }

    let mut output = match &cfg.output {
        Some(p) => Some(AtomicFile::create(p)?),
        None => None,
    };
    let mut rejects = match &cfg.rejects {
        Some(p) => Some(AtomicFile::create(p)?),
        None => None,
    };
    let mut decontam_batch: Vec<(String, PartRecord)> = Vec::new();
    let mut decontam_log = crate::decontam::report::HitLog::default();
    let output_clock = StepClock::start();
    let mut decontam_check = std::time::Duration::ZERO;
    let mut last_ordinal = None;
    let mut key = 0u64;
    let mut written = 0u64;

    // Writes one surviving record (or counts it as cut by --max-samples).
    let mut emit =
        |rec: PartRecord, report: &mut FinalizeReport, stats: &mut Stats| -> Result<()> {
            let bytes = rec.text.len() as u64;
            if cfg.max_samples.is_some_and(|n| written >= n) {
                stats.note("max_samples_cut", 1);
                return Ok(());
            }
            written += 1;
            report.output_files += 1;
            report.output_bytes += bytes;
            if let Some(out) = output.as_mut() {
                serde_json::to_writer(&mut *out, &rec.to_output(&cfg.language))?;
                out.write_all(b"\n")?;
            }
            Ok(())
        };

    // Decontamination checks a batch of texts at a time (one backend call).
    let mut flush = |batch: &mut Vec<(String, PartRecord)>,
                     report: &mut FinalizeReport,
                     stats: &mut Stats,
                     rejects: &mut Option<AtomicFile>,
                     log: &mut crate::decontam::report::HitLog,
                     check_time: &mut std::time::Duration|
     -> Result<()> {
        let Some(stage) = &cfg.decontam else {
            for (_, rec) in batch.drain(..) {
                emit(rec, report, stats)?;
            }
            return Ok(());
        };
        let texts: Vec<&str> = batch.iter().map(|(_, r)| r.text.as_str()).collect();
        let t = std::time::Instant::now();
        let verdicts = stage.decontaminator.check_batch(&texts)?;
        *check_time += t.elapsed();
        for ((input, rec), verdict) in batch.drain(..).zip(verdicts) {
            let bytes = rec.text.len() as u64;
            match verdict {
                Some(hit) if !stage.flag_only => {
                    let reason = hit.reason();
                    stats.drop("decontam", &reason, bytes);
                    if let Some(r) = rejects.as_mut() {
                        let first = hit.items.first().map(|i| i.id.as_str()).unwrap_or("");
                        let detail = format!(
                            "{} tier, {} item(s) matched, first {first}",
                            hit.tier.as_str(),
                            hit.items_total
                        );
                        reject(r, &input, &rec, "decontam", &reason, &detail)?;
                    }
                    log.record(
                        &stage.decontaminator,
                        &rec.text,
                        &rec.repo,
                        &rec.path,
                        &hit,
                        false,
                    );
                }
                other => {
                    if let Some(hit) = other {
                        stats.note("decontam_flagged", 1);
                        log.record(
                            &stage.decontaminator,
                            &rec.text,
                            &rec.repo,
                            &rec.path,
                            &hit,
                            true,
                        );
                    }
                    stats.pass("decontam", bytes);
                    emit(rec, report, stats)?;
                }
            }
        }
        Ok(())
    };

    for_each_record(parts, &dedup, &mut |p, rec, loser| {
        if last_ordinal != Some(p.done.ordinal) {
            last_ordinal = Some(p.done.ordinal);
            if let Some(r) = rejects.as_mut() {
                copy_rejects(&p.work.rejects_path(p.done.ordinal), r)?;
            }
        }
        let bytes = rec.text.len() as u64;
        if let Some(l) = loser {
            stats.drop("exact_dedup", "exact_duplicate", bytes);
            if let Some(r) = rejects.as_mut() {
                let detail = format!("same MD5 as shard {} row {}", l.kept.shard, l.kept.row);
                reject(
                    r,
                    &p.done.input,
                    &rec,
                    "exact_dedup",
                    "exact_duplicate",
                    &detail,
                )?;
            }
            return Ok(());
        }
        stats.pass("exact_dedup", bytes);
        let this_key = key;
        key += 1;
        if cfg.near.is_some() {
            if let Some((kept, similarity)) = near_removed.get(&this_key) {
                stats.drop("near_dedup", "minhash_near_duplicate", bytes);
                if let Some(r) = rejects.as_mut() {
                    let detail = format!("near-duplicate (similarity {similarity:.3}) of the kept file #{kept} of the exact-dedup survivors");
                    reject(
                        r,
                        &p.done.input,
                        &rec,
                        "near_dedup",
                        "minhash_near_duplicate",
                        &detail,
                    )?;
                }
                return Ok(());
            }
            stats.pass("near_dedup", bytes);
        }
        decontam_batch.push((p.done.input.clone(), rec));
        if decontam_batch.len() >= 256 {
            flush(
                &mut decontam_batch,
                &mut report,
                stats,
                &mut rejects,
                &mut decontam_log,
                &mut decontam_check,
            )?;
        }
        Ok(())
    })?;
    flush(
        &mut decontam_batch,
        &mut report,
        stats,
        &mut rejects,
        &mut decontam_log,
        &mut decontam_check,
    )?;

    if let Some(stage) = &cfg.decontam {
        report.decontam = serde_json::json!({ "benchmarks": stage.decontaminator.describe(), "flag_only": stage.flag_only, "files": decontam_log.files, "totals": decontam_log.totals, "samples": decontam_log.sampler.finish() });
    }
    if let Some(out) = output {
        out.commit()?;
    }
    if let Some(r) = rejects {
        r.commit()?;
    }
    report.steps.push(output_clock.finish("output"));
    if cfg.decontam.is_some() {
        report
            .steps
            .push(StepTiming::wall("output/decontam_check", decontam_check));
    }
    Ok(report)
}

fn reject(
    out: &mut AtomicFile,
    input: &str,
    rec: &PartRecord,
    stage: &str,
    reason: &str,
    detail: &str,
) -> Result<()> {
    serde_json::to_writer(
        &mut *out,
        &RejectLine {
            input,
            row: rec.id.row,
            repo: &rec.repo,
            path: &rec.path,
            stage,
            reason,
            detail,
        },
    )?;
    out.write_all(b"\n")?;
    Ok(())
}

fn copy_rejects(path: &Path, out: &mut AtomicFile) -> Result<()> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    for line in BufReader::new(f).lines() {
        out.write_all(line?.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
