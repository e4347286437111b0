//! Advisory locks on a work directory, so that two runs never work in one
//! directory at once (both would clear and rewrite `global/`, and one would
//! fail with a bare "No such file or directory" or, worse, mix the other's
//! files into its output).
//!
//! ```text
//! WORK/lock                         curate, merge: exclusive; run-step: shared
//! WORK/locks/STEP-TASK.lock         run-step --step STEP --task TASK: exclusive
//! ```
//!
//! `curate` and `merge` own the whole directory: they take `WORK/lock`
//! exclusively and write their PID and command into it. `run-step` tasks of
//! one step may run at once by design (each writes only its own task's
//! files, see docs/global-phase.md), so each takes `WORK/lock` shared (no
//! `curate` or `merge` may run beside it) and its own task's lock file
//! exclusively (the same task twice is refused).
//!
//! The locks are `flock(2)` locks (`std::fs::File::try_lock`): the kernel
//! releases them when the process exits, however it dies, so a killed run
//! never leaves a stale lock; the file itself stays and is reused. The lock
//! is held until the process exits (kept in a process-wide list), and taking
//! one this process already holds, in either mode, is a no-op.
//!
//! Holding `WORK/lock` exclusively also means that every temporary file in
//! the directory is a dead run's: taking it removes them
//! ([`super::cleanup::sweep_work_dir`]).

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Lock files this process holds, with whether exclusively: dropped (and
/// released) only at exit.
static HELD: Mutex<Vec<(PathBuf, bool, File)>> = Mutex::new(Vec::new());

fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        super::cleanup::create_dir_all(dir)
            .with_context(|| format!("cannot create work directory {}", dir.display()))?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
}

/// The holder written into a lock file, for the refusal message.
fn holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind().and_then(|_| file.read_to_string(&mut s));
    let s = s.trim();
    if s.is_empty() {
        "another tritter-gpu process".to_string()
    } else {
        s.to_string()
    }
}

/// Takes `path` (created if needed) exclusively or shared, writing `who`
/// into it when exclusive; `busy` words the refusal given the holder.
/// Returns whether this call took it (false: this process held it already,
/// in either mode).
fn take(path: &Path, exclusive: bool, who: &str, busy: impl Fn(&str) -> String) -> Result<bool> {
    let canonical = path
        .parent()
        .and_then(|d| d.canonicalize().ok())
        .map(|d| d.join(path.file_name().unwrap_or_default()))
        .unwrap_or_else(|| path.to_path_buf());
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    // Held already, in either mode: a run-step task that runs phase-1 code
    // asks for the whole directory again, and owns it as far as it goes.
    if held.iter().any(|(p, _, _)| p == &canonical) {
        return Ok(false);
    }
    let mut file = open_lock_file(path)?;
    let r = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match r {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            // A shared lock we could take means the holders are run-step
            // tasks (they do not write their PID into the shared file).
            let who = if exclusive && file.try_lock_shared().is_ok() {
                let _ = file.unlock();
                "run-step tasks".to_string()
            } else {
                holder(&mut file)
            };
            bail!("{}", busy(&who));
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
    if exclusive {
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| writeln!(file, "PID {} ({who})", std::process::id()))
            .with_context(|| format!("cannot write the lock file {}", path.display()))?;
    }
    held.push((canonical, exclusive, file));
    Ok(true)
}

/// Locks the whole work directory `root` for `command` (`curate`, `merge`),
/// or refuses naming the holder.
pub fn lock_whole(root: &Path, command: &str) -> Result<()> {
    let taken = take(&root.join("lock"), true, command, |who| {
        format!(
            "work directory {} is in use by {who}: wait for it to finish, or give this run \
             another --work-dir",
            root.display()
        )
    })?;
    // Ours alone now: whatever temporary files are here, a dead run left.
    // Not when held already: a run-step task holding the lock shared asks
    // for it again, and its sibling tasks are writing beside it.
    if taken {
        crate::pipeline::cleanup::sweep_work_dir(root);
    }
    Ok(())
}

/// Locks task `task` of step `step` in `root` for `run-step` (other tasks
/// may run beside it; `curate` and `merge` may not), or refuses naming the
/// holder.
pub fn lock_task(root: &Path, step: &str, task: u32) -> Result<()> {
    take(&root.join("lock"), false, "run-step", |who| {
        format!(
            "work directory {} is in use by {who}: run-step waits for no curate or merge; run \
             it when that one has finished",
            root.display()
        )
    })?;
    let file = root.join("locks").join(format!("{step}-{task}.lock"));
    take(
        &file,
        true,
        &format!("run-step --step {step} --task {task}"),
        |who| {
            format!(
                "task {task} of step {step} in {} is already running ({who}): wait for it, or \
                 check it with --status",
                root.display()
            )
        },
    )?;
    Ok(())
}

/// Releases every lock this process holds on `root` (its whole-directory
/// lock included): a Slurm submission plans the run under the lock, then
/// lets the array tasks take their shared locks while it waits.
pub fn release_all(root: &Path) {
    let canonical = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    held.retain(|(path, _, _)| !path.starts_with(&canonical) && !path.starts_with(root));
}
