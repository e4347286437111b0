//! tritter-gpu: turns raw public code into clean LLM training data.
//!
//! Data flows one way, one stage per module:
//! [`sources`] (decode rows into [`record::Record`]) -> [`filters`] (metadata)
//! -> [`content`] (fetch) -> [`filters`] (content) -> [`dedup::exact`] ->
//! [`dedup::near`] -> [`decontam`] -> [`output`], with [`stats`] at every step.
//! The heavy per-shingle work sits behind [`backends::Backend`].

pub mod backends;
pub mod catalog;
pub mod cli;
pub mod content;
pub mod decontam;
pub mod dedup;
pub mod executor;
pub mod filters;
pub mod license_detect;
pub mod mix;
pub mod output;
pub mod partition;
pub mod pipeline;
pub mod rank;
pub mod record;
pub mod redact;
pub mod remote;
pub mod report;
pub mod sources;
pub mod stats;
pub mod tokens;
pub mod usage;
