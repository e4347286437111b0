//! The run's input list: local files and directories, and `hf://` datasets
//! on the Hugging Face Hub, as one sorted list of shards with stable ordinals.
//!
//! Local inputs come first (sorted by path, see [`crate::sources::discover`]),
//! then each Hub dataset's Parquet shards sorted by their path in the
//! repository. Hub shards are listed up front (sizes known, so progress has a
//! total and the disk check has a need) and downloaded by a [`Prefetcher`] a
//! few shards ahead of the one being processed, so reading starts as soon as
//! the first shard is in the cache.
//!
//! `--repos` repositories come last, one shard per repository in list
//! order, made by [`crate::sources::repos`] before phase 1 starts.

use super::work_dir::WorkDir;
use crate::remote::{self, HfUri, HubClient, HubFile, HubShards, Prefetcher, RemoteConfig};
use crate::sources::repos::{self as repo_source, RepoInput, ReposConfig};
use crate::sources::{self, Format, InputFile};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// The seed's primary source, used when `curate` gets no `--source`.
pub const DEFAULT_SOURCE: &str = "hf://bigcode/the-stack-v2-dedup";

/// Every input shard of the run.
pub struct ResolvedInputs {
    pub files: Vec<InputFile>,
    /// A stable name per input for the run fingerprint: the local path, or
    /// `hf://repo@revision/path` (not the cache path, which `--hf-cache` moves).
    pub labels: Vec<String>,
    /// Hub shards by ordinal, with the client that downloads them.
    pub hub: Option<HubInputs>,
    /// The content store the Hub datasets call for (Software Heritage's S3
    /// bucket for The Stack v2 and Stack-Edu), when any.
    pub default_content_store: Option<&'static str>,
    /// The listings, for the disk-space check.
    pub hub_shards: Vec<HubShards>,
    /// `--repos`: each listed repository with the ordinal of its shard.
    pub repos: Vec<(u32, RepoInput)>,
    /// `--refresh-stars`: what the refresh did.
    pub stars_refresh: Option<crate::sources::repos::stars::StarsReport>,
}

/// The label of a repository's shard. It names the repository, not the
/// commit: a moved branch keeps the run's input list (and with it the work
/// directory) and only that repository's shard is redone, see
/// [`discard_moved_repos`].
pub const REPO_LABEL_PREFIX: &str = "repo:";

pub struct HubInputs {
    pub client: Arc<HubClient>,
    /// `(ordinal, file)` of every Hub shard.
    pub files: Vec<(u32, HubFile)>,
}

/// Resolves `--source` values (paths or `hf://` URIs) for `language`.
pub fn resolve(
    specs: &[String],
    language: &str,
    remote: &RemoteConfig,
    repos: Option<&ReposConfig>,
    quiet: bool,
) -> Result<ResolvedInputs> {
    let (hub_specs, local): (Vec<&String>, Vec<&String>) =
        specs.iter().partition(|s| HfUri::is_hf_uri(s));
    let mut files = if local.is_empty() {
        Vec::new()
    } else {
        sources::discover(&local.iter().map(PathBuf::from).collect::<Vec<_>>())?
    };
    let mut labels: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    let mut resolved = ResolvedInputs {
        files: Vec::new(),
        labels: Vec::new(),
        hub: None,
        default_content_store: None,
        hub_shards: Vec::new(),
        repos: Vec::new(),
        stars_refresh: None,
    };
    if !hub_specs.is_empty() {
        let client = Arc::new(remote::hub_client(remote)?);
        let mut hub_files = Vec::new();
        for spec in hub_specs {
            let shards = HubShards::resolve(spec, Some(language), &remote.hf_revision, &client)?;
            resolved.default_content_store = resolved
                .default_content_store
                .or(shards.default_content_store());
            for f in &shards.files {
                let ordinal = files.len() as u32;
                let path = client.cache_path(f)?;
                files.push(InputFile {
                    path,
                    ordinal,
                    format: Format::Parquet,
                    size: f.size,
                });
                labels.push(format!("hf://{}@{}/{}", f.repo, f.revision, f.path));
                hub_files.push((ordinal, f.clone()));
            }
            resolved.hub_shards.push(shards);
        }
        resolved.hub = Some(HubInputs {
            client,
            files: hub_files,
        });
    }
    if let Some(cfg) = repos {
        let canonical = crate::filters::canonical_language(language);
        let (prepared, stars) = repo_source::prepare(cfg, &canonical, quiet)?;
        resolved.stars_refresh = stars;
        for r in prepared {
            let ordinal = u32::try_from(files.len()).context("too many inputs")?;
            let (path, size) = match &r.outcome {
                Ok(s) => (s.path.clone(), s.size),
                Err(_) => (PathBuf::from(format!("repo {}", r.entry.repo)), 0),
            };
            files.push(InputFile {
                path,
                ordinal,
                format: Format::Jsonl,
                size,
            });
            labels.push(format!("{REPO_LABEL_PREFIX}{}", r.entry.repo));
            resolved.repos.push((ordinal, r));
        }
    }
    resolved.files = files;
    resolved.labels = labels;
    Ok(resolved)
}

