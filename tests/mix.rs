//! `tritter-gpu mix`: token targets met, shortfalls, plan errors, the same
//! bytes on every run, and shards that Hugging Face `datasets` loads.

mod common;

use common::{run_expect, TestDir};
use std::path::Path;
use tritter_gpu::output::parquet::{ParquetRowWriter, TrainingRow};

/// A JSONL source of `n` small Python-like documents in the tool's schema.
fn jsonl_source(path: &Path, lang: &str, n: usize) {
    let mut out = String::new();
    for i in 0..n {
        let text = format!("def f_{lang}_{i}(x):\n    return x + {i}\n").repeat(1 + i % 7);
        let row = serde_json::json!({
            "text": text, "language": lang, "license": "mit", "stars": i,
            "path": format!("src/f{i}.py"), "repo": format!("org/r{}", i % 5),
        });
        out.push_str(&row.to_string());
        out.push('\n');
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, out).unwrap();
}

/// A Parquet source with only a `text` column filled (user-supplied docs).
fn parquet_source(path: &Path, n: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = ParquetRowWriter::create(path, false).unwrap();
    for i in 0..n {
        w.write(TrainingRow {
            text: format!("# Section {i}\n\nSome technical prose about topic {i}.\n"),
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
}

fn plan(total: u64, format: &str, python_epochs: f64) -> String {
    format!(
        r#"
total_tokens = {total}
tokenizer = "cl100k_base"
seed = 3
shard_tokens = 20_000
format = "{format}"

[[component]]
name = "python"
share = 0.6
sources = ["in/python.jsonl"]
max_epochs = {python_epochs}

[[component]]
name = "rust"
share = 0.3
sources = ["in/rust.jsonl"]

[[component]]
name = "docs"
share = 0.1
sources = ["in/docs.parquet"]
max_epochs = 4.0
"#
    )
}

fn setup(t: &TestDir, total: u64, format: &str) {
    jsonl_source(&t.join("in/python.jsonl"), "python", 600);
    jsonl_source(&t.join("in/rust.jsonl"), "rust", 400);
    parquet_source(&t.join("in/docs.parquet"), 300);
    std::fs::write(t.join("plan.toml"), plan(total, format, 1.0)).unwrap();
}

fn report(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("mix_report.json")).unwrap()).unwrap()
}

/// `mix` of `plan.toml` into `out` on two threads, quietly.
fn mix_cmd(t: &TestDir, out: &str) -> std::process::Command {
    let mut c = t.cmd();
    c.args([
        "--quiet",
        "--threads",
        "2",
        "mix",
        "--plan",
        "plan.toml",
        "--output",
        out,
    ]);
    c
}

fn mix(t: &TestDir, out: &str, code: i32) -> std::process::Output {
    run_expect(&mut mix_cmd(t, out), code)
}

#[test]
fn targets_are_met_within_one_document_and_rows_are_complete() {
    let t = TestDir::new();
    setup(&t, 50_000, "jsonl");
    let out = mix(&t, "out", 0);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("python") && table.contains("total"),
        "{table}"
    );
    let r = report(&t.join("out"));
    let mut rows = 0u64;
    for c in r["components"].as_array().unwrap() {
        let (target, got) = (
            c["target_tokens"].as_u64().unwrap(),
            c["achieved_tokens"].as_u64().unwrap(),
        );
        // Our documents hold well under 300 tokens each.
        assert!(got >= target && got < target + 300, "{c}");
        rows += c["files"].as_u64().unwrap();
    }
    assert_eq!(r["total_files"].as_u64().unwrap(), rows);
    let shards = r["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3, "50k tokens in 20k-token shards");
    assert_eq!(shards[0], "train-00000-of-00003.jsonl");
    let mut seen = 0u64;
    let mut comps = std::collections::BTreeSet::new();
    for s in shards {
        for line in std::fs::read_to_string(t.join("out").join(s.as_str().unwrap()))
            .unwrap()
            .lines()
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            comps.insert(v["component"].as_str().unwrap().to_string());
            seen += 1;
        }
    }
    assert_eq!(seen, rows);
    assert_eq!(comps.len(), 3);
    assert!(!t.join("out/.mix-work").exists());
}

