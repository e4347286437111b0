//! Phase 1 over several shards at once: lanes, each with a thread pool of
//! its own.
//!
//! The shards to do are dealt round-robin to `L` lanes (lane `k` takes
//! shards `k`, `k + L`, `k + 2L`, ... of them, in ordinal order). Each lane
//! has its own read-ahead across its shards and its own rayon pool, and runs
//! [`super::process_shard`] on each of its shards in turn, exactly as a run
//! with that pool's thread count would. A shard's files depend on that
//! shard alone, and the global steps read the shards in ordinal order, so
//! the output is the same bytes for any number of lanes.
//!
//! PERF: one shard at a time on a pool of T threads keeps its two stages
//! (filters, then part, keys and verdicts) and its parallel maps handing
//! batches between threads: at 2 threads phase 1 reached 1.23-1.40x of one
//! thread, with the cores about 75% busy, while two one-thread processes
//! side by side reached 1.80-1.92x on the same machine (the machine's
//! ceiling, `scripts/bench_two_core_ceiling.sh`). Finer tasks, a fused
//! per-record map, two stages of batches in flight, a commit beside the
//! next shard and two shards feeding one shared pool each moved it 6% at
//! most (benches/results/hot-paths.md). A lane on a one-thread pool is such
//! a one-thread process inside this one: 1M files in 10 shards, 2 threads,
//! the same script gave `shards` 1.72x and 1.87x of one thread in two rounds
//! (BENCHMARKS.md), the same output bytes.
//!
//! Costs: each lane holds its shard's keys, facts and band entries until
//! the shard commits, so phase 1's memory grows by about one shard's
//! sidecars per lane (85 MB measured for shards of 100k files;
//! [`MAX_LANES`] bounds it); and the last shards of the run may leave a
//! lane with nothing to do while another finishes (shards are dealt, not
//! taken, so that each lane's read-ahead knows its shards from the start
//! and keeps the content store's requests in flight across their
//! boundaries).
//!
//! One lane, on the run's own pool, when there is one thread or one shard
//! to do, and under `--max-samples`, whose budget runs through the shards
//! in ordinal order.

use super::inputs::{self, ResolvedInputs, ShardFetcher};
use super::process_shard::{self, ShardContext};
use super::progress::Progress;
use super::read_ahead::{ReadAhead, ReadAheadSpec};
use super::work_dir::WorkDir;
use crate::output::run_report::FailedInput;
use crate::sources::InputFile;
use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};

/// The most lanes: each holds a shard's sidecars until its commit.
pub const MAX_LANES: usize = 8;

/// How many lanes phase 1 runs: one per thread, at most [`MAX_LANES`] and
/// at most one per shard to do; one under `--max-samples`.
pub fn lane_count(threads: usize, shards_to_do: usize, max_samples: bool) -> usize {
    if max_samples {
        return 1;
    }
    threads.clamp(1, MAX_LANES).min(shards_to_do.max(1))
}

/// The threads of lane `lane` of `lanes`: the run's threads shared out, the
/// first lanes taking one more where they do not divide evenly.
pub fn lane_threads(threads: usize, lanes: usize, lane: usize) -> usize {
    (threads / lanes + usize::from(lane < threads % lanes)).max(1)
}

/// What every lane shares.
pub struct LaneContext<'a> {
    pub resolved: &'a ResolvedInputs,
    pub work: &'a WorkDir,
    pub keep_going: bool,
    pub ctx: &'a ShardContext<'a>,
    pub fetcher: &'a ShardFetcher,
    pub progress: &'a Progress,
}

impl LaneContext<'_> {
    /// Runs phase 1 on `todo` (in ordinal order) in `lanes` lanes (see
    /// `Lanes::run`).
    pub fn run(
        &self,
        lanes: usize,
        todo: &[&InputFile],
        remaining: &mut Option<u64>,
    ) -> Result<Vec<FailedInput>> {
        Lanes {
            cx: self,
            stop: AtomicBool::new(false),
        }
        .run(lanes, todo, remaining)
    }
}

/// The lanes of one phase 1.
struct Lanes<'a> {
    cx: &'a LaneContext<'a>,
    /// Set by a lane that failed: the others stop before their next shard.
    stop: AtomicBool,
}

/// A lane's failure: the error and the ordinal of the shard it stopped at.
type LaneError = (u32, anyhow::Error);

