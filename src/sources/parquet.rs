//! Parquet shards, read with the `parquet` crate's Arrow reader.
//!
//! Only the columns the detected schema maps (see `schema.rs`) are decoded
//! (a projection), so The Stack v2's two dozen metadata columns cost nothing
//! beyond the eight we use. Rows come in Arrow batches of
//! `ReadOptions::batch_size`; the reader pulls pages from the file as it goes,
//! so memory is bounded by one batch plus the pages of one row group in
//! flight, never the whole file.
//!
//! Errors: an unreadable file, a bad footer (truncated or not Parquet), a
//! corrupt page or a column of an unusable type fails the shard with the file
//! name and the problem; a corrupt page names its row group and row range.
//! For that, row groups are read one reader each (the footer is parsed once
//! and shared), so a batch never spans two row groups. A panic inside the decoder on hostile data is caught
//! and reported the same way.

use super::columns::{BoolCol, CellError, IntCol, ListCol, StrCol};
use super::schema::{detect, Field, Layout, RawRow};
use super::{InputFile, ReadOptions, RecordReader, RowReject, SchemaKind};
use crate::record::{Record, RecordId};
use anyhow::{anyhow, Context, Result};
use arrow_array::{ArrayRef, RecordBatch};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ProjectionMask;
use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

/// Reader of one Parquet shard.
pub struct ParquetReader {
    path: PathBuf,
    shard: u32,
    layout: Layout,
    /// The reader of the current row group.
    batches: Option<ParquetRecordBatchReader>,
    next_row: u64,
    /// Rows of each row group, in file order: an error names the row group
    /// holding the first row not yet read.
    row_group_rows: Vec<u64>,
    /// The next row group to open.
    next_group: usize,
    file: File,
    metadata: ArrowReaderMetadata,
    mask: ProjectionMask,
    batch_size: usize,
}

impl ParquetReader {
    pub fn open(input: &InputFile, opts: &ReadOptions) -> Result<ParquetReader> {
        let path = &input.path;
        let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let metadata = catch_unwind(AssertUnwindSafe(|| {
            ArrowReaderMetadata::load(&file, ArrowReaderOptions::new())
        }))
        .map_err(|p| {
            anyhow!(
                "{}: corrupt Parquet (decoder panicked: {})",
                path.display(),
                panic_text(&p)
            )
        })?
        .map_err(|e| anyhow!("{}: not a readable Parquet file: {e}", path.display()))?;
        let row_group_rows: Vec<u64> = metadata
            .metadata()
            .row_groups()
            .iter()
            .map(|g| g.num_rows().max(0) as u64)
            .collect();
        let names: Vec<&str> = metadata
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let layout = detect(path, &names)?;
        // Root indices of the columns we map; Arrow's top-level fields are
        // the Parquet schema's root fields, in order.
        let roots: Vec<usize> = layout
            .columns
            .iter()
            .filter_map(|c| names.iter().position(|n| *n == c.name))
            .collect();
        let mask = ProjectionMask::roots(metadata.parquet_schema(), roots);
        Ok(ParquetReader {
            path: path.clone(),
            shard: input.ordinal,
            layout,
            batches: None,
            next_row: 0,
            row_group_rows,
            next_group: 0,
            file,
            metadata,
            mask,
            batch_size: opts.batch_size.max(1),
        })
    }

