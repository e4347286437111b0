//! The curate pipeline: input shards in, curated JSONL out.
//!
//! Phase 1 ([`process_shard`]) takes each input shard through the per-record
//! stages (read, metadata filters, content fetch, content filters, MD5) and
//! commits the survivors to a part file in the work dir ([`work_dir`]); it is
//! resumable shard by shard and splittable across machines with
//! `--shard I/N` ([`shard_spec`]). Phase 2 ([`finalize`]) runs the global
//! stages (exact dedup, near dedup, decontamination) over every finished part
//! and writes `{language}_curated.jsonl` and its stats atomically.
//!
//! Memory: one batch per stage in flight (`--batch-size` rows, default 1024)
//! plus the dedup indexes, which spill to disk (see `dedup::exact`).

pub mod finalize;
pub mod inputs;
pub mod part;
pub mod process_shard;
pub mod progress;
pub mod shard_spec;
pub mod work_dir;

use crate::backends::BackendKind;
use crate::content::ContentStore;
use crate::decontam::{DecontamConfig, Decontaminator};
use crate::dedup::near::NearDedupConfig;
use crate::filters::{FilterConfig, Filters};
use crate::output::run_report::{FailedInput, RunReport};
use crate::remote::RemoteConfig;
use crate::sources::{InputFile, ReadOptions};
use crate::stats::Stats;
use anyhow::{Context, Result};
use finalize::{FinalizeConfig, PartRef};
use process_shard::ShardContext;
use progress::Progress;
use shard_spec::ShardSpec;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use work_dir::{RunFingerprint, ShardDone, WorkDir};

/// Everything `curate` needs.
#[derive(Clone, Debug)]
pub struct CurateConfig {
    /// Local paths and `hf://` URIs; empty means [`inputs::DEFAULT_SOURCE`].
    pub sources: Vec<String>,
    pub filters: FilterConfig,
    pub output_dir: PathBuf,
    /// Defaults to `OUTPUT/.work/{language}`.
    pub work_dir: Option<PathBuf>,
    pub max_samples: Option<u64>,
    pub dry_run: bool,
    /// A directory, `s3://BUCKET/PREFIX` or `http(s)://` prefix; defaults
    /// to what a Hub source calls for.
    pub content_store: Option<String>,
    pub remote: RemoteConfig,
    pub rejects: Option<PathBuf>,
    pub shard: ShardSpec,
    pub keep_going: bool,
    pub quiet: bool,
    pub fresh: bool,
    pub batch_size: usize,
    /// Near dedup settings and `--clusters FILE`; `None` with `--near-dedup off`.
    pub near: Option<(NearDedupConfig, Option<PathBuf>)>,
    /// Decontamination settings; `None` with `--decontaminate off`.
    pub decontam: Option<DecontamSettings>,
    pub backend: BackendKind,
}

/// Decontamination in `curate`: on by default with whatever benchmarks are
/// available offline; when none are and the user named none, the stage is
/// skipped with a warning rather than failing the run.
#[derive(Clone, Debug)]
pub struct DecontamSettings {
    pub config: DecontamConfig,
    /// The user named benchmarks or benchmark files explicitly: failing to
    /// load them is an error.
    pub explicit: bool,
}

/// Stats note of a run whose decontamination found no benchmarks.
pub const DECONTAM_SKIPPED: &str = crate::stats::DECONTAM_SKIPPED_NOTE;

/// Output file names of a language.
pub fn output_paths(output_dir: &Path, language: &str) -> (PathBuf, PathBuf) {
    (
        output_dir.join(format!("{language}_curated.jsonl")),
        output_dir.join(format!("{language}_curated.stats.json")),
    )
}

/// xxh3 of the sorted input list: shard ordinals are positions in it, so a
/// work dir only resumes over the very same list.
fn inputs_hash(inputs: &[InputFile], labels: &[String]) -> String {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for (i, label) in inputs.iter().zip(labels) {
        h.update(label.as_bytes());
        h.update(&[0]);
        h.update(&i.size.to_le_bytes());
    }
    format!("{:016x}", h.digest())
}

