//! Atomic file writes: write to a temporary file beside the target, fsync,
//! then rename over the target. A reader (or a resumed run) sees either the old
//! file or the complete new one, never a torn write.

use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A buffered writer that becomes `target` only on [`AtomicFile::commit`];
/// dropped without commit, it removes its temporary file.
pub struct AtomicFile {
    target: PathBuf,
    tmp: Option<tempfile::NamedTempFile>,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(target: &Path) -> Result<AtomicFile> {
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create output directory {}", dir.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(
                ".{}.",
                target.file_name().and_then(|n| n.to_str()).unwrap_or("out")
            ))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(|| format!("cannot write in output directory {}", dir.display()))?;
        let writer = BufWriter::with_capacity(1 << 20, tmp.as_file().try_clone()?);
        Ok(AtomicFile {
            target: target.to_path_buf(),
            tmp: Some(tmp),
            writer: Some(writer),
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
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
        let mut w = self.writer.take().expect("writer present until commit");
        w.flush()
            .with_context(|| format!("cannot write {}", self.target.display()))?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        if sync {
            file.sync_all()
                .with_context(|| format!("cannot sync {}", self.target.display()))?;
        }
        let tmp = self.tmp.take().expect("temp file present until commit");
        tmp.persist(&self.target)
            .with_context(|| format!("cannot rename into {}", self.target.display()))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer
            .as_mut()
            .expect("writer present until commit")
            .write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.writer
            .as_mut()
            .expect("writer present until commit")
            .write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer
            .as_mut()
            .expect("writer present until commit")
            .flush()
    }
}

/// Writes `bytes` to `target` atomically.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(target)?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", target.display()))?;
    f.commit()
}

/// Waits until everything written to the filesystem holding `dir` is on
/// disk (`syncfs`): one call that makes a batch of
/// [`AtomicFile::commit_unsynced`] files durable before the marker that
/// commits them is written.
pub fn sync_filesystem(dir: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let d = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    // SAFETY: syncfs takes an open descriptor and touches no memory of ours.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot sync the filesystem of {}", dir.display()));
    }
    Ok(())
}

/// [`write_atomic`] without the sync (see [`AtomicFile::commit_unsynced`]).
pub fn write_atomic_unsynced(target: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(target)?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", target.display()))?;
    f.commit_unsynced()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn commit_replaces_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.jsonl");
        std::fs::write(&target, "old").unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
    }
}
