//! The run as a plan of steps, each split into independent tasks that read
//! and write only the work directory, so that any executor can run them: the
//! local one here (every task of a step on the rayon pool, then the next
//! step), or a cluster scheduler running `tritter-gpu run-step --work-dir W
//! --step NAME --task I` once per task (a job array per step, each step
//! depending on the previous one).
//!
//! ## The plan
//! | step | tasks | partitioned by | reads | writes |
//! |---|---|---|---|---|
//! | `shards` | one per input shard | input ordinal | the input | part + sidecars, `done.json` (phase 1, [`super::process_shard`]) |
//! | `exact` | P | MD5 range | every shard's slice of sorted keys | losers |
//! | `lsh` | P | band-hash range | every shard's slice of sorted bands, losers, preferences | candidate edges, bucketed by edge |
//! | `verify` | P | hash of the edge | every `lsh` task's bucket, signatures | verified edges |
//! | `components` | 1 | - | verified edges, preferences | components (union-find) |
//! | `clusters` | P | component index mod P | components, candidates' texts (or signatures) | stars: kept and removed files |
//! | `output` | output shards | survivor range | parts, losers, stars, decontamination hits | output files, phase-2 rejects, stats |
//! | `report` | 1 | - | everything above | rejects, clusters, decontamination report, stats file |
//!
//! `lsh`, `verify`, `components` and `clusters` exist only with near dedup.
//! P is `--partitions` (default [`DEFAULT_PARTITIONS`]); the output does not
//! depend on it.
//!
//! ## Tasks and markers
//! A global task writes its files under `WORK/global/STEP/` through atomic
//! renames, then its marker `task-NNNNN.done.json` ([`TaskDone`], with its
//! wall and CPU seconds and a small summary), last. A task is done exactly when
//! its marker exists ([`is_done`]); a task killed at any point left no marker
//! and is simply run again. Tasks of one step never write the same file, so
//! they can run at the same time in separate processes on one shared work
//! directory; a step's tasks may start only when every task of the steps
//! before it is done.
//!
//! DETERMINISM: each step's result is the same for any P and any order of
//! its tasks (see each step's notes), and the report merges the tasks'
//! summaries in task order.

pub mod clusters;
pub mod components;
pub mod dedup_output;
pub mod dedup_report;
pub mod exact;
pub mod lsh;
pub mod output;
pub mod output_piece;
pub mod report;
pub mod verify;
pub mod view;

use super::run_config::{self, GlobalConfig};
use super::work_dir::WorkDir;
use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use view::GlobalView;

/// Partitions of the global steps when `--partitions` is not given.
pub const DEFAULT_PARTITIONS: u32 = 16;

pub const SHARDS: &str = "shards";
pub const EXACT: &str = "exact";
pub const LSH: &str = "lsh";
pub const VERIFY: &str = "verify";
pub const COMPONENTS: &str = "components";
pub const CLUSTERS: &str = "clusters";
pub const OUTPUT: &str = "output";
pub const REPORT: &str = "report";

/// One step of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpec {
    pub name: String,
    pub tasks: u32,
}

/// The global steps of a run, in order.
pub fn global_plan(cfg: &GlobalConfig) -> Vec<StepSpec> {
    let p = cfg.partitions;
    // `dedup` removes near-duplicates only (identical files are
    // near-duplicates with similarity 1; files without words never are).
    let mut steps = if cfg.dedup.is_some() {
        vec![]
    } else {
        vec![(EXACT, p)]
    };
    if cfg.near.is_some() {
        steps.extend([(LSH, p), (VERIFY, p), (COMPONENTS, 1), (CLUSTERS, p)]);
    }
    steps.push((OUTPUT, cfg.output_shards.unwrap_or(1)));
    steps.push((REPORT, 1));
    steps
        .into_iter()
        .map(|(name, tasks)| StepSpec {
            name: name.to_string(),
            tasks,
        })
        .collect()
}

/// The commit marker of one global task.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskDone {
    pub step: String,
    pub task: u32,
    pub tasks: u32,
    /// Seconds since the Unix epoch when the task started.
    pub started_unix: f64,
    pub wall_seconds: f64,
    /// CPU seconds of the process while the task ran, when the task had the
    /// process to itself (`run-step`); `None` under the local executor, which
    /// records CPU seconds per step instead ([`StepTiming`]).
    pub cpu_seconds: Option<f64>,
    /// What the task found (counts), merged by the report.
    pub summary: serde_json::Value,
}

/// Wall and CPU seconds of a whole step under the local executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepTiming {
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
}

