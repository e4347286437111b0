//! The benchmarks we know, how their files are found, and which fields of a
//! record each tier matches.
//!
//! | name            | format (fields read)                                     | exact tier                         | n-gram tier                          |
//! |-----------------|----------------------------------------------------------|------------------------------------|--------------------------------------|
//! | `humaneval`     | `task_id, prompt, canonical_solution, test`              | prompt; solution (+ code form)     | prompt+solution; test                |
//! | `humanevalplus` | evalplus: `task_id, prompt, canonical_solution, test`    | same                               | same                                 |
//! | `mbpp`          | `task_id, text (or prompt), code, test_list`             | text; code (+ code form)           | text; code; tests                    |
//! | `mbppplus`      | evalplus release JSONL: `task_id, prompt, canonical_solution, assertion`; the Hub's `evalplus/mbppplus`: `task_id, code, prompt, source_file, test_imports, test_list, test` | prompt (quotes cut); solution or `code` (+ code form) | prompt; solution; assertion, else `test_list` and `test` |
//! | `ds1000`        | `prompt, reference_code, metadata, code_context`         | prompt; reference_code (+ code form) | prompt; reference_code; code_context |
//! | `multipl_e`     | MultiPL-E `name, language, prompt, tests` (and HumanEval-X rows with `canonical_solution`) | prompt; solution if any (+ code form) | prompt(+solution); tests |
//! | user file       | `--benchmark-file FILE --fields a,b`                     | each field (+ code form)           | each field                           |
//!
//! Tests are in the n-gram tier only: assertions are short lines of literals
//! that, one by one, also occur in unrelated code, but many of them together
//! identify a problem. All 974 MBPP records are used, not only the test split
//! (task ids 11-510): training on the train split's solutions teaches the
//! test split's near-duplicates too.
//!
//! ## Problems (groups)
//! Every item belongs to a *problem*: HumanEval task 23 is one problem whether
//! it comes from HumanEval, HumanEval+, HumanEval-X or a MultiPL-E language;
//! MBPP task 2 and MBPP+ `Mbpp/2` are one; a DS-1000 perturbation belongs to
//! the problem it perturbs. The n-gram index counts problems, not items, when
//! it decides what is boilerplate.
//!
//! ## Finding files in `--benchmark-dir`
//! Files (`.jsonl`, `.jsonl.gz`, `.jsonl.zst`, `.json`, `.parquet`, at most
//! two directory levels deep) are matched by name, case-insensitively, on the
//! part before the first dot with `-` and `_` removed: `humaneval` exactly ->
//! humaneval; starting with `humanevalplus` -> humanevalplus; `humaneval-<x>`
//! or `humaneval_<x>` with another suffix, or any file in a directory named
//! `humaneval-multilang` or `multipl-e` -> multipl_e; starting with
//! `mbppplus` -> mbppplus; starting with `mbpp` -> mbpp; starting with
//! `ds1000` -> ds1000. A file whose name matches nothing takes the rule of its
//! top directory (`ds1000/test.jsonl`). Other files are ignored.

use super::rows::{read_rows, text_field, Format, Row};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// A built-in benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Builtin {
    HumanEval,
    HumanEvalPlus,
    Mbpp,
    MbppPlus,
    Ds1000,
    MultiplE,
}

impl Builtin {
    pub const ALL: [Builtin; 6] = [
        Builtin::HumanEval,
        Builtin::HumanEvalPlus,
        Builtin::Mbpp,
        Builtin::MbppPlus,
        Builtin::Ds1000,
        Builtin::MultiplE,
    ];

