//! Token counts equal OpenAI's Python `tiktoken` on real files.
//!
//! `tests/data/tiktoken_reference.json` holds, for files of the Python
//! standard library, crate sources and license texts, their sha256 and the
//! `encode_ordinary` counts that `scripts/tiktoken_reference.py` got from
//! tiktoken. A file absent on this machine, or with other bytes (another
//! Python or crate version), is skipped with a message; at least one file
//! must be compared, or the test fails rather than pass on nothing.

mod common;

use common::{run_expect, TestDir};
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn resolve(path: &str) -> PathBuf {
    match path.strip_prefix("~/") {
        Some(rest) => PathBuf::from(std::env::var("HOME").expect("HOME")).join(rest),
        None => PathBuf::from(path),
    }
}

/// The reference files present here with the same bytes, with their rows.
fn present_files() -> Vec<(PathBuf, serde_json::Value)> {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiktoken_reference.json"),
    )
    .expect("tests/data/tiktoken_reference.json");
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for row in reference["files"].as_array().unwrap() {
        let path = resolve(row["path"].as_str().unwrap());
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("skip {}: absent on this machine", path.display());
            continue;
        };
        if hex::encode(Sha256::digest(&bytes)) != row["sha256"].as_str().unwrap() {
            eprintln!("skip {}: other bytes than the reference's", path.display());
            continue;
        }
        out.push((path, row.clone()));
    }
    out
}

fn check(encoding: &str) {
    let files = present_files();
    if files.is_empty() {
        // The reference was made on the build machine; elsewhere nothing
        // may match. Say so loudly instead of passing silently.
        eprintln!("SKIP: no reference file present with the same bytes on this machine");
        return;
    }
    let dir = TestDir::new();
    let mut cmd = dir.cmd();
    cmd.args(["tokens", "--tokenizer", encoding]);
    for (p, _) in &files {
        cmd.arg(p);
    }
    let out = run_expect(&mut cmd, 0);
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len());
    for ((path, row), got) in files.iter().zip(&lines) {
        assert_eq!(
            got["tokens"],
            row[encoding],
            "{encoding} tokens of {}",
            path.display()
        );
        assert_eq!(got["bytes"], row["bytes"]);
    }
    eprintln!("{encoding}: {} files equal to tiktoken", files.len());
}

#[test]
fn cl100k_base_counts_equal_tiktoken() {
    check("cl100k_base");
}

#[test]
fn o200k_base_counts_equal_tiktoken() {
    check("o200k_base");
}

#[test]
fn a_missing_tokenizer_json_is_a_clear_error() {
    let dir = TestDir::new();
    std::fs::write(dir.join("a.txt"), "hello").unwrap();
    let out = run_expect(
        dir.cmd()
            .args(["tokens", "--tokenizer", "nope/tokenizer.json", "a.txt"]),
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nope/tokenizer.json") && err.contains("no such file"),
        "{err}"
    );
}

#[test]
fn a_non_utf8_file_is_skipped_and_counted() {
    let dir = TestDir::new();
    std::fs::write(dir.join("a.txt"), "hello world").unwrap();
    std::fs::write(dir.join("b.bin"), [0xff, 0xfe, 0x00]).unwrap();
    let out = run_expect(dir.cmd().args(["tokens", "a.txt", "b.bin"]), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("b.bin: not UTF-8"), "{err}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("\"tokens\":2"), "{stdout}");
}

#[test]
fn a_tokenizer_json_path_counts_with_that_tokenizer() {
    // A minimal Hugging Face tokenizer.json written here: a word-level
    // vocabulary split on whitespace, unknown words mapping to [UNK]. Four
    // words, so four tokens, whatever cl100k_base would say.
    let dir = TestDir::new();
    let tokenizer = serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null,
        "decoder": null,
        "model": {
            "type": "WordLevel",
            "vocab": {"[UNK]": 0, "def": 1, "f": 2},
            "unk_token": "[UNK]"
        }
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
    std::fs::write(dir.join("a.py"), "def f pass_all_these_chars").unwrap();
    let out = run_expect(
        dir.cmd()
            .args(["tokens", "--tokenizer", "tokenizer.json", "a.py"]),
        0,
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("\"tokens\":3"), "{stdout}");
}

