//! `curate`'s output files: JSONL with the plan's exact schema (the
//! default), or Parquet (`--format parquet`, zstd, the same six columns) for
//! sources too big for one JSONL file.
//!
//! Either way a file is written atomically (a reader, or a rerun after a
//! kill, sees a complete file or none) and holds the rows of its output task
//! in output order, so the rows of `--output-shards` files, read in order,
//! are the rows of the single file. The JSONL shards concatenate to the
//! single file's bytes; Parquet files each carry their own footer, so only
//! their rows are the same.
//!
//! JSONL arrives as pieces of formatted lines, several at a time, each
//! written at its place in the file by a thread of the pool (positional
//! writes, see [`CuratedWriter::write_pieces`]). The kernel's copy of the
//! bytes into the page cache is most of writing the file; on one writer
//! thread beside the pool it bounded the output step at two threads.
//! Buffered writes to one file take its inode lock, so two copies do not
//! overlap; what the pool gains is that no thread waits for a single writer.

use super::atomic::AtomicFile;
use super::parquet::ParquetRowWriter;
use crate::record::OutputRecord;
use anyhow::Result;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `--format`: the curated files' format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CuratedFormat {
    /// One JSON object per line: text, language, license, stars, path, repo.
    #[default]
    Jsonl,
    /// Parquet with zstd, the same six columns.
    Parquet,
}

impl CuratedFormat {
    /// The file name's extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            CuratedFormat::Jsonl => "jsonl",
            CuratedFormat::Parquet => "parquet",
        }
    }
}

/// One curated output file being written.
pub enum CuratedWriter {
    Jsonl(AtomicFile),
    Parquet(Box<ParquetRowWriter>),
}

/// One piece of output rows: their JSON lines for JSONL, the rows for
/// Parquet (each format's caller fills the one it writes).
pub struct OutputPiece<'a> {
    pub lines: &'a [u8],
    pub rows: Vec<OutputRecord>,
}

impl CuratedWriter {
    pub fn create(path: &Path, format: CuratedFormat) -> Result<CuratedWriter> {
        Ok(match format {
            CuratedFormat::Jsonl => CuratedWriter::Jsonl(AtomicFile::create_positional(path)?),
            CuratedFormat::Parquet => {
                CuratedWriter::Parquet(Box::new(ParquetRowWriter::create_curated(path)?))
            }
        })
    }

    /// Writes consecutive pieces, in order. JSONL pieces go to their
    /// offsets (the sum of the lengths before them) from the rayon pool at
    /// once; Parquet rows go through the one row writer.
    pub fn write_pieces(&mut self, pieces: Vec<OutputPiece<'_>>) -> Result<()> {
        match self {
            CuratedWriter::Jsonl(out) => {
                let mut at = out.placed();
                let placed: Vec<(&[u8], u64)> = pieces
                    .iter()
                    .map(|p| {
                        let offset = at;
                        at += p.lines.len() as u64;
                        (p.lines, offset)
                    })
                    .collect();
                let file = out.ranges()?;
                placed
                    .par_iter()
                    .try_for_each(|&(lines, offset)| file.write_all_at(lines, offset))?;
                out.written_to(at);
                Ok(())
            }
            CuratedWriter::Parquet(w) => pieces
                .into_iter()
                .flat_map(|p| p.rows)
                .try_for_each(|r| w.write_curated(r)),
        }
    }

    /// Finishes the file and puts it in place.
    pub fn commit(self) -> Result<()> {
        match self {
            CuratedWriter::Jsonl(out) => out.commit(),
            CuratedWriter::Parquet(w) => w.finish(),
        }
    }
}