    /// The canonical name: used in `--benchmarks`, reports and drop reasons.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::HumanEval => "humaneval",
            Builtin::HumanEvalPlus => "humanevalplus",
            Builtin::Mbpp => "mbpp",
            Builtin::MbppPlus => "mbppplus",
            Builtin::Ds1000 => "ds1000",
            Builtin::MultiplE => "multipl_e",
        }
    }

    /// Parses a name or an alias (`humaneval+`, `mbpp-plus`, `ds-1000`,
    /// `multipl-e`, ...), case-insensitively.
    pub fn parse(s: &str) -> Option<Builtin> {
        let k: String = s
            .trim()
            .to_ascii_lowercase()
            .chars()
            .filter(|c| !matches!(c, '-' | '_' | ' '))
            .collect();
        Some(match k.as_str() {
            "humaneval" | "openaihumaneval" => Builtin::HumanEval,
            "humanevalplus" | "humaneval+" | "heplus" => Builtin::HumanEvalPlus,
            "mbpp" => Builtin::Mbpp,
            "mbppplus" | "mbpp+" => Builtin::MbppPlus,
            "ds1000" => Builtin::Ds1000,
            "multiple" | "multiple_e" | "humanevalmultilang" | "humanevalx" => Builtin::MultiplE,
            _ => return None,
        })
    }

    /// A file name we would recognise, for error messages.
    pub fn example_file(self) -> &'static str {
        match self {
            Builtin::HumanEval => "HumanEval.jsonl.gz",
            Builtin::HumanEvalPlus => "HumanEvalPlus.jsonl.gz",
            Builtin::Mbpp => "mbpp.jsonl",
            Builtin::MbppPlus => "MbppPlus.jsonl.gz",
            Builtin::Ds1000 => "ds1000.jsonl",
            Builtin::MultiplE => "humaneval-multilang/humaneval-rs.jsonl.gz",
        }
    }

    /// Which built-in a file belongs to, from its path relative to the
    /// benchmark directory (see the module doc).
    pub fn classify(rel: &Path) -> Option<Builtin> {
        let name = rel.file_name()?.to_str()?;
        Format::from_name(name)?;
        let in_multilang = rel.parent().is_some_and(|p| {
            p.components().any(|c| {
                let c = c.as_os_str().to_string_lossy().to_ascii_lowercase();
                c == "humaneval-multilang" || c == "multipl-e" || c == "multiple"
            })
        });
        if in_multilang {
            return Some(Builtin::MultiplE);
        }
        // A file named after its benchmark, else a file in a directory named
        // after it (`ds1000/test.jsonl`).
        Builtin::classify_stem(name).or_else(|| {
            let dir = rel.parent()?.components().next()?;
            Builtin::classify_stem(&dir.as_os_str().to_string_lossy())
        })
    }

    fn classify_stem(name: &str) -> Option<Builtin> {
        let stem = name.split('.').next()?.to_ascii_lowercase();
        let key: String = stem.chars().filter(|c| !matches!(c, '-' | '_')).collect();
        if key == "humaneval" {
            Some(Builtin::HumanEval)
        } else if key.starts_with("humanevalplus") {
            Some(Builtin::HumanEvalPlus)
        } else if stem.starts_with("humaneval-") || stem.starts_with("humaneval_") {
            Some(Builtin::MultiplE)
        } else if key.starts_with("mbppplus") {
            Some(Builtin::MbppPlus)
        } else if key.starts_with("mbpp") {
            Some(Builtin::Mbpp)
        } else if key.starts_with("ds1000") {
            Some(Builtin::Ds1000)
        } else {
            None
        }
    }
}

/// One string of the exact tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExactText {
    /// The record field it comes from (for the report).
    pub field: String,
    pub text: String,
    /// Also match its code form (solutions: see [`super::normalize`]).
    pub code_form: bool,
}

/// One benchmark record, reduced to what the two tiers match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchmarkItem {
    /// Index of its benchmark in the loaded list.
    pub benchmark: u16,
    pub id: String,
    /// The problem it belongs to (see the module doc).
    pub group: String,
    pub exact: Vec<ExactText>,
    pub ngram_texts: Vec<String>,
}

/// Where a loader's rows came from, for messages.
pub struct Source<'a> {
    pub display: &'a str,
    /// File stem, e.g. `humaneval-rs` (MultiPL-E's language when a row has
    /// no `language` field).
    pub stem: &'a str,
}

fn require(row: &Row, field: &str, src: &Source<'_>, format: &str) -> Result<String> {
    text_field(row, field).with_context(|| {
        let mut present: Vec<&str> = row.fields.keys().map(String::as_str).collect();
        present.sort_unstable();
        format!(
            "{}: record {}: no text field `{field}` ({format} records need it; fields present: {})",
            src.display,
            row.number,
            present.join(", ")
        )
    })
}

fn exact(field: &str, text: String, code_form: bool) -> ExactText {
    ExactText {
        field: field.to_string(),
        text,
        code_form,
    }
}

