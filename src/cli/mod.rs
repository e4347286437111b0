//! Command line: flags and dispatch. `main` parses, runs and maps the result
//! to an exit code: 0 success, 1 some inputs failed (with --keep-going),
//! 2 fatal error. Errors are printed once, behind the program name, with
//! their whole context chain.

pub mod backends_cmd;
pub mod decontam_flags;
pub mod flags;
pub mod mix_flags;
pub mod near_flags;
pub mod remote_flags;
pub mod slurm_flags;
pub mod tokens_flags;

use crate::pipeline::{self, shard_spec::ShardSpec, CurateConfig};
use anyhow::{Context, Result};
use clap::Parser;
use flags::{Command, CurateArgs, MergeArgs};

/// Parses the command line, runs it and returns the exit code.
pub fn main() -> i32 {
    let cli = match flags::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if let Some(msg) = negative_number(&e) {
                eprintln!("tritter-gpu: {msg}");
                return 2;
            }
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    crate::pipeline::interrupt::install();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            // A closed pipe (`| head`) is not an error.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return 0;
            }
            let msg = format!("{e:#}");
            match crate::output::write_error::local_write_failure(&e) {
                // A failure of our own disk outside phase 1 (which says it
                // itself): say what to do.
                Some(_) if !msg.contains("our own disk failed") => eprintln!(
                    "tritter-gpu: {msg}; {}",
                    crate::output::write_error::advice(&e)
                ),
                _ => eprintln!("tritter-gpu: {msg}"),
            }
            2
        }
    }
}

/// Clap reads `--min-stars -1` as an unknown flag `-1`; every number flag
/// of this tool is a count or size (>= 0), so we say that instead.
fn negative_number(e: &clap::Error) -> Option<String> {
    if e.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let args: Vec<String> = std::env::args().collect();
    let at = args
        .iter()
        .position(|a| a.len() > 1 && a.starts_with('-') && a[1..].parse::<f64>().is_ok())?;
    let flag = at
        .checked_sub(1)
        .map(|p| args[p].as_str())
        .filter(|f| f.starts_with("--"))
        .unwrap_or("a flag");
    Some(format!(
        "{flag} {}: negative numbers are not accepted (counts, sizes and thresholds must be >= 0)",
        args[at]
    ))
}

/// More worker threads than this are refused: past a few per core they only
/// cost memory (a stack each) and start-up time, and a typo like `--threads
/// 100000` would hang spawning them.
fn max_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 4).max(256)
}

fn run(cli: flags::Cli) -> Result<i32> {
    crate::pipeline::messages::set_quiet(cli.global.quiet);
    if let Some(n) = cli.global.threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        anyhow::ensure!(
            n <= max_threads(),
            "--threads {n} is more than this machine can use ({} cores; at most {} threads): \
             pass a smaller number or leave it out for one per core",
            std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_threads()
        );
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .context("cannot start the thread pool")?;
    }
    match cli.command {
        Command::Subsets => print_subsets(),
        Command::Curate(args) if args.list_subsets => print_subsets(),
        Command::Curate(args) => curate(*args, &cli.global),
        Command::Merge(args) => merge(args, &cli.global),
        Command::Dedup(args) => near_flags::run_dedup(args, cli.global.backend, cli.global.quiet),
        Command::Decontaminate(args) => decontam_flags::run_decontaminate(args, cli.global.backend),
        Command::RunStep(args) => run_step(args, &cli.global),
        Command::Backends(args) => backends_cmd::run(args),
        Command::Report(args) => report(args),
        Command::Slurm(args) => slurm_flags::run(args, cli.global.quiet),
        Command::Tokens(args) => tokens_flags::run(args, cli.global.quiet),
        Command::Mix(args) => mix_flags::run(args, cli.global.quiet),
    }
}

fn report(args: flags::ReportArgs) -> Result<i32> {
    let page = crate::report::render_file(&args.stats, args.output.as_deref())?;
    crate::note!("tritter-gpu: report page {}", page.display());
    Ok(0)
}

fn print_subsets() -> Result<i32> {
    use std::io::Write;
    let text = crate::catalog::render(&crate::catalog::load()?);
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(0)
}