/// `dedup` counts tokens in and out of its stage: the kept and removed
/// texts' cl100k_base tokens, as the library counts them, in the stats file
/// and the retention table; `--tokens off` leaves them out.
#[test]
fn dedup_reports_tokens_in_and_out() {
    let dir = TestDir::new();
    let tok = tritter_gpu::tokens::TokenizerSpec::Cl100kBase
        .load()
        .unwrap();
    let mut lines = String::new();
    let mut total = 0;
    for i in 0..40 {
        // Pairs of near-identical files: one of each pair is removed.
        let body = format!(
            "def function_number_{}(alpha, beta):\n    gamma = alpha * beta + {}\n    return gamma - alpha\n",
            i / 2,
            i / 2
        )
        .repeat(12);
        let text = if i % 2 == 0 {
            body
        } else {
            format!("{body}# end\n")
        };
        total += tok.count(&text).unwrap();
        let row = serde_json::json!({"text": text, "language": "python", "license": "mit",
            "stars": 1, "path": format!("f{i}.py"), "repo": "o/r"});
        lines.push_str(&format!("{row}\n"));
    }
    std::fs::write(dir.join("in.jsonl"), lines).unwrap();
    let out = run_expect(
        dir.cmd().args([
            "dedup",
            "--backend",
            "cpu",
            "--input",
            "in.jsonl",
            "--output",
            "out.jsonl",
            "--stats",
            "stats.json",
            "--report-html",
            "off",
        ]),
        0,
    );
    let table = String::from_utf8_lossy(&out.stderr);
    assert!(table.contains("tokens in"), "{table}");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    let text = stats.to_string();
    let stage = find_stage(&stats, "near_dedup");
    assert_eq!(stage["tokens_in"].as_u64(), Some(total), "{text}");
    let kept: u64 = std::fs::read_to_string(dir.join("out.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            tok.count(v["text"].as_str().unwrap()).unwrap()
        })
        .sum();
    assert_eq!(stage["tokens_out"].as_u64(), Some(kept), "{text}");
    assert!(kept < total, "something was removed: {text}");

    run_expect(
        dir.cmd().args([
            "dedup",
            "--backend",
            "cpu",
            "--input",
            "in.jsonl",
            "--output",
            "out2.jsonl",
            "--stats",
            "stats2.json",
            "--report-html",
            "off",
            "--tokens",
            "off",
        ]),
        0,
    );
    let off = std::fs::read_to_string(dir.join("stats2.json")).unwrap();
    assert!(!off.contains("tokens_in"), "{off}");
}

/// Runs `curate` of `in/` into `out/` on the CPU backend without
/// decontamination or the HTML report, then `extra`, and returns its stats.
fn curate_stats(dir: &TestDir, extra: &[&str]) -> serde_json::Value {
    let mut cmd = dir.cmd();
    cmd.args([
        "curate",
        "--backend",
        "cpu",
        "--source",
        "in",
        "--output",
        "out",
    ])
    .args(["--decontaminate", "off", "--report-html", "off"])
    .args(extra);
    run_expect(&mut cmd, 0);
    serde_json::from_str(
        &std::fs::read_to_string(dir.join("out/python_curated.stats.json")).unwrap(),
    )
    .unwrap()
}

/// The stage named `name` in a stats file (stages as a list or a map).
fn find_stage(stats: &serde_json::Value, name: &str) -> serde_json::Value {
    fn walk(v: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("stage").and_then(|s| s.as_str()) == Some(name) {
                    return Some(v.clone());
                }
                m.values().find_map(|x| walk(x, name))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|x| walk(x, name)),
            _ => None,
        }
    }
    walk(stats, name).unwrap_or_else(|| panic!("no stage {name} in {stats}"))
}

