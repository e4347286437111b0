//! Reading a stats file as the page needs it, whatever command wrote it.
//!
//! `curate` and `merge` write `stages` as a list; `dedup` and
//! `decontaminate` write `stats: {stages: {name: ...}, notes}`; older files
//! lack the fields added since (command line, steps, resources). Sections
//! read the JSON through [`Run`], and a missing part makes a section say so
//! or skip itself, never fail. Token counts are read where a stage or reason
//! has them (`tokens_in`, `tokens_out`, `tokens`).

use crate::stats::STAGE_ORDER;
use serde_json::Value;

/// Drop reasons in the order their checks run (the data plan's order of
/// criteria); other reasons follow, most files first.
pub const REASON_ORDER: &[&str] = &[
    "language_mismatch",
    "license_not_permissive",
    "license_none",
    "stars_too_few",
    "stars_unknown",
    "vendor_flagged",
    "generated_flagged",
    "content_no_blob_id",
    "content_blob_missing",
    "content_gzip_corrupt",
    "content_invalid_utf8",
    "content_binary",
    "content_empty",
    "size_too_large",
    "lines_too_few",
    "lines_too_many",
    "alpha_too_low",
    "long_lines_too_many",
    "minified",
    "encoded_data",
    "autogen_marker",
    "config_or_data_file",
    "exact_duplicate",
    "minhash_near_duplicate",
];

/// One drop reason of a stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Reason {
    pub name: String,
    pub files: u64,
    pub bytes: u64,
    pub tokens: Option<u64>,
}

/// One stage's counters.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub name: String,
    pub files_in: u64,
    pub files_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    /// In [`REASON_ORDER`], then by files.
    pub dropped: Vec<Reason>,
}

impl Stage {
    pub fn dropped_files(&self) -> u64 {
        self.dropped.iter().map(|r| r.files).sum()
    }
}

/// A stats file, read.
pub struct Run<'a> {
    pub raw: &'a Value,
    /// `curate`, `merge`, `dedup`, `decontaminate`, ...
    pub command: String,
    /// In pipeline order.
    pub stages: Vec<Stage>,
    /// The stats file's name, when it was read from one.
    pub stats_name: Option<String>,
}

/// `v` at the dotted `path` (`near_dedup.params.bands`).
pub fn at<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = v;
    for key in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(key)?,
            Value::Array(a) => a.get(key.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

pub fn u64_at(v: &Value, path: &str) -> Option<u64> {
    let x = at(v, path)?;
    x.as_u64()
        .or_else(|| x.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
}

pub fn f64_at(v: &Value, path: &str) -> Option<f64> {
    at(v, path)?.as_f64()
}

pub fn str_at<'v>(v: &'v Value, path: &str) -> Option<&'v str> {
    at(v, path)?.as_str()
}

pub fn arr_at<'v>(v: &'v Value, path: &str) -> &'v [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A JSON scalar as text (strings without quotes).
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

fn stage_of(name: &str, v: &Value) -> Stage {
    let mut dropped: Vec<Reason> = match v.get("dropped") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(r, c)| Reason {
                name: r.clone(),
                files: u64_at(c, "files").unwrap_or(0),
                bytes: u64_at(c, "bytes").unwrap_or(0),
                tokens: u64_at(c, "tokens"),
            })
            .collect(),
        _ => Vec::new(),
    };
    let rank = |r: &Reason| {
        REASON_ORDER
            .iter()
            .position(|k| *k == r.name)
            .unwrap_or(REASON_ORDER.len())
    };
    dropped.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then(b.files.cmp(&a.files))
            .then(a.name.cmp(&b.name))
    });
    Stage {
        name: name.to_string(),
        files_in: u64_at(v, "files_in").unwrap_or(0),
        files_out: u64_at(v, "files_out").unwrap_or(0),
        bytes_in: u64_at(v, "bytes_in").unwrap_or(0),
        bytes_out: u64_at(v, "bytes_out").unwrap_or(0),
        tokens_in: u64_at(v, "tokens_in"),
        tokens_out: u64_at(v, "tokens_out"),
        dropped,
    }
}

/// The stages of a stats file, in pipeline order (unknown stages last, in
/// the file's order).
pub fn stages(raw: &Value) -> Vec<Stage> {
    let list = raw
        .get("stages")
        .or_else(|| at(raw, "stats.stages"))
        .cloned()
        .unwrap_or(Value::Null);
    let mut out: Vec<Stage> = match &list {
        Value::Array(a) => a
            .iter()
            .map(|s| stage_of(s.get("stage").and_then(Value::as_str).unwrap_or("?"), s))
            .collect(),
        Value::Object(m) => m.iter().map(|(k, s)| stage_of(k, s)).collect(),
        _ => Vec::new(),
    };
    let rank = |s: &Stage| {
        STAGE_ORDER
            .iter()
            .position(|k| *k == s.name)
            .unwrap_or(STAGE_ORDER.len())
    };
    // A stable sort keeps unknown stages in the file's order.
    out.sort_by_key(rank);
    out
}