/// The number in an id like `HumanEval/12`, `Mbpp/12`, `HumanEval_12_foo`,
/// `Python/12` or `12`.
fn task_number(id: &str) -> Option<u64> {
    let tail = match id.rfind('/') {
        Some(i) => &id[i + 1..],
        None => id
            .split('_')
            .find(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or(id),
    };
    tail.trim().parse().ok()
}

/// Strips the triple quotes around an MBPP+ prompt (`'''\nWrite ...\n'''`),
/// so that the bare sentence matches wherever it appears.
fn strip_triple_quotes(s: &str) -> String {
    let t = s.trim();
    for q in ["'''", "\"\"\""] {
        if let Some(inner) = t.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner.trim().to_string();
        }
    }
    t.to_string()
}

impl Builtin {
    /// Turns the rows of one file into items of benchmark index `bench`.
    pub fn items(self, rows: &[Row], bench: u16, src: &Source<'_>) -> Result<Vec<BenchmarkItem>> {
        rows.iter().map(|row| self.item(row, bench, src)).collect()
    }

    fn item(self, row: &Row, bench: u16, src: &Source<'_>) -> Result<BenchmarkItem> {
        let line_id = || format!("line{}", row.number);
        Ok(match self {
            Builtin::HumanEval | Builtin::HumanEvalPlus => {
                let fmt = if self == Builtin::HumanEval {
                    "HumanEval"
                } else {
                    "HumanEval+ (evalplus)"
                };
                let id = require(row, "task_id", src, fmt)?;
                let prompt = require(row, "prompt", src, fmt)?;
                let solution = require(row, "canonical_solution", src, fmt)?;
                let test = text_field(row, "test").unwrap_or_default();
                BenchmarkItem {
                    benchmark: bench,
                    group: format!("humaneval/{}", task_number(&id).unwrap_or(u64::MAX)),
                    ngram_texts: vec![format!("{prompt}{solution}"), test],
                    exact: vec![
                        exact("prompt", prompt, false),
                        exact("canonical_solution", solution, true),
                    ],
                    id,
                }
            }
            Builtin::Mbpp => {
                let id = require(row, "task_id", src, "MBPP")?;
                let text = text_field(row, "text")
                    .or_else(|| text_field(row, "prompt"))
                    .unwrap_or_default();
                let code = require(row, "code", src, "MBPP")?;
                let tests = text_field(row, "test_list").unwrap_or_default();
                BenchmarkItem {
                    benchmark: bench,
                    group: format!("mbpp/{}", task_number(&id).unwrap_or(u64::MAX)),
                    ngram_texts: vec![text.clone(), code.clone(), tests],
                    exact: vec![exact("text", text, false), exact("code", code, true)],
                    id,
                }
            }
            Builtin::MbppPlus => {
                // Two published layouts: the GitHub release's JSONL
                // (`canonical_solution`, `assertion`) and the Hub dataset
                // `evalplus/mbppplus` (`code`, `test_list`, `test`).
                let fmt = "MBPP+ (evalplus)";
                let id = require(row, "task_id", src, fmt)?;
                let prompt = strip_triple_quotes(&require(row, "prompt", src, fmt)?);
                let solution = match text_field(row, "canonical_solution") {
                    Some(s) => s,
                    None => require(row, "code", src, "MBPP+ (evalplus, canonical_solution or)")?,
                };
                let assertion = text_field(row, "assertion")
                    .or_else(|| {
                        let parts: Vec<String> = ["test_list", "test"]
                            .iter()
                            .filter_map(|f| text_field(row, f))
                            .filter(|t| !t.is_empty())
                            .collect();
                        (!parts.is_empty()).then(|| parts.join("\n"))
                    })
                    .unwrap_or_default();
                BenchmarkItem {
                    benchmark: bench,
                    group: format!("mbpp/{}", task_number(&id).unwrap_or(u64::MAX)),
                    ngram_texts: vec![prompt.clone(), solution.clone(), assertion],
                    exact: vec![
                        exact("prompt", prompt, false),
                        exact("canonical_solution", solution, true),
                    ],
                    id,
                }
            }
            Builtin::Ds1000 => {
                let prompt = require(row, "prompt", src, "DS-1000")?;
                let reference = require(row, "reference_code", src, "DS-1000")?;
                let context = text_field(row, "code_context").unwrap_or_default();
                let meta = row.fields.get("metadata");
                let meta_field = |k: &str| {
                    meta.and_then(|m| m.get(k)).and_then(|v| match v {
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        serde_json::Value::String(s) => Some(s.clone()),
                        _ => None,
                    })
                };
                let id = meta_field("problem_id").unwrap_or_else(line_id);
                let origin = meta_field("perturbation_origin_id").unwrap_or_else(|| id.clone());
                BenchmarkItem {
                    benchmark: bench,
                    group: format!("ds1000/{origin}"),
                    ngram_texts: vec![prompt.clone(), reference.clone(), context],
                    exact: vec![
                        exact("prompt", prompt, false),
                        exact("reference_code", reference, true),
                    ],
                    id,
                }
            }
            Builtin::MultiplE => {
                let fmt = "MultiPL-E";
                let task = require(row, "task_id", src, fmt)
                    .or_else(|_| require(row, "name", src, fmt))?;
                let prompt = require(row, "prompt", src, fmt)?;
                let solution = text_field(row, "canonical_solution");
                let tests = text_field(row, "tests")
                    .or_else(|| text_field(row, "test"))
                    .unwrap_or_default();
                let lang = text_field(row, "language").unwrap_or_else(|| {
                    src.stem
                        .trim_start_matches("humaneval-")
                        .trim_start_matches("humaneval_")
                        .to_string()
                });
                let family = if task.to_ascii_lowercase().starts_with("mbpp") {
                    "mbpp"
                } else {
                    "humaneval"
                };
                let mut exacts = vec![exact("prompt", prompt.clone(), false)];
                let mut first = prompt;
                if let Some(s) = solution {
                    first.push_str(&s);
                    exacts.push(exact("canonical_solution", s, true));
                }
                BenchmarkItem {
                    benchmark: bench,
                    group: format!("{family}/{}", task_number(&task).unwrap_or(u64::MAX)),
                    ngram_texts: vec![first, tests],
                    exact: exacts,
                    id: format!("{lang}/{task}"),
                }
            }
        })
    }
}

