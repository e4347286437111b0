//! Step `clusters`: greedy stars inside components, the keep rule.
//!
//! Task `p` of `P` takes components `i` with `i mod P == p` and runs greedy
//! stars ([`crate::dedup::near::star_index`], a candidate index that gives
//! the stars of [`crate::dedup::near::cluster::stars`] in linear time) on
//! each: the best unassigned member is kept and removes every later member
//! verified similar to it, with exact Jaccard of the shingle sets (the
//! default) or the signature estimate (`--verify signature`). Exact
//! verification reads only the members' texts, by position
//! ([`crate::pipeline::record_lookup`]: from the parts, one frame of
//! [`crate::pipeline::part::RECORDS_PER_FRAME`] records decompressed at a
//! time, or from `dedup`'s input lines; only the text of a line parsed), in
//! chunks of components whose shingle sets fit the task's share of the
//! memory budget. Stars go to `clusters/task-NNNNN.stars`: per component
//! `index, stars`, per star `centre, members`, per member `position,
//! similarity bits` (little-endian
//! u32, u32, u64), positions into the component's member list.
//!
//! DETERMINISM: a component's stars depend on its members (in preference
//! order) and their texts or signatures only.

use super::components::read_components;
use super::verify::Signatures;
use super::{GlobalContext, CLUSTERS};
use crate::dedup::near::cluster::Star;
use crate::dedup::near::shingle::shingle_set;
use crate::dedup::near::star_index::{self, signature_stars};
use crate::dedup::near::verify::{Thresholds, VerifyMode};
use anyhow::{bail, Context, Result};
use rayon::prelude::*;

pub fn run(ctx: &GlobalContext, task: u32, tasks: u32) -> Result<serde_json::Value> {
    let near = ctx.cfg.near.as_ref().context("near dedup is off")?;
    let thresholds = Thresholds::new(near.jaccard, near.num_perm);
    ctx.done_markers(super::COMPONENTS)?;
    let comps = read_components(ctx)?;
    let mine: Vec<usize> = (0..comps.len())
        .filter(|i| (*i as u64 % tasks as u64) as u32 == task)
        .collect();
    let results: Vec<(usize, Vec<Star>)> = match near.verify {
        VerifyMode::Signature => {
            let sigs = Signatures::open(ctx)?;
            let np = sigs.num_perm;
            mine.par_iter()
                .map(|&i| -> Result<(usize, Vec<Star>)> {
                    let c = &comps[i];
                    let mut all = vec![0u32; c.len() * np];
                    for (j, &rid) in c.iter().enumerate() {
                        sigs.get(ctx, rid, &mut all[j * np..(j + 1) * np])?;
                    }
                    Ok((i, signature_stars(&all, np, &thresholds)))
                })
                .collect::<Result<_>>()?
        }
        VerifyMode::Exact => exact_stars(ctx, &comps, &mine, &thresholds, near, tasks)?,
    };
    let mut bytes = Vec::new();
    for (i, ss) in &results {
        bytes.extend_from_slice(&(*i as u32).to_le_bytes());
        bytes.extend_from_slice(&(ss.len() as u32).to_le_bytes());
        for s in ss {
            bytes.extend_from_slice(&(s.centre as u32).to_le_bytes());
            bytes.extend_from_slice(&(s.members.len() as u32).to_le_bytes());
            for &(m, sim) in &s.members {
                bytes.extend_from_slice(&(m as u32).to_le_bytes());
                bytes.extend_from_slice(&sim.to_bits().to_le_bytes());
            }
        }
    }
    crate::output::atomic::write_atomic_unsynced(&ctx.task_file(CLUSTERS, task, "stars"), &bytes)?;
    Ok(serde_json::Value::Null)
}

/// Stars with exact Jaccard, reading the members' texts in chunks of
/// components whose shingle sets fit the task's share of the budget.
fn exact_stars(
    ctx: &GlobalContext,
    comps: &[Vec<u32>],
    mine: &[usize],
    thresholds: &Thresholds,
    near: &crate::dedup::near::NearDedupConfig,
    tasks: u32,
) -> Result<Vec<(usize, Vec<Star>)>> {
    let records = ctx.view.records()?;
    let budget = (near.memory_bytes / 2 / tasks.max(1) as u64).max(1);
    let mut out = Vec::with_capacity(mine.len());
    let mut start = 0;
    while start < mine.len() {
        let mut end = start;
        let mut bytes = 0u64;
        while end < mine.len() {
            let b: u64 = comps[mine[end]]
                .iter()
                .map(|&k| records.shingles[k as usize] as u64 * 4 + 32)
                .sum();
            if end > start && bytes + b > budget {
                break;
            }
            bytes += b;
            end += 1;
        }
        let chunk = &mine[start..end];
        let mut wanted: Vec<u32> = chunk
            .iter()
            .flat_map(|&i| comps[i].iter().copied())
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let texts = read_texts(ctx, &wanted)?;
        let ngram = near.ngram;
        let sets: Vec<Vec<u32>> = texts.par_iter().map(|t| shingle_set(t, ngram)).collect();
        drop(texts);
        for (&rid, set) in wanted.iter().zip(&sets) {
            if set.len() != records.shingles[rid as usize] as usize {
                bail!(
                    "record {rid} changed since phase 1 ({} shingles, now {}); the work directory is damaged, rerun with --fresh",
                    records.shingles[rid as usize],
                    set.len()
                );
            }
        }
        let slot = |rid: u32| {
            wanted
                .binary_search(&rid)
                .expect("wanted holds every member")
        };
        let part: Vec<(usize, Vec<Star>)> = chunk
            .par_iter()
            .map(|&i| {
                let c = &comps[i];
                let members: Vec<&[u32]> = c.iter().map(|&k| sets[slot(k)].as_slice()).collect();
                (i, star_index::exact_stars(&members, thresholds))
            })
            .collect();
        out.extend(part);
        start = end;
    }
    Ok(out)
}

