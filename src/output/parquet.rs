//! Training rows written as Parquet (zstd): `text`, then an optional
//! `component` (the mix's), then the metadata columns `language`, `license`,
//! `stars`, `path`, `repo`. Two layouts:
//!
//! - the mix's ([`ParquetRowWriter::create`]): metadata nullable, because a
//!   mix reads user-supplied files that need only a `text` field;
//! - curate's ([`ParquetRowWriter::create_curated`], `curate --format
//!   parquet`): exactly the six columns of the curated JSONL, none nullable,
//!   `stars` as `int64` (what `datasets` infers for the JSONL's integers).
//!
//! Rows are buffered into row groups of [`ROW_GROUP_ROWS`] and the file is
//! written atomically: a reader (or a rerun after a kill) sees a complete
//! file or none. `datasets.load_dataset("parquet", data_dir=...)` reads the
//! result (tests/mix.rs checks it with the real library).

use super::atomic::AtomicFile;
use anyhow::{Context, Result};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows per row group: a few MB of code each, small enough for readers that
/// stream by row group.
pub const ROW_GROUP_ROWS: usize = 4096;

/// One output row.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingRow {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stars: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
}

/// A Parquet file of [`TrainingRow`]s being written.
pub struct ParquetRowWriter {
    path: PathBuf,
    schema: Arc<Schema>,
    with_component: bool,
    /// Curate's layout: every metadata column present (missing values are
    /// an error of the caller).
    required: bool,
    rows: Vec<TrainingRow>,
    writer: ArrowWriter<AtomicFile>,
}

impl ParquetRowWriter {
    /// Starts `path`; `with_component` adds the `component` column.
    pub fn create(path: &Path, with_component: bool) -> Result<ParquetRowWriter> {
        Self::start(path, with_component, false)
    }

    /// Starts `path` with curate's six columns `text`, `language`,
    /// `license`, `stars`, `path`, `repo`, none nullable.
    pub fn create_curated(path: &Path) -> Result<ParquetRowWriter> {
        Self::start(path, false, true)
    }

    fn start(path: &Path, with_component: bool, required: bool) -> Result<ParquetRowWriter> {
        let nullable = !required;
        let mut fields = vec![Field::new("text", DataType::Utf8, false)];
        if with_component {
            fields.push(Field::new("component", DataType::Utf8, false));
        }
        fields.extend([
            Field::new("language", DataType::Utf8, nullable),
            Field::new("license", DataType::Utf8, nullable),
            Field::new("stars", DataType::Int64, nullable),
            Field::new("path", DataType::Utf8, nullable),
            Field::new("repo", DataType::Utf8, nullable),
        ]);
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let file = AtomicFile::create(path)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .with_context(|| format!("{}: cannot start Parquet", path.display()))?;
        Ok(ParquetRowWriter {
            path: path.to_path_buf(),
            schema,
            with_component,
            required,
            rows: Vec::new(),
            writer,
        })
    }

    pub fn write(&mut self, row: TrainingRow) -> Result<()> {
        if self.required {
            anyhow::ensure!(
                row.language.is_some()
                    && row.license.is_some()
                    && row.stars.is_some()
                    && row.path.is_some()
                    && row.repo.is_some(),
                "{}: the curated row of {:?} in {:?} lacks a metadata column",
                self.path.display(),
                row.path,
                row.repo
            );
        }
        self.rows.push(row);
        if self.rows.len() >= ROW_GROUP_ROWS {
            self.flush_rows()?;
        }
        Ok(())
    }

    fn flush_rows(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let utf8 = |f: &dyn Fn(&TrainingRow) -> Option<&str>| -> ArrayRef {
            Arc::new(rows.iter().map(f).collect::<StringArray>())
        };
        let mut cols: Vec<ArrayRef> = vec![utf8(&|r| Some(r.text.as_str()))];
        if self.with_component {
            cols.push(utf8(&|r| Some(r.component.as_deref().unwrap_or(""))));
        }
        cols.push(utf8(&|r| r.language.as_deref()));
        cols.push(utf8(&|r| r.license.as_deref()));
        cols.push(Arc::new(
            rows.iter().map(|r| r.stars).collect::<Int64Array>(),
        ));
        cols.push(utf8(&|r| r.path.as_deref()));
        cols.push(utf8(&|r| r.repo.as_deref()));
        let batch = RecordBatch::try_new(self.schema.clone(), cols)?;
        self.writer
            .write(&batch)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Writes one curated record (curate's layout).
    pub fn write_curated(&mut self, r: crate::record::OutputRecord) -> Result<()> {
        let stars = i64::try_from(r.stars).with_context(|| {
            format!(
                "{}: stars {} do not fit int64",
                self.path.display(),
                r.stars
            )
        })?;
        self.write(TrainingRow {
            text: r.text,
            component: None,
            language: Some(r.language),
            license: Some(r.license),
            stars: Some(stars),
            path: Some(r.path),
            repo: Some(r.repo),
        })
    }

    /// Writes the footer and puts the file in place.
    pub fn finish(mut self) -> Result<()> {
        self.flush_rows()?;
        let file = self
            .writer
            .into_inner()
            .with_context(|| format!("cannot finish {}", self.path.display()))?;
        file.commit()
    }
}
