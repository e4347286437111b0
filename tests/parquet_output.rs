//! `curate --format parquet`: the curated rows as Parquet (zstd, exactly
//! the six columns of the JSONL), single and sharded, with the same rows in
//! the same order as the JSONL output, which stays the default and
//! unchanged; and the files load with Hugging Face `datasets`.

mod common;

use common::{run_datasets_script, run_expect, TestDir};
use parquet::file::reader::FileReader;
use std::path::{Path, PathBuf};
use tritter_gpu::sources::writer::{write_shard, SourceFile, WriteOptions};
use tritter_gpu::sources::SchemaKind;

const KEYS: [&str; 6] = ["text", "language", "license", "stars", "path", "repo"];

/// Two input shards of Python files, with an exact duplicate and a file the
/// license filter drops, so the output is a real selection.
fn inputs(t: &TestDir) {
    let body = |i: usize| {
        let mut s = format!("\"\"\"Module {i}: caf\u{e9} \u{2713}.\"\"\"\n");
        for f in 0..(3 + i % 6) {
            s += &format!("def op_{i}_{f}(a, b):\n    return a * {f} - b + {i}\n\n");
        }
        s
    };
    let file = |i: usize, text: &str, license: &str| {
        let mut f = SourceFile::new(
            &format!("lib/m{i}.py"),
            &format!("u{}/r{i}", i % 4),
            "Python",
            text,
        );
        f.licenses = vec![license.into()];
        f.stars = Some(100 + 3 * i as u64);
        f
    };
    std::fs::create_dir_all(t.join("in")).unwrap();
    for k in 0..2 {
        let mut files: Vec<SourceFile> = (0..40)
            .map(|i| file(k * 40 + i, &body(k * 40 + i), "mit"))
            .collect();
        files.push(file(900 + k, &body(7), "mit"));
        files.push(file(950 + k, &body(950 + k), "gpl-3.0"));
        write_shard(
            &t.join(&format!("in/{k}.parquet")),
            SchemaKind::StackV1,
            &files,
            WriteOptions::default(),
        )
        .unwrap();
    }
}

fn curate(t: &TestDir, out: &str, extra: &[&str]) {
    let mut cmd = t.cmd();
    cmd.args([
        "curate",
        "--backend",
        "cpu",
        "--threads",
        "2",
        "--source",
        "in",
        "--output",
        out,
        "--work-dir",
        &format!("{out}.work"),
        "--decontaminate",
        "off",
        "--report-html",
        "off",
        "--tokens",
        "off",
    ]);
    cmd.args(extra);
    run_expect(&mut cmd, 0);
}

fn jsonl_rows(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The rows of a curated Parquet file as the JSONL's objects, after checking
/// its schema: exactly the six columns, in order, none nullable, `stars`
/// int64, zstd-compressed.
fn parquet_rows(path: &Path) -> Vec<serde_json::Value> {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::file::serialized_reader::SerializedFileReader::new(file).unwrap();
    let meta = reader.metadata();
    for rg in meta.row_groups() {
        for c in rg.columns() {
            assert!(
                matches!(c.compression(), parquet::basic::Compression::ZSTD(_)),
                "{}: {:?}",
                path.display(),
                c.compression()
            );
        }
    }
    let file = std::fs::File::open(path).unwrap();
    let builder =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let schema = builder.schema().clone();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, KEYS, "{}", path.display());
    for f in schema.fields() {
        assert!(!f.is_nullable(), "{} is nullable", f.name());
        let want = if f.name() == "stars" {
            arrow_schema::DataType::Int64
        } else {
            arrow_schema::DataType::Utf8
        };
        assert_eq!(f.data_type(), &want, "{}", f.name());
    }
    let mut rows = Vec::new();
    tritter_gpu::mix::source::for_each_row(path, |r| {
        rows.push(serde_json::json!({
            "text": r.text, "language": r.language.unwrap(), "license": r.license.unwrap(),
            "stars": r.stars.unwrap(), "path": r.path.unwrap(), "repo": r.repo.unwrap(),
        }));
        Ok(())
    })
    .unwrap();
    rows
}

