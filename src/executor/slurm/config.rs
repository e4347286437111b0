//! What the Slurm executor submits with: the `--slurm-*` flags, resolved.
//! Stored in the run's job ledger (`W/slurm/jobs.json`) so that
//! `slurm resume` resubmits with the same resources.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The cluster resources and limits of one run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SlurmConfig {
    /// Array tasks per step (at most; a step with fewer tasks gets fewer).
    pub tasks: u32,
    pub partition: Option<String>,
    pub cpus_per_task: Option<u32>,
    /// `--mem` of each array task, Slurm's syntax (`8G`).
    pub mem: Option<String>,
    /// `--time` of each array task, Slurm's syntax (`4:00:00`).
    pub time: Option<String>,
    /// GPUs of each phase-1 (`shards`) array task; the global steps run on
    /// CPUs only.
    pub gpus_per_task: u32,
    pub account: Option<String>,
    /// Passed to `sbatch` as they are (split like a shell would).
    pub extra: Vec<String>,
    /// Largest array to submit in one `sbatch`; `None`: the cluster's
    /// `MaxArraySize` (from `scontrol show config`), else 1001.
    pub max_array_size: Option<u32>,
    /// The `tritter-gpu` binary every task runs (absolute: the nodes see the
    /// same shared filesystem).
    pub exe: PathBuf,
}
