//! The tool attacked with bad input, bad flags and hostile conditions, on
//! the real binary in a temporary directory: every case must end in either
//! a valid (possibly empty) result or a clear error naming the file, the
//! problem and what to do, never a panic, a corrupt file or a silent loss.

mod common;

use common::{run_expect, sample, TestDir};
use std::path::{Path, PathBuf};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `curate` on `in/` with the sample's content store, decontamination off,
/// and `extra` flags.
fn curate(t: &TestDir, extra: &[&str]) -> std::process::Command {
    let mut c = t.curate_sample(&["--decontaminate", "off"]);
    c.args(extra);
    c
}

/// The sample copied into `t/in` under `names`.
fn shards(t: &TestDir, names: &[&str]) {
    t.copy_sample_shards(names);
}

fn assert_no_file_under(dir: &Path) {
    assert!(!dir.exists(), "{} was created", dir.display());
}

// ------------------------------------------------ empty shards and parts

/// Shards with no surviving record (every file below `--min-stars`, or a
/// 0-byte file) give valid empty parts: phase 2 reads them, the run exits 0.
#[test]
fn shards_without_survivors_and_empty_files_give_a_valid_run() {
    let t = TestDir::new();
    shards(&t, &["a.parquet", "b.parquet"]);
    std::fs::write(t.join("in/c.jsonl"), b"").unwrap();
    let out = run_expect(
        &mut curate(&t, &["--language", "python", "--min-stars", "100000"]),
        0,
    );
    let err = stderr(&out);
    assert!(!err.contains("zstd"), "{err}");
    assert_eq!(
        std::fs::read(t.join("out/python_curated.jsonl")).unwrap(),
        b""
    );
    // Beside good shards, the empty file only adds nothing.
    let t2 = TestDir::new();
    shards(&t2, &["a.parquet"]);
    std::fs::write(t2.join("in/c.jsonl"), b"").unwrap();
    run_expect(
        &mut curate(&t2, &["--language", "python", "--min-stars", "0"]),
        0,
    );
    let kept = common::read_jsonl(&t2.join("out/python_curated.jsonl"));
    assert!(kept.len() > 100, "{}", kept.len());
}

#[test]
fn unknown_language_is_refused_up_front_with_the_list() {
    let t = TestDir::new();
    shards(&t, &["a.parquet"]);
    let err = stderr(&run_expect(&mut curate(&t, &["--language", "klingon"]), 2));
    assert!(
        err.contains("tritter-gpu: unknown language \"klingon\""),
        "{err}"
    );
    assert!(err.contains("python") && err.contains("rust"), "{err}");
    assert_no_file_under(&t.join("work"));
    assert_no_file_under(&t.join("out"));
    // Aliases and the datasets' spellings are accepted.
    run_expect(&mut curate(&t, &["--language", "Python", "--dry-run"]), 0);
}

#[test]
fn contradictory_thresholds_are_refused_up_front() {
    let t = TestDir::new();
    shards(&t, &["a.parquet"]);
    let err = stderr(&run_expect(
        &mut curate(
            &t,
            &[
                "--language",
                "python",
                "--min-lines",
                "100",
                "--max-lines",
                "10",
            ],
        ),
        2,
    ));
    assert!(
        err.contains("--min-lines 100 is above --max-lines 10"),
        "{err}"
    );
    assert_no_file_under(&t.join("work"));
}

// ------------------------------------------- decontamination never silent

/// `curate` with decontamination on (the default) in `cwd`, the sample in
/// `t/in`.
fn curate_decontam(t: &TestDir, cwd: &Path, extra: &[&str]) -> std::process::Command {
    let (_, content) = sample();
    let mut c = t.cmd();
    c.current_dir(cwd)
        .args(["--backend", "cpu", "curate", "--source"])
        .arg(t.join("in"))
        .arg("--content-store")
        .arg(content)
        .args(["--language", "python", "--min-stars", "0", "--output"])
        .arg(t.join("out"))
        .arg("--work-dir")
        .arg(t.join("work"))
        .args(extra);
    c
}