#[test]
fn same_bytes_on_a_rerun_and_after_a_lost_shard() {
    let t = TestDir::new();
    setup(&t, 50_000, "parquet");
    mix(&t, "a", 0);
    mix(&t, "b", 0);
    let r = report(&t.join("a"));
    for s in r["shards"].as_array().unwrap() {
        let s = s.as_str().unwrap();
        assert_eq!(
            std::fs::read(t.join("a").join(s)).unwrap(),
            std::fs::read(t.join("b").join(s)).unwrap(),
            "{s}"
        );
    }
    // A complete mix is not redone; a damaged one is rebuilt to the same bytes.
    let first = t.join("a").join(r["shards"][0].as_str().unwrap());
    let bytes = std::fs::read(&first).unwrap();
    std::fs::remove_file(&first).unwrap();
    std::fs::remove_file(t.join("a/mix_report.json")).unwrap();
    mix(&t, "a", 0);
    assert_eq!(std::fs::read(&first).unwrap(), bytes);
}

#[test]
fn a_shortfall_fails_with_a_table_or_is_rescaled() {
    let t = TestDir::new();
    setup(&t, 50_000, "jsonl");
    // Few Python documents: python cannot reach its 60 %.
    jsonl_source(&t.join("in/python.jsonl"), "python", 100);
    let rust_repeats = plan(50_000, "jsonl", 1.0).replace(
        "sources = [\"in/rust.jsonl\"]",
        "sources = [\"in/rust.jsonl\"]\nmax_epochs = 10.0",
    );
    std::fs::write(t.join("plan.toml"), &rust_repeats).unwrap();
    let out = mix(&t, "out", 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot meet") && err.contains("python") && err.contains("--rescale"),
        "{err}"
    );
    run_expect(
        t.cmd().args([
            "--quiet",
            "mix",
            "--plan",
            "plan.toml",
            "--output",
            "out",
            "--rescale",
        ]),
        0,
    );
    let r = report(&t.join("out"));
    let comps = r["components"].as_array().unwrap();
    let settled: Vec<u64> = comps
        .iter()
        .map(|c| c["rescaled_target_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(settled.iter().sum::<u64>(), 50_000);
    // Python gives all it has; rust and docs share its shortfall 3:1.
    let python_avail = comps[0]["available_tokens"].as_u64().unwrap();
    assert_eq!(settled[0], python_avail);
    let extra = (settled[1] - 15_000, settled[2] - 5_000);
    assert!(extra.0.abs_diff(3 * extra.1) <= 3, "{extra:?}");
    assert!(r["rescale"].as_bool().unwrap());
    assert!(comps[1]["epochs"].as_f64().unwrap() > 1.0);
}

#[test]
fn plan_errors_name_the_file_and_the_fix() {
    let t = TestDir::new();
    setup(&t, 50_000, "jsonl");
    std::fs::write(
        t.join("plan.toml"),
        plan(50_000, "jsonl", 1.0).replace("share = 0.1", "share = 0.2"),
    )
    .unwrap();
    let err = String::from_utf8_lossy(&mix(&t, "out", 2).stderr).to_string();
    assert!(
        err.contains("plan.toml") && err.contains("sum to 1.1"),
        "{err}"
    );

    std::fs::write(
        t.join("plan.toml"),
        plan(50_000, "jsonl", 1.0).replace("in/rust.jsonl", "in/missing.jsonl"),
    )
    .unwrap();
    let err = String::from_utf8_lossy(&mix(&t, "out", 2).stderr).to_string();
    assert!(
        err.contains("in/missing.jsonl") && err.contains("does not exist"),
        "{err}"
    );

    std::fs::write(t.join("plan.toml"), plan(50_000, "jsonl", 1.0)).unwrap();
    std::fs::write(t.join("in/rust.jsonl"), "{\"content\": \"fn main() {}\"}\n").unwrap();
    let err = String::from_utf8_lossy(&mix(&t, "out", 2).stderr).to_string();
    assert!(
        err.contains("in/rust.jsonl: line 1") && err.contains("\"text\""),
        "{err}"
    );
}

/// The Parquet shards load with Hugging Face `datasets`. Runs where
/// `TRITTER_PYTHON` names a Python with `datasets`; skipped, visibly,
/// elsewhere.
#[test]
fn parquet_shards_load_with_hugging_face_datasets() {
    let Ok(python) = std::env::var("TRITTER_PYTHON") else {
        eprintln!(
            "SKIP: set TRITTER_PYTHON to a Python with `datasets` installed to run this test"
        );
        return;
    };
    let t = TestDir::new();
    setup(&t, 50_000, "parquet");
    mix(&t, "out", 0);
    let files = report(&t.join("out"))["total_files"].as_u64().unwrap();
    let script = r#"
import json, sys
from datasets import load_dataset
ds = load_dataset("parquet", data_dir=sys.argv[1])["train"]
print(json.dumps({"rows": ds.num_rows, "columns": ds.column_names, "components": sorted(set(ds["component"]))}))
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(t.join("out"))
        .env("HF_HOME", t.join("hf"))
        .env("HF_DATASETS_OFFLINE", "1")
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(out.stdout.trim_ascii()).unwrap();
    assert_eq!(v["rows"].as_u64().unwrap(), files);
    assert_eq!(
        v["columns"],
        serde_json::json!([
            "text",
            "component",
            "language",
            "license",
            "stars",
            "path",
            "repo"
        ])
    );
    assert_eq!(
        v["components"],
        serde_json::json!(["docs", "python", "rust"])
    );
}

/// The markers a mix in progress has written in `DIR/.mix-work` (the
/// spill's and one per finished shard).
fn mix_markers(out: &Path) -> usize {
    std::fs::read_dir(out.join(".mix-work")).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".done"))
        })
        .count()
    })
}

