//! The curate pipeline: input shards in, curated JSONL out.
//!
//! Phase 1 ([`process_shard`]) takes each input shard through the per-record
//! stages (read, metadata filters, content fetch, content filters) and does
//! there everything that needs one file at a time: MD5, near dedup's
//! signatures and band hashes, the decontamination verdict. It commits the
//! survivors and those sidecars to the work dir ([`work_dir`]); it is
//! resumable shard by shard and splittable across machines with
//! `--shard I/N` ([`shard_spec`]). The global phase is a short chain of
//! partitioned, resumable steps ([`steps`]): exact dedup, LSH candidates,
//! edge verification, components, stars, output, report; it writes
//! `{language}_curated.jsonl` (or `--output-shards` files) and its stats.
//!
//! Every task of every step reads and writes only the work directory, whose
//! stored configuration ([`run_config`]) is all it needs, so the same plan
//! runs here on the thread pool ([`steps::run_local`]) or one task per process
//! (`tritter-gpu run-step`, see [`run_step`]).
//!
//! Phase 1 runs several shards at once, each lane of shards on a thread pool
//! of its own ([`shard_lanes`]).
//!
//! Memory: one batch per stage in flight in phase 1 (`--batch-size` rows,
//! default 1024) per lane; the global steps' memory is per task and per partition
//! (docs/global-phase.md has the arithmetic at The Stack v2 Python scale).

pub mod cleanup;
pub mod decontam_hits;
pub mod dedup_run;
pub mod dedup_shard;
pub mod inputs;
pub mod interrupt;
pub mod messages;
pub mod part;
pub mod process_shard;
pub mod progress;
pub mod read_ahead;
pub mod record_lookup;
pub mod record_meta;
pub mod run_config;
pub mod shard_lanes;
pub mod shard_spec;
pub mod steps;
pub mod work_dir;
pub mod work_lock;

use crate::backends::{Backend, BackendKind};
use crate::content::ContentStore;
use crate::decontam::{DecontamConfig, Decontaminator};
use crate::dedup::near::shard_keys::KeySettings;
use crate::dedup::near::NearDedupConfig;
use crate::filters::{FilterConfig, Filters};
use crate::output::run_report::FailedInput;
use crate::remote::{OpenedContent, RemoteConfig};
use crate::sources::{InputFile, ReadOptions};
use crate::stats::Stats;
use anyhow::{bail, Context, Result};
use process_shard::ShardContext;
use progress::Progress;
use run_config::{GlobalConfig, GlobalDecontam, ShardsConfig};
use shard_spec::ShardSpec;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use steps::GlobalContext;
use work_dir::{DecontamFingerprint, NearKeyFingerprint, RunFingerprint, ShardDone, WorkDir};

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
    /// Partitions of the global steps.
    pub partitions: u32,
    /// `--output-shards N`.
    pub output_shards: Option<u32>,
    /// `--format`: the curated files' format.
    pub format: crate::output::curated_writer::CuratedFormat,
    /// Write the plan and the stored configuration, run nothing.
    pub plan_only: bool,
    /// Where the run's HTML page goes (`--report-html`).
    pub report_html: crate::report::PageTarget,
    /// `--repos FILE`: curated git repositories as a source.
    pub repos: Option<crate::sources::repos::ReposConfig>,
    /// `--redact on|off` (unset: the repositories only).
    pub redact: crate::redact::RedactMode,
    /// Token counting of the global steps' stages; `None` with `--tokens off`.
    pub tokens: Option<crate::tokens::count::TokensConfig>,
}

impl CurateConfig {
    /// The work directory: `--work-dir`, else `OUTPUT/.work/{language}`.
    pub fn work_root(&self) -> PathBuf {
        self.work_dir.clone().unwrap_or_else(|| {
            self.output_dir
                .join(".work")
                .join(crate::filters::canonical_language(&self.filters.language))
        })
    }
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
        // A repository's shard changes size when its branch moves; that is
        // resumed per repository (inputs::discard_moved_repos), not refused.
        if !label.starts_with(inputs::REPO_LABEL_PREFIX) {
            h.update(&i.size.to_le_bytes());
        }
    }
    format!("{:016x}", h.digest())
}

/// What phase 1 runs with, built once per process.
struct ShardStages {
    filters: Filters,
    content: Option<OpenedContent>,
    backend: Option<Arc<dyn Backend>>,
    keys: Option<KeySettings>,
    decontam: Option<Decontaminator>,
    /// The shards whose texts are redacted.
    redact: crate::redact::RedactScope,
    /// Token counting of the per-record stages; `None` with `--tokens off`.
    tokens: Option<crate::tokens::TokenCounter>,
}