/// Runs `curate`; returns the process exit code (0, or 1 when inputs failed
/// under `--keep-going`).
pub fn run_curate(cfg: &CurateConfig) -> Result<i32> {
    let started = std::time::Instant::now();
    let language = crate::filters::canonical_language(&cfg.filters.language);
    let specs = if cfg.sources.is_empty() {
        vec![inputs::DEFAULT_SOURCE.to_string()]
    } else {
        cfg.sources.clone()
    };
    let resolved = inputs::resolve(&specs, &cfg.filters.language, &cfg.remote)?;
    let inputs = &resolved.files;
    let fingerprint = RunFingerprint {
        format_version: work_dir::FORMAT_VERSION,
        filters: cfg.filters.clone(),
        max_samples: cfg.max_samples,
        inputs_hash: inputs_hash(inputs, &resolved.labels),
        input_count: inputs.len() as u32,
        record_rejects: cfg.rejects.is_some(),
    };

    // A dry run works in a temporary directory and writes nothing else.
    let _dry_tmp;
    let work_root = if cfg.dry_run {
        _dry_tmp = tempfile::tempdir().context("cannot create a temporary work directory")?;
        _dry_tmp.path().to_path_buf()
    } else {
        cfg.work_dir
            .clone()
            .unwrap_or_else(|| cfg.output_dir.join(".work").join(&language))
    };
    let work = WorkDir::open(&work_root, &fingerprint, cfg.fresh)?;

    // Before a full download, make sure the disk can hold it (the seed warns
    // about this); a --max-samples run stops early and is not checked.
    if cfg.max_samples.is_none() {
        if let Some(hub) = &resolved.hub {
            for shards in &resolved.hub_shards {
                let need = crate::remote::SpaceNeed::for_shards(
                    shards,
                    &hub.client,
                    None,
                    cfg.remote.blob_cache.is_some(),
                );
                let targets = crate::remote::SpaceTargets {
                    hub_cache: hub.client.config.cache_dir.clone(),
                    output: cfg.output_dir.clone(),
                    blob_cache: cfg.remote.blob_cache.clone(),
                };
                crate::remote::check_space(&need, &targets, cfg.remote.force)?;
            }
        }
    }
    let content_spec = cfg
        .content_store
        .clone()
        .or_else(|| resolved.default_content_store.map(str::to_string));
    let opened = match &content_spec {
        Some(spec) => Some(crate::remote::open_content(spec, &cfg.remote)?),
        None => None,
    };
    let content_store: Option<Arc<dyn ContentStore>> = opened.as_ref().map(|o| o.store.clone());
    if let (Some(store), false) = (&content_store, cfg.quiet) {
        eprintln!("tritter-gpu: content store: {}", store.describe());
    }
    let filters = Filters::new(cfg.filters.clone());
    let mine: Vec<&InputFile> = inputs
        .iter()
        .filter(|i| cfg.shard.owns(i.ordinal))
        .collect();
    let progress = Progress::new(cfg.quiet, Some(mine.iter().map(|i| i.size).sum()));
    if !cfg.quiet {
        progress.println(&format!(
            "tritter-gpu: {} input shard(s){}, work dir {}",
            mine.len(),
            if cfg.shard.is_all() {
                String::new()
            } else {
                format!(" (slice {} of {} shards)", cfg.shard, inputs.len())
            },
            work.root.display()
        ));
    }

    let ctx = ShardContext {
        filters: &filters,
        content_store,
        read: ReadOptions {
            batch_size: cfg.batch_size,
        },
        work: &work,
        record_rejects: cfg.rejects.is_some(),
        progress: &progress,
    };
    let mut failed = Vec::new();
    let mut remaining = cfg.max_samples.map(|n| {
        n.saturating_sub(
            work.all_done()
                .map(|d| d.iter().map(|s| s.kept).sum())
                .unwrap_or(0),
        )
    });
    let mut todo = Vec::new();
    for input in &mine {
        if work.done(input.ordinal)?.is_none() {
            todo.push(input.ordinal);
        }
    }
    let fetcher = inputs::ShardFetcher::new(&resolved, &todo, &cfg.remote);
    for input in &mine {
        if !todo.contains(&input.ordinal) {
            progress.shard_done(input.size);
            continue;
        }
        if remaining == Some(0) {
            break;
        }
        let outcome = fetcher
            .ready(input)
            .and_then(|()| process_shard::process_shard(input, &ctx, &mut remaining));
        match outcome {
            Ok(_) => {}
            Err(e) if cfg.keep_going && !crate::remote::is_fatal(&e) => {
                progress.println(&format!(
                    "tritter-gpu: skipping {}: {e:#}",
                    input.path.display()
                ));
                failed.push(FailedInput {
                    input: input.path.display().to_string(),
                    error: format!("{e:#}"),
                });
            }
            Err(e) => {
                progress.finish();
                return Err(e.context(format!(
                    "input {} failed (pass --keep-going to skip unreadable inputs)",
                    input.path.display()
                )));
            }
        }
        progress.shard_done(input.size);
    }
    drop(fetcher);
    progress.finish();
    let mut transfers = serde_json::Map::new();
    if let Some(hub) = &resolved.hub {
        transfers.insert(
            "hub_shards".into(),
            serde_json::to_value(hub.client.stats().snapshot())?,
        );
        transfers.insert("hub_datasets".into(), inputs::pinned_revisions(&resolved));
    }
    if let Some(o) = &opened {
        transfers.insert("content".into(), serde_json::to_value(o.stats.snapshot())?);
    }
    let all_done = work.all_done()?;
    work.write_manifest(&all_done)?;

    if !cfg.shard.is_all() {
        let stats = merged_stats(all_done.iter().filter(|d| cfg.shard.owns(d.ordinal)));
        eprint!("{}", stats.retention_table());
        eprintln!(
            "tritter-gpu: slice {} finished phase 1 into {}. Gather every slice's work directory and run `tritter-gpu merge --work-dir DIR... --output {}` for the global dedup and the output.",
            cfg.shard,
            work.root.display(),
            cfg.output_dir.display()
        );
        return Ok(if failed.is_empty() { 0 } else { 1 });
    }

    let parts: Vec<PartRef> = all_done
        .into_iter()
        .map(|done| PartRef { work: &work, done })
        .collect();
    // A run that reads the Hub decontaminates against the Hub's benchmarks
    // unless told otherwise (cached like the shards).
    let hub_cfg;
    let cfg = match &resolved.hub {
        Some(_) => {
            hub_cfg = with_hub_benchmarks(cfg);
            &hub_cfg
        }
        None => cfg,
    };
    finish_run(
        &parts,
        cfg,
        &language,
        failed,
        inputs.len(),
        transfers.into(),
        started,
    )
}