/// The notes (counts that are not drops).
pub fn notes(raw: &Value) -> Vec<(String, u64)> {
    let m = raw
        .get("notes")
        .or_else(|| at(raw, "stats.notes"))
        .and_then(Value::as_object);
    m.map(|m| {
        m.iter()
            .filter_map(|(k, v)| v.as_u64().map(|n| (k.clone(), n)))
            .collect()
    })
    .unwrap_or_default()
}

impl<'a> Run<'a> {
    pub fn new(raw: &'a Value, stats_name: Option<String>) -> Run<'a> {
        let command = str_at(raw, "command")
            .map(str::to_string)
            .unwrap_or_else(|| {
                if raw.get("stages").is_some() {
                    "curate".to_string()
                } else if raw.get("near_dedup").is_some() {
                    "dedup".to_string()
                } else if raw.get("decontam").is_some() {
                    "decontaminate".to_string()
                } else {
                    "run".to_string()
                }
            });
        Run {
            raw,
            command,
            stages: stages(raw),
            stats_name,
        }
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// A short name of what the run made: `python_curated`, or the
    /// output/input file's stem.
    pub fn title(&self) -> String {
        if let Some(lang) = str_at(self.raw, "language") {
            return format!("{lang}_curated");
        }
        for key in ["output", "input"] {
            if let Some(p) = str_at(self.raw, key) {
                let name = std::path::Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.to_string());
                return name;
            }
        }
        self.stats_name.clone().unwrap_or_else(|| "run".to_string())
    }

    /// Files into the first stage and out of the last.
    pub fn overall(&self) -> Option<(u64, u64, u64, u64)> {
        let first = self.stages.first()?;
        let last = self.stages.last()?;
        Some((
            first.files_in,
            last.files_out,
            first.bytes_in,
            last.bytes_out,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_stage_layouts_read_the_same_in_pipeline_order() {
        let list = json!({"stages": [
            {"stage": "quality", "files_in": 5, "files_out": 4, "bytes_in": 50, "bytes_out": 40,
             "dropped": {"autogen_marker": {"files": 1, "bytes": 10}}},
            {"stage": "read", "files_in": 9, "files_out": 9, "bytes_in": 90, "bytes_out": 90, "dropped": {}},
        ]});
        let map = json!({"stats": {"stages": {
            "read": {"files_in": 9, "files_out": 9, "bytes_in": 90, "bytes_out": 90, "dropped": {}},
            "quality": {"files_in": 5, "files_out": 4, "bytes_in": 50, "bytes_out": 40,
             "dropped": {"autogen_marker": {"files": 1, "bytes": 10}}},
        }}});
        let a = stages(&list);
        assert_eq!(a, stages(&map));
        assert_eq!(a[0].name, "read");
        assert_eq!(a[1].dropped[0].name, "autogen_marker");
        assert_eq!(a[1].tokens_in, None);
    }

    #[test]
    fn reasons_follow_the_check_order_then_counts() {
        let v = json!({"stages": [{"stage": "metadata", "files_in": 100, "files_out": 10,
            "dropped": {"stars_too_few": {"files": 5, "bytes": 0},
                        "zz_new": {"files": 50, "bytes": 0},
                        "aa_new": {"files": 1, "bytes": 0},
                        "license_not_permissive": {"files": 34, "bytes": 0}}}]});
        let names: Vec<String> = stages(&v)[0]
            .dropped
            .iter()
            .map(|r| r.name.clone())
            .collect();
        assert_eq!(
            names,
            [
                "license_not_permissive",
                "stars_too_few",
                "zz_new",
                "aa_new"
            ]
        );
    }

    #[test]
    fn paths_and_kinds() {
        let v = json!({"a": {"b": [1, {"c": "x"}]}});
        assert_eq!(str_at(&v, "a.b.1.c"), Some("x"));
        assert_eq!(u64_at(&v, "a.b.0"), Some(1));
        assert!(at(&v, "a.z").is_none());
        assert_eq!(
            Run::new(&json!({"stats": {}, "near_dedup": {}}), None).command,
            "dedup"
        );
        assert_eq!(
            Run::new(&json!({"command": "merge"}), None).command,
            "merge"
        );
    }
}
