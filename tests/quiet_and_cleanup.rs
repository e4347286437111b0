//! `--quiet`, temporary files and interrupts, on the real binary:
//!
//! - with `--quiet` a successful command prints nothing at all, and a
//!   warning that is due still appears;
//! - what a killed run leaves (hidden `.NAME.HOST-PID.N.tmp` files beside
//!   outputs and in the work directory, `tritter-near-*` scratch
//!   directories) is removed by the next run when its owner is dead, and
//!   kept when it is alive;
//! - Ctrl-C (SIGINT) and SIGTERM remove the run's temporary files and exit
//!   130 and 143;
//! - progress bars are drawn on a terminal (a pty from `script`) and never
//!   with `--quiet` or into a file.

mod common;

use common::{run_expect, sample, text, write_benchmark_fixtures, TestDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Asserts `out` printed nothing, showing what it printed.
fn assert_silent(what: &str, out: &Output) {
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "{what} printed with --quiet:\n--- stdout\n{}\n--- stderr\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `n` records in the tool's schema: distinct texts of about 1 KB (seeded
/// words), every tenth one a copy of the one before (so near dedup has work).
fn write_records(path: &Path, n: usize) {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = String::new();
    let mut last = String::new();
    for i in 0..n {
        let body = if i % 10 == 9 {
            last.clone()
        } else {
            let words: Vec<String> = (0..150).map(|_| format!("w{}", next() % 5000)).collect();
            format!("def f{i}(x):\n    return x\n# {}\n", words.join(" "))
        };
        let rec = serde_json::json!({
            "text": body, "language": "python", "license": "mit", "stars": i % 7,
            "path": format!("src/f{i}.py"), "repo": format!("org/r{}", i % 13),
        });
        out.push_str(&rec.to_string());
        out.push('\n');
        last = body;
    }
    std::fs::write(path, out).unwrap();
}

fn dedup(t: &TestDir, input: &str, output: &str) -> Command {
    let mut c = t.cmd();
    c.args([
        "--backend",
        "cpu",
        "--threads",
        "2",
        "dedup",
        "--input",
        input,
        "--output",
        output,
        "--tokens",
        "off",
        "--report-html",
        "off",
    ]);
    c
}

/// Names in `dir` that are temporary files or scratch directories of ours
/// (any form).
fn leftovers(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| {
                    n.starts_with("tritter-near-") || (n.starts_with('.') && n.ends_with(".tmp"))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits until `dir` holds a `tritter-near-*` scratch directory (the run
/// is inside near dedup), panicking if `child` exits first.
fn wait_for_scratch(child: &mut Child, dir: &Path) {
    let start = Instant::now();
    while !leftovers(dir)
        .iter()
        .any(|n| n.starts_with("tritter-near-"))
    {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before near dedup started");
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no scratch directory appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A PID no process has: a child that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// The short host name as the tool writes it into its temporary names.
fn host() -> String {
    tritter_gpu::pipeline::cleanup::host().to_string()
}

// ------------------------------------------------------------ --quiet

#[test]
fn quiet_commands_print_nothing_on_success() {
    let t = TestDir::new();
    t.copy_sample_shards(&["a.parquet"]);
    let bench = write_benchmark_fixtures(&t.join("bench"));
    let curate = |extra: &[&str]| {
        let mut c = t.curate_sample(&["--language", "python", "--min-stars", "0"]);
        c.args(["--near-dedup", "on", "--benchmark-dir"])
            .arg(&bench)
            .args(extra);
        c
    };
    // Without --quiet the same run talks (the table at least): the check
    // below can fail.
    let loud = run_expect(&mut curate(&["--fresh"]), 0);
    assert!(
        text(&loud.stderr).contains("overall"),
        "{}",
        text(&loud.stderr)
    );
    let q = run_expect(&mut curate(&["--fresh", "--quiet"]), 0);
    assert_silent("curate", &q);
    // A resumed run (everything done) too.
    assert_silent("curate (resumed)", &run_expect(&mut curate(&["-q"]), 0));
    let merged = run_expect(
        t.cmd().args([
            "-q",
            "--backend",
            "cpu",
            "merge",
            "--work-dir",
            "work",
            "--output",
            "merged",
        ]),
        0,
    );
    assert_silent("merge", &merged);

    let curated = "out/python_curated.jsonl";
    let d = run_expect(dedup(&t, curated, "d.jsonl").arg("-q"), 0);
    assert_silent("dedup", &d);
    let loud = run_expect(&mut dedup(&t, curated, "d2.jsonl"), 0);
    assert!(
        text(&loud.stderr).contains("backend"),
        "{}",
        text(&loud.stderr)
    );

    let dc = run_expect(
        t.cmd()
            .args([
                "-q",
                "--backend",
                "cpu",
                "decontaminate",
                "--input",
                curated,
            ])
            .args(["--output", "c.jsonl", "--benchmark-dir"])
            .arg(&bench),
        0,
    );
    assert_silent("decontaminate", &dc);

    let r = run_expect(
        t.cmd().args([
            "-q",
            "report",
            "out/python_curated.stats.json",
            "--output",
            "page.html",
        ]),
        0,
    );
    assert_silent("report", &r);
    assert!(t.join("page.html").is_file());
}

#[test]
fn quiet_keeps_warnings_and_errors() {
    let t = TestDir::new();
    t.copy_sample_shards(&["a.parquet"]);
    // No benchmarks anywhere: decontamination is skipped with a warning.
    let out = run_expect(
        &mut t.curate_sample(&[
            "-q",
            "--language",
            "python",
            "--min-stars",
            "0",
            "--report-html",
            "off",
        ]),
        0,
    );
    let err = text(&out.stderr);
    assert!(err.contains("warning: decontamination skipped"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // A bad input line: dedup exits 1 and says so, quiet or not.
    write_records(&t.join("in.jsonl"), 30);
    let mut bytes = std::fs::read(t.join("in.jsonl")).unwrap();
    bytes.extend_from_slice(b"{not json\n");
    std::fs::write(t.join("in.jsonl"), bytes).unwrap();
    let out = run_expect(dedup(&t, "in.jsonl", "out.jsonl").arg("-q"), 1);
    let err = text(&out.stderr);
    assert!(err.contains("lines are not valid records"), "{err}");
    assert!(out.stdout.is_empty());
    // An error, with --quiet, still names the problem.
    let out = run_expect(dedup(&t, "missing.jsonl", "out.jsonl").arg("-q"), 2);
    assert!(text(&out.stderr).contains("missing.jsonl"));
}

// ------------------------------------------------- leftovers of dead runs

/// Planted leftovers: a dead owner's are removed, a live owner's and
/// another host's kept, beside a `dedup` output.
#[test]
fn a_rerun_removes_what_dead_runs_left_beside_the_output_and_nothing_else() {
    let t = TestDir::new();
    write_records(&t.join("in.jsonl"), 40);
    std::fs::create_dir_all(t.join("o")).unwrap();
    let (host, dead) = (host(), dead_pid());
    let me = std::process::id();
    let dead_file = format!(".d.jsonl.{host}-{dead}.0.tmp");
    let dead_scratch = format!("tritter-near-{host}-{dead}-2");
    let live_file = format!(".d.jsonl.{host}-{me}.0.tmp");
    let live_scratch = format!("tritter-near-{host}-{me}-5");
    let remote_file = format!(".d.jsonl.elsewhere-{dead}.0.tmp");
    for f in [&dead_file, &live_file, &remote_file] {
        std::fs::write(t.join("o").join(f), vec![b'x'; 4096]).unwrap();
    }
    for d in [&dead_scratch, &live_scratch] {
        std::fs::create_dir(t.join("o").join(d)).unwrap();
        std::fs::write(t.join("o").join(d).join("bands.run0"), "x").unwrap();
    }
    run_expect(dedup(&t, "in.jsonl", "o/d.jsonl").arg("-q"), 0);
    let mut want = vec![live_file, live_scratch, remote_file];
    want.sort();
    assert_eq!(leftovers(&t.join("o")), want);
}

/// In a work directory `curate` holds exclusively, every temporary file
/// of ours is a dead run's, whichever host wrote it, and goes.
#[test]
fn curate_clears_temporary_files_from_its_work_directory() {
    let t = TestDir::new();
    t.copy_sample_shards(&["a.parquet"]);
    let curate = || {
        t.curate_sample(&[
            "-q",
            "--language",
            "python",
            "--min-stars",
            "0",
            "--decontaminate",
            "off",
            "--report-html",
            "off",
        ])
    };
    run_expect(&mut curate(), 0);
    let want = std::fs::read(t.join("out/python_curated.jsonl")).unwrap();
    let planted = [
        format!(
            "work/parts/.part-000000.jsonl.zst.othernode-{}.3.tmp",
            std::process::id()
        ),
        "work/parts/.part-000000.keys.Ab12Cd.tmp".to_string(),
        format!("work/.manifest.json.{}-{}.0.tmp", host(), dead_pid()),
    ];
    for p in &planted {
        std::fs::write(t.join(p), "partial").unwrap();
    }
    std::fs::write(t.join("work/parts/notes.txt"), "not ours").unwrap();
    run_expect(&mut curate(), 0);
    for p in &planted {
        assert!(!t.join(p).exists(), "{p} was left");
    }
    assert!(t.join("work/parts/notes.txt").exists());
    assert_eq!(
        std::fs::read(t.join("out/python_curated.jsonl")).unwrap(),
        want
    );
}

/// `kill -9` inside near dedup leaves its scratch directory; the rerun
/// removes it and writes the same bytes as an uninterrupted run.
#[test]
fn a_killed_dedup_leaves_nothing_after_the_rerun_and_the_same_bytes() {
    let t = TestDir::new();
    write_records(&t.join("in.jsonl"), 2500);
    std::fs::create_dir_all(t.join("ref")).unwrap();
    std::fs::create_dir_all(t.join("o")).unwrap();
    run_expect(dedup(&t, "in.jsonl", "ref/d.jsonl").arg("-q"), 0);
    let want = std::fs::read(t.join("ref/d.jsonl")).unwrap();

    let mut child = dedup(&t, "in.jsonl", "o/d.jsonl")
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_scratch(&mut child, &t.join("o"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !leftovers(&t.join("o")).is_empty(),
        "the kill left nothing to clean"
    );

    let out = run_expect(dedup(&t, "in.jsonl", "o/d.jsonl").arg("-q"), 0);
    assert_silent("dedup (rerun)", &out);
    assert_eq!(leftovers(&t.join("o")), Vec::<String>::new());
    assert_eq!(std::fs::read(t.join("o/d.jsonl")).unwrap(), want);
}

/// A scratch parent that exists but takes no new entries (even for root:
/// `/proc`): the error names the directory, and nothing is written.
#[test]
fn a_scratch_directory_that_cannot_be_made_is_named_in_the_error() {
    let t = TestDir::new();
    write_records(&t.join("in.jsonl"), 20);
    let out = run_expect(
        dedup(&t, "in.jsonl", "d.jsonl").args(["--scratch-dir", "/proc"]),
        2,
    );
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot create a scratch directory in /proc"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(!t.join("d.jsonl").exists());
    assert_eq!(leftovers(&t.join(".")), Vec::<String>::new());
}

// ------------------------------------------------------------- signals

fn interrupted_dedup_cleans_up(sig: i32, code: i32) {
    let t = TestDir::new();
    write_records(&t.join("in.jsonl"), 2500);
    std::fs::create_dir_all(t.join("o")).unwrap();
    let mut child = dedup(&t, "in.jsonl", "o/d.jsonl")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_scratch(&mut child, &t.join("o"));
    // SAFETY: kill sends a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("interrupted"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(leftovers(&t.join("o")), Vec::<String>::new());
    assert!(!t.join("o/d.jsonl").exists());
}

#[test]
fn ctrl_c_removes_temporary_files_and_exits_130() {
    interrupted_dedup_cleans_up(libc::SIGINT, 130);
}

#[test]
fn sigterm_removes_temporary_files_and_exits_143() {
    interrupted_dedup_cleans_up(libc::SIGTERM, 143);
}

// ------------------------------------------------------------ progress

/// Runs `cmd` (a shell command line) under `script`, which gives it a pty
/// for stdin, stdout and stderr, and returns what the terminal showed;
/// `None` when `script` is not installed.
fn on_a_terminal(t: &TestDir, cmd: &str) -> Option<String> {
    let out = Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .current_dir(t.path())
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    assert!(out.status.success(), "{cmd}: {}", text(&out.stdout));
    Some(text(&out.stdout))
}

#[test]
fn progress_bars_show_on_a_terminal_only_and_never_with_quiet() {
    let t = TestDir::new();
    write_records(&t.join("in.jsonl"), 300);
    let bin = std::env::var("TRITTER_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_tritter-gpu").to_string());
    let base = format!(
        "{bin} --backend cpu dedup --input in.jsonl --tokens off --report-html off --output"
    );
    let Some(shown) = on_a_terminal(&t, &format!("{base} a.jsonl")) else {
        eprintln!("skipped: no `script` command to give the run a terminal");
        return;
    };
    // Phase 1's bar draws on its first record; later bars may finish
    // between two redraws, so we only look for that one.
    assert!(shown.contains("dedup shards"), "{shown}");
    let quiet = on_a_terminal(&t, &format!("{base} b.jsonl -q")).unwrap();
    assert!(quiet.trim().is_empty(), "{quiet}");
    // On a terminal, but stderr into a file: the notes, no bar.
    on_a_terminal(&t, &format!("{base} c.jsonl 2>err.txt")).unwrap();
    let err = std::fs::read_to_string(t.join("err.txt")).unwrap();
    assert!(err.contains("backend"), "{err}");
    assert!(!err.contains("dedup shards"), "{err}");
    assert_eq!(
        std::fs::read(t.join("a.jsonl")).unwrap(),
        std::fs::read(t.join("b.jsonl")).unwrap()
    );
}

/// Every temporary file or scratch directory of ours under `dir`, at any
/// depth.
fn leftovers_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for name in leftovers(&d) {
            found.push(d.join(name));
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(e.path());
                }
            }
        }
    }
    found
}

/// `curate` of six copies of the sample shard into `dir/out` via `dir/work`.
fn curate_in(t: &TestDir, dir: &str) -> Command {
    let (shard, content) = sample();
    let input = t.join("in");
    if !input.exists() {
        std::fs::create_dir_all(&input).unwrap();
        for i in 0..6 {
            std::fs::copy(&shard, input.join(format!("s{i}.parquet"))).unwrap();
        }
    }
    let mut c = t.cmd();
    c.args([
        "-q",
        "--backend",
        "cpu",
        "--threads",
        "2",
        "curate",
        "--source",
    ])
    .arg(&input)
    .arg("--content-store")
    .arg(content)
    .args(["--language", "python", "--min-stars", "0"])
    .args(["--decontaminate", "off", "--report-html", "off", "--output"])
    .arg(t.join(dir).join("out"))
    .arg("--work-dir")
    .arg(t.join(dir).join("work"));
    c
}

/// Starts `c` and waits until phase 1 has committed a shard.
fn spawn_until_a_shard_is_done(mut c: Command, work: &Path) -> Child {
    let mut child = c
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let done = std::fs::read_dir(work.join("parts")).map_or(0, |rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".done.json"))
                .count()
        });
        if done > 0 {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("curate ended ({status}) before we could stop it");
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "no shard was committed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn curate_stopped_by_ctrl_c_or_kill_leaves_no_temporary_files_and_resumes_to_the_same_bytes() {
    let t = TestDir::new();
    run_expect(&mut curate_in(&t, "ref"), 0);
    let want = std::fs::read(t.join("ref/out/python_curated.jsonl")).unwrap();

    // Ctrl-C: exit 130, nothing temporary left, the rerun resumes.
    let child = spawn_until_a_shard_is_done(curate_in(&t, "a"), &t.join("a/work"));
    // SAFETY: kill sends a signal to our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    assert_eq!(leftovers_under(&t.join("a")), Vec::<PathBuf>::new());
    assert_silent("curate (resumed)", &run_expect(&mut curate_in(&t, "a"), 0));
    assert_eq!(
        std::fs::read(t.join("a/out/python_curated.jsonl")).unwrap(),
        want
    );

    // kill -9: whatever it left, the rerun removes.
    let mut child = spawn_until_a_shard_is_done(curate_in(&t, "b"), &t.join("b/work"));
    child.kill().unwrap();
    child.wait().unwrap();
    run_expect(&mut curate_in(&t, "b"), 0);
    assert_eq!(leftovers_under(&t.join("b")), Vec::<PathBuf>::new());
    assert_eq!(
        std::fs::read(t.join("b/out/python_curated.jsonl")).unwrap(),
        want
    );
}
