//! Step `lsh`: LSH candidate edges of one band-hash range.
//!
//! Task `p` of `P` reads band-hash partition `p` from every part's sorted band
//! sidecar ([`crate::dedup::near::shard_keys::read_band_partition`]), leaves
//! out the exact-dedup losers, sorts the entries by `(hash, rid)` and links
//! every member of a bucket (the records that agree on one band) to the
//! bucket's most preferred member, as [`crate::dedup::near::lsh`] explains.
//! The edges `(head, member)` (record numbers) are bucketed for the `verify`
//! step by a hash of the edge, deduplicated and written sorted by
//! `(bucket, edge)` to `lsh/task-NNNNN.edges`, with the offset of every bucket
//! in `lsh/task-NNNNN.edge-index` (P + 1 little-endian u64).
//!
//! Memory: the task's band entries, 12 B each: 57M files x 28 bands / P
//! = 19 GB / P (1.2 GB at P = 16), plus its edges (8 B each).
//!
//! DETERMINISM: a bucket is one hash, so it lies wholly in one partition; the
//! head is chosen by preference; the edge set is therefore the same for any P.

use super::{GlobalContext, LSH};
use crate::dedup::near::lsh::{pack_edge, LshStats};
use crate::dedup::near::shard_keys::read_band_partition;
use crate::partition::{mix64, partition_of};
use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// What one task found (the fields of [`LshStats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LshSummary {
    pub band_records: u64,
    pub shared_buckets: u64,
    pub largest_bucket: u64,
    pub edges_emitted: u64,
}

impl LshSummary {
    /// Sums the tasks' counts (largest bucket: the maximum).
    pub fn merge(all: &[LshSummary]) -> LshStats {
        let mut s = LshStats::default();
        for a in all {
            s.band_records += a.band_records;
            s.shared_buckets += a.shared_buckets;
            s.largest_bucket = s.largest_bucket.max(a.largest_bucket);
            s.edges_emitted += a.edges_emitted;
        }
        s
    }
}

/// The `verify` bucket of an edge.
pub fn edge_bucket(edge: u64, buckets: u32) -> u32 {
    partition_of(mix64(edge), buckets)
}

pub fn run(ctx: &GlobalContext, task: u32, tasks: u32) -> Result<serde_json::Value> {
    let view = &ctx.view;
    let losers = view.losers(ctx)?;
    let prefs = &view.records()?.prefs;
    let per_part: Vec<Vec<(u64, u32)>> = view
        .parts
        .par_iter()
        .map(|p| -> Result<Vec<(u64, u32)>> {
            let entries = read_band_partition(&p.work().bands_path(p.ordinal()), task, tasks)?;
            Ok(entries
                .into_iter()
                .map(|e| (e.hash, (p.first_rid + e.seq as u64) as u32))
                .filter(|&(_, rid)| !losers.contains(rid))
                .collect())
        })
        .collect::<Result<_>>()?;
    // Each part's entries are sorted by (hash, rid) already, and the parts
    // hold disjoint rids: the stable sort merges those runs (O(n log k) for
    // k parts) where an unstable sort starts over; equal entries are equal
    // tuples, so the order is the same either way.
    let mut records: Vec<(u64, u32)> = per_part.into_iter().flatten().collect();
    records.par_sort();

    let mut s = LshSummary {
        band_records: records.len() as u64,
        ..LshSummary::default()
    };
    let verify_tasks = tasks;
    let mut edges: Vec<(u32, u64)> = Vec::new();
    let mut group: Vec<u32> = Vec::new();
    let mut i = 0;
    while i < records.len() {
        let hash = records[i].0;
        group.clear();
        while i < records.len() && records[i].0 == hash {
            group.push(records[i].1);
            i += 1;
        }
        // Two bands of one record colliding would repeat it (sorted already).
        group.dedup();
        if group.len() < 2 {
            continue;
        }
        s.shared_buckets += 1;
        s.largest_bucket = s.largest_bucket.max(group.len() as u64);
        let head = *group
            .iter()
            .min_by(|&&a, &&b| prefs[a as usize].cmp(&prefs[b as usize]))
            .expect("two members");
        for &m in &group {
            if m != head {
                let e = pack_edge(head, m);
                edges.push((edge_bucket(e, verify_tasks), e));
                s.edges_emitted += 1;
            }
        }
    }
    drop(records);
    edges.par_sort_unstable();
    edges.dedup();
    let mut index = vec![0u64; verify_tasks as usize + 1];
    let mut bytes = Vec::with_capacity(edges.len() * 8);
    for &(b, e) in &edges {
        index[b as usize + 1] += 1;
        bytes.extend_from_slice(&e.to_le_bytes());
    }
    for b in 1..index.len() {
        index[b] += index[b - 1];
    }
    crate::output::atomic::write_atomic_unsynced(&ctx.task_file(LSH, task, "edges"), &bytes)?;
    let index_bytes: Vec<u8> = index.iter().flat_map(|v| v.to_le_bytes()).collect();
    crate::output::atomic::write_atomic_unsynced(
        &ctx.task_file(LSH, task, "edge-index"),
        &index_bytes,
    )?;
    Ok(serde_json::to_value(s)?)
}
