//! Writers: curated JSONL or Parquet, rejects, stats; all written atomically.

pub mod atomic;
pub mod curated_writer;
pub mod parquet;
pub mod run_report;
pub mod tool_jsonl;
pub mod write_behind;
pub mod write_error;
pub mod writeback_ahead;
