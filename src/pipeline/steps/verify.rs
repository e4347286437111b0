//! Step `verify`: checks the candidate edges of one edge bucket on the
//! signatures.
//!
//! Task `q` of `P` reads bucket `q` of every `lsh` task's edge file, sorts and
//! deduplicates them (an edge found in several band ranges is verified once),
//! and keeps the edges whose signatures agree in at least
//! [`crate::dedup::near::verify::Thresholds::edge_matches`] positions (the
//! lowered edge threshold, see [`crate::dedup::near::verify`]). Signatures are
//! read by position from the parts' signature sidecars; the OS page cache
//! keeps what fits. Verified edges go to `verify/task-NNNNN.edges`.
//!
//! DETERMINISM: an edge lies in exactly one bucket; verification depends on
//! the two signatures only.

use super::{GlobalContext, LSH, VERIFY};
use crate::dedup::near::lsh::unpack_edge;
use crate::dedup::near::shard_keys::SignatureFile;
use crate::dedup::near::verify::Thresholds;
use anyhow::{ensure, Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::FileExt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifySummary {
    /// Distinct candidate edges.
    pub candidate_edges: u64,
    pub verified_edges: u64,
}

/// The edges of bucket `q` in `lsh` task `t`'s file.
fn read_bucket(ctx: &GlobalContext, t: u32, q: u32) -> Result<Vec<u64>> {
    let index_path = ctx.task_file(LSH, t, "edge-index");
    let index = std::fs::read(&index_path)
        .with_context(|| format!("cannot read {}", index_path.display()))?;
    let at = |i: usize| -> Result<u64> {
        let b = index
            .get(i * 8..i * 8 + 8)
            .with_context(|| format!("{} is truncated", index_path.display()))?;
        Ok(u64::from_le_bytes(b.try_into().expect("eight bytes")))
    };
    let (start, end) = (at(q as usize)?, at(q as usize + 1)?);
    let path = ctx.task_file(LSH, t, "edges");
    let f =
        std::fs::File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = vec![0u8; ((end - start) * 8) as usize];
    f.read_exact_at(&mut bytes, start * 8)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("eight bytes")))
        .collect())
}

/// Every part's signature file, opened once per task.
pub struct Signatures {
    files: Vec<SignatureFile>,
    pub num_perm: usize,
}

impl Signatures {
    pub fn open(ctx: &GlobalContext) -> Result<Signatures> {
        let near = ctx.cfg.near.as_ref().context("near dedup is off")?;
        let files = ctx
            .view
            .parts
            .iter()
            .map(|p| SignatureFile::open(&p.work().signatures_path(p.ordinal()), near.num_perm))
            .collect::<Result<_>>()?;
        Ok(Signatures {
            files,
            num_perm: near.num_perm,
        })
    }

    pub fn get(&self, ctx: &GlobalContext, rid: u32, out: &mut [u32]) -> Result<()> {
        let (part, seq) = ctx.view.locate(rid);
        self.files[part].get(seq, out)
    }
}

/// Signature readers per thread of the step's pool.
const READERS_PER_THREAD: usize = 4;

pub fn run(ctx: &GlobalContext, task: u32, tasks: u32) -> Result<serde_json::Value> {
    let near = ctx.cfg.near.as_ref().context("near dedup is off")?;
    let thresholds = Thresholds::new(near.jaccard, near.num_perm);
    let lsh_tasks = ctx.tasks_of(LSH);
    ctx.done_markers(LSH)?;
    ensure!(
        lsh_tasks == tasks,
        "lsh and verify must have the same task count"
    );
    let mut edges = Vec::new();
    for t in 0..lsh_tasks {
        edges.extend(read_bucket(ctx, t, task)?);
    }
    edges.par_sort_unstable();
    edges.dedup();
    let sigs = Signatures::open(ctx)?;
    let np = sigs.num_perm;
    // PERF: verification is independent per edge. The edges are sorted,
    // so runs of them share their first end (a bucket's most preferred
    // member is linked to every other member): its signature is read once
    // per run, 108k fewer reads (one `pread` each) on the 1M corpus, where
    // the rest are mostly `clusters` reading its members' lines.
    //
    // Once the signatures outgrow the page cache (10M files: 10 GB of them
    // beside the corpus), each read waits on the disk and the step's
    // threads idle (17 s wall for 14 CPU s). The reads then run on a pool
    // of their own, [`READERS_PER_THREAD`] per thread, so more of them are
    // in flight; the checks are cheap next to them.
    let readers = (rayon::current_num_threads() * READERS_PER_THREAD).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(readers)
        .thread_name(|i| format!("verify-read-{i}"))
        .build()
        .context("cannot start the signature readers")?;
    let ok: Vec<bool> = pool.install(|| {
        edges
            .par_iter()
            .with_min_len(256)
            .map_init(
                || (vec![0u32; np], vec![0u32; np], None),
                |(a, b, held), &e| -> Result<bool> {
                    let (u, v) = unpack_edge(e);
                    if *held != Some(u) {
                        sigs.get(ctx, u, a)?;
                        *held = Some(u);
                    }
                    sigs.get(ctx, v, b)?;
                    Ok(thresholds.edge_passes(a, b))
                },
            )
            .collect::<Result<_>>()
    })?;
    let mut bytes = Vec::new();
    let mut verified = 0u64;
    for (e, pass) in edges.iter().zip(&ok) {
        if *pass {
            verified += 1;
            bytes.extend_from_slice(&e.to_le_bytes());
        }
    }
    crate::output::atomic::write_atomic_unsynced(&ctx.task_file(VERIFY, task, "edges"), &bytes)?;
    Ok(serde_json::to_value(VerifySummary {
        candidate_edges: edges.len() as u64,
        verified_edges: verified,
    })?)
}
