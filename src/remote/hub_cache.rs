//! The Hugging Face cache layout, shared with `huggingface_hub`, `datasets`
//! and `hf download` (and `hf-hub`, whose `cache/storage.rs` implements the
//! same layout in Rust): files downloaded by any of them are reused by the
//! others.
//!
//! ```text
//! {HF_HUB_CACHE}/
//!   datasets--{owner}--{name}/
//!     refs/{revision}                 the commit a branch or tag pointed to
//!     blobs/{etag}                    file contents, named by their etag
//!     blobs/{etag}.incomplete         a download in progress (resumable)
//!     snapshots/{commit}/{path}       -> ../../(..)/blobs/{etag} (relative symlink)
//!   .locks/datasets--{owner}--{name}/{etag}.lock
//! ```
//!
//! The etag of an LFS file is its sha256 (the listing's `lfs.oid`, the
//! Hub's `X-Linked-Etag`); of a regular file, its git blob id (the
//! listing's `oid`, the Hub's `ETag`). A blob is thus named by its content:
//! a partial download under `blobs/{etag}.incomplete` can only ever be
//! completed with the same bytes, whichever commit asked for it, and an
//! unchanged file shared by two commits is stored once.
//!
//! The cache root (`huggingface_hub`'s `constants.py`): `HF_HUB_CACHE`, else
//! the older `HUGGINGFACE_HUB_CACHE`, else `$HF_HOME/hub`, with `HF_HOME`
//! from [`super::hub_token::hf_home`]; all expanded (`~`, `$VAR`).
//!
//! A revision containing `/` (`refs/convert/parquet`, `refs/pr/1`) is a
//! nested path under `refs/`, as `huggingface_hub` writes it.

use super::env::Env;
use super::hub_token::hf_home;
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Component, Path, PathBuf};

/// `HF_HUB_CACHE` as `huggingface_hub` resolves it.
pub fn default_hub_cache(env: &Env) -> PathBuf {
    match env
        .get("HF_HUB_CACHE")
        .or_else(|| env.get("HUGGINGFACE_HUB_CACHE"))
    {
        Some(p) => env.expand(&p),
        None => hf_home(env).join("hub"),
    }
}

