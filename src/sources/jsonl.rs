//! JSONL shards (plain, `.gz`, `.zst`), streamed line by line.
//!
//! The schema is detected from the union of the keys of the first 100 lines
//! that parse as JSON objects (lines before and between them are kept and
//! reported as rejects in order), so a first object that omits a nullable
//! key does not decide alone; any object may omit keys whose values may be
//! null. Each line is one
//! row, numbered by its 0-based line number so that rejects point into the
//! file; blank lines are skipped. Per-line problems reject that row only:
//! `read_invalid_utf8` (the line is not UTF-8), `read_bad_json` (not JSON, or
//! not an object), `read_bad_value` (a value of the wrong type, e.g. stars
//! `"many"`), `read_missing_value` (a required value null or absent). A
//! decompression error (truncated or corrupt gzip/zstd) or a read error fails
//! the shard, naming the file and the line where it happened.
//!
//! Memory: one line at a time plus one batch of records.

use super::schema::{detect, Field, Layout, RawRow};
use super::{Format, InputFile, ReadOptions, RecordReader, RowReject, SchemaKind};
use crate::record::{Record, RecordId};
use anyhow::{anyhow, bail, Context, Result};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

/// Lines we look through for the first JSON object before giving up.
const MAX_DETECT_LINES: u64 = 10_000;

/// Objects whose keys, together, decide the schema (they stay buffered).
const SCHEMA_OBJECTS: usize = 100;

/// Reader of one JSONL shard.
pub struct JsonlReader {
    path: PathBuf,
    format: Format,
    shard: u32,
    layout: Layout,
    lines: Option<Box<dyn BufRead + Send>>,
    /// Lines read during detection, not yet converted.
    pending: VecDeque<(u64, Vec<u8>)>,
    next_line: u64,
    batch_size: usize,
    buf: Vec<u8>,
}

impl JsonlReader {
    pub fn open(input: &InputFile, opts: &ReadOptions) -> Result<JsonlReader> {
        let path = &input.path;
        let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let raw: Box<dyn Read + Send> = match input.format {
            Format::JsonlGz => Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
            Format::JsonlZst => Box::new(
                zstd::stream::read::Decoder::new(file)
                    .with_context(|| format!("{}: cannot start zstd decoding", path.display()))?,
            ),
            _ => Box::new(file),
        };
        let mut reader = JsonlReader {
            path: path.clone(),
            format: input.format,
            shard: input.ordinal,
            // Replaced by `detect_schema` below unless the shard holds no
            // object at all.
            layout: detect(
                path,
                &["text", "language", "license", "stars", "path", "repo"],
            )?,
            lines: Some(Box::new(BufReader::with_capacity(1 << 20, raw))),
            pending: VecDeque::new(),
            next_line: 0,
            batch_size: opts.batch_size.max(1),
            buf: Vec::new(),
        };
        reader.detect_schema()?;
        Ok(reader)
    }

    /// Reads the next line into `self.buf`; `Ok(None)` at the end.
    fn read_line(&mut self) -> Result<Option<u64>> {
        let Some(lines) = self.lines.as_mut() else {
            return Ok(None);
        };
        self.buf.clear();
        let line_no = self.next_line;
        let n = lines.read_until(b'\n', &mut self.buf).map_err(|e| {
            anyhow!(
                "{}: line {}: read failed (truncated or corrupt {}?): {e}",
                self.path.display(),
                line_no + 1,
                match self.format {
                    Format::JsonlGz => "gzip stream",
                    Format::JsonlZst => "zstd stream",
                    _ => "file",
                }
            )
        })?;
        if n == 0 {
            self.lines = None;
            return Ok(None);
        }
        self.next_line += 1;
        Ok(Some(line_no))
    }

    fn detect_schema(&mut self) -> Result<()> {
        let mut first_error = None;
        // The union of the keys of the first objects: one whose nullable
        // keys are absent (no `max_stars_count`) must not decide alone.
        let mut keys = std::collections::BTreeSet::new();
        let mut objects = 0usize;
        while let Some(line_no) = self.read_line()? {
            let line = self.buf.clone();
            if is_blank(&line) {
                continue;
            }
            let obj = std::str::from_utf8(&line)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(s)
                        .map_err(|e| e.to_string())
                });
            self.pending.push_back((line_no, line));
            match obj {
                Ok(map) => {
                    keys.extend(map.into_iter().map(|(k, _)| k));
                    objects += 1;
                    if objects >= SCHEMA_OBJECTS {
                        break;
                    }
                }
                Err(e) => {
                    first_error.get_or_insert((line_no, e));
                    if objects == 0 && line_no >= MAX_DETECT_LINES {
                        break;
                    }
                }
            }
        }
        if objects > 0 {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            self.layout = detect(&self.path, &keys)?;
            return Ok(());
        }
        match first_error {
            // No object at all: an empty shard (e.g. our own output of a run
            // that kept nothing) reads as an empty tritter shard.
            None => Ok(()),
            Some((line, e)) => bail!(
                "{}: no JSON object found to detect the schema from (line {}: {e})",
                self.path.display(),
                line + 1
            ),
        }
    }

    fn convert(&self, line_no: u64, line: &[u8]) -> Result<Record, RowReject> {
        let reject = |reason, detail: String| RowReject {
            row: line_no,
            reason,
            detail,
        };
        let text = std::str::from_utf8(line)
            .map_err(|e| reject("read_invalid_utf8", format!("line {}: {e}", line_no + 1)))?;
        let row: JsonRow = serde_json::from_str(text).map_err(|e| {
            let reason = match e.classify() {
                serde_json::error::Category::Data => "read_bad_value",
                _ => "read_bad_json",
            };
            reject(reason, format!("line {}: {e}", line_no + 1))
        })?;
        let raw = row.into_raw(&self.layout);
        self.layout.assemble(
            raw,
            RecordId {
                shard: self.shard,
                row: line_no,
            },
        )
    }
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

