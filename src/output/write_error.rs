//! Failures to write the work directory or the outputs, told apart from
//! failures to read an input.
//!
//! `--keep-going` skips inputs that cannot be read; it must never skip an
//! input because *our* disk is full or read-only: the input is fine, and a
//! run that skipped it would end with shards silently missing once space was
//! freed. A write failure is recognised in two ways: the writers of this
//! module's callers ([`super::atomic`]) wrap their errors in [`WriteFailed`],
//! which names the file; and an I/O error whose kind only a write can give
//! (no space, read-only filesystem, quota exceeded) counts wherever it comes
//! from.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// A file of ours that could not be written, and why.
#[derive(Debug)]
pub struct WriteFailed {
    /// What we were doing, naming the file ("cannot write out/x.jsonl").
    pub what: String,
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for WriteFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl WriteFailed {
    pub fn new(what: String, path: &Path, source: std::io::Error) -> WriteFailed {
        WriteFailed {
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The same failure as an `io::Error` (for `impl Write`), keeping its
    /// kind and naming the file in its message.
    pub fn into_io(self) -> std::io::Error {
        std::io::Error::new(self.source.kind(), self)
    }
}

/// Kinds of I/O error that only a write to a local disk gives.
fn write_only_kind(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::StorageFull | ErrorKind::ReadOnlyFilesystem | ErrorKind::QuotaExceeded
    )
}

/// Whether `e` is a failure to write the work directory or an output; the
/// file, when known.
pub fn local_write_failure(e: &anyhow::Error) -> Option<Option<PathBuf>> {
    let mut found = None;
    for c in e.chain() {
        if let Some(w) = c.downcast_ref::<WriteFailed>() {
            return Some(Some(w.path.clone()));
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(w) = io.get_ref().and_then(|i| i.downcast_ref::<WriteFailed>()) {
                return Some(Some(w.path.clone()));
            }
            if write_only_kind(io.kind()) {
                found = Some(None);
            }
        }
    }
    found
}

/// What to do about a write failure: said once, at the end of the message.
pub fn advice(e: &anyhow::Error) -> String {
    let kind = e
        .chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .map(|io| io.kind())
        .find(|k| write_only_kind(*k) || *k == ErrorKind::PermissionDenied);
    let fix = match kind {
        Some(ErrorKind::StorageFull | ErrorKind::QuotaExceeded) => "free space on that disk",
        Some(ErrorKind::ReadOnlyFilesystem) => "remount it read-write or choose another path",
        Some(ErrorKind::PermissionDenied) => "make it writable or choose another path",
        _ => "fix that disk or choose another path",
    };
    format!("{fix}, then run the same command again: what is committed is kept")
}

/// Checks at the start of a run that `dir` accepts new files (or, when it
/// does not exist yet, that its nearest existing ancestor does, creating
/// nothing), so that an unwritable `--output` is found before hours of work.
pub fn check_writable(dir: &Path, flag: &str) -> anyhow::Result<()> {
    let fail = |at: &Path, e: std::io::Error| {
        let what = if at == dir {
            format!("{flag} {} is not writable", dir.display())
        } else {
            format!(
                "{flag} {} cannot be created: {} is not writable",
                dir.display(),
                at.display()
            )
        };
        anyhow::Error::new(WriteFailed::new(what, at, e))
    };
    let mut at = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => {
                at = Path::new(".");
                break;
            }
        }
    }
    if !at.is_dir() {
        anyhow::bail!(
            "{flag} {}: {} is a file, not a directory; choose another path",
            dir.display(),
            at.display()
        );
    }
    // An owner-named probe (see `pipeline::cleanup`), so that one left by a
    // killed run is recognised and swept.
    let probe = at.join(crate::pipeline::cleanup::temp_file_name("write-check"));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| fail(at, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}
