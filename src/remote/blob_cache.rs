//! A local cache of fetched content blobs (`--blob-cache DIR`), so that a
//! rerun over the same rows downloads nothing again.
//!
//! Layout: `DIR/{id[0..2]}/{id}`, the gzip bytes exactly as the store served
//! them. The two-hex-digit fan-out keeps directories near 1/256 of the
//! blobs (57 M Python files give ~220 k entries per directory, which ext4 and
//! xfs index well; one flat directory of 57 M entries does not).
//!
//! Only blobs that gunzipped cleanly are stored, and each is written to a
//! temporary file in its directory and renamed into place, so a reader never
//! sees a half-written blob and concurrent writers of the same id are
//! harmless (the last rename wins with identical bytes).

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    /// Opens (creating it if needed) the cache at `dir`.
    pub fn open(dir: &Path) -> Result<BlobCache> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create blob cache directory {}", dir.display()))?;
        Ok(BlobCache {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where blob `id` lives (ids are validated hex, see `blob_store`).
    pub fn path(&self, id: &str) -> PathBuf {
        let fan = id.get(..2).unwrap_or("00");
        self.dir.join(fan).join(id)
    }

    /// The cached gzip bytes of `id`, if present.
    pub fn get(&self, id: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(id)).ok()
    }

    /// Stores the gzip bytes of `id` atomically.
    pub fn put(&self, id: &str, gz: &[u8]) -> Result<()> {
        let path = self.path(id);
        let dir = path.parent().expect("blob path has a parent");
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Owner-named temporary file, renamed into place: a killed run's
        // leftover is swept by the next one. Unsynced: a cache entry lost
        // in a crash is fetched again.
        crate::output::atomic::write_atomic_unsynced(&path, gz)
            .with_context(|| format!("cannot store blob {id} in the cache"))
    }

    /// Removes a cached blob found corrupt.
    pub fn remove(&self, id: &str) {
        let _ = std::fs::remove_file(self.path(id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_then_get_roundtrips_under_fanout() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = BlobCache::open(&tmp.path().join("blobs")).expect("open");
        let id = "abcdef0123456789abcdef0123456789abcdef01";
        assert_eq!(c.get(id), None);
        c.put(id, b"\x1f\x8bdata").expect("put");
        assert_eq!(c.get(id).as_deref(), Some(&b"\x1f\x8bdata"[..]));
        assert!(tmp.path().join("blobs/ab").join(id).is_file());
        c.remove(id);
        assert_eq!(c.get(id), None);
    }
}