/// Every file of a finished mix, by name.
fn mix_files(out: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

/// `mix` killed with SIGKILL while it samples, spills and writes shards,
/// then run again: the same bytes as a run never interrupted, and a killed
/// run never leaves a partial shard under its final name.
#[test]
fn killed_mix_resumes_to_the_same_bytes() {
    let t = TestDir::new();
    jsonl_source(&t.join("in/python.jsonl"), "python", 3000);
    jsonl_source(&t.join("in/rust.jsonl"), "rust", 2000);
    parquet_source(&t.join("in/docs.parquet"), 1000);
    // About 40 shards, so kills land between shards as well as inside one.
    std::fs::write(
        t.join("plan.toml"),
        plan(100_000, "parquet", 1.0).replace("shard_tokens = 20_000", "shard_tokens = 2_500"),
    )
    .unwrap();
    mix(&t, "clean", 0);
    let want = mix_files(&t.join("clean"));
    let shards = report(&t.join("clean"))["shards"].as_array().unwrap().len();
    assert!(shards >= 30, "{shards} shards");

    // Kill after 0 markers (scan or spill), the spill's, and some shard
    // markers.
    let points = [0usize, 1, 5, shards / 2];
    let mut landed = Vec::new();
    for (i, k) in points.iter().enumerate() {
        let out = format!("k{i}");
        let mut child = mix_cmd(&t, &out)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let dir = t.join(&out);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        // With 0, wait until the work directory exists: the run is past
        // parsing the plan and inside the scan or the spill.
        while std::time::Instant::now() < deadline
            && (if *k == 0 {
                !dir.join(".mix-work").exists()
            } else {
                mix_markers(&dir) < *k
            })
        {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        let seen = mix_markers(&dir);
        landed.push((seen, status.success()));
        // Whatever the kill left under a final name is complete.
        if dir.exists() {
            for (name, bytes) in mix_files(&dir) {
                if name.starts_with("train-") {
                    assert_eq!(
                        Some(&bytes),
                        want.get(&name),
                        "{name} after a kill at {seen} markers"
                    );
                }
            }
        }
        run_expect(&mut mix_cmd(&t, &out), 0);
        let got = mix_files(&dir);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "killed after {seen} markers (aimed at {k})"
        );
        for (name, bytes) in &want {
            assert!(
                got[name] == *bytes,
                "{name} differs after a kill at {seen} markers (aimed at {k})"
            );
        }
        assert!(!dir.join(".mix-work").exists());
    }
    // The kills landed before the spill was done and between shards.
    assert!(landed.iter().any(|&(m, ok)| m == 0 && !ok), "{landed:?}");
    assert!(
        landed.iter().any(|&(m, ok)| m > 1 && m <= shards && !ok),
        "{landed:?}"
    );
}
