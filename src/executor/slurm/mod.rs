//! The Slurm executor: the cluster schedules, we only submit and track.
//!
//! A run is planned exactly as `curate --plan-only` plans it (the stored
//! configuration in the work directory), then every step with tasks not
//! yet done becomes a job array: `shards` (phase 1, one task per input
//! shard), then each partitioned global step. Array task `a` of `N` runs
//! its share of the step's tasks with `tritter-gpu run-step`, which reads
//! and writes only the shared work directory and commits each task with the
//! same done marker as a local run; so the bytes are those of a local run,
//! and a run can be started on the cluster and finished locally or the
//! other way round. Steps are chained with `--dependency=afterok:` (and
//! `--kill-on-invalid-dep=yes`, so a failed step cancels what follows
//! instead of leaving it pending forever).
//!
//! Files: `W/slurm/STEP*.sbatch` (the scripts, readable, rerunnable),
//! `W/slurm/logs/STEP-JOB_INDEX.out` (one log per array task),
//! `W/slurm/jobs.json` (the ledger: what was submitted).
//!
//! The habits follow datatrove's Slurm executor
//! (`src/datatrove/executor/slurm.py`): scripts written before `sbatch`,
//! completed ranks skipped, arrays split at `MaxArraySize`, stages chained
//! by `afterok`. Where we differ: our global phase is partitioned too, and
//! the output does not depend on the number of tasks.

pub mod client;
pub mod config;
pub mod ledger;
pub mod resume;
pub mod script;
pub mod status;

use crate::pipeline::{self, work_dir::WorkDir};
use anyhow::{bail, Context, Result};
pub use config::SlurmConfig;
use ledger::{ArrayJob, Ledger, StepJobs, Submission};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default `MaxArraySize` of Slurm, when the cluster's cannot be read.
const DEFAULT_MAX_ARRAY: u32 = 1001;

pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `curate --executor slurm`: plans the run in its work directory, submits
/// what is not done, and with `wait` blocks until the run has finished.
/// Returns the exit code: 0 submitted (or, with `wait`, the output is
/// complete), 1 complete but inputs were skipped under `--keep-going`,
/// 2 the run stopped with tasks not done.
pub fn curate(
    cfg: &pipeline::CurateConfig,
    slurm: &SlurmConfig,
    wait: bool,
    quiet: bool,
) -> Result<i32> {
    client::check_available()?;
    if cfg.dry_run {
        bail!("--dry-run runs in this process; drop --executor slurm for a dry run");
    }
    if !cfg.shard.is_all() {
        bail!("--shard splits a run by hand; with --executor slurm the cluster spreads the run (drop --shard, set --slurm-tasks)");
    }
    let (root, _) = pipeline::store_curate_plan(cfg)?;
    submit_planned(&root, slurm, wait, quiet)
}

/// `dedup --executor slurm`: as [`curate`], for a `dedup` planned in its
/// `--work-dir`.
pub fn dedup(
    cfg: &pipeline::dedup_run::DedupRunConfig,
    slurm: &SlurmConfig,
    wait: bool,
    quiet: bool,
) -> Result<i32> {
    client::check_available()?;
    if cfg.dry_run {
        bail!("--dry-run runs in this process; drop --executor slurm for a dry run");
    }
    let (root, _) = pipeline::dedup_run::store_plan(cfg)?;
    let code = submit_planned(&root, slurm, wait, quiet)?;
    // With --wait, the run's own exit code (bad input lines) once it is over.
    if wait && code == 0 {
        return pipeline::dedup_run::exit_code(&root.join("global"), &cfg.input);
    }
    Ok(code)
}

/// Submits what is not done of the run planned in `root`.
fn submit_planned(root: &Path, slurm: &SlurmConfig, wait: bool, quiet: bool) -> Result<i32> {
    let work_dir = std::fs::canonicalize(root)
        .with_context(|| format!("cannot resolve the work directory {}", root.display()))?;
    let mut ledger = match Ledger::load(&work_dir)? {
        Some(l) => {
            refuse_if_active(&work_dir)?;
            Ledger {
                config: slurm.clone(),
                submissions: l.submissions,
            }
        }
        None => Ledger {
            config: slurm.clone(),
            submissions: Vec::new(),
        },
    };
    submit_pending(&work_dir, &mut ledger, quiet)?;
    finish(&work_dir, wait, quiet)
}