/// The invocation that runs the steps locally: its command (`curate`,
/// `merge`), command line and start date, for the stats file.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub command: &'static str,
    pub argv: Vec<String>,
    pub started_at: Option<String>,
}

/// What every global task gets: the stored configuration, the parts, the
/// tables shared by the tasks of one process, and the invocation's timing.
pub struct GlobalContext {
    pub cfg: GlobalConfig,
    /// `WORK/global`.
    pub dir: PathBuf,
    pub view: GlobalView,
    /// When the invoking command started (local runs), for the stats.
    pub started: Option<Instant>,
    /// Seconds phase 1 took in this invocation (local runs).
    pub phase1_seconds: Option<f64>,
    /// The process's CPU seconds when phase 1 ended (local runs).
    pub phase1_cpu_seconds: Option<f64>,
    /// The command this invocation runs (local runs), for the stats.
    pub identity: Option<Invocation>,
    /// Download statistics of phase 1 in this invocation (local runs).
    pub transfers: serde_json::Value,
    /// Whether the one-task-per-process `run-step` runs this task.
    pub own_process: bool,
    /// Whether a task's files are synced before its marker (false only in
    /// a scratch work directory that is removed after the run, where a
    /// crash loses the directory anyway).
    pub durable: bool,
}

impl GlobalContext {
    /// Opens the global directory of a planned run.
    pub fn open(dir: &Path) -> Result<GlobalContext> {
        let cfg: GlobalConfig = run_config::load(&dir.join("config.json"))?;
        let view = GlobalView::open(dir, &cfg)?;
        Ok(GlobalContext {
            cfg,
            dir: dir.to_path_buf(),
            view,
            started: None,
            phase1_seconds: None,
            phase1_cpu_seconds: None,
            identity: None,
            transfers: serde_json::Value::Null,
            own_process: true,
            durable: true,
        })
    }

    /// Single records of part `part` (an index into the view's parts) by
    /// position: from its part file, or from `dedup`'s input lines.
    pub fn record_lookup(&self, part: usize) -> Result<super::record_lookup::RecordLookup> {
        let p = &self.view.parts[part];
        let input = self.cfg.dedup.as_ref().map(|d| self.cfg.resolve(&d.input));
        super::record_lookup::RecordLookup::open(&p.work(), p.ordinal(), input.as_deref())
    }

    pub fn step_dir(&self, step: &str) -> PathBuf {
        self.dir.join(step)
    }

    /// `WORK/global/STEP/task-NNNNN.EXT`.
    pub fn task_file(&self, step: &str, task: u32, ext: &str) -> PathBuf {
        self.step_dir(step).join(format!("task-{task:05}.{ext}"))
    }

    pub fn tasks_of(&self, step: &str) -> u32 {
        global_plan(&self.cfg)
            .iter()
            .find(|s| s.name == step)
            .map(|s| s.tasks)
            .unwrap_or(0)
    }

    /// The markers of every task of `step`, in task order; an error names the
    /// first task that is not done.
    pub fn done_markers(&self, step: &str) -> Result<Vec<TaskDone>> {
        let n = self.tasks_of(step);
        let mut out = Vec::with_capacity(n as usize);
        for t in 0..n {
            match read_marker(&self.task_file(step, t, "done.json"))? {
                Some(d) => out.push(d),
                None => bail!(
                    "task {t} of step {step} is not done (run the steps in order: `tritter-gpu run-step --work-dir W --plan` lists them)"
                ),
            }
        }
        Ok(out)
    }

    /// Each task's summary of `step`, in task order.
    pub fn summaries<T: for<'de> Deserialize<'de>>(&self, step: &str) -> Result<Vec<T>> {
        self.done_markers(step)?
            .into_iter()
            .map(|d| {
                serde_json::from_value(d.summary)
                    .with_context(|| format!("the marker of task {} of {step} is corrupt", d.task))
            })
            .collect()
    }
}

fn read_marker(path: &Path) -> Result<Option<TaskDone>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is corrupt; delete it to run that task again",
                path.display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The marker of task `task` of global step `step`, if it is done.
pub fn marker(global_dir: &Path, step: &str, task: u32) -> Result<Option<TaskDone>> {
    read_marker(
        &global_dir
            .join(step)
            .join(format!("task-{task:05}.done.json")),
    )
}

/// Is task `task` of global step `step` done?
pub fn is_done(global_dir: &Path, step: &str, task: u32) -> Result<bool> {
    Ok(read_marker(
        &global_dir
            .join(step)
            .join(format!("task-{task:05}.done.json")),
    )?
    .is_some())
}