impl ShardStages {
    fn context<'a>(
        &'a self,
        work: &'a WorkDir,
        scfg: &ShardsConfig,
        progress: &'a Progress,
    ) -> ShardContext<'a> {
        ShardContext {
            filters: &self.filters,
            content_store: self
                .content
                .as_ref()
                .map(|o| o.store.clone() as Arc<dyn ContentStore>),
            read: ReadOptions {
                batch_size: scfg.batch_size,
            },
            work,
            record_rejects: scfg.record_rejects,
            progress,
            near: match (&self.keys, &self.backend) {
                (Some(k), Some(b)) => Some((k, b.as_ref())),
                _ => None,
            },
            decontam: self.decontam.as_ref(),
            redact: &self.redact,
            tokens: self.tokens.as_ref(),
            read_ahead: None,
        }
    }
}

/// Phase 1 of a process: the resolved inputs, the stages and the work dir.
struct Phase1 {
    resolved: inputs::ResolvedInputs,
    stages: ShardStages,
    work: WorkDir,
    cfg: ShardsConfig,
    /// Decontamination was asked for but no benchmarks were found.
    decontam_skipped: bool,
    decontam_description: Option<String>,
    _dry_tmp: Option<tempfile::TempDir>,
}

/// Runs `curate`; returns the process exit code (0, or 1 when inputs failed
/// under `--keep-going`).
pub fn run_curate(cfg: &CurateConfig) -> Result<i32> {
    let started = Instant::now();
    let language = crate::filters::canonical_language(&cfg.filters.language);
    let phase1 = plan_phase1(cfg)?;
    let global = global_config(cfg, &language, &phase1)?;
    if cfg.plan_only {
        steps::prepare(&phase1.work, &global)?;
        println!(
            "{}",
            serde_json::to_string_pretty(&plan_json(&phase1.work)?)?
        );
        return Ok(0);
    }
    let outcome = run_shards(&phase1, cfg.shard, cfg.quiet)?;
    if !cfg.shard.is_all() {
        return Ok(finish_slice(&phase1, cfg, &outcome));
    }
    run_global(
        &phase1.work,
        &global,
        Some(started),
        Some(started.elapsed().as_secs_f64()),
        outcome.transfers,
        "curate",
        cfg.quiet,
        true,
    )
}

/// What `--plan-only` does, without printing: stores the phase-1 and
/// global configuration and returns the work directory and the plan
/// (`{"work_dir": W, "steps": [...]}`). Cluster executors plan this way.
pub fn store_curate_plan(cfg: &CurateConfig) -> Result<(PathBuf, serde_json::Value)> {
    let language = crate::filters::canonical_language(&cfg.filters.language);
    let phase1 = plan_phase1(cfg)?;
    let global = global_config(cfg, &language, &phase1)?;
    steps::prepare(&phase1.work, &global)?;
    let plan = plan_json(&phase1.work)?;
    // The tasks that run the plan take the work directory's lock themselves.
    work_lock::release_all(&phase1.work.root);
    Ok((phase1.work.root.clone(), plan))
}

/// The stored plan of a work directory, as `run-step --plan` prints it.
pub fn stored_plan(work_dir: &Path) -> Result<serde_json::Value> {
    plan_json(&WorkDir {
        root: work_dir.to_path_buf(),
    })
}

/// Step 1 of `curate`: inputs, stages, fingerprint, work dir and the stored
/// configuration.
fn plan_phase1(cfg: &CurateConfig) -> Result<Phase1> {
    let decontam = cfg.decontam.as_ref().map(|d| (&d.config, d.explicit));
    let scfg = ShardsConfig {
        cwd: run_config::current_dir()?,
        sources: if cfg.sources.is_empty() && cfg.repos.is_none() {
            vec![inputs::DEFAULT_SOURCE.to_string()]
        } else {
            cfg.sources.clone()
        },
        filters: cfg.filters.clone(),
        max_samples: cfg.max_samples,
        content_store: cfg.content_store.clone(),
        remote: cfg.remote.clone(),
        batch_size: cfg.batch_size,
        record_rejects: cfg.rejects.is_some(),
        keep_going: cfg.keep_going,
        shard: cfg.shard,
        backend: cfg.backend,
        near: cfg.near.as_ref().map(|(n, _)| n.clone()),
        decontam: None,
        decontam_skipped: false,
        decontam_description: None,
        backend_description: None,
        repos: cfg.repos.clone(),
        redact: cfg.redact,
        tokens: cfg.tokens.clone(),
    };
    let work_root = (!cfg.dry_run).then(|| cfg.work_root());
    let phase1 = open_phase1(scfg, decontam, work_root, cfg.fresh, cfg.quiet)?;
    check_disk_space(cfg, &phase1.resolved)?;
    Ok(phase1)
}

