//! `mix_report.json` and the table printed at the end of a mix.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One component's line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComponentReport {
    pub name: String,
    pub share: f64,
    /// The plan's target (share of total_tokens).
    pub target_tokens: u64,
    /// The target after `--rescale` (equal to `target_tokens` without it).
    pub rescaled_target_tokens: u64,
    /// Tokens in the component's sources, once.
    pub available_tokens: u64,
    /// Tokens written.
    pub achieved_tokens: u64,
    /// Documents written (a repeated document counts once per repeat).
    pub files: u64,
    /// achieved / available.
    pub epochs: f64,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixReport {
    pub plan: String,
    /// Hash of the plan, the flags and the sources' sizes; a rerun with the
    /// same fingerprint has nothing to do.
    pub fingerprint: String,
    pub tokenizer: String,
    pub seed: u64,
    pub format: String,
    pub rescale: bool,
    pub shards: Vec<String>,
    pub components: Vec<ComponentReport>,
    pub total_target_tokens: u64,
    pub total_available_tokens: u64,
    pub total_achieved_tokens: u64,
    pub total_files: u64,
}

impl MixReport {
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{:<24} {:>6} {:>16} {:>16} {:>16} {:>10} {:>7}",
            "component", "share", "target", "available", "achieved", "files", "epochs"
        );
        for c in &self.components {
            let _ = writeln!(
                t,
                "{:<24} {:>6.3} {:>16} {:>16} {:>16} {:>10} {:>7.3}",
                c.name,
                c.share,
                c.rescaled_target_tokens,
                c.available_tokens,
                c.achieved_tokens,
                c.files,
                c.epochs
            );
        }
        let _ = writeln!(
            t,
            "{:<24} {:>6.3} {:>16} {:>16} {:>16} {:>10}",
            "total",
            1.0,
            self.total_target_tokens,
            self.total_available_tokens,
            self.total_achieved_tokens,
            self.total_files
        );
        t
    }
}
