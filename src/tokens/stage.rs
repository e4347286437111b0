//! Tokens in and out of a stage, for the stats.
//!
//! Two ways in:
//! - texts are queued as a stage decides about them ([`StageTokens`] for one
//!   stage, [`StagesTokens`] for consecutive stages) and tokenised in
//!   parallel batches, off the stage's own sequential loop;
//! - a text's tally is computed where its text already is, in parallel (phase
//!   1's shard worker), and added with its fate ([`StageTallies`]).
//!
//! Either way a text's tally goes into the stages it reached through one
//! helper ([`StageTally`]), and at the end the tallies (exact, or the sampled
//! estimate) are added to [`Stats`].

use super::count::{TokenCounter, TokenTally, TokensMode};
use crate::stats::Stats;
use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Texts queued before a parallel batch is tokenised.
const BATCH: usize = 4096;

/// What became of a queued text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Kept,
    Dropped(String),
}

/// The tokens into and out of one stage, and those it dropped per reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTally {
    tally_in: TokenTally,
    tally_out: TokenTally,
    dropped: BTreeMap<String, TokenTally>,
}

impl StageTally {
    /// A text that went through the stage.
    pub fn passed(&mut self, t: &TokenTally) {
        self.tally_in.merge(t);
        self.tally_out.merge(t);
    }

    /// A text the stage dropped for `reason`.
    pub fn dropped(&mut self, t: &TokenTally, reason: &str) {
        self.tally_in.merge(t);
        match self.dropped.get_mut(reason) {
            Some(d) => d.merge(t),
            None => {
                self.dropped.insert(reason.to_string(), t.clone());
            }
        }
    }

    pub fn merge(&mut self, o: &StageTally) {
        self.tally_in.merge(&o.tally_in);
        self.tally_out.merge(&o.tally_out);
        for (reason, t) in &o.dropped {
            self.dropped.entry(reason.clone()).or_default().merge(t);
        }
    }

    /// Adds the stage's tokens to `stats`.
    pub fn add_to(&self, stats: &mut Stats, stage: &str) {
        stats.add_tokens(
            stage,
            self.tally_in.finish().tokens,
            self.tally_out.finish().tokens,
        );
        for (reason, t) in &self.dropped {
            stats.add_dropped_tokens(stage, reason, t.finish().tokens);
        }
    }
}

/// Texts waiting to be tokenised, each with what the caller needs to know
/// about it; tokenised in parallel when [`BATCH`] are queued.
struct Queue<F> {
    pending: Vec<(String, F)>,
}

impl<F: Sync> Queue<F> {
    fn new() -> Queue<F> {
        Queue {
            pending: Vec::new(),
        }
    }

    /// Queues a text; true when the batch is full and should be drained.
    fn push(&mut self, text: String, fate: F) -> bool {
        self.pending.push((text, fate));
        self.pending.len() >= BATCH
    }

    /// Tokenises the queued texts in parallel and hands each tally to
    /// `apply`. DETERMINISM: applied in queue order; the tallies are integer
    /// sums in any case.
    fn drain(
        &mut self,
        counter: &TokenCounter,
        mut apply: impl FnMut(&F, &TokenTally),
    ) -> Result<()> {
        let tallies: Vec<TokenTally> = self
            .pending
            .par_iter()
            .map(|(t, _)| counter.tally_one(t))
            .collect::<Result<_>>()?;
        for ((_, fate), t) in self.pending.iter().zip(&tallies) {
            apply(fate, t);
        }
        self.pending.clear();
        Ok(())
    }
}

/// The token tallies of one stage.
pub struct StageTokens<'a> {
    counter: &'a TokenCounter,
    stage: &'static str,
    queue: Queue<Fate>,
    tally: StageTally,
}

impl<'a> StageTokens<'a> {
    pub fn new(counter: &'a TokenCounter, stage: &'static str) -> StageTokens<'a> {
        StageTokens {
            counter,
            stage,
            queue: Queue::new(),
            tally: StageTally::default(),
        }
    }

    /// Queues one text with its fate.
    pub fn push(&mut self, text: String, fate: Fate) -> Result<()> {
        if self.queue.push(text, fate) {
            self.flush()?;
        }
        Ok(())
    }

    /// Adds one text's tally, known from an earlier count with the same
    /// settings, with its fate.
    pub fn push_tally(&mut self, t: &TokenTally, fate: &Fate) {
        match fate {
            Fate::Kept => self.tally.passed(t),
            Fate::Dropped(reason) => self.tally.dropped(t, reason),
        }
    }

    fn flush(&mut self) -> Result<()> {
        let tally = &mut self.tally;
        self.queue.drain(self.counter, |fate, t| match fate {
            Fate::Kept => tally.passed(t),
            Fate::Dropped(reason) => tally.dropped(t, reason),
        })
    }

    /// Adds this stage's tokens to `stats` (and `also`, stages the same
    /// texts passed through unchanged, e.g. `read`). An estimate is noted
    /// as `tokens_estimated`.
    pub fn finish(mut self, stats: &mut Stats, also: &[&str]) -> Result<()> {
        self.flush()?;
        self.tally.add_to(stats, self.stage);
        let tin = self.tally.tally_in.finish().tokens;
        for s in also {
            stats.add_tokens(s, tin, tin);
        }
        note_estimate(self.counter, stats);
        Ok(())
    }
}

