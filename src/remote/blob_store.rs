//! A content store over HTTP: many blob requests in flight, retries,
//! failures counted by reason, an optional local blob cache.
//!
//! S3 and HTTPS prefixes differ only in how a blob id becomes a request
//! (URL, and for S3 a SigV4 signature made fresh for each attempt); that is
//! the [`BlobLocator`] trait, implemented in `s3.rs` and `https_store.rs`.
//! Everything else lives here once:
//! - one tokio runtime per store (a few threads, [`runtime_threads`]) and
//!   the async client of `async_http.rs`: each blob asked for becomes a
//!   task, and a semaphore of `concurrency` permits, taken in the order the
//!   blobs were asked for, bounds the requests in flight whatever the number
//!   of callers. Callers stay synchronous: they wait on a `Slot` the task
//!   fills. PERF: `cargo bench --bench remote_fetch`, 40 ms latency, load
//!   2.3-7.7, paired runs (`benches/results/remote.md`): a thread per
//!   request in flight, what this pool was before, stops at 10,150 blobs/s
//!   at 1,024 in flight; these tasks reach 19,752 (77% of 1,024 / 40 ms);
//! - dropping the store drops the runtime, which cancels every task at its
//!   next `.await`: requests in flight are abandoned and their connections
//!   closed; a blob is written to the cache within one poll (temporary file,
//!   rename), so a cancelled task leaves no partial cache entry;
//! - [`ContentStore::prefetch`] queues the blobs of batches still to come
//!   (the pipeline's reader calls it as it reads ahead), so the pool never
//!   drains between two batches: while batch N is filtered, the requests of
//!   N+1 and N+2 are in flight. A later `fetch_batch` takes the prefetched
//!   results (waiting for those still on the way) and queues only what was
//!   not prefetched. At most [`MAX_PREFETCHED`] blobs wait unclaimed;
//! - a [`CircuitBreaker`] stops the store (and, through
//!   [`ContentStore::health`], the run) when (nearly) every fetch fails;
//! - each blob: validate the id (hex only: it becomes a URL and a file
//!   name), look in the blob cache, GET with retries, gunzip; a blob that
//!   gunzips cleanly is written to the cache;
//! - reasons (stats keys, one per blob that failed): `content_blob_missing`
//!   (404), `content_blob_forbidden` (401/403; note that S3 answers 403 for
//!   a missing key when the caller may not list the bucket),
//!   `content_fetch_failed` (gave up after retries, or a non-retryable
//!   status), `content_gzip_corrupt` (truncated or not gzip),
//!   `content_blob_id_invalid`.
//!
//! DETERMINISM: results come back in the order of the ids asked for, whatever
//! order the requests complete in.

use super::async_http::AsyncHttpClient;
use super::blob_cache::BlobCache;
use super::circuit_breaker::{BreakerConfig, CircuitBreaker, Outcome};
use super::http::HttpError;
use super::transfer_stats::TransferStats;
use crate::content::{gunzip_blob, ContentStore, FetchError};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::Semaphore;

/// Prefetched blobs that may wait for their `fetch_batch` (bounds memory
/// when a run stops early, e.g. at `--max-samples`).
pub const MAX_PREFETCHED: usize = 16_384;

/// How a blob id becomes a request.
pub trait BlobLocator: Send + Sync {
    /// `s3://bucket/prefix`, `https://host/prefix`: for messages.
    fn describe(&self) -> String;
    /// The URL of blob `id`.
    fn url(&self, id: &str) -> String;
    /// Headers of one attempt (a fresh signature each time).
    fn headers(&self, url: &str) -> Result<Vec<(String, String)>, String>;
}

type FetchResult = Result<Vec<u8>, FetchError>;

/// The result of one request, filled by a worker, waited for by callers.
#[derive(Default)]
struct Slot {
    result: Mutex<Option<FetchResult>>,
    ready: Condvar,
}

impl Slot {
    fn fill(&self, r: FetchResult) {
        *self.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        self.ready.notify_all();
    }