/// Resolves the inputs, builds the stages, opens the work dir (a temporary
/// one for `work_root == None`, a dry run) and stores the configuration.
fn open_phase1(
    mut scfg: ShardsConfig,
    decontam: Option<(&DecontamConfig, bool)>,
    work_root: Option<PathBuf>,
    fresh: bool,
    quiet: bool,
) -> Result<Phase1> {
    let resolved = inputs::resolve(
        &scfg.sources,
        &scfg.filters.language,
        &scfg.remote,
        scfg.repos.as_ref(),
        quiet,
    )?;
    let content_spec = scfg
        .content_store
        .clone()
        .or_else(|| resolved.default_content_store.map(str::to_string));
    let content = match &content_spec {
        Some(spec) => Some(crate::remote::open_content(spec, &scfg.remote)?),
        None => None,
    };
    if let (Some(o), false) = (&content, quiet) {
        eprintln!("tritter-gpu: content store: {}", o.store.describe());
    }
    // A run that reads the Hub decontaminates against the Hub's benchmarks
    // unless told otherwise (cached like the shards).
    let hub_decontam;
    let mut auto_hub = false;
    let decontam = match (decontam, &resolved.hub) {
        (Some((config, explicit)), Some(_)) => {
            hub_decontam = with_hub_benchmarks(config, explicit, &scfg.remote);
            auto_hub = hub_decontam.source != config.source;
            Some((&hub_decontam, explicit))
        }
        (d, _) => d,
    };
    let mut stages = ShardStages {
        filters: Filters::new(scfg.filters.clone()),
        content,
        backend: None,
        keys: None,
        decontam: None,
        redact: crate::redact::RedactScope {
            all: scfg.redact == crate::redact::RedactMode::On,
            ordinals: if scfg.redact == crate::redact::RedactMode::Repos {
                resolved.repos.iter().map(|(o, _)| *o).collect()
            } else {
                Vec::new()
            },
        },
        tokens: match &scfg.tokens {
            Some(t) => t.counter()?,
            None => None,
        },
    };
    let mut skipped = false;
    let mut description = None;
    if scfg.near.is_some() || decontam.is_some() {
        let (backend, notes) = crate::backends::select(scfg.backend)?;
        if !quiet {
            eprintln!(
                "tritter-gpu: {}",
                crate::backends::describe_choice(backend.as_ref(), &notes)
            );
        }
        if let Some(near) = &scfg.near {
            stages.keys = Some(KeySettings::new(near)?);
        }
        if let Some((config, explicit)) = decontam {
            let building =
                progress::StepBar::spinner(quiet, "decontam: building the benchmark index");
            let built = Decontaminator::build(config, backend.clone());
            building.finish();
            match built {
                Ok(dec) => {
                    if !quiet {
                        for line in dec.describe().lines() {
                            eprintln!("tritter-gpu: decontam: {line}");
                        }
                    }
                    description = Some(dec.describe());
                    scfg.decontam = Some(config.clone());
                    stages.decontam = Some(dec);
                }
                // Skipped only when no benchmark exists at all (or the
                // Hub's, chosen for the user, cannot be had): a corrupt
                // benchmark file is an error, never a silent "no
                // decontamination".
                Err(e)
                    if !explicit
                        && (e.downcast_ref::<crate::decontam::NoBenchmarks>().is_some()
                            || auto_hub) =>
                {
                    eprintln!("tritter-gpu: warning: decontamination skipped, no benchmarks available ({e:#}); pass --benchmark-dir DIR or --benchmark-source hub");
                    skipped = true;
                }
                Err(e) => return Err(e.context("cannot load the benchmarks for decontamination")),
            }
        }
        scfg.backend_description = Some(backend.describe());
        stages.backend = Some(backend);
    }
    scfg.decontam_skipped = skipped;
    if scfg.decontam_description.is_none() {
        scfg.decontam_description = description.clone();
    }
    let fingerprint = RunFingerprint {
        redact: scfg.redact,
        tokens: scfg.tokens.clone(),
        format_version: work_dir::FORMAT_VERSION,
        filters: scfg.filters.clone(),
        max_samples: scfg.max_samples,
        inputs_hash: inputs_hash(&resolved.files, &resolved.labels),
        input_count: resolved.files.len() as u32,
        record_rejects: scfg.record_rejects,
        near_keys: match &scfg.near {
            Some(n) => {
                let p = n.layout()?;
                Some(NearKeyFingerprint {
                    ngram: n.ngram,
                    num_perm: n.num_perm,
                    bands: p.bands,
                    rows: p.rows,
                    minhash_seed: n.seed,
                })
            }
            None => None,
        },
        decontam: match (&scfg.decontam, &stages.decontam) {
            (Some(c), Some(d)) => Some(DecontamFingerprint {
                ngram: c.ngram,
                min_matches: c.min_matches,
                min_exact_len: c.min_exact_len,
                index: d.index_summary(),
            }),
            _ => None,
        },
    };
    // A dry run works in a temporary directory and writes nothing else.
    let (root, dry_tmp) = match work_root {
        Some(r) => (r, None),
        None => {
            let t = tempfile::tempdir().context("cannot create a temporary work directory")?;
            // Removed on Ctrl-C too (its drop does it otherwise).
            cleanup::register_existing(t.path());
            (t.path().to_path_buf(), Some(t))
        }
    };
    // Locked before `--fresh` clears anything: a second run on this
    // directory is refused, not interleaved.
    work_lock::lock_whole(&root, "curate")?;
    let work = WorkDir::open(&root, &fingerprint, fresh)?;
    inputs::discard_moved_repos(&resolved, &work)?;
    run_config::store(&work.config_path(), &scfg)?;
    Ok(Phase1 {
        resolved,
        stages,
        work,
        cfg: scfg,
        decontam_skipped: skipped,
        decontam_description: description,
        _dry_tmp: dry_tmp,
    })
}

