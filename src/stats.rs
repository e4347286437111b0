//! Per-stage counters, drop reasons and the seed's retention table.
//!
//! Every stage counts files and bytes in, files and bytes out, and each drop
//! under a reason named `<block>_<reason>` (`license_not_permissive`,
//! `lines_too_few`, `exact_duplicate`, ...). Stats of shards are merged by
//! addition, so a resumed or sharded run reports the same totals as one
//! uninterrupted run. `notes` holds counts that are not drops (e.g.
//! `stars_unknown`: records whose source has no stars column).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Files and bytes (and tokens, where a tokenizer counted them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub files: u64,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

impl Count {
    pub fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }

    pub fn merge(&mut self, other: &Count) {
        self.files += other.files;
        self.bytes += other.bytes;
        self.tokens = add_opt(self.tokens, other.tokens);
    }
}

/// Sum of two optional token counts: absent only when both are.
fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

/// One stage's counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StageStats {
    pub stage: String,
    pub files_in: u64,
    pub bytes_in: u64,
    pub files_out: u64,
    pub bytes_out: u64,
    /// Files kept out of `files_in`, as a percentage (100 when nothing came in).
    pub retention_pct: f64,
    /// Drops by reason.
    pub dropped: BTreeMap<String, Count>,
    /// Tokens in and out, where the run counted them (`--tokens`); absent
    /// for stages without texts (read, metadata) and runs that did not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_in: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_out: Option<u64>,
}

/// The stages of a run, in pipeline order. Stages a run does not perform are
/// simply absent from its stats.
pub const STAGE_ORDER: &[&str] = &[
    "read",
    "metadata",
    "content",
    "basic",
    "quality",
    "exact_dedup",
    "near_dedup",
    "decontam",
];

/// Counters of a whole run (or of one shard, before merging).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    stages: BTreeMap<String, StageStats>,
    /// Counts that are not drops, e.g. `stars_unknown`.
    pub notes: BTreeMap<String, u64>,
}

impl Stats {
    fn stage(&mut self, stage: &str) -> &mut StageStats {
        // PERF: looked up before the key is built, so that counting a
        // record allocates nothing (step `output` counts every record at up
        // to three stages).
        if !self.stages.contains_key(stage) {
            self.stages.insert(
                stage.to_string(),
                StageStats {
                    stage: stage.to_string(),
                    ..Default::default()
                },
            );
        }
        self.stages.get_mut(stage).expect("inserted above")
    }

    pub fn input(&mut self, stage: &str, bytes: u64) {
        let s = self.stage(stage);
        s.files_in += 1;
        s.bytes_in += bytes;
    }

    pub fn output(&mut self, stage: &str, bytes: u64) {
        let s = self.stage(stage);
        s.files_out += 1;
        s.bytes_out += bytes;
    }

    /// Counts a record into `stage` and out of it again (kept).
    pub fn pass(&mut self, stage: &str, bytes: u64) {
        self.input(stage, bytes);
        self.output(stage, bytes);
    }

    /// Counts a record into `stage` and drops it for `reason`.
    pub fn drop(&mut self, stage: &str, reason: &str, bytes: u64) {
        self.input(stage, bytes);
        self.stage(stage)
            .dropped
            .entry(reason.to_string())
            .or_default()
            .add(bytes);
    }

    /// Adds the tokens of a record that [`Stats::pass`] counted into and out
    /// of `stage`.
    pub fn pass_tokens(&mut self, stage: &str, tokens: u64) {
        let s = self.stage(stage);
        s.tokens_in = add_opt(s.tokens_in, Some(tokens));
        s.tokens_out = add_opt(s.tokens_out, Some(tokens));
    }

    /// Adds the tokens of a record that [`Stats::drop`] dropped for `reason`.
    pub fn drop_tokens(&mut self, stage: &str, reason: &str, tokens: u64) {
        let s = self.stage(stage);
        s.tokens_in = add_opt(s.tokens_in, Some(tokens));
        s.tokens_out = add_opt(s.tokens_out, Some(0));
        let c = s.dropped.entry(reason.to_string()).or_default();
        c.tokens = add_opt(c.tokens, Some(tokens));
    }

