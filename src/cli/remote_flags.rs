//! Flags of remote sources (Hugging Face Hub shards, S3/HTTPS content
//! stores), flattened into `curate` under the "Remote sources" heading.
//!
//! Defaults and why: `--fetch-concurrency 64` keeps enough blob requests in
//! flight to fill a fast link at S3's ~50-100 ms first-byte latency with
//! blobs of a few KiB; `--download-concurrency 2` and `--prefetch 2` overlap
//! shard downloads with processing without filling the disk ahead of the
//! reader; `--request-timeout 30` and `--max-retries 5` ride out S3's and
//! the Hub's transient 5xx and slow responses (backoff 0.25 s doubling to
//! 20 s) while still failing within minutes on a dead link.

use crate::remote::http::HttpSettings;
use crate::remote::hub::HubConfig;
use crate::remote::s3::S3Options;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// Remote-source settings of `curate` (stored in the work directory, so that
/// `run-step` can fetch like the command that planned the run).
#[derive(Args, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RemoteFlags {
    /// Directory where Hub shards are cached.
    ///
    /// Defaults to `$HF_HOME/tritter-gpu`, else `~/.cache/tritter-gpu/hub`.
    /// Files are checked (size and sha256) before they enter the cache, and
    /// partial downloads resume from where they stopped.
    #[arg(long, value_name = "DIR", help_heading = "Remote sources")]
    pub hf_cache: Option<PathBuf>,

    /// Revision (branch, tag or commit) of hf:// datasets.
    ///
    /// An `@REV` in the URI (`hf://datasets/OWNER/NAME@REV`) takes precedence.
    #[arg(
        long,
        value_name = "REV",
        default_value = "main",
        help_heading = "Remote sources"
    )]
    pub hf_revision: String,

    /// Hub shards downloaded in parallel.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64), help_heading = "Remote sources")]
    pub download_concurrency: u32,

    /// Hub shards downloaded ahead of the one being processed.
    ///
    /// Bounds the disk used ahead of the reader and the bytes downloaded for
    /// nothing when `--max-samples` stops early. 0 downloads each shard only
    /// when it is needed.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 2,
        help_heading = "Remote sources"
    )]
    pub prefetch: usize,

    /// Content blob requests in flight (S3/HTTPS content stores).
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024), help_heading = "Remote sources")]
    pub fetch_concurrency: u32,

    /// Send unsigned S3 requests, even when AWS credentials are configured.
    ///
    /// Without it, S3 requests are signed (SigV4) with credentials from
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN] or the
    /// profile AWS_PROFILE (default `default`) of ~/.aws/credentials and
    /// ~/.aws/config, and missing credentials are an error.
    #[arg(long, help_heading = "Remote sources")]
    pub s3_anonymous: bool,

    /// AWS region of S3 content stores.
    #[arg(
        long,
        value_name = "REGION",
        default_value = "us-east-1",
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

    /// Retries of a failed request (5xx, timeout, reset) before giving up.
    ///
    /// 401, 403 and 404 are never retried. Delays double from 0.25 s up to
    /// 20 s, with jitter; a resumed download that made progress starts a
    /// fresh budget.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        help_heading = "Remote sources"
    )]
    pub max_retries: u32,

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
    /// Timeouts and retries of every remote client.
    pub fn http_settings(&self, max_connections: usize) -> HttpSettings {
        HttpSettings {
            request_timeout: self.request_timeout,
            max_retries: self.max_retries,
            max_connections,
            ..HttpSettings::default()
        }
    }

    /// Hub endpoint, token (`HF_ENDPOINT`, `HF_TOKEN`) and cache directory.
    pub fn hub_config(&self) -> HubConfig {
        HubConfig::from_env(self.hf_cache.clone())
    }

    pub fn s3_options(&self) -> S3Options {
        S3Options {
            region: self.s3_region.clone(),
            endpoint: self.s3_endpoint.clone(),
            anonymous: self.s3_anonymous,
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
    fn defaults() {
        let f = RemoteFlags::default();
        assert_eq!(f.hf_cache, None);
        assert_eq!(f.hf_revision, "main");
        assert_eq!(f.download_concurrency, 2);
        assert_eq!(f.prefetch, 2);
        assert_eq!(f.fetch_concurrency, 64);
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
            f.s3_options().endpoint.as_deref(),
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
            f.http_settings(4).request_timeout,
            Duration::from_millis(500)
        );
        assert!(parse(&["--request-timeout", "0"]).is_err());
        assert!(parse(&["--request-timeout", "soon"]).is_err());
    }

    #[test]
    fn max_retries() {
        let f = parse(&["--max-retries", "0"]).expect("ok");
        assert_eq!(f.max_retries, 0);
        assert_eq!(f.http_settings(4).max_retries, 0);
    }

    #[test]
    fn force() {
        assert!(parse(&["--force"]).expect("ok").force);
    }
}
