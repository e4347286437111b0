//! Sources: find input shards and decode their rows into [`Record`]s.
//!
//! Formats: Parquet, JSONL (plain, `.gz`, `.zst`); a directory stands for
//! every such file below it, sorted by path so that shard ordinals (and with
//! them `--shard I/N` and dedup tie-breaks) are stable. The schema is detected
//! from the columns (see `schema.rs`): The Stack v2 / v2-dedup, Stack-Edu, The
//! Stack v1, and this tool's own output.
//!
//! One reader per format (`parquet.rs`, `jsonl.rs`), one schema table
//! (`schema.rs`), typed Arrow access (`columns.rs`), and the writers of test
//! and benchmark shards in every schema (`writer.rs`). Both readers stream:
//! memory per open shard is one batch of `ReadOptions::batch_size` rows.

mod columns;
pub mod jsonl;
pub mod parquet;
pub mod repos;
pub mod schema;
pub mod writer;

use crate::record::Record;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The schemas we recognise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaKind {
    /// The Stack v2 / v2-dedup: metadata only, content by `blob_id`.
    StackV2,
    /// Stack-Edu: like v2 plus `score`, `int_score`, without stars.
    StackEdu,
    /// The Stack v1 (`the-stack-dedup`): content inline.
    StackV1,
    /// This tool's own output schema `{text, language, license, stars, path, repo}`.
    Tritter,
}

impl SchemaKind {
    /// Whether rows carry their content inline (else it comes from a content store).
    pub fn has_inline_content(self) -> bool {
        matches!(self, SchemaKind::StackV1 | SchemaKind::Tritter)
    }
}

/// File formats of input shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Parquet,
    Jsonl,
    JsonlGz,
    JsonlZst,
}

/// One input shard of the run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    /// Position in the run's sorted input list.
    pub ordinal: u32,
    pub format: Format,
    pub size: u64,
}

/// A row that could not become a record (missing required value, malformed
/// JSON line, ...): counted and skipped, never silently lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowReject {
    pub row: u64,
    /// `read_<reason>`, e.g. `read_bad_json`, `read_missing_value`.
    pub reason: &'static str,
    pub detail: String,
}

/// A stream of record batches from one shard. An `Err` means the shard itself
/// is unreadable (corrupt, truncated, missing columns) and names the problem.
pub trait RecordReader: Send {
    fn schema(&self) -> SchemaKind;
    fn next_batch(&mut self) -> Result<Option<Vec<Result<Record, RowReject>>>>;
}

/// Reader options.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Rows per batch (bounds memory per shard in flight).
    pub batch_size: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { batch_size: 1024 }
    }
}

/// Expands files and directories into the sorted list of input shards.
///
/// A file is taken when its name has an input extension (`.parquet`,
/// `.jsonl`/`.json`, `.jsonl.gz`/`.json.gz`, `.jsonl.zst`/`.json.zst`); naming
/// a file with another extension is an error. A directory stands for every
/// input file below it, recursively, except hidden entries (names starting
/// with `.`, e.g. temporary parts) and `*.stats.json` files (so that a
/// directory of our own output can be an input). Symbolic links to files are
/// followed, links to directories are not (no cycles). The result is sorted
/// by path with duplicates removed, and numbered 0..n in that order.
///
/// DETERMINISM: the ordinals feed record ids, `--shard I/N` and dedup's last
/// tie-break, so they depend only on the set of paths, never on directory
/// listing order.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<InputFile>> {
    if paths.is_empty() {
        bail!("no input paths given");
    }
    let mut found: Vec<(PathBuf, Format)> = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p)
            .with_context(|| format!("input {} does not exist or cannot be read", p.display()))?;
        if meta.is_dir() {
            let before = found.len();
            walk(p, &mut found)?;
            if found.len() == before {
                bail!(
                    "input directory {} holds no input files (.parquet, .jsonl, .jsonl.gz, .jsonl.zst)",
                    p.display()
                );
            }
        } else {
            let format = format_of(p).with_context(|| {
                format!(
                    "input {} is not a recognised input file (expected .parquet, .jsonl, .jsonl.gz or .jsonl.zst)",
                    p.display()
                )
            })?;
            found.push((p.clone(), format));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    found
        .into_iter()
        .enumerate()
        .map(|(i, (path, format))| {
            let size = std::fs::metadata(&path)
                .with_context(|| format!("input {} cannot be read", path.display()))?
                .len();
            let ordinal = u32::try_from(i).context("more than 4 billion input files")?;
            Ok(InputFile {
                path,
                ordinal,
                format,
                size,
            })
        })
        .collect()
}

/// Collects the input files below `dir`.
fn walk(dir: &Path, found: &mut Vec<(PathBuf, Format)>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list directory {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.ends_with(".stats.json") {
            continue;
        }
        let path = entry.path();
        let file_type = entry
            .file_type()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        if file_type.is_dir() {
            walk(&path, found)?;
        } else if file_type.is_file() || (file_type.is_symlink() && path.is_file()) {
            if let Some(format) = format_of(&path) {
                found.push((path, format));
            }
        }
    }
    Ok(())
}

/// Format of a path from its name, if it is an input we read.
pub fn format_of(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if name.ends_with(".parquet") {
        Some(Format::Parquet)
    } else if name.ends_with(".jsonl") || name.ends_with(".json") {
        Some(Format::Jsonl)
    } else if name.ends_with(".jsonl.gz") || name.ends_with(".json.gz") {
        Some(Format::JsonlGz)
    } else if name.ends_with(".jsonl.zst") || name.ends_with(".json.zst") {
        Some(Format::JsonlZst)
    } else {
        None
    }
}

/// Opens one shard; the schema is detected from its columns.
///
/// Errors (naming the file): unreadable, not Parquet / truncated footer,
/// unknown schema, missing required columns, a JSONL shard with no JSON
/// object to detect the schema from.
pub fn open(input: &InputFile, opts: &ReadOptions) -> Result<Box<dyn RecordReader>> {
    Ok(match input.format {
        Format::Parquet => Box::new(parquet::ParquetReader::open(input, opts)?),
        Format::Jsonl | Format::JsonlGz | Format::JsonlZst => {
            Box::new(jsonl::JsonlReader::open(input, opts)?)
        }
    })
}

#[cfg(test)]
mod tests;