#[test]
fn invalid_decontamination_flags_are_errors_not_a_skip() {
    let t = TestDir::new();
    shards(&t, &["a.parquet"]);
    for (flags, says) in [
        (
            &["--decontam-ngram", "0"][..],
            "--decontam-ngram must be between 1 and 64",
        ),
        (
            &["--decontam-ngram", "65"][..],
            "--decontam-ngram must be between 1 and 64",
        ),
        (
            &["--min-matches", "0"][..],
            "--min-matches must be at least 1",
        ),
    ] {
        let err = stderr(&run_expect(&mut curate_decontam(&t, t.path(), flags), 2));
        assert!(err.contains(says), "{flags:?}: {err}");
        assert!(!err.contains("decontamination skipped"), "{err}");
        assert_no_file_under(&t.join("out"));
    }
}

/// A corrupt benchmark file in `$TRITTER_BENCHMARK_DIR` or in the default
/// `../shared/benchmarks` stops the run naming the file; only a setup with
/// no benchmarks at all skips decontamination (with a warning).
#[test]
fn a_corrupt_benchmark_file_is_an_error_naming_it() {
    let t = TestDir::new();
    shards(&t, &["a.parquet"]);
    let bench = t.join("shared/benchmarks");
    std::fs::create_dir_all(&bench).unwrap();
    std::fs::create_dir_all(t.join("run")).unwrap();
    std::fs::write(bench.join("HumanEval.jsonl.gz"), b"this is not gzip at all").unwrap();
    let mut from_env = curate_decontam(&t, t.path(), &[]);
    from_env.env("TRITTER_BENCHMARK_DIR", &bench);
    let by_default = curate_decontam(&t, &t.join("run"), &[]);
    for mut cmd in [from_env, by_default] {
        let err = stderr(&run_expect(&mut cmd, 2));
        assert!(err.contains("HumanEval.jsonl.gz"), "{err}");
        assert!(!err.contains("decontamination skipped"), "{err}");
        assert_no_file_under(&t.join("out"));
    }
    // No benchmark at all: skipped, said so, and the run completes.
    std::fs::remove_dir_all(t.join("shared")).unwrap();
    let err = stderr(&run_expect(
        &mut curate_decontam(&t, &t.join("run"), &[]),
        0,
    ));
    assert!(err.contains("decontamination skipped"), "{err}");
}

// ------------------------------------------- our own disk is not an input

/// A tmpfs mounted at a path for one test, unmounted when dropped. Tests run
/// as root in CI and here, so a read-only or full disk cannot be made with
/// permissions; a mount can. `None` (the test prints that it was skipped)
/// where mounting is refused.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, options: &str, test: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Mount(at.to_path_buf())),
            Ok(o) => {
                println!(
                    "skipped {test}: cannot mount a tmpfs here: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("skipped {test}: cannot run mount: {e}");
                None
            }
        }
    }

    fn remount(&self, options: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount {options}");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// A work disk that fills up mid-run stops the run even with
/// `--keep-going` (no shard skipped as "unreadable"), names the path and
/// what to do; once space is freed the same command finishes with the
/// output of a run that never ran out.
#[test]
fn a_full_work_disk_stops_the_run_even_with_keep_going() {
    let t = TestDir::new();
    let Some(disk) = Mount::tmpfs(
        &t.join("work"),
        "size=400k",
        "a_full_work_disk_stops_the_run_even_with_keep_going",
    ) else {
        return;
    };
    shards(&t, &["a.parquet", "b.parquet", "c.parquet", "d.parquet"]);
    let flags = ["--language", "python", "--min-stars", "0", "--keep-going"];
    let err = stderr(&run_expect(&mut curate(&t, &flags), 2));
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("/work/") || err.contains("work/"), "{err}");
    assert!(err.contains("free space on that disk"), "{err}");
    assert!(!err.contains("pass --keep-going"), "{err}");
    assert!(!err.contains("skipping"), "{err}");
    assert!(!t.join("out/python_curated.jsonl").exists());
    disk.remount("size=64m");
    resumes_with_the_uninterrupted_bytes(
        &t,
        &["a.parquet", "b.parquet", "c.parquet", "d.parquet"],
        &flags,
    );
}

