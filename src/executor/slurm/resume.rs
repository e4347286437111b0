//! `tritter-gpu slurm status` and `slurm resume`: read the ledger, the
//! markers and the queue of a work directory; resubmit only the tasks that
//! are not done (a failed or cancelled task, one whose node died), with the
//! resources of the first submission.

use super::ledger::Ledger;
use super::SlurmConfig;
use super::{absolute, client, status, submit_pending, wait_for};
use anyhow::{bail, Result};
use std::path::Path;

/// `slurm status`: prints the table; exit 0 complete, 1 still running,
/// 2 stopped with tasks not done.
pub fn print_status(work_dir: &Path) -> Result<i32> {
    let work_dir = absolute(work_dir)?;
    let ledger = Ledger::load(&work_dir)?;
    if ledger.is_some() {
        client::check_available()?;
    }
    let st = status::collect(&work_dir)?;
    let cfg = ledger.map(|l| l.config);
    print!(
        "{}",
        st.render(
            cfg.as_ref().and_then(|c| c.mem.as_deref()),
            cfg.as_ref().and_then(|c| c.time.as_deref())
        )
    );
    Ok(if st.complete() {
        0
    } else if st.active() {
        1
    } else {
        2
    })
}

/// `slurm resume`: resubmits what is not done, with the stored resources
/// as `overrides` changes them; with `wait`, waits.
pub fn resume(
    work_dir: &Path,
    wait: bool,
    quiet: bool,
    overrides: &dyn Fn(SlurmConfig) -> Result<SlurmConfig>,
) -> Result<i32> {
    client::check_available()?;
    let work_dir = absolute(work_dir)?;
    let Some(mut ledger) = Ledger::load(&work_dir)? else {
        bail!(
            "nothing was submitted from {} (no slurm/jobs.json); start the run with `curate ... --executor slurm`",
            work_dir.display()
        );
    };
    let st = status::collect(&work_dir)?;
    if st.complete() {
        if !quiet {
            eprintln!("tritter-gpu: every task is done; nothing to resubmit");
        }
        return Ok(0);
    }
    if st.active() {
        bail!(
            "tasks of {} are still queued or running ({}); resume resubmits only once they have ended (or scancel them)",
            work_dir.display(),
            st.line()
        );
    }
    // Arrays left pending behind a failed step (where the cluster does not
    // honour --kill-on-invalid-dep) would never run: cancel them first.
    let ids = ledger.job_ids();
    let stuck: Vec<String> = client::squeue()?
        .into_iter()
        .filter(|q| {
            ids.contains(&q.array_job)
                && q.state == "PENDING"
                && q.reason.contains("DependencyNeverSatisfied")
        })
        .map(|q| q.array_job)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    client::scancel(&stuck)?;
    ledger.config = overrides(ledger.config.clone())?;
    submit_pending(&work_dir, &mut ledger, quiet)?;
    if wait {
        wait_for(&work_dir, quiet)
    } else {
        Ok(0)
    }
}
