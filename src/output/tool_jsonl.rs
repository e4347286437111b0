//! Reading JSONL in this tool's own schema, for the stand-alone stages
//! (`dedup`, `decontaminate`) that take a curated file and write a filtered
//! copy. Each line is kept byte for byte next to its parsed record, so a
//! stage's output lines are exactly its input lines: lines end at `\n` only,
//! and a `\r` before it stays part of the line (`BufRead::lines` would drop
//! it and turn CRLF files into LF ones). A line that is not UTF-8 is a bad
//! line like one that is not JSON: returned with its error, not fatal.

use crate::record::OutputRecord;
use anyhow::{Context, Result};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// One input line: its number (1-based), its raw text, and the parsed record
/// or the parse error.
pub struct ToolLine {
    pub number: u64,
    pub raw: String,
    pub record: Result<OutputRecord, String>,
}

/// Opens `path` (plain, `.gz` or `.zst`, by extension) as a decompressed reader.
pub fn open_maybe_compressed(path: &Path) -> Result<Box<dyn Read + Send>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let name = path.to_string_lossy().to_ascii_lowercase();
    Ok(if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
    } else if name.ends_with(".zst") {
        Box::new(
            zstd::stream::read::Decoder::new(file)
                .with_context(|| format!("{}: not a zstd stream", path.display()))?,
        )
    } else {
        Box::new(file)
    })
}

/// The lines of `reader`, 1-based, split at `\n` only: the `\n` is removed,
/// every other byte (a `\r` of CRLF included) kept.
pub fn raw_lines<R: BufRead>(
    mut reader: R,
) -> impl Iterator<Item = std::io::Result<(u64, Vec<u8>)>> {
    let mut number = 0u64;
    std::iter::from_fn(move || {
        let mut buf = Vec::new();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => None,
            Ok(_) => {
                number += 1;
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                Some(Ok((number, buf)))
            }
            Err(e) => Some(Err(e)),
        }
    })
}

/// Whether a raw line holds only whitespace (skipped, as blank lines are).
pub fn is_blank(raw: &[u8]) -> bool {
    raw.iter().all(|b| b.is_ascii_whitespace())
}

/// Streams the lines of a tool-schema JSONL file. I/O and decompression
/// errors end the stream with an `Err` naming the file and line; a line that
/// is not a valid record (not UTF-8, not JSON, not the schema) is returned
/// with its error, for the caller to count and reject.
pub fn read_tool_jsonl(path: &Path) -> Result<impl Iterator<Item = Result<ToolLine>>> {
    let reader = BufReader::with_capacity(1 << 20, open_maybe_compressed(path)?);
    let display = path.display().to_string();
    let mut last = 0u64;
    Ok(raw_lines(reader).filter_map(move |line| match line {
        Err(e) => Some(Err(anyhow::anyhow!("{display}: line {}: {e}", last + 1))),
        Ok((number, raw)) => {
            last = number;
            if is_blank(&raw) {
                return None;
            }
            Some(Ok(parse_tool_line(number, raw)))
        }
    }))
}

/// Parses one raw line (not blank) of a tool-schema JSONL file. Pure, so
/// callers may parse a block of lines in parallel and keep their order.
pub fn parse_tool_line(number: u64, raw: Vec<u8>) -> ToolLine {
    let (raw, record) = match String::from_utf8(raw) {
        Ok(raw) => {
            let record = serde_json::from_str::<OutputRecord>(&raw).map_err(|e| e.to_string());
            (raw, record)
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let raw = String::from_utf8_lossy(e.as_bytes()).into_owned();
            (raw, Err(format!("not UTF-8 (invalid byte at offset {at})")))
        }
    };
    ToolLine {
        number,
        raw,
        record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_keep_crlf_and_split_at_lf_only() {
        let lines: Vec<(u64, Vec<u8>)> =
            raw_lines(&b"a\r\nb\n\nc"[..]).map(|l| l.unwrap()).collect();
        assert_eq!(
            lines,
            vec![
                (1, b"a\r".to_vec()),
                (2, b"b".to_vec()),
                (3, b"".to_vec()),
                (4, b"c".to_vec())
            ]
        );
    }
}