/// Reruns the command that stopped in `t` and compares its curated file
/// with that of a fresh run over the same `shards` that never stopped.
fn resumes_with_the_uninterrupted_bytes(t: &TestDir, names: &[&str], flags: &[&str]) {
    run_expect(&mut curate(t, flags), 0);
    let reference = TestDir::new();
    shards(&reference, names);
    run_expect(&mut curate(&reference, flags), 0);
    assert!(
        std::fs::read(t.join("out/python_curated.jsonl")).unwrap()
            == std::fs::read(reference.join("out/python_curated.jsonl")).unwrap(),
        "the resumed run differs from an uninterrupted one"
    );
}

/// An output disk that fills up while the curated file is written (its
/// pieces land at their offsets from several threads) stops the run naming
/// the file and what to do, and leaves no partial file; once space is freed
/// the same command finishes with the bytes of a run that never ran out.
#[test]
fn a_full_output_disk_names_the_curated_file_and_resumes() {
    let t = TestDir::new();
    let Some(disk) = Mount::tmpfs(
        &t.join("out"),
        "size=8k",
        "a_full_output_disk_names_the_curated_file_and_resumes",
    ) else {
        return;
    };
    shards(&t, &["a.parquet", "b.parquet"]);
    let flags = ["--language", "python", "--min-stars", "0", "--threads", "2"];
    let err = stderr(&run_expect(&mut curate(&t, &flags), 2));
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains("python_curated.jsonl"), "{err}");
    assert!(err.contains("free space on that disk"), "{err}");
    let left: Vec<_> = std::fs::read_dir(t.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !left.iter().any(|n| n.to_string_lossy().contains("curated")),
        "{left:?}"
    );
    disk.remount("size=64m");
    resumes_with_the_uninterrupted_bytes(&t, &["a.parquet", "b.parquet"], &flags);
}

/// An `--output` on a read-only disk is refused before any work.
#[test]
fn an_unwritable_output_is_found_at_the_start() {
    let t = TestDir::new();
    let Some(_ro) = Mount::tmpfs(
        &t.join("out"),
        "ro,size=64k",
        "an_unwritable_output_is_found_at_the_start",
    ) else {
        return;
    };
    shards(&t, &["a.parquet"]);
    let err = stderr(&run_expect(
        &mut curate(&t, &["--language", "python", "--min-stars", "0"]),
        2,
    ));
    assert!(err.contains("--output out is not writable"), "{err}");
    assert!(err.contains("Read-only file system"), "{err}");
    assert!(err.contains("remount it read-write"), "{err}");
    assert_no_file_under(&t.join("work"));
}

// ------------------------------------------------------ work-dir lock

/// A second run on a work dir in use is refused with the first one's PID,
/// before it touches anything; the lock goes when its holder dies.
#[test]
fn a_second_run_on_a_busy_work_dir_is_refused_with_the_holders_pid() {
    let t = TestDir::new();
    shards(
        &t,
        &[
            "a.parquet",
            "b.parquet",
            "c.parquet",
            "d.parquet",
            "e.parquet",
            "f.parquet",
        ],
    );
    let flags = ["--language", "python", "--min-stars", "0"];
    let mut first = curate(&t, &flags)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = t.join("work/lock");
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.starts_with("PID")) {
        assert!(
            start.elapsed().as_secs() < 60,
            "the first run never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let second = curate(&t, &flags).output().unwrap();
    let still_running = first.try_wait().unwrap().is_none();
    let err = stderr(&second);
    if still_running {
        assert_eq!(second.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("is in use by PID {} (curate)", first.id())),
            "{err}"
        );
        assert!(err.contains("another --work-dir"), "{err}");
    } else {
        println!("the first run finished before the second started: only the end is checked");
    }
    assert!(first.wait().unwrap().success());
    // A holder that died (here: killed) leaves no stale lock.
    let mut killed = curate(&t, &[&flags[..], &["--fresh"]].concat())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains(&killed.id().to_string())) {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    run_expect(&mut curate(&t, &flags), 0);
}