/// Every repository of the run with its resolved commit and counts, for
/// the stats.
pub fn repo_stats(inputs: &ResolvedInputs) -> serde_json::Value {
    inputs.repos.iter().map(|(_, r)| r.stats()).collect()
}

/// Phase 1's resume rule per repository: a shard finished over another
/// commit (a branch that moved since) or other entry settings (refreshed
/// stars, a declared license) is discarded, and with it the global steps
/// built on it. `WORK/repos/part-NNNNNN.commit` remembers the shard file
/// (named by commit and settings) each repository's part is made from.
pub fn discard_moved_repos(inputs: &ResolvedInputs, work: &WorkDir) -> Result<()> {
    if inputs.repos.is_empty() {
        return Ok(());
    }
    let dir = work.root.join("repos");
    super::cleanup::create_dir_all(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    for (ordinal, r) in &inputs.repos {
        let Ok(shard) = &r.outcome else { continue };
        let marker = dir.join(format!("part-{ordinal:06}.commit"));
        let made_from = shard
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| shard.commit.clone());
        let before = std::fs::read_to_string(&marker).ok();
        if before.as_deref() == Some(made_from.as_str()) {
            continue;
        }
        if before.is_some() {
            work.discard_shard(*ordinal)?;
            let global = work.global_dir();
            if global.exists() {
                std::fs::remove_dir_all(&global)
                    .with_context(|| format!("cannot remove {}", global.display()))?;
            }
        }
        crate::output::atomic::write_atomic(&marker, made_from.as_bytes())?;
    }
    Ok(())
}

/// What each Hub dataset of the run was pinned to, for the stats:
/// `[{"repo", "revision", "commit", "dir", "shards"}]`.
pub fn pinned_revisions(inputs: &ResolvedInputs) -> serde_json::Value {
    inputs
        .hub_shards
        .iter()
        .map(|s| {
            serde_json::json!({
                "repo": s.uri.repo,
                "revision": s.revision,
                "commit": s.commit,
                "dir": s.dir,
                "shards": s.files.len(),
            })
        })
        .collect()
}

/// Hands out local paths of the shards to process, in processing order,
/// downloading Hub shards ahead.
pub struct ShardFetcher {
    prefetcher: Option<(Prefetcher, Vec<u32>)>,
    /// Repositories that could not be fetched, by ordinal: their shard
    /// fails with the reason.
    repo_failures: Vec<(u32, String)>,
}

impl ShardFetcher {
    /// `todo` are the ordinals this run will process, in order.
    pub fn new(inputs: &ResolvedInputs, todo: &[u32], remote: &RemoteConfig) -> ShardFetcher {
        let repo_failures: Vec<(u32, String)> = inputs
            .repos
            .iter()
            .filter_map(|(o, r)| {
                r.outcome.as_ref().err().map(|e| {
                    (
                        *o,
                        format!("repository {} ({}): {e}", r.entry.repo, r.entry.url),
                    )
                })
            })
            .collect();
        let Some(hub) = &inputs.hub else {
            return ShardFetcher {
                prefetcher: None,
                repo_failures,
            };
        };
        let wanted: Vec<(u32, HubFile)> = todo
            .iter()
            .filter_map(|o| hub.files.iter().find(|(ord, _)| ord == o).cloned())
            .collect();
        if wanted.is_empty() {
            return ShardFetcher {
                prefetcher: None,
                repo_failures,
            };
        }
        let ordinals = wanted.iter().map(|(o, _)| *o).collect();
        let files = wanted.into_iter().map(|(_, f)| f).collect();
        let pre = Prefetcher::new(
            hub.client.clone(),
            files,
            remote.prefetch,
            remote.download_concurrency,
        );
        ShardFetcher {
            prefetcher: Some((pre, ordinals)),
            repo_failures,
        }
    }

    /// Blocks until input `input` is on local disk (a no-op for local files).
    pub fn ready(&self, input: &InputFile) -> Result<()> {
        if let Some((_, why)) = self.repo_failures.iter().find(|(o, _)| *o == input.ordinal) {
            anyhow::bail!("{why}");
        }
        if let Some((pre, ordinals)) = &self.prefetcher {
            if let Some(i) = ordinals.iter().position(|&o| o == input.ordinal) {
                let path = pre.get(i)?;
                debug_assert_eq!(path, input.path);
            }
        }
        Ok(())
    }
}

/// Whether input `ordinal` is on local disk before [`ShardFetcher::ready`]
/// is asked for it: not a Hub shard (downloaded on demand) nor a repository
/// that could not be fetched.
pub fn is_local(inputs: &ResolvedInputs, ordinal: u32) -> bool {
    let hub = inputs
        .hub
        .as_ref()
        .is_some_and(|h| h.files.iter().any(|(o, _)| *o == ordinal));
    let failed_repo = inputs
        .repos
        .iter()
        .any(|(o, r)| *o == ordinal && r.outcome.is_err());
    !hub && !failed_repo
}