    fn wait(&self) -> FetchResult {
        let mut g = self.result.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(r) = g.as_ref() {
                return r.clone();
            }
            g = self.ready.wait(g).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// A prefetched blob and how many `fetch_batch` entries will claim it.
struct Prefetched {
    slot: Arc<Slot>,
    claims: usize,
}

struct Inner {
    locator: Box<dyn BlobLocator>,
    http: AsyncHttpClient,
    /// One permit per request in flight.
    permits: Semaphore,
    cache: Option<BlobCache>,
    breaker: CircuitBreaker,
    prefetched: Mutex<HashMap<String, Prefetched>>,
}

/// Threads of a store's runtime: enough to drive thousands of sockets and
/// gunzip small blobs, few enough to leave the cores to phase 1's workers.
pub fn runtime_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4))
}

/// A [`ContentStore`] that fetches gzip blobs over HTTP(S).
pub struct RemoteBlobStore {
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
    concurrency: usize,
}

impl RemoteBlobStore {
    /// Starts the store's runtime; at most `concurrency` requests in flight.
    pub fn new(
        locator: Box<dyn BlobLocator>,
        http: AsyncHttpClient,
        cache: Option<BlobCache>,
        concurrency: usize,
        breaker: BreakerConfig,
    ) -> RemoteBlobStore {
        let concurrency = concurrency.max(1);
        let breaker = CircuitBreaker::new(breaker, locator.describe());
        let inner = Arc::new(Inner {
            locator,
            http,
            permits: Semaphore::new(concurrency),
            cache,
            breaker,
            prefetched: Mutex::new(HashMap::new()),
        });
        // A runtime that cannot start (no threads left) leaves the store
        // stopped: every blob then fails with a reason, nothing panics.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(runtime_threads())
            .thread_name("blob-fetch")
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| {
                eprintln!("tritter-gpu: warning: cannot start the blob fetch runtime: {e}")
            })
            .ok();
        RemoteBlobStore {
            inner,
            runtime,
            concurrency,
        }
    }

    /// Transfer counters of this store.
    pub fn stats(&self) -> &Arc<TransferStats> {
        self.inner.http.stats()
    }

    /// Starts the task of blob `id`; it fills `slot` when done.
    fn submit(&self, runtime: &tokio::runtime::Runtime, id: &str, slot: &Arc<Slot>) {
        let (inner, slot, id) = (Arc::clone(&self.inner), Arc::clone(slot), id.to_string());
        runtime.spawn(async move {
            // The semaphore is never closed; a failure would only mean
            // running without the bound.
            let _permit = inner.permits.acquire().await;
            slot.fill(inner.fetch_one(&id).await);
        });
    }
}

impl Drop for RemoteBlobStore {
    fn drop(&mut self) {
        // Cancels every task at its next await point and closes their
        // connections; nobody waits on a slot any more (we are the last
        // owner).
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(std::time::Duration::from_secs(5));
        }
    }
}

impl ContentStore for RemoteBlobStore {
    fn describe(&self) -> String {
        self.inner.locator.describe()
    }

    fn fetch_batch(&self, blob_ids: &[&str]) -> Vec<Result<Vec<u8>, FetchError>> {
        let Some(runtime) = &self.runtime else {
            return blob_ids.iter().map(|_| Err(stopped())).collect();
        };
        // Claim what was prefetched, queue the rest, then wait in order.
        let slots: Vec<Option<Arc<Slot>>> = {
            let mut pre = self.inner.lock_prefetched();
            blob_ids
                .iter()
                .map(|id| {
                    if let Some(p) = pre.get_mut(*id) {
                        p.claims -= 1;
                        let slot = Arc::clone(&p.slot);
                        if p.claims == 0 {
                            pre.remove(*id);
                        }
                        return Some(slot);
                    }
                    let slot = Arc::new(Slot::default());
                    self.submit(runtime, id, &slot);
                    Some(slot)
                })
                .collect()
        };
        slots
            .into_iter()
            .map(|s| s.map_or_else(|| Err(stopped()), |s| s.wait()))
            .collect()
    }

