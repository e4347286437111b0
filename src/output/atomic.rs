//! Atomic file writes: write to a temporary file beside the target, fsync,
//! then rename over the target. A reader (or a resumed run) sees either the old
//! file or the complete new one, never a torn write.
//!
//! The temporary file is `.NAME.HOST-PID.N.tmp`: its name says which process
//! owns it, so that what a killed run leaves is swept by the next run that
//! writes into the directory, and it is registered for removal on Ctrl-C
//! as it is created (see [`crate::pipeline::cleanup`]). It is created with
//! `O_EXCL` and the default mode, so the output gets 0666 less the umask.
//! [`AtomicFile::create_write_behind`] makes the same file with its writes
//! on a thread of their own ([`super::write_behind`]), for a writer that has
//! a core to spare; [`AtomicFile::create_positional`] makes one whose
//! ranges are written in place, by several threads at once ([`RangeWriter`]). Either way the
//! file's writeback starts as it is written ([`super::writeback_ahead`]),
//! so the final sync is short.

use super::write_behind::WriteBehind;
use super::write_error::WriteFailed;
use super::writeback_ahead::WritebackAhead;
use crate::pipeline::cleanup;
use anyhow::Result;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A buffered writer that becomes `target` only on [`AtomicFile::commit`];
/// dropped without commit, it removes its temporary file.
pub struct AtomicFile {
    target: PathBuf,
    /// The temporary file, until committed.
    tmp: Option<PathBuf>,
    writer: Option<Sink>,
}

/// Where the bytes go before the file: a buffer written on this thread, one
/// written on a thread of its own, or ranges written in place by their
/// owners ([`AtomicFile::ranges`]).
enum Sink {
    Here(BufWriter<WritebackAhead>),
    Behind(WriteBehind<WritebackAhead>),
    Positional(WritebackAhead),
}

/// How [`AtomicFile::open`] writes.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Here,
    Behind,
    Positional,
}

impl Sink {
    /// The sequential writer; a positional file has none.
    fn writer(&mut self) -> std::io::Result<&mut dyn Write> {
        match self {
            Sink::Here(w) => Ok(w),
            Sink::Behind(w) => Ok(w),
            Sink::Positional(_) => Err(std::io::Error::other(
                "a positional file is written through AtomicFile::ranges",
            )),
        }
    }

    fn into_file(self) -> std::io::Result<File> {
        match self {
            Sink::Here(w) => w.into_inner().map_err(|e| e.into_error()),
            Sink::Behind(w) => w.finish(),
            Sink::Positional(w) => Ok(w),
        }
        .map(WritebackAhead::into_inner)
    }
}

impl AtomicFile {
    pub fn create(target: &Path) -> Result<AtomicFile> {
        Self::open(target, Mode::Here)
    }

    /// Like [`AtomicFile::create`], with the writes on a thread of their own.
    pub fn create_write_behind(target: &Path) -> Result<AtomicFile> {
        Self::open(target, Mode::Behind)
    }

    /// Like [`AtomicFile::create`], written by ranges at their offsets
    /// ([`AtomicFile::ranges`]), from several threads at once.
    pub fn create_positional(target: &Path) -> Result<AtomicFile> {
        Self::open(target, Mode::Positional)
    }

    fn open(target: &Path, mode: Mode) -> Result<AtomicFile> {
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let failed = |what: &str, e| WriteFailed::new(format!("{what} {}", dir.display()), dir, e);
        cleanup::create_dir_all(dir).map_err(|e| failed("cannot create output directory", e))?;
        // What a dead run left here goes before we add ours.
        cleanup::sweep_once(dir);
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("out");
        let (tmp, file) = loop {
            let tmp = dir.join(cleanup::temp_file_name(name));
            let open = |p: &Path| OpenOptions::new().write(true).create_new(true).open(p);
            match cleanup::create_registered(&tmp, open) {
                Ok(f) => break (tmp, f),
                Err(e) => {
                    // A dead process's file of the same name (our PID
                    // reused, its counter at ours): take the next name.
                    if e.kind() != std::io::ErrorKind::AlreadyExists {
                        return Err(failed("cannot write in output directory", e).into());
                    }
                }
            }
        };
        let file = WritebackAhead::new(file);
        let writer = match mode {
            Mode::Behind => Sink::Behind(
                WriteBehind::new(file, "write-behind")
                    .map_err(|e| failed("cannot start a writing thread for", e))?,
            ),
            Mode::Here => Sink::Here(BufWriter::with_capacity(1 << 20, file)),
            Mode::Positional => Sink::Positional(file),
        };
        Ok(AtomicFile {
            target: target.to_path_buf(),
            tmp: Some(tmp),
            writer: Some(writer),
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The writer of ranges of a file made by
    /// [`AtomicFile::create_positional`], to share between threads that
    /// write disjoint ranges at once. Mark the bytes with
    /// [`AtomicFile::written_to`].
    pub fn ranges(&self) -> std::io::Result<RangeWriter<'_>> {
        match self.writer.as_ref() {
            Some(Sink::Positional(file)) => Ok(RangeWriter {
                file,
                target: &self.target,
            }),
            _ => Err(std::io::Error::other(
                "ranges need a file made by create_positional",
            )),
        }
    }

    /// The end of what a positional file holds so far (see
    /// [`AtomicFile::written_to`]); 0 for other files.
    pub fn placed(&self) -> u64 {
        match self.writer.as_ref() {
            Some(Sink::Positional(w)) => w.written(),
            _ => 0,
        }
    }

    /// Says that every byte before `end` of a positional file is written,
    /// so that its writeback can start (see [`super::writeback_ahead`]).
    pub fn written_to(&mut self, end: u64) {
        if let Some(Sink::Positional(w)) = self.writer.as_mut() {
            w.written_to(end);
        }
    }

    /// Flushes, syncs and renames into place.
    pub fn commit(self) -> Result<()> {
        self.finish(true)
    }

    /// Flushes and renames into place without waiting for the disk: safe
    /// against a killed process (the kernel holds the data), not against a
    /// machine crash. For scratch files that are cheap to recompute.
    pub fn commit_unsynced(self) -> Result<()> {
        self.finish(false)
    }

    fn finish(mut self, sync: bool) -> Result<()> {
        let target = self.target.clone();
        let failed =
            |what: &str, e| WriteFailed::new(format!("{what} {}", target.display()), &target, e);
        let w = self.writer.take().expect("writer present until commit");
        let file = w.into_file().map_err(|e| failed("cannot write", e))?;
        if sync {
            file.sync_all().map_err(|e| failed("cannot sync", e))?;
        }
        drop(file);
        let tmp = self.tmp.as_ref().expect("temp file present until commit");
        std::fs::rename(tmp, &self.target).map_err(|e| failed("cannot rename into", e))?;
        cleanup::unregister(tmp);
        self.tmp = None;
        Ok(())
    }
}

/// Writes ranges of a positional [`AtomicFile`] in place, from any thread.
pub struct RangeWriter<'a> {
    file: &'a WritebackAhead,
    target: &'a Path,
}

impl RangeWriter<'_> {
    /// Writes all of `buf` at `offset`.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()> {
        self.file.write_all_at(buf, offset).map_err(|e| {
            WriteFailed::new(
                format!("cannot write {}", self.target.display()),
                self.target,
                e,
            )
            .into_io()
        })
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            drop(self.writer.take());
            let _ = std::fs::remove_file(&tmp);
            cleanup::unregister(&tmp);
        }
    }
}

