//! Reading a mix source: JSONL (plain, `.gz`, `.zst`) or Parquet rows with a
//! `text` field; `language`, `license`, `stars`, `path` and `repo` are kept
//! when present. Rows are delivered in file order with their index, which
//! is how the sampler names them; both passes of the mix read through here,
//! so they agree on the indices.

use crate::output::parquet::TrainingRow;
use crate::output::tool_jsonl::open_maybe_compressed;
use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;
use std::io::BufRead;
use std::path::Path;

/// Whether `path` is read as Parquet (by extension).
fn is_parquet(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// Calls `f` for every row of `path`, in order. A row without a string
/// `text` is an error naming the file and row: a mix must not silently
/// lose data.
pub fn for_each_row(path: &Path, mut f: impl FnMut(TrainingRow) -> Result<()>) -> Result<()> {
    if is_parquet(path) {
        return parquet_rows(path, &mut f);
    }
    let reader = std::io::BufReader::with_capacity(1 << 20, open_maybe_compressed(path)?);
    for (i, line) in reader.lines().enumerate() {
        let line =
            line.with_context(|| format!("{}: line {}: cannot read", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("{}: line {}: not JSON ({e})", path.display(), i + 1))?;
        let Some(obj) = value.as_object() else {
            bail!("{}: line {}: not a JSON object", path.display(), i + 1);
        };
        let Some(text) = obj.get("text").and_then(|t| t.as_str()) else {
            bail!(
                "{}: line {}: no string field \"text\"; a mix source needs one per row",
                path.display(),
                i + 1
            );
        };
        let s = |k: &str| obj.get(k).and_then(|v| v.as_str()).map(str::to_string);
        f(TrainingRow {
            text: text.to_string(),
            component: None,
            language: s("language"),
            license: s("license"),
            stars: obj.get("stars").and_then(|v| v.as_i64()),
            path: s("path"),
            repo: s("repo"),
        })?;
    }
    Ok(())
}

fn parquet_rows(path: &Path, f: &mut impl FnMut(TrainingRow) -> Result<()>) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a Parquet file", path.display()))?
        .with_batch_size(1024)
        .build()
        .with_context(|| format!("{}: cannot read Parquet", path.display()))?;
    for batch in reader {
        let batch = batch.with_context(|| format!("{}: cannot read a batch", path.display()))?;
        let Some(text) = batch.column_by_name("text") else {
            bail!(
                "{}: no column \"text\"; a mix source needs one",
                path.display()
            );
        };
        let text = strings(text).with_context(|| format!("{}: column \"text\"", path.display()))?;
        let meta = |name: &str| -> Result<Vec<Option<String>>> {
            match batch.column_by_name(name) {
                None => Ok(vec![None; batch.num_rows()]),
                Some(c) => {
                    strings(c).with_context(|| format!("{}: column {name:?}", path.display()))
                }
            }
        };
        let (language, license, rpath, repo) = (
            meta("language")?,
            meta("license")?,
            meta("path")?,
            meta("repo")?,
        );
        let stars = ints(&batch, "stars");
        for (i, t) in text.into_iter().enumerate() {
            let Some(t) = t else {
                bail!("{}: row with a null \"text\"", path.display());
            };
            f(TrainingRow {
                text: t,
                component: None,
                language: language[i].clone(),
                license: license[i].clone(),
                stars: stars[i],
                path: rpath[i].clone(),
                repo: repo[i].clone(),
            })?;
        }
    }
    Ok(())
}

fn strings(c: &ArrayRef) -> Result<Vec<Option<String>>> {
    let get = |i: usize| !c.is_null(i);
    Ok(match c.data_type() {
        DataType::Utf8 => {
            let a = c.as_string::<i32>();
            (0..a.len())
                .map(|i| get(i).then(|| a.value(i).to_string()))
                .collect()
        }
        DataType::LargeUtf8 => {
            let a = c.as_string::<i64>();
            (0..a.len())
                .map(|i| get(i).then(|| a.value(i).to_string()))
                .collect()
        }
        DataType::Utf8View => {
            let a = c.as_string_view();
            (0..a.len())
                .map(|i| get(i).then(|| a.value(i).to_string()))
                .collect()
        }
        other => bail!("is {other}, not a string column"),
    })
}

fn ints(batch: &RecordBatch, name: &str) -> Vec<Option<i64>> {
    use arrow_array::types::{Int32Type, Int64Type, UInt64Type};
    let n = batch.num_rows();
    let Some(c) = batch.column_by_name(name) else {
        return vec![None; n];
    };
    let get = |i: usize| !c.is_null(i);
    match c.data_type() {
        DataType::Int64 => {
            let a = c.as_primitive::<Int64Type>();
            (0..n).map(|i| get(i).then(|| a.value(i))).collect()
        }
        DataType::Int32 => {
            let a = c.as_primitive::<Int32Type>();
            (0..n).map(|i| get(i).then(|| a.value(i) as i64)).collect()
        }
        DataType::UInt64 => {
            let a = c.as_primitive::<UInt64Type>();
            (0..n).map(|i| get(i).then(|| a.value(i) as i64)).collect()
        }
        _ => vec![None; n],
    }
}
