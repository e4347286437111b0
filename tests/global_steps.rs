//! End-to-end tests of the global steps: the same bytes for any partition
//! count, thread count, output sharding, executor (the local one, or
//! `run-step` one task per process) and after `kill -9` at any point; and the
//! work directory's fingerprint covering the near-dedup and decontamination
//! settings.

mod common;

use common::{run_expect, stats_without_timings, TestDir};
use std::path::Path;
use tritter_gpu::sources::writer::{write_shard, SourceFile, WriteOptions};
use tritter_gpu::sources::SchemaKind;

fn splitmix(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Words of a document: `n` draws from a vocabulary of 3,000.
fn words(seed: u64, n: usize) -> Vec<String> {
    let mut s = seed.wrapping_mul(7919) + 1;
    (0..n)
        .map(|_| format!("w{}", splitmix(&mut s) % 3000))
        .collect()
}

/// Python-looking lines of six words each.
fn code(words: &[String]) -> String {
    words
        .chunks(6)
        .enumerate()
        .map(|(i, c)| {
            format!(
                "    value_{i} = call_{}({}, {})  # {}\n",
                c[0],
                c[1],
                c[2],
                c[3..].join(" ")
            )
        })
        .collect()
}

/// `base` with `edits` words replaced (deterministically).
fn edited(base: &[String], edits: usize, seed: u64) -> Vec<String> {
    let mut out = base.to_vec();
    let mut s = seed;
    for _ in 0..edits {
        let at = (splitmix(&mut s) % out.len() as u64) as usize;
        out[at] = format!("x{}", splitmix(&mut s) % 100_000);
    }
    out
}

fn file(path: &str, repo: &str, text: String, stars: u64) -> SourceFile {
    let mut f = SourceFile::new(path, repo, "Python", &text);
    f.licenses = vec!["mit".into()];
    f.stars = Some(stars);
    f
}

const BENCH_SOLUTION: &str = "    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n            if idx != idx2:\n                distance = abs(elem - elem2)\n                if distance < threshold:\n                    return True\n    return False\n";

/// Six shards: unique files, near-duplicate copies across shards, exact
/// copies, a chain of successive edits, files holding a benchmark solution;
/// and a user benchmark file.
fn corpus(t: &TestDir) {
    let mut shards: Vec<Vec<SourceFile>> = vec![Vec::new(); 6];
    for b in 0..60u64 {
        let base = words(b, 240);
        let shard = (b % 6) as usize;
        shards[shard].push(file(
            &format!("pkg/m{b}.py"),
            &format!("org/r{b}"),
            code(&base),
            b % 9 * 10,
        ));
        if b % 3 == 0 {
            // A near-duplicate in another shard.
            let copy = edited(&base, 6, b + 100);
            shards[(shard + 2) % 6].push(file(
                &format!("fork/m{b}.py"),
                &format!("fork/r{b}"),
                code(&copy),
                5,
            ));
        }
        if b % 7 == 0 {
            // An exact copy.
            shards[(shard + 3) % 6].push(file(
                &format!("vendor/m{b}.py"),
                &format!("v/r{b}"),
                code(&base),
                1,
            ));
        }
    }
    // A chain: each link 12% edited from the previous one.
    let mut link = words(999, 240);
    for i in 0..8u64 {
        shards[(i % 6) as usize].push(file(
            &format!("chain/c{i}.py"),
            "chain/repo",
            code(&link),
            50 - i,
        ));
        link = edited(&link, 29, 5000 + i);
    }
    for i in 0..3u64 {
        let text = format!(
            "{}def has_close_elements(numbers, threshold):\n{BENCH_SOLUTION}",
            code(&words(2000 + i, 60))
        );
        shards[(i * 2) as usize].push(file(
            &format!("hw/close{i}.py"),
            &format!("student/hw{i}"),
            text,
            3,
        ));
    }
    for (s, files) in shards.iter().enumerate() {
        std::fs::create_dir_all(t.join("in")).unwrap();
        write_shard(
            &t.join(&format!("in/shard-{s:02}.parquet")),
            SchemaKind::StackV1,
            files,
            WriteOptions::default(),
        )
        .unwrap();
    }
    let bench = serde_json::json!({"task_id": "Close/0", "prompt": "def has_close_elements(numbers, threshold):\n", "canonical_solution": BENCH_SOLUTION});
    std::fs::write(t.join("bench.jsonl"), format!("{bench}\n")).unwrap();
}

/// The curate command on the corpus, writing into `out`.
fn curate_args(out: &str) -> Vec<String> {
    [
        "--backend",
        "cpu",
        "--quiet",
        "curate",
        "--source",
        "in",
        "--language",
        "python",
        "--min-stars",
        "0",
        "--benchmarks",
        "none",
        "--benchmark-file",
        "close=bench.jsonl",
        "--fields",
        "prompt,canonical_solution",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "--output".to_string(),
        out.to_string(),
        "--rejects".to_string(),
        format!("{out}/rejects.jsonl"),
        "--clusters".to_string(),
        format!("{out}/clusters.jsonl"),
        "--report".to_string(),
        format!("{out}/decontam.jsonl"),
    ])
    .collect()
}

