//! End-to-end tests of `tritter-gpu curate` (and `merge`, `subsets`): the real
//! binary on Parquet/JSONL fixtures in every schema, written by the tests.

mod common;

use common::{read_jsonl, run_datasets_script, run_expect, TestDir};
use std::path::Path;
use tritter_gpu::sources::writer::{SourceFile, WriteOptions};
use tritter_gpu::sources::SchemaKind;

/// A plausible, unique Python file of `lines` lines.
fn code(seed: usize, lines: usize) -> String {
    let mut s =
        format!("\"\"\"Module {seed}: helpers for task number {seed}.\"\"\"\nimport os\n\n");
    let mut n = 3;
    let mut f = 0;
    while n + 4 <= lines {
        s += &format!("def handler_{seed}_{f}(value):\n    total = value * {f} + {seed}\n    return os.path.join(str(total), 'item_{f}')\n\n");
        n += 4;
        f += 1;
    }
    while n < lines {
        s += &format!("# note {n} for module {seed}\n");
        n += 1;
    }
    s
}

fn file(seed: usize, lines: usize, licenses: &[&str], stars: u64) -> SourceFile {
    let mut f = SourceFile::new(
        &format!("pkg/mod_{seed}.py"),
        &format!("owner{}/repo{}", seed % 7, seed),
        "Python",
        &code(seed, lines),
    );
    f.licenses = licenses.iter().map(|s| s.to_string()).collect();
    f.stars = Some(stars);
    f
}

/// Writes a shard, creating its directory.
fn write_shard(
    path: &Path,
    schema: SchemaKind,
    files: &[SourceFile],
    opts: WriteOptions,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(path.parent().unwrap())?;
    tritter_gpu::sources::writer::write_shard(path, schema, files, opts)
}

fn v2_opts(dir: &Path) -> WriteOptions {
    WriteOptions {
        content_store: Some(dir.join("content")),
        ..Default::default()
    }
}

const KEYS: [&str; 6] = ["text", "language", "license", "stars", "path", "repo"];

/// Every line has exactly the seed's keys, in order, with the right types.
fn check_schema(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    for line in text.lines() {
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let mut sorted_expected = KEYS.to_vec();
        sorted_expected.sort();
        assert_eq!(keys, sorted_expected, "{line}");
        // Key order in the file itself is the seed's.
        let mut last = 0;
        for k in KEYS {
            let at = line.find(&format!("\"{k}\":")).unwrap();
            assert!(at >= last, "key {k} out of order in {line}");
            last = at;
        }
        assert!(
            map["text"].is_string() && map["language"].is_string() && map["license"].is_string()
        );
        assert!(map["stars"].is_u64(), "{line}");
        // SPDX ids are lowercase; several are joined with the SPDX operator AND.
        for id in map["license"].as_str().unwrap().split(" AND ") {
            assert_eq!(id, id.to_lowercase(), "{line}");
        }
    }
    read_jsonl(path)
}

fn stats(dir: &Path, language: &str) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(dir.join(format!("{language}_curated.stats.json"))).unwrap(),
    )
    .unwrap()
}

