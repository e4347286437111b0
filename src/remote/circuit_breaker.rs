//! The blob-fetch circuit breaker: stop a run whose content store refuses
//! (nearly) everything, instead of counting every blob as a drop and
//! writing an empty dataset hours later.
//!
//! A store that is set up wrong fails every request the same way: S3's
//! `AccessDenied` from a bucket or organisation policy, `ExpiredToken`,
//! `RequestTimeTooSkewed` from a wrong clock, a `301 PermanentRedirect` for
//! the wrong region, a 404 for every key under a wrong prefix, or no answer
//! at all. Real data has a few missing blobs, never a majority. So the
//! breaker trips when
//! 1. the first [`BreakerConfig::first`] fetches that reached the network
//!    all failed, or
//! 2. over the last [`BreakerConfig::window`] fetches, more than
//!    [`BreakerConfig::max_failure_pct`] percent failed,
//!
//! and from then on the store sends nothing more; the pipeline asks
//! [`crate::content::ContentStore::health`] after each batch and stops with
//! [`BreakerTripped`], whose message lists the error codes seen (with
//! counts) and what to check for each.
//!
//! Counted: transfer outcomes only (a blob delivered, or missing, refused,
//! or given up after retries). A corrupt gzip or an invalid blob id is a
//! fact about the data, and a cache hit sends no request: neither counts.
//!
//! DETERMINISM: the breaker only decides whether the run stops, never what
//! a finished run contains.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// When the breaker trips; `first = 0` and `max_failure_pct = 100` turn the
/// two rules off.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BreakerConfig {
    /// Trip when this many first fetches all failed.
    pub first: u32,
    /// Fetches in the sliding window of the failure-rate rule.
    pub window: u32,
    /// Trip when more than this percentage of the window failed.
    pub max_failure_pct: u32,
}

/// First fetches that must not all fail.
pub const DEFAULT_BREAKER_FIRST: u32 = 50;
/// Window of the failure-rate rule.
pub const DEFAULT_BREAKER_WINDOW: u32 = 1000;
/// Largest tolerated failure percentage over the window.
pub const DEFAULT_BREAKER_MAX_FAILURE_PCT: u32 = 50;

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            first: DEFAULT_BREAKER_FIRST,
            window: DEFAULT_BREAKER_WINDOW,
            max_failure_pct: DEFAULT_BREAKER_MAX_FAILURE_PCT,
        }
    }
}

/// The run must stop: the content store fails (nearly) every request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BreakerTripped {
    pub message: String,
}

/// One transfer outcome.
pub enum Outcome<'a> {
    Delivered,
    /// `code`: the S3 error code (`AccessDenied`), else `HTTP 503`,
    /// `timeout`, `connection error`; `detail`: one example message.
    Failed {
        code: &'a str,
        detail: &'a str,
    },
}

#[derive(Default)]
struct State {
    seen: u64,
    failed_from_start: u64,
    window: VecDeque<bool>,
    window_failures: u32,
    codes: BTreeMap<String, (u64, String)>,
    tripped: Option<BreakerTripped>,
}

