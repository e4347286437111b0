//! The run's input list: local files and directories, and `hf://` datasets
//! on the Hugging Face Hub, as one sorted list of shards with stable ordinals.
//!
//! Local inputs come first (sorted by path, see [`crate::sources::discover`]),
//! then each Hub dataset's Parquet shards sorted by their path in the
//! repository. Hub shards are listed up front (sizes known, so progress has a
//! total and the disk check has a need) and downloaded by a [`Prefetcher`] a
//! few shards ahead of the one being processed, so reading starts as soon as
//! the first shard is in the cache.

use crate::remote::{self, HfUri, HubClient, HubFile, HubShards, Prefetcher, RemoteConfig};
use crate::sources::{self, Format, InputFile};
use anyhow::Result;
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
}

pub struct HubInputs {
    pub client: Arc<HubClient>,
    /// `(ordinal, file)` of every Hub shard.
    pub files: Vec<(u32, HubFile)>,
}

/// Resolves `--source` values (paths or `hf://` URIs) for `language`.
pub fn resolve(specs: &[String], language: &str, remote: &RemoteConfig) -> Result<ResolvedInputs> {
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
    resolved.files = files;
    resolved.labels = labels;
    Ok(resolved)
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
}

impl ShardFetcher {
    /// `todo` are the ordinals this run will process, in order.
    pub fn new(inputs: &ResolvedInputs, todo: &[u32], remote: &RemoteConfig) -> ShardFetcher {
        let Some(hub) = &inputs.hub else {
            return ShardFetcher { prefetcher: None };
        };
        let wanted: Vec<(u32, HubFile)> = todo
            .iter()
            .filter_map(|o| hub.files.iter().find(|(ord, _)| ord == o).cloned())
            .collect();
        if wanted.is_empty() {
            return ShardFetcher { prefetcher: None };
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
        }
    }

    /// Blocks until input `input` is on local disk (a no-op for local files).
    pub fn ready(&self, input: &InputFile) -> Result<()> {
        if let Some((pre, ordinals)) = &self.prefetcher {
            if let Some(i) = ordinals.iter().position(|&o| o == input.ordinal) {
                let path = pre.get(i)?;
                debug_assert_eq!(path, input.path);
            }
        }
        Ok(())
    }
}
