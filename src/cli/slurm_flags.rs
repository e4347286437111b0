//! Flags of the Slurm executor (`curate --executor slurm --slurm-*`) and
//! the `slurm status` / `slurm resume` commands; they resolve into
//! [`crate::executor::slurm::SlurmConfig`].

use crate::backends::BackendKind;
use crate::executor::slurm::{self, SlurmConfig};
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Who runs the tasks of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Executor {
    /// In this process.
    #[default]
    Local,
    /// As Slurm job arrays (sbatch), from a login node.
    Slurm,
}

/// `--executor` and the `--slurm-*` resources of `curate`.
#[derive(Args, Debug, Clone)]
pub struct SlurmFlags {
    /// Who runs the run: `local` (this process) or `slurm` (job arrays submitted with sbatch).
    ///
    /// With `slurm` the run is planned in --work-dir (which must be on a
    /// filesystem every node mounts), one job array per step is submitted
    /// (`shards`, then each global step, chained by afterok), and the job
    /// ids are printed. The scripts and logs are in W/slurm/. See
    /// docs/cluster.md.
    #[arg(long, value_enum, default_value = "local", help_heading = "Cluster")]
    pub executor: Executor,
    /// Array tasks per step (a step with fewer tasks gets one array task per task).
    #[arg(long = "slurm-tasks", value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Cluster")]
    pub tasks: u32,
    /// With --executor slurm: block until the run has finished; exit 0 when the output is complete.
    #[arg(long, help_heading = "Cluster")]
    pub wait: bool,
    /// Slurm partition (sbatch --partition).
    #[arg(
        long = "slurm-partition",
        value_name = "NAME",
        help_heading = "Cluster"
    )]
    pub partition: Option<String>,
    /// CPUs of each array task (sbatch --cpus-per-task; also the task's --threads).
    #[arg(long = "slurm-cpus-per-task", value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Cluster")]
    pub cpus_per_task: Option<u32>,
    /// Memory of each array task, Slurm's syntax (sbatch --mem, e.g. 8G).
    #[arg(long = "slurm-mem", value_name = "SIZE", help_heading = "Cluster")]
    pub mem: Option<String>,
    /// Time limit of each array task, Slurm's syntax (sbatch --time, e.g. 4:00:00).
    #[arg(long = "slurm-time", value_name = "TIME", help_heading = "Cluster")]
    pub time: Option<String>,
    /// GPUs of each phase-1 array task (--gres=gpu:N); default 1 with --backend cuda, else none.
    #[arg(
        long = "slurm-gpus-per-task",
        value_name = "N",
        help_heading = "Cluster"
    )]
    pub gpus_per_task: Option<u32>,
    /// Account to charge (sbatch --account).
    #[arg(long = "slurm-account", value_name = "NAME", help_heading = "Cluster")]
    pub account: Option<String>,
    /// More sbatch options, passed as they are (split like a shell would): "--qos=high --constraint=a100".
    #[arg(
        long = "slurm-extra",
        value_name = "ARGS",
        allow_hyphen_values = true,
        help_heading = "Cluster"
    )]
    pub extra: Option<String>,
    /// Largest job array per sbatch (default: the cluster's MaxArraySize, else 1001).
    #[arg(long = "slurm-max-array-size", value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Cluster")]
    pub max_array_size: Option<u32>,
}

impl SlurmFlags {
    /// The resolved configuration; `backend` decides the default GPUs.
    pub fn to_config(&self, backend: BackendKind) -> Result<SlurmConfig> {
        let extra = match &self.extra {
            None => Vec::new(),
            Some(s) => shlex::split(s)
                .with_context(|| format!("--slurm-extra {s:?} has an unterminated quote"))?,
        };
        Ok(SlurmConfig {
            tasks: self.tasks,
            partition: self.partition.clone(),
            cpus_per_task: self.cpus_per_task,
            mem: self.mem.clone(),
            time: self.time.clone(),
            gpus_per_task: self
                .gpus_per_task
                .unwrap_or(u32::from(backend == BackendKind::Cuda)),
            account: self.account.clone(),
            extra,
            max_array_size: self.max_array_size,
            exe: std::env::current_exe()
                .context("cannot find the path of this tritter-gpu binary")?,
        })
    }
}

/// `tritter-gpu slurm ...`.
#[derive(Args, Debug)]
pub struct SlurmArgs {
    #[command(subcommand)]
    pub command: SlurmCommand,
}

