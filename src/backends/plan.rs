//! Batch planning shared by the GPU backends (CUDA and wgpu): how one
//! [`ShingleBatch`] is cut into device-sized pieces, and how the pieces'
//! results are put back together.
//!
//! ## Tasks
//! A document's shingles are cut into *tasks* of at most
//! [`BatchLimits::shingles_per_task`] shingles. One GPU thread block
//! (workgroup) handles one task for a slice of the permutations: it stages the
//! task's shingles in shared memory and each thread folds them into the minimum
//! for its permutation, then combines that minimum into the output with an
//! atomic `min`. Cutting long documents into tasks keeps the blocks' work even
//! (a 1 MB file no longer serialises the tail of a launch), and costs one
//! atomic per task and permutation.
//!
//! DETERMINISM: `min` is commutative, associative and exact, so the result does
//! not depend on the order in which blocks finish, on the task size or on how
//! the batch is split into sub-batches: it is `min` over the same multiset of
//! values `a_i * x + b_i mod 2^32` as [`super::ops::minhash_signature`].
//!
//! ## Sub-batches
//! Consecutive tasks are grouped into *sub-batches* that fit the device
//! (shingles per upload, tasks per launch, documents per output buffer). A
//! sub-batch covers the contiguous shingle range of its tasks and the document
//! range from its first task's document to its last task's. Its output is
//! pre-filled with [`EMPTY_SIGNATURE_VALUE`], so an empty document inside the
//! range comes out as the reference says. A document split over two sub-batches
//! appears in both outputs; [`merge_min`] folds every sub-batch into the final
//! buffer (itself pre-filled) with an element-wise `min`, which is exact.

use super::ops::{ShingleBatch, EMPTY_SIGNATURE_VALUE};
use anyhow::{bail, ensure, Result};

/// Size limits of one device round trip. The defaults come from each backend's
/// device limits; tests shrink them to exercise the boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// Shingles per task (per thread block / workgroup).
    pub shingles_per_task: u32,
    /// Shingle hashes uploaded per sub-batch.
    pub max_shingles: usize,
    /// Tasks per launch.
    pub max_tasks: usize,
    /// Output values (documents x permutations, or documents x bands, or
    /// queries) per sub-batch.
    pub max_outputs: usize,
}

/// A call is cut into at least this many sub-batches when it is large
/// enough (see [`BatchLimits::spread`]).
pub const MIN_SUB_BATCHES: usize = 4;
/// ... but no sub-batch is made smaller than this many shingles or outputs
/// for it: below about 256 KiB a transfer costs little more than its
/// latency.
pub const MIN_SPREAD_ITEMS: usize = 1 << 16;

impl BatchLimits {
    /// The limits for one call of `items` shingles (or inputs) and `outputs`
    /// outputs: at most these limits, and small enough that the call is cut
    /// into at least [`MIN_SUB_BATCHES`] sub-batches, so that staging,
    /// upload, kernel and download of consecutive sub-batches overlap (a
    /// call of one sub-batch runs them one after another). Never below
    /// [`MIN_SPREAD_ITEMS`], unless the limits themselves are.
    pub fn spread(&self, items: usize, outputs: usize) -> BatchLimits {
        let cut = |total: usize, max: usize| {
            total
                .div_ceil(MIN_SUB_BATCHES)
                .max(MIN_SPREAD_ITEMS)
                .min(max)
        };
        BatchLimits {
            shingles_per_task: self.shingles_per_task,
            max_shingles: cut(items, self.max_shingles),
            max_tasks: self.max_tasks,
            max_outputs: cut(outputs, self.max_outputs),
        }
    }

    /// Checks the limits are usable (every field positive).
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.shingles_per_task > 0
                && self.max_shingles > 0
                && self.max_tasks > 0
                && self.max_outputs > 0,
            "batch limits must be positive: {self:?}"
        );
        Ok(())
    }
}

/// One task: `len` shingles of document `doc` starting at `start`, both
/// relative to the sub-batch. Three u32 on the device, in this order.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
pub struct Task {
    pub doc: u32,
    pub start: u32,
    pub len: u32,
}