fn dropped(stats: &serde_json::Value, reason: &str) -> u64 {
    stats["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["dropped"][reason]["files"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn stack_v2_with_content_store_applies_every_filter() {
    let t = TestDir::new();
    let mut files = vec![
        file(1, 40, &["mit"], 500),               // kept
        file(2, 40, &["MIT", "Apache-2.0"], 150), // kept, two licenses
        file(3, 40, &["gpl-3.0"], 900),           // license
        file(4, 40, &["mit"], 99),                // stars
        file(5, 9, &["mit"], 500),                // 9 lines
        file(6, 10, &["mit"], 500),               // 10 lines: kept
        file(7, 40, &[], 500),                    // no license
    ];
    let mut rust = file(8, 40, &["mit"], 500);
    rust.language = "Rust".into();
    files.push(rust);
    let mut dup = file(1, 40, &["mit"], 100); // exact copy of 1 with fewer stars
    dup.repo = "mirror/copy".into();
    files.push(dup);
    let mut missing = file(9, 40, &["mit"], 500);
    missing.path = "gone.py".into();
    files.push(missing.clone());
    write_shard(
        &t.join("in/a.parquet"),
        SchemaKind::StackV2,
        &files,
        v2_opts(&t.join("in")),
    )
    .unwrap();
    std::fs::remove_file(t.join("in/content").join(missing.blob_id())).unwrap();

    let out = run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in/a.parquet",
            "--content-store",
            "in/content",
            "--language",
            "Python",
            "--output",
            "out",
            "--rejects",
            "out/rejects.jsonl",
            "--threads",
            "2",
        ]),
        0,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("overall"),
        "retention table missing: {stderr}"
    );

    let rows = check_schema(&t.join("out/python_curated.jsonl"));
    let paths: Vec<&str> = rows.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["pkg/mod_1.py", "pkg/mod_2.py", "pkg/mod_6.py"]);
    assert_eq!(
        rows[0]["repo"], "owner1/repo1",
        "the copy with more stars survives"
    );
    assert_eq!(rows[1]["license"], "apache-2.0 AND mit");
    assert_eq!(rows[0]["stars"], 500);
    assert_eq!(rows[0]["language"], "python");
    assert_eq!(rows[0]["text"], code(1, 40));

    let s = stats(&t.join("out"), "python");
    assert_eq!(dropped(&s, "license_not_permissive"), 1);
    assert_eq!(dropped(&s, "stars_too_few"), 1);
    assert_eq!(dropped(&s, "lines_too_few"), 1);
    assert_eq!(dropped(&s, "license_none"), 1);
    assert_eq!(dropped(&s, "language_mismatch"), 1);
    assert_eq!(dropped(&s, "content_blob_missing"), 1);
    assert_eq!(dropped(&s, "exact_duplicate"), 1);
    assert_eq!(s["output"]["files"], 3);

    let rejects = read_jsonl(&t.join("out/rejects.jsonl"));
    assert_eq!(
        rejects.len(),
        files.len() - 3,
        "every dropped record is in the rejects file"
    );
    assert!(rejects
        .iter()
        .any(|r| r["reason"] == "exact_duplicate" && r["repo"] == "mirror/copy"));
}

#[test]
fn stack_v1_jsonl_gz_and_stack_edu_parquet() {
    let t = TestDir::new();
    let mut v1 = vec![file(1, 30, &["mit"], 300), file(2, 30, &["mit"], 300)];
    v1[1].stars = None; // max_stars_count null
    write_shard(
        &t.join("v1/data.jsonl.gz"),
        SchemaKind::StackV1,
        &v1,
        WriteOptions::default(),
    )
    .unwrap();
    run_expect(
        t.cmd()
            .args(["curate", "--source", "v1", "--output", "out1"]),
        0,
    );
    let rows = check_schema(&t.join("out1/python_curated.jsonl"));
    assert_eq!(rows.len(), 2, "unknown stars are kept by default");
    assert_eq!(
        stats(&t.join("out1"), "python")["notes"]["stars_unknown"],
        1
    );
    run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "v1",
            "--output",
            "out1b",
            "--drop-unknown-stars",
        ]),
        0,
    );
    assert_eq!(read_jsonl(&t.join("out1b/python_curated.jsonl")).len(), 1);

    let edu = vec![
        file(3, 30, &["apache-2.0"], 0),
        file(4, 30, &["bsd-3-clause"], 0),
    ];
    write_shard(
        &t.join("edu/python.parquet"),
        SchemaKind::StackEdu,
        &edu,
        v2_opts(&t.join("edu")),
    )
    .unwrap();
    run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "edu/python.parquet",
            "--content-store",
            "edu/content",
            "--output",
            "out2",
        ]),
        0,
    );
    let rows = check_schema(&t.join("out2/python_curated.jsonl"));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["stars"], 0, "unknown stars are written as 0");
    assert_eq!(
        stats(&t.join("out2"), "python")["notes"]["stars_unknown"],
        2
    );
}

#[test]
fn own_output_can_be_chained_as_input() {
    let t = TestDir::new();
    let files: Vec<SourceFile> = (0..20).map(|i| file(i, 20 + i, &["mit"], 200)).collect();
    write_shard(
        &t.join("in/a.parquet"),
        SchemaKind::StackV1,
        &files,
        WriteOptions::default(),
    )
    .unwrap();
    run_expect(
        t.cmd()
            .args(["curate", "--source", "in", "--output", "first"]),
        0,
    );
    run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "first/python_curated.jsonl",
            "--output",
            "second",
        ]),
        0,
    );
    let a = std::fs::read(t.join("first/python_curated.jsonl")).unwrap();
    let b = std::fs::read(t.join("second/python_curated.jsonl")).unwrap();
    assert_eq!(a, b);
}