/// After a submission: return at once, or wait for the end.
fn finish(work_dir: &Path, wait: bool, quiet: bool) -> Result<i32> {
    if !wait {
        if !quiet {
            eprintln!(
                "tritter-gpu: follow it with `tritter-gpu slurm status --work-dir {}`",
                work_dir.display()
            );
        }
        return Ok(0);
    }
    wait_for(work_dir, quiet)
}

/// Refuses a local `curate` on a work directory whose Slurm jobs are still
/// queued or running. The submitter does not hold the work-dir lock while
/// its arrays wait in the queue (the tasks take the lock shared when they
/// start), so without this check a local run could start in the gap and
/// write the same step files as the array tasks that start after it. Where
/// the work dir has no job ledger or no Slurm client is installed, no jobs
/// of ours can be live and nothing is checked.
pub fn refuse_local_run_while_jobs_are_live(work_dir: &Path) -> Result<()> {
    if Ledger::load(work_dir)?.is_none() || client::check_available().is_err() {
        return Ok(());
    }
    let st = status::collect(work_dir)?;
    if st.active() {
        bail!(
            "the work directory {} is being run by Slurm jobs that are still queued or running ({}); a local run beside them would write the same files: wait for them (`tritter-gpu slurm status --work-dir {}`), or scancel them and rerun",
            work_dir.display(),
            st.line(),
            work_dir.display()
        );
    }
    Ok(())
}

/// Refuses a new submission while jobs of an earlier one are queued (two
/// arrays running the same tasks would only waste the cluster).
fn refuse_if_active(work_dir: &Path) -> Result<()> {
    let st = status::collect(work_dir)?;
    if st.active() {
        bail!(
            "jobs of an earlier submission from {} are still queued or running ({}); wait for them (`tritter-gpu slurm status --work-dir {}`) or scancel them first",
            work_dir.display(),
            st.line(),
            work_dir.display()
        );
    }
    Ok(())
}

/// Submits one job array (or several, split at `MaxArraySize`) per step
/// with tasks not done, chained by `afterok`, and records them in the
/// ledger. Prints `STEP JOB_ID` per array on stdout.
pub fn submit_pending(work_dir: &Path, ledger: &mut Ledger, quiet: bool) -> Result<()> {
    let cfg = ledger.config.clone();
    let plan = pipeline::stored_plan(work_dir)?;
    let work = WorkDir {
        root: work_dir.to_path_buf(),
    };
    let dir = ledger::slurm_dir(work_dir);
    std::fs::create_dir_all(dir.join("logs"))
        .with_context(|| format!("cannot create {}", dir.join("logs").display()))?;
    let max_array = cfg
        .max_array_size
        .or_else(client::max_array_size)
        .unwrap_or(DEFAULT_MAX_ARRAY);
    let round = ledger.submissions.len();
    let mut submission = Submission {
        submitted_at: now_secs(),
        done_at_submit: 0,
        steps: Vec::new(),
    };
    let mut previous: Vec<String> = Vec::new();
    for spec in plan["steps"].as_array().into_iter().flatten() {
        let step = spec["name"].as_str().unwrap_or_default().to_string();
        let tasks = spec["tasks"].as_u64().unwrap_or(0) as u32;
        let mut pending = Vec::new();
        for t in 0..tasks {
            let finished = pipeline::task_done(&work, &step, t)?
                || (step == pipeline::steps::SHARDS && work.failed_path(t).exists());
            if finished {
                submission.done_at_submit += 1;
            } else {
                pending.push(t);
            }
        }
        if pending.is_empty() {
            if !quiet {
                eprintln!("tritter-gpu: step {step}: all {tasks} task(s) done, not submitted");
            }
            continue;
        }
        let slots = cfg.tasks.max(1).min(pending.len() as u32);
        let gpus = if step == pipeline::steps::SHARDS {
            cfg.gpus_per_task
        } else {
            0
        };
        let chunks = script::chunks(slots, max_array);
        let mut arrays = Vec::new();
        for (k, chunk) in chunks.iter().enumerate() {
            let name = script_name(&step, round, k, chunks.len());
            let path = dir.join(&name);
            let text = script::render(&cfg, work_dir, &step, &pending, slots, chunk, gpus);
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut args = Vec::new();
            if !previous.is_empty() {
                args.push(format!("--dependency=afterok:{}", previous.join(":")));
                args.push("--kill-on-invalid-dep=yes".to_string());
            }
            args.extend(cfg.extra.iter().cloned());
            let job_id = client::sbatch(&args, &path).with_context(|| {
                format!(
                    "cannot submit step {step} (the script is {})",
                    path.display()
                )
            })?;
            if !quiet {
                eprintln!(
                    "tritter-gpu: step {step}: job {job_id}, {} task(s) over {} array task(s){}",
                    pending.len(),
                    chunk.count,
                    if previous.is_empty() {
                        String::new()
                    } else {
                        format!(", after job(s) {}", previous.join(" "))
                    }
                );
            }
            println!("{step} {job_id}");
            arrays.push(ArrayJob {
                job_id,
                offset: chunk.offset,
                count: chunk.count,
                script: path,
            });
        }
        previous = arrays.iter().map(|a| a.job_id.clone()).collect();
        submission.steps.push(StepJobs {
            step,
            tasks: pending,
            slots,
            arrays,
        });
        // Saved after every step: a later rejected submission leaves the
        // ledger naming the jobs already queued.
        let mut l = ledger.clone();
        l.submissions.push(submission.clone());
        l.save(work_dir)?;
    }
    ledger.submissions.push(submission);
    ledger.save(work_dir)
}