/// Everything a run wrote, with the stats' timings and output names removed
/// and the output shards concatenated.
fn result(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let mut out = Vec::new();
    let mut curated = Vec::new();
    for n in names {
        let bytes = std::fs::read(dir.join(&n)).unwrap();
        if n.ends_with(".report.html") {
            // The page shows the timings and the command line; its content
            // is tested in tests/report.rs.
            continue;
        }
        if n.starts_with("python_curated") && n.ends_with(".jsonl") {
            curated.extend(bytes);
        } else if n.ends_with(".stats.json") {
            out.push((n, stats_without_timings(&bytes)));
        } else {
            out.push((n, bytes));
        }
    }
    out.push(("python_curated*.jsonl".into(), curated));
    out
}

fn stats(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("python_curated.stats.json")).unwrap()).unwrap()
}

#[test]
fn partitions_threads_lanes_and_output_shards_do_not_change_the_bytes() {
    let t = TestDir::new();
    corpus(&t);
    let mut reference = curate_args("p1");
    reference.extend(["--partitions", "1", "--threads", "1"].map(String::from));
    run_expect(t.cmd().args(&reference), 0);
    let s = stats(&t.join("p1"));
    // The fixture exercises every stage.
    let dropped = |stage: &str| {
        s["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stage"] == stage)
            .unwrap()["dropped"]
            .clone()
    };
    assert!(
        dropped("exact_dedup")["exact_duplicate"]["files"]
            .as_u64()
            .unwrap()
            >= 8,
        "{s:#}"
    );
    assert!(
        dropped("near_dedup")["minhash_near_duplicate"]["files"]
            .as_u64()
            .unwrap()
            >= 15,
        "{s:#}"
    );
    assert_eq!(
        dropped("decontam")["decontam_close_exact"]["files"],
        3,
        "{s:#}"
    );
    assert!(s["near_dedup"]["components"].as_u64().unwrap() >= 20);
    for step in ["exact", "lsh", "verify", "components", "clusters", "output"] {
        assert!(
            s["step_seconds"][step]["wall_seconds"].as_f64().is_some(),
            "{step}: {s:#}"
        );
    }
    let want = result(&t.join("p1"));

    for (out, extra) in [
        ("p3", vec!["--partitions", "3", "--threads", "2"]),
        // Three lanes of shards, one thread each, six shards dealt 2-2-2.
        ("p5", vec!["--partitions", "5", "--threads", "3"]),
        (
            "p16",
            vec![
                "--partitions",
                "16",
                "--threads",
                "2",
                "--output-shards",
                "3",
            ],
        ),
        (
            "p7",
            vec![
                "--partitions",
                "7",
                "--threads",
                "1",
                "--output-shards",
                "1",
            ],
        ),
    ] {
        let mut args = curate_args(out);
        args.extend(extra.iter().map(|s| s.to_string()));
        run_expect(t.cmd().args(&args), 0);
        assert_eq!(result(&t.join(out)), want, "{extra:?}");
    }
    // Three shards of (almost) equal size, named as the data plan's single file.
    let sizes: Vec<usize> = (0..3)
        .map(|i| {
            std::fs::read_to_string(t.join(&format!("p16/python_curated-{i:05}-of-00003.jsonl")))
                .unwrap()
                .lines()
                .count()
        })
        .collect();
    assert!(
        sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
        "{sizes:?}"
    );
    assert!(!t.join("p16/python_curated.jsonl").exists());
    let s16 = stats(&t.join("p16"));
    assert_eq!(s16["output"]["shards"].as_array().unwrap().len(), 3);
}

/// Markers of finished shards and global tasks under a work directory.
fn markers(work: &Path) -> usize {
    let mut n = 0;
    let mut dirs = vec![work.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with(".done.json") {
                n += 1;
            }
        }
    }
    n
}