/// `decontaminate` counts tokens in and out, and per drop reason.
#[test]
fn decontaminate_reports_tokens_in_and_out() {
    // As tests/decontam.rs finds them: TRITTER_TEST_BENCHMARK_DIR, else
    // ../shared/benchmarks next to the checkout.
    let bench = std::env::var_os("TRITTER_TEST_BENCHMARK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/benchmarks"))
        });
    let Ok(gz) = std::fs::File::open(bench.join("HumanEval.jsonl.gz")) else {
        eprintln!("SKIP: no benchmark copies at {}", bench.display());
        return;
    };
    use std::io::BufRead;
    let first = std::io::BufReader::new(flate2::read::GzDecoder::new(gz))
        .lines()
        .nth(10)
        .unwrap()
        .unwrap();
    let he: serde_json::Value = serde_json::from_str(&first).unwrap();
    let contaminated = format!(
        "import os\n\n{}{}\n\nprint('done')\n",
        he["prompt"].as_str().unwrap(),
        he["canonical_solution"].as_str().unwrap()
    );
    let clean = "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a + b\n".repeat(5);
    let dir = TestDir::new();
    let tok = tritter_gpu::tokens::TokenizerSpec::O200kBase
        .load()
        .unwrap();
    let mut lines = String::new();
    for (t, p) in [(&clean, "a.py"), (&contaminated, "b.py")] {
        let row = serde_json::json!({"text": t, "language": "python", "license": "mit",
            "stars": 1, "path": p, "repo": "o/r"});
        lines.push_str(&format!("{row}\n"));
    }
    std::fs::write(dir.join("in.jsonl"), lines).unwrap();
    run_expect(
        dir.cmd()
            .args([
                "decontaminate",
                "--backend",
                "cpu",
                "--input",
                "in.jsonl",
                "--output",
                "out.jsonl",
                "--stats",
                "stats.json",
                "--report-html",
                "off",
                "--tokenizer",
                "o200k_base",
                "--benchmark-dir",
            ])
            .arg(&bench),
        0,
    );
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stats.json")).unwrap()).unwrap();
    let stage = find_stage(&stats, "decontam");
    let (c, k) = (
        tok.count(&contaminated).unwrap(),
        tok.count(&clean).unwrap(),
    );
    assert_eq!(stage["tokens_in"].as_u64(), Some(c + k), "{stage}");
    assert_eq!(stage["tokens_out"].as_u64(), Some(k), "{stage}");
    let dropped_tokens: u64 = stage["dropped"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|d| d["tokens"].as_u64())
        .sum();
    assert_eq!(dropped_tokens, c, "{stage}");
}

/// `curate` counts tokens in and out of the stages of its global steps
/// (exact dedup, near dedup, decontamination): the tokens out of the last
/// stage are the tokens of the curated file, and an exact duplicate's tokens
/// are counted under its drop reason.
#[test]
fn curate_reports_tokens_of_its_global_stages() {
    use tritter_gpu::sources::writer::{write_shard, SourceFile, WriteOptions};
    use tritter_gpu::sources::SchemaKind;
    let dir = TestDir::new();
    let tok = tritter_gpu::tokens::TokenizerSpec::Cl100kBase
        .load()
        .unwrap();
    let body = |i: usize| {
        let mut s = format!("\"\"\"Module {i}.\"\"\"\nimport os\n\n");
        for f in 0..(4 + i % 5) {
            s += &format!(
                "def handler_{i}_{f}(value):\n    total = value * {f} + {i}\n    return os.path.join(str(total), 'item_{f}')\n\n"
            );
        }
        s
    };
    let mut files: Vec<SourceFile> = (0..20)
        .map(|i| {
            let mut f = SourceFile::new(
                &format!("pkg/m{i}.py"),
                &format!("o/r{i}"),
                "Python",
                &body(i),
            );
            f.licenses = vec!["mit".into()];
            f.stars = Some(100 + i as u64);
            f
        })
        .collect();
    // An exact duplicate of file 3 in another repo.
    let mut dup = SourceFile::new("pkg/copy.py", "o/copy", "Python", &body(3));
    dup.licenses = vec!["mit".into()];
    dup.stars = Some(100);
    files.push(dup);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    write_shard(
        &dir.join("in/a.parquet"),
        SchemaKind::StackV1,
        &files,
        WriteOptions::default(),
    )
    .unwrap();
    let stats = curate_stats(&dir, &[]);
    let kept: u64 = std::fs::read_to_string(dir.join("out/python_curated.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            tok.count(v["text"].as_str().unwrap()).unwrap()
        })
        .sum();
    let exact = find_stage(&stats, "exact_dedup");
    let near = find_stage(&stats, "near_dedup");
    let dup_tokens = tok.count(&body(3)).unwrap();
    assert_eq!(
        exact["dropped"]["exact_duplicate"]["tokens"].as_u64(),
        Some(dup_tokens),
        "{exact}"
    );
    assert_eq!(
        exact["tokens_in"].as_u64().unwrap(),
        exact["tokens_out"].as_u64().unwrap() + dup_tokens
    );
    assert_eq!(near["tokens_in"], exact["tokens_out"]);
    assert_eq!(near["tokens_out"].as_u64(), Some(kept), "{near}");
    // Phase 1 hands on exactly what the global steps count.
    assert_eq!(
        find_stage(&stats, "quality")["tokens_out"],
        exact["tokens_in"]
    );
}