    /// Adds tokens counted for a whole stage at once.
    pub fn add_tokens(&mut self, stage: &str, tokens_in: u64, tokens_out: u64) {
        let s = self.stage(stage);
        s.tokens_in = add_opt(s.tokens_in, Some(tokens_in));
        s.tokens_out = add_opt(s.tokens_out, Some(tokens_out));
    }

    /// Adds tokens dropped at `stage` for `reason` (already in its `tokens_in`).
    pub fn add_dropped_tokens(&mut self, stage: &str, reason: &str, tokens: u64) {
        let c = self
            .stage(stage)
            .dropped
            .entry(reason.to_string())
            .or_default();
        c.tokens = add_opt(c.tokens, Some(tokens));
    }

    pub fn note(&mut self, key: &str, n: u64) {
        *self.notes.entry(key.to_string()).or_default() += n;
    }

    pub fn merge(&mut self, other: &Stats) {
        for (name, o) in &other.stages {
            let s = self.stage(name);
            s.files_in += o.files_in;
            s.bytes_in += o.bytes_in;
            s.files_out += o.files_out;
            s.bytes_out += o.bytes_out;
            s.tokens_in = add_opt(s.tokens_in, o.tokens_in);
            s.tokens_out = add_opt(s.tokens_out, o.tokens_out);
            for (reason, c) in &o.dropped {
                s.dropped.entry(reason.clone()).or_default().merge(c);
            }
        }
        for (k, v) in &other.notes {
            *self.notes.entry(k.clone()).or_default() += v;
        }
    }

    pub fn get(&self, stage: &str) -> Option<&StageStats> {
        self.stages.get(stage)
    }

    /// Total files dropped for `reason`, whatever the stage.
    pub fn dropped(&self, reason: &str) -> u64 {
        self.stages
            .values()
            .filter_map(|s| s.dropped.get(reason))
            .map(|c| c.files)
            .sum()
    }

    /// Stages in pipeline order (unknown stage names last, by name), with
    /// retention filled in.
    pub fn ordered(&self) -> Vec<StageStats> {
        let mut out: Vec<StageStats> = Vec::new();
        for name in STAGE_ORDER {
            if let Some(s) = self.stages.get(*name) {
                out.push(s.clone());
            }
        }
        for (name, s) in &self.stages {
            if !STAGE_ORDER.contains(&name.as_str()) {
                out.push(s.clone());
            }
        }
        for s in &mut out {
            s.retention_pct = pct(s.files_out, s.files_in);
        }
        out
    }

    /// A copy with every stage's `retention_pct` filled in, as the stats
    /// files of `dedup` and `decontaminate` write it (the counters alone
    /// leave it at 0).
    pub fn with_retention(&self) -> Stats {
        let mut out = self.clone();
        for s in out.stages.values_mut() {
            s.retention_pct = pct(s.files_out, s.files_in);
        }
        out
    }

