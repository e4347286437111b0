//! Hugging Face Hub client: pin a revision to its commit, list a dataset's
//! files at that commit, download them into the standard Hugging Face cache
//! (resumable, size and checksum checked).
//!
//! Protocol (the endpoints `huggingface_hub` uses):
//! - revision: `GET {endpoint}/api/datasets/{repo}/revision/{rev}` (the
//!   revision percent-encoded as one segment, `refs%2Fconvert%2Fparquet`)
//!   answers `{"sha": COMMIT, ...}`. A run resolves its revision once and
//!   lists and downloads by that commit only, so a branch that moves during
//!   the run (BigCode rewrites shards in place for opt-out removals) cannot
//!   mix two versions of a dataset; the commit is recorded in the stats
//!   and `refs/{rev}` of the cache;
//! - listing: `GET {endpoint}/api/datasets/{repo}/tree/{commit}/{path}`
//!   (`?recursive=true` for a subtree) returns JSON entries
//!   `{"type": "file"|"directory", "path", "size", "oid", "lfs": {"oid": <sha256>}}`,
//!   paginated with an RFC 8288 `Link: <...>; rel="next"` header that we
//!   follow until it disappears (`hf-hub` and `huggingface_hub` paginate the
//!   same way; we keep our own blocking loop);
//! - download: `GET {endpoint}/datasets/{repo}/resolve/{commit}/{path}`. The
//!   Hub answers LFS files with a redirect to its CDN that carries
//!   `X-Repo-Commit` and `X-Linked-Etag`; we follow it ourselves so that we
//!   can check both against what we pinned and listed, and so that the token
//!   only travels to the Hub's own host.
//!
//! Cache: the `huggingface_hub` layout ([`super::hub_cache`]), so shards that
//! `datasets` or `hf download` fetched are used as they are, and ours serve
//! them. Download protocol, so that a crash or a cut connection never leaves
//! a wrong file in the cache:
//! 1. `.locks/.../{etag}.lock` (an advisory `flock`, the lock
//!    `huggingface_hub`'s `filelock` takes) keeps two processes off one blob;
//! 2. bytes go to `blobs/{etag}.incomplete`, appended in order, so its length
//!    is the resume offset (`Range: bytes=N-`). The blob is named by its
//!    content hash, so a part is only ever completed with its own bytes: we
//!    need no `If-Range` (which the CDN could not honour anyway, its
//!    validators being its own), and a partial file of another commit's
//!    version is simply another blob;
//! 3. when the part reaches the listed size, its sha256 is compared with the
//!    LFS oid of the listing; a mismatch deletes the part and is an error;
//! 4. the part is renamed onto `blobs/{etag}` (atomic on one filesystem) and
//!    `snapshots/{commit}/{path}` is linked to it.
//!
//! A blob already present with the listed size is trusted without hashing
//! (that is how `huggingface_hub` treats its cache, and its name is its
//! sha256).
//!
//! `HF_HUB_OFFLINE=1` resolves revisions from `refs/` and lists from
//! `snapshots/`, sending nothing.

use super::env::Env;
use super::http::{classify_io, header, HttpClient, HttpError, HttpSettings};
use super::hub_cache::{default_hub_cache, is_commit, RepoCache};
use super::hub_token::{discover_token, HubToken};
use super::transfer_stats::TransferStats;
use anyhow::{anyhow, bail, Context, Result};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where and how to reach the Hub.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// `HF_ENDPOINT`, else `https://huggingface.co`.
    pub endpoint: String,
    /// Discovered as `huggingface_hub` does ([`super::hub_token`]).
    pub token: Option<HubToken>,
    /// The Hugging Face cache root (`HF_HUB_CACHE`).
    pub cache_dir: PathBuf,
    /// `HF_HUB_OFFLINE`: use the cache only.
    pub offline: bool,
}

