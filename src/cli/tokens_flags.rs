//! `--tokenizer`, `--tokens`, `--token-sample-rate` (shared by the commands
//! that count tokens) and `tritter-gpu tokens FILE...`, which counts the
//! tokens of plain files (the check against a reference tokenizer).

use crate::tokens::count::{TokensConfig, DEFAULT_SAMPLE_RATE};
use crate::tokens::{TokenizerSpec, TokensMode};
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::path::PathBuf;

/// How tokens are counted.
#[derive(Args, Debug, Clone)]
pub struct TokensFlags {
    /// Tokenizer: `cl100k_base`, `o200k_base` (built in, offline) or a path to a Hugging Face tokenizer.json.
    ///
    /// Texts are counted as ordinary text: no BOS/EOS added, special-token
    /// strings inside a file count as their characters.
    #[arg(long, value_name = "NAME|PATH", default_value = "cl100k_base", value_parser = TokenizerSpec::parse, help_heading = "Tokens")]
    pub tokenizer: TokenizerSpec,
    /// Token counting: `exact` (every text), `estimate` (a hash sample with a 95% interval) or `off`.
    ///
    /// The estimate tokenises the texts whose content hash falls in the
    /// sample (`--token-sample-rate`), the same texts on every run, and
    /// scales tokens per byte to all bytes (a ratio estimator).
    #[arg(long, value_enum, default_value_t = TokensMode::Exact, help_heading = "Tokens")]
    pub tokens: TokensMode,
    /// Fraction of texts tokenised by `--tokens estimate`, in (0, 1].
    #[arg(long, value_name = "RATE", default_value_t = DEFAULT_SAMPLE_RATE, help_heading = "Tokens")]
    pub token_sample_rate: f64,
}

impl TokensFlags {
    pub fn to_config(&self) -> TokensConfig {
        TokensConfig {
            tokenizer: self.tokenizer.clone(),
            mode: self.tokens,
            sample_rate: self.token_sample_rate,
        }
    }
}

/// `merge`'s token flags: unset, each takes the slices' setting (see
/// [`crate::tokens::inherit`]).
#[derive(Args, Debug, Clone, Default)]
pub struct MergeTokensFlags {
    /// Tokenizer of the global steps' counts (default: the slices'); must match the slices' when they counted tokens.
    ///
    /// `cl100k_base`, `o200k_base` or a path to a Hugging Face tokenizer.json.
    #[arg(long, value_name = "NAME|PATH", value_parser = TokenizerSpec::parse, help_heading = "Tokens")]
    pub tokenizer: Option<TokenizerSpec>,
    /// Token counting: `exact`, `estimate` or `off` (default: the slices').
    #[arg(long, value_enum, help_heading = "Tokens")]
    pub tokens: Option<TokensMode>,
    /// Fraction of texts tokenised by `--tokens estimate`, in (0, 1] (default: the slices').
    #[arg(long, value_name = "RATE", help_heading = "Tokens")]
    pub token_sample_rate: Option<f64>,
}

impl MergeTokensFlags {
    pub fn to_override(&self) -> crate::tokens::inherit::TokensOverride {
        crate::tokens::inherit::TokensOverride {
            tokenizer: self.tokenizer.clone(),
            mode: self.tokens,
            sample_rate: self.token_sample_rate,
        }
    }
}

/// `tritter-gpu tokens`.
#[derive(Args, Debug)]
pub struct TokensArgs {
    /// Files to count (UTF-8 text).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub tokens: TokensFlags,
}

/// Prints one JSON line per file (`path`, `bytes`, `tokens`) and the total
/// on stderr. A file that cannot be read or is not UTF-8 is reported and
/// skipped; the exit code is then 1.
pub fn run(args: TokensArgs, quiet: bool) -> Result<i32> {
    let cfg = args.tokens.to_config();
    let Some(counter) = cfg.counter()? else {
        anyhow::bail!("tokens: --tokens off counts nothing; use exact or estimate");
    };
    let mut failed = 0u64;
    let mut texts = Vec::new();
    for path in &args.files {
        match std::fs::read(path)
            .with_context(|| format!("cannot read {}", path.display()))
            .and_then(|b| {
                String::from_utf8(b).map_err(|_| {
                    anyhow::anyhow!("{}: not UTF-8 text; convert it first", path.display())
                })
            }) {
            Ok(t) => texts.push((path, t)),
            Err(e) => {
                eprintln!("tritter-gpu: {e:#} (skipped)");
                failed += 1;
            }
        }
    }
    let counts: Vec<u64> = {
        use rayon::prelude::*;
        texts
            .par_iter()
            .map(|(_, t)| counter.tokenizer().count(t))
            .collect::<Result<_>>()?
    };
    let mut out = std::io::stdout().lock();
    for ((path, text), n) in texts.iter().zip(&counts) {
        let line = serde_json::json!({"path": path, "bytes": text.len(), "tokens": n});
        writeln!(out, "{line}")?;
    }
    if !quiet {
        eprintln!(
            "tritter-gpu: {} tokens ({}) in {} files",
            counts.iter().sum::<u64>(),
            counter.tokenizer().spec(),
            texts.len()
        );
    }
    Ok(if failed > 0 { 1 } else { 0 })
}
