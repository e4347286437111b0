//! What the global steps see of phase 1: the finished parts in a fixed
//! order, a dense record number per kept record, and the per-record tables
//! that several steps need, loaded at most once per process and shared by its
//! tasks.
//!
//! Record numbers (`rid`) count the kept records of every part in (shard
//! ordinal, position in the part) order, which is the output order: part `i`
//! holds `rid`s `first_rid[i]..first_rid[i] + kept[i]`. The list of parts is
//! fixed when the global steps start (`WORK/global/parts.json`), so every task
//! of every step agrees on it, whichever process runs it.
//!
//! Memory at The Stack v2 Python scale (57M kept files): the record table is
//! 49 B per file (preference 40, text bytes 4, shingles 4, short flag 1),
//! 2.8 GB; the losers are 16 B per exact duplicate plus a bitmap of 7 MB.

use super::super::record_meta::read_meta;
use super::super::run_config::GlobalConfig;
use super::super::work_dir::{ShardDone, WorkDir};
use super::{GlobalContext, EXACT};
use crate::rank::Preference;
use crate::record::RecordId;
use anyhow::{ensure, Context, Result};
use bytemuck::{Pod, Zeroable};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One finished part, as the global steps see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartInfo {
    /// The work directory holding it.
    pub root: PathBuf,
    pub first_rid: u64,
    pub done: ShardDone,
}

impl PartInfo {
    pub fn work(&self) -> WorkDir {
        WorkDir {
            root: self.root.clone(),
        }
    }

    pub fn ordinal(&self) -> u32 {
        self.done.ordinal
    }

    pub fn rids(&self) -> std::ops::Range<u64> {
        self.first_rid..self.first_rid + self.done.kept
    }
}

/// The finished parts of `cfg`'s work directories, by ordinal; a shard
/// finished in several directories is taken from the first.
pub fn list_parts(cfg: &GlobalConfig) -> Result<Vec<PartInfo>> {
    let mut seen = std::collections::BTreeMap::new();
    for dir in &cfg.work_dirs {
        let root = cfg.resolve(dir);
        let work = WorkDir { root: root.clone() };
        for done in work.all_done()? {
            seen.entry(done.ordinal).or_insert((root.clone(), done));
        }
    }
    let mut next = 0u64;
    let mut parts = Vec::with_capacity(seen.len());
    for (_, (root, done)) in seen {
        let kept = done.kept;
        parts.push(PartInfo {
            root,
            first_rid: next,
            done,
        });
        next += kept;
    }
    ensure!(
        next < u32::MAX as u64,
        "the global steps handle at most 4,294,967,294 kept files per run, got {next}"
    );
    Ok(parts)
}

/// Whether `WORK/global/parts.json`, if any, lists exactly the parts that
/// are finished now (a resumed phase 1 that finished more shards, or a
/// changed merge, starts the global steps over).
pub fn parts_current(dir: &Path, cfg: &GlobalConfig) -> Result<bool> {
    match std::fs::read(dir.join("parts.json")) {
        Ok(bytes) => {
            Ok(serde_json::from_slice::<Vec<PartInfo>>(&bytes).ok() == Some(list_parts(cfg)?))
        }
        Err(_) => Ok(true),
    }
}

/// Per-record facts over every `rid`.
pub struct RecordTable {
    pub prefs: Vec<Preference>,
    pub text_bytes: Vec<u32>,
    pub shingles: Vec<u32>,
    pub short: Vec<bool>,
}

/// An exact-dedup loser as the `exact` step writes it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct LoserRecord {
    pub rid: u32,
    pub kept_shard: u32,
    pub kept_row: u64,
}

impl LoserRecord {
    pub fn kept(&self) -> RecordId {
        RecordId {
            shard: self.kept_shard,
            row: self.kept_row,
        }
    }
}

/// Every exact-dedup loser, by `rid`.
pub struct Losers {
    pub list: Vec<LoserRecord>,
    bitmap: Vec<u64>,
}

impl Losers {
    pub fn contains(&self, rid: u32) -> bool {
        self.bitmap[rid as usize / 64] >> (rid % 64) & 1 == 1
    }

    /// Losers before `rid`: `rid - losers_before(rid)` is the record's number
    /// among the exact-dedup survivors (the key of near dedup's reports).
    pub fn before(&self, rid: u32) -> u32 {
        self.list.partition_point(|l| l.rid < rid) as u32
    }