/// `cfg` with decontamination switched to the Hub's benchmarks when the
/// user chose none (no --benchmarks, --benchmark-file, --benchmark-dir nor
/// TRITTER_BENCHMARK_DIR), using the shards' Hugging Face cache.
fn with_hub_benchmarks(cfg: &CurateConfig) -> CurateConfig {
    let mut cfg = cfg.clone();
    if let Some(d) = &mut cfg.decontam {
        if !d.explicit && std::env::var_os("TRITTER_BENCHMARK_DIR").is_none() {
            d.config.source = crate::decontam::BenchmarkSource::Hub;
            if d.config.hub_cache.is_none() {
                d.config.hub_cache = cfg.remote.hf_cache.clone();
            }
        }
    }
    cfg
}

fn merged_stats<'a>(done: impl Iterator<Item = &'a ShardDone>) -> Stats {
    let mut stats = Stats::default();
    for d in done {
        stats.merge(&d.stats);
    }
    stats
}

/// Phase 2 and the reports, shared by `curate` and `merge`.
#[allow(clippy::too_many_arguments)]
pub fn finish_run(
    parts: &[PartRef<'_>],
    cfg: &CurateConfig,
    language: &str,
    failed: Vec<FailedInput>,
    input_count: usize,
    transfers: serde_json::Value,
    started: std::time::Instant,
) -> Result<i32> {
    let mut stats = merged_stats(parts.iter().map(|p| &p.done));
    let (out_path, stats_path) = output_paths(&cfg.output_dir, language);
    let scratch = parts
        .first()
        .map(|p| p.work.root.clone())
        .unwrap_or_else(std::env::temp_dir);
    let mut fcfg = FinalizeConfig {
        language: language.to_string(),
        output: (!cfg.dry_run).then(|| out_path.clone()),
        rejects: if cfg.dry_run {
            None
        } else {
            cfg.rejects.clone()
        },
        max_samples: cfg.max_samples,
        scratch,
        near: None,
        decontam: None,
        backend: None,
    };
    if cfg.near.is_some() || cfg.decontam.is_some() {
        let (backend, notes) = crate::backends::select(cfg.backend)?;
        if !cfg.quiet {
            eprintln!(
                "tritter-gpu: {}",
                crate::backends::describe_choice(backend.as_ref(), &notes)
            );
        }
        if let Some((config, clusters)) = &cfg.near {
            fcfg.near = Some(finalize::NearStage {
                config: config.clone(),
                clusters: clusters.clone(),
            });
        }
        if let Some(d) = &cfg.decontam {
            match Decontaminator::build(&d.config, backend.clone()) {
                Ok(dec) => {
                    if !cfg.quiet {
                        for line in dec.describe().lines() {
                            eprintln!("tritter-gpu: decontam: {line}");
                        }
                    }
                    fcfg.decontam = Some(finalize::DecontamStage {
                        decontaminator: dec,
                        flag_only: d.config.flag_only,
                    });
                }
                Err(e) if !d.explicit => {
                    eprintln!("tritter-gpu: warning: decontamination skipped, no benchmarks available ({e:#}); pass --benchmark-dir DIR or --benchmark-source hub");
                    stats.note(DECONTAM_SKIPPED, 1);
                }
                Err(e) => return Err(e.context("cannot load the benchmarks for decontamination")),
            }
        }
        fcfg.backend = Some(backend);
    }
    let phase1_seconds = started.elapsed().as_secs_f64();
    let fin = finalize::finalize(parts, &fcfg, &mut stats)?;
    let mut report = RunReport::new(
        language,
        &stats,
        &fin,
        input_count,
        parts.len(),
        failed,
        (!cfg.dry_run).then_some(out_path.as_path()),
        started.elapsed(),
    );
    report.transfers = transfers;
    if report.decontam.is_null() && stats.notes.contains_key(DECONTAM_SKIPPED) {
        report.decontam = serde_json::json!({ "status": "skipped (no benchmarks)" });
    }
    if let (Some(d), false) = (&cfg.decontam, cfg.dry_run) {
        if let (Some(path), Some(files)) = (
            &d.config.report,
            fin.decontam.get("files").and_then(|f| f.as_array()),
        ) {
            let mut lines = Vec::new();
            for f in files {
                serde_json::to_writer(&mut lines, f)?;
                lines.push(b'\n');
            }
            crate::output::atomic::write_atomic(path, &lines)?;
        }
    }
    report
        .phase_seconds
        .insert("per_shard".into(), round_ms(phase1_seconds));
    report.phase_seconds.insert(
        "global".into(),
        round_ms(started.elapsed().as_secs_f64() - phase1_seconds),
    );
    eprint!("{}", stats.retention_table());
    eprintln!(
        "tritter-gpu: {} files ({:.1} MB) {} in {:.1}s",
        fin.output_files,
        fin.output_bytes as f64 / 1e6,
        if cfg.dry_run {
            "would be written (dry run)".to_string()
        } else {
            format!("written to {}", out_path.display())
        },
        started.elapsed().as_secs_f64()
    );
    if !cfg.dry_run {
        crate::output::atomic::write_atomic(&stats_path, &serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(if report.failed_inputs.is_empty() {
        0
    } else {
        1
    })
}

/// `tritter-gpu merge`: phase 2 over the finished parts of several work
/// directories (the slices of a `--shard I/N` run). All must come from the
/// same inputs and filters; a shard finished in two slices is taken once.
#[allow(clippy::too_many_arguments)]
pub fn run_merge(
    work_dirs: &[PathBuf],
    output_dir: &Path,
    rejects: Option<PathBuf>,
    dry_run: bool,
    global: &crate::cli::flags::GlobalFlags,
    near: Option<(NearDedupConfig, Option<PathBuf>)>,
    decontam: Option<DecontamSettings>,
) -> Result<i32> {
    let started = std::time::Instant::now();
    let mut opened = Vec::new();
    for dir in work_dirs {
        opened.push(WorkDir::open_existing(dir)?);
    }
    let first_fp = opened[0].1.clone();
    for (w, fp) in &opened[1..] {
        anyhow::ensure!(
            fp == &first_fp,
            "work directory {} was made with other inputs or filters than {}; only slices of one run can be merged",
            w.root.display(),
            opened[0].0.root.display()
        );
    }
    let mut parts: Vec<PartRef> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (w, _) in &opened {
        for done in w.all_done()? {
            if seen.insert(done.ordinal) {
                parts.push(PartRef { work: w, done });
            }
        }
    }
    parts.sort_by_key(|p| p.done.ordinal);
    let missing = first_fp.input_count as usize - parts.len();
    if missing > 0 && !global.quiet {
        eprintln!("tritter-gpu: warning: {missing} of {} input shards are not finished in these work directories; merging what is there", first_fp.input_count);
    }
    let language = crate::filters::canonical_language(&first_fp.filters.language);
    let cfg = CurateConfig {
        sources: Vec::new(),
        filters: first_fp.filters.clone(),
        output_dir: output_dir.to_path_buf(),
        work_dir: None,
        max_samples: first_fp.max_samples,
        dry_run,
        content_store: None,
        remote: RemoteConfig::default(),
        rejects,
        shard: ShardSpec::ALL,
        keep_going: false,
        quiet: global.quiet,
        fresh: false,
        batch_size: 1024,
        near,
        decontam,
        backend: global.backend,
    };
    finish_run(
        &parts,
        &cfg,
        &language,
        Vec::new(),
        first_fp.input_count as usize,
        serde_json::Value::Null,
        started,
    )
}

fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
