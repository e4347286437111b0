//! Temporary files and scratch directories: named by their owner, removed by
//! the next run when the owner is dead, and removed at once on Ctrl-C.
//!
//! A run writes every output through a hidden temporary file beside it
//! ([`crate::output::atomic`]) and near dedup spills into a scratch
//! directory. A process killed with `kill -9` (or by the OOM killer, or a
//! Slurm time limit) runs no destructor, so both stay behind forever unless
//! someone knows they are garbage. Each name therefore carries its owner:
//!
//! ```text
//! .python_curated.jsonl.HOST-PID.N.tmp   beside an output, or in WORK/parts/, WORK/global/...
//! tritter-near-HOST-PID-N/               near dedup's scratch directory
//! ```
//!
//! `HOST` is the short host name (a work directory on a shared filesystem is
//! written by Slurm tasks on many machines: a PID means something only on
//! its own host), `PID` the owner's process id, `N` a per-process counter.
//!
//! **When a leftover is stale** ([`owner_is_dead`]): its host is ours and
//! either no process has its PID (`kill(pid, 0)` fails with `ESRCH`), or the
//! process that has it now started well after the file was last written
//! (the PID was reused: the file cannot be that process's, since a writer
//! touches its file after it starts). Files of other hosts are left alone, except in
//! a work directory we hold exclusively (`curate`, `merge`: see
//! [`super::work_lock`]), where no other run can be writing and every
//! temporary file of ours is garbage ([`sweep_work_dir`]).
//!
//! **When it is removed**: the first time this process writes into a
//! directory it sweeps that directory once ([`sweep_once`]), so a rerun
//! cleans exactly where the dead run wrote; the exclusive work-dir lock
//! sweeps the whole work directory.
//!
//! **Ctrl-C and SIGTERM** ([`super::interrupt`]): every live temporary path
//! is in a process-wide registry; the signal handler removes them all and
//! exits. A path is registered and created under the
//! registry's lock ([`create_registered`]), and the handler holds that lock
//! from its sweep until the process exits, so a file is either created
//! before the sweep (and removed by it) or never: registering first and
//! creating after the lock is released would leave a window in which the
//! sweep finds nothing to remove and a worker then creates the file.
//! Directories that temporary files go into are made the same way
//! ([`create_dir_all`]), so a worker cannot recreate a scratch directory the
//! sweep has just removed; a directory is renamed before it is removed, so
//! a worker's file created meanwhile cannot make the removal fail.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::SystemTime;

/// The prefix of near dedup's scratch directories.
pub const SCRATCH_PREFIX: &str = "tritter-near-";

/// Live temporary paths of this process (files and directories).
static LIVE: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
/// Directories swept already by this process.
static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
static COUNTER: AtomicU64 = AtomicU64::new(0);

fn live() -> MutexGuard<'static, Option<HashSet<PathBuf>>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// This host's short name, reduced to `[A-Za-z0-9_]` so that it parses back
/// out of a file name (`-` and `.` separate the fields).
pub fn host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
        let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
        let raw = if ok {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).into_owned()
        } else {
            String::new()
        };
        let short: String = raw
            .split('.')
            .next()
            .unwrap_or("")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(32)
            .collect();
        if short.is_empty() {
            "host".to_string()
        } else {
            short
        }
    })
}

/// `HOST-PID` of this process.
fn owner() -> String {
    format!("{}-{}", host(), std::process::id())
}

/// A fresh `N` for a name of this process.
fn next_n() -> u64 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// The temporary name for `target`'s next atomic write:
/// `.NAME.HOST-PID.N.tmp` in `target`'s directory.
pub fn temp_file_name(target_name: &str) -> String {
    format!(".{target_name}.{}.{:x}.tmp", owner(), next_n())
}

/// The name of a fresh scratch directory: `tritter-near-HOST-PID-N`.
fn scratch_dir_name() -> String {
    format!("{SCRATCH_PREFIX}{}-{:x}", owner(), next_n())
}