    /// The seed's retention table: stage, in, out, retention, plus the
    /// overall line from the first stage's input to the last stage's output.
    pub fn retention_table(&self) -> String {
        let stages = self.ordered();
        let mut t = String::new();
        // Token columns only when some stage counted tokens; "-" where a
        // stage did not (no text yet, or not counted).
        let with_tokens = stages.iter().any(|s| s.tokens_in.is_some());
        let tok = |v: Option<u64>| match (with_tokens, v) {
            (false, _) => String::new(),
            (true, Some(n)) => format!(" {n:>14}"),
            (true, None) => format!(" {:>14}", "-"),
        };
        let tok_head = if with_tokens {
            format!(" {:>14} {:>14}", "tokens in", "tokens out")
        } else {
            String::new()
        };
        let _ = writeln!(
            t,
            "{:<14} {:>12} {:>12}{tok_head} {:>9}   top drop reasons",
            "stage", "files in", "files out", "retained"
        );
        for s in &stages {
            let mut reasons: Vec<(&String, &Count)> = s.dropped.iter().collect();
            reasons.sort_by(|a, b| b.1.files.cmp(&a.1.files).then(a.0.cmp(b.0)));
            let top: Vec<String> = reasons
                .iter()
                .take(3)
                .map(|(r, c)| format!("{r}={}", c.files))
                .collect();
            let _ = writeln!(
                t,
                "{:<14} {:>12} {:>12}{}{} {:>8.1}%   {}",
                s.stage,
                s.files_in,
                s.files_out,
                tok(s.tokens_in),
                tok(s.tokens_out),
                s.retention_pct,
                top.join(", ")
            );
        }
        if self.notes.contains_key(DECONTAM_SKIPPED_NOTE) {
            let _ = writeln!(t, "decontam: skipped (no benchmarks)");
        }
        // Redaction replaces, it does not drop: its counts per kind follow
        // the stages.
        let redacted: Vec<String> = self
            .notes
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("redacted_")
                    .map(|kind| format!("{kind}={v}"))
            })
            .collect();
        if !redacted.is_empty() {
            let _ = writeln!(t, "redacted: {}", redacted.join(", "));
        }
        if let (Some(first), Some(last)) = (stages.first(), stages.last()) {
            let first_tokens = stages.iter().find_map(|s| s.tokens_in);
            let _ = writeln!(
                t,
                "{:<14} {:>12} {:>12}{}{} {:>8.1}%",
                "overall",
                first.files_in,
                last.files_out,
                tok(first_tokens),
                tok(last.tokens_out),
                pct(last.files_out, first.files_in)
            );
        }
        t
    }
}

/// Note of a run whose decontamination stage found no benchmarks; the
/// retention table then says `decontam: skipped (no benchmarks)`.
pub const DECONTAM_SKIPPED_NOTE: &str = "decontam_skipped_no_benchmarks";

fn pct(out: u64, inp: u64) -> f64 {
    if inp == 0 {
        100.0
    } else {
        (out as f64 * 1000.0 / inp as f64).round() / 10.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_and_reasons() {
        let mut a = Stats::default();
        a.pass("read", 10);
        a.drop("metadata", "license_not_permissive", 10);
        let mut b = Stats::default();
        b.pass("read", 5);
        b.drop("metadata", "license_not_permissive", 5);
        b.note("stars_unknown", 2);
        a.merge(&b);
        let read = a.get("read").unwrap();
        assert_eq!((read.files_in, read.bytes_out), (2, 15));
        assert_eq!(a.dropped("license_not_permissive"), 2);
        assert_eq!(a.notes["stars_unknown"], 2);
    }

    #[test]
    fn retention_table_lists_stages_in_pipeline_order() {
        let mut s = Stats::default();
        s.pass("exact_dedup", 1);
        s.pass("read", 1);
        s.drop("read", "read_bad_row", 1);
        let table = s.retention_table();
        let read_at = table.find("read ").unwrap();
        let dedup_at = table.find("exact_dedup").unwrap();
        assert!(read_at < dedup_at, "{table}");
        assert!(table.contains(" 50.0%"), "{table}");
        assert!(table.contains("overall"), "{table}");
        assert!(!table.contains("tokens in"), "{table}");
    }

    #[test]
    fn tokens_merge_and_show_in_the_table_where_counted() {
        let mut a = Stats::default();
        a.pass("read", 10);
        a.pass("near_dedup", 10);
        a.pass_tokens("near_dedup", 4);
        let mut b = Stats::default();
        b.pass("read", 6);
        b.drop("near_dedup", "minhash_near_duplicate", 6);
        b.drop_tokens("near_dedup", "minhash_near_duplicate", 3);
        a.merge(&b);
        let s = a.get("near_dedup").unwrap();
        assert_eq!((s.tokens_in, s.tokens_out), (Some(7), Some(4)));
        assert_eq!(s.dropped["minhash_near_duplicate"].tokens, Some(3));
        assert_eq!(a.get("read").unwrap().tokens_in, None);
        let table = a.retention_table();
        assert!(table.contains("tokens in"), "{table}");
        let line = table.lines().find(|l| l.starts_with("near_dedup")).unwrap();
        assert!(line.contains(" 7 ") && line.contains(" 4 "), "{table}");
        let json = serde_json::to_value(&a).unwrap();
        assert!(json["stages"]["read"].get("tokens_in").is_none(), "{json}");
    }
}