fn shards(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.starts_with("python_curated-") && n.ends_with(ext)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn parquet_output_has_the_jsonl_rows_single_and_sharded() {
    let t = TestDir::new();
    inputs(&t);
    curate(&t, "default", &[]);
    curate(&t, "jsonl", &["--format", "jsonl"]);
    curate(&t, "pq", &["--format", "parquet"]);
    curate(&t, "pq3", &["--format", "parquet", "--output-shards", "3"]);
    curate(&t, "jsonl3", &["--output-shards", "3"]);

    // JSONL stays the default, byte for byte.
    let jsonl = std::fs::read(t.join("default/python_curated.jsonl")).unwrap();
    assert_eq!(
        jsonl,
        std::fs::read(t.join("jsonl/python_curated.jsonl")).unwrap()
    );
    let concat: Vec<u8> = shards(&t.join("jsonl3"), ".jsonl")
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(jsonl, concat);
    assert!(!t.join("pq/python_curated.jsonl").exists());

    let want = jsonl_rows(&t.join("default/python_curated.jsonl"));
    assert!(want.len() > 50, "{}", want.len());
    assert_eq!(parquet_rows(&t.join("pq/python_curated.parquet")), want);
    let parts = shards(&t.join("pq3"), ".parquet");
    assert_eq!(parts.len(), 3, "{parts:?}");
    assert!(parts[0].ends_with("python_curated-00000-of-00003.parquet"));
    let got: Vec<serde_json::Value> = parts.iter().flat_map(|p| parquet_rows(p)).collect();
    assert_eq!(got, want);

    // The stats name the Parquet files and count what the JSONL run wrote.
    let stats = |d: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(t.join(d).join("python_curated.stats.json")).unwrap(),
        )
        .unwrap()
    };
    let s = stats("pq3").to_string();
    assert!(s.contains("python_curated-00002-of-00003.parquet"), "{s}");
    assert!(stats("pq").to_string().contains("python_curated.parquet"));
    assert_eq!(stats("pq")["stages"], stats("default")["stages"]);

    // The same run again gives the same Parquet bytes.
    curate(&t, "pq-again", &["--format", "parquet"]);
    assert_eq!(
        std::fs::read(t.join("pq/python_curated.parquet")).unwrap(),
        std::fs::read(t.join("pq-again/python_curated.parquet")).unwrap()
    );
}

/// The Parquet output loads with the real `datasets` library, single file
/// and shards, with the JSONL's rows and features. Runs where
/// `TRITTER_PYTHON` names a Python with `datasets` installed; skipped,
/// visibly, elsewhere.
#[test]
fn parquet_output_loads_with_hugging_face_datasets() {
    let Ok(python) = std::env::var("TRITTER_PYTHON") else {
        eprintln!(
            "SKIP: set TRITTER_PYTHON to a Python with `datasets` installed to run this test"
        );
        return;
    };
    let t = TestDir::new();
    inputs(&t);
    curate(&t, "j", &[]);
    curate(&t, "p", &["--format", "parquet"]);
    curate(&t, "p4", &["--format", "parquet", "--output-shards", "4"]);
    let script = r#"
import glob, json, os, sys
from datasets import load_dataset
jsonl = load_dataset("json", data_files=sys.argv[1])["train"]
out = {"jsonl_features": {k: str(v.dtype) for k, v in jsonl.features.items()}}
for name, files in [("single", [sys.argv[2]]), ("shards", sorted(glob.glob(os.path.join(sys.argv[3], "python_curated-*.parquet"))))]:
    ds = load_dataset("parquet", data_files=files)["train"]
    stream = next(iter(load_dataset("parquet", data_files=files, streaming=True)["train"]))
    out[name] = {
        "files": len(files),
        "columns": ds.column_names,
        "features": {k: str(v.dtype) for k, v in ds.features.items()},
        "same_rows": ds.to_list() == jsonl.to_list(),
        "rows": ds.num_rows,
        "stream_first": stream["path"],
    }
print(json.dumps(out))
"#;
    let got = run_datasets_script(
        &python,
        &t,
        script,
        &[
            t.join("j/python_curated.jsonl"),
            t.join("p/python_curated.parquet"),
            t.join("p4"),
        ],
    );
    let rows = jsonl_rows(&t.join("j/python_curated.jsonl"));
    for name in ["single", "shards"] {
        let g = &got[name];
        assert_eq!(g["columns"], serde_json::json!(KEYS), "{got}");
        assert_eq!(g["features"], got["jsonl_features"], "{got}");
        assert_eq!(g["same_rows"], true, "{got}");
        assert_eq!(g["rows"], rows.len() as u64);
        assert_eq!(g["stream_first"], rows[0]["path"]);
    }
    assert_eq!(got["shards"]["files"], 4);
}