    pub fn get(&self, rid: u32) -> Option<&LoserRecord> {
        self.list
            .binary_search_by_key(&rid, |l| l.rid)
            .ok()
            .map(|i| &self.list[i])
    }
}

/// The parts and the shared tables.
pub struct GlobalView {
    pub parts: Vec<PartInfo>,
    pub total: u64,
    records: OnceLock<RecordTable>,
    losers: OnceLock<Losers>,
    /// Tasks starting together load a table once, not once each.
    loading: std::sync::Mutex<()>,
}

impl GlobalView {
    /// Reads `parts.json`, writing it first when this is the first task.
    pub fn open(dir: &Path, cfg: &GlobalConfig) -> Result<GlobalView> {
        let path = dir.join("parts.json");
        let parts: Vec<PartInfo> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is corrupt; delete it", path.display()))?,
            Err(_) => {
                let parts = list_parts(cfg)?;
                // Tasks starting together may all write it: the same bytes,
                // renamed atomically.
                crate::output::atomic::write_atomic_unsynced(&path, &serde_json::to_vec(&parts)?)?;
                parts
            }
        };
        let total = parts.last().map(|p| p.first_rid + p.done.kept).unwrap_or(0);
        Ok(GlobalView {
            parts,
            total,
            records: OnceLock::new(),
            losers: OnceLock::new(),
            loading: std::sync::Mutex::new(()),
        })
    }

    /// The part holding `rid`.
    pub fn part_of(&self, rid: u32) -> usize {
        self.parts.partition_point(|p| p.first_rid <= rid as u64) - 1
    }

    /// The part and position of `rid`.
    pub fn locate(&self, rid: u32) -> (usize, u32) {
        let i = self.part_of(rid);
        (i, (rid as u64 - self.parts[i].first_rid) as u32)
    }

    pub fn records(&self) -> Result<&RecordTable> {
        if let Some(r) = self.records.get() {
            return Ok(r);
        }
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = self.records.get() {
            return Ok(r);
        }
        let per_part: Vec<Vec<crate::pipeline::record_meta::RecordMeta>> = self
            .parts
            .par_iter()
            .map(|p| {
                let meta = read_meta(&p.work().meta_path(p.ordinal()))?;
                ensure!(
                    meta.len() as u64 == p.done.kept,
                    "record facts of shard {} hold {} records, its part {}",
                    p.ordinal(),
                    meta.len(),
                    p.done.kept
                );
                Ok(meta)
            })
            .collect::<Result<_>>()?;
        let n = self.total as usize;
        let mut t = RecordTable {
            prefs: Vec::with_capacity(n),
            text_bytes: Vec::with_capacity(n),
            shingles: Vec::with_capacity(n),
            short: Vec::with_capacity(n),
        };
        for (p, meta) in self.parts.iter().zip(per_part) {
            for m in meta {
                t.prefs.push(m.preference(p.ordinal()));
                t.text_bytes.push(m.text_bytes);
                t.shingles.push(m.shingles);
                t.short.push(m.is_short());
            }
        }
        Ok(self.records.get_or_init(|| t))
    }

    /// The losers of every `exact` task (the step must be done).
    pub fn losers(&self, ctx: &GlobalContext) -> Result<&Losers> {
        if let Some(l) = self.losers.get() {
            return Ok(l);
        }
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = self.losers.get() {
            return Ok(l);
        }
        ctx.done_markers(EXACT)?;
        let mut list = Vec::new();
        for t in 0..ctx.tasks_of(EXACT) {
            let path = ctx.task_file(EXACT, t, "losers");
            let bytes =
                std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
            ensure!(
                bytes.len() % std::mem::size_of::<LoserRecord>() == 0,
                "{} is truncated",
                path.display()
            );
            list.extend(bytemuck::pod_collect_to_vec::<u8, LoserRecord>(&bytes));
        }
        list.par_sort_unstable_by_key(|l| l.rid);
        let mut bitmap = vec![0u64; (self.total as usize).div_ceil(64).max(1)];
        for l in &list {
            bitmap[l.rid as usize / 64] |= 1 << (l.rid % 64);
        }
        Ok(self.losers.get_or_init(|| Losers { list, bitmap }))
    }
}