/// A device-sized piece of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubBatch {
    /// First document (index into the whole batch) covered by the output.
    pub doc_begin: usize,
    /// One past the last document covered.
    pub doc_end: usize,
    /// Range of `batch.hashes` to upload.
    pub shingle_begin: usize,
    pub shingle_end: usize,
    /// Tasks with `doc` relative to `doc_begin` and `start` to `shingle_begin`.
    pub tasks: Vec<Task>,
}

impl SubBatch {
    pub fn docs(&self) -> usize {
        self.doc_end - self.doc_begin
    }

    pub fn shingles(&self) -> usize {
        self.shingle_end - self.shingle_begin
    }
}

/// Checks that `batch` is well formed: offsets non-decreasing, within the
/// hash buffer. The CPU reference would panic on a malformed batch; the GPU
/// backends report it instead.
pub fn validate_batch(batch: &ShingleBatch<'_>) -> Result<()> {
    for w in batch.offsets.windows(2) {
        ensure!(
            w[0] <= w[1],
            "shingle batch offsets decrease ({} then {})",
            w[0],
            w[1]
        );
    }
    if let Some(&last) = batch.offsets.last() {
        ensure!(
            last as usize <= batch.hashes.len(),
            "shingle batch offsets end at {last} but only {} hashes were given",
            batch.hashes.len()
        );
    }
    Ok(())
}

/// Cuts `batch` into sub-batches for signatures with `num_perm` permutations.
pub fn plan_signatures(
    batch: &ShingleBatch<'_>,
    num_perm: usize,
    limits: &BatchLimits,
) -> Result<Vec<SubBatch>> {
    limits.validate()?;
    validate_batch(batch)?;
    if num_perm == 0 {
        return Ok(Vec::new());
    }
    let max_docs = limits.max_outputs / num_perm;
    if max_docs == 0 {
        bail!(
            "{num_perm} permutations do not fit one output buffer of {} values",
            limits.max_outputs
        );
    }
    let per_task = (limits.shingles_per_task as usize).min(limits.max_shingles);
    let mut out = Vec::new();
    let mut cur: Option<SubBatch> = None;
    for d in 0..batch.docs() {
        let (s, e) = (batch.offsets[d] as usize, batch.offsets[d + 1] as usize);
        let mut start = s;
        while start < e {
            let len = per_task.min(e - start);
            let fits = cur.as_ref().is_some_and(|c| {
                c.tasks.len() < limits.max_tasks
                    && c.shingles() + len <= limits.max_shingles
                    && d + 1 - c.doc_begin <= max_docs
            });
            if !fits {
                if let Some(c) = cur.take() {
                    out.push(c);
                }
                cur = Some(SubBatch {
                    doc_begin: d,
                    doc_end: d + 1,
                    shingle_begin: start,
                    shingle_end: start,
                    tasks: Vec::new(),
                });
            }
            // Invariant: `cur` is Some here.
            if let Some(c) = cur.as_mut() {
                debug_assert_eq!(c.shingle_end, start, "tasks must be contiguous");
                c.tasks.push(Task {
                    doc: (d - c.doc_begin) as u32,
                    start: (start - c.shingle_begin) as u32,
                    len: len as u32,
                });
                c.shingle_end = start + len;
                c.doc_end = d + 1;
            }
            start += len;
        }
    }
    if let Some(c) = cur.take() {
        out.push(c);
    }
    Ok(out)
}

/// Folds one sub-batch output (`sub.docs() * width` values) into `out` (the
/// whole batch, pre-filled with [`EMPTY_SIGNATURE_VALUE`]) with `min`.
pub fn merge_min(out: &mut [u32], sub: &SubBatch, width: usize, part: &[u32]) {
    let dst = &mut out[sub.doc_begin * width..sub.doc_end * width];
    debug_assert_eq!(dst.len(), part.len());
    for (o, &v) in dst.iter_mut().zip(part) {
        *o = (*o).min(v);
    }
}