/// Before a full download, make sure the disk can hold it (the seed warns
/// about this); a --max-samples run stops early and is not checked.
fn check_disk_space(cfg: &CurateConfig, resolved: &inputs::ResolvedInputs) -> Result<()> {
    if cfg.max_samples.is_some() {
        return Ok(());
    }
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
    Ok(())
}

/// The global steps' configuration of a `curate` run.
fn global_config(cfg: &CurateConfig, language: &str, phase1: &Phase1) -> Result<GlobalConfig> {
    anyhow::ensure!(cfg.partitions >= 1, "--partitions must be at least 1");
    Ok(GlobalConfig {
        cwd: phase1.cfg.cwd.clone(),
        language: language.to_string(),
        work_dirs: vec![phase1.work.root.clone()],
        input_count: phase1.resolved.files.len() as u32,
        output_dir: cfg.output_dir.clone(),
        dry_run: cfg.dry_run,
        rejects: cfg.rejects.clone(),
        max_samples: cfg.max_samples,
        near: cfg.near.as_ref().map(|(n, _)| n.clone()),
        clusters: cfg.near.as_ref().and_then(|(_, c)| c.clone()),
        decontam: match (&cfg.decontam, &phase1.decontam_description) {
            (Some(d), Some(description)) => Some(GlobalDecontam {
                flag_only: d.config.flag_only,
                report: d.config.report.clone(),
                description: description.clone(),
            }),
            _ => None,
        },
        decontam_skipped: phase1.decontam_skipped,
        partitions: cfg.partitions,
        output_shards: cfg.output_shards,
        format: cfg.format,
        backend: cfg.backend,
        report_html: cfg.report_html.clone(),
        tokens: cfg.tokens.clone(),
        dedup: None,
    })
}

/// What phase 1 did in this invocation.
struct ShardsOutcome {
    failed: Vec<FailedInput>,
    transfers: serde_json::Value,
}

