//! Tokens in and out of a stage, for the stats: texts are queued as the
//! stage decides about them and tokenised in parallel batches, off the
//! stage's own sequential loop; at the end the tallies (exact, or the
//! sampled estimate) are added to [`Stats`].

use super::count::{TokenCounter, TokenTally, TokensMode};
use crate::stats::Stats;
use anyhow::Result;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// Texts queued before a parallel batch is tokenised.
const BATCH: usize = 4096;

/// What became of a queued text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Kept,
    Dropped(String),
}

/// The token tallies of one stage.
pub struct StageTokens<'a> {
    counter: &'a TokenCounter,
    stage: &'static str,
    pending: Vec<(String, Fate)>,
    tally_in: TokenTally,
    tally_out: TokenTally,
    dropped: BTreeMap<String, TokenTally>,
}

impl<'a> StageTokens<'a> {
    pub fn new(counter: &'a TokenCounter, stage: &'static str) -> StageTokens<'a> {
        StageTokens {
            counter,
            stage,
            pending: Vec::new(),
            tally_in: TokenTally::default(),
            tally_out: TokenTally::default(),
            dropped: BTreeMap::new(),
        }
    }

    /// Queues one text with its fate.
    pub fn push(&mut self, text: String, fate: Fate) -> Result<()> {
        self.pending.push((text, fate));
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let tallies: Vec<TokenTally> = self
            .pending
            .par_iter()
            .map(|(t, _)| self.counter.tally_one(t))
            .collect::<Result<_>>()?;
        // DETERMINISM: merged in queue order; integer sums in any case.
        for ((_, fate), t) in self.pending.iter().zip(&tallies) {
            self.tally_in.merge(t);
            match fate {
                Fate::Kept => self.tally_out.merge(t),
                Fate::Dropped(reason) => self.dropped.entry(reason.clone()).or_default().merge(t),
            }
        }
        self.pending.clear();
        Ok(())
    }

    /// Adds this stage's tokens to `stats` (and `also`, stages the same
    /// texts passed through unchanged, e.g. `read`). An estimate is noted
    /// as `tokens_estimated`.
    pub fn finish(mut self, stats: &mut Stats, also: &[&str]) -> Result<()> {
        self.flush()?;
        let tin = self.tally_in.finish().tokens;
        let tout = self.tally_out.finish().tokens;
        stats.add_tokens(self.stage, tin, tout);
        for s in also {
            stats.add_tokens(s, tin, tin);
        }
        for (reason, t) in &self.dropped {
            stats.add_dropped_tokens(self.stage, reason, t.finish().tokens);
        }
        if self.counter.mode() == TokensMode::Estimate {
            stats.note("tokens_estimated", 1);
        }
        Ok(())
    }
}

/// The token tallies of consecutive stages that a text goes through until
/// one drops it (curate's global steps: exact dedup, near dedup,
/// decontamination). A text dropped at a stage passed every stage before
/// it; a kept text passed them all.
pub struct StagesTokens<'a> {
    counter: &'a TokenCounter,
    stages: Vec<&'static str>,
    /// Queued texts with the stage index and reason that dropped them.
    pending: Vec<(String, Option<(usize, String)>)>,
    tally_in: Vec<TokenTally>,
    dropped: Vec<BTreeMap<String, TokenTally>>,
    kept: TokenTally,
}

impl<'a> StagesTokens<'a> {
    pub fn new(counter: &'a TokenCounter, stages: Vec<&'static str>) -> StagesTokens<'a> {
        let n = stages.len();
        StagesTokens {
            counter,
            stages,
            pending: Vec::new(),
            tally_in: vec![TokenTally::default(); n],
            dropped: vec![BTreeMap::new(); n],
            kept: TokenTally::default(),
        }
    }

    /// Queues a text that passed every stage.
    pub fn kept(&mut self, text: String) -> Result<()> {
        self.queue(text, None)
    }

    /// Queues a text dropped at `stage` for `reason`. A stage this counter
    /// does not know is a bug of the caller, reported as an error.
    pub fn dropped(&mut self, text: String, stage: &str, reason: &str) -> Result<()> {
        let Some(i) = self.stages.iter().position(|s| *s == stage) else {
            anyhow::bail!(
                "token counting: stage {stage} is not among {:?}",
                self.stages
            );
        };
        self.queue(text, Some((i, reason.to_string())))
    }

    fn queue(&mut self, text: String, fate: Option<(usize, String)>) -> Result<()> {
        self.pending.push((text, fate));
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let tallies: Vec<TokenTally> = self
            .pending
            .par_iter()
            .map(|(t, _)| self.counter.tally_one(t))
            .collect::<Result<_>>()?;
        for ((_, fate), t) in self.pending.iter().zip(&tallies) {
            let reached = fate.as_ref().map_or(self.stages.len(), |(i, _)| *i + 1);
            for s in &mut self.tally_in[..reached] {
                s.merge(t);
            }
            match fate {
                Some((i, reason)) => self.dropped[*i].entry(reason.clone()).or_default().merge(t),
                None => self.kept.merge(t),
            }
        }
        self.pending.clear();
        Ok(())
    }

    /// Adds every stage's tokens to `stats`.
    pub fn finish(mut self, stats: &mut Stats) -> Result<()> {
        self.flush()?;
        for (i, stage) in self.stages.iter().enumerate() {
            let tin = self.tally_in[i].finish().tokens;
            // Out of a stage: into the next one, or kept after the last.
            let tout = match self.tally_in.get(i + 1) {
                Some(next) => next.finish().tokens,
                None => self.kept.finish().tokens,
            };
            stats.add_tokens(stage, tin, tout);
            for (reason, t) in &self.dropped[i] {
                stats.add_dropped_tokens(stage, reason, t.finish().tokens);
            }
        }
        if self.counter.mode() == TokensMode::Estimate {
            stats.note("tokens_estimated", 1);
        }
        Ok(())
    }
}
