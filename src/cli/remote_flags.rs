//! Flags of remote sources (Hugging Face Hub shards, S3/HTTPS content
//! stores), flattened into `curate` under the "Remote sources" heading, and
//! parsed into [`RemoteConfig`], which `remote/` owns (defaults and why they
//! are what they are: `remote::config`).

use crate::remote::circuit_breaker::{
    BreakerConfig, DEFAULT_BREAKER_FIRST, DEFAULT_BREAKER_MAX_FAILURE_PCT, DEFAULT_BREAKER_WINDOW,
};
use crate::remote::config::{
    RemoteConfig, DEFAULT_DOWNLOAD_CONCURRENCY, DEFAULT_FETCH_CONCURRENCY, DEFAULT_MAX_RETRIES,
    DEFAULT_PREFETCH, DEFAULT_S3_REGION, MAX_FETCH_CONCURRENCY,
};
use crate::remote::env::Env;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Remote-source settings of `curate` (stored in the work directory, so that
/// `run-step` can fetch like the command that planned the run).
#[derive(Args, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RemoteFlags {
    /// Hugging Face cache directory (the `huggingface_hub` layout, shared with `datasets` and `hf download`).
    ///
    /// Defaults to what `huggingface_hub` uses: `HF_HUB_CACHE`, else
    /// `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
    /// `~/.cache/huggingface/hub`. Shards already downloaded there by
    /// `datasets` or `hf download` are reused, and ours are theirs.
    #[arg(long, value_name = "DIR", help_heading = "Remote sources")]
    pub hf_cache: Option<PathBuf>,

    /// Revision (branch, tag or commit) of hf:// datasets, pinned to its commit for the whole run.
    ///
    /// An `@REV` in the URI (`hf://datasets/OWNER/NAME@REV`) takes precedence.
    /// The commit it resolves to is listed, downloaded and recorded in the stats.
    #[arg(
        long,
        value_name = "REV",
        default_value = "main",
        help_heading = "Remote sources"
    )]
    pub hf_revision: String,

    /// Hub shards downloaded in parallel.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_DOWNLOAD_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=64), help_heading = "Remote sources")]
    pub download_concurrency: u32,

    /// Hub shards downloaded ahead of the one being processed.
    ///
    /// Bounds the disk used ahead of the reader and the bytes downloaded for
    /// nothing when `--max-samples` stops early. 0 downloads each shard only
    /// when it is needed.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_PREFETCH,
        help_heading = "Remote sources"
    )]
    pub prefetch: usize,

    /// Content blob requests in flight (S3/HTTPS content stores).
    ///
    /// Requests stay in flight across batches: the next batches' blobs are
    /// requested while the current one is filtered.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_FETCH_CONCURRENCY, value_parser = clap::value_parser!(u32).range(1..=MAX_FETCH_CONCURRENCY as i64), help_heading = "Remote sources")]
    pub fetch_concurrency: u32,

    /// Send unsigned S3 requests, even when AWS credentials are found.
    ///
    /// Without it, requests are signed (SigV4) when the AWS credential chain
    /// finds credentials (environment, AWS_PROFILE of ~/.aws/credentials and
    /// ~/.aws/config, web identity, container, instance metadata) and
    /// unsigned when it finds none; the run says which. Software Heritage's
    /// bucket is public (AWS Open Data) and needs no credentials.
    #[arg(long, help_heading = "Remote sources")]
    pub s3_anonymous: bool,

    /// AWS region of S3 content stores.
    #[arg(
        long,
        value_name = "REGION",
        default_value = DEFAULT_S3_REGION,
        help_heading = "Remote sources"
    )]
    pub s3_region: String,

    /// S3-compatible endpoint URL (MinIO, a mirror); path-style requests.
    #[arg(long, value_name = "URL", help_heading = "Remote sources")]
    pub s3_endpoint: Option<String>,

    /// Keep fetched content blobs in DIR, so a rerun does not download them.
    #[arg(long, value_name = "DIR", help_heading = "Remote sources")]
    pub blob_cache: Option<PathBuf>,

    /// Seconds to wait for a connection, a response, or the next bytes of one.
    ///
    /// Fractions are allowed (`0.5`). A slow but moving download is never cut.
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_secs, help_heading = "Remote sources")]
    pub request_timeout: Duration,

    /// Retries of a failed request (5xx, 429, timeout, reset) before giving up.
    ///
    /// 401, 403 and 404 are never retried. Delays double from 0.25 s up to
    /// 20 s, with jitter, or follow the server's Retry-After / RateLimit; a
    /// resumed download that made progress starts a fresh budget.
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_MAX_RETRIES,
        help_heading = "Remote sources"
    )]
    pub max_retries: u32,

    /// Stop the run when the first N blob fetches all fail (0: never).
    ///
    /// A content store that refuses everything (AccessDenied, ExpiredToken,
    /// RequestTimeTooSkewed, a wrong region) would otherwise turn every file
    /// into a counted drop and the run into an empty dataset.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BREAKER_FIRST, help_heading = "Remote sources")]
    pub breaker_first: u32,

    /// Fetches over which --breaker-max-failures is measured.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BREAKER_WINDOW, value_parser = clap::value_parser!(u32).range(1..), help_heading = "Remote sources")]
    pub breaker_window: u32,

    /// Stop the run when more than PCT percent of the last --breaker-window blob fetches failed (100: never).
    #[arg(long, value_name = "PCT", default_value_t = DEFAULT_BREAKER_MAX_FAILURE_PCT, value_parser = clap::value_parser!(u32).range(0..=100), help_heading = "Remote sources")]
    pub breaker_max_failures: u32,

    /// Start even when the disk-space estimate says the disk is too small.
    #[arg(long, help_heading = "Remote sources")]
    pub force: bool,
}