fn many_shards(t: &TestDir, shards: usize, per_shard: usize) {
    for s in 0..shards {
        let files: Vec<SourceFile> = (0..per_shard)
            .map(|i| {
                // Every 5th file repeats one of shard 0, so dedup crosses shards.
                let seed = if i % 5 == 4 { i } else { s * per_shard + i };
                let mut f = file(seed, 15 + (seed % 40), &["mit"], 100 + (s * 31 % 17) as u64);
                f.repo = format!("org/r{s}");
                f
            })
            .collect();
        write_shard(
            &t.join(&format!("in/shard-{s:03}.parquet")),
            SchemaKind::StackV1,
            &files,
            WriteOptions::default(),
        )
        .unwrap();
    }
}

#[test]
fn output_bytes_do_not_depend_on_threads_or_batch_size() {
    let t = TestDir::new();
    many_shards(&t, 4, 60);
    run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in",
            "--output",
            "a",
            "--threads",
            "1",
            "--batch-size",
            "7",
        ]),
        0,
    );
    run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in",
            "--output",
            "b",
            "--threads",
            "2",
            "--batch-size",
            "1024",
        ]),
        0,
    );
    let a = std::fs::read(t.join("a/python_curated.jsonl")).unwrap();
    assert!(!a.is_empty());
    assert_eq!(a, std::fs::read(t.join("b/python_curated.jsonl")).unwrap());
    assert!(dropped(&stats(&t.join("a"), "python"), "exact_duplicate") > 0);
}

#[test]
fn sharded_run_merged_equals_one_run() {
    let t = TestDir::new();
    many_shards(&t, 5, 30);
    run_expect(
        t.cmd()
            .args(["curate", "--source", "in", "--output", "whole"]),
        0,
    );
    for i in 0..2 {
        let slice = format!("{i}/2");
        let work = format!("w{i}");
        run_expect(
            t.cmd().args([
                "curate",
                "--source",
                "in",
                "--output",
                "unused",
                "--shard",
                &slice,
                "--work-dir",
                &work,
            ]),
            0,
        );
    }
    assert!(
        !t.join("unused/python_curated.jsonl").exists(),
        "a slice writes no output"
    );
    run_expect(
        t.cmd()
            .args(["merge", "--work-dir", "w0", "w1", "--output", "merged"]),
        0,
    );
    assert_eq!(
        std::fs::read(t.join("whole/python_curated.jsonl")).unwrap(),
        std::fs::read(t.join("merged/python_curated.jsonl")).unwrap()
    );
    // Every stage's counts, tokens included (phase 1's from the slices, the
    // global steps' counted by merge with the slices' tokenizer), equal one
    // run's.
    let whole = stats(&t.join("whole"), "python");
    assert!(
        whole["stages"][0]["tokens_in"].as_u64().unwrap() > 0,
        "{whole}"
    );
    assert_eq!(
        whole["stages"],
        stats(&t.join("merged"), "python")["stages"]
    );
    // A tokenizer other than the slices' would mix two tokenizers in one
    // table: refused, naming both.
    let out = run_expect(
        t.cmd().args([
            "merge",
            "--work-dir",
            "w0",
            "w1",
            "--output",
            "other",
            "--tokenizer",
            "o200k_base",
        ]),
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("o200k_base") && err.contains("cl100k_base"),
        "{err}"
    );
    run_expect(
        t.cmd().args([
            "merge",
            "--work-dir",
            "w0",
            "w1",
            "--output",
            "off",
            "--tokens",
            "off",
        ]),
        0,
    );
}

#[test]
fn killed_run_resumes_to_the_same_output() {
    let t = TestDir::new();
    many_shards(&t, 40, 150);
    run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in",
            "--output",
            "clean",
            "--threads",
            "1",
        ]),
        0,
    );

    let mut child = t
        .cmd()
        .args([
            "curate",
            "--source",
            "in",
            "--output",
            "out",
            "--threads",
            "1",
            "--batch-size",
            "8",
        ])
        .spawn()
        .unwrap();
    let parts = t.join("out/.work/python/parts");
    let done = || {
        std::fs::read_dir(&parts)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".done.json"))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while done() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let finished_before = done();
    assert!(
        finished_before < 40,
        "the run finished before it could be killed; make the fixture bigger"
    );
    assert!(
        !t.join("out/python_curated.jsonl").exists(),
        "a killed run leaves no output file"
    );

    let out = run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in",
            "--output",
            "out",
            "--threads",
            "2",
        ]),
        0,
    );
    assert_eq!(
        std::fs::read(t.join("clean/python_curated.jsonl")).unwrap(),
        std::fs::read(t.join("out/python_curated.jsonl")).unwrap(),
        "resumed after {finished_before} shards: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A rerun with other filters refuses the work directory.
    let out = run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in",
            "--output",
            "out",
            "--min-stars",
            "5",
        ]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fresh"));
}

