//! The tokenizer behind `--tokenizer NAME|PATH`.
//!
//! Built-in names are OpenAI's BPE encodings as embedded by the `tiktoken-rs`
//! crate (the same rank files and pre-tokenisation patterns as Python
//! `tiktoken`'s `tiktoken_ext/openai_public.py`; `tests/tokens.rs` pins the
//! equality on real files). Anything else is read as a path to a Hugging Face
//! `tokenizer.json` (the format of `tokenizers`' `Tokenizer::save`), so the
//! counts can be those of the model being trained. Special tokens the
//! tokenizer would add around a text (BOS/EOS) are not counted: a document's
//! cost is its own tokens.

use anyhow::{Context, Result};
use std::fmt;
use std::path::PathBuf;

/// What `--tokenizer` names, before loading.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TokenizerSpec {
    /// `cl100k_base` (GPT-3.5/4).
    Cl100kBase,
    /// `o200k_base` (GPT-4o).
    O200kBase,
    /// A Hugging Face `tokenizer.json`.
    HuggingFace(PathBuf),
}

impl TokenizerSpec {
    /// The names that are built in, for help and errors.
    pub const BUILT_IN: &'static [&'static str] = &["cl100k_base", "o200k_base"];

    /// Parses `NAME|PATH`: a built-in name, else a path (checked on load).
    pub fn parse(s: &str) -> Result<TokenizerSpec, String> {
        match s {
            "cl100k_base" => Ok(TokenizerSpec::Cl100kBase),
            "o200k_base" => Ok(TokenizerSpec::O200kBase),
            "" => Err(format!(
                "empty tokenizer: give one of {} or a path to a tokenizer.json",
                Self::BUILT_IN.join(", ")
            )),
            path => Ok(TokenizerSpec::HuggingFace(PathBuf::from(path))),
        }
    }

    /// Loads the tokenizer. A path that is missing or not a tokenizer.json
    /// is an error naming the file.
    pub fn load(&self) -> Result<Tokenizer> {
        let inner = match self {
            TokenizerSpec::Cl100kBase => Inner::Tiktoken(
                tiktoken_rs::cl100k_base().context("cannot build the embedded cl100k_base")?,
            ),
            TokenizerSpec::O200kBase => Inner::Tiktoken(
                tiktoken_rs::o200k_base().context("cannot build the embedded o200k_base")?,
            ),
            TokenizerSpec::HuggingFace(path) => {
                anyhow::ensure!(
                    path.is_file(),
                    "tokenizer {}: no such file (give one of {} or a path to a Hugging Face tokenizer.json)",
                    path.display(),
                    Self::BUILT_IN.join(", ")
                );
                let tok = tokenizers::Tokenizer::from_file(path).map_err(|e| {
                    anyhow::anyhow!(
                        "tokenizer {}: not a Hugging Face tokenizer.json ({e}); save one with `tokenizer.save(path)`",
                        path.display()
                    )
                })?;
                Inner::HuggingFace(Box::new(tok))
            }
        };
        Ok(Tokenizer {
            spec: self.clone(),
            inner,
        })
    }
}

impl fmt::Display for TokenizerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenizerSpec::Cl100kBase => f.write_str("cl100k_base"),
            TokenizerSpec::O200kBase => f.write_str("o200k_base"),
            TokenizerSpec::HuggingFace(p) => write!(f, "{}", p.display()),
        }
    }
}

enum Inner {
    Tiktoken(tiktoken_rs::CoreBPE),
    HuggingFace(Box<tokenizers::Tokenizer>),
}

/// A loaded tokenizer; shared by reference across rayon workers.
pub struct Tokenizer {
    spec: TokenizerSpec,
    inner: Inner,
}

impl Tokenizer {
    pub fn spec(&self) -> &TokenizerSpec {
        &self.spec
    }

    /// Tokens of `text`, as ordinary text (no special tokens recognised or
    /// added).
    pub fn count(&self, text: &str) -> Result<u64> {
        match &self.inner {
            Inner::Tiktoken(bpe) => Ok(bpe.count_ordinary(text) as u64),
            Inner::HuggingFace(tok) => tok
                .encode(text, false)
                .map(|e| e.len() as u64)
                .map_err(|e| anyhow::anyhow!("tokenizer {}: cannot encode: {e}", self.spec)),
        }
    }
}

impl fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tokenizer({})", self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_paths_fall_through() {
        assert_eq!(
            TokenizerSpec::parse("cl100k_base"),
            Ok(TokenizerSpec::Cl100kBase)
        );
        assert_eq!(
            TokenizerSpec::parse("o200k_base"),
            Ok(TokenizerSpec::O200kBase)
        );
        assert_eq!(
            TokenizerSpec::parse("m/tokenizer.json"),
            Ok(TokenizerSpec::HuggingFace("m/tokenizer.json".into()))
        );
        assert!(TokenizerSpec::parse("").is_err());
    }

    #[test]
    fn a_missing_tokenizer_file_is_named() {
        let err = TokenizerSpec::parse("/nonexistent/tokenizer.json")
            .unwrap()
            .load()
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/tokenizer.json"),
            "{err:#}"
        );
    }

    #[test]
    fn cl100k_counts_a_known_text() {
        // "hello world" is two tokens in cl100k_base ("hello", " world").
        let t = TokenizerSpec::Cl100kBase.load().unwrap();
        assert_eq!(t.count("hello world").unwrap(), 2);
        assert_eq!(t.count("").unwrap(), 0);
    }
}
