//! Settings of the remote readers, owned here and filled in by `cli/`
//! (`cli::remote_flags`) or by a library user directly.
//!
//! Defaults and why:
//! - `fetch_concurrency` [`DEFAULT_FETCH_CONCURRENCY`]: blob requests in
//!   flight. Blob fetch is latency bound (S3 answers after 20-60 ms, bodies
//!   are a few KiB), so throughput is about `in flight / latency` until the
//!   client's own per-request cost caps it. 1,024 is the fastest setting
//!   measured through `curate` against a store answering after 40 ms
//!   (`cargo bench --bench remote_fetch`, load average 2.3-7.7, async
//!   client: 19,752 blobs/s, against 9,591 at 512 and 5,751 at 256); at
//!   S3's 20-60 ms it allows 17,000-51,000 blobs/s, above what two cores
//!   process (`benches/results/remote.md`);
//! - `download_concurrency` 2 and `prefetch` 2 overlap shard downloads with
//!   processing without filling the disk ahead of the reader;
//! - `request_timeout` 30 s and `max_retries` 5 ride out S3's and the Hub's
//!   transient 5xx and slow responses (backoff 0.25 s doubling to 20 s)
//!   while still failing within minutes on a dead link;
//! - the circuit breaker ([`BreakerConfig`]) stops a run whose blob fetches
//!   all fail instead of producing an empty dataset hours later.

use super::circuit_breaker::BreakerConfig;
use super::env::Env;
use super::http::HttpSettings;
use super::hub::HubConfig;
use super::s3::S3Options;
use std::path::PathBuf;
use std::time::Duration;

/// Blob requests in flight by default (see the module docs).
pub const DEFAULT_FETCH_CONCURRENCY: u32 = 1024;
/// Most blob requests in flight we allow (the largest setting measured).
pub const MAX_FETCH_CONCURRENCY: u32 = 1024;
/// Hub shards downloaded in parallel by default.
pub const DEFAULT_DOWNLOAD_CONCURRENCY: u32 = 2;
/// Hub shards downloaded ahead of the one being processed by default.
pub const DEFAULT_PREFETCH: usize = 2;
/// Default limit on connecting, first byte, and stalls between reads.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default retries of a retryable failure.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Default AWS region of S3 content stores (Software Heritage's bucket).
pub const DEFAULT_S3_REGION: &str = "us-east-1";

/// Everything the remote readers need. Stored in a work dir's run
/// configuration (for tasks run by `run-step`), without the environment.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RemoteConfig {
    /// Hub cache directory; `None`: `huggingface_hub`'s (`HF_HUB_CACHE`).
    pub hf_cache: Option<PathBuf>,
    /// Branch, tag or commit of `hf://` datasets (an `@REV` in the URI wins).
    pub hf_revision: String,
    pub download_concurrency: usize,
    pub prefetch: usize,
    /// Blob requests in flight (S3/HTTPS content stores).
    pub fetch_concurrency: usize,
    /// Unsigned S3 requests even when credentials are found.
    pub s3_anonymous: bool,
    pub s3_region: String,
    /// S3-compatible endpoint (path-style requests); `None`: AWS.
    pub s3_endpoint: Option<String>,
    /// Keep fetched blobs here.
    pub blob_cache: Option<PathBuf>,
    pub request_timeout: Duration,
    pub max_retries: u32,
    /// Start even when the disk-space check says no.
    pub force: bool,
    pub breaker: BreakerConfig,
    /// Where `HF_*` and `AWS_*` variables are read; a stored configuration
    /// reads the environment of the process that runs it.
    #[serde(skip)]
    pub env: Env,
}

impl Default for RemoteConfig {
    fn default() -> Self {
        RemoteConfig {
            hf_cache: None,
            hf_revision: "main".into(),
            download_concurrency: DEFAULT_DOWNLOAD_CONCURRENCY as usize,
            prefetch: DEFAULT_PREFETCH,
            fetch_concurrency: DEFAULT_FETCH_CONCURRENCY as usize,
            s3_anonymous: false,
            s3_region: DEFAULT_S3_REGION.into(),
            s3_endpoint: None,
            blob_cache: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            force: false,
            breaker: BreakerConfig::default(),
            env: Env::Process,
        }
    }
}

impl RemoteConfig {
    /// Timeouts and retries of every remote client.
    pub fn http_settings(&self, max_connections: usize) -> HttpSettings {
        HttpSettings {
            request_timeout: self.request_timeout,
            max_retries: self.max_retries,
            max_connections,
            ..HttpSettings::default()
        }
    }

    /// Hub endpoint, token and cache directory, from the environment.
    pub fn hub_config(&self) -> anyhow::Result<HubConfig> {
        HubConfig::from_env(&self.env, self.hf_cache.clone())
    }

    pub fn s3_options(&self) -> S3Options {
        S3Options {
            region: self.s3_region.clone(),
            endpoint: self.s3_endpoint.clone(),
            anonymous: self.s3_anonymous,
            env: self.env.clone(),
            request_timeout: self.request_timeout,
        }
    }
}