/// A user benchmark file: `--benchmark-file [NAME=]FILE` with `--fields`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserBenchmark {
    /// Canonical name (lowercase letters, digits, `_`).
    pub name: String,
    pub path: PathBuf,
    pub fields: Vec<String>,
}

impl UserBenchmark {
    /// Parses `[NAME=]FILE`; without a name, the file's stem is used.
    pub fn parse(spec: &str, fields: Vec<String>) -> Result<UserBenchmark> {
        let (name, path) = match spec.split_once('=') {
            Some((n, p)) if !n.is_empty() && !n.contains(['/', '\\']) => (n.to_string(), p),
            _ => {
                let stem = Path::new(spec)
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.split('.').next())
                    .unwrap_or("user");
                (stem.to_string(), spec)
            }
        };
        if fields.is_empty() {
            bail!("--benchmark-file {spec}: say which fields to match with --fields a,b");
        }
        Ok(UserBenchmark {
            name: sanitize_name(&name),
            path: PathBuf::from(path),
            fields,
        })
    }

    /// Reads the file into items of benchmark index `bench`.
    pub fn load(&self, bench: u16) -> Result<Vec<BenchmarkItem>> {
        let display = self.path.display().to_string();
        let format = Format::from_name(&display).unwrap_or(Format::Jsonl);
        let rows = read_rows(&self.path, format, &display)?;
        if rows.is_empty() {
            bail!("{display}: no records");
        }
        for f in &self.fields {
            if !rows.iter().any(|r| text_field(r, f).is_some()) {
                let mut present: Vec<&str> = rows[0].fields.keys().map(String::as_str).collect();
                present.sort_unstable();
                bail!(
                    "{display}: no record has a text field `{f}` (fields of the first record: {})",
                    present.join(", ")
                );
            }
        }
        Ok(rows
            .iter()
            .map(|row| {
                let id = ["task_id", "id", "problem_id", "name"]
                    .iter()
                    .find_map(|k| text_field(row, k))
                    .unwrap_or_else(|| format!("line{}", row.number));
                let mut exacts = Vec::new();
                let mut ngrams = Vec::new();
                for f in &self.fields {
                    if let Some(t) = text_field(row, f) {
                        exacts.push(exact(f, t.clone(), true));
                        ngrams.push(t);
                    }
                }
                BenchmarkItem {
                    benchmark: bench,
                    group: format!("{}/{id}", self.name),
                    id,
                    exact: exacts,
                    ngram_texts: ngrams,
                }
            })
            .collect())
    }
}

/// Lowercase letters, digits and `_` only: the name goes into drop reasons.
pub fn sanitize_name(s: &str) -> String {
    let out: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() {
        "user".into()
    } else {
        out
    }
}