/// Step 2 of `curate`: phase 1 over this slice's unfinished shards, in
/// ordinal order (`--max-samples` needs that order).
fn run_shards(p: &Phase1, slice: ShardSpec, quiet: bool) -> Result<ShardsOutcome> {
    let work = &p.work;
    let mine: Vec<&InputFile> = p
        .resolved
        .files
        .iter()
        .filter(|i| slice.owns(i.ordinal))
        .collect();
    let progress = Progress::new(quiet, Some(mine.iter().map(|i| i.size).sum()));
    if !quiet {
        progress.println(&format!(
            "tritter-gpu: {} input shard(s){}, work dir {}",
            mine.len(),
            if slice.is_all() {
                String::new()
            } else {
                format!(" (slice {} of {} shards)", slice, p.resolved.files.len())
            },
            work.root.display()
        ));
    }
    let ctx = p.stages.context(work, &p.cfg, &progress);
    let mut remaining = p.cfg.max_samples.map(|n| {
        n.saturating_sub(
            work.all_done()
                .map(|d| d.iter().map(|s| s.kept).sum())
                .unwrap_or(0),
        )
    });
    // The shards still to do, in ordinal order; the finished ones count as
    // done on the progress bar at once.
    let mut todo_inputs: Vec<&InputFile> = Vec::new();
    for input in &mine {
        if work.done(input.ordinal)?.is_none() {
            todo_inputs.push(input);
        } else {
            progress.shard_done(input.size);
        }
    }
    let todo: Vec<u32> = todo_inputs.iter().map(|i| i.ordinal).collect();
    let fetcher = inputs::ShardFetcher::new(&p.resolved, &todo, &p.cfg.remote);
    let lanes = shard_lanes::lane_count(
        rayon::current_num_threads(),
        todo.len(),
        remaining.is_some(),
    );
    let failed = shard_lanes::LaneContext {
        resolved: &p.resolved,
        work,
        keep_going: p.cfg.keep_going,
        ctx: &ctx,
        fetcher: &fetcher,
        progress: &progress,
    }
    .run(lanes, &todo_inputs, &mut remaining)
    .inspect_err(|_| progress.finish())?;
    drop(fetcher);
    progress.finish();
    let mut transfers = serde_json::Map::new();
    if let Some(hub) = &p.resolved.hub {
        transfers.insert(
            "hub_shards".into(),
            serde_json::to_value(hub.client.stats().snapshot())?,
        );
        transfers.insert("hub_datasets".into(), inputs::pinned_revisions(&p.resolved));
    }
    if !p.resolved.repos.is_empty() {
        transfers.insert("repositories".into(), inputs::repo_stats(&p.resolved));
        if let Some(s) = &p.resolved.stars_refresh {
            transfers.insert("stars_refresh".into(), serde_json::to_value(s)?);
        }
    }
    if let Some(o) = &p.stages.content {
        transfers.insert("content".into(), serde_json::to_value(o.stats.snapshot())?);
    }
    work.write_manifest(&work.all_done()?)?;
    Ok(ShardsOutcome {
        failed,
        transfers: transfers.into(),
    })
}

/// The end of a `--shard I/N` slice: its retention table and what to do next.
fn finish_slice(p: &Phase1, cfg: &CurateConfig, outcome: &ShardsOutcome) -> i32 {
    let done = p.work.all_done().unwrap_or_default();
    let stats = merged_stats(done.iter().filter(|d| cfg.shard.owns(d.ordinal)));
    messages::note_block(&stats.retention_table());
    crate::note!(
        "tritter-gpu: slice {} finished phase 1 into {}. Gather every slice's work directory and run `tritter-gpu merge --work-dir DIR... --output {}` for the global dedup and the output.",
        cfg.shard,
        p.work.root.display(),
        cfg.output_dir.display()
    );
    if outcome.failed.is_empty() {
        0
    } else {
        1
    }
}

/// `config` switched to the Hub's benchmarks when the user chose none (no
/// --benchmarks, --benchmark-file, --benchmark-dir nor
/// TRITTER_BENCHMARK_DIR), using the shards' Hugging Face cache.
fn with_hub_benchmarks(
    config: &DecontamConfig,
    explicit: bool,
    remote: &RemoteConfig,
) -> DecontamConfig {
    let mut config = config.clone();
    if !explicit && std::env::var_os("TRITTER_BENCHMARK_DIR").is_none() {
        config.source = crate::decontam::BenchmarkSource::Hub;
        if config.hub_cache.is_none() {
            config.hub_cache = remote.hf_cache.clone();
        }
    }
    config
}

fn merged_stats<'a>(done: impl Iterator<Item = &'a ShardDone>) -> Stats {
    let mut stats = Stats::default();
    let mut estimates = Vec::new();
    for d in done {
        stats.merge(&d.stats);
        estimates.extend(d.token_tallies.as_ref());
    }
    crate::tokens::stage::add_estimates(estimates, &mut stats);
    stats
}