impl HubConfig {
    /// A configuration for `endpoint` with an explicit token and cache.
    pub fn new(endpoint: &str, token: Option<&str>, cache_dir: &Path) -> HubConfig {
        HubConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token: token.map(HubToken::given),
            cache_dir: cache_dir.to_path_buf(),
            offline: false,
        }
    }

    /// Reads `HF_ENDPOINT`, the token (`HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`,
    /// the `hf auth login` file), `HF_HUB_OFFLINE`, and the cache
    /// (`cache_dir` when given, else `huggingface_hub`'s `HF_HUB_CACHE`).
    pub fn from_env(env: &Env, cache_dir: Option<PathBuf>) -> Result<HubConfig> {
        let endpoint = env
            .get("HF_ENDPOINT")
            .unwrap_or_else(|| "https://huggingface.co".into());
        Ok(HubConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token: discover_token(env)?,
            cache_dir: cache_dir.unwrap_or_else(|| default_hub_cache(env)),
            offline: env.is_true("HF_HUB_OFFLINE") || env.is_true("TRANSFORMERS_OFFLINE"),
        })
    }
}

/// One file of a dataset repository at a pinned commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubFile {
    /// `owner/name`.
    pub repo: String,
    /// Path inside the repository.
    pub path: String,
    pub size: u64,
    /// LFS sha256, when the listing gives one.
    pub sha256: Option<String>,
    /// Name of its blob in the cache: the LFS sha256, else the git blob id.
    pub etag: String,
    /// The commit the file was listed at (and is downloaded from).
    pub revision: String,
}

/// What kind of Hub failure an error is; attached to the `anyhow` chain so
/// callers can tell "no such path" (try another layout) from "no access"
/// (stop and tell the user) with [`hub_error_kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HubErrorKind {
    AccessRefused,
    NotFound,
}

/// A Hub failure with its kind; displays as its message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HubError {
    pub kind: HubErrorKind,
    pub message: String,
}

/// The [`HubErrorKind`] of an error chain, if any.
pub fn hub_error_kind(e: &anyhow::Error) -> Option<HubErrorKind> {
    e.chain()
        .find_map(|c| c.downcast_ref::<HubError>().map(|h| h.kind))
}

/// One entry of a (non-recursive) directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: String,
    pub is_dir: bool,
    pub size: u64,
    pub sha256: Option<String>,
    /// Git blob id.
    pub oid: String,
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: String,
    #[serde(default)]
    lfs: Option<RawLfs>,
}

#[derive(Deserialize)]
struct RawLfs {
    oid: String,
}

#[derive(Deserialize)]
struct RawRevision {
    sha: String,
}

/// Characters escaped inside one path segment of a URL (RFC 3986
/// unreserved characters stay as they are).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes each `/`-separated segment of a repository path.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(|s| utf8_percent_encode(s, SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// Percent-encodes a whole revision as one segment (`/` too), as
/// `huggingface_hub` does with `quote(revision, safe="")`.
pub fn encode_revision(rev: &str) -> String {
    utf8_percent_encode(rev, SEGMENT).to_string()
}