#[test]
fn corrupt_inputs_stop_the_run_or_are_skipped_with_keep_going() {
    let t = TestDir::new();
    let files: Vec<SourceFile> = (0..10).map(|i| file(i, 20, &["mit"], 200)).collect();
    write_shard(
        &t.join("in/a.parquet"),
        SchemaKind::StackV1,
        &files,
        WriteOptions::default(),
    )
    .unwrap();
    let good = std::fs::read(t.join("in/a.parquet")).unwrap();
    std::fs::write(t.join("in/b.parquet"), &good[..good.len() / 2]).unwrap();
    let out = run_expect(
        t.cmd()
            .args(["curate", "--source", "in", "--output", "out"]),
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("b.parquet"), "{err}");
    assert!(!t.join("out/python_curated.jsonl").exists());

    let out = run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in",
            "--output",
            "out",
            "--keep-going",
        ]),
        1,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("b.parquet"));
    assert_eq!(read_jsonl(&t.join("out/python_curated.jsonl")).len(), 10);
    let s = stats(&t.join("out"), "python");
    assert_eq!(
        s["failed_inputs"][0]["input"].as_str().unwrap(),
        "in/b.parquet"
    );

    // A truncated gzip JSONL names the file too.
    let t2 = TestDir::new();
    write_shard(
        &t2.join("in/c.jsonl.gz"),
        SchemaKind::StackV1,
        &files,
        WriteOptions::default(),
    )
    .unwrap();
    let gz = std::fs::read(t2.join("in/c.jsonl.gz")).unwrap();
    std::fs::write(t2.join("in/c.jsonl.gz"), &gz[..gz.len() - 20]).unwrap();
    let out = run_expect(
        t2.cmd()
            .args(["curate", "--source", "in", "--output", "out"]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("c.jsonl.gz"));
}

