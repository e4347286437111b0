//! Step `components`: the connected components of the verified edges.
//!
//! One task: union-find over every record number (8 B per file: 456 MB at
//! 57M files, whatever the number of edges, which are streamed from the
//! `verify` tasks' files), then [`crate::dedup::near::cluster::UnionFind::components`]:
//! components of two or more records, each sorted by preference, the list
//! sorted by each component's best member. They are written to
//! `components/task-00000.components` as `len, rid...` little-endian u32s.
//! The task also counts the near-dedup documents (the exact-dedup survivors)
//! for the report.
//!
//! DETERMINISM: components do not depend on the order of unions; their order
//! is by preference.

use super::{GlobalContext, COMPONENTS, VERIFY};
use crate::dedup::near::cluster::UnionFind;
use crate::dedup::near::lsh::unpack_edge;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ComponentsSummary {
    pub components: u64,
    pub largest_component: u64,
    /// Exact-dedup survivors (near dedup's documents).
    pub docs: u64,
    pub text_bytes: u64,
    pub docs_short: u64,
    pub docs_without_shingles: u64,
}

pub fn run(ctx: &GlobalContext) -> Result<serde_json::Value> {
    let view = &ctx.view;
    let losers = view.losers(ctx)?;
    let records = view.records()?;
    let mut s = ComponentsSummary::default();
    for rid in 0..view.total as u32 {
        if losers.contains(rid) {
            continue;
        }
        s.docs += 1;
        s.text_bytes += records.text_bytes[rid as usize] as u64;
        if records.shingles[rid as usize] == 0 {
            s.docs_without_shingles += 1;
        } else if records.short[rid as usize] {
            s.docs_short += 1;
        }
    }
    ctx.done_markers(VERIFY)?;
    let mut uf = UnionFind::new(view.total as usize);
    for t in 0..ctx.tasks_of(VERIFY) {
        let path = ctx.task_file(VERIFY, t, "edges");
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for c in bytes.chunks_exact(8) {
            let (u, v) = unpack_edge(u64::from_le_bytes(c.try_into().expect("eight bytes")));
            uf.union(u, v);
        }
    }
    let comps = uf.components(&records.prefs);
    s.components = comps.len() as u64;
    s.largest_component = comps.iter().map(|c| c.len()).max().unwrap_or(0) as u64;
    let mut bytes = Vec::new();
    for c in &comps {
        bytes.extend_from_slice(&(c.len() as u32).to_le_bytes());
        for &rid in c {
            bytes.extend_from_slice(&rid.to_le_bytes());
        }
    }
    crate::output::atomic::write_atomic_unsynced(
        &ctx.task_file(COMPONENTS, 0, "components"),
        &bytes,
    )?;
    Ok(serde_json::to_value(s)?)
}

/// Reads the components written by the step.
pub fn read_components(ctx: &GlobalContext) -> Result<Vec<Vec<u32>>> {
    let path = ctx.task_file(COMPONENTS, 0, "components");
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("four bytes")))
        .collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let n = words[i] as usize;
        anyhow::ensure!(i + 1 + n <= words.len(), "{} is truncated", path.display());
        out.push(words[i + 1..i + 1 + n].to_vec());
        i += 1 + n;
    }
    Ok(out)
}