    fn prefetch(&self, blob_ids: &[&str]) {
        let Some(runtime) = &self.runtime else { return };
        let mut pre = self.inner.lock_prefetched();
        for id in blob_ids {
            if let Some(p) = pre.get_mut(*id) {
                p.claims += 1;
                continue;
            }
            if pre.len() >= MAX_PREFETCHED {
                // fetch_batch will queue it itself.
                continue;
            }
            let slot = Arc::new(Slot::default());
            self.submit(runtime, id, &slot);
            pre.insert(id.to_string(), Prefetched { slot, claims: 1 });
        }
    }

    fn in_flight(&self) -> usize {
        self.concurrency
    }

    fn health(&self) -> anyhow::Result<()> {
        match self.inner.breaker.tripped() {
            Some(t) => Err(anyhow::Error::new(t)),
            None => Ok(()),
        }
    }
}

fn stopped() -> FetchError {
    FetchError {
        reason: "content_fetch_failed",
        detail: "the content store's fetch runtime could not start (see the warning above)".into(),
    }
}

/// Blob ids are hex digests (sha1 for Software Heritage); anything else
/// could walk out of a URL prefix or the cache directory.
pub fn valid_blob_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Inner {
    fn lock_prefetched(&self) -> std::sync::MutexGuard<'_, HashMap<String, Prefetched>> {
        // Nothing panics while holding it; a poisoned map is still a map.
        self.prefetched.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One blob: cache, GET with retries, gunzip, cache write. The cache's
    /// file I/O and the gunzip run inline on the runtime's threads: a few
    /// KiB per blob, microseconds, cheaper than a hop to a blocking pool.
    async fn fetch_one(&self, id: &str) -> Result<Vec<u8>, FetchError> {
        if self.breaker.tripped().is_some() {
            // The run is stopping: send nothing more, count nothing more.
            return Err(FetchError {
                reason: "content_fetch_failed",
                detail: "not requested: the content store's circuit breaker tripped".into(),
            });
        }
        let stats = self.http.stats();
        let fail = |reason: &'static str, detail: String| {
            stats.add_failure(reason);
            Err(FetchError { reason, detail })
        };
        if !valid_blob_id(id) {
            return fail(
                "content_blob_id_invalid",
                format!("blob id {id:?} is not a hex digest"),
            );
        }
        if let Some(cache) = &self.cache {
            if let Some(gz) = cache.get(id) {
                match gunzip_blob(&gz) {
                    Ok(bytes) => {
                        stats.add_cache_hit();
                        return Ok(bytes);
                    }
                    // A damaged cache entry: drop it and fetch again.
                    Err(_) => cache.remove(id),
                }
            }
        }
        let url = self.locator.url(id);
        let got = self
            .http
            .get_with_retry(&url, || self.locator.headers(&url))
            .await;
        let outcome = match &got {
            Ok(_) => Outcome::Delivered,
            Err(e) => Outcome::Failed {
                code: &e.code(),
                detail: &e.to_string(),
            },
        };
        self.breaker.record(outcome);
        match got {
            Ok((_, gz)) => match gunzip_blob(&gz) {
                Ok(bytes) => {
                    stats.add_completed();
                    if let Some(cache) = &self.cache {
                        // A cache write failure (disk full) only costs a
                        // download next time; the blob itself is fine.
                        if cache.put(id, &gz).is_err() {
                            stats.add_failure("content_cache_write_failed");
                        }
                    }
                    Ok(bytes)
                }
                Err(e) => fail(e.reason, format!("blob {id} from {url}: {}", e.detail)),
            },
            Err(e @ HttpError::Status { status: 404, .. }) => {
                fail("content_blob_missing", e.to_string())
            }
            Err(
                e @ HttpError::Status {
                    status: 401 | 403, ..
                },
            ) => fail("content_blob_forbidden", e.to_string()),
            Err(e) => {
                let detail = if e.retryable() {
                    format!(
                        "gave up after {} retries: {e}",
                        self.http.settings().max_retries
                    )
                } else {
                    e.to_string()
                };
                fail("content_fetch_failed", detail)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_ids_are_hex_only() {
        assert!(valid_blob_id("0123456789abcdefABCDEF"));
        assert!(!valid_blob_id(""));
        assert!(!valid_blob_id("../etc/passwd"));
        assert!(!valid_blob_id("abc/def"));
        assert!(!valid_blob_id(&"a".repeat(129)));
    }
}