/// The documents whose band hashes the device cannot give when signatures
/// and bands are computed per sub-batch: those covered by no sub-batch (no
/// shingles, between or after the sub-batches' documents) and those split
/// over several sub-batches (each sub-batch saw only part of them). Their
/// bands are computed from the merged signatures on the host; every other
/// document lies in exactly one sub-batch, whose device bands are final.
/// Sorted, without repeats.
pub fn band_fixups(docs: usize, subs: &[SubBatch]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut next = 0usize; // first document not yet classified
    for (i, sb) in subs.iter().enumerate() {
        // Documents before this sub-batch that no sub-batch covered.
        out.extend(next..sb.doc_begin.max(next));
        // This sub-batch's first document is split when the previous one
        // also covered it.
        if i > 0 && subs[i - 1].doc_end > sb.doc_begin && out.last() != Some(&sb.doc_begin) {
            out.push(sb.doc_begin);
        }
        next = next.max(sb.doc_end);
    }
    out.extend(next..docs);
    out
}

/// A signature output pre-filled as the reference leaves empty documents.
pub fn empty_signatures(docs: usize, num_perm: usize) -> Vec<u32> {
    vec![EMPTY_SIGNATURE_VALUE; docs * num_perm]
}

/// Ranges `[begin, end)` of at most `chunk` items covering `0..n`.
pub fn chunks(n: usize, chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    let chunk = chunk.max(1);
    (0..n).step_by(chunk).map(move |b| (b, (b + chunk).min(n)))
}

/// Checks the band-hash arguments exactly as the CPU reference does and
/// returns the number of documents.
pub fn validate_bands(signatures: &[u32], num_perm: usize, bands: u32, rows: u32) -> Result<usize> {
    ensure!(
        num_perm > 0 && signatures.len().is_multiple_of(num_perm),
        "signature buffer of {} values is not a multiple of {num_perm}",
        signatures.len()
    );
    ensure!(
        bands as u64 * rows as u64 <= num_perm as u64,
        "{bands} bands x {rows} rows exceed {num_perm} permutations"
    );
    Ok(signatures.len() / num_perm)
}