/// The `(host, pid)` owning a temporary name of ours, if `name` is one.
pub fn owner_of(name: &str) -> Option<(&str, u32)> {
    let owner = if let Some(rest) = name.strip_prefix(SCRATCH_PREFIX) {
        let (owner, n) = rest.rsplit_once('-')?;
        is_hex(n).then_some(owner)?
    } else {
        let rest = name.strip_prefix('.')?.strip_suffix(".tmp")?;
        let (rest, n) = rest.rsplit_once('.')?;
        let (target, owner) = rest.rsplit_once('.')?;
        (is_hex(n) && !target.is_empty()).then_some(owner)?
    };
    let (host, pid) = owner.rsplit_once('-')?;
    let pid_ok = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    (pid_ok && !host.is_empty())
        .then(|| pid.parse().ok().map(|p| (host, p)))
        .flatten()
}

/// A temporary file of the tempfile crate's form, `.NAME.XXXXXX.tmp`, as
/// earlier versions of this tool named them (no owner): garbage only where
/// we know no one else writes (a work directory held exclusively).
fn is_unowned_temp(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.').and_then(|r| r.strip_suffix(".tmp")) else {
        return false;
    };
    rest.rsplit_once('.').is_some_and(|(target, rand)| {
        !target.is_empty() && rand.len() == 6 && rand.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the process that wrote a file (or directory) last modified at
/// `modified` under `(host, pid)` is gone. Unsure (another host, no
/// `/proc`) counts as alive: we never remove what might be in use.
pub fn owner_is_dead(owner_host: &str, pid: u32, modified: SystemTime) -> bool {
    if owner_host != host() {
        return false;
    }
    if pid == std::process::id() {
        // Ours by PID but not in our registry (the caller checks): an
        // earlier process that had our PID, unless written after we started.
        return started_after(pid, modified).unwrap_or(false);
    }
    let Ok(pid_t) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists.
    if unsafe { libc::kill(pid_t, 0) } != 0 {
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
    }
    started_after(pid, modified).unwrap_or(false)
}

/// Clock slack when comparing a process's start (this host's clock) with a
/// file's modification time (the file server's clock, on a shared
/// filesystem): a live writer's file must never look older than its
/// writer, whatever the skew. Too large costs only this: a dead run's file
/// whose PID was reused within the slack waits for that process to exit.
const CLOCK_SLACK_SECS: u64 = 600;

/// Whether process `pid` started after `modified` (by more than
/// [`CLOCK_SLACK_SECS`]): `None` when unknown.
fn started_after(pid: u32, modified: SystemTime) -> Option<bool> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; the
    // fields after its last ')' are plain numbers. Field 22 is the start
    // time in clock ticks since boot.
    let after = &stat[stat.rfind(')')? + 1..];
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let btime: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|&h| h > 0)?;
    let started = btime + ticks / hz;
    let modified = modified
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(started > modified + CLOCK_SLACK_SECS)
}

/// Registers `path` as a live temporary path of this process and creates it
/// with `create`, both under the registry's lock: a signal's sweep
/// ([`remove_all_and_hold`]) runs wholly before (and nothing is created:
/// the sweep holds the lock until the exit) or wholly after (and removes
/// it). When `create` fails, `path` is not registered.
pub fn create_registered<T>(
    path: &Path,
    create: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let mut guard = live();
    let set = guard.get_or_insert_with(HashSet::new);
    set.insert(path.to_path_buf());
    let made = create(path);
    if made.is_err() {
        set.remove(path);
    }
    made
}

/// Registers `path`, which exists already (made by someone else, such as
/// a temporary directory from the `tempfile` crate), for removal on a
/// signal.
pub fn register_existing(path: &Path) {
    live()
        .get_or_insert_with(HashSet::new)
        .insert(path.to_path_buf());
}

/// `std::fs::create_dir_all` under the registry's lock: a directory inside
/// a registered one is not recreated by a worker after a signal's sweep
/// removed its parent (the worker waits on the lock until the exit).
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    let _guard = live();
    std::fs::create_dir_all(dir)
}

/// Forgets `path` (committed, renamed or removed).
pub fn unregister(path: &Path) {
    if let Some(set) = live().as_mut() {
        set.remove(path);
    }
}

/// Removes every registered path and returns with the registry held, so
/// that no temporary file is created after the sweep: for the signal
/// handler, which exits next. Returns how many paths were removed.
pub fn remove_all_and_hold() -> (usize, MutexGuard<'static, Option<HashSet<PathBuf>>>) {
    let guard = live();
    let mut removed = 0;
    if let Some(set) = guard.as_ref() {
        for p in set {
            if remove_path(p) {
                removed += 1;
            }
        }
    }
    (removed, guard)
}