/// `run-step` tasks share the directory (tasks of one step run at once by
/// design) but keep out `curate`, and one task cannot run twice.
#[test]
fn run_step_tasks_share_the_work_dir_but_not_a_task() {
    use std::fs::File;
    let t = TestDir::new();
    shards(&t, &["a.parquet", "b.parquet"]);
    run_expect(
        &mut curate(
            &t,
            &["--language", "python", "--min-stars", "0", "--plan-only"],
        ),
        0,
    );
    // Another process's shared lock, as a running run-step task holds it.
    let shared = File::open(t.join("work/lock")).unwrap();
    shared.lock_shared().unwrap();
    let err = stderr(&run_expect(
        &mut curate(&t, &["--language", "python", "--min-stars", "0"]),
        2,
    ));
    assert!(err.contains("is in use by run-step tasks"), "{err}");
    let step = |task: &str| {
        let mut c = t.cmd();
        c.args([
            "run-step",
            "--work-dir",
            "work",
            "--step",
            "shards",
            "--task",
            task,
        ]);
        c
    };
    run_expect(&mut step("0"), 0);
    // Task 1 held by another process: refused, naming it.
    std::fs::create_dir_all(t.join("work/locks")).unwrap();
    let task = File::create(t.join("work/locks/shards-1.lock")).unwrap();
    task.lock().unwrap();
    std::fs::write(t.join("work/locks/shards-1.lock"), "PID 4242 (run-step)\n").unwrap();
    let err = stderr(&run_expect(&mut step("1"), 2));
    assert!(
        err.contains("task 1 of step shards") && err.contains("PID 4242"),
        "{err}"
    );
    drop(task);
    run_expect(&mut step("1"), 0);
    drop(shared);
}

// ------------------------------------- dedup / decontaminate input lines

fn tool_record(text: &str, path: &str) -> String {
    serde_json::json!({
        "text": text, "language": "python", "license": "mit", "stars": 3,
        "path": path, "repo": "o/r"
    })
    .to_string()
}

/// A tool-schema JSONL with CRLF line ends and one line that is not UTF-8
/// between two good ones; the good lines, as they should come out.
fn crlf_input_with_a_bad_line(t: &TestDir) -> Vec<u8> {
    let a = tool_record(
        &(0..20)
            .map(|i| format!("alpha_{i} = {i} * 3\n"))
            .collect::<String>(),
        "a.py",
    );
    let b = tool_record(
        &(0..20)
            .map(|i| format!("def beta_{i}(): return {i}\n"))
            .collect::<String>(),
        "b.py",
    );
    let mut input = Vec::new();
    input.extend_from_slice(a.as_bytes());
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(b"{\"text\": \"caf\xe9\", \"path\": \"bad.py\"}\r\n");
    input.extend_from_slice(b.as_bytes());
    input.extend_from_slice(b"\r\n");
    std::fs::write(t.join("in.jsonl"), &input).unwrap();
    format!("{a}\r\n{b}\r\n").into_bytes()
}

/// `dedup` and `decontaminate`: a line that is not UTF-8 is a bad line
/// (counted, exit 1), not the end of the run; CRLF lines come out with their
/// bytes unchanged.
#[test]
fn dedup_and_decontaminate_skip_invalid_utf8_lines_and_keep_crlf() {
    let t = TestDir::new();
    let expected = crlf_input_with_a_bad_line(&t);
    let bench = common::write_benchmark_fixtures(&t.join("bench"));
    let runs: [(&str, Vec<&str>); 2] = [
        ("dedup", vec!["--stats", "dedup.stats.json"]),
        (
            "decontaminate",
            vec!["--benchmark-dir", bench.to_str().unwrap()],
        ),
    ];
    for (command, extra) in runs {
        let out_name = format!("{command}.jsonl");
        let out = t
            .cmd()
            .args([
                "--backend",
                "cpu",
                command,
                "--input",
                "in.jsonl",
                "--output",
                &out_name,
            ])
            .args(&extra)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(2), "{command}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains("line 2"),
            "{command} names the bad line: {err}"
        );
        assert!(
            std::fs::read(t.join(&out_name)).unwrap() == expected,
            "{command} changed the bytes of the good lines"
        );
    }
}