impl AtomicFile {
    /// `e` naming the target, its kind kept: a full disk while writing
    /// says which file.
    fn named(&self, e: std::io::Error) -> std::io::Error {
        WriteFailed::new(
            format!("cannot write {}", self.target.display()),
            &self.target,
            e,
        )
        .into_io()
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self
            .writer
            .as_mut()
            .expect("writer present until commit")
            .writer()
            .and_then(|w| w.write(buf));
        r.map_err(|e| self.named(e))
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let r = self
            .writer
            .as_mut()
            .expect("writer present until commit")
            .writer()
            .and_then(|w| w.write_all(buf));
        r.map_err(|e| self.named(e))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        let r = self
            .writer
            .as_mut()
            .expect("writer present until commit")
            .writer()
            .and_then(|w| w.flush());
        r.map_err(|e| self.named(e))
    }
}

/// Writes `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(target)?;
    f.write_all(bytes)?;
    f.commit()
}

/// Waits until everything written to the filesystem holding `dir` is on
/// disk (`syncfs`): one call that makes a batch of
/// [`AtomicFile::commit_unsynced`] files durable before the marker that
/// commits them is written.
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let d = File::open(dir)
        .map_err(|e| WriteFailed::new(format!("cannot open {}", dir.display()), dir, e))?;
    // SAFETY: syncfs takes an open descriptor and touches no memory of ours.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(WriteFailed::new(
            format!("cannot sync the filesystem of {}", dir.display()),
            dir,
            std::io::Error::last_os_error(),
        )
        .into());
    }
    Ok(())
}

/// [`write_atomic`] without the sync (see [`AtomicFile::commit_unsynced`]).
pub fn write_atomic_unsynced(target: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(target)?;
    f.write_all(bytes)?;
    f.commit_unsynced()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process's umask, read once: from `/proc/self/status` (which reads it
    /// without changing it), else by setting and restoring it.
    fn umask() -> u32 {
        static UMASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        *UMASK.get_or_init(|| {
            let from_proc = std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("Umask:"))
                        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
                });
            from_proc.unwrap_or_else(|| {
                // SAFETY: umask only swaps the process's mask; we put it back at
                // once (a file created in between by another thread would get 022).
                unsafe {
                    let old = libc::umask(0o022);
                    libc::umask(old);
                    old as u32
                }
            })
        })
    }

    #[test]
    fn uncommitted_file_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"partial").unwrap();
        }
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn committed_files_get_the_umask_mode_not_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        write_atomic(&target, b"x").unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask());
        assert_ne!(mode, 0o600, "umask {:o}", umask());
    }

    #[test]
    fn ranges_written_by_several_threads_commit_as_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        let pieces: Vec<Vec<u8>> = (0..16u8)
            .map(|k| vec![b'a' + k; 1000 + k as usize])
            .collect();
        let mut f = AtomicFile::create_positional(&target).unwrap();
        // Sequential writes would go nowhere: they are refused.
        assert!(f.write_all(b"x").is_err());
        let mut at = 0u64;
        let placed: Vec<(&[u8], u64)> = pieces
            .iter()
            .map(|p| {
                at += p.len() as u64;
                (p.as_slice(), at - p.len() as u64)
            })
            .collect();
        let ranges = f.ranges().unwrap();
        std::thread::scope(|s| {
            for &(p, offset) in placed.iter().rev() {
                let ranges = &ranges;
                s.spawn(move || ranges.write_all_at(p, offset).unwrap());
            }
        });
        f.written_to(at);
        assert!(!target.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), pieces.concat());
        assert!(AtomicFile::create(&target).unwrap().ranges().is_err());
    }

    #[test]
    fn commit_replaces_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        std::fs::write(&target, "old").unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
    }
}
