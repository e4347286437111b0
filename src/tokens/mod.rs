//! Token counting: the data plan's budgets are written in tokens, so every
//! stage and the training mix count them with a real tokenizer.
//!
//! - [`tokenizer`]: which tokenizer (`cl100k_base`, `o200k_base` embedded
//!   from `tiktoken-rs`, or a Hugging Face `tokenizer.json` by path), loaded
//!   offline; nothing is downloaded at run time.
//! - [`count`]: exact counting of many texts in parallel, and the
//!   deterministic sampled estimate (`--tokens estimate`) with its 95 %
//!   confidence interval.
//! - [`stage`]: tokens in and out of a stage, added to the stats.
//! - [`inherit`]: `merge` counts as the slices did, unless told otherwise.
//!
//! Texts are tokenised as ordinary text: a special-token string such as
//! `<|endoftext|>` inside a source file counts as the tokens of its
//! characters, which is what the file costs when it is trained on (and what
//! Python `tiktoken`'s `encode_ordinary` returns).

pub mod count;
pub mod inherit;
pub mod stage;
pub mod tokenizer;

pub use count::{TokenCount, TokenCounter, TokensMode};
pub use tokenizer::{Tokenizer, TokenizerSpec};