fn note_estimate(counter: &TokenCounter, stats: &mut Stats) {
    if counter.mode() == TokensMode::Estimate {
        stats.note("tokens_estimated", 1);
    }
}

/// The token tallies of consecutive stages that a text goes through until
/// one drops it (curate's global steps: exact dedup, near dedup,
/// decontamination; phase 1's per-record stages). A text dropped at a stage
/// passed every stage before it; a kept text passed them all.
pub struct StagesTokens<'a> {
    counter: &'a TokenCounter,
    tallies: StageTallies,
    /// Queued texts with the stage index and reason that dropped them.
    queue: Queue<Option<(usize, String)>>,
}

impl<'a> StagesTokens<'a> {
    pub fn new(counter: &'a TokenCounter, stages: Vec<&'static str>) -> StagesTokens<'a> {
        StagesTokens {
            counter,
            tallies: StageTallies::new(stages),
            queue: Queue::new(),
        }
    }

    /// Queues a text that passed every stage.
    pub fn kept(&mut self, text: String) -> Result<()> {
        self.queue(text, None)
    }

    /// A text that passed every stage, tallied already (by phase 1).
    pub fn kept_tally(&mut self, t: &TokenTally) {
        self.tallies.kept(t);
    }

    /// A text dropped at `stage` for `reason`, tallied already.
    pub fn dropped_tally(&mut self, t: &TokenTally, stage: &str, reason: &str) -> Result<()> {
        let i = self.tallies.index(stage)?;
        self.tallies.dropped_at(i, reason, t);
        Ok(())
    }

    /// Queues a text dropped at `stage` for `reason`. A stage this counter
    /// does not know is a bug of the caller, reported as an error.
    pub fn dropped(&mut self, text: String, stage: &str, reason: &str) -> Result<()> {
        let i = self.tallies.index(stage)?;
        self.queue(text, Some((i, reason.to_string())))
    }

    fn queue(&mut self, text: String, fate: Option<(usize, String)>) -> Result<()> {
        if self.queue.push(text, fate) {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let tallies = &mut self.tallies;
        self.queue.drain(self.counter, |fate, t| match fate {
            Some((i, reason)) => tallies.dropped_at(*i, reason, t),
            None => tallies.kept(t),
        })
    }

    /// The sums so far, unsettled: for a piece of a task, whose tallies the
    /// task merges with its other pieces' and settles once.
    pub fn into_tallies(mut self) -> Result<StageTallies> {
        self.flush()?;
        Ok(self.tallies)
    }

    /// Adds every stage's exact tokens to `stats`; an estimate's sums are
    /// returned instead, to be merged with the other tasks' and finished
    /// once ([`StageTallies::settle`]).
    pub fn finish(mut self, stats: &mut Stats) -> Result<Option<StageTallies>> {
        self.flush()?;
        Ok(self.tallies.settle(self.counter.mode(), stats))
    }
}

/// Tallies of consecutive stages, for texts whose tallies the caller
/// computed itself (phase 1 tokenises each text in its parallel worker,
/// where the text is at hand).
///
/// DETERMINISM: an exact count is a sum, so each shard (or output task) adds
/// its own to the stats. An estimate is not: the ratio estimate of a small
/// shard's few sampled texts (or none) is not the share of the estimate over
/// all of them. So an estimate's sums are kept with the shard, merged by
/// stage name over all shards and tasks, and finished once
/// ([`StageTallies::settle`], [`StageTallies::add_to`]): the same numbers for
/// any split of the inputs into shards, slices or output tasks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTallies {
    stages: Vec<String>,
    tallies: Vec<StageTally>,
}

impl StageTallies {
    pub fn new(stages: Vec<&'static str>) -> StageTallies {
        let n = stages.len();
        StageTallies {
            stages: stages.into_iter().map(str::to_string).collect(),
            tallies: vec![StageTally::default(); n],
        }
    }