/// The benchmark files under `dir`, by built-in, in sorted path order.
pub fn discover(dir: &Path) -> Result<Vec<(Builtin, PathBuf)>> {
    let mut found = Vec::new();
    walk(dir, dir, 0, &mut found)
        .with_context(|| format!("cannot list benchmark directory {}", dir.display()))?;
    found.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(found)
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<(Builtin, PathBuf)>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let ft = entry.file_type()?;
        if ft.is_dir() || (ft.is_symlink() && path.is_dir()) {
            if depth < 1 {
                walk(root, &path, depth + 1, out)?;
            }
        } else if let Some(b) = path.strip_prefix(root).ok().and_then(Builtin::classify) {
            out.push((b, path));
        }
    }
    Ok(())
}

/// Loads one benchmark file of built-in `b` into items of index `bench`.
pub fn load_file(b: Builtin, path: &Path, bench: u16) -> Result<Vec<BenchmarkItem>> {
    let display = path.display().to_string();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let format = Format::from_name(name)
        .with_context(|| format!("{display}: unknown benchmark file format"))?;
    let rows = read_rows(path, format, &display)?;
    let stem = name.split('.').next().unwrap_or("").to_ascii_lowercase();
    b.items(
        &rows,
        bench,
        &Source {
            display: &display,
            stem: &stem,
        },
    )
}