#[test]
fn killed_at_any_step_resumes_to_the_same_bytes() {
    let t = TestDir::new();
    corpus(&t);
    run_expect(t.cmd().args(curate_args("clean")), 0);
    let want = result(&t.join("clean"));
    // 6 shard markers, then 16 x 5 global tasks and the report: kill after a
    // spread of marker counts (pseudo-random, fixed seed).
    let mut s = 77u64;
    let mut points: Vec<usize> = (0..6)
        .map(|_| 1 + (splitmix(&mut s) % 86) as usize)
        .collect();
    points.extend([3, 7, 25, 60]);
    let mut kills = Vec::new();
    for (i, k) in points.iter().enumerate() {
        let out = format!("k{i}");
        let mut child = t.cmd().args(curate_args(&out)).spawn().unwrap();
        let work = t.join(&format!("{out}/.work/python"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while markers(&work) < *k && std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let seen = markers(&work);
        kills.push(seen);
        run_expect(t.cmd().args(curate_args(&out)), 0);
        assert_eq!(
            result(&t.join(&out)),
            want,
            "killed after {seen} markers (aimed at {k})"
        );
    }
    // Kills landed in phase 1 (fewer than 6 shard markers) and in the global
    // steps (the report's marker, the 87th, is the last).
    assert!(kills.iter().any(|&k| k < 6), "{kills:?}");
    assert!(kills.iter().any(|&k| k > 6 && k < 87), "{kills:?}");
}

#[test]
fn run_step_task_by_task_gives_the_same_bytes() {
    let t = TestDir::new();
    corpus(&t);
    let mut reference = curate_args("ref");
    reference.extend(["--partitions", "4"].map(String::from));
    run_expect(t.cmd().args(&reference), 0);
    let want = result(&t.join("ref"));

    let mut plan_args = curate_args("rs");
    plan_args.extend(["--partitions", "4", "--work-dir", "w", "--plan-only"].map(String::from));
    let planned = run_expect(t.cmd().args(&plan_args), 0);
    let plan: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "shards",
            "exact",
            "lsh",
            "verify",
            "components",
            "clusters",
            "output",
            "report"
        ]
    );
    assert_eq!(steps[0]["tasks"], 6);
    assert_eq!(steps[1]["tasks"], 4);
    assert!(
        !t.join("rs/python_curated.jsonl").exists(),
        "--plan-only runs nothing"
    );
    // The plan is also printed by run-step.
    let again = run_expect(t.cmd().args(["run-step", "--work-dir", "w", "--plan"]), 0);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&again.stdout).unwrap(),
        plan
    );

    // A later step refuses to start before the earlier one is done.
    let early = run_expect(
        t.cmd().args([
            "run-step",
            "--work-dir",
            "w",
            "--step",
            "lsh",
            "--task",
            "0",
        ]),
        2,
    );
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("not done"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    let status = |step: &str, task: u32| {
        t.cmd()
            .args([
                "run-step",
                "--work-dir",
                "w",
                "--step",
                step,
                "--task",
                &task.to_string(),
                "--status",
            ])
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(status("shards", 0), Some(1));
    for s in steps {
        let name = s["name"].as_str().unwrap();
        let tasks = s["tasks"].as_u64().unwrap();
        // Every task of a step at once, each in its own process.
        let children: Vec<_> = (0..tasks)
            .map(|i| {
                t.cmd()
                    .args([
                        "--threads",
                        "1",
                        "--backend",
                        "cpu",
                        "run-step",
                        "--work-dir",
                        "w",
                        "--step",
                        name,
                        "--task",
                        &i.to_string(),
                    ])
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            assert_eq!(
                o.status.code(),
                Some(0),
                "{name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert_eq!(status(name, 0), Some(0));
    }
    // A done task is not run again.
    run_expect(
        t.cmd().args([
            "run-step",
            "--work-dir",
            "w",
            "--step",
            "exact",
            "--task",
            "1",
        ]),
        0,
    );
    assert_eq!(result(&t.join("rs")), want);
}

#[test]
fn work_dirs_remember_the_near_dedup_and_decontamination_settings() {
    let t = TestDir::new();
    corpus(&t);
    let mut a = curate_args("o");
    a.extend(["--shard", "0/2", "--work-dir", "w0"].map(String::from));
    run_expect(t.cmd().args(&a), 0);
    // Resuming with another shingle size would mix incompatible keys.
    let mut b = a.clone();
    b.extend(["--ngram", "4"].map(String::from));
    let e = run_expect(t.cmd().args(&b), 2);
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(
        msg.contains("near-dedup settings") && msg.contains("--fresh"),
        "{msg}"
    );
    let mut c = a.clone();
    c.extend(["--decontam-ngram", "9"].map(String::from));
    let e = run_expect(t.cmd().args(&c), 2);
    assert!(String::from_utf8_lossy(&e.stderr).contains("decontamination settings"));

    // The other slice, made with other settings, cannot be merged.
    let mut d = curate_args("o");
    d.extend(["--shard", "1/2", "--work-dir", "w1", "--num-perm", "128"].map(String::from));
    run_expect(t.cmd().args(&d), 0);
    let e = run_expect(
        t.cmd()
            .args(["merge", "--work-dir", "w0", "w1", "--output", "m"]),
        2,
    );
    assert!(String::from_utf8_lossy(&e.stderr).contains("near-dedup settings"));

    // Made with the same settings, the slices merge to the bytes of one run,
    // with merge's own output files.
    let mut d = curate_args("o");
    d.extend(["--shard", "1/2", "--work-dir", "w1", "--fresh"].map(String::from));
    run_expect(t.cmd().args(&d), 0);
    run_expect(
        t.cmd().args([
            "--quiet",
            "merge",
            "--work-dir",
            "w0",
            "w1",
            "--output",
            "m",
            "--rejects",
            "m/rejects.jsonl",
            "--clusters",
            "m/clusters.jsonl",
            "--report",
            "m/decontam.jsonl",
            "--partitions",
            "5",
        ]),
        0,
    );
    run_expect(t.cmd().args(curate_args("one")), 0);
    assert_eq!(result(&t.join("m")), result(&t.join("one")));
}

/// Step `output` cuts a task's records into pieces of about 2,048 and runs
/// them in parallel: with parts of 4,200 records, exact copies, near copies
/// and contaminated files on both sides of piece boundaries, one task or
/// three (which start pieces mid-part), one thread or two, give the same
/// bytes; every dropped record is in the rejects file once, every
/// contaminated one in the decontamination log, and the file holds the
/// survivors the stats count.
#[test]
fn output_pieces_across_many_records_keep_every_verdict_and_byte() {
    output_pieces_keep_every_verdict_and_byte(4200, |_| 84);
}

/// The same with files of 2-20 KB and one of about 300 KB: pieces then end
/// at about 2 MB of text, a few hundred KB of frames apart, not at 2,048
/// records.
#[test]
fn output_pieces_of_large_files_keep_every_verdict_and_byte() {
    output_pieces_keep_every_verdict_and_byte(300, |n| match n {
        77 => 40_002,
        _ => 300 + (n % 11) as usize * 240,
    });
}

fn output_pieces_keep_every_verdict_and_byte(per_shard: u64, words_in: fn(u64) -> usize) {
    let t = TestDir::new();
    std::fs::create_dir_all(t.join("in")).unwrap();
    let mut contaminated = 0;
    // Copies of a file that is neither a copy nor contaminated.
    let mut plain_copies = 0;
    let plain = |n: u64| n <= 200 || !matches!(n % 97, 0 | 1 | 5);
    for s in 0..2u64 {
        let mut files = Vec::new();
        for i in 0..per_shard {
            let n = s * per_shard + i;
            let text = match n % 97 {
                // An exact copy of an earlier file (same text).
                0 | 1 if n > 200 => {
                    plain_copies += plain(n - 150) as u64;
                    code(&words(n - 150, words_in(n - 150)))
                }
                // Contaminated: a benchmark solution inside.
                5 => {
                    contaminated += 1;
                    format!(
                        "{}def has_close_elements(numbers, threshold):\n{BENCH_SOLUTION}",
                        code(&words(n, words_in(n) / 2))
                    )
                }
                _ => code(&words(n, words_in(n))),
            };
            files.push(file(
                &format!("p/m{n}.py"),
                &format!("o/r{}", n % 13),
                text,
                n % 17,
            ));
        }
        write_shard(
            &t.join(&format!("in/shard-{s:02}.parquet")),
            SchemaKind::StackV1,
            &files,
            WriteOptions::default(),
        )
        .unwrap();
    }
    let bench = serde_json::json!({"task_id": "Close/0", "prompt": "def has_close_elements(numbers, threshold):\n", "canonical_solution": BENCH_SOLUTION});
    std::fs::write(t.join("bench.jsonl"), format!("{bench}\n")).unwrap();

    let mut reference = curate_args("one");
    reference.extend(["--threads", "1"].map(String::from));
    run_expect(t.cmd().args(&reference), 0);
    let want = result(&t.join("one"));
    for (out, extra) in [
        ("two", vec!["--threads", "2"]),
        ("three", vec!["--threads", "2", "--output-shards", "3"]),
    ] {
        let mut args = curate_args(out);
        args.extend(extra.iter().map(|s| s.to_string()));
        run_expect(t.cmd().args(&args), 0);
        let got = result(&t.join(out));
        assert_eq!(got.len(), want.len(), "{extra:?}");
        for ((name, bytes), (want_name, want_bytes)) in got.iter().zip(&want) {
            assert_eq!(name, want_name, "{extra:?}");
            assert!(
                bytes == want_bytes,
                "{extra:?}: {name} differs ({} bytes against {})",
                bytes.len(),
                want_bytes.len()
            );
        }
    }

    let s = stats(&t.join("one"));
    let stage = |name: &str| {
        s["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["stage"] == name)
            .unwrap_or_else(|| panic!("no stage {name}: {s:#}"))
            .clone()
    };
    let dropped_at = |name: &str| -> u64 {
        stage(name)["dropped"]
            .as_object()
            .unwrap()
            .values()
            .map(|c| c["files"].as_u64().unwrap())
            .sum()
    };
    // Every record phase 1 kept reaches a verdict in step output.
    assert_eq!(
        stage("exact_dedup")["files_in"],
        stage("quality")["files_out"],
        "{s:#}"
    );
    let exact = dropped_at("exact_dedup");
    assert!(plain_copies > 0);
    assert!(exact >= plain_copies, "exact copies on many pieces: {s:#}");
    assert_eq!(dropped_at("decontam"), contaminated, "{s:#}");
    let lines = |p: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(t.join(p))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let curated = lines("one/python_curated.jsonl");
    assert_eq!(
        curated.len() as u64,
        stage("decontam")["files_out"].as_u64().unwrap(),
        "{s:#}"
    );
    // Survivors keep their input order (paths are numbered in order).
    let numbers: Vec<u64> = curated
        .iter()
        .map(|r| {
            r["path"].as_str().unwrap()[3..]
                .trim_end_matches(".py")
                .parse()
                .unwrap()
        })
        .collect();
    assert!(numbers.windows(2).all(|w| w[0] < w[1]));
    // Each global drop in the rejects file once.
    let rejects = lines("one/rejects.jsonl");
    let mut global: Vec<(String, String)> = rejects
        .iter()
        .filter(|r| {
            ["exact_dedup", "near_dedup", "decontam"].contains(&r["stage"].as_str().unwrap())
        })
        .map(|r| {
            (
                r["path"].as_str().unwrap().to_string(),
                r["stage"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let count = global.len() as u64;
    global.sort();
    global.dedup();
    assert_eq!(global.len() as u64, count, "a record rejected twice");
    let near = stage("near_dedup")["dropped"]
        .as_object()
        .map(|d| {
            d.values()
                .map(|c| c["files"].as_u64().unwrap())
                .sum::<u64>()
        })
        .unwrap_or(0);
    assert_eq!(count, exact + near + contaminated);
    assert_eq!(lines("one/decontam.jsonl").len() as u64, contaminated);
}

/// A part whose bytes changed after phase 1 (here the checksum of its last
/// frame) stops step `output` with an error naming the part; no curated
/// file is written, and the other steps' work is kept for the rerun.
#[test]
fn a_changed_part_stops_the_output_step_naming_it() {
    let t = TestDir::new();
    corpus(&t);
    let mut args = curate_args("out");
    args.extend(["--work-dir", "work", "--threads", "2"].map(String::from));
    run_expect(t.cmd().args(&args), 0);
    let want = std::fs::read(t.join("out/python_curated.jsonl")).unwrap();
    let part = t.join("work/parts/part-000000.jsonl.zst");
    let good = std::fs::read(&part).unwrap();
    let mut bad = good.clone();
    // The last frame's checksum ends the file.
    *bad.last_mut().unwrap() ^= 0x5a;
    std::fs::write(&part, &bad).unwrap();
    for f in ["task-00000.done.json", "step.json"] {
        std::fs::remove_file(t.join("work/global/output").join(f)).unwrap();
    }
    std::fs::remove_file(t.join("out/python_curated.jsonl")).unwrap();
    let run = run_expect(t.cmd().args(&args), 2);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("part-000000.jsonl.zst"), "{err}");
    assert!(!t.join("out/python_curated.jsonl").exists());
    // Put back, the rerun finishes the output alone, with the same bytes.
    std::fs::write(&part, &good).unwrap();
    run_expect(t.cmd().args(&args), 0);
    assert!(std::fs::read(t.join("out/python_curated.jsonl")).unwrap() == want);
}
