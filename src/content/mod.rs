//! Content fetch: bytes of a file by its Software Heritage `blob_id`, then
//! decoding with the row's `src_encoding`.
//!
//! A store is anything that maps blob ids to gzip-compressed blobs: a local
//! directory laid out like the `content/` prefix of Software Heritage's bucket
//! (`DIR/{blob_id}`, [`LocalContentStore`]), and (remote issue) S3 or HTTPS
//! prefixes. Fetching is batched so that remote stores can keep many requests
//! in flight. Every per-blob problem is a [`FetchError`] whose `reason` is a
//! stats key under the `content` stage; none of them stops a run.
//!
//! Reasons: `content_blob_missing`, `content_bad_blob_id`,
//! `content_read_error`, `content_gzip_corrupt`, `content_blob_too_large`
//! (fetch); `content_unknown_encoding`, `content_binary`,
//! `content_invalid_utf8`, `content_decode_error` (decode).

mod decode;
mod gzip;
mod local;

pub use decode::decode;
pub use gzip::{gunzip_blob, gunzip_blob_capped, MAX_BLOB_BYTES};
pub use local::LocalContentStore;

/// Why a blob could not become text. `reason` is a stats key
/// (`content_blob_missing`, `content_gzip_corrupt`, `content_invalid_utf8`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchError {
    pub reason: &'static str,
    pub detail: String,
}

/// A content store.
pub trait ContentStore: Send + Sync {
    fn describe(&self) -> String;
    /// Fetches and gunzips each blob; one result per id, in order.
    fn fetch_batch(&self, blob_ids: &[&str]) -> Vec<Result<Vec<u8>, FetchError>>;
    /// Starts fetching blobs that a later `fetch_batch` will ask for, and
    /// returns at once, so that a remote store keeps its requests in flight
    /// across batches. A store with nothing to gain ignores it.
    fn prefetch(&self, _blob_ids: &[&str]) {}
    /// Requests this store keeps in flight (0: it fetches synchronously),
    /// so that callers read far enough ahead to keep them busy.
    fn in_flight(&self) -> usize {
        0
    }
    /// `Err` when the store must not be used any further (a remote store
    /// whose requests nearly all fail); the run stops with it.
    fn health(&self) -> anyhow::Result<()> {
        Ok(())
    }
}
