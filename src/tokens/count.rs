//! Counting the tokens of many texts: exactly, or estimated from a
//! deterministic sample.
//!
//! **Exact** (`--tokens exact`, the default) tokenises every text, in
//! parallel over rayon's pool. The total is a sum of integers, so it does
//! not depend on the thread count or the order of the texts.
//!
//! **Estimate** (`--tokens estimate`) tokenises only the texts whose content
//! hash (XXH3-64 with a fixed seed) falls below `rate * 2^64`: a Bernoulli
//! sample that is the same for the same texts on every run and machine, and
//! that does not depend on how the texts are split into shards. The total is
//! the ratio estimator of Cochran, *Sampling Techniques* (3rd ed., 1977),
//! §6.2-6.4, with bytes as the auxiliary variable, which is known for every
//! text:
//!
//! ```text
//! R  = Σ t_i / Σ b_i                    (sample tokens per byte)
//! T  = R · B                            (B: bytes of all texts)
//! s² = Σ (t_i − R b_i)² / (n − 1)       (residual variance, over the sample)
//! SE(T) = B · sqrt((1 − n/N) · s² / (n · b̄²)),  b̄ = Σ b_i / n
//! 95 % interval: T ± 1.96 · SE(T)
//! ```
//!
//! Tokens per byte vary far less between files than tokens per file, which
//! is why the ratio estimator is much tighter than scaling the sample mean
//! by N. The sums are kept as integers (`u128` for the squares), so tallies
//! of shards merge exactly and the estimate does not depend on the merge
//! order either. With fewer than two sampled texts there is no interval.
//!
//! **Off** counts nothing (`tokens` absent from the stats).

use super::tokenizer::{Tokenizer, TokenizerSpec};
use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// `--tokens`: how tokens are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TokensMode {
    /// Every text is tokenised.
    Exact,
    /// A deterministic sample by content hash, with a 95 % interval.
    Estimate,
    /// No token counts.
    Off,
}

/// The default sampling rate of `--tokens estimate`: one text in a hundred.
pub const DEFAULT_SAMPLE_RATE: f64 = 0.01;

/// Seed of the sampling hash; fixed, so a sample is the same on every run.
const SAMPLE_SEED: u64 = 0x746f_6b65_6e73; // "tokens"

/// How a run counts tokens.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokensConfig {
    pub tokenizer: TokenizerSpec,
    pub mode: TokensMode,
    /// Fraction of texts tokenised under `estimate`, in (0, 1].
    pub sample_rate: f64,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            tokenizer: TokenizerSpec::Cl100kBase,
            mode: TokensMode::Exact,
            sample_rate: DEFAULT_SAMPLE_RATE,
        }
    }
}

impl TokensConfig {
    /// Checks the rate; `Ok(None)` when counting is off.
    pub fn counter(&self) -> Result<Option<TokenCounter>> {
        if self.mode == TokensMode::Off {
            return Ok(None);
        }
        anyhow::ensure!(
            self.sample_rate > 0.0 && self.sample_rate <= 1.0,
            "--token-sample-rate must be in (0, 1], got {}",
            self.sample_rate
        );
        Ok(Some(TokenCounter {
            tokenizer: self.tokenizer.load()?,
            mode: self.mode,
            threshold: threshold(self.sample_rate),
        }))
    }
}

fn threshold(rate: f64) -> u64 {
    if rate >= 1.0 {
        u64::MAX
    } else {
        (rate * u64::MAX as f64) as u64
    }
}

/// A loaded tokenizer with its counting mode.
#[derive(Debug)]
pub struct TokenCounter {
    tokenizer: Tokenizer,
    mode: TokensMode,
    threshold: u64,
}

impl TokenCounter {
    /// An exact counter over `tokenizer`.
    pub fn exact(tokenizer: Tokenizer) -> TokenCounter {
        TokenCounter {
            tokenizer,
            mode: TokensMode::Exact,
            threshold: u64::MAX,
        }
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn mode(&self) -> TokensMode {
        self.mode
    }

    /// Whether `text` is in the sample (always, when exact).
    pub fn sampled(&self, text: &str) -> bool {
        self.mode == TokensMode::Exact
            || xxhash_rust::xxh3::xxh3_64_with_seed(text.as_bytes(), SAMPLE_SEED) <= self.threshold
    }

    /// Tallies one text.
    pub fn tally_one(&self, text: &str) -> Result<TokenTally> {
        let b = text.len() as u64;
        let mut t = TokenTally {
            files: 1,
            bytes: b,
            ..Default::default()
        };
        if self.sampled(text) {
            let n = self.tokenizer.count(text)?;
            t.add_sample(n, b);
        }
        Ok(t)
    }

    /// Tallies many texts in parallel. DETERMINISM: integer sums only, so
    /// the result is the same whatever the thread count or order.
    pub fn tally<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<TokenTally> {
        texts
            .par_iter()
            .map(|s| self.tally_one(s.as_ref()))
            .try_reduce(TokenTally::default, |mut a, b| {
                a.merge(&b);
                Ok(a)
            })
    }
}

/// Running sums of a set of texts; merged by addition. Stored with a shard
/// (or an output task) when the count is an estimate, so the estimate is
/// made once over the merged sums, whatever the split.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenTally {
    pub files: u64,
    pub bytes: u64,
    pub sampled_files: u64,
    pub sampled_bytes: u64,
    pub sampled_tokens: u64,
    sum_tt: u128,
    sum_bb: u128,
    sum_tb: u128,
}