#[derive(Subcommand, Debug)]
pub enum SlurmCommand {
    /// Per step: tasks done, running, pending, failed (with their log lines); throughput and ETA.
    ///
    /// Exit code: 0 the run is complete, 1 it is still running, 2 it
    /// stopped with tasks not done (resubmit them with `slurm resume`).
    Status {
        /// The run's work directory.
        #[arg(long = "work-dir", value_name = "DIR")]
        work_dir: PathBuf,
    },
    /// Resubmit only the tasks that are not done (failed, cancelled, lost with their node).
    ///
    /// The resources are those of the first submission; the --slurm-*
    /// flags given here replace them (say, a larger --slurm-mem after a
    /// task ran out of memory) for this and later resubmissions.
    Resume {
        /// The run's work directory.
        #[arg(long = "work-dir", value_name = "DIR")]
        work_dir: PathBuf,
        /// Block until the run has finished; exit 0 when the output is complete.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        overrides: ResumeOverrides,
    },
}

/// `slurm resume`'s replacements for the stored resources.
#[derive(Args, Debug, Clone, Default)]
pub struct ResumeOverrides {
    /// Array tasks per step.
    #[arg(long = "slurm-tasks", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub tasks: Option<u32>,
    /// Slurm partition.
    #[arg(long = "slurm-partition", value_name = "NAME")]
    pub partition: Option<String>,
    /// CPUs of each array task.
    #[arg(long = "slurm-cpus-per-task", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub cpus_per_task: Option<u32>,
    /// Memory of each array task (8G).
    #[arg(long = "slurm-mem", value_name = "SIZE")]
    pub mem: Option<String>,
    /// Time limit of each array task (4:00:00).
    #[arg(long = "slurm-time", value_name = "TIME")]
    pub time: Option<String>,
    /// GPUs of each phase-1 array task.
    #[arg(long = "slurm-gpus-per-task", value_name = "N")]
    pub gpus_per_task: Option<u32>,
    /// Account to charge.
    #[arg(long = "slurm-account", value_name = "NAME")]
    pub account: Option<String>,
    /// sbatch options replacing the stored ones ("" for none).
    #[arg(long = "slurm-extra", value_name = "ARGS", allow_hyphen_values = true)]
    pub extra: Option<String>,
}

impl ResumeOverrides {
    /// `cfg` with the given flags replaced.
    pub fn apply(&self, mut cfg: SlurmConfig) -> Result<SlurmConfig> {
        if let Some(v) = self.tasks {
            cfg.tasks = v;
        }
        if let Some(v) = &self.partition {
            cfg.partition = Some(v.clone());
        }
        if let Some(v) = self.cpus_per_task {
            cfg.cpus_per_task = Some(v);
        }
        if let Some(v) = &self.mem {
            cfg.mem = Some(v.clone());
        }
        if let Some(v) = &self.time {
            cfg.time = Some(v.clone());
        }
        if let Some(v) = self.gpus_per_task {
            cfg.gpus_per_task = v;
        }
        if let Some(v) = &self.account {
            cfg.account = Some(v.clone());
        }
        if let Some(s) = &self.extra {
            cfg.extra = shlex::split(s)
                .with_context(|| format!("--slurm-extra {s:?} has an unterminated quote"))?;
        }
        Ok(cfg)
    }
}

/// Runs `tritter-gpu slurm ...`.
pub fn run(args: SlurmArgs, quiet: bool) -> Result<i32> {
    match args.command {
        SlurmCommand::Status { work_dir } => slurm::resume::print_status(&work_dir),
        SlurmCommand::Resume {
            work_dir,
            wait,
            overrides,
        } => slurm::resume::resume(&work_dir, wait, quiet, &|c| overrides.apply(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        s: SlurmFlags,
    }

    #[test]
    fn flags_parse_and_resolve() {
        let t = T::parse_from([
            "t",
            "--executor",
            "slurm",
            "--slurm-tasks",
            "8",
            "--slurm-mem",
            "8G",
            "--slurm-extra",
            "--qos=high --comment 'a b'",
        ]);
        assert_eq!(t.s.executor, Executor::Slurm);
        let c = t.s.to_config(BackendKind::Cuda).unwrap();
        assert_eq!(c.tasks, 8);
        assert_eq!(c.mem.as_deref(), Some("8G"));
        assert_eq!(c.gpus_per_task, 1);
        assert_eq!(c.extra, ["--qos=high", "--comment", "a b"]);
        assert_eq!(
            T::parse_from(["t"])
                .s
                .to_config(BackendKind::Cpu)
                .unwrap()
                .gpus_per_task,
            0
        );
        assert!(T::try_parse_from(["t", "--slurm-tasks", "0"]).is_err());
    }
}