/// Phase 1 in two lanes of shards (`--threads 2`): a corrupt shard stops the
/// run with that shard named, the other lane's finished shards stay
/// committed for the rerun, and `--keep-going` skips the corrupt shards in
/// ordinal order with the bytes a one-lane run writes.
#[test]
fn lanes_of_shards_stop_skip_and_resume_like_one_lane() {
    let t = TestDir::new();
    let names = ["a", "b", "c", "d", "e"];
    let write_all = |dir: &str| {
        for (k, n) in names.iter().enumerate() {
            let files: Vec<SourceFile> = (0..12)
                .map(|i| file(k * 100 + i, 20, &["mit"], 200 + i as u64))
                .collect();
            write_shard(
                &t.join(&format!("{dir}/{n}.parquet")),
                SchemaKind::StackV1,
                &files,
                WriteOptions::default(),
            )
            .unwrap();
        }
    };
    write_all("good");
    write_all("in");
    // Lane 0 takes a, c, e and lane 1 takes b, d: c and e are cut short.
    for n in ["c", "e"] {
        let p = t.join(&format!("in/{n}.parquet"));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    }
    let curate = |src: &str, out: &str, extra: &[&str]| -> Vec<String> {
        ["curate", "--source", src, "--output", out]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };

    let out = run_expect(
        t.cmd().args(curate("in", "stopped", &["--threads", "2"])),
        2,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("c.parquet"), "{err}");
    assert!(!err.contains("e.parquet"), "lane 0 stopped at c: {err}");
    assert!(!t.join("stopped/python_curated.jsonl").exists());
    let done: Vec<String> = std::fs::read_dir(t.join("stopped/.work/python/parts"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".done.json"))
        .collect();
    assert!(!done.is_empty(), "the finished shards stay committed");

    // --keep-going: both corrupt shards skipped, listed in ordinal order,
    // and the same bytes as one lane.
    let two = run_expect(
        t.cmd()
            .args(curate("in", "two", &["--threads", "2", "--keep-going"])),
        1,
    );
    run_expect(
        t.cmd()
            .args(curate("in", "one", &["--threads", "1", "--keep-going"])),
        1,
    );
    assert_eq!(
        String::from_utf8_lossy(&two.stderr)
            .matches("skipping")
            .count(),
        2,
        "{}",
        String::from_utf8_lossy(&two.stderr)
    );
    let failed: Vec<String> = stats(&t.join("two"), "python")["failed_inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["input"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(failed, ["in/c.parquet", "in/e.parquet"]);
    assert_eq!(
        std::fs::read(t.join("two/python_curated.jsonl")).unwrap(),
        std::fs::read(t.join("one/python_curated.jsonl")).unwrap()
    );
    assert_eq!(read_jsonl(&t.join("two/python_curated.jsonl")).len(), 36);

    // The stopped run resumes from the shards it committed (the other
    // lane's) to the bytes of the run that never stopped.
    run_expect(
        t.cmd()
            .args(curate("in", "stopped", &["--threads", "2", "--keep-going"])),
        1,
    );
    assert_eq!(
        std::fs::read(t.join("stopped/python_curated.jsonl")).unwrap(),
        std::fs::read(t.join("one/python_curated.jsonl")).unwrap()
    );
    // And the corpus without corrupt shards is the same with lanes or not.
    run_expect(
        t.cmd().args(curate("good", "good2", &["--threads", "2"])),
        0,
    );
    run_expect(
        t.cmd().args(curate("good", "good1", &["--threads", "1"])),
        0,
    );
    assert_eq!(
        std::fs::read(t.join("good2/python_curated.jsonl")).unwrap(),
        std::fs::read(t.join("good1/python_curated.jsonl")).unwrap()
    );
    assert_eq!(read_jsonl(&t.join("good1/python_curated.jsonl")).len(), 60);
}

#[test]
fn clear_errors_for_bad_setups() {
    let t = TestDir::new();
    let files = vec![file(1, 20, &["mit"], 200)];
    write_shard(
        &t.join("in/a.parquet"),
        SchemaKind::StackV2,
        &files,
        v2_opts(&t.join("in")),
    )
    .unwrap();
    let out = run_expect(
        t.cmd()
            .args(["curate", "--source", "in/a.parquet", "--output", "out"]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--content-store"));

    let out = run_expect(
        t.cmd()
            .args(["curate", "--source", "nowhere", "--output", "out"]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere"));

    std::fs::write(t.join("blocker"), "a file, not a directory").unwrap();
    let out = run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in/a.parquet",
            "--content-store",
            "in/content",
            "--output",
            "blocker/out",
        ]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("blocker"));

    let out = run_expect(
        t.cmd()
            .args(["curate", "--source", "in", "--min-alpha", "2"]),
        2,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("fraction"));
}

#[test]
fn dry_run_writes_nothing_and_max_samples_caps_the_output() {
    let t = TestDir::new();
    many_shards(&t, 3, 40);
    let out = run_expect(
        t.cmd()
            .args(["curate", "--source", "in", "--output", "out", "--dry-run"]),
        0,
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("dry run"));
    assert!(
        !t.join("out").exists(),
        "dry run created the output directory"
    );

    run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in",
            "--output",
            "out",
            "--max-samples",
            "25",
        ]),
        0,
    );
    let rows = read_jsonl(&t.join("out/python_curated.jsonl"));
    assert!(!rows.is_empty() && rows.len() <= 25, "{}", rows.len());
}

#[test]
fn subsets_lists_the_catalog() {
    let t = TestDir::new();
    for args in [vec!["subsets"], vec!["curate", "--list-subsets"]] {
        let out = run_expect(t.cmd().args(&args), 0);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Size: 233 GB")
                && text.contains("Files: 57,000,000")
                && text.contains("15.6 GB"),
            "{text}"
        );
        assert!(
            text.contains("HuggingFaceTB/stack-edu") && text.contains("bigcode/the-stack-dedup")
        );
    }
}

/// Generated HumanEval and MBPP files in `t/bench`, and the canonical
/// HumanEval/0 (prompt, solution) they hold.
fn benchmark_fixtures(t: &TestDir) -> (String, (String, String)) {
    let dir = common::write_benchmark_fixtures(&t.join("bench"));
    let he = common::fixture_humaneval(0);
    (
        dir.display().to_string(),
        (
            he["prompt"].as_str().unwrap().to_string(),
            he["canonical_solution"].as_str().unwrap().to_string(),
        ),
    )
}

