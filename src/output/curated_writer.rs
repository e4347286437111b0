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

use super::atomic::AtomicFile;
use super::parquet::ParquetRowWriter;
use crate::record::OutputRecord;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::io::Write;
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

impl CuratedWriter {
    /// With `write_behind`, JSONL is written on a thread of its own
    /// ([`super::write_behind`]).
    pub fn create(path: &Path, format: CuratedFormat, write_behind: bool) -> Result<CuratedWriter> {
        Ok(match format {
            CuratedFormat::Jsonl if write_behind => {
                CuratedWriter::Jsonl(AtomicFile::create_write_behind(path)?)
            }
            CuratedFormat::Jsonl => CuratedWriter::Jsonl(AtomicFile::create(path)?),
            CuratedFormat::Parquet => {
                CuratedWriter::Parquet(Box::new(ParquetRowWriter::create_curated(path)?))
            }
        })
    }

    pub fn write(&mut self, rec: OutputRecord) -> Result<()> {
        match self {
            CuratedWriter::Jsonl(out) => {
                serde_json::to_writer(&mut *out, &rec)?;
                out.write_all(b"\n")?;
                Ok(())
            }
            CuratedWriter::Parquet(w) => w.write_curated(rec),
        }
    }

    /// Writes a run of output rows: `lines`, their JSON lines, for JSONL;
    /// `rows` for Parquet (each format's caller fills the one it writes).
    pub fn write_piece(&mut self, lines: &[u8], rows: Vec<OutputRecord>) -> Result<()> {
        match self {
            CuratedWriter::Jsonl(out) => Ok(out.write_all(lines)?),
            CuratedWriter::Parquet(w) => rows.into_iter().try_for_each(|r| w.write_curated(r)),
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
