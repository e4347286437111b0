//! Reading the shards of phase 1 ahead of the shard worker, across shard
//! boundaries, so that a remote content store keeps its requests in flight.
//!
//! For metadata-only schemas (The Stack v2, Stack-Edu) every batch needs one
//! GET per row that passes the metadata filters, at 20-60 ms first-byte
//! latency each. The content store runs a fixed pool of requests; it only
//! stays busy if it is always told about the next blobs before the worker
//! waits for the current ones. One thread here reads batch after batch, shard
//! after shard, in the order the worker will ask for them, hands each batch's
//! blob ids to [`ContentStore::prefetch`] and queues the batch (a bounded
//! channel: [`queued_batches`]). So while shard `k`'s last batch is filtered
//! and its part committed (a filesystem sync), the requests of shard `k+1`
//! are already on the wire: no drain at batch or shard boundaries.
//!
//! Before this, each shard had its own reader thread, started when the shard
//! began: against a store answering after 40 ms, 8 shards of 2,560 blobs at
//! 256 in flight ran at 62% of 256 / 40 ms, at 1,024 in flight at 6,016
//! blobs/s against a no-latency ceiling of 8,600-10,000 (see
//! `benches/results/remote.md` for the numbers after).
//!
//! Rules that keep the output what it was:
//! - batches are the reader's own batches, in order: the worker sees exactly
//!   what its own reader would have produced;
//! - a shard is opened early only when it is on local disk now (`early`);
//!   a Hub shard waits until the worker begins it, i.e. after its download
//!   was verified;
//! - when the worker leaves a shard before its end (an error, or
//!   `--max-samples`), the reader stops reading it, and the worker of the
//!   next shard skips whatever of it is still queued. Blobs prefetched for
//!   the abandoned rest wait unclaimed in the store, bounded by its
//!   `MAX_PREFETCHED`.

use crate::content::ContentStore;
use crate::filters::Filters;
use crate::record::Record;
use crate::sources::{self, InputFile, ReadOptions, RowReject, SchemaKind};
use anyhow::Result;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::Scope;

/// Batches read and prefetched ahead of the worker, besides the one the
/// reader holds, at least: 4 batches of 1,024 rows keep 4,096 blobs
/// requested, four times the largest concurrency measured (1,024). With
/// smaller batches the queue holds enough of them for twice the store's
/// requests in flight ([`queued_batches`]).
pub const QUEUED_BATCHES: usize = 4;

/// How many batches to queue ahead for `batch_size` rows per batch and a
/// store with `in_flight` requests.
pub fn queued_batches(batch_size: usize, in_flight: usize) -> usize {
    QUEUED_BATCHES.max((2 * in_flight).div_ceil(batch_size.max(1)))
}

/// One batch of a reader, as `RecordReader::next_batch` returns it.
pub type BatchResult = Result<Option<Vec<Result<Record, RowReject>>>>;

enum Msg {
    /// The shard at this position was opened (or failed to open).
    Opened(usize, Result<SchemaKind>),
    /// Its next batch; `Ok(None)` (or an error) is its last.
    Batch(usize, BatchResult),
}

#[derive(Default)]
struct State {
    /// Position of the shard the worker is on (or has finished), if any.
    begun: Option<usize>,
    /// The worker is done with every shard up to this position.
    done: Option<usize>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The reader thread of a run's phase 1 and the worker's end of its queue.
pub struct ReadAhead {
    ordinals: Vec<u32>,
    rx: Mutex<Receiver<Msg>>,
    shared: Arc<Shared>,
}

/// What the read-ahead thread needs from the run.
pub struct ReadAheadSpec<'a> {
    /// The shards the worker will process, in its order, and whether each
    /// may be opened before the worker begins it (it is on local disk).
    pub inputs: Vec<(InputFile, bool)>,
    pub read: ReadOptions,
    pub filters: &'a Filters,
    pub store: Option<Arc<dyn ContentStore>>,
}

impl ReadAhead {
    /// Starts the reader thread in `scope`.
    pub fn start<'scope, 'env>(
        scope: &'scope Scope<'scope, 'env>,
        spec: ReadAheadSpec<'env>,
    ) -> ReadAhead {
        let in_flight = spec.store.as_ref().map_or(0, |s| s.in_flight());
        let (tx, rx) = sync_channel(queued_batches(spec.read.batch_size, in_flight));
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let ordinals = spec.inputs.iter().map(|(i, _)| i.ordinal).collect();
        let thread_shared = Arc::clone(&shared);
        scope.spawn(move || read_all(spec, &thread_shared, &tx));
        ReadAhead {
            ordinals,
            rx: Mutex::new(rx),
            shared,
        }
    }