/// `STEP.sbatch`, `STEP.resume-2.sbatch`, `STEP.part-1.sbatch`, ...
fn script_name(step: &str, round: usize, chunk: usize, chunks: usize) -> String {
    let mut n = step.to_string();
    if round > 0 {
        n.push_str(&format!(".resume-{round}"));
    }
    if chunks > 1 {
        n.push_str(&format!(".part-{chunk}"));
    }
    n.push_str(".sbatch");
    n
}

/// Seconds between polls of `squeue` and the markers
/// (`TRITTER_SLURM_POLL_SECONDS`, default 10).
fn poll_interval() -> Duration {
    let secs = std::env::var("TRITTER_SLURM_POLL_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(10.0);
    Duration::from_secs_f64(secs)
}

/// Polls until every task is done, or nothing of the run is queued any
/// more. Exit code: 0 complete, 1 complete with inputs skipped under
/// `--keep-going`, 2 stopped with tasks not done (the status is printed).
pub fn wait_for(work_dir: &Path, quiet: bool) -> Result<i32> {
    let mut last = String::new();
    loop {
        let st = status::collect(work_dir)?;
        let line = st.line();
        if !quiet && line != last {
            eprintln!("tritter-gpu: {line}");
        }
        last = line;
        if st.complete() {
            let work = WorkDir {
                root: work_dir.to_path_buf(),
            };
            let skipped = work.all_failed()?.len();
            if skipped > 0 {
                eprintln!(
                    "tritter-gpu: the run is complete; {skipped} input(s) failed and were skipped (--keep-going)"
                );
                return Ok(1);
            }
            if !quiet {
                eprintln!("tritter-gpu: the run is complete");
            }
            return Ok(0);
        }
        if !st.active() {
            let cfg = Ledger::load(work_dir)?.map(|l| l.config);
            eprint!(
                "{}",
                st.render(
                    cfg.as_ref().and_then(|c| c.mem.as_deref()),
                    cfg.as_ref().and_then(|c| c.time.as_deref())
                )
            );
            eprintln!(
                "tritter-gpu: the run stopped with tasks not done; fix the cause, then `tritter-gpu slurm resume --work-dir {}`",
                work_dir.display()
            );
            return Ok(2);
        }
        std::thread::sleep(poll_interval());
    }
}

/// The work directory as given, made absolute.
pub fn absolute(work_dir: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(work_dir)
        .with_context(|| format!("cannot open the work directory {}", work_dir.display()))
}