impl Default for RemoteFlags {
    /// The values of an empty command line.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            f: RemoteFlags,
        }
        <Wrap as clap::Parser>::parse_from(["tritter-gpu"]).f
    }
}

impl RemoteFlags {
    /// The settings `remote/` and the pipeline use; variables are read from
    /// the process environment.
    pub fn to_config(&self) -> RemoteConfig {
        RemoteConfig {
            hf_cache: self.hf_cache.clone(),
            hf_revision: self.hf_revision.clone(),
            download_concurrency: self.download_concurrency as usize,
            prefetch: self.prefetch,
            fetch_concurrency: self.fetch_concurrency as usize,
            s3_anonymous: self.s3_anonymous,
            s3_region: self.s3_region.clone(),
            s3_endpoint: self.s3_endpoint.clone(),
            blob_cache: self.blob_cache.clone(),
            request_timeout: self.request_timeout,
            max_retries: self.max_retries,
            force: self.force,
            breaker: BreakerConfig {
                first: self.breaker_first,
                window: self.breaker_window,
                max_failure_pct: self.breaker_max_failures,
            },
            env: Env::Process,
        }
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(v > 0.0 && v <= 86_400.0) {
        return Err(format!(
            "{s:?}: the timeout must be above 0 and at most 86400 seconds"
        ));
    }
    Ok(Duration::from_secs_f64(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct T {
        #[command(flatten)]
        f: RemoteFlags,
    }

    fn parse(args: &[&str]) -> Result<RemoteFlags, clap::Error> {
        let mut v = vec!["tritter-gpu"];
        v.extend_from_slice(args);
        T::try_parse_from(v).map(|t| t.f)
    }

    #[test]
    fn defaults_are_the_config_defaults() {
        assert_eq!(RemoteFlags::default().to_config(), RemoteConfig::default());
        let f = RemoteFlags::default();
        assert_eq!(f.hf_cache, None);
        assert_eq!(f.hf_revision, "main");
        assert_eq!(f.download_concurrency, 2);
        assert_eq!(f.prefetch, 2);
        assert_eq!(f.fetch_concurrency, DEFAULT_FETCH_CONCURRENCY);
        assert!(!f.s3_anonymous);
        assert_eq!(f.s3_region, "us-east-1");
        assert_eq!(f.s3_endpoint, None);
        assert_eq!(f.blob_cache, None);
        assert_eq!(f.request_timeout, Duration::from_secs(30));
        assert_eq!(f.max_retries, 5);
        assert!(!f.force);
    }

    #[test]
    fn hf_cache() {
        assert_eq!(
            parse(&["--hf-cache", "/c"]).expect("ok").hf_cache,
            Some(PathBuf::from("/c"))
        );
    }

    #[test]
    fn hf_revision() {
        assert_eq!(
            parse(&["--hf-revision", "v2"]).expect("ok").hf_revision,
            "v2"
        );
    }

    #[test]
    fn download_concurrency() {
        assert_eq!(
            parse(&["--download-concurrency", "8"])
                .expect("ok")
                .download_concurrency,
            8
        );
        assert!(parse(&["--download-concurrency", "0"]).is_err());
    }

    #[test]
    fn prefetch() {
        assert_eq!(parse(&["--prefetch", "0"]).expect("ok").prefetch, 0);
        assert!(parse(&["--prefetch", "-1"]).is_err());
    }

    #[test]
    fn fetch_concurrency() {
        assert_eq!(
            parse(&["--fetch-concurrency", "128"])
                .expect("ok")
                .fetch_concurrency,
            128
        );
        assert!(parse(&["--fetch-concurrency", "0"]).is_err());
    }

    #[test]
    fn s3_anonymous() {
        assert!(parse(&["--s3-anonymous"]).expect("ok").s3_anonymous);
    }

    #[test]
    fn s3_region() {
        assert_eq!(
            parse(&["--s3-region", "eu-west-1"]).expect("ok").s3_region,
            "eu-west-1"
        );
    }

    #[test]
    fn s3_endpoint() {
        let f = parse(&["--s3-endpoint", "http://127.0.0.1:9000"]).expect("ok");
        assert_eq!(f.s3_endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(
            f.to_config().s3_options().endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

    #[test]
    fn blob_cache() {
        assert_eq!(
            parse(&["--blob-cache", "b"]).expect("ok").blob_cache,
            Some(PathBuf::from("b"))
        );
    }

    #[test]
    fn request_timeout() {
        let f = parse(&["--request-timeout", "0.5"]).expect("ok");
        assert_eq!(f.request_timeout, Duration::from_millis(500));
        assert_eq!(
            f.to_config().http_settings(4).request_timeout,
            Duration::from_millis(500)
        );
        assert!(parse(&["--request-timeout", "0"]).is_err());
        assert!(parse(&["--request-timeout", "soon"]).is_err());
    }

    #[test]
    fn max_retries() {
        let f = parse(&["--max-retries", "0"]).expect("ok");
        assert_eq!(f.max_retries, 0);
        assert_eq!(f.to_config().http_settings(4).max_retries, 0);
    }

    #[test]
    fn breaker() {
        let c = parse(&[
            "--breaker-first",
            "0",
            "--breaker-window",
            "20",
            "--breaker-max-failures",
            "100",
        ])
        .expect("ok")
        .to_config();
        assert_eq!(
            c.breaker,
            BreakerConfig {
                first: 0,
                window: 20,
                max_failure_pct: 100
            }
        );
        assert!(parse(&["--breaker-max-failures", "101"]).is_err());
        assert!(parse(&["--breaker-window", "0"]).is_err());
    }

    #[test]
    fn fetch_concurrency_is_capped() {
        assert!(parse(&["--fetch-concurrency", "1024"]).is_ok());
        assert!(parse(&["--fetch-concurrency", "1025"]).is_err());
    }

    #[test]
    fn force() {
        assert!(parse(&["--force"]).expect("ok").force);
    }
}