    /// Opens the reader of the next row group; `false` after the last.
    fn open_next_group(&mut self) -> Result<bool> {
        if self.next_group >= self.row_group_rows.len() {
            return Ok(false);
        }
        let g = self.next_group;
        self.next_group += 1;
        let file = self
            .file
            .try_clone()
            .with_context(|| format!("{}: cannot open", self.path.display()))?;
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, self.metadata.clone())
                .with_projection(self.mask.clone())
                .with_row_groups(vec![g])
                .with_batch_size(self.batch_size)
                .build()
                .map_err(|e| {
                    anyhow!(
                        "{}: cannot read Parquet {}: {e}",
                        self.path.display(),
                        self.position()
                    )
                })?;
        self.batches = Some(reader);
        Ok(true)
    }

    /// Where the reader stopped, for errors: the row and its row group.
    fn position(&self) -> String {
        let mut start = 0u64;
        for (g, rows) in self.row_group_rows.iter().enumerate() {
            if self.next_row < start + rows {
                return format!(
                    "in row group {g} of {} (rows {start}..{}), near row {}",
                    self.row_group_rows.len(),
                    start + rows,
                    self.next_row
                );
            }
            start += rows;
        }
        format!("after row {}", self.next_row)
    }

    fn convert(
        &self,
        batch: &RecordBatch,
        first_row: u64,
    ) -> Result<Vec<Result<Record, RowReject>>> {
        let cols = Columns::new(&self.layout, batch)
            .map_err(|e| anyhow!("{}: {e}", self.path.display()))?;
        let mut out = Vec::with_capacity(batch.num_rows());
        for i in 0..batch.num_rows() {
            let id = RecordId {
                shard: self.shard,
                row: first_row + i as u64,
            };
            let r = match cols.row(i) {
                Ok(raw) => self.layout.assemble(raw, id),
                Err(e) => Err(reject(id.row, e)),
            };
            out.push(r);
        }
        Ok(out)
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn reject(row: u64, e: (String, CellError)) -> RowReject {
    let (col, e) = e;
    match e {
        CellError::InvalidUtf8(d) => RowReject {
            row,
            reason: "read_invalid_utf8",
            detail: format!("column `{col}`: {d}"),
        },
        CellError::BadValue(d) => RowReject {
            row,
            reason: "read_bad_value",
            detail: format!("column `{col}`: {d}"),
        },
    }
}

impl RecordReader for ParquetReader {
    fn schema(&self) -> SchemaKind {
        self.layout.kind
    }

    fn next_batch(&mut self) -> Result<Option<Vec<Result<Record, RowReject>>>> {
        let next = loop {
            if self.batches.is_none() && !self.open_next_group()? {
                return Ok(None);
            }
            let batches = self.batches.as_mut().expect("opened above");
            match catch_unwind(AssertUnwindSafe(|| batches.next())) {
                Ok(None) => self.batches = None,
                other => break other,
            }
        };
        let batch = match next {
            Ok(None) => unreachable!("an exhausted row group opens the next"),
            Ok(Some(Ok(b))) => b,
            Ok(Some(Err(e))) => {
                self.batches = None;
                self.next_group = self.row_group_rows.len();
                return Err(anyhow!(
                    "{}: corrupt or truncated Parquet {}: {e}",
                    self.path.display(),
                    self.position()
                ));
            }
            Err(p) => {
                self.batches = None;
                self.next_group = self.row_group_rows.len();
                return Err(anyhow!(
                    "{}: corrupt Parquet {} (decoder panicked: {})",
                    self.path.display(),
                    self.position(),
                    panic_text(&p)
                ));
            }
        };
        let first = self.next_row;
        self.next_row += batch.num_rows() as u64;
        self.convert(&batch, first).map(Some)
    }
}

/// Typed accessors of one batch's mapped columns.
#[derive(Default)]
struct Columns<'a> {
    strings: Vec<(Field, &'a str, StrCol<'a>)>,
    ints: Vec<(Field, &'a str, IntCol<'a>)>,
    bools: Vec<(Field, &'a str, BoolCol<'a>)>,
    lists: Vec<(Field, &'a str, ListCol<'a>)>,
}

impl<'a> Columns<'a> {
    fn new(layout: &'a Layout, batch: &'a RecordBatch) -> Result<Columns<'a>, String> {
        let mut c = Columns::default();
        for col in &layout.columns {
            let array: &'a ArrayRef = batch
                .column_by_name(&col.name)
                .ok_or_else(|| format!("column `{}` vanished from a batch", col.name))?;
            let name = col.name.as_str();
            let ctx = |e: String| format!("column `{name}`: {e}");
            match col.field {
                Field::Stars | Field::LengthBytes => {
                    c.ints
                        .push((col.field, name, IntCol::new(array).map_err(ctx)?))
                }
                Field::IsVendor | Field::IsGenerated => {
                    c.bools
                        .push((col.field, name, BoolCol::new(array).map_err(ctx)?))
                }
                Field::Licenses => {
                    c.lists
                        .push((col.field, name, ListCol::new(array).map_err(ctx)?))
                }
                _ => c
                    .strings
                    .push((col.field, name, StrCol::new(array).map_err(ctx)?)),
            }
        }
        Ok(c)
    }

    fn row(&self, i: usize) -> Result<RawRow, (String, CellError)> {
        let mut r = RawRow::default();
        for (field, name, col) in &self.strings {
            let v = col
                .get(i)
                .map_err(|e| (name.to_string(), e))?
                .map(str::to_string);
            match field {
                Field::BlobId => r.blob_id = v,
                Field::Path => r.path = v,
                Field::Repo => r.repo = v,
                Field::Language => r.language = v,
                Field::LicenseType => r.license_type = v,
                Field::Extension => r.extension = v,
                Field::SrcEncoding => r.src_encoding = v,
                Field::Text => r.text = v,
                _ => {}
            }
        }
        for (field, name, col) in &self.ints {
            let v = col.get(i).map_err(|e| (name.to_string(), e))?;
            match field {
                Field::Stars => r.stars = v,
                Field::LengthBytes => r.length_bytes = v,
                _ => {}
            }
        }
        for (field, name, col) in &self.bools {
            let v = col.get(i).map_err(|e| (name.to_string(), e))?;
            match field {
                Field::IsVendor => r.is_vendor = v,
                Field::IsGenerated => r.is_generated = v,
                _ => {}
            }
        }
        for (_, name, col) in &self.lists {
            r.licenses = col.get(i).map_err(|e| (name.to_string(), e))?;
        }
        Ok(r)
    }
}
