//! Where a Slurm run stands: per step, tasks done / running / pending /
//! failed. The done markers in the work directory are the truth for "done"
//! (the same markers a local run writes); `squeue --states=all` says what
//! is still queued or running and, for recently ended jobs, how they ended;
//! a task that is neither done nor queued has failed, and its log (in
//! `W/slurm/logs/`) says why. Out-of-time and out-of-memory endings are
//! recognised from the job state or the log and named with the flag that
//! raises the limit.

use super::client::{self, QueuedTask};
use super::ledger::{self, Ledger};
use crate::pipeline::{self, work_dir::WorkDir};
use anyhow::Result;
use std::collections::HashMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Lines of a failed task's log that `status` shows.
const LOG_LINES: usize = 12;

/// How one task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    Done,
    /// Its input failed and was skipped under `--keep-going`.
    Skipped,
    Pending,
    Running,
    Failed(Failure),
    /// No submission of the ledger runs it.
    NotSubmitted,
}

/// A task that is not done and no longer queued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub task: u32,
    /// Slurm's job state when it still knows the job (FAILED, TIMEOUT,
    /// OUT_OF_MEMORY, CANCELLED, ...), else `ENDED`.
    pub state: String,
    /// What to do about it, when we recognise the cause.
    pub hint: Option<String>,
    pub log: Option<PathBuf>,
    /// The first lines of the task's part of the log.
    pub lines: Vec<String>,
}

/// One step of the plan.
#[derive(Clone, Debug, Default)]
pub struct StepStatus {
    pub name: String,
    pub tasks: u32,
    pub done: u32,
    pub skipped: u32,
    pub running: u32,
    pub pending: u32,
    pub not_submitted: u32,
    pub failed: Vec<Failure>,
}

/// The whole run.
#[derive(Clone, Debug)]
pub struct RunStatus {
    pub work_dir: PathBuf,
    pub steps: Vec<StepStatus>,
    pub job_ids: Vec<String>,
    /// Seconds since the latest submission, and tasks done then.
    pub since_submit: Option<(u64, u64)>,
}

impl RunStatus {
    /// Every task done (or skipped under `--keep-going`).
    pub fn complete(&self) -> bool {
        self.steps.iter().all(|s| s.done + s.skipped == s.tasks)
    }

    /// Some task is still pending or running.
    pub fn active(&self) -> bool {
        self.steps.iter().any(|s| s.running + s.pending > 0)
    }

    fn finished_tasks(&self) -> u64 {
        self.steps.iter().map(|s| (s.done + s.skipped) as u64).sum()
    }

    fn total_tasks(&self) -> u64 {
        self.steps.iter().map(|s| s.tasks as u64).sum()
    }

    /// A one-line summary (for `--wait`'s progress).
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .steps
            .iter()
            .map(|s| {
                let mut p = format!("{} {}/{}", s.name, s.done + s.skipped, s.tasks);
                if s.running > 0 {
                    let _ = write!(p, " ({} running)", s.running);
                }
                if !s.failed.is_empty() {
                    let _ = write!(p, " ({} failed)", s.failed.len());
                }
                p
            })
            .collect();
        parts.join(", ")
    }

    /// The table `slurm status` prints.
    pub fn render(&self, slurm_mem: Option<&str>, slurm_time: Option<&str>) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "slurm run in {} (jobs: {})",
            self.work_dir.display(),
            if self.job_ids.is_empty() {
                "none submitted".to_string()
            } else {
                self.job_ids.join(" ")
            }
        );
        let _ = writeln!(
            s,
            "  {:<12} {:>7} {:>7} {:>8} {:>8} {:>7}",
            "step", "tasks", "done", "running", "pending", "failed"
        );
        for st in &self.steps {
            let _ = writeln!(
                s,
                "  {:<12} {:>7} {:>7} {:>8} {:>8} {:>7}{}{}",
                st.name,
                st.tasks,
                st.done,
                st.running,
                st.pending,
                st.failed.len(),
                if st.skipped > 0 {
                    format!("  ({} input(s) skipped under --keep-going)", st.skipped)
                } else {
                    String::new()
                },
                if st.not_submitted > 0 {
                    format!("  ({} not submitted)", st.not_submitted)
                } else {
                    String::new()
                }
            );
        }
        if let Some((secs, done_then)) = self.since_submit {
            let done_since = self.finished_tasks().saturating_sub(done_then);
            let left = self.total_tasks() - self.finished_tasks();
            let _ = write!(
                s,
                "  throughput: {done_since} task(s) in {} since the latest submission",
                duration(secs)
            );
            if done_since > 0 && secs > 0 && left > 0 {
                let per_task = secs as f64 / done_since as f64;
                let _ = write!(
                    s,
                    " ({:.1} tasks/min); ETA {} for the {left} left (if they cost alike)",
                    60.0 / per_task,
                    duration((per_task * left as f64).round() as u64)
                );
            }
            let _ = writeln!(s);
        }
        let state = if self.complete() {
            "complete"
        } else if self.active() {
            "running"
        } else {
            "stopped: resubmit what is not done with `tritter-gpu slurm resume --work-dir W`"
        };
        let _ = writeln!(s, "  state: {state}");
        for st in &self.steps {
            for f in &st.failed {
                let _ = writeln!(
                    s,
                    "failed: step {} task {}: {}{}",
                    st.name,
                    f.task,
                    f.state,
                    f.log
                        .as_ref()
                        .map(|l| format!(", log {}", l.display()))
                        .unwrap_or_default()
                );
                if let Some(h) = &f.hint {
                    let h = h
                        .replace("{mem}", slurm_mem.unwrap_or("the partition's default"))
                        .replace("{time}", slurm_time.unwrap_or("the partition's default"));
                    let _ = writeln!(s, "  {h}");
                }
                for l in &f.lines {
                    let _ = writeln!(s, "  | {l}");
                }
            }
        }
        s
    }
}