fn remove_path(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            // Worker threads may still be creating files inside (spill
            // runs, a step's files), which makes `remove_dir_all` fail on a
            // directory that filled up meanwhile. Renamed away first, no new
            // path resolves into it; the new name is a scratch directory's
            // of ours, so what a failed removal leaves the next run sweeps.
            let renamed = p.parent().map(|d| d.join(scratch_dir_name()));
            let doomed = match renamed {
                Some(r) if std::fs::rename(p, &r).is_ok() => r,
                _ => p.to_path_buf(),
            };
            (0..4).any(|_| std::fs::remove_dir_all(&doomed).is_ok())
        }
        Ok(_) => std::fs::remove_file(p).is_ok(),
        Err(_) => false,
    }
}

/// Removes the stale temporary files and scratch directories of ours in
/// `dir` (not below it), the first time this process asks for `dir`.
/// Errors are ignored: a leftover we cannot remove harms no one but the disk.
pub fn sweep_once(dir: &Path) {
    // As spelled (no canonicalize: a syscall per component on every
    // write); two spellings of one directory only sweep it twice.
    let key = dir.to_path_buf();
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|p| p.into_inner());
        if !swept.get_or_insert_with(HashSet::new).insert(key) {
            return;
        }
    }
    sweep_dir(dir, false);
}

/// One directory: stale entries of ours, or with `exclusive` every
/// temporary entry of ours (and the tempfile crate's unowned form) that is
/// not this process's live one. Returns how many were removed.
fn sweep_dir(dir: &Path, exclusive: bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let owned = owner_of(name);
        if owned.is_none() && !(exclusive && is_unowned_temp(name)) {
            continue;
        }
        let path = e.path();
        if live().as_ref().is_some_and(|s| s.contains(&path)) {
            continue;
        }
        let stale = exclusive
            || owned.is_some_and(|(h, pid)| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| owner_is_dead(h, pid, t))
            });
        if stale && remove_path(&path) {
            removed += 1;
        }
    }
    removed
}

/// Removes every temporary file and scratch directory of ours in the work
/// directory `root` and its subdirectories (three levels: `WORK/`,
/// `WORK/parts/`, `WORK/global/STEP/...`). Only for the holder of the
/// exclusive lock: no other run can be writing there.
pub fn sweep_work_dir(root: &Path) -> usize {
    fn walk(dir: &Path, depth: u32) -> usize {
        let mut n = sweep_dir(dir, true);
        if depth == 0 {
            return n;
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    n += walk(&e.path(), depth - 1);
                }
            }
        }
        n
    }
    walk(root, 3)
}

