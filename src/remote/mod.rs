//! Remote sources: the Hugging Face Hub and Software Heritage contents.
//!
//! Two things live far away: the Parquet shards of a Hub dataset (rows with
//! metadata, and for The Stack v1 the content too), and for The Stack v2 and
//! Stack-Edu the file contents themselves, gzip blobs in Software Heritage's
//! S3 bucket keyed by `blob_id`. This module reads both with one HTTP client
//! ([`http`]: timeouts, exponential backoff on 5xx/429/timeouts/resets, none
//! on 401/403/404) and counts every transfer ([`transfer_stats`]). Its
//! settings are [`RemoteConfig`], which `cli/` fills from the flags.
//! User documentation: `docs/remote-sources.md`.
//!
//! # API for the pipeline
//!
//! Hub shards (`--source hf://OWNER/NAME[/PATH]`):
//!
//! ```no_run
//! # fn demo(cfg: &tritter_gpu::remote::RemoteConfig) -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use tritter_gpu::remote::{hub_client, HubShards, Prefetcher, SpaceNeed, SpaceTargets, check_space};
//! let client = Arc::new(hub_client(cfg)?);   // HF_ENDPOINT, token discovery, HF_HUB_CACHE
//! let shards = HubShards::resolve("hf://bigcode/the-stack-v2-dedup", Some("python"),
//!                                 &cfg.hf_revision, &client)?; // pinned commit, sorted, sizes known
//! // Before a full run (no --max-samples): refuse when the disk is too small.
//! let need = SpaceNeed::for_shards(&shards, &client, /* catalog raw bytes */ None,
//!                                  cfg.blob_cache.is_some());
//! let targets = SpaceTargets { hub_cache: client.config.cache_dir.clone(),
//!                              output: "data/curated".into(), blob_cache: cfg.blob_cache.clone() };
//! check_space(&need, &targets, cfg.force)?;
//! let pre = Prefetcher::new(client.clone(), shards.files.clone(),
//!                           cfg.prefetch, cfg.download_concurrency);
//! for i in 0..pre.len() {
//!     let path = pre.get(i)?;      // blocks until shard i is verified in the cache
//!     // ... read the Parquet file at `path`; break when --max-samples is reached
//! }
//! drop(pre);                       // cancels downloads still running (parts kept)
//! println!("{}", client.stats().snapshot());            // bytes, rate, retries, failures
//! # Ok(()) }
//! ```
//!
//! Content stores (`--content-store`; for Stack v2 / Stack-Edu the default is
//! [`hub_source::SOFTWARE_HERITAGE_S3`], see [`HubShards::default_content_store`]):
//!
//! ```no_run
//! # fn demo(cfg: &tritter_gpu::remote::RemoteConfig) -> anyhow::Result<()> {
//! use tritter_gpu::remote::open_content;
//! let content = open_content("s3://softwareheritage/content", cfg)?; // or a dir, or https://...
//! println!("{}", content.store.describe());        // says signed (with what) or unsigned
//! content.store.prefetch(&["0123abcd..."]);         // starts the requests, returns at once
//! let blobs = content.store.fetch_batch(&["0123abcd..."]);  // gunzipped bytes or FetchError
//! content.store.health()?;                           // the circuit breaker's verdict
//! // FetchError::reason is a stats key: content_blob_missing, content_blob_forbidden,
//! // content_fetch_failed, content_gzip_corrupt, content_blob_id_invalid.
//! println!("{}", content.stats.snapshot());
//! # Ok(()) }
//! ```
//!
//! [`open_content_store`] is the same without the stats handle.

pub mod async_http;
pub mod aws_credentials;
pub mod blob_cache;
pub mod blob_store;
pub mod circuit_breaker;
pub mod config;
pub mod env;
pub mod http;
pub mod https_store;
pub mod hub;
pub mod hub_cache;
pub mod hub_source;
pub mod hub_token;
pub mod prefetch;
pub mod s3;
pub mod space;
pub mod transfer_stats;

pub use circuit_breaker::BreakerTripped;
pub use config::RemoteConfig;
pub use env::Env;
pub use hub::{HubClient, HubConfig, HubFile};
pub use hub_source::{HfUri, HubShards};
pub use prefetch::Prefetcher;
pub use space::{check_space, SpaceNeed, SpaceTargets};
pub use transfer_stats::{TransferSnapshot, TransferStats};

use crate::content::{ContentStore, LocalContentStore};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;

/// A Hub client configured from `cfg` and its environment.
pub fn hub_client(cfg: &RemoteConfig) -> Result<HubClient> {
    HubClient::with_http(
        cfg.hub_config()?,
        cfg.http_settings(cfg.download_concurrency * 2),
    )
}

/// Whether `e` must stop the run even under `--keep-going`: the content
/// store's circuit breaker tripped, so every further shard would fail the
/// same way.
pub fn is_fatal(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<BreakerTripped>().is_some())
}

/// An opened content store and its transfer counters (always zero for a
/// local directory).
pub struct OpenedContent {
    pub store: Arc<dyn ContentStore>,
    pub stats: Arc<TransferStats>,
}

/// Opens a content store: a local directory of gzip blobs,
/// `s3://BUCKET/PREFIX`, or an `http(s)://` prefix.
pub fn open_content_store(spec: &str, cfg: &RemoteConfig) -> Result<Arc<dyn ContentStore>> {
    Ok(open_content(spec, cfg)?.store)
}

/// [`open_content_store`] with the transfer counters.
pub fn open_content(spec: &str, cfg: &RemoteConfig) -> Result<OpenedContent> {
    let stats = Arc::new(TransferStats::new());
    let concurrency = cfg.fetch_concurrency;
    let remote = |locator: Box<dyn blob_store::BlobLocator>,
                  settings: http::HttpSettings|
     -> Result<OpenedContent> {
        let cache = match &cfg.blob_cache {
            Some(dir) => Some(blob_cache::BlobCache::open(dir)?),
            None => None,
        };
        let http = async_http::AsyncHttpClient::new(settings, Arc::clone(&stats), &cfg.env);
        let store = blob_store::RemoteBlobStore::new(
            locator,
            http,
            cache,
            concurrency,
            cfg.breaker.clone(),
        );
        Ok(OpenedContent {
            store: Arc::new(store),
            stats: Arc::clone(&stats),
        })
    };
    if spec.starts_with("s3://") {
        let locator = s3::S3Locator::new(spec, &cfg.s3_options())
            .with_context(|| format!("content store {spec}"))?;
        // S3's 301 (wrong region) has no Location: it must reach us as is.
        let settings = http::HttpSettings {
            follow_redirects: false,
            ..cfg.http_settings(concurrency)
        };
        return remote(Box::new(locator), settings);
    }
    if spec.starts_with("https://") || spec.starts_with("http://") {
        return remote(
            Box::new(https_store::HttpsLocator::new(spec)?),
            cfg.http_settings(concurrency),
        );
    }
    if let Some((scheme, _)) = spec.split_once("://") {
        if scheme != "file" {
            anyhow::bail!(
                "content store {spec:?}: unknown scheme {scheme:?} (expected a directory, \
                 s3://BUCKET/PREFIX or https://HOST/PREFIX)"
            );
        }
    }
    let dir = PathBuf::from(spec.strip_prefix("file://").unwrap_or(spec));
    let store = LocalContentStore::open(dir)?;
    Ok(OpenedContent {
        store: Arc::new(store),
        stats,
    })
}