impl Lanes<'_> {
    /// Runs phase 1 on `todo` (in ordinal order) in `lanes` lanes;
    /// `remaining` is the `--max-samples` budget (one lane only). Returns
    /// the inputs skipped under `--keep-going`, in ordinal order; a failure
    /// is the one of the lowest shard that failed.
    fn run(
        &self,
        lanes: usize,
        todo: &[&InputFile],
        remaining: &mut Option<u64>,
    ) -> Result<Vec<FailedInput>> {
        let mut failed = if lanes <= 1 {
            self.run_lane(todo, remaining).map_err(|(_, e)| e)?
        } else {
            let threads = rayon::current_num_threads();
            let outcomes: Vec<std::result::Result<_, LaneError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..lanes)
                    .map(|k| {
                        let mine: Vec<&InputFile> =
                            todo.iter().copied().skip(k).step_by(lanes).collect();
                        let n = lane_threads(threads, lanes, k);
                        scope.spawn(move || self.run_in_own_pool(k, n, &mine))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                    .collect()
            });
            let mut failed = Vec::new();
            let mut first_error: Option<LaneError> = None;
            for outcome in outcomes {
                match outcome {
                    Ok(f) => failed.extend(f),
                    Err((o, e)) => {
                        if first_error.as_ref().is_none_or(|(fo, _)| o < *fo) {
                            first_error = Some((o, e));
                        }
                    }
                }
            }
            if let Some((_, e)) = first_error {
                return Err(e);
            }
            failed
        };
        // In ordinal order: the same report whatever order the lanes ended in.
        failed.sort_by_key(|(ordinal, _)| *ordinal);
        Ok(failed.into_iter().map(|(_, f)| f).collect())
    }

    /// [`Self::run_lane`] on a rayon pool of its own with `threads` threads.
    fn run_in_own_pool(
        &self,
        lane: usize,
        threads: usize,
        inputs: &[&InputFile],
    ) -> std::result::Result<Vec<(u32, FailedInput)>, LaneError> {
        let pool = match rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(move |i| format!("lane-{lane}-{i}"))
            .build()
        {
            Ok(pool) => pool,
            Err(e) => {
                self.stop.store(true, Ordering::Relaxed);
                let first = inputs.first().map_or(0, |i| i.ordinal);
                return Err((
                    first,
                    anyhow::Error::new(e).context("cannot start a phase-1 thread pool"),
                ));
            }
        };
        pool.install(|| self.run_lane(inputs, &mut None))
    }

    /// Processes `inputs` in order; returns the inputs skipped under
    /// `--keep-going`, with their ordinals. A failure stops the other lanes
    /// before their next shard.
    fn run_lane(
        &self,
        inputs: &[&InputFile],
        remaining: &mut Option<u64>,
    ) -> std::result::Result<Vec<(u32, FailedInput)>, LaneError> {
        let outcome = self.run_lane_shards(inputs, remaining);
        if outcome.is_err() {
            self.stop.store(true, Ordering::Relaxed);
        }
        outcome
    }

    fn run_lane_shards(
        &self,
        inputs: &[&InputFile],
        remaining: &mut Option<u64>,
    ) -> std::result::Result<Vec<(u32, FailedInput)>, LaneError> {
        let mut failed = Vec::new();
        // One reader across the lane's shards, so the content store's
        // requests stay in flight across shard boundaries (see `read_ahead`).
        let upcoming = inputs
            .iter()
            .map(|i| ((*i).clone(), inputs::is_local(self.cx.resolved, i.ordinal)))
            .collect();
        std::thread::scope(|scope| {
            let ahead = ReadAhead::start(
                scope,
                ReadAheadSpec {
                    inputs: upcoming,
                    read: self.cx.ctx.read.clone(),
                    filters: self.cx.ctx.filters,
                    store: self.cx.ctx.content_store.clone(),
                },
            );
            let ctx = ShardContext {
                read_ahead: Some(&ahead),
                ..self.cx.ctx.clone()
            };
            for input in inputs {
                if *remaining == Some(0) || self.stop.load(Ordering::Relaxed) {
                    break;
                }
                let outcome = self
                    .cx
                    .fetcher
                    .ready(input)
                    .and_then(|()| process_shard::process_shard(input, &ctx, remaining));
                let settled = super::settle_shard(self.cx.work, input, outcome, self.cx.keep_going)
                    .map_err(|e| (input.ordinal, e))?;
                if let Some(f) = settled {
                    self.cx.progress.println(&format!(
                        "tritter-gpu: skipping {}: {}",
                        input.path.display(),
                        f.error
                    ));
                    failed.push((input.ordinal, f));
                }
                self.cx.progress.shard_done(input.size);
            }
            Ok(failed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lane_per_thread_within_the_bounds() {
        assert_eq!(lane_count(1, 10, false), 1);
        assert_eq!(lane_count(2, 10, false), 2);
        assert_eq!(lane_count(2, 1, false), 1);
        assert_eq!(lane_count(2, 0, false), 1);
        assert_eq!(lane_count(64, 100, false), MAX_LANES);
        assert_eq!(lane_count(2, 10, true), 1);
    }

    #[test]
    fn lanes_share_out_every_thread() {
        for threads in 1..20 {
            for lanes in 1..=threads.min(MAX_LANES) {
                let each: Vec<usize> = (0..lanes)
                    .map(|k| lane_threads(threads, lanes, k))
                    .collect();
                assert_eq!(
                    each.iter().sum::<usize>(),
                    threads,
                    "{threads} over {lanes}"
                );
                assert!(each.iter().max().unwrap() - each.iter().min().unwrap() <= 1);
            }
        }
    }
}