/// Creates a fresh, registered `tritter-near-HOST-PID-N` under `parent`
/// (which must exist), after sweeping the parent's stale ones; the caller
/// removes it and [`unregister`]s it.
pub fn create_scratch_dir(parent: &Path) -> std::io::Result<PathBuf> {
    sweep_once(parent);
    loop {
        let path = parent.join(scratch_dir_name());
        match create_registered(&path, |p| std::fs::create_dir(p)) {
            Ok(()) => return Ok(path),
            // A dead process's directory of the same name (our PID reused,
            // its counter at ours): take the next name.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

/// A scratch directory, `tritter-near-HOST-PID-N` under a parent, removed
/// when dropped and on a signal; creating one sweeps the parent's stale ones.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    pub fn create(parent: &Path) -> std::io::Result<ScratchDir> {
        create_scratch_dir(parent).map(|path| ScratchDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
        unregister(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A PID that no process has: a child that has exited and been reaped.
    fn dead_pid() -> u32 {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    }

    #[test]
    fn names_parse_back_to_their_owner() {
        let f = temp_file_name("python_curated.jsonl");
        assert_eq!(owner_of(&f), Some((host(), std::process::id())));
        let d = scratch_dir_name();
        assert_eq!(owner_of(&d), Some((host(), std::process::id())));
        // A target name with dots and dashes.
        let f = temp_file_name("part-000001.jsonl.zst");
        assert_eq!(owner_of(&f), Some((host(), std::process::id())));
        for not_ours in [
            "python_curated.jsonl",
            ".python_curated.jsonl.a1B2c3.tmp",
            ".x.host-12a.1.tmp",
            "..host-1.1.tmp",
            "tritter-near-abc",
            "tritter-near-host-1-zz",
            ".hidden",
        ] {
            assert_eq!(owner_of(not_ours), None, "{not_ours}");
        }
        assert!(is_unowned_temp(".python_curated.jsonl.a1B2c3.tmp"));
        assert!(!is_unowned_temp(".python_curated.jsonl.tmp"));
    }

    #[test]
    fn a_dead_owner_is_stale_a_live_one_and_another_host_are_not() {
        let now = SystemTime::now();
        assert!(owner_is_dead(host(), dead_pid(), now));
        // Our parent (the test harness's shell or cargo) is alive and
        // started before now.
        let parent = std::os::unix::process::parent_id();
        assert!(!owner_is_dead(host(), parent, now));
        assert!(!owner_is_dead("some_other_host", dead_pid(), now));
        // A live PID whose process started after the file was written: the
        // PID was reused, the file is a dead run's.
        let long_ago = now - Duration::from_secs(10 * 365 * 86_400);
        assert!(owner_is_dead(host(), parent, long_ago));
    }

    #[test]
    fn a_path_is_created_under_the_registry_lock_and_kept_only_when_made() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("made");
        create_registered(&made, |p| {
            // The signal's sweep takes this lock: it cannot run between the
            // registration and the creation.
            assert!(LIVE.try_lock().is_err());
            std::fs::create_dir(p)
        })
        .unwrap();
        assert!(live().as_ref().unwrap().contains(&made));
        let failed = dir.path().join("missing/parent");
        assert!(create_registered(&failed, |p| std::fs::create_dir(p)).is_err());
        assert!(!live().as_ref().unwrap().contains(&failed));
        unregister(&made);
    }

    #[test]
    fn a_directory_that_workers_keep_filling_is_removed_whole() {
        use std::sync::atomic::AtomicBool;
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("step");
        std::fs::create_dir(&dir).unwrap();
        let stop = AtomicBool::new(false);
        let removed = std::thread::scope(|s| {
            for w in 0..2 {
                let (dir, stop) = (&dir, &stop);
                s.spawn(move || {
                    // Bounded, so that a failed removal cannot fill the disk.
                    for i in 0..20_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        // Fails once the directory is gone, as a worker's would.
                        let _ = std::fs::write(dir.join(format!("run-{w}-{i}")), b"x");
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(20));
            let removed = remove_path(&dir);
            // Stopped before any assertion: a panic here would wait on the
            // writers forever.
            stop.store(true, Ordering::Relaxed);
            removed
        });
        assert!(removed);
        let left: Vec<_> = std::fs::read_dir(parent.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn sweep_removes_dead_owners_and_keeps_live_ones() {
        let dir = tempfile::tempdir().unwrap();
        let dead = format!(".out.jsonl.{}-{}.0.tmp", host(), dead_pid());
        let dead_dir = format!("{SCRATCH_PREFIX}{}-{}-3", host(), dead_pid());
        let alive = format!(
            ".out.jsonl.{}-{}.0.tmp",
            host(),
            std::os::unix::process::parent_id()
        );
        let other_host = format!(".out.jsonl.elsewhere-{}.0.tmp", dead_pid());
        let unowned = ".out.jsonl.a1B2c3.tmp";
        for f in [&dead, &alive, &other_host, &unowned.to_string()] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join(&dead_dir)).unwrap();
        std::fs::write(dir.path().join(&dead_dir).join("bands.0"), "x").unwrap();
        std::fs::write(dir.path().join("out.jsonl"), "keep").unwrap();
        sweep_once(dir.path());
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = vec![alive.clone(), other_host.clone(), unowned.to_string()];
        want.push("out.jsonl".into());
        want.sort();
        assert_eq!(left, want);
        // Held exclusively (a work directory): every temporary entry goes.
        assert_eq!(sweep_work_dir(dir.path()), 3);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn scratch_dirs_are_removed_on_drop_and_registered_while_alive() {
        let parent = tempfile::tempdir().unwrap();
        let s = ScratchDir::create(parent.path()).unwrap();
        assert!(s.path().is_dir());
        assert!(live().as_ref().unwrap().contains(s.path()));
        let p = s.path().to_path_buf();
        drop(s);
        assert!(!p.exists());
        assert!(!live().as_ref().unwrap().contains(&p));
    }
}