/// Step 3 of `curate` and `merge`: the global steps on the local executor,
/// resuming those a killed invocation finished; `durable`: tasks sync their
/// files before their markers (not in `dedup`'s scratch work directory).
#[allow(clippy::too_many_arguments)]
fn run_global(
    work: &WorkDir,
    global: &GlobalConfig,
    started: Option<Instant>,
    phase1_seconds: Option<f64>,
    transfers: serde_json::Value,
    command: &'static str,
    quiet: bool,
    durable: bool,
) -> Result<i32> {
    // The process's CPU time so far is phase 1's (and set-up's).
    let phase1_cpu = crate::usage::Usage::now().cpu_seconds();
    let dir = steps::prepare(work, global)?;
    let mut ctx = GlobalContext::open(&dir)?;
    ctx.started = started;
    ctx.phase1_seconds = phase1_seconds;
    ctx.phase1_cpu_seconds = phase1_seconds.map(|_| phase1_cpu);
    ctx.transfers = transfers;
    ctx.identity = Some(steps::Invocation {
        command,
        argv: crate::output::run_report::argv(),
        started_at: started.map(crate::output::run_report::rfc3339_since),
    });
    ctx.own_process = false;
    ctx.durable = durable;
    steps::run_local(&ctx, quiet)?;
    let report = ctx.done_markers(steps::REPORT)?;
    let failed = report
        .first()
        .and_then(|r| r.summary.get("failed_inputs"))
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    Ok(if failed == 0 { 0 } else { 1 })
}

/// `tritter-gpu merge`: the global steps over the finished parts of several
/// work directories (the slices of a `--shard I/N` run). All must come from
/// the same inputs and settings; a shard finished in two slices is taken
/// once. The near-dedup and decontamination settings are the slices' own.
pub struct MergeConfig {
    pub work_dirs: Vec<PathBuf>,
    pub output_dir: PathBuf,
    pub rejects: Option<PathBuf>,
    pub clusters: Option<PathBuf>,
    pub decontam_report: Option<PathBuf>,
    pub dry_run: bool,
    pub quiet: bool,
    pub partitions: u32,
    pub output_shards: Option<u32>,
    pub format: crate::output::curated_writer::CuratedFormat,
    pub plan_only: bool,
    pub report_html: crate::report::PageTarget,
    /// `--tokenizer`, `--tokens`, `--token-sample-rate` as given.
    pub tokens: crate::tokens::inherit::TokensOverride,
}

pub fn run_merge(m: &MergeConfig) -> Result<i32> {
    let started = Instant::now();
    anyhow::ensure!(m.partitions >= 1, "--partitions must be at least 1");
    let mut opened = Vec::new();
    for dir in &m.work_dirs {
        let opened_dir = WorkDir::open_existing(dir)?;
        work_lock::lock_whole(dir, "merge")?;
        opened.push(opened_dir);
    }
    let first_fp = opened[0].1.clone();
    for (w, fp) in &opened[1..] {
        anyhow::ensure!(
            fp == &first_fp,
            "work directory {} was made with other settings than {} ({}); only slices of one run can be merged",
            w.root.display(),
            opened[0].0.root.display(),
            first_fp.differences(fp)
        );
    }
    let first = &opened[0].0;
    let scfg: ShardsConfig = run_config::load(&first.config_path())?;
    let done: std::collections::BTreeSet<u32> = opened
        .iter()
        .map(|(w, _)| w.all_done())
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .map(|d| d.ordinal)
        .collect();
    let missing = first_fp.input_count as usize - done.len();
    if missing > 0 && !m.quiet {
        eprintln!("tritter-gpu: warning: {missing} of {} input shards are not finished in these work directories; merging what is there", first_fp.input_count);
    }
    let cwd = run_config::current_dir()?;
    let global = GlobalConfig {
        cwd: cwd.clone(),
        language: crate::filters::canonical_language(&first_fp.filters.language),
        work_dirs: m.work_dirs.clone(),
        input_count: first_fp.input_count,
        output_dir: m.output_dir.clone(),
        dry_run: m.dry_run,
        rejects: m.rejects.clone(),
        max_samples: first_fp.max_samples,
        near: scfg.near.clone(),
        clusters: m.clusters.clone(),
        decontam: match (&scfg.decontam, &scfg.decontam_description) {
            (Some(d), Some(description)) => Some(GlobalDecontam {
                flag_only: d.flag_only,
                report: m.decontam_report.clone(),
                description: description.clone(),
            }),
            _ => None,
        },
        decontam_skipped: scfg.decontam_skipped,
        partitions: m.partitions,
        output_shards: m.output_shards,
        format: m.format,
        backend: scfg.backend,
        report_html: m.report_html.clone(),
        // As the slices counted phase 1, so a merged run's stats equal one
        // run's (a contradicting flag is an error).
        tokens: m.tokens.resolve(scfg.tokens.as_ref())?,
        dedup: None,
    };
    if m.plan_only {
        steps::prepare(first, &global)?;
        println!("{}", serde_json::to_string_pretty(&plan_json(first)?)?);
        return Ok(0);
    }
    run_global(
        first,
        &global,
        Some(started),
        None,
        serde_json::Value::Null,
        "merge",
        m.quiet,
        true,
    )
}