/// Readers per [`read_texts`] call, on threads of their own.
const TEXT_READERS: usize = 4;

/// The texts of `wanted` (sorted record numbers), in that order. Each part's
/// records are read in record order, so that each of its frames is
/// decompressed once, and [`TEXT_READERS`] threads read the parts: a chunk
/// holding one giant component would otherwise read all its members on one
/// thread. The readers are threads of their own rather than the pool's
/// because, once the corpus outgrows the page cache (10M files here), the
/// reads wait on the disk: `perf` of `dedup` at 10M files, 2 threads, had the
/// step's two threads busy 63% of its wall time, 45% of their samples in
/// these reads, and a deeper queue of reads keeps the disk busier.
fn read_texts(ctx: &GlobalContext, wanted: &[u32]) -> Result<Vec<String>> {
    // Runs of `wanted` in one part (record numbers ascend part by part).
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    for (i, &rid) in wanted.iter().enumerate() {
        let (part, _) = ctx.view.locate(rid);
        match runs.last_mut() {
            Some((p, _, end)) if *p == part => *end = i + 1,
            _ => runs.push((part, i, i + 1)),
        }
    }
    let read_run = |&(part, start, end): &(usize, usize, usize)| -> Result<Vec<String>> {
        let mut lookup = ctx.record_lookup(part)?;
        wanted[start..end]
            .iter()
            .map(|&rid| lookup.text(ctx.view.locate(rid).1))
            .collect()
    };
    let mut per_run: Vec<Option<Result<Vec<String>>>> = (0..runs.len()).map(|_| None).collect();
    if runs.len() <= 1 {
        for (slot, run) in per_run.iter_mut().zip(&runs) {
            *slot = Some(read_run(run));
        }
    } else {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done = std::sync::Mutex::new(&mut per_run);
        std::thread::scope(|scope| {
            for _ in 0..TEXT_READERS.min(runs.len()) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(run) = runs.get(i) else {
                        break;
                    };
                    let texts = read_run(run);
                    let failed = texts.is_err();
                    done.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(texts);
                    if failed {
                        // The first error in run order is returned below;
                        // later runs need not be read.
                        next.fetch_add(runs.len(), std::sync::atomic::Ordering::Relaxed);
                    }
                });
            }
        });
    }
    let mut texts = Vec::with_capacity(wanted.len());
    for r in per_run {
        texts.extend(r.context("a text reader stopped before its part was read")??);
    }
    Ok(texts)
}

/// One removed record: the kept record it duplicates and the similarity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Removal {
    pub rid: u32,
    pub kept_rid: u32,
    pub similarity: f64,
}

/// One kept record and the records it removed, with their similarity.
pub type RidStar = (u32, Vec<(u32, f64)>);

/// Every star of every component, in component order.
pub fn read_stars(ctx: &GlobalContext, comps: &[Vec<u32>]) -> Result<Vec<RidStar>> {
    let mut by_comp: Vec<Option<Vec<RidStar>>> = vec![None; comps.len()];
    for t in 0..ctx.tasks_of(CLUSTERS) {
        let path = ctx.task_file(CLUSTERS, t, "stars");
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut at = 0usize;
        let u32_at = |at: &mut usize| -> Result<u32> {
            let b = bytes
                .get(*at..*at + 4)
                .with_context(|| format!("{} is truncated", path.display()))?;
            *at += 4;
            Ok(u32::from_le_bytes(b.try_into().expect("four bytes")))
        };
        while at < bytes.len() {
            let i = u32_at(&mut at)? as usize;
            let n = u32_at(&mut at)?;
            let c = comps.get(i).with_context(|| {
                format!(
                    "{} names component {i}, which does not exist",
                    path.display()
                )
            })?;
            let mut ss = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let centre = u32_at(&mut at)? as usize;
                let m = u32_at(&mut at)?;
                let mut members = Vec::with_capacity(m as usize);
                for _ in 0..m {
                    let pos = u32_at(&mut at)? as usize;
                    let lo = u32_at(&mut at)? as u64;
                    let hi = u32_at(&mut at)? as u64;
                    members.push((c[pos], f64::from_bits(lo | hi << 32)));
                }
                ss.push((c[centre], members));
            }
            by_comp[i] = Some(ss);
        }
    }
    let mut out = Vec::new();
    for (i, ss) in by_comp.into_iter().enumerate() {
        out.extend(ss.with_context(|| {
            format!("component {i} has no stars file entry; rerun step clusters")
        })?);
    }
    Ok(out)
}

/// Every removed record, by `rid`.
pub fn removals(stars: &[RidStar]) -> Vec<Removal> {
    let mut out: Vec<Removal> = stars
        .iter()
        .flat_map(|(kept, members)| {
            members.iter().map(move |&(rid, similarity)| Removal {
                rid,
                kept_rid: *kept,
                similarity,
            })
        })
        .collect();
    out.sort_unstable_by_key(|r| r.rid);
    out
}