    /// Adds `o`'s sums, stage by stage name (a stage only `o` has is
    /// appended).
    pub fn merge(&mut self, o: &StageTallies) {
        for (stage, t) in o.stages.iter().zip(&o.tallies) {
            match self.stages.iter().position(|s| s == stage) {
                Some(i) => self.tallies[i].merge(t),
                None => {
                    self.stages.push(stage.clone());
                    self.tallies.push(t.clone());
                }
            }
        }
    }

    /// Exact counts go into `stats` now; an estimate is noted and its sums
    /// returned, to be merged and finished once.
    pub fn settle(self, mode: TokensMode, stats: &mut Stats) -> Option<StageTallies> {
        if mode == TokensMode::Estimate {
            stats.note("tokens_estimated", 1);
            Some(self)
        } else {
            self.add_to(stats);
            None
        }
    }

    /// The position of `stage`; a stage not in the list is a bug of the
    /// caller, reported as an error.
    pub fn index(&self, stage: &str) -> Result<usize> {
        self.stages.iter().position(|s| *s == stage).ok_or_else(|| {
            anyhow::anyhow!(
                "token counting: stage {stage} is not among {:?}",
                self.stages
            )
        })
    }

    /// A text that passed every stage.
    pub fn kept(&mut self, t: &TokenTally) {
        for s in &mut self.tallies {
            s.passed(t);
        }
    }

    /// A text dropped at stage `i` for `reason`, after passing the ones
    /// before it.
    pub fn dropped_at(&mut self, i: usize, reason: &str, t: &TokenTally) {
        for s in &mut self.tallies[..i] {
            s.passed(t);
        }
        self.tallies[i].dropped(t, reason);
    }

    /// Adds every stage's tokens to `stats`.
    pub fn add_to(&self, stats: &mut Stats) {
        for (stage, t) in self.stages.iter().zip(&self.tallies) {
            t.add_to(stats, stage);
        }
    }
}

/// Merges the estimate sums of shards or tasks and adds the estimates to
/// `stats` (nothing when there are none).
pub fn add_estimates<'a>(parts: impl IntoIterator<Item = &'a StageTallies>, stats: &mut Stats) {
    let mut all: Option<StageTallies> = None;
    for p in parts {
        match all.as_mut() {
            Some(a) => a.merge(p),
            None => all = Some(p.clone()),
        }
    }
    if let Some(a) = all {
        a.add_to(stats);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::TokenizerSpec;

    fn counter() -> TokenCounter {
        TokenCounter::exact(TokenizerSpec::Cl100kBase.load().unwrap())
    }

    /// The queued path (texts tokenised in batches) and the precomputed path
    /// (tallies handed in) give the same stats, across a batch boundary.
    #[test]
    fn queued_and_precomputed_tallies_agree() {
        let c = counter();
        let texts: Vec<String> = (0..BATCH + 17)
            .map(|i| format!("fn f{i}() -> u32 {{ {} }}\n", i * 7).repeat(1 + i % 3))
            .collect();
        let fate = |i: usize| match i % 5 {
            0 => Some(("a", "a_dup")),
            1 => Some(("b", "b_near")),
            _ => None,
        };
        let mut queued = StagesTokens::new(&c, vec!["a", "b"]);
        let mut direct = StageTallies::new(vec!["a", "b"]);
        for (i, t) in texts.iter().enumerate() {
            let tally = c.tally_one(t).unwrap();
            match fate(i) {
                Some((stage, reason)) => {
                    queued.dropped(t.clone(), stage, reason).unwrap();
                    direct.dropped_at(direct.index(stage).unwrap(), reason, &tally);
                }
                None => {
                    queued.kept(t.clone()).unwrap();
                    direct.kept(&tally);
                }
            }
        }
        let (mut s1, mut s2) = (Stats::default(), Stats::default());
        queued.finish(&mut s1).unwrap();
        direct.add_to(&mut s2);
        assert_eq!(
            serde_json::to_value(&s1).unwrap(),
            serde_json::to_value(&s2).unwrap()
        );
        let all: u64 = texts.iter().map(|t| c.tokenizer().count(t).unwrap()).sum();
        let a = s1.get("a").unwrap();
        assert_eq!(a.tokens_in, Some(all));
        let b = s1.get("b").unwrap();
        assert_eq!(a.tokens_out, b.tokens_in);
        let dropped_a: u64 = texts
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 5 == 0)
            .map(|(_, t)| c.tokenizer().count(t).unwrap())
            .sum();
        assert_eq!(a.tokens_out, Some(all - dropped_a));
        assert_eq!(a.dropped["a_dup"].tokens, Some(dropped_a));
    }

    #[test]
    fn an_unknown_stage_is_an_error() {
        let c = counter();
        let mut s = StagesTokens::new(&c, vec!["a"]);
        assert!(s.dropped("x".into(), "b", "r").is_err());
    }
}