/// The plan of a work dir, as `run-step --plan` prints it: every step with
/// its task count (`shards` only where phase 1 was planned in it, the global
/// steps only where they were).
fn plan_json(work: &WorkDir) -> Result<serde_json::Value> {
    let mut steps_list = Vec::new();
    if work.config_path().exists() || dedup_run::is_dedup_work_dir(work) {
        let (_, fp) = WorkDir::open_existing(&work.root)?;
        steps_list.push(steps::StepSpec {
            name: steps::SHARDS.to_string(),
            tasks: fp.input_count,
        });
    }
    let global_config = work.global_dir().join("config.json");
    if global_config.exists() {
        let g: GlobalConfig = run_config::load(&global_config)?;
        steps_list.extend(steps::global_plan(&g));
    }
    Ok(serde_json::json!({
        "work_dir": work.root,
        "steps": steps_list,
    }))
}

/// What `tritter-gpu run-step` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepAction {
    /// Print the plan.
    Plan,
    /// Exit 0 when the task is done, 1 when not.
    Status { step: String, task: u32 },
    /// Run the task (nothing when it is done) and commit it.
    Run { step: String, task: u32 },
}

/// `tritter-gpu run-step --work-dir W ...`: one task of a planned run, in
/// this process.
pub fn run_step(work_dir: &Path, action: &StepAction, quiet: bool) -> Result<i32> {
    let work = WorkDir {
        root: work_dir.to_path_buf(),
    };
    match action {
        StepAction::Plan => {
            println!("{}", serde_json::to_string_pretty(&plan_json(&work)?)?);
            Ok(0)
        }
        StepAction::Status { step, task } => {
            let done = task_done(&work, step, *task)?;
            println!("{}", if done { "done" } else { "not done" });
            Ok(if done { 0 } else { 1 })
        }
        StepAction::Run { step, task } if step == steps::SHARDS => {
            work_lock::lock_task(&work.root, step, *task)?;
            if dedup_run::is_dedup_work_dir(&work) {
                return dedup_run::run_shard_task(&work, *task, quiet);
            }
            run_shard_task(&work, *task, quiet)
        }
        StepAction::Run { step, task } => {
            work_lock::lock_task(&work.root, step, *task)?;
            if task_done(&work, step, *task)? {
                if !quiet {
                    eprintln!("tritter-gpu: task {task} of step {step} is already done");
                }
                return Ok(0);
            }
            let dir = work.global_dir();
            let g: GlobalConfig = run_config::load(&dir.join("config.json"))?;
            std::env::set_current_dir(&g.cwd)
                .with_context(|| format!("cannot enter {}", g.cwd.display()))?;
            if !dir.join("parts.json").exists() {
                check_phase1_over(&g)?;
            }
            let ctx = GlobalContext::open(&dir)?;
            steps::run_task(&ctx, step, *task)?;
            Ok(0)
        }
    }
}

/// Before the first global task fixes the list of parts: every input shard
/// must be done or failed (or `--max-samples` reached), else the global steps
/// would silently leave out shards still running elsewhere.
fn check_phase1_over(g: &GlobalConfig) -> Result<()> {
    let works: Vec<WorkDir> = g
        .work_dirs
        .iter()
        .map(|d| WorkDir { root: g.resolve(d) })
        .collect();
    let mut kept = 0u64;
    let mut missing = Vec::new();
    for o in 0..g.input_count {
        let mut state = None;
        for w in &works {
            if let Some(d) = w.done(o)? {
                kept += d.kept;
                state = Some(true);
                break;
            }
            if w.failed_path(o).exists() {
                state = Some(false);
            }
        }
        if state.is_none() {
            missing.push(o);
        }
    }
    if let (Some(&first), false) = (missing.first(), g.max_samples.is_some_and(|n| kept >= n)) {
        bail!(
            "{} of {} input shard(s) are not done (first: shard {first}); run every task of step shards before the global steps",
            missing.len(),
            g.input_count
        );
    }
    Ok(())
}