/// The default benchmark directory: `$TRITTER_BENCHMARK_DIR` when set, else
/// `../shared/benchmarks` when that directory exists.
pub fn default_benchmark_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("TRITTER_BENCHMARK_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let shared = PathBuf::from("../shared/benchmarks");
    shared.is_dir().then_some(shared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(v: serde_json::Value) -> Row {
        Row {
            number: 1,
            fields: v.as_object().unwrap().clone(),
        }
    }

    const SRC: Source<'static> = Source {
        display: "x.jsonl",
        stem: "humaneval-rs",
    };

    #[test]
    fn names_and_aliases() {
        for b in Builtin::ALL {
            assert_eq!(Builtin::parse(b.name()), Some(b));
        }
        assert_eq!(Builtin::parse("HumanEval+"), Some(Builtin::HumanEvalPlus));
        assert_eq!(Builtin::parse("mbpp-plus"), Some(Builtin::MbppPlus));
        assert_eq!(Builtin::parse("DS-1000"), Some(Builtin::Ds1000));
        assert_eq!(Builtin::parse("MultiPL-E"), Some(Builtin::MultiplE));
        assert_eq!(Builtin::parse("apps"), None);
    }

    #[test]
    fn files_are_classified_by_name() {
        let c = |p: &str| Builtin::classify(Path::new(p));
        assert_eq!(c("HumanEval.jsonl.gz"), Some(Builtin::HumanEval));
        assert_eq!(
            c("HumanEvalPlus-v0.1.10.jsonl.gz"),
            Some(Builtin::HumanEvalPlus)
        );
        assert_eq!(c("humaneval-rs.jsonl.gz"), Some(Builtin::MultiplE));
        assert_eq!(
            c("humaneval-multilang/humaneval-python.jsonl.gz"),
            Some(Builtin::MultiplE)
        );
        assert_eq!(
            c("MbppPlus-evalplus-038088e.jsonl.gz"),
            Some(Builtin::MbppPlus)
        );
        assert_eq!(c("mbpp.jsonl"), Some(Builtin::Mbpp));
        assert_eq!(c("DS-1000.jsonl"), Some(Builtin::Ds1000));
        assert_eq!(c("ds1000/test.parquet"), Some(Builtin::Ds1000));
        assert_eq!(c("other/test.parquet"), None);
        assert_eq!(c("MANIFEST.md"), None);
    }

    #[test]
    fn task_numbers() {
        assert_eq!(task_number("HumanEval/12"), Some(12));
        assert_eq!(task_number("Mbpp/7"), Some(7));
        assert_eq!(task_number("HumanEval_23_strlen"), Some(23));
        assert_eq!(task_number("Python/0"), Some(0));
        assert_eq!(task_number("974"), Some(974));
    }

    #[test]
    fn translations_share_a_problem() {
        let he = Builtin::HumanEval
            .item(
                &row(json!({"task_id": "HumanEval/23", "prompt": "p", "canonical_solution": "s", "test": "t"})),
                0,
                &SRC,
            )
            .unwrap();
        let rs = Builtin::MultiplE
            .item(
                &row(json!({"name": "HumanEval_23_strlen", "language": "rs", "prompt": "p", "tests": "t"})),
                1,
                &SRC,
            )
            .unwrap();
        assert_eq!(he.group, rs.group);
        assert_eq!(rs.id, "rs/HumanEval_23_strlen");
        // HumanEval+ (evalplus: extra contract, base_input, plus_input, atol).
        let plus = Builtin::HumanEvalPlus
            .item(
                &row(
                    json!({"task_id": "HumanEval/23", "prompt": "p", "canonical_solution": "s2",
                            "entry_point": "strlen", "contract": "", "base_input": [[""]],
                            "plus_input": [], "atol": 0}),
                ),
                2,
                &SRC,
            )
            .unwrap();
        assert_eq!(plus.group, he.group);
        assert_eq!(plus.exact[1].text, "s2");
        let plus = Builtin::MbppPlus
            .item(
                &row(json!({"task_id": "Mbpp/2", "prompt": "'''\nWrite a function.\n'''", "canonical_solution": "s"})),
                2,
                &SRC,
            )
            .unwrap();
        let mbpp = Builtin::Mbpp
            .item(
                &row(json!({"task_id": 2, "text": "Write a function.", "code": "s", "test_list": ["a", "b"]})),
                3,
                &SRC,
            )
            .unwrap();
        assert_eq!(plus.group, mbpp.group);
        assert_eq!(plus.exact[0].text, "Write a function.");
        // The Hub's evalplus/mbppplus layout: `code`, `test_list`, `test`.
        let hub = Builtin::MbppPlus
            .item(
                &row(json!({"task_id": 2, "code": "def f(a, b):\n    return a & b",
                            "prompt": "Write a function.", "source_file": "Benchmark Questions Verification V2.ipynb",
                            "test_imports": [], "test_list": ["assert f(1, 1) == 1"],
                            "test": "inputs = [[1, 1]]\nfor i in inputs: assertion(f(*i))"})),
                2,
                &SRC,
            )
            .unwrap();
        assert_eq!(hub.group, mbpp.group);
        assert_eq!(hub.exact[0].text, "Write a function.");
        assert_eq!(hub.exact[1].field, "canonical_solution");
        assert_eq!(hub.exact[1].text, "def f(a, b):\n    return a & b");
        assert_eq!(
            hub.ngram_texts[2],
            "assert f(1, 1) == 1\ninputs = [[1, 1]]\nfor i in inputs: assertion(f(*i))"
        );
        let err = Builtin::MbppPlus
            .item(&row(json!({"task_id": 2, "prompt": "p"})), 2, &SRC)
            .expect_err("no solution field");
        assert!(format!("{err:#}").contains("`code`"), "{err:#}");
        assert_eq!(mbpp.ngram_texts[2], "a\nb");
    }

    #[test]
    fn ds1000_perturbations_join_their_origin() {
        let r = row(json!({
            "prompt": "How do I sum a column?", "reference_code": "result = df['a'].sum()",
            "code_context": "def f(): pass",
            "metadata": {"problem_id": 5, "library_problem_id": 5, "library": "Pandas",
                          "perturbation_type": "Semantic", "perturbation_origin_id": 2}
        }));
        let it = Builtin::Ds1000.item(&r, 0, &SRC).unwrap();
        assert_eq!((it.id.as_str(), it.group.as_str()), ("5", "ds1000/2"));
    }

    #[test]
    fn missing_required_field_is_a_clear_error() {
        let e = Builtin::HumanEval
            .item(
                &row(json!({"task_id": "HumanEval/1", "prompt": "p"})),
                0,
                &SRC,
            )
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.jsonl: record 1: no text field `canonical_solution` (HumanEval records need it; fields present: prompt, task_id)"
        );
    }

    #[test]
    fn user_file_names() {
        let u = UserBenchmark::parse("dir/My-Bench.v2.jsonl", vec!["a".into()]).unwrap();
        assert_eq!(u.name, "my_bench");
        let u = UserBenchmark::parse("apps=data/x.jsonl", vec!["a".into()]).unwrap();
        assert_eq!(
            (u.name.as_str(), u.path.to_str()),
            ("apps", Some("data/x.jsonl"))
        );
        assert!(UserBenchmark::parse("x.jsonl", vec![]).is_err());
    }
}