    /// The worker begins `input`: its schema and a handle on its batches, or
    /// `None` when `input` is not one of this read-ahead's shards.
    pub fn open(&self, input: &InputFile) -> Option<Result<(SchemaKind, ShardBatches<'_>)>> {
        let pos = self.ordinals.iter().position(|&o| o == input.ordinal)?;
        {
            let mut st = self.shared.lock();
            st.begun = Some(st.begun.map_or(pos, |b| b.max(pos)));
            self.shared.changed.notify_all();
        }
        let batches = ShardBatches {
            ahead: self,
            pos,
            finished: false,
        };
        // Skip what is still queued of shards the worker already left.
        loop {
            match batches.recv() {
                Some(Msg::Opened(p, schema)) if p == pos => {
                    return Some(schema.map(|s| (s, batches)));
                }
                Some(_) => continue,
                None => {
                    return Some(Err(anyhow::anyhow!(
                        "internal error: the shard reader stopped before {}",
                        input.path.display()
                    )))
                }
            }
        }
    }

    fn lock_rx(&self) -> MutexGuard<'_, Receiver<Msg>> {
        self.rx.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        // Dropping the receiver next wakes a reader blocked on a full queue.
    }
}

/// The batches of one shard, in order; dropping it tells the reader the
/// worker is done with the shard.
pub struct ShardBatches<'a> {
    ahead: &'a ReadAhead,
    pos: usize,
    finished: bool,
}

impl ShardBatches<'_> {
    fn recv(&self) -> Option<Msg> {
        self.ahead.lock_rx().recv().ok()
    }

    /// The next batch of this shard: the reader's `next_batch` result.
    pub fn next_batch(&mut self) -> BatchResult {
        if self.finished {
            return Ok(None);
        }
        match self.recv() {
            Some(Msg::Batch(p, b)) if p == self.pos => {
                if !matches!(b, Ok(Some(_))) {
                    self.finished = true;
                }
                b
            }
            _ => {
                self.finished = true;
                anyhow::bail!("internal error: the shard reader lost its place")
            }
        }
    }
}

impl Drop for ShardBatches<'_> {
    fn drop(&mut self) {
        let mut st = self.ahead.shared.lock();
        st.done = Some(st.done.map_or(self.pos, |d| d.max(self.pos)));
        self.ahead.shared.changed.notify_all();
    }
}

/// The reader thread: every shard in order, each batch prefetched before it
/// is queued.
fn read_all(spec: ReadAheadSpec<'_>, shared: &Shared, tx: &SyncSender<Msg>) {
    for (pos, (input, early)) in spec.inputs.iter().enumerate() {
        // Wait until the shard may be opened; skip it if the worker went past.
        {
            let mut st = shared.lock();
            loop {
                if st.stop {
                    return;
                }
                let begun = st.begun;
                if begun.is_some_and(|b| b > pos) {
                    break;
                }
                if *early || begun == Some(pos) {
                    break;
                }
                st = shared.changed.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.begun.is_some_and(|b| b > pos) {
                continue;
            }
        }
        let mut reader = match sources::open(input, &spec.read) {
            Ok(r) => r,
            Err(e) => {
                if tx.send(Msg::Opened(pos, Err(e))).is_err() {
                    return;
                }
                continue;
            }
        };
        let schema = reader.schema();
        if tx.send(Msg::Opened(pos, Ok(schema))).is_err() {
            return;
        }
        let prefetch_to = spec.store.as_ref().filter(|_| !schema.has_inline_content());
        loop {
            {
                let st = shared.lock();
                if st.stop {
                    return;
                }
                // The worker left this shard early (or never began it):
                // read no more of it.
                if st.done.is_some_and(|d| d >= pos) || st.begun.is_some_and(|b| b > pos) {
                    break;
                }
            }
            let batch = reader.next_batch();
            if let (Some(store), Ok(Some(rows))) = (prefetch_to, &batch) {
                store.prefetch(&prefetch_ids(rows, spec.filters));
            }
            let last = !matches!(batch, Ok(Some(_)));
            if tx.send(Msg::Batch(pos, batch)).is_err() {
                return;
            }
            if last {
                break;
            }
        }
    }
}

/// The blob ids phase 1 will fetch for `rows`: rows that were read, have no
/// inline text, pass the metadata filters and name a blob. The shard worker
/// fetches exactly these, so every prefetch is claimed.
pub fn prefetch_ids<'r>(rows: &'r [Result<Record, RowReject>], filters: &Filters) -> Vec<&'r str> {
    rows.iter()
        .filter_map(|r| r.as_ref().ok())
        .filter(|r| r.text.is_none() && filters.check_metadata(r).is_ok())
        .filter_map(|r| r.blob_id.as_deref().filter(|id| !id.is_empty()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_covers_twice_the_requests_in_flight() {
        assert_eq!(queued_batches(1024, 0), QUEUED_BATCHES);
        assert_eq!(queued_batches(1024, 1024), QUEUED_BATCHES);
        assert_eq!(queued_batches(64, 1024), 32);
        assert_eq!(queued_batches(100, 256), 6);
        assert_eq!(queued_batches(0, 8), 16);
    }
}
