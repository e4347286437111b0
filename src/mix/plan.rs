//! The mix plan file (`--plan PLAN.toml`): the token budget, the tokenizer,
//! the seed, the shard size, the output format and one `[[component]]` per
//! part of the mix. Parsing and validation only; every error names the plan
//! file and says what to change.

use crate::tokens::TokenizerSpec;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Output format of the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MixFormat {
    #[serde(rename = "parquet")]
    Parquet,
    #[serde(rename = "jsonl")]
    Jsonl,
    #[serde(rename = "jsonl.zst")]
    JsonlZst,
}

impl MixFormat {
    pub fn extension(self) -> &'static str {
        match self {
            MixFormat::Parquet => "parquet",
            MixFormat::Jsonl => "jsonl",
            MixFormat::JsonlZst => "jsonl.zst",
        }
    }
}

fn default_format() -> MixFormat {
    MixFormat::Parquet
}
fn default_tokenizer() -> String {
    "cl100k_base".into()
}
fn default_shard_tokens() -> u64 {
    500_000_000
}
fn default_epochs() -> f64 {
    1.0
}

/// One component of the mix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentPlan {
    pub name: String,
    /// Fraction of `total_tokens`.
    pub share: f64,
    /// JSONL (plain, .gz, .zst) or Parquet files with a `text` field; other
    /// fields are kept as metadata.
    pub sources: Vec<PathBuf>,
    /// How often the sources may be repeated to reach the share.
    #[serde(default = "default_epochs")]
    pub max_epochs: f64,
}

/// The plan, as parsed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixPlan {
    pub total_tokens: u64,
    #[serde(default = "default_tokenizer")]
    pub tokenizer: String,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "default_shard_tokens")]
    pub shard_tokens: u64,
    #[serde(default = "default_format")]
    pub format: MixFormat,
    pub component: Vec<ComponentPlan>,
}

/// Shares may differ from 1 by this much (decimal shares such as 0.1 are
/// not exact in binary).
const SHARE_TOLERANCE: f64 = 1e-6;

impl MixPlan {
    /// Reads and validates `path`. Relative source paths are taken from the
    /// current directory, as on the command line.
    pub fn load(path: &Path) -> Result<MixPlan> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the mix plan {}", path.display()))?;
        let plan: MixPlan = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("mix plan {}: {e}", path.display()))?;
        plan.validate()
            .with_context(|| format!("mix plan {}", path.display()))?;
        Ok(plan)
    }

    pub fn tokenizer_spec(&self) -> Result<TokenizerSpec> {
        TokenizerSpec::parse(&self.tokenizer).map_err(|e| anyhow::anyhow!("tokenizer: {e}"))
    }

    /// Checks everything that does not need the sources' contents.
    pub fn validate(&self) -> Result<()> {
        if self.total_tokens == 0 {
            bail!("total_tokens must be positive");
        }
        if self.shard_tokens == 0 {
            bail!("shard_tokens must be positive");
        }
        if self.component.is_empty() {
            bail!("no [[component]]: add at least one with name, share and sources");
        }
        self.tokenizer_spec()?;
        let mut names = std::collections::BTreeSet::new();
        for c in &self.component {
            if c.name.is_empty() {
                bail!("a component has an empty name");
            }
            if !names.insert(&c.name) {
                bail!("component {:?} appears twice; names must be unique", c.name);
            }
            if !(c.share > 0.0 && c.share <= 1.0) {
                bail!(
                    "component {:?}: share {} must be in (0, 1]",
                    c.name,
                    c.share
                );
            }
            if !(c.max_epochs > 0.0 && c.max_epochs.is_finite()) {
                bail!(
                    "component {:?}: max_epochs {} must be positive",
                    c.name,
                    c.max_epochs
                );
            }
            if c.sources.is_empty() {
                bail!("component {:?}: no sources", c.name);
            }
            for s in &c.sources {
                if !s.is_file() {
                    bail!(
                        "component {:?}: source {} does not exist (or is not a file)",
                        c.name,
                        s.display()
                    );
                }
            }
        }
        let sum: f64 = self.component.iter().map(|c| c.share).sum();
        if (sum - 1.0).abs() > SHARE_TOLERANCE {
            let parts: Vec<String> = self
                .component
                .iter()
                .map(|c| format!("{}={}", c.name, c.share))
                .collect();
            let sum = (sum * 1e6).round() / 1e6;
            bail!(
                "shares sum to {sum}, not 1 ({}); fix them or use fractions that add up",
                parts.join(" + ")
            );
        }
        Ok(())
    }

    /// Each component's target: its share of the total, rounded; the last
    /// component takes the rounding remainder, so targets sum to the total.
    pub fn targets(&self) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .component
            .iter()
            .map(|c| (c.share * self.total_tokens as f64).round() as u64)
            .collect();
        let sum: u64 = out.iter().sum();
        if let Some(last) = out.last_mut() {
            *last = (*last + self.total_tokens).saturating_sub(sum);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(shares: &[f64]) -> MixPlan {
        MixPlan {
            total_tokens: 1000,
            tokenizer: "cl100k_base".into(),
            seed: 0,
            shard_tokens: 100,
            format: MixFormat::Jsonl,
            component: shares
                .iter()
                .enumerate()
                .map(|(i, s)| ComponentPlan {
                    name: format!("c{i}"),
                    share: *s,
                    sources: vec![PathBuf::from("Cargo.toml")],
                    max_epochs: 1.0,
                })
                .collect(),
        }
    }

    #[test]
    fn shares_must_sum_to_one() {
        assert!(plan(&[0.4, 0.25, 0.2, 0.1, 0.05]).validate().is_ok());
        let err = plan(&[0.5, 0.4]).validate().unwrap_err().to_string();
        assert!(err.contains("sum to 0.9"), "{err}");
    }

    #[test]
    fn targets_sum_to_the_total() {
        let p = plan(&[1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0]);
        assert_eq!(p.targets().iter().sum::<u64>(), 1000);
    }

    #[test]
    fn the_shipped_phase1_plan_parses() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mix/phase1.toml"),
        )
        .unwrap();
        let p: MixPlan = toml::from_str(&text).unwrap();
        let shares: Vec<f64> = p.component.iter().map(|c| c.share).collect();
        assert_eq!(shares, [0.40, 0.25, 0.20, 0.10, 0.05]);
        assert_eq!(p.total_tokens, 100_000_000_000);
    }
}