/// Runs one global task and commits its marker. Its outputs are committed by
/// the task itself before it returns its summary.
pub fn run_task(ctx: &GlobalContext, step: &str, task: u32) -> Result<()> {
    let tasks = ctx.tasks_of(step);
    if tasks == 0 {
        bail!(
            "this run has no step {step:?}; its steps are {}",
            global_plan(&ctx.cfg)
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if task >= tasks {
        bail!("step {step} has {tasks} task(s) (0..{tasks}); there is no task {task}");
    }
    super::cleanup::create_dir_all(&ctx.step_dir(step))
        .with_context(|| format!("cannot create {}", ctx.step_dir(step).display()))?;
    let started_unix = unix_now();
    let wall = Instant::now();
    let cpu = cpu_seconds();
    let summary = match step {
        EXACT => exact::run(ctx, task, tasks)?,
        LSH => lsh::run(ctx, task, tasks)?,
        VERIFY => verify::run(ctx, task, tasks)?,
        COMPONENTS => components::run(ctx)?,
        CLUSTERS => clusters::run(ctx, task, tasks)?,
        OUTPUT if ctx.cfg.dedup.is_some() => dedup_output::run(ctx)?,
        OUTPUT => output::run(ctx, task, tasks)?,
        REPORT if ctx.cfg.dedup.is_some() => dedup_report::run(ctx)?,
        REPORT => report::run(ctx)?,
        other => bail!("unknown step {other:?}"),
    };
    // The task's files were renamed into place unsynced; make them durable
    // at once, before the marker that commits them.
    if ctx.durable {
        crate::output::atomic::sync_filesystem(&ctx.dir)?;
    }
    let done = TaskDone {
        step: step.to_string(),
        task,
        tasks,
        started_unix,
        wall_seconds: round_ms(wall.elapsed().as_secs_f64()),
        cpu_seconds: ctx.own_process.then(|| round_ms(cpu_seconds() - cpu)),
        summary,
    };
    crate::output::atomic::write_atomic_unsynced(
        &ctx.task_file(step, task, "done.json"),
        &serde_json::to_vec(&done)?,
    )
}

/// The local executor: every step in order, the tasks of a step on the
/// rayon pool, skipping tasks already done (a resumed run).
pub fn run_local(ctx: &GlobalContext, quiet: bool) -> Result<()> {
    for step in global_plan(&ctx.cfg) {
        let wall = Instant::now();
        let cpu = cpu_seconds();
        let todo: Vec<u32> = (0..step.tasks)
            .filter(|&t| !matches!(is_done(&ctx.dir, &step.name, t), Ok(true)))
            .collect();
        if todo.is_empty() {
            continue;
        }
        let bar =
            crate::pipeline::progress::StepBar::for_step(quiet, todo.len() as u64, &step.name);
        todo.par_iter()
            .with_max_len(1)
            .try_for_each(|&t| {
                run_task(ctx, &step.name, t)?;
                bar.inc(1);
                Ok::<(), anyhow::Error>(())
            })
            .with_context(|| format!("step {}", step.name))?;
        bar.finish();
        crate::output::atomic::write_atomic_unsynced(
            &ctx.step_dir(&step.name).join("step.json"),
            &serde_json::to_vec(&StepTiming {
                wall_seconds: round_ms(wall.elapsed().as_secs_f64()),
                cpu_seconds: round_ms(cpu_seconds() - cpu),
            })?,
        )?;
    }
    Ok(())
}

/// Prepares `WORK/global` for a run with `cfg`: a directory made with other
/// settings, or holding a finished run (`report` done), is cleared, so that a
/// new invocation recomputes the global steps while a killed one resumes
/// them.
pub fn prepare(work: &WorkDir, cfg: &GlobalConfig) -> Result<PathBuf> {
    let dir = work.global_dir();
    let config_path = dir.join("config.json");
    let same = match std::fs::read(&config_path) {
        Ok(bytes) => serde_json::from_slice::<GlobalConfig>(&bytes).ok().as_ref() == Some(cfg),
        Err(_) => false,
    };
    let stale = !same || is_done(&dir, REPORT, 0)? || !view::parts_current(&dir, cfg)?;
    if stale && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    super::cleanup::create_dir_all(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    if !config_path.exists() {
        run_config::store(&config_path, cfg)?;
    }
    Ok(dir)
}

/// Process CPU seconds (user + system) so far.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct we pass, which is plain data
    // and zero-initialised.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return 0.0;
        }
        u
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

pub(crate) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| round_ms(d.as_secs_f64()))
        .unwrap_or(0.0)
}

pub fn round_ms(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}
