//! `--refresh-stars`: current star counts from the GitHub REST API
//! (`GET /repos/{owner}/{repo}`, field `stargazers_count`).
//!
//! * Base URL: `GITHUB_API_URL` (the variable GitHub Actions sets, e.g. for
//!   GitHub Enterprise), else `https://api.github.com`.
//! * `GITHUB_TOKEN`, when set, is sent as `Authorization: Bearer`; without
//!   it the API allows 60 requests an hour, with it 5,000.
//! * Rate limits, as GitHub documents them ("Rate limits for the REST
//!   API"): a 403 or 429 with `x-ratelimit-remaining: 0` or a
//!   `retry-after` header means no more requests until the reset; the
//!   refresh then stops asking, and the remaining repositories keep their
//!   cached or listed stars. The stats say how many were refreshed, cached,
//!   rate limited, not found or failed, and when the limit resets.
//! * Cache: `CACHE/stars.json`, `{repo: {stars, fetched_at}}`; a count
//!   younger than [`MAX_AGE_SECS`] is used without a request, so reruns
//!   cost nothing.

use super::list::RepoEntry;
use crate::output::atomic::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Star counts younger than this are not asked again.
pub const MAX_AGE_SECS: u64 = 24 * 3600;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Cached {
    stars: u64,
    fetched_at: u64,
}

/// What the refresh did, for the stats.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StarsReport {
    pub refreshed: u64,
    pub from_cache: u64,
    pub not_found: u64,
    pub failed: u64,
    pub rate_limited: u64,
    /// Unix time at which the rate limit resets, when one was hit.
    pub rate_limit_reset: Option<u64>,
    pub errors: Vec<String>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Sets each entry's `stars` from the cache or the API.
pub fn refresh(entries: &mut [RepoEntry], cache: &Path) -> StarsReport {
    let api = std::env::var("GITHUB_API_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "https://api.github.com".to_string());
    let token = std::env::var("GITHUB_TOKEN").ok().filter(|t| !t.is_empty());
    let path = cache.join("stars.json");
    let mut cached: BTreeMap<String, Cached> = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .user_agent("tritter-gpu")
        .build()
        .into();
    let mut report = StarsReport::default();
    let mut limited = false;
    let t = now();
    for e in entries.iter_mut() {
        if let Some(c) = cached.get(&e.repo) {
            if t.saturating_sub(c.fetched_at) < MAX_AGE_SECS {
                e.stars = Some(c.stars);
                report.from_cache += 1;
                continue;
            }
        }
        if limited {
            report.rate_limited += 1;
            if let Some(c) = cached.get(&e.repo) {
                e.stars = Some(c.stars);
            }
            continue;
        }
        let url = format!("{}/repos/{}", api.trim_end_matches('/'), e.repo);
        let mut req = agent
            .get(&url)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(tok) = &token {
            req = req.header("Authorization", &format!("Bearer {tok}"));
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(err) => {
                report.failed += 1;
                report.errors.push(format!("{}: {err}", e.repo));
                continue;
            }
        };
        let status = resp.status().as_u16();
        let header = |k: &str| {
            resp.headers()
                .get(k)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let remaining = header("x-ratelimit-remaining");
        let reset = header("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok());
        let retry_after = header("retry-after");
        match status {
            200 => {
                let body = resp
                    .into_body()
                    .with_config()
                    .limit(4 << 20)
                    .read_to_string();
                let stars = body
                    .ok()
                    .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
                    .and_then(|v| v.get("stargazers_count").and_then(|s| s.as_u64()));
                match stars {
                    Some(s) => {
                        e.stars = Some(s);
                        cached.insert(
                            e.repo.clone(),
                            Cached {
                                stars: s,
                                fetched_at: t,
                            },
                        );
                        report.refreshed += 1;
                    }
                    None => {
                        report.failed += 1;
                        report
                            .errors
                            .push(format!("{}: no stargazers_count in the answer", e.repo));
                    }
                }
            }
            404 => report.not_found += 1,
            403 | 429 if remaining.as_deref() == Some("0") || retry_after.is_some() => {
                limited = true;
                report.rate_limited += 1;
                report.rate_limit_reset = reset.or_else(|| {
                    retry_after
                        .as_deref()
                        .and_then(|s| s.parse::<u64>().ok())
                        .map(|s| t + s)
                });
                if let Some(c) = cached.get(&e.repo) {
                    e.stars = Some(c.stars);
                }
            }
            s => {
                report.failed += 1;
                report
                    .errors
                    .push(format!("{}: HTTP {s} from {url}", e.repo));
            }
        }
    }
    if report.refreshed > 0 {
        if let Ok(bytes) = serde_json::to_vec_pretty(&cached) {
            if let Err(err) = write_atomic(&path, &bytes) {
                report
                    .errors
                    .push(format!("cannot write {}: {err:#}", path.display()));
            }
        }
    }
    report
}