impl RecordReader for JsonlReader {
    fn schema(&self) -> SchemaKind {
        self.layout.kind
    }

    fn next_batch(&mut self) -> Result<Option<Vec<Result<Record, RowReject>>>> {
        let mut out = Vec::with_capacity(self.batch_size);
        while out.len() < self.batch_size {
            if let Some((line_no, line)) = self.pending.pop_front() {
                out.push(self.convert(line_no, &line));
                continue;
            }
            let Some(line_no) = self.read_line()? else {
                break;
            };
            if is_blank(&self.buf) {
                continue;
            }
            out.push(self.convert(line_no, &self.buf));
        }
        Ok(if out.is_empty() { None } else { Some(out) })
    }
}

/// Every key any schema uses, typed leniently; unknown keys are ignored.
#[derive(Deserialize, Default)]
#[serde(default)]
struct JsonRow {
    blob_id: Option<String>,
    path: Option<String>,
    repo_name: Option<String>,
    repo: Option<String>,
    language: Option<String>,
    lang: Option<String>,
    #[serde(deserialize_with = "licenses")]
    detected_licenses: Option<Vec<String>>,
    #[serde(deserialize_with = "licenses")]
    max_stars_repo_licenses: Option<Vec<String>>,
    #[serde(deserialize_with = "licenses")]
    license: Option<Vec<String>>,
    license_type: Option<String>,
    #[serde(deserialize_with = "count")]
    star_events_count: Option<u64>,
    #[serde(deserialize_with = "count")]
    max_stars_count: Option<u64>,
    #[serde(deserialize_with = "count")]
    stars: Option<u64>,
    #[serde(deserialize_with = "count")]
    length_bytes: Option<u64>,
    #[serde(deserialize_with = "count")]
    size: Option<u64>,
    extension: Option<String>,
    ext: Option<String>,
    src_encoding: Option<String>,
    #[serde(deserialize_with = "flag")]
    is_vendor: Option<bool>,
    #[serde(deserialize_with = "flag")]
    is_generated: Option<bool>,
    max_stars_repo_path: Option<String>,
    max_stars_repo_name: Option<String>,
    content: Option<String>,
    text: Option<String>,
}

impl JsonRow {
    /// Moves the values of the layout's columns into their fields.
    fn into_raw(mut self, layout: &Layout) -> RawRow {
        let mut r = RawRow::default();
        for c in &layout.columns {
            let s = |row: &mut JsonRow| -> Option<String> {
                match c.name.as_str() {
                    "blob_id" => row.blob_id.take(),
                    "path" => row.path.take(),
                    "repo_name" => row.repo_name.take(),
                    "repo" => row.repo.take(),
                    "language" => row.language.take(),
                    "lang" => row.lang.take(),
                    "license_type" => row.license_type.take(),
                    "extension" => row.extension.take(),
                    "ext" => row.ext.take(),
                    "src_encoding" => row.src_encoding.take(),
                    "max_stars_repo_path" => row.max_stars_repo_path.take(),
                    "max_stars_repo_name" => row.max_stars_repo_name.take(),
                    "content" => row.content.take(),
                    "text" => row.text.take(),
                    _ => None,
                }
            };
            let n = |row: &JsonRow| -> Option<u64> {
                match c.name.as_str() {
                    "star_events_count" => row.star_events_count,
                    "max_stars_count" => row.max_stars_count,
                    "stars" => row.stars,
                    "length_bytes" => row.length_bytes,
                    "size" => row.size,
                    _ => None,
                }
            };
            match c.field {
                Field::BlobId => r.blob_id = s(&mut self),
                Field::Path => r.path = s(&mut self),
                Field::Repo => r.repo = s(&mut self),
                Field::Language => r.language = s(&mut self),
                Field::LicenseType => r.license_type = s(&mut self),
                Field::Extension => r.extension = s(&mut self),
                Field::SrcEncoding => r.src_encoding = s(&mut self),
                Field::Text => r.text = s(&mut self),
                Field::Stars => r.stars = n(&self),
                Field::LengthBytes => r.length_bytes = n(&self),
                Field::IsVendor => r.is_vendor = self.is_vendor,
                Field::IsGenerated => r.is_generated = self.is_generated,
                Field::Licenses => {
                    r.licenses = match c.name.as_str() {
                        "detected_licenses" => self.detected_licenses.take(),
                        "max_stars_repo_licenses" => self.max_stars_repo_licenses.take(),
                        "license" => self.license.take(),
                        _ => None,
                    }
                }
            }
        }
        r
    }
}

/// A count: a non-negative integer, an integral float, a string of digits,
/// or null.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a non-negative integer or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom(format!("negative count {v}")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v >= 0.0 && v.fract() == 0.0 && v < 1.8e19 {
                Ok(Some(v as u64))
            } else {
                Err(E::custom(format!("{v} is not a count")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.trim()
                .parse::<u64>()
                .map(Some)
                .map_err(|_| E::custom(format!("{v:?} is not a count")))
        }
    }
    d.deserialize_any(V)
}

/// A flag: a boolean, 0/1, or null.
fn flag<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<bool>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a boolean or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            match v {
                0 => Ok(Some(false)),
                1 => Ok(Some(true)),
                _ => Err(E::custom(format!("{v} is not a boolean"))),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Err(E::custom(format!("{v} is not a boolean")))
        }
    }
    d.deserialize_any(V)
}

/// Licenses: a list of strings (nulls skipped), one string, or null.
fn licenses<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of license ids, a license string or null")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(vec![v.to_string()]))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element::<Option<String>>()? {
                out.extend(v);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_any(V)
}
