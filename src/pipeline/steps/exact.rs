//! Step `exact`: exact dedup of one MD5 range.
//!
//! Task `p` of `P` reads the entries of MD5 partition `p` from every part's
//! sorted key sidecar ([`crate::dedup::exact::read_key_partition`]), resolves
//! every duplicate group ([`crate::dedup::exact::resolve`]) and writes its
//! losers, as [`super::view::LoserRecord`]s sorted by record number, to
//! `exact/task-NNNNN.losers`.
//!
//! DETERMINISM: all copies of one MD5 fall in one partition and the survivor
//! is the minimum preference, so the union of the tasks' losers is the same
//! for every P.

use super::view::LoserRecord;
use super::{GlobalContext, EXACT};
use crate::dedup::exact::{read_key_partition, resolve};
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// What one task found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExactSummary {
    /// Distinct MD5s.
    pub unique: u64,
    pub duplicates: u64,
}

pub fn run(ctx: &GlobalContext, task: u32, tasks: u32) -> Result<serde_json::Value> {
    let view = &ctx.view;
    let per_part: Vec<Vec<crate::dedup::exact::KeyEntry>> = view
        .parts
        .par_iter()
        .map(|p| read_key_partition(&p.work().keys_path(p.ordinal()), task, tasks))
        .collect::<Result<_>>()?;
    let entries: Vec<_> = per_part.into_iter().flatten().collect();
    let result = resolve(entries);
    // Ordinal -> part index, to turn (shard, seq) into record numbers.
    let index: std::collections::HashMap<u32, usize> = view
        .parts
        .iter()
        .enumerate()
        .map(|(i, p)| (p.ordinal(), i))
        .collect();
    let mut losers = Vec::with_capacity(result.losers.len());
    for l in &result.losers {
        let part = &view.parts[*index.get(&l.shard).with_context(|| {
            format!("dedup keys name shard {}, which is not finished", l.shard)
        })?];
        losers.push(LoserRecord {
            rid: (part.first_rid + l.seq as u64) as u32,
            kept_shard: l.kept.shard,
            kept_row: l.kept.row,
        });
    }
    losers.sort_unstable_by_key(|l| l.rid);
    crate::output::atomic::write_atomic_unsynced(
        &ctx.task_file(EXACT, task, "losers"),
        bytemuck::cast_slice(&losers),
    )?;
    Ok(serde_json::to_value(ExactSummary {
        unique: result.unique,
        duplicates: result.duplicates,
    })?)
}