fn curate(args: CurateArgs, global: &flags::GlobalFlags) -> Result<i32> {
    let cfg = CurateConfig {
        sources: args.sources.clone(),
        filters: args.filters.to_config(&args.language),
        output_dir: args.output.clone(),
        work_dir: args.work_dir.clone(),
        max_samples: args.max_samples,
        dry_run: args.dry_run,
        content_store: args.content_store.clone(),
        remote: args.remote.to_config(),
        rejects: args.rejects.clone(),
        shard: args.shard.unwrap_or(ShardSpec::ALL),
        keep_going: args.keep_going,
        quiet: global.quiet,
        fresh: args.fresh,
        batch_size: args.batch_size as usize,
        near: near_stage(&args.stages)?,
        decontam: decontam_stage(&args.stages)?,
        backend: global.backend,
        partitions: args.steps.partitions,
        output_shards: args.steps.output_shards,
        format: args.steps.format,
        plan_only: args.steps.plan_only,
        report_html: args.report_html.report_html.clone(),
        repos: args.repos.to_config(),
        redact: args.repos.redact_mode(),
        tokens: Some(args.tokens.to_config()).filter(|t| t.mode != crate::tokens::TokensMode::Off),
    };
    crate::filters::validate::check(&cfg.filters)?;
    if args.slurm.executor == slurm_flags::Executor::Local && args.slurm.wait {
        anyhow::bail!(
            "--wait waits for cluster jobs: it needs --executor slurm (a local run always waits)"
        );
    }
    if !cfg.dry_run && !cfg.plan_only {
        crate::output::write_error::check_writable(&cfg.output_dir, "--output")?;
    }
    if args.slurm.executor == slurm_flags::Executor::Slurm {
        let slurm = args.slurm.to_config(global.backend)?;
        return crate::executor::slurm::curate(&cfg, &slurm, args.slurm.wait, global.quiet);
    }
    let work_root = cfg.work_root();
    if !cfg.dry_run && work_root.exists() {
        crate::executor::slurm::refuse_local_run_while_jobs_are_live(&work_root)?;
    }
    pipeline::run_curate(&cfg)
}

/// The near-dedup stage of `curate`/`merge`, validated.
fn near_stage(
    stages: &flags::GlobalStageFlags,
) -> Result<
    Option<(
        crate::dedup::near::NearDedupConfig,
        Option<std::path::PathBuf>,
    )>,
> {
    Ok(match stages.near_dedup {
        flags::Toggle::Off => None,
        flags::Toggle::On => Some((stages.near.to_config()?, stages.near.clusters.clone())),
    })
}

/// The decontamination stage of `curate`/`merge`, validated.
fn decontam_stage(stages: &flags::GlobalStageFlags) -> Result<Option<pipeline::DecontamSettings>> {
    let d = &stages.decontam;
    Ok(match stages.decontaminate {
        flags::Toggle::Off => None,
        flags::Toggle::On => Some(pipeline::DecontamSettings {
            config: d.to_config()?,
            explicit: !d.benchmarks.is_empty()
                || !d.benchmark_files.is_empty()
                || d.benchmark_dir.is_some(),
        }),
    })
}

fn merge(args: MergeArgs, global: &flags::GlobalFlags) -> Result<i32> {
    if !args.dry_run && !args.steps.plan_only {
        crate::output::write_error::check_writable(&args.output, "--output")?;
    }
    pipeline::run_merge(&pipeline::MergeConfig {
        work_dirs: args.work_dirs,
        output_dir: args.output,
        rejects: args.rejects,
        clusters: args.clusters,
        decontam_report: args.report,
        dry_run: args.dry_run,
        quiet: global.quiet,
        partitions: args.steps.partitions,
        output_shards: args.steps.output_shards,
        format: args.steps.format,
        plan_only: args.steps.plan_only,
        report_html: args.report_html.report_html,
        tokens: args.tokens.to_override(),
    })
}

fn run_step(args: flags::RunStepArgs, global: &flags::GlobalFlags) -> Result<i32> {
    let action = match (args.plan, args.step, args.task) {
        (true, _, _) => pipeline::StepAction::Plan,
        (false, Some(step), Some(task)) if args.status => {
            pipeline::StepAction::Status { step, task }
        }
        (false, Some(step), Some(task)) => pipeline::StepAction::Run { step, task },
        _ => anyhow::bail!("run-step needs --step NAME --task I, or --plan"),
    };
    pipeline::run_step(&args.work_dir, &action, global.quiet)
}