/// The stats files of `dedup` and `decontaminate` carry real retention
/// percentages, as curate's do.
#[test]
fn dedup_and_decontaminate_stats_have_real_retention() {
    let t = TestDir::new();
    let text: String = (0..20).map(|i| format!("gamma_{i} = {i} + 1\n")).collect();
    let lines = [
        tool_record(&text, "a.py"),
        tool_record(&text, "b.py"),
        tool_record(&text.replace("gamma", "delta"), "c.py"),
    ];
    std::fs::write(t.join("in.jsonl"), lines.join("\n") + "\n").unwrap();
    run_expect(
        t.cmd().args([
            "--backend",
            "cpu",
            "dedup",
            "--input",
            "in.jsonl",
            "--output",
            "o.jsonl",
            "--stats",
            "d.json",
        ]),
        0,
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("d.json")).unwrap()).unwrap();
    assert_eq!(
        s["stats"]["stages"]["near_dedup"]["retention_pct"], 66.7,
        "{s}"
    );
    assert_eq!(s["stats"]["stages"]["read"]["retention_pct"], 100.0, "{s}");
    let bench = common::write_benchmark_fixtures(&t.join("bench"));
    run_expect(
        t.cmd()
            .args([
                "--backend",
                "cpu",
                "decontaminate",
                "--input",
                "in.jsonl",
                "--output",
            ])
            .args(["o2.jsonl", "--stats", "c.json", "--benchmark-dir"])
            .arg(bench),
        0,
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("c.json")).unwrap()).unwrap();
    assert_eq!(
        s["stats"]["stages"]["decontam"]["retention_pct"], 100.0,
        "{s}"
    );
}

// ------------------------------------------------------ output modes

/// Outputs get the mode the umask gives new files (0640 under umask 027),
/// not the temporary file's 0600.
#[test]
fn outputs_respect_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let t = TestDir::new();
    shards(&t, &["a.parquet"]);
    let mut c = curate(&t, &["--language", "python", "--min-stars", "0"]);
    // SAFETY: umask is async-signal-safe and touches only the child.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o027);
            Ok(())
        });
    }
    run_expect(&mut c, 0);
    for f in ["python_curated.jsonl", "python_curated.stats.json"] {
        let mode = std::fs::metadata(t.join("out").join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640, "{f}: {:o}", mode & 0o777);
    }
}

// ------------------------------------------------------------ bad flags

#[test]
fn negative_numbers_and_absurd_thread_counts_are_clear_errors() {
    let t = TestDir::new();
    for (args, says) in [
        (
            &["curate", "--min-stars", "-1"][..],
            "--min-stars -1: negative numbers are not accepted",
        ),
        (
            &[
                "dedup",
                "--input",
                "x",
                "--output",
                "y",
                "--jaccard",
                "-0.5",
            ][..],
            "--jaccard -0.5: negative numbers are not accepted",
        ),
        (
            &["--threads", "100000", "subsets"][..],
            "--threads 100000 is more than this machine can use",
        ),
        (
            &["--threads", "0", "subsets"][..],
            "--threads must be at least 1",
        ),
    ] {
        let out = run_expect(t.cmd().args(args), 2);
        let err = stderr(&out);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(err.starts_with("tritter-gpu: "), "{err}");
    }
}

// -------------------------------------------------------- corrupt inputs

