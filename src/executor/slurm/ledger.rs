//! The job ledger `W/slurm/jobs.json`: what was submitted for the run in
//! W (the configuration, and per submission the arrays of every step with
//! the tasks they run). `slurm status` maps a task to its array task and
//! log through it; `slurm resume` appends a submission.

use super::config::SlurmConfig;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything submitted for one work directory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ledger {
    pub config: SlurmConfig,
    pub submissions: Vec<Submission>,
}

/// One `curate --executor slurm` or `slurm resume`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submission {
    /// Seconds since the Unix epoch.
    pub submitted_at: u64,
    /// Tasks of the plan already done when it was submitted (throughput
    /// counts the ones done since).
    #[serde(default)]
    pub done_at_submit: u64,
    pub steps: Vec<StepJobs>,
}

/// The arrays of one step in one submission.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepJobs {
    pub step: String,
    /// The step's tasks this submission runs, in script order.
    pub tasks: Vec<u32>,
    /// Array tasks the tasks are spread over (entry `i` runs in slot
    /// `i % slots`).
    pub slots: u32,
    pub arrays: Vec<ArrayJob>,
}

/// One `sbatch`: a job array covering slots `offset..offset + count`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArrayJob {
    pub job_id: String,
    pub offset: u32,
    pub count: u32,
    pub script: PathBuf,
}

impl StepJobs {
    /// The array job and index that run `task`, if this submission runs it.
    pub fn locate(&self, task: u32) -> Option<(&ArrayJob, u32)> {
        let i = self.tasks.iter().position(|&t| t == task)? as u32;
        let slot = i % self.slots.max(1);
        self.arrays
            .iter()
            .find(|a| slot >= a.offset && slot < a.offset + a.count)
            .map(|a| (a, slot - a.offset))
    }
}

/// `W/slurm`.
pub fn slurm_dir(work_dir: &Path) -> PathBuf {
    work_dir.join("slurm")
}

fn path(work_dir: &Path) -> PathBuf {
    slurm_dir(work_dir).join("jobs.json")
}

/// The log of array task `index` of `job` of `step`.
pub fn log_path(work_dir: &Path, step: &str, job: &str, index: u32) -> PathBuf {
    slurm_dir(work_dir)
        .join("logs")
        .join(format!("{step}-{job}_{index}.out"))
}

impl Ledger {
    /// The ledger of `work_dir`, if anything was submitted from it.
    pub fn load(work_dir: &Path) -> Result<Option<Ledger>> {
        let p = path(work_dir);
        if !p.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("{} is corrupt; delete it and resubmit", p.display()))
    }

    /// Writes the ledger atomically (a rename).
    pub fn save(&self, work_dir: &Path) -> Result<()> {
        let p = path(work_dir);
        let tmp = p.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &p).with_context(|| format!("cannot write {}", p.display()))
    }

    /// The latest submission's arrays of `step` that run `task`.
    pub fn latest_for(&self, step: &str, task: u32) -> Option<(&ArrayJob, u32)> {
        self.submissions
            .iter()
            .rev()
            .flat_map(|s| s.steps.iter())
            .filter(|s| s.step == step)
            .find_map(|s| s.locate(task))
    }

    /// Every array job id of the ledger.
    pub fn job_ids(&self) -> Vec<String> {
        self.submissions
            .iter()
            .flat_map(|s| s.steps.iter())
            .flat_map(|s| s.arrays.iter().map(|a| a.job_id.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_maps_to_its_array_and_index() {
        let s = StepJobs {
            step: "exact".into(),
            tasks: vec![0, 2, 5, 7, 9],
            slots: 3,
            arrays: vec![
                ArrayJob {
                    job_id: "10".into(),
                    offset: 0,
                    count: 2,
                    script: PathBuf::new(),
                },
                ArrayJob {
                    job_id: "11".into(),
                    offset: 2,
                    count: 1,
                    script: PathBuf::new(),
                },
            ],
        };
        let at = |t| s.locate(t).map(|(a, i)| (a.job_id.clone(), i));
        assert_eq!(at(0), Some(("10".into(), 0)));
        assert_eq!(at(5), Some(("11".into(), 0)));
        assert_eq!(at(7), Some(("10".into(), 0)));
        assert_eq!(at(9), Some(("10".into(), 1)));
        assert_eq!(at(1), None);
    }
}
