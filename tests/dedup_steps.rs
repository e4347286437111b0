//! `dedup` on the partitioned steps: the same bytes as the single-process
//! driver (`--single-process`) for any partition count, thread count and
//! shard size, through a kill -9 and a rerun, and task by task with
//! `run-step`.

mod common;

use common::{run_expect, write_dedup_corpus, TestDir};
use std::process::Command;

fn dedup(dir: &TestDir, out: &str, extra: &[&str]) -> Command {
    dedup_from(dir, "in.jsonl", out, extra)
}

fn dedup_from(dir: &TestDir, input: &str, out: &str, extra: &[&str]) -> Command {
    let mut c = dir.cmd();
    c.args([
        "dedup",
        "--backend",
        "cpu",
        "--input",
        input,
        "--output",
        out,
        "--clusters",
        &format!("{out}.clusters"),
        "--stats",
        &format!("{out}.stats"),
    ]);
    c.args(extra);
    c
}

/// Output, clusters file, and the stats file's bad lines and counts.
fn results(dir: &TestDir, out: &str) -> (Vec<u8>, Vec<u8>, serde_json::Value) {
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(&format!("{out}.stats"))).unwrap()).unwrap();
    let mut counts = stats["stats"].clone();
    // Text bytes and record counts must agree; token counts too.
    counts["bad_lines"] = stats["bad_lines"].clone();
    counts["bad_lines_total"] = stats["bad_lines_total"].clone();
    counts["files_removed"] = stats["near_dedup"]["files_removed"].clone();
    counts["clusters"] = stats["near_dedup"]["clusters"].clone();
    counts["bytes_removed"] = stats["near_dedup"]["bytes_removed"].clone();
    (
        std::fs::read(dir.join(out)).unwrap(),
        std::fs::read(dir.join(&format!("{out}.clusters"))).unwrap(),
        counts,
    )
}

#[test]
fn steps_give_the_single_process_bytes_for_any_partitions_threads_and_shards() {
    let dir = TestDir::new();
    write_dedup_corpus(&dir.join("in.jsonl"), 400, 6, 7);
    run_expect(&mut dedup(&dir, "ref.jsonl", &["--single-process"]), 1);
    let reference = results(&dir, "ref.jsonl");
    assert!(reference.0.len() > 1000);
    assert_eq!(reference.2["bad_lines_total"], 6);
    assert!(reference.2["files_removed"].as_u64().unwrap() > 100);
    for (p, threads, shard) in [
        ("1", "1", "64KiB"),
        ("3", "2", "64KiB"),
        ("16", "2", "1MiB"),
        ("16", "1", "10KiB"),
        ("3", "1", "128MiB"),
    ] {
        let out = format!("p{p}-t{threads}-{shard}.jsonl");
        let mut c = dedup(&dir, &out, &["--partitions", p, "--shard-size", shard]);
        c.env("RAYON_NUM_THREADS", threads);
        let run = run_expect(&mut c, 1);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("6 lines are not valid records"), "{stderr}");
        let got = results(&dir, &out);
        assert!(got.0 == reference.0, "output differs: {out}");
        assert!(got.1 == reference.1, "clusters differ: {out}");
        assert_eq!(got.2, reference.2, "{out}");
    }
    // An estimate of the tokens is made once over every shard: the same
    // numbers as one pass over the input.
    run_expect(
        &mut dedup(
            &dir,
            "est-ref.jsonl",
            &["--single-process", "--tokens", "estimate"],
        ),
        1,
    );
    let estimate = results(&dir, "est-ref.jsonl");
    assert_eq!(
        estimate.2["notes"]["tokens_estimated"], 1,
        "{:?}",
        estimate.2
    );
    run_expect(
        &mut dedup(
            &dir,
            "est.jsonl",
            &["--tokens", "estimate", "--shard-size", "10KiB"],
        ),
        1,
    );
    assert_eq!(results(&dir, "est.jsonl"), estimate);
    // A compressed input is one shard, kept as a part.
    let plain = std::fs::read(dir.join("in.jsonl")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &plain).unwrap();
    std::fs::write(dir.join("in.jsonl.gz"), gz.finish().unwrap()).unwrap();
    run_expect(
        &mut dedup_from(&dir, "in.jsonl.gz", "gz.jsonl", &["--partitions", "3"]),
        1,
    );
    assert_eq!(results(&dir, "gz.jsonl"), reference);
    // The scratch work directory is gone.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(!name.starts_with("tritter-near-"), "{name} left behind");
    }
}

#[test]
fn a_killed_run_resumes_from_its_work_dir_with_the_same_bytes() {
    let dir = TestDir::new();
    write_dedup_corpus(&dir.join("in.jsonl"), 600, 2, 11);
    run_expect(&mut dedup(&dir, "ref.jsonl", &["--single-process"]), 1);
    let reference = results(&dir, "ref.jsonl");
    let args = [
        "--work-dir",
        "w",
        "--partitions",
        "5",
        "--shard-size",
        "32KiB",
    ];
    // Kill at growing delays: inside phase 1, inside the steps, after.
    let mut killed = 0;
    for delay_ms in [150u64, 400, 800, 1500] {
        let mut child = dedup(&dir, "out.jsonl", &args).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            killed += 1;
        }
        child.wait().unwrap();
    }
    assert!(killed > 0, "every run finished before it could be killed");
    run_expect(&mut dedup(&dir, "out.jsonl", &args), 1);
    assert_eq!(results(&dir, "out.jsonl"), reference);
    // The work dir stays; a rerun of a finished run gives the same bytes.
    assert!(dir.join("w/parts").is_dir());
    run_expect(&mut dedup(&dir, "again.jsonl", &args), 1);
    assert_eq!(results(&dir, "again.jsonl"), reference);
}

#[test]
fn plan_only_then_run_step_task_by_task_gives_the_same_bytes() {
    let dir = TestDir::new();
    write_dedup_corpus(&dir.join("in.jsonl"), 200, 0, 3);
    run_expect(&mut dedup(&dir, "ref.jsonl", &["--single-process"]), 0);
    let reference = results(&dir, "ref.jsonl");
    let out = run_expect(
        &mut dedup(
            &dir,
            "out.jsonl",
            &[
                "--work-dir",
                "w",
                "--partitions",
                "4",
                "--shard-size",
                "16KiB",
                "--plan-only",
            ],
        ),
        0,
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps: Vec<(String, u64)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["tasks"].as_u64().unwrap(),
            )
        })
        .collect();
    let names: Vec<&str> = steps.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "shards",
            "lsh",
            "verify",
            "components",
            "clusters",
            "output",
            "report"
        ]
    );
    assert!(steps[0].1 > 3, "{steps:?}");
    assert!(!dir.join("out.jsonl").exists());
    for (name, tasks) in &steps {
        // Last task first: the order of a step's tasks does not matter.
        for t in (0..*tasks).rev() {
            let mut c = dir.cmd();
            c.args(["run-step", "--work-dir", "w", "--step", name]);
            c.args(["--task", &t.to_string()]);
            run_expect(&mut c, 0);
        }
    }
    let got = results(&dir, "out.jsonl");
    assert!(got.0 == reference.0 && got.1 == reference.1);
    assert_eq!(got.2, reference.2);
}