/// Counts outcomes and trips; shared by every fetch thread of a store.
pub struct CircuitBreaker {
    config: BreakerConfig,
    /// The store, for the message (`s3://softwareheritage/content via ...`).
    store: String,
    state: Mutex<State>,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig, store: String) -> CircuitBreaker {
        CircuitBreaker {
            config,
            store,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Counting never panics while holding the lock; a poisoned lock still
        // holds consistent counters.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The trip, once it happened.
    pub fn tripped(&self) -> Option<BreakerTripped> {
        self.lock().tripped.clone()
    }

    /// Records one outcome; returns whether the breaker is (now) tripped.
    pub fn record(&self, outcome: Outcome<'_>) -> bool {
        let mut st = self.lock();
        if st.tripped.is_some() {
            return true;
        }
        st.seen += 1;
        let failed = matches!(outcome, Outcome::Failed { .. });
        if let Outcome::Failed { code, detail } = outcome {
            let e = st
                .codes
                .entry(code.to_string())
                .or_insert_with(|| (0, detail.to_string()));
            e.0 += 1;
        }
        if failed && st.failed_from_start + 1 == st.seen {
            st.failed_from_start += 1;
        }
        let window = self.config.window.max(1) as usize;
        st.window.push_back(failed);
        st.window_failures += failed as u32;
        if st.window.len() > window && st.window.pop_front() == Some(true) {
            st.window_failures -= 1;
        }
        let first = self.config.first as u64;
        let reason = if first > 0 && st.seen == first && st.failed_from_start == first {
            Some(format!("the first {first} blob fetches all failed"))
        } else if self.config.max_failure_pct < 100
            && st.window.len() == window
            && st.window_failures as u64 * 100 > self.config.max_failure_pct as u64 * window as u64
        {
            Some(format!(
                "{} of the last {window} blob fetches failed (more than {}%)",
                st.window_failures, self.config.max_failure_pct
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            let message = self.message(&reason, &st.codes);
            st.tripped = Some(BreakerTripped { message });
            return true;
        }
        false
    }

    fn message(&self, reason: &str, codes: &BTreeMap<String, (u64, String)>) -> String {
        let mut by_count: Vec<(&String, &(u64, String))> = codes.iter().collect();
        by_count.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
        let seen: Vec<String> = by_count
            .iter()
            .map(|(code, (n, _))| format!("{code} x{n}"))
            .collect();
        let mut lines = vec![format!(
            "stopping: {reason} from the content store {}; errors seen: {}",
            self.store,
            seen.join(", ")
        )];
        for (code, (_, example)) in by_count.iter().take(4) {
            lines.push(format!("  {code}: {}", hint(code)));
            lines.push(format!("    e.g. {example}"));
        }
        lines.push(
            "  (thresholds: --breaker-first, --breaker-window, --breaker-max-failures; \
             0, 0 and 100 turn the breaker off)"
                .into(),
        );
        lines.join("\n")
    }
}

/// What to check for an error code.
pub fn hint(code: &str) -> &'static str {
    match code {
        "AccessDenied" | "AllAccessDisabled" | "HTTP 403" => {
            "the bucket refused the requests: with credentials, their IAM or organisation \
             policy must allow s3:GetObject on it; Software Heritage's bucket is public, so \
             --s3-anonymous (unsigned requests) works without any"
        }
        "ExpiredToken" | "TokenRefreshRequired" | "InvalidToken" => {
            "the session credentials expired or are invalid: renew them (aws sso login, a new \
             AWS_SESSION_TOKEN), or pass --s3-anonymous for a public bucket"
        }
        "RequestTimeTooSkewed" | "RequestExpired" => {
            "this machine's clock differs from AWS's by more than 15 minutes, so signatures \
             are refused: synchronise the clock (timedatectl set-ntp true, chrony), or pass \
             --s3-anonymous for a public bucket"
        }
        "PermanentRedirect" | "HTTP 301" | "AuthorizationHeaderMalformed" => {
            "the bucket is in another region than --s3-region: pass the region the error \
             names (x-amz-bucket-region); Software Heritage's bucket is in us-east-1"
        }
        "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
            "AWS does not know this access key or its secret is wrong: check \
             AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the profile, or pass --s3-anonymous"
        }
        "NoSuchBucket" => "no such bucket: check the bucket name of --content-store",
        "NoSuchKey" | "HTTP 404" => {
            "no blob under this prefix: check the prefix of --content-store (Software \
             Heritage: s3://softwareheritage/content) and that the rows' blob_id are its keys"
        }
        "SlowDown" | "HTTP 503" | "HTTP 500" | "InternalError" | "ServiceUnavailable" => {
            "the store is overloaded or failing: lower --fetch-concurrency, or retry later"
        }
        "timeout" | "connection error" => {
            "the store does not answer: check the network, a proxy (HTTPS_PROXY), \
             --s3-endpoint, or raise --request-timeout"
        }
        _ => "see the example message",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(b: &CircuitBreaker, code: &str) -> bool {
        b.record(Outcome::Failed {
            code,
            detail: "HTTP 403 from http://x/b/k: AccessDenied: Access Denied",
        })
    }

    #[test]
    fn first_k_all_failing_trips_with_codes_and_hints() {
        let b = CircuitBreaker::new(
            BreakerConfig {
                first: 5,
                window: 100,
                max_failure_pct: 50,
            },
            "s3://b/content".into(),
        );
        for _ in 0..3 {
            assert!(!fail(&b, "AccessDenied"));
        }
        assert!(!fail(&b, "ExpiredToken"));
        assert!(b.tripped().is_none());
        assert!(fail(&b, "AccessDenied"));
        let msg = b.tripped().expect("tripped").message;
        assert!(msg.contains("the first 5 blob fetches all failed"), "{msg}");
        assert!(msg.contains("AccessDenied x4, ExpiredToken x1"), "{msg}");
        assert!(
            msg.contains("s3:GetObject") && msg.contains("renew"),
            "{msg}"
        );
        assert!(msg.contains("s3://b/content"), "{msg}");
    }

    #[test]
    fn one_success_among_the_first_disarms_rule_one_but_not_the_rate() {
        let b = CircuitBreaker::new(
            BreakerConfig {
                first: 4,
                window: 10,
                max_failure_pct: 50,
            },
            "s".into(),
        );
        assert!(!b.record(Outcome::Delivered));
        for _ in 0..5 {
            assert!(!fail(&b, "NoSuchKey"));
        }
        // 10 outcomes, 6 failed: over 50%.
        for _ in 0..3 {
            assert!(!b.record(Outcome::Delivered));
        }
        assert!(fail(&b, "NoSuchKey"));
        let msg = b.tripped().expect("tripped").message;
        assert!(msg.contains("6 of the last 10"), "{msg}");
    }

    #[test]
    fn healthy_traffic_with_a_few_missing_blobs_never_trips_and_off_means_off() {
        let b = CircuitBreaker::new(BreakerConfig::default(), "s".into());
        for i in 0..10_000 {
            let tripped = if i % 10 == 3 {
                fail(&b, "NoSuchKey")
            } else {
                b.record(Outcome::Delivered)
            };
            assert!(!tripped, "at {i}");
        }
        let off = CircuitBreaker::new(
            BreakerConfig {
                first: 0,
                window: 10,
                max_failure_pct: 100,
            },
            "s".into(),
        );
        for _ in 0..1000 {
            assert!(!fail(&off, "AccessDenied"));
        }
    }
}