/// An etag header value without `W/` and quotes.
fn normalize_etag(v: &str) -> String {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

pub struct HubClient {
    pub config: HubConfig,
    http: HttpClient,
}

impl HubClient {
    /// A client with default timeouts and retries.
    pub fn new(config: HubConfig) -> Result<HubClient> {
        HubClient::with_http(config, HttpSettings::default())
    }

    /// A client with explicit timeouts and retries (from `RemoteConfig`).
    pub fn with_http(config: HubConfig, settings: HttpSettings) -> Result<HubClient> {
        anyhow::ensure!(
            config.endpoint.starts_with("http://") || config.endpoint.starts_with("https://"),
            "Hub endpoint {:?} (HF_ENDPOINT) is not an http(s) URL",
            config.endpoint
        );
        let mut config = config;
        config.endpoint = config.endpoint.trim_end_matches('/').to_string();
        Ok(HubClient {
            config,
            http: HttpClient::new(settings, Arc::new(TransferStats::new())),
        })
    }

    /// Download counters of this client (shard bytes, requests, retries).
    pub fn stats(&self) -> &Arc<TransferStats> {
        self.http.stats()
    }

    fn auth_headers(&self) -> Vec<(String, String)> {
        match &self.config.token {
            Some(t) => vec![("Authorization".into(), format!("Bearer {}", t.value))],
            None => Vec::new(),
        }
    }

    fn repo_cache(&self, repo: &str) -> Result<RepoCache> {
        RepoCache::dataset(&self.config.cache_dir, repo)
    }

    /// The commit `revision` (branch, tag, `refs/...` or commit) of dataset
    /// `repo` points to now, recorded in the cache's `refs/`.
    pub fn resolve_commit(&self, repo: &str, revision: &str) -> Result<String> {
        if is_commit(revision) {
            return Ok(revision.to_ascii_lowercase());
        }
        let cache = self.repo_cache(repo)?;
        if self.config.offline {
            return cache.read_ref(revision)?.ok_or_else(|| {
                anyhow!(
                    "HF_HUB_OFFLINE is set, and the cache {} has no commit for revision \
                     {revision:?} of {repo}: run once online, or give a commit",
                    self.config.cache_dir.display()
                )
            });
        }
        let url = format!(
            "{}/api/datasets/{}/revision/{}",
            self.config.endpoint,
            encode_path(repo),
            encode_revision(revision)
        );
        let (_, body) = match self.http.get_with_retry(&url, &self.auth_headers()) {
            Ok(r) => r,
            Err(e) => {
                let cached = cache.read_ref(revision).ok().flatten();
                let mut err = self.hub_error(repo, revision, "", e);
                if let Some(c) = cached {
                    err = err.context(format!(
                        "cannot resolve revision {revision:?} of {repo} on the Hub (the cache \
                         has commit {c} for it: set HF_HUB_OFFLINE=1 to run from the cache)"
                    ));
                }
                return Err(err);
            }
        };
        let raw: RawRevision = serde_json::from_slice(&body).with_context(|| {
            format!(
                "the Hub's answer for revision {revision:?} of {repo} ({url}) has no commit sha"
            )
        })?;
        anyhow::ensure!(
            is_commit(&raw.sha),
            "the Hub answered {:?} as the commit of {repo}@{revision}, which is not a commit id",
            raw.sha
        );
        let commit = raw.sha.to_ascii_lowercase();
        cache.write_ref(revision, &commit)?;
        Ok(commit)
    }

    fn tree_url(&self, repo: &str, commit: &str, prefix: &str, recursive: bool) -> String {
        let mut url = format!(
            "{}/api/datasets/{}/tree/{}",
            self.config.endpoint,
            encode_path(repo),
            encode_revision(commit)
        );
        let prefix = prefix.trim_matches('/');
        if !prefix.is_empty() {
            url.push('/');
            url.push_str(&encode_path(prefix));
        }
        if recursive {
            url.push_str("?recursive=true");
        }
        url
    }

    /// Files of dataset `repo` at `revision` (pinned to its commit first)
    /// under `prefix` (empty: all), recursively, in the order the Hub lists
    /// them.
    pub fn list_dataset_files(
        &self,
        repo: &str,
        revision: &str,
        prefix: &str,
    ) -> Result<Vec<HubFile>> {
        let commit = self.resolve_commit(repo, revision)?;
        let entries = self.list_tree(repo, &commit, prefix, true)?;
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_dir)
            .map(|e| HubFile {
                repo: repo.to_string(),
                etag: e.sha256.clone().unwrap_or(e.oid),
                path: e.path,
                size: e.size,
                sha256: e.sha256,
                revision: commit.clone(),
            })
            .collect())
    }

    /// Entries (files and directories) directly under `prefix`.
    pub fn list_dir(&self, repo: &str, revision: &str, prefix: &str) -> Result<Vec<TreeEntry>> {
        let commit = self.resolve_commit(repo, revision)?;
        self.list_tree(repo, &commit, prefix, false)
    }

    fn list_tree(
        &self,
        repo: &str,
        commit: &str,
        prefix: &str,
        recursive: bool,
    ) -> Result<Vec<TreeEntry>> {
        if self.config.offline {
            return self.list_snapshot(repo, commit, prefix, recursive);
        }
        let mut url = self.tree_url(repo, commit, prefix, recursive);
        let headers = self.auth_headers();
        let mut out = Vec::new();
        // A listing of millions of files is a few thousand pages; the bound
        // only stops a server that links a page to itself forever.
        for _page in 0..100_000 {
            let (hdrs, body) = self
                .http
                .get_with_retry(&url, &headers)
                .map_err(|e| self.hub_error(repo, commit, prefix, e))?;
            let raw: Vec<RawEntry> = serde_json::from_slice(&body).with_context(|| {
                format!("the Hub listing of {repo}@{commit}/{prefix} ({url}) is not the expected JSON array")
            })?;
            for e in raw {
                out.push(TreeEntry {
                    is_dir: e.kind == "directory",
                    path: e.path,
                    size: e.size,
                    sha256: e.lfs.map(|l| l.oid),
                    oid: e.oid,
                });
            }
            let link = hdrs.get("link").and_then(|v| v.to_str().ok());
            match link.and_then(next_link) {
                Some(next) => url = self.absolute(&next),
                None => return Ok(out),
            }
        }
        bail!("the Hub listing of {repo}@{commit}/{prefix} did not end after 100000 pages")
    }

    /// The listing of a cached snapshot (offline mode): files are the
    /// snapshot's links, sizes those of their blobs, the sha256 the blob
    /// name when it is one.
    fn list_snapshot(
        &self,
        repo: &str,
        commit: &str,
        prefix: &str,
        recursive: bool,
    ) -> Result<Vec<TreeEntry>> {
        let cache = self.repo_cache(repo)?;
        let root = cache.snapshot(commit, "x")?;
        let root = root.parent().expect("snapshot dir").to_path_buf();
        let prefix = prefix.trim_matches('/');
        let start = if prefix.is_empty() {
            root.clone()
        } else {
            cache.snapshot(commit, prefix)?
        };
        if !start.is_dir() {
            return Err(anyhow::Error::new(HubError {
                kind: HubErrorKind::NotFound,
                message: format!(
                    "HF_HUB_OFFLINE is set and the cached snapshot {commit} of {repo} has no \
                     directory {prefix:?} ({})",
                    start.display()
                ),
            }));
        }
        let mut out = Vec::new();
        let mut stack = vec![start];
        while let Some(dir) = stack.pop() {
            let entries =
                fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))?;
            for entry in entries {
                let entry = entry?;
                let p = entry.path();
                let rel = p
                    .strip_prefix(&root)
                    .expect("under the snapshot")
                    .to_string_lossy()
                    .into_owned();
                let meta = fs::metadata(&p)
                    .with_context(|| format!("broken link in the cache: {}", p.display()))?;
                if meta.is_dir() {
                    out.push(TreeEntry {
                        path: rel,
                        is_dir: true,
                        size: 0,
                        sha256: None,
                        oid: String::new(),
                    });
                    if recursive {
                        stack.push(p);
                    }
                } else {
                    let etag = fs::read_link(&p)
                        .ok()
                        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
                        .unwrap_or_default();
                    let sha = (etag.len() == 64 && etag.bytes().all(|b| b.is_ascii_hexdigit()))
                        .then(|| etag.clone());
                    out.push(TreeEntry {
                        path: rel,
                        is_dir: false,
                        size: meta.len(),
                        sha256: sha,
                        oid: etag,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Resolves a `Link` or `Location` target that may be relative to `base`.
    fn absolute_to(base: &str, link: &str) -> String {
        if link.starts_with("http://") || link.starts_with("https://") {
            return link.to_string();
        }
        // Origin of the base: scheme://host[:port]
        let origin_end = base
            .find("://")
            .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
            .unwrap_or(base.len());
        format!("{}/{}", &base[..origin_end], link.trim_start_matches('/'))
    }

    fn absolute(&self, link: &str) -> String {
        HubClient::absolute_to(&self.config.endpoint, link)
    }

    /// Turns an HTTP failure into a sentence that says what to do.
    fn hub_error(&self, repo: &str, revision: &str, path: &str, e: HttpError) -> anyhow::Error {
        let page = format!("https://huggingface.co/datasets/{repo}");
        let tokens = "https://huggingface.co/settings/tokens";
        let HttpError::Status {
            status,
            message,
            error_code,
            error_message,
            ..
        } = &e
        else {
            return anyhow!(e).context(format!("Hub request for {repo}@{revision}/{path} failed"));
        };
        let mut detail = String::new();
        if let Some(c) = error_code {
            detail.push_str(&format!(" [{c}]"));
        }
        let text = error_message.as_deref().unwrap_or(message);
        if !text.is_empty() {
            detail.push_str(&format!(" {text}"));
        }
        let code = error_code.as_deref();
        let refused = |message: String| {
            anyhow::Error::new(HubError {
                kind: HubErrorKind::AccessRefused,
                message,
            })
        };
        match (*status, &self.config.token) {
            // The Hub's answer to a token it does not accept, whatever the
            // repository (public ones included): the token is the problem.
            (401, Some(t)) if code != Some("RepoNotFound") && code != Some("GatedRepo") => {
                refused(format!(
                    "the Hub refused the token from {} (HTTP 401{detail}): it is invalid, \
                     expired or revoked. Create a new read token at {tokens} and run `hf auth \
                     login` or set HF_TOKEN to it; {repo} itself may well be public (unset the \
                     token, or set HF_HUB_DISABLE_IMPLICIT_TOKEN=1, to read it anonymously)",
                    t.source
                ))
            }
            (401 | 403, None) if code != Some("RepoNotFound") => refused(format!(
                "the Hub refused access to dataset {repo} (HTTP {status}{detail}). It is gated \
                 or private: sign in at {page}, accept the dataset's terms, create a read token \
                 at {tokens} and set HF_TOKEN to it (or run `hf auth login`)"
            )),
            (403, Some(t)) if code == Some("GatedRepo") => refused(format!(
                "the Hub refused the token from {} for gated dataset {repo} (HTTP 403{detail}): \
                 accept the dataset's terms at {page} with the account that owns the token",
                t.source
            )),
            (403, Some(t)) => refused(format!(
                "the Hub refused the token from {} for dataset {repo} (HTTP 403{detail}): the \
                 token lacks read access to it (a fine-grained token needs this repository or \
                 public gated repositories allowed); check it at {tokens}",
                t.source
            )),
            (401 | 404, _) if code == Some("RepoNotFound") => {
                let who = match &self.config.token {
                    Some(t) => format!("the account of the token from {}", t.source),
                    None => "anonymous requests (no token)".into(),
                };
                anyhow::Error::new(HubError {
                    kind: HubErrorKind::NotFound,
                    message: format!(
                        "dataset {repo} was not found on the Hub (HTTP {status}{detail}): check \
                         its name; if it is private, {who} cannot see it"
                    ),
                })
            }
            (404, _) => anyhow::Error::new(HubError {
                kind: HubErrorKind::NotFound,
                message: format!(
                    "not found on the Hub: dataset {repo}, revision {revision:?}, path {path:?} \
                     ({}). Check the hf:// URI and --hf-revision",
                    detail.trim()
                ),
            }),
            _ => anyhow!(e).context(format!("Hub request for {repo}@{revision}/{path} failed")),
        }
    }

    /// Cache location of `file`: `snapshots/{commit}/{path}` of its repo.
    pub fn cache_path(&self, file: &HubFile) -> Result<PathBuf> {
        self.repo_cache(&file.repo)?
            .snapshot(&file.revision, &file.path)
    }

    /// Bytes of `file` already on disk (complete or partial), for the disk
    /// space estimate.
    pub fn cached_bytes(&self, file: &HubFile) -> u64 {
        let Ok(cache) = self.repo_cache(&file.repo) else {
            return 0;
        };
        if let Ok(blob) = cache.blob(&file.etag) {
            if fs::metadata(&blob).is_ok_and(|m| m.len() == file.size) {
                return file.size;
            }
        }
        cache
            .incomplete(&file.etag)
            .ok()
            .and_then(|p| fs::metadata(p).ok())
            .map_or(0, |m| m.len().min(file.size))
    }

    /// Downloads `file` into the cache (or finds it there) and returns its
    /// snapshot path.
    pub fn download(&self, file: &HubFile) -> Result<PathBuf> {
        self.download_cancellable(file, &AtomicBool::new(false))
    }

    /// Whether the blob of `file` is complete in the cache.
    fn blob_present(&self, cache: &RepoCache, file: &HubFile) -> Result<bool> {
        Ok(
            fs::metadata(cache.blob(&file.etag)?)
                .is_ok_and(|m| m.is_file() && m.len() == file.size),
        )
    }

    /// [`download`](Self::download) that stops (keeping the part file for a
    /// later resume) as soon as `cancel` is set.
    pub fn download_cancellable(&self, file: &HubFile, cancel: &AtomicBool) -> Result<PathBuf> {
        let cache = self.repo_cache(&file.repo)?;
        let link = |this: &Self| -> Result<PathBuf> {
            this.stats().add_cache_hit();
            cache.link_snapshot(&file.revision, &file.path, &file.etag)
        };
        if self.blob_present(&cache, file)? {
            return link(self);
        }
        if self.config.offline {
            bail!(
                "HF_HUB_OFFLINE is set and {} of {} (commit {}) is not in the cache {}",
                file.path,
                file.repo,
                file.revision,
                self.config.cache_dir.display()
            );
        }
        let lock_path = cache.lock(&file.etag)?;
        let lock_dir = lock_path.parent().expect("lock has a parent");
        fs::create_dir_all(lock_dir)
            .with_context(|| format!("cannot create cache directory {}", lock_dir.display()))?;
        let lock = File::create(&lock_path)
            .with_context(|| format!("cannot create lock file {}", lock_path.display()))?;
        fs4::FileExt::lock(&lock)
            .with_context(|| format!("cannot lock {}", lock_path.display()))?;
        // Another process may have finished it while we waited for the lock.
        if self.blob_present(&cache, file)? {
            return link(self);
        }
        let blob = cache.blob(&file.etag)?;
        let blob_dir = blob.parent().expect("blob has a parent");
        fs::create_dir_all(blob_dir)
            .with_context(|| format!("cannot create cache directory {}", blob_dir.display()))?;
        let part = cache.incomplete(&file.etag)?;
        let url = format!(
            "{}/datasets/{}/resolve/{}/{}",
            self.config.endpoint,
            encode_path(&file.repo),
            encode_revision(&file.revision),
            encode_path(&file.path)
        );
        let mut retrier = self.http.retrier();
        loop {
            if cancel.load(Ordering::Relaxed) {
                bail!("download of {} cancelled", file.path);
            }
            let before = part_len(&part);
            match self.download_attempt(file, &url, &part, cancel) {
                Ok(()) => break,
                Err(HttpError::Cancelled) => bail!("download of {} cancelled", file.path),
                Err(e) => {
                    let progressed = part_len(&part) > before;
                    match retrier.next_delay(&e, progressed) {
                        Some(d) => {
                            self.stats().add_retry();
                            if super::http::sleep_cancellable(d, Some(cancel)).is_err() {
                                bail!("download of {} cancelled", file.path);
                            }
                        }
                        None => {
                            self.stats().add_failure("hub_download_failed");
                            let attempts = retrier.used() + 1;
                            return Err(self
                                .hub_error(&file.repo, &file.revision, &file.path, e)
                                .context(format!(
                                    "downloading {} of {} ({} attempts since the last progress)",
                                    file.path, file.repo, attempts
                                )));
                        }
                    }
                }
            }
        }
        self.verify_part(file, &part)?;
        fs::rename(&part, &blob)
            .with_context(|| format!("cannot move {} to {}", part.display(), blob.display()))?;
        self.stats().add_completed();
        let path = cache.link_snapshot(&file.revision, &file.path, &file.etag)?;
        drop(lock);
        Ok(path)
    }

    /// Sends the resolve request and follows the Hub's redirect ourselves:
    /// the Hub's answer must name the pinned commit and the listed etag, and
    /// the token goes to the Hub's host only.
    fn open_download(
        &self,
        file: &HubFile,
        url: &str,
        range: Option<u64>,
    ) -> Result<super::http::BodyResponse, HttpError> {
        let mut target = url.to_string();
        let hub_origin = origin(&self.config.endpoint);
        for _hop in 0..10 {
            let mut headers = if origin(&target) == hub_origin {
                self.auth_headers()
            } else {
                Vec::new()
            };
            if let Some(n) = range {
                headers.push(("Range".into(), format!("bytes={n}-")));
            }
            let resp = self.http.send_manual(&target, &headers)?;
            let mismatch = |what: &str, got: &str, want: &str| HttpError::Fatal {
                url: target.clone(),
                detail: format!(
                    "the Hub answered {what} {got} for {} where we pinned {want}; the \
                     repository changed under us or a mirror serves another version",
                    file.path
                ),
            };
            if let Some(c) = header(&resp, "x-repo-commit") {
                if !c.eq_ignore_ascii_case(&file.revision) {
                    return Err(mismatch("commit", &c, &file.revision));
                }
            }
            let linked = header(&resp, "x-linked-etag").map(|e| normalize_etag(&e));
            if let Some(e) = &linked {
                if *e != file.etag {
                    return Err(mismatch("etag", e, &file.etag));
                }
            }
            if resp.status().is_redirection() {
                let loc = header(&resp, "location").expect("send_manual checked Location");
                target = HubClient::absolute_to(&target, &loc);
                continue;
            }
            return Ok(resp);
        }
        Err(HttpError::Fatal {
            url: url.to_string(),
            detail: "more than 10 redirects".into(),
        })
    }

    /// One request: appends to the part file from its current length.
    fn download_attempt(
        &self,
        file: &HubFile,
        url: &str,
        part: &Path,
        cancel: &AtomicBool,
    ) -> Result<(), HttpError> {
        let io_err = |e: std::io::Error| HttpError::Fatal {
            url: part.display().to_string(),
            detail: format!("cannot write the partial download: {e}"),
        };
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(part)
            .map_err(io_err)?;
        let mut have = f.metadata().map_err(io_err)?.len();
        if have > file.size {
            f.set_len(0).map_err(io_err)?;
            have = 0;
        }
        if have == file.size {
            return Ok(());
        }
        let resp = match self.open_download(file, url, (have > 0).then_some(have)) {
            Err(HttpError::Status { status: 416, .. }) => {
                // Our offset does not fit the server's file: start over.
                f.set_len(0).map_err(io_err)?;
                return Err(HttpError::Transport {
                    url: url.into(),
                    detail: "range not satisfiable; restarting from the first byte".into(),
                });
            }
            other => other?,
        };
        let start = match resp.status().as_u16() {
            206 => {
                let range = header(&resp, "content-range").unwrap_or_default();
                match content_range_start(&range) {
                    Some(s) if s == have => have,
                    _ => {
                        f.set_len(0).map_err(io_err)?;
                        return Err(HttpError::Transport {
                            url: url.into(),
                            detail: format!(
                                "asked for bytes {have}- but got Content-Range {range:?}; restarting"
                            ),
                        });
                    }
                }
            }
            // The server ignored our Range (or we asked for none).
            _ => {
                f.set_len(0).map_err(io_err)?;
                0
            }
        };
        f.seek(SeekFrom::Start(start)).map_err(io_err)?;
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(HttpError::Cancelled);
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    f.flush().map_err(io_err)?;
                    return Err(classify_io(url, e));
                }
            };
            f.write_all(&buf[..n]).map_err(io_err)?;
            self.stats().add_bytes(n as u64);
        }
        f.flush().map_err(io_err)?;
        Ok(())
    }

    /// Checks size and sha256 of a finished part file; a bad part is deleted.
    fn verify_part(&self, file: &HubFile, part: &Path) -> Result<()> {
        let len = part_len(part);
        if len != file.size {
            let _ = fs::remove_file(part);
            self.stats().add_failure("hub_size_mismatch");
            bail!(
                "size mismatch for {} of {}: the Hub listed {} bytes, the download has {len}",
                file.path,
                file.repo,
                file.size
            );
        }
        if let Some(expected) = &file.sha256 {
            let got = sha256_file(part)?;
            if !got.eq_ignore_ascii_case(expected) {
                let _ = fs::remove_file(part);
                self.stats().add_failure("hub_checksum_mismatch");
                bail!(
                    "checksum mismatch for {} of {}: sha256 {got}, the Hub listed {expected}; \
                     the partial download was deleted, run again to download it anew",
                    file.path,
                    file.repo
                );
            }
        }
        Ok(())
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let end = url
        .find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(url.len());
    &url[..end]
}

fn part_len(part: &Path) -> u64 {
    fs::metadata(part).map_or(0, |m| m.len())
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Hex sha256 of a file, read in 1 MiB blocks.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// First byte of `Content-Range: bytes START-END/TOTAL`.
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (start, _) = rest.split_once('-')?;
    start.trim().parse().ok()
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    // Entries are `<url>; param; param`, separated by commas; a URL may
    // itself contain commas, so we split on `<` boundaries instead.
    for entry in header.split('<').skip(1) {
        let (url, params) = entry.split_once('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            let Some(v) = p.strip_prefix("rel=") else {
                return false;
            };
            v.trim_matches('"').split_whitespace().any(|r| r == "next")
        });
        if is_next {
            return Some(url.trim().to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next_is_found() {
        let h = r#"<https://huggingface.co/api/datasets/a/b/tree/main?recursive=true&cursor=abc%3D>; rel="next""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://huggingface.co/api/datasets/a/b/tree/main?recursive=true&cursor=abc%3D")
        );
        let two = r#"<http://x/prev,1>; rel="prev", <http://x/next?a=1,2>; rel="next""#;
        assert_eq!(next_link(two).as_deref(), Some("http://x/next?a=1,2"));
        assert_eq!(next_link(r#"<http://x/p>; rel="prev""#), None);
        assert_eq!(next_link(""), None);
    }

    #[test]
    fn content_range_parses() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }

    #[test]
    fn paths_are_encoded_per_segment() {
        assert_eq!(
            encode_path("data/C++/train 1.parquet"),
            "data/C%2B%2B/train%201.parquet"
        );
        assert_eq!(encode_path("data/C#/a.parquet"), "data/C%23/a.parquet");
    }

    #[test]
    fn revisions_are_one_segment_and_etags_normalised() {
        assert_eq!(
            encode_revision("refs/convert/parquet"),
            "refs%2Fconvert%2Fparquet"
        );
        assert_eq!(encode_revision("main"), "main");
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
        assert_eq!(normalize_etag("\"abc\""), "abc");
        assert_eq!(origin("http://127.0.0.1:8/a/b"), "http://127.0.0.1:8");
        assert_eq!(
            HubClient::absolute_to("http://h:1/datasets/a/b", "/cdn/x"),
            "http://h:1/cdn/x"
        );
    }

    #[test]
    fn endpoint_must_be_http() {
        let r = HubClient::new(HubConfig::new("ftp://x", None, Path::new("/c")));
        assert!(r.is_err());
    }
}