/// Whether `rev` is a full commit id (40 hex digits).
pub fn is_commit(rev: &str) -> bool {
    rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The cache of one dataset repository.
#[derive(Clone, Debug)]
pub struct RepoCache {
    root: PathBuf,
    folder: String,
}

impl RepoCache {
    /// The cache of dataset `repo` (`owner/name`) under `root`.
    pub fn dataset(root: &Path, repo: &str) -> Result<RepoCache> {
        let parts: Vec<&str> = repo.split('/').collect();
        if parts.len() != 2 || parts.iter().any(|p| safe_component(p, repo).is_err()) {
            bail!("{repo:?} is not a dataset id of the form OWNER/NAME");
        }
        Ok(RepoCache {
            root: root.to_path_buf(),
            folder: format!("datasets--{}--{}", parts[0], parts[1]),
        })
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.folder)
    }

    /// `blobs/{etag}`.
    pub fn blob(&self, etag: &str) -> Result<PathBuf> {
        Ok(self.dir().join("blobs").join(safe_component(etag, etag)?))
    }

    /// `blobs/{etag}.incomplete`.
    pub fn incomplete(&self, etag: &str) -> Result<PathBuf> {
        Ok(super::hub::with_suffix(&self.blob(etag)?, ".incomplete"))
    }

    /// `.locks/{folder}/{etag}.lock`.
    pub fn lock(&self, etag: &str) -> Result<PathBuf> {
        Ok(self
            .root
            .join(".locks")
            .join(&self.folder)
            .join(format!("{}.lock", safe_component(etag, etag)?)))
    }

    /// `snapshots/{commit}/{path}`.
    pub fn snapshot(&self, commit: &str, path: &str) -> Result<PathBuf> {
        let mut p = self
            .dir()
            .join("snapshots")
            .join(safe_component(commit, commit)?);
        for part in path.split('/') {
            p.push(safe_component(part, path)?);
        }
        Ok(p)
    }

    fn ref_path(&self, revision: &str) -> Result<PathBuf> {
        let mut p = self.dir().join("refs");
        for part in revision.split('/') {
            p.push(safe_component(part, revision)?);
        }
        Ok(p)
    }

    /// The commit `refs/{revision}` records, if any.
    pub fn read_ref(&self, revision: &str) -> Result<Option<String>> {
        let p = self.ref_path(revision)?;
        match fs::read_to_string(&p) {
            Ok(t) => Ok(Some(t.trim().to_string()).filter(|c| is_commit(c))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", p.display())),
        }
    }

    /// Records that `revision` points to `commit` (no-op for a commit).
    pub fn write_ref(&self, revision: &str, commit: &str) -> Result<()> {
        if revision == commit {
            return Ok(());
        }
        let p = self.ref_path(revision)?;
        if fs::read_to_string(&p).is_ok_and(|t| t.trim() == commit) {
            return Ok(());
        }
        let dir = p.parent().expect("ref has a parent");
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Beside it, then renamed over: a reader sees the old or the new
        // commit. No fsync: a ref lost in a crash is only asked again.
        let tmp = super::hub::with_suffix(&p, &format!(".tmp{}", std::process::id()));
        fs::write(&tmp, commit).with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &p).with_context(|| format!("cannot write {}", p.display()))
    }

    /// Points `snapshots/{commit}/{path}` at `blobs/{etag}` with a relative
    /// symlink, as `huggingface_hub` does; replaces a wrong one.
    pub fn link_snapshot(&self, commit: &str, path: &str, etag: &str) -> Result<PathBuf> {
        let link = self.snapshot(commit, path)?;
        let blob = self.blob(etag)?;
        let dir = link.parent().expect("snapshot has a parent");
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // snapshots/{commit}/a/b/file -> ../../../../blobs/{etag}
        let depth = path.split('/').count() + 1;
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(blob.file_name().expect("blob name"));
        if fs::read_link(&link).is_ok_and(|t| t == target) {
            return Ok(link);
        }
        // Build the link beside it and rename it over: readers of the
        // snapshot never see it missing.
        let tmp = super::hub::with_suffix(&link, &format!(".tmp{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&target, &tmp)
            .with_context(|| format!("cannot create the symlink {}", tmp.display()))?;
        fs::rename(&tmp, &link)
            .with_context(|| format!("cannot move the symlink to {}", link.display()))?;
        Ok(link)
    }
}

/// One path component from an (untrusted) listing or revision, refusing
/// anything that could escape the cache directory.
pub fn safe_component<'a>(part: &'a str, whole: &str) -> Result<&'a str> {
    let mut comps = Path::new(part).components();
    match (comps.next(), comps.next()) {
        (Some(Component::Normal(_)), None) if !part.contains('\\') => Ok(part),
        _ => bail!("refusing unsafe path {whole:?} from the Hub"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_root_follows_huggingface_hub() {
        let env = |pairs: &[(&str, &str)]| {
            let mut all = vec![("HOME", "/home/u")];
            all.extend_from_slice(pairs);
            default_hub_cache(&Env::fixed(all.iter().copied()))
        };
        assert_eq!(env(&[]), PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(
            env(&[("XDG_CACHE_HOME", "/xdg")]),
            PathBuf::from("/xdg/huggingface/hub")
        );
        assert_eq!(env(&[("HF_HOME", "~/hf")]), PathBuf::from("/home/u/hf/hub"));
        assert_eq!(
            env(&[("HF_HOME", "/a"), ("HUGGINGFACE_HUB_CACHE", "/old")]),
            PathBuf::from("/old")
        );
        assert_eq!(
            env(&[("HUGGINGFACE_HUB_CACHE", "/old"), ("HF_HUB_CACHE", "~/c")]),
            PathBuf::from("/home/u/c")
        );
    }

    #[test]
    fn layout_paths_refs_and_relative_snapshot_links() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = RepoCache::dataset(tmp.path(), "bigcode/the-stack-v2-dedup").expect("repo");
        let commit = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            c.snapshot(commit, "data/Python/a.parquet").expect("ok"),
            tmp.path().join(format!(
                "datasets--bigcode--the-stack-v2-dedup/snapshots/{commit}/data/Python/a.parquet"
            ))
        );
        assert_eq!(
            c.lock("e1").expect("ok"),
            tmp.path()
                .join(".locks/datasets--bigcode--the-stack-v2-dedup/e1.lock")
        );
        assert_eq!(c.read_ref("main").expect("ok"), None);
        c.write_ref("refs/convert/parquet", commit).expect("ref");
        assert!(c.dir().join("refs/refs/convert/parquet").is_file());
        assert_eq!(
            c.read_ref("refs/convert/parquet").expect("ok").as_deref(),
            Some(commit)
        );
        std::fs::create_dir_all(c.dir().join("blobs")).expect("mkdir");
        std::fs::write(c.blob("e1").expect("blob"), b"bytes").expect("write");
        let link = c
            .link_snapshot(commit, "data/Python/a.parquet", "e1")
            .expect("link");
        assert_eq!(
            std::fs::read_link(&link).expect("symlink"),
            PathBuf::from("../../../../blobs/e1")
        );
        assert_eq!(std::fs::read(&link).expect("through the link"), b"bytes");
        assert!(c.snapshot(commit, "../x").is_err());
        assert!(c.snapshot(commit, "/etc/passwd").is_err());
        assert!(c.blob("../x").is_err());
        assert!(RepoCache::dataset(tmp.path(), "a/../b").is_err());
        assert!(is_commit(commit) && !is_commit("main"));
    }
}