fn duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{:.1} h", s as f64 / 3600.0),
    }
}

/// Slurm states in which a task will still run or is running.
fn queued_state(q: &QueuedTask) -> Option<TaskState> {
    match q.state.as_str() {
        "PENDING" if q.reason.contains("DependencyNeverSatisfied") => None,
        "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" | "SUSPENDED" | "RESV_DEL_HOLD" => {
            Some(TaskState::Pending)
        }
        "RUNNING" | "CONFIGURING" | "COMPLETING" | "RESIZING" | "SIGNALING" | "STAGE_OUT" => {
            Some(TaskState::Running)
        }
        _ => None,
    }
}

/// Computes the status of the run in `work_dir`.
pub fn collect(work_dir: &Path) -> Result<RunStatus> {
    let ledger = Ledger::load(work_dir)?;
    let plan = pipeline::stored_plan(work_dir)?;
    let queue: Vec<QueuedTask> = match &ledger {
        Some(_) => client::squeue()?,
        None => Vec::new(),
    };
    let mine: Vec<String> = ledger.as_ref().map(Ledger::job_ids).unwrap_or_default();
    let mut by_task: HashMap<(&str, Option<u32>), &QueuedTask> = HashMap::new();
    for q in &queue {
        if mine.contains(&q.array_job) {
            by_task.insert((q.array_job.as_str(), q.index), q);
        }
    }
    let work = WorkDir {
        root: work_dir.to_path_buf(),
    };
    let mut steps = Vec::new();
    for spec in plan["steps"].as_array().into_iter().flatten() {
        let name = spec["name"].as_str().unwrap_or_default().to_string();
        let tasks = spec["tasks"].as_u64().unwrap_or(0) as u32;
        let mut st = StepStatus {
            name: name.clone(),
            tasks,
            ..StepStatus::default()
        };
        for t in 0..tasks {
            let state = task_state(&work, ledger.as_ref(), &by_task, &name, t)?;
            match state {
                TaskState::Done => st.done += 1,
                TaskState::Skipped => st.skipped += 1,
                TaskState::Pending => st.pending += 1,
                TaskState::Running => st.running += 1,
                TaskState::NotSubmitted => st.not_submitted += 1,
                TaskState::Failed(f) => st.failed.push(f),
            }
        }
        steps.push(st);
    }
    let since_submit = ledger.as_ref().and_then(|l| l.submissions.last()).map(|s| {
        (
            super::now_secs().saturating_sub(s.submitted_at),
            s.done_at_submit,
        )
    });
    Ok(RunStatus {
        work_dir: work_dir.to_path_buf(),
        steps,
        job_ids: mine,
        since_submit,
    })
}