/// Is task `task` of `step` done in `work`?
pub fn task_done(work: &WorkDir, step: &str, task: u32) -> Result<bool> {
    if step == steps::SHARDS {
        return Ok(work.done(task)?.is_some());
    }
    steps::is_done(&work.global_dir(), step, task)
}

/// Step `shards`, task `ordinal`: phase 1 of one input shard.
fn run_shard_task(work: &WorkDir, ordinal: u32, quiet: bool) -> Result<i32> {
    if work.done(ordinal)?.is_some() {
        if !quiet {
            eprintln!("tritter-gpu: shard {ordinal} is already done");
        }
        return Ok(0);
    }
    let scfg: ShardsConfig = run_config::load(&work.config_path())?;
    std::env::set_current_dir(&scfg.cwd)
        .with_context(|| format!("cannot enter {}", scfg.cwd.display()))?;
    let root = scfg.resolve(&work.root);
    let decontam = scfg.decontam.clone();
    let p = open_phase1(
        scfg,
        decontam.as_ref().map(|d| (d, true)),
        Some(root),
        false,
        true,
    )?;
    let Some(input) = p.resolved.files.iter().find(|i| i.ordinal == ordinal) else {
        bail!(
            "the run has {} input shard(s); there is no shard {ordinal}",
            p.resolved.files.len()
        );
    };
    let mut remaining = match p.cfg.max_samples {
        None => None,
        Some(n) => {
            // --max-samples takes records in ordinal order: every earlier
            // shard must be done to know what is left.
            let mut kept = 0;
            for o in 0..ordinal {
                match p.work.done(o)? {
                    Some(d) => kept += d.kept,
                    None => {
                        bail!("with --max-samples, shards run in order: shard {o} is not done yet")
                    }
                }
            }
            Some(n.saturating_sub(kept))
        }
    };
    if remaining == Some(0) {
        if !quiet {
            eprintln!(
                "tritter-gpu: --max-samples is reached before shard {ordinal}; nothing to do"
            );
        }
        return Ok(0);
    }
    let progress = Progress::new(true, None);
    let ctx = p.stages.context(&p.work, &p.cfg, &progress);
    let fetcher = inputs::ShardFetcher::new(&p.resolved, &[ordinal], &p.cfg.remote);
    let outcome = fetcher
        .ready(input)
        .and_then(|()| process_shard::process_shard(input, &ctx, &mut remaining));
    match settle_shard(&p.work, input, outcome, p.cfg.keep_going)? {
        None => Ok(0),
        Some(f) => {
            eprintln!(
                "tritter-gpu: skipping {}: {}",
                input.path.display(),
                f.error
            );
            Ok(1)
        }
    }
}

/// One shard's outcome settled: `None` when it is done; the failure, recorded
/// in the work directory, when `--keep-going` may skip the input; else the
/// run's error.
fn settle_shard<T>(
    work: &WorkDir,
    input: &crate::sources::InputFile,
    outcome: Result<T>,
    keep_going: bool,
) -> Result<Option<FailedInput>> {
    match outcome {
        Ok(_) => Ok(None),
        Err(e) if keep_going && input_error(&e) => {
            let f = FailedInput {
                input: input.path.display().to_string(),
                error: format!("{e:#}"),
            };
            work.mark_failed(input.ordinal, &f)?;
            Ok(Some(f))
        }
        Err(e) => Err(input_failed(e, &input.path)),
    }
}

/// Whether `--keep-going` may skip the input that failed with `e`: not when
/// the circuit breaker tripped, nor when our own disk (work dir, outputs)
/// failed, which no other input would escape.
fn input_error(e: &anyhow::Error) -> bool {
    !crate::remote::is_fatal(e) && crate::output::write_error::local_write_failure(e).is_none()
}

/// The error of a run stopped while processing `input`: a failure to write
/// our own files says so and what to do; an unreadable input points at
/// `--keep-going`.
fn input_failed(e: anyhow::Error, input: &std::path::Path) -> anyhow::Error {
    use crate::output::write_error::{advice, local_write_failure};
    match local_write_failure(&e) {
        Some(_) => {
            let advice = advice(&e);
            e.context(format!(
                "stopped at input {}: our own disk failed, not the input (--keep-going skips only \
                 unreadable inputs); {advice}",
                input.display()
            ))
        }
        None if crate::remote::is_fatal(&e) => e,
        None => e.context(format!(
            "input {} failed (pass --keep-going to skip unreadable inputs)",
            input.display()
        )),
    }
}