#[test]
fn near_duplicates_and_benchmark_copies_are_removed_in_curate() {
    let t = TestDir::new();
    let original = code(11, 60);
    // A near-duplicate: a few lines edited.
    let edited: String = original
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i % 15 == 7 {
                format!("{l}  # tweaked\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let (bdir, (prompt, solution)) = benchmark_fixtures(&t);
    let planted = format!("{}\n{prompt}{solution}\n", code(12, 30));
    let mut files = vec![file(11, 60, &["mit"], 900), file(13, 40, &["mit"], 900)];
    let mut near = SourceFile::new("copy/near.py", "other/fork", "Python", &edited);
    near.licenses = vec!["mit".into()];
    near.stars = Some(200);
    files.push(near);
    let mut bench = SourceFile::new(
        "solutions/has_close_elements.py",
        "someone/homework",
        "Python",
        &planted,
    );
    bench.licenses = vec!["mit".into()];
    bench.stars = Some(300);
    files.push(bench);
    write_shard(
        &t.join("in/a.parquet"),
        SchemaKind::StackV1,
        &files,
        WriteOptions::default(),
    )
    .unwrap();

    run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in",
            "--output",
            "out",
            "--benchmark-dir",
            &bdir,
            "--benchmarks",
            "humaneval",
            "--clusters",
            "out/clusters.jsonl",
            "--rejects",
            "out/rejects.jsonl",
            "--backend",
            "cpu",
        ]),
        0,
    );
    let rows = check_schema(&t.join("out/python_curated.jsonl"));
    let paths: Vec<&str> = rows.iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        vec!["pkg/mod_11.py", "pkg/mod_13.py"],
        "the near copy and the benchmark file are gone"
    );
    let s = stats(&t.join("out"), "python");
    assert_eq!(dropped(&s, "minhash_near_duplicate"), 1);
    let decontam_drops: u64 = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|st| st["stage"] == "decontam")
        .map(|st| {
            st["dropped"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with("decontam_humaneval_"))
                .map(|(_, v)| v["files"].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(decontam_drops, 1, "{s}");
    assert!(s["near_dedup"].is_object() && s["decontam"].is_object());
    let clusters = read_jsonl(&t.join("out/clusters.jsonl"));
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0]["kept"]["path"], "pkg/mod_11.py");
    let rejects = read_jsonl(&t.join("out/rejects.jsonl"));
    assert!(rejects
        .iter()
        .any(|r| r["stage"] == "near_dedup" && r["path"] == "copy/near.py"));
    assert!(rejects
        .iter()
        .any(|r| r["stage"] == "decontam" && r["path"] == "solutions/has_close_elements.py"));

    // Both stages can be turned off.
    run_expect(
        t.cmd().args([
            "curate",
            "--source",
            "in",
            "--output",
            "off",
            "--near-dedup",
            "off",
            "--decontaminate",
            "off",
        ]),
        0,
    );
    assert_eq!(read_jsonl(&t.join("off/python_curated.jsonl")).len(), 4);
}

/// The curated JSONL loads with Hugging Face `datasets`, as the seed's
/// training code does. Runs where `TRITTER_PYTHON` names a Python with
/// `datasets` installed (`.ci/run` makes one); skipped, visibly, elsewhere.
#[test]
fn output_loads_with_hugging_face_datasets() {
    let Ok(python) = std::env::var("TRITTER_PYTHON") else {
        eprintln!(
            "SKIP: set TRITTER_PYTHON to a Python with `datasets` installed to run this test"
        );
        return;
    };
    let t = TestDir::new();
    let files: Vec<SourceFile> = (0..30)
        .map(|i| file(i, 12 + i, &["mit", "apache-2.0"], 100 + i as u64))
        .collect();
    write_shard(
        &t.join("in/a.parquet"),
        SchemaKind::StackV1,
        &files,
        WriteOptions::default(),
    )
    .unwrap();
    run_expect(
        t.cmd()
            .args(["curate", "--source", "in", "--output", "out"]),
        0,
    );
    let script = r#"
import json, sys
from datasets import load_dataset
ds = load_dataset("json", data_files=sys.argv[1])["train"]
stream = next(iter(load_dataset("json", data_files=sys.argv[1], streaming=True)["train"]))
print(json.dumps({"rows": ds.num_rows, "columns": ds.column_names, "stars": str(ds.features["stars"].dtype), "first": ds[0]["path"], "stream_first": stream["path"]}))
"#;
    let got = run_datasets_script(&python, &t, script, &[t.join("out/python_curated.jsonl")]);
    let rows = read_jsonl(&t.join("out/python_curated.jsonl"));
    assert_eq!(got["rows"], rows.len() as u64);
    assert_eq!(got["columns"], serde_json::json!(KEYS));
    assert_eq!(got["stars"], "int64");
    assert_eq!(got["first"], rows[0]["path"]);
    assert_eq!(got["stream_first"], rows[0]["path"]);
}
