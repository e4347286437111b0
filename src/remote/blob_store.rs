//! A content store over HTTP: many blob requests in flight, retries,
//! failures counted by reason, an optional local blob cache.
//!
//! S3 and HTTPS prefixes differ only in how a blob id becomes a request
//! (URL, and for S3 a SigV4 signature made fresh for each attempt); that is
//! the [`BlobLocator`] trait, implemented in `s3.rs` and `https_store.rs`.
//! Everything else lives here once:
//! - a pool of `concurrency` worker threads started with the store and
//!   shared by every caller, so the number of requests in flight is bounded
//!   by the flag whatever the number of callers;
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

use super::blob_cache::BlobCache;
use super::circuit_breaker::{BreakerConfig, CircuitBreaker, Outcome};
use super::http::{HttpClient, HttpError};
use super::transfer_stats::TransferStats;
use crate::content::{gunzip_blob, ContentStore, FetchError};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

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

struct Job {
    id: String,
    slot: Arc<Slot>,
}

/// A prefetched blob and how many `fetch_batch` entries will claim it.
struct Prefetched {
    slot: Arc<Slot>,
    claims: usize,
}

struct Inner {
    locator: Box<dyn BlobLocator>,
    http: HttpClient,
    cache: Option<BlobCache>,
    breaker: CircuitBreaker,
    prefetched: Mutex<HashMap<String, Prefetched>>,
}

/// A [`ContentStore`] that fetches gzip blobs over HTTP(S).
pub struct RemoteBlobStore {
    inner: Arc<Inner>,
    jobs: Option<mpsc::Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl RemoteBlobStore {
    /// Starts `concurrency` fetch threads.
    pub fn new(
        locator: Box<dyn BlobLocator>,
        http: HttpClient,
        cache: Option<BlobCache>,
        concurrency: usize,
        breaker: BreakerConfig,
    ) -> RemoteBlobStore {
        let breaker = CircuitBreaker::new(breaker, locator.describe());
        let inner = Arc::new(Inner {
            locator,
            http,
            cache,
            breaker,
            prefetched: Mutex::new(HashMap::new()),
        });
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let workers = (0..concurrency.max(1))
            .map(|i| {
                let inner = Arc::clone(&inner);
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name(format!("blob-fetch-{i}"))
                    .spawn(move || loop {
                        let job = {
                            let guard = rx.lock().unwrap_or_else(|p| p.into_inner());
                            guard.recv()
                        };
                        let Ok(job) = job else { return };
                        job.slot.fill(inner.fetch_one(&job.id));
                    })
                    .expect("spawn blob fetch thread")
            })
            .collect();
        RemoteBlobStore {
            inner,
            jobs: Some(tx),
            workers,
        }
    }

    /// Transfer counters of this store.
    pub fn stats(&self) -> &Arc<TransferStats> {
        self.inner.http.stats()
    }
}

impl Drop for RemoteBlobStore {
    fn drop(&mut self) {
        // Closing the channel ends every worker after its current blob.
        self.jobs.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl ContentStore for RemoteBlobStore {
    fn describe(&self) -> String {
        self.inner.locator.describe()
    }

    fn fetch_batch(&self, blob_ids: &[&str]) -> Vec<Result<Vec<u8>, FetchError>> {
        let Some(jobs) = &self.jobs else {
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
                    let job = Job {
                        id: id.to_string(),
                        slot: Arc::clone(&slot),
                    };
                    jobs.send(job).is_ok().then_some(slot)
                })
                .collect()
        };
        slots
            .into_iter()
            .map(|s| s.map_or_else(|| Err(stopped()), |s| s.wait()))
            .collect()
    }

    fn prefetch(&self, blob_ids: &[&str]) {
        let Some(jobs) = &self.jobs else { return };
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
            let job = Job {
                id: id.to_string(),
                slot: Arc::clone(&slot),
            };
            if jobs.send(job).is_ok() {
                pre.insert(id.to_string(), Prefetched { slot, claims: 1 });
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.workers.len()
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
        detail: "the content store's workers stopped".into(),
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

    fn fetch_one(&self, id: &str) -> Result<Vec<u8>, FetchError> {
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
        let got = self.http.retry(None, || {
            let headers = self
                .locator
                .headers(&url)
                .map_err(|detail| HttpError::Fatal {
                    url: url.clone(),
                    detail,
                })?;
            self.http.get_once(&url, &headers)
        });
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