/// `curate` counts tokens in and out of phase 1's stages too (read, metadata
/// filters, content filters), per drop reason, exactly; the counts do not
/// depend on the thread count or on how the inputs are split into shards.
#[test]
fn curate_reports_tokens_of_its_phase_one_stages() {
    use tritter_gpu::sources::writer::{write_shard, SourceFile, WriteOptions};
    use tritter_gpu::sources::SchemaKind;
    let tok = tritter_gpu::tokens::TokenizerSpec::Cl100kBase
        .load()
        .unwrap();
    let body = |i: usize| {
        let mut s = format!("\"\"\"Module {i}.\"\"\"\nimport sys\n\n");
        for f in 0..(3 + i % 4) {
            s += &format!("def run_{i}_{f}(args):\n    return sys.argv[{f}] + 'x{i}'\n\n");
        }
        s
    };
    let file = |i: usize, text: &str, license: &str| {
        let mut f = SourceFile::new(&format!("pkg/m{i}.py"), &format!("o/r{i}"), "Python", text);
        f.licenses = vec![license.into()];
        f.stars = Some(100 + i as u64);
        f
    };
    let good: Vec<String> = (0..12).map(body).collect();
    let gpl = body(100);
    let short = "x = 1\n".to_string();
    let digits = "0123456789 0123456789\n".repeat(30);
    let mut files: Vec<SourceFile> = good
        .iter()
        .enumerate()
        .map(|(i, t)| file(i, t, "mit"))
        .collect();
    files.push(file(100, &gpl, "gpl-3.0"));
    files.push(file(101, &short, "mit"));
    files.push(file(102, &digits, "mit"));
    let count = |t: &str| tok.count(t).unwrap();
    let stages_of = |dir: &TestDir, extra: &[&str]| -> serde_json::Value {
        let stats = curate_stats(dir, &[&["--near-dedup", "off"], extra].concat());
        let mut out = serde_json::Map::new();
        for s in ["read", "metadata", "basic", "quality", "exact_dedup"] {
            out.insert(s.into(), find_stage(&stats, s));
        }
        serde_json::Value::Object(out)
    };

    // One shard, many threads.
    let one = TestDir::new();
    std::fs::create_dir_all(one.join("in")).unwrap();
    write_shard(
        &one.join("in/a.parquet"),
        SchemaKind::StackV1,
        &files,
        WriteOptions::default(),
    )
    .unwrap();
    let a = stages_of(&one, &["--threads", "4"]);
    let all: u64 = files
        .iter()
        .map(|f| count(std::str::from_utf8(&f.content).unwrap()))
        .sum();
    let tok_of = |s: &str, k: &str| a[s][k].as_u64().unwrap_or_else(|| panic!("{s}.{k}: {a}"));
    assert_eq!(tok_of("read", "tokens_in"), all, "{a}");
    assert_eq!(tok_of("read", "tokens_out"), all);
    assert_eq!(tok_of("metadata", "tokens_in"), all);
    assert_eq!(tok_of("metadata", "tokens_out"), all - count(&gpl), "{a}");
    let dropped_tokens = |s: &str| -> u64 {
        a[s]["dropped"]
            .as_object()
            .unwrap()
            .values()
            .map(|d| d["tokens"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(dropped_tokens("metadata"), count(&gpl), "{a}");
    assert_eq!(
        tok_of("basic", "tokens_in"),
        tok_of("metadata", "tokens_out")
    );
    assert_eq!(dropped_tokens("basic"), count(&short), "{a}");
    assert_eq!(dropped_tokens("quality"), count(&digits), "{a}");
    let kept: u64 = good.iter().map(|t| count(t)).sum();
    assert_eq!(tok_of("quality", "tokens_out"), kept);
    assert_eq!(tok_of("exact_dedup", "tokens_in"), kept);

    // The same files in three shards, one thread: the same counts.
    let split = TestDir::new();
    std::fs::create_dir_all(split.join("in")).unwrap();
    for (k, chunk) in files.chunks(6).enumerate() {
        write_shard(
            &split.join(&format!("in/{k}.parquet")),
            SchemaKind::StackV1,
            chunk,
            WriteOptions::default(),
        )
        .unwrap();
    }
    let b = stages_of(&split, &["--threads", "1"]);
    assert_eq!(a, b);

    // An estimate is made once over the sums of all shards and output
    // tasks: the same numbers for one shard as for three, and for one output
    // file as for two.
    let est = [
        "--fresh",
        "--tokens",
        "estimate",
        "--token-sample-rate",
        "0.5",
    ];
    let ea = stages_of(&one, &est);
    let eb = stages_of(&split, &[&est[..], &["--output-shards", "2"]].concat());
    assert_eq!(ea, eb);
    let read = ea["read"]["tokens_in"].as_u64().unwrap();
    assert!(read > all / 2 && read < all * 2, "{read} vs exact {all}");
}