impl TokenTally {
    /// The tally of one text of `bytes` whose tokens were counted already
    /// (`None`: outside the estimate's sample).
    pub fn of(bytes: u64, tokens: Option<u64>) -> TokenTally {
        let mut t = TokenTally {
            files: 1,
            bytes,
            ..Default::default()
        };
        if let Some(n) = tokens {
            t.add_sample(n, bytes);
        }
        t
    }

    fn add_sample(&mut self, tokens: u64, bytes: u64) {
        self.sampled_files += 1;
        self.sampled_bytes += bytes;
        self.sampled_tokens += tokens;
        self.sum_tt += tokens as u128 * tokens as u128;
        self.sum_bb += bytes as u128 * bytes as u128;
        self.sum_tb += tokens as u128 * bytes as u128;
    }

    pub fn merge(&mut self, o: &TokenTally) {
        self.files += o.files;
        self.bytes += o.bytes;
        self.sampled_files += o.sampled_files;
        self.sampled_bytes += o.sampled_bytes;
        self.sampled_tokens += o.sampled_tokens;
        self.sum_tt += o.sum_tt;
        self.sum_bb += o.sum_bb;
        self.sum_tb += o.sum_tb;
    }

    /// The count: exact when every text was sampled, else the ratio
    /// estimate with its 95 % interval (see the module doc).
    pub fn finish(&self) -> TokenCount {
        if self.sampled_files == self.files {
            return TokenCount {
                tokens: self.sampled_tokens,
                exact: true,
                ci95: None,
                sampled_files: self.sampled_files,
            };
        }
        if self.sampled_bytes == 0 {
            // Nothing (or only empty texts) sampled: no ratio to scale by.
            return TokenCount {
                tokens: 0,
                exact: false,
                ci95: None,
                sampled_files: self.sampled_files,
            };
        }
        let n = self.sampled_files as f64;
        let r = self.sampled_tokens as f64 / self.sampled_bytes as f64;
        let total = r * self.bytes as f64;
        let ci95 = (self.sampled_files >= 2).then(|| {
            let ss = self.sum_tt as f64 - 2.0 * r * self.sum_tb as f64 + r * r * self.sum_bb as f64;
            let s2 = (ss / (n - 1.0)).max(0.0);
            let mean_b = self.sampled_bytes as f64 / n;
            let fpc = 1.0 - n / self.files as f64;
            let se = self.bytes as f64 * (fpc * s2 / (n * mean_b * mean_b)).sqrt();
            (
                (total - 1.96 * se).max(self.sampled_tokens as f64).round() as u64,
                (total + 1.96 * se).round() as u64,
            )
        });
        TokenCount {
            tokens: total.round() as u64,
            exact: false,
            ci95,
            sampled_files: self.sampled_files,
        }
    }
}

/// Tokens of a set of texts, as reported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCount {
    pub tokens: u64,
    /// Whether every text was tokenised.
    pub exact: bool,
    /// The 95 % interval of an estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci95: Option<(u64, u64)>,
    pub sampled_files: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts() -> Vec<String> {
        (0..3000)
            .map(|i| format!("def f{i}(x):\n    return x * {i} + {}\n", i % 17).repeat(1 + i % 5))
            .collect()
    }

    #[test]
    fn exact_does_not_depend_on_threads() {
        let c = TokenCounter::exact(TokenizerSpec::Cl100kBase.load().unwrap());
        let t = texts();
        let all = c.tally(&t).unwrap().finish();
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| c.tally(&t).unwrap().finish());
        let serial: u64 = t.iter().map(|s| c.tokenizer().count(s).unwrap()).sum();
        assert!(all.exact);
        assert_eq!(all.tokens, serial);
        assert_eq!(one, all);
    }

    #[test]
    fn estimate_interval_covers_the_exact_count_and_merges_by_shard() {
        let t = texts();
        let exact = TokenCounter::exact(TokenizerSpec::Cl100kBase.load().unwrap())
            .tally(&t)
            .unwrap()
            .finish()
            .tokens;
        let est = TokensConfig {
            mode: TokensMode::Estimate,
            sample_rate: 0.1,
            ..Default::default()
        }
        .counter()
        .unwrap()
        .unwrap();
        let whole = est.tally(&t).unwrap();
        let mut parts = est.tally(&t[..1234]).unwrap();
        parts.merge(&est.tally(&t[1234..]).unwrap());
        assert_eq!(parts, whole);
        let c = whole.finish();
        assert!(!c.exact);
        let (lo, hi) = c.ci95.unwrap();
        assert!(lo <= exact && exact <= hi, "{lo} <= {exact} <= {hi}");
        assert!(c.sampled_files > 200 && c.sampled_files < 400, "{c:?}");
    }

    #[test]
    fn a_bad_rate_is_an_error() {
        let cfg = TokensConfig {
            mode: TokensMode::Estimate,
            sample_rate: 0.0,
            ..Default::default()
        };
        assert!(cfg.counter().is_err());
    }
}
