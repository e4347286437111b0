//! The Slurm commands we run: `sbatch`, `squeue`, `scancel`, `scontrol`.
//! Each runs as a child process with the environment we were given (so
//! `SLURM_CONF` and the user's defaults apply); a command that is missing
//! or that refuses is an error quoting its own message.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The client commands the executor needs.
const COMMANDS: [&str; 3] = ["sbatch", "squeue", "scancel"];

/// Finds `name` on the PATH.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Fails unless `sbatch`, `squeue` and `scancel` are on the PATH.
pub fn check_available() -> Result<()> {
    let missing: Vec<&str> = COMMANDS
        .iter()
        .copied()
        .filter(|c| on_path(c).is_none())
        .collect();
    if !missing.is_empty() {
        bail!(
            "--executor slurm needs the Slurm client commands, and {} {} not on the PATH ({}); run on a login node of the cluster, or load Slurm there first (often `module load slurm`)",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" },
            std::env::var("PATH").unwrap_or_default()
        );
    }
    Ok(())
}

fn output(cmd: &mut Command, what: &str) -> Result<std::process::Output> {
    cmd.output()
        .with_context(|| format!("cannot run {what} (is Slurm installed on this machine?)"))
}

/// `sbatch --parsable ARGS SCRIPT`: the job id.
pub fn sbatch(args: &[String], script: &Path) -> Result<String> {
    let out = output(
        Command::new("sbatch")
            .arg("--parsable")
            .args(args)
            .arg(script),
        "sbatch",
    )?;
    if !out.status.success() {
        bail!(
            "sbatch rejected {} ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // --parsable prints "ID" or "ID;CLUSTER".
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        bail!(
            "sbatch accepted {} but printed no job id: {:?}",
            script.display(),
            text.trim()
        );
    }
    Ok(id)
}

/// One array task as `squeue` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedTask {
    /// The array's job id (what sbatch printed).
    pub array_job: String,
    /// The array index, `None` for a pending range not yet split.
    pub index: Option<u32>,
    /// PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, OUT_OF_MEMORY, ...
    pub state: String,
    /// Why it is pending, or why it ended.
    pub reason: String,
}

/// The jobs `squeue` knows, recent finished ones included
/// (`--states=all` shows them until `MinJobAge`), one line per array task.
pub fn squeue() -> Result<Vec<QueuedTask>> {
    let out = output(
        Command::new("squeue").args(["-h", "-r", "--states=all", "-o", "%F|%K|%T|%r"]),
        "squeue",
    )?;
    if !out.status.success() {
        bail!(
            "squeue failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse_squeue_line)
        .collect())
}

fn parse_squeue_line(line: &str) -> Option<QueuedTask> {
    let mut f = line.trim().split('|');
    let array_job = f.next()?.to_string();
    let index = f.next()?.parse().ok();
    Some(QueuedTask {
        array_job,
        index,
        state: f.next()?.to_string(),
        reason: f.next().unwrap_or("").to_string(),
    })
}

/// `scancel IDS`.
pub fn scancel(ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let out = output(Command::new("scancel").args(ids), "scancel")?;
    if !out.status.success() {
        bail!(
            "scancel {} failed: {}",
            ids.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The cluster's `MaxArraySize` (`scontrol show config`), if it can be read.
pub fn max_array_size() -> Option<u32> {
    let out = Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "MaxArraySize")
            .then(|| v.trim().parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_parse() {
        assert_eq!(
            parse_squeue_line("12|3|RUNNING|None"),
            Some(QueuedTask {
                array_job: "12".into(),
                index: Some(3),
                state: "RUNNING".into(),
                reason: "None".into()
            })
        );
        let pending = parse_squeue_line("12|0-5|PENDING|Dependency").unwrap();
        assert_eq!(pending.index, None);
        assert_eq!(parse_squeue_line(""), None);
    }
}