/// A corrupt page in the middle of a Parquet file is reported with its row
/// group and rows, not "near row 0".
#[test]
fn a_corrupt_parquet_page_names_its_row_group() {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use tritter_gpu::sources::writer::{write_shard, SourceFile, WriteOptions};
    use tritter_gpu::sources::SchemaKind;
    let t = TestDir::new();
    let files: Vec<SourceFile> = (0..40)
        .map(|i| {
            let text: String = (0..15)
                .map(|l| format!("value_{i}_{l} = {l} * {i}\n"))
                .collect();
            let mut f = SourceFile::new(&format!("m/f{i}.py"), "o/r", "Python", &text);
            f.licenses = vec!["mit".into()];
            f.stars = Some(500);
            f
        })
        .collect();
    let path = t.join("in/a.parquet");
    std::fs::create_dir_all(t.join("in")).unwrap();
    let opts = WriteOptions {
        row_group_rows: 10,
        ..WriteOptions::default()
    };
    write_shard(&path, SchemaKind::StackV1, &files, opts).unwrap();
    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(reader.metadata().num_row_groups(), 4);
    let rg = reader.metadata().row_group(2);
    let (start, len) = (0..rg.num_columns())
        .map(|c| rg.column(c).byte_range())
        .max_by_key(|r| r.1)
        .unwrap();
    drop(reader);
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[start as usize..(start + len) as usize] {
        *b = 0xA5;
    }
    std::fs::write(&path, bytes).unwrap();
    let mut c = t.cmd();
    c.args([
        "--backend",
        "cpu",
        "curate",
        "--source",
        "in",
        "--output",
        "out",
    ])
    .args([
        "--language",
        "python",
        "--min-stars",
        "0",
        "--decontaminate",
        "off",
    ]);
    let err = stderr(&run_expect(&mut c, 2));
    assert!(err.contains("a.parquet"), "{err}");
    assert!(err.contains("row group 2 of 4 (rows 20..30)"), "{err}");
}

/// A JSONL shard whose first object omits a nullable key (The Stack v1's
/// `max_stars_count`) is read with the schema of its first objects
/// together, not refused for a "missing column".
#[test]
fn a_jsonl_schema_comes_from_the_first_objects_not_the_first_only() {
    let t = TestDir::new();
    std::fs::create_dir_all(t.join("in")).unwrap();
    let lines: Vec<String> = (0..3)
        .map(|i| {
            let text: String = (0..15)
                .map(|l| {
                    format!("def compute_total_{i}_{l}(values):\n    return sum(values) + {l}\n")
                })
                .collect();
            let mut r = serde_json::json!({
                "content": text, "lang": "Python", "max_stars_repo_path": format!("p/f{i}.py"),
                "max_stars_repo_name": "o/r", "max_stars_repo_licenses": ["mit"],
                "max_stars_count": 500 + i, "hexsha": format!("{i:040x}"), "size": 100, "ext": "py"
            });
            if i == 0 {
                r.as_object_mut().unwrap().remove("max_stars_count");
            }
            r.to_string()
        })
        .collect();
    std::fs::write(t.join("in/a.jsonl"), lines.join("\n") + "\n").unwrap();
    let mut c = t.cmd();
    c.args([
        "--backend",
        "cpu",
        "curate",
        "--source",
        "in",
        "--output",
        "out",
    ])
    .args([
        "--language",
        "python",
        "--min-stars",
        "0",
        "--decontaminate",
        "off",
    ]);
    run_expect(&mut c, 0);
    let kept = common::read_jsonl(&t.join("out/python_curated.jsonl"));
    assert_eq!(kept.len(), 3, "{kept:?}");
    assert_eq!(kept[1]["stars"], 501);
}

/// Probing adapters (`--backend auto`) prints nothing of the drivers': no
/// "XDG_RUNTIME_DIR is invalid" from Mesa on a machine without a session.
#[test]
fn the_adapter_probe_does_not_print_driver_notices() {
    let t = TestDir::new();
    shards(&t, &["a.parquet"]);
    let (_, content) = sample();
    let mut c = t.cmd();
    c.env_remove("XDG_RUNTIME_DIR")
        .args([
            "--backend",
            "auto",
            "curate",
            "--source",
            "in",
            "--content-store",
        ])
        .arg(content)
        .args([
            "--output",
            "out",
            "--language",
            "python",
            "--min-stars",
            "0",
        ]);
    let err = stderr(&run_expect(&mut c, 0));
    assert!(!err.contains("XDG_RUNTIME_DIR"), "{err}");
    assert!(err.contains("tritter-gpu: backend:"), "{err}");
}