fn task_state(
    work: &WorkDir,
    ledger: Option<&Ledger>,
    queue: &HashMap<(&str, Option<u32>), &QueuedTask>,
    step: &str,
    task: u32,
) -> Result<TaskState> {
    if pipeline::task_done(work, step, task)? {
        return Ok(TaskState::Done);
    }
    if step == pipeline::steps::SHARDS && work.failed_path(task).exists() {
        return Ok(TaskState::Skipped);
    }
    let Some((array, index)) = ledger.and_then(|l| l.latest_for(step, task)) else {
        return Ok(TaskState::NotSubmitted);
    };
    let q = queue
        .get(&(array.job_id.as_str(), Some(index)))
        .or_else(|| queue.get(&(array.job_id.as_str(), None)));
    if let Some(s) = q.and_then(|q| queued_state(q)) {
        return Ok(s);
    }
    let log = ledger::log_path(&work.root, step, &array.job_id, index);
    let text = std::fs::read_to_string(&log).ok();
    let lines = text
        .as_deref()
        .map(|t| task_lines(t, step, task))
        .unwrap_or_default();
    let state = match q {
        Some(q) if q.state == "PENDING" => "NOT RUN: an earlier step failed".to_string(),
        Some(q) if q.reason.is_empty() || q.reason == "None" => q.state.clone(),
        Some(q) => format!("{} ({})", q.state, q.reason),
        None if text.is_none() => "ENDED without a log (cancelled before it started?)".into(),
        None => "ENDED".into(),
    };
    let hint = diagnose(q.map(|q| q.state.as_str()), text.as_deref().unwrap_or(""));
    Ok(TaskState::Failed(Failure {
        task,
        state,
        hint,
        log: text.is_some().then_some(log),
        lines,
    }))
}

/// The first lines of `task`'s part of an array task's log (an array task
/// runs several tasks one after the other); the whole log's first lines
/// when the part is not found.
fn task_lines(log: &str, step: &str, task: u32) -> Vec<String> {
    let start = format!("tritter-gpu: step {step} task {task} starts");
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.iter().position(|l| l.starts_with(&start));
    let section: Vec<&str> = match from {
        Some(i) => lines[i..]
            .iter()
            .enumerate()
            .take_while(|(k, l)| *k == 0 || !l.contains(" starts on "))
            .map(|(_, l)| *l)
            .collect(),
        None => lines,
    };
    section
        .into_iter()
        .take(LOG_LINES)
        .map(str::to_string)
        .collect()
}

/// Out of time, out of memory, or a node without the shared filesystem,
/// from the job state or the log; `{mem}` and `{time}` stand for the
/// values the run was submitted with.
pub fn diagnose(state: Option<&str>, log: &str) -> Option<String> {
    let log_lower = log.to_ascii_lowercase();
    if state == Some("TIMEOUT") || log.contains("DUE TO TIME LIMIT") {
        return Some(
            "it ran out of time (limit {time}): raise --slurm-time, or spread the step over more tasks (--slurm-tasks, --partitions)".into(),
        );
    }
    if state == Some("OUT_OF_MEMORY")
        || log_lower.contains("oom-kill")
        || log_lower.contains("out of memory")
        || log_lower.contains("out-of-memory")
    {
        return Some(
            "it ran out of memory (limit {mem}): raise --slurm-mem, or raise --partitions so each global task holds less".into(),
        );
    }
    if log.contains("cannot see the work directory") {
        return Some(
            "a node could not see the work directory: put --work-dir (and the binary) on a filesystem every node mounts".into(),
        );
    }
    if log.contains("(exit code 137)") {
        return Some(
            "the task was killed (SIGKILL), which is most often the memory limit: raise --slurm-mem".into(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_named_with_their_flag() {
        let t = diagnose(Some("TIMEOUT"), "").unwrap();
        assert!(t.contains("--slurm-time"), "{t}");
        let log = "slurmstepd: error: *** JOB 7 ON n1 CANCELLED AT 2026-01-01T00:00:00 DUE TO TIME LIMIT ***";
        assert!(diagnose(Some("FAILED"), log)
            .unwrap()
            .contains("--slurm-time"));
        let m = diagnose(
            None,
            "slurmstepd: error: Detected 1 oom-kill event(s) in StepId=7.batch.",
        )
        .unwrap();
        assert!(m.contains("--slurm-mem"), "{m}");
        assert!(diagnose(Some("OUT_OF_MEMORY"), "")
            .unwrap()
            .contains("--slurm-mem"));
        assert_eq!(diagnose(Some("FAILED"), "tritter-gpu: bad input"), None);
    }

    #[test]
    fn a_task_s_part_of_the_log_is_shown() {
        let log = "tritter-gpu: step shards task 1 starts on n1 at T\nok\ntritter-gpu: step shards task 1 done\ntritter-gpu: step shards task 4 starts on n1 at T\ntritter-gpu: bad\ntritter-gpu: step shards task 4 failed (exit code 2)\n";
        assert_eq!(
            task_lines(log, "shards", 4),
            [
                "tritter-gpu: step shards task 4 starts on n1 at T",
                "tritter-gpu: bad",
                "tritter-gpu: step shards task 4 failed (exit code 2)"
            ]
        );
    }
}