/// The n-gram lookups a GPU backend answers without the device: an empty
/// query list, or an empty table (every query misses). Also rejects tables
/// too large for the kernels' 32-bit indices. `None`: the device must run.
pub fn ngram_without_device(
    queries: &[u64],
    table: &super::ops::NgramTable,
) -> anyhow::Result<Option<Vec<u32>>> {
    use super::ops::NGRAM_MISS;
    let n_keys = table.len();
    anyhow::ensure!(
        n_keys < NGRAM_MISS as usize,
        "an n-gram table of {n_keys} keys does not fit 32-bit indices"
    );
    if queries.is_empty() {
        return Ok(Some(Vec::new()));
    }
    if n_keys == 0 {
        return Ok(Some(vec![NGRAM_MISS; queries.len()]));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backends::ops::ShingleBuffer;

    fn limits(per_task: u32, shingles: usize, tasks: usize, outputs: usize) -> BatchLimits {
        BatchLimits {
            shingles_per_task: per_task,
            max_shingles: shingles,
            max_tasks: tasks,
            max_outputs: outputs,
        }
    }

    /// Every shingle of every document is in exactly one task, in order.
    fn covered(buf: &ShingleBuffer, plan: &[SubBatch]) -> Vec<(usize, usize)> {
        let mut seen = Vec::new();
        for sb in plan {
            for t in &sb.tasks {
                let d = sb.doc_begin + t.doc as usize;
                let s = sb.shingle_begin + t.start as usize;
                assert!(d < sb.doc_end);
                assert!(s + t.len as usize <= sb.shingle_end);
                for i in 0..t.len as usize {
                    seen.push((d, s + i));
                }
            }
        }
        let mut want = Vec::new();
        for d in 0..buf.docs() {
            for i in buf.offsets[d] as usize..buf.offsets[d + 1] as usize {
                want.push((d, i));
            }
        }
        assert_eq!(seen, want);
        seen
    }

    #[test]
    fn tasks_cover_every_shingle_once_under_tight_limits() {
        let mut buf = ShingleBuffer::new();
        for n in [0usize, 1, 7, 0, 0, 33, 2, 0] {
            buf.push_doc(&(0..n as u32).collect::<Vec<_>>());
        }
        for l in [
            limits(1, 1, 1, 4),
            limits(4, 9, 3, 8),
            limits(2048, 1 << 20, 1 << 16, 1 << 20),
            limits(5, 5, 100, 4 * 3),
        ] {
            let plan = plan_signatures(&buf.as_batch(), 4, &l).unwrap();
            covered(&buf, &plan);
            for sb in &plan {
                assert!(sb.tasks.len() <= l.max_tasks);
                assert!(sb.shingles() <= l.max_shingles);
                assert!(sb.docs() * 4 <= l.max_outputs);
                assert!(sb
                    .tasks
                    .iter()
                    .all(|t| t.len > 0 && t.len <= l.shingles_per_task));
            }
        }
    }

    #[test]
    fn empty_batches_and_zero_permutations_plan_nothing() {
        let buf = ShingleBuffer::new();
        assert!(plan_signatures(&buf.as_batch(), 8, &limits(4, 4, 4, 64))
            .unwrap()
            .is_empty());
        let mut buf = ShingleBuffer::new();
        buf.push_doc(&[1, 2, 3]);
        assert!(plan_signatures(&buf.as_batch(), 0, &limits(4, 4, 4, 64))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn malformed_batches_are_errors_not_panics() {
        let hashes = [1u32, 2, 3];
        let bad = ShingleBatch {
            hashes: &hashes,
            offsets: &[0, 2, 1],
        };
        assert!(plan_signatures(&bad, 4, &limits(4, 4, 4, 64)).is_err());
        let short = ShingleBatch {
            hashes: &hashes,
            offsets: &[0, 5],
        };
        assert!(plan_signatures(&short, 4, &limits(4, 4, 4, 64)).is_err());
        let wide = ShingleBatch {
            hashes: &hashes,
            offsets: &[0, 3],
        };
        assert!(plan_signatures(&wide, 100, &limits(4, 4, 4, 64)).is_err());
    }

    #[test]
    fn band_fixups_are_the_uncovered_and_split_documents() {
        let mut buf = ShingleBuffer::new();
        // 0 empty, 1 long (split), 2 short, 3 empty, 4 short, 5 empty.
        for n in [0usize, 20, 3, 0, 4, 0] {
            buf.push_doc(&(0..n as u32).collect::<Vec<_>>());
        }
        let plan = plan_signatures(&buf.as_batch(), 2, &limits(4, 8, 100, 100)).unwrap();
        assert!(plan.len() > 2);
        // A document's device bands are final iff exactly one sub-batch's
        // document range holds it.
        let want: Vec<usize> = (0..buf.docs())
            .filter(|&d| {
                plan.iter()
                    .filter(|s| (s.doc_begin..s.doc_end).contains(&d))
                    .count()
                    != 1
            })
            .collect();
        let fix = band_fixups(buf.docs(), &plan);
        assert_eq!(fix, want);
        assert!(fix.contains(&1), "the split document");
        assert!(fix.contains(&5), "the trailing empty document");
        assert_eq!(band_fixups(3, &[]), vec![0, 1, 2]);
    }

    #[test]
    fn spread_cuts_large_calls_into_several_sub_batches() {
        let l = limits(4096, 1 << 24, 1 << 20, 1 << 22);
        let s = l.spread(2_600_000, 2000 * 256);
        assert_eq!(s.max_shingles, 650_000);
        assert_eq!(s.max_outputs, MIN_SPREAD_ITEMS.max(2000 * 256 / 4));
        // Small calls are not cut below the floor; limits are never raised.
        assert_eq!(l.spread(1000, 10).max_shingles, MIN_SPREAD_ITEMS);
        let tiny = limits(5, 97, 11, 600);
        assert_eq!(tiny.spread(1 << 30, 1 << 30), tiny);
    }

    #[test]
    fn merge_min_keeps_the_smaller_value() {
        let sb = SubBatch {
            doc_begin: 1,
            doc_end: 2,
            shingle_begin: 0,
            shingle_end: 0,
            tasks: Vec::new(),
        };
        let mut out = vec![5, 5, 9, 1, 5, 5];
        merge_min(&mut out, &sb, 2, &[3, 4]);
        assert_eq!(out, vec![5, 5, 3, 1, 5, 5]);
    }
}
