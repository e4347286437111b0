//! The Slurm executor against a real one-node Slurm: munged, slurmctld and
//! slurmd are started by this harness in a temporary directory (Debian's
//! `munge`, `slurmctld`, `slurmd`, `slurm-client`; run as root), once per
//! test binary, and stopped by PID when it exits. The tests run one at a
//! time on that cluster.
//!
//! Where the daemons cannot start, the cluster tests print the daemons' log
//! lines and skip, unless `TRITTER_REQUIRE_SLURM=1` (CI), where they fail.

mod common;

use common::{run_expect, stats_without_timings, TestDir};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use tritter_gpu::sources::writer::{write_shard, SourceFile, WriteOptions};
use tritter_gpu::sources::SchemaKind;

// ---------------------------------------------------------------- cluster

/// The running cluster: its configuration file and daemons.
struct Cluster {
    _dir: tempfile::TempDir,
    conf: PathBuf,
}

/// PIDs of the daemons, killed at exit (statics are never dropped).
static PIDS: Mutex<Vec<u32>> = Mutex::new(Vec::new());
static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
/// One test at a time on the one node.
static SERIAL: Mutex<()> = Mutex::new(());

extern "C" fn stop_daemons() {
    if let Ok(pids) = PIDS.lock() {
        for &p in pids.iter().rev() {
            // SAFETY: kill(2) on PIDs of children this process started.
            unsafe {
                libc::kill(p as libc::pid_t, libc::SIGTERM);
            }
        }
    }
}

fn spawn(cmd: &mut Command, log: &Path) -> std::io::Result<Child> {
    let out = std::fs::File::create(log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()?;
    PIDS.lock().unwrap().push(child.id());
    Ok(child)
}

/// A free TCP port (bound once, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn short_hostname() -> String {
    let out = Command::new("hostname").arg("-s").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn mem_mb() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(4 << 20);
    // Below the real figure: slurmd drains a node with less than configured.
    kb / 1024 * 3 / 4
}

fn start() -> Result<Cluster, String> {
    for bin in ["munged", "slurmctld", "slurmd", "sbatch"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {bin}")])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            return Err(format!("{bin} is not installed"));
        }
    }
    // SAFETY: registering a plain extern "C" function without captures.
    unsafe {
        libc::atexit(stop_daemons);
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let d = dir.path();
    for sub in ["state", "spool"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let key = d.join("munge.key");
    let bytes: Vec<u8> = (0..1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ std::process::id() as u8)
        .collect();
    std::fs::write(&key, bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    let socket = d.join("munge.sock");
    let mut logs = vec![d.join("munged.out")];
    spawn(
        Command::new("munged")
            .arg("-F")
            .arg("-f")
            .arg(format!("--key-file={}", key.display()))
            .arg(format!("--socket={}", socket.display()))
            .arg(format!("--pid-file={}", d.join("munged.pid").display()))
            .arg(format!("--log-file={}", d.join("munged.log").display()))
            .arg(format!("--seed-file={}", d.join("munge.seed").display())),
        &logs[0],
    )
    .map_err(|e| format!("cannot start munged: {e}"))?;
    let wait_until = |what: &str, ok: &dyn Fn() -> bool| -> Result<(), String> {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("{what} did not come up in 30 s"))
    };
    let host = short_hostname();
    let conf = d.join("slurm.conf");
    let p = |n: &str| d.join(n).display().to_string();
    std::fs::write(
        &conf,
        format!(
            "ClusterName=tritter\nSlurmctldHost={host}\nSlurmUser=root\nSlurmdUser=root\n\
             AuthType=auth/munge\nAuthInfo=socket={sock}\nCredType=cred/munge\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nMpiDefault=none\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\nDefMemPerCPU=512\n\
             AccountingStorageType=accounting_storage/none\nJobAcctGatherType=jobacct_gather/none\n\
             SlurmctldPort={cport}\nSlurmdPort={dport}\nReturnToService=2\n\
             StateSaveLocation={state}\nSlurmdSpoolDir={spool}\n\
             SlurmctldPidFile={cpid}\nSlurmdPidFile={dpid}\n\
             SlurmctldLogFile={clog}\nSlurmdLogFile={dlog}\n\
             NodeName={host} CPUs={cpus} RealMemory={mem} State=UNKNOWN\n\
             PartitionName=debug Default=YES Nodes=ALL MaxTime=INFINITE State=UP\n",
            sock = socket.display(),
            cport = free_port(),
            dport = free_port(),
            state = p("state"),
            spool = p("spool"),
            cpid = p("slurmctld.pid"),
            dpid = p("slurmd.pid"),
            clog = p("slurmctld.log"),
            dlog = p("slurmd.log"),
            cpus = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            mem = mem_mb(),
        ),
    )
    .unwrap();
    let report = |e: String, logs: &[PathBuf]| -> String {
        let mut s = e;
        for l in logs {
            s.push_str(&format!(
                "\n--- {}\n{}",
                l.display(),
                std::fs::read_to_string(l).unwrap_or_default()
            ));
        }
        s
    };
    let all_logs = |logs: &[PathBuf]| {
        let mut v = logs.to_vec();
        v.extend([
            d.join("munged.log"),
            d.join("slurmctld.log"),
            d.join("slurmd.log"),
        ]);
        v
    };
    wait_until("munged", &|| socket.exists()).map_err(|e| report(e, &all_logs(&logs)))?;
    logs.push(d.join("slurmctld.out"));
    spawn(
        Command::new("slurmctld").arg("-D").arg("-f").arg(&conf),
        &logs[1],
    )
    .map_err(|e| format!("cannot start slurmctld: {e}"))?;
    logs.push(d.join("slurmd.out"));
    spawn(
        Command::new("slurmd").arg("-D").arg("-f").arg(&conf),
        &logs[2],
    )
    .map_err(|e| format!("cannot start slurmd: {e}"))?;
    wait_until("the node", &|| {
        Command::new("sinfo")
            .args(["-h", "-o", "%T"])
            .env("SLURM_CONF", &conf)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
            .unwrap_or(false)
    })
    .map_err(|e| report(e, &all_logs(&logs)))?;
    Ok(Cluster { _dir: dir, conf })
}

/// The cluster, or `None` (skip) where it cannot start; panics under
/// `TRITTER_REQUIRE_SLURM=1`.
fn cluster() -> Option<&'static Cluster> {
    CLUSTER
        .get_or_init(|| match start() {
            Ok(c) => Some(c),
            Err(e) => {
                if std::env::var("TRITTER_REQUIRE_SLURM").as_deref() == Ok("1") {
                    panic!("TRITTER_REQUIRE_SLURM=1 but Slurm did not start: {e}");
                }
                eprintln!("skipping the Slurm tests: {e}");
                None
            }
        })
        .as_ref()
}

impl Cluster {
    /// `tritter-gpu` in `t` talking to this cluster.
    fn cmd(&self, t: &TestDir) -> Command {
        let mut c = t.cmd();
        c.env("SLURM_CONF", &self.conf)
            .env("TRITTER_SLURM_POLL_SECONDS", "0.5");
        c
    }

    /// A Slurm client command.
    fn client(&self, name: &str) -> Command {
        let mut c = Command::new(name);
        c.env("SLURM_CONF", &self.conf);
        c
    }
}

// ---------------------------------------------------------------- corpus

fn splitmix(s: &mut u64) -> u64 {
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Python-looking lines from a seeded vocabulary of 3,000 words, with
/// `edits` words changed (near duplicates share a seed).
fn code(seed: u64, edits: u64) -> String {
    let mut s = seed.wrapping_mul(7919) + 1;
    let mut w: Vec<String> = (0..240)
        .map(|_| format!("w{}", splitmix(&mut s) % 3000))
        .collect();
    let mut e = seed + 1000 * edits;
    for _ in 0..edits {
        let at = (splitmix(&mut e) % w.len() as u64) as usize;
        w[at] = format!("x{}", splitmix(&mut e) % 100_000);
    }
    w.chunks(6)
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

const BENCH_SOLUTION: &str = "    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n            if idx != idx2:\n                distance = abs(elem - elem2)\n                if distance < threshold:\n                    return True\n    return False\n";

/// Six shards with unique files, near and exact duplicates across shards,
/// and files holding a benchmark solution; and the benchmark file.
fn corpus(t: &TestDir) {
    let mut shards: Vec<Vec<SourceFile>> = vec![Vec::new(); 6];
    let mut add = |shard: usize, path: String, text: String, stars: u64| {
        let mut f = SourceFile::new(&path, &format!("org/{path}"), "Python", &text);
        f.licenses = vec!["mit".into()];
        f.stars = Some(stars);
        shards[shard % 6].push(f);
    };
    for b in 0..36u64 {
        add(b as usize, format!("m{b}.py"), code(b, 0), b % 9 * 10);
        if b % 3 == 0 {
            add(b as usize + 2, format!("fork{b}.py"), code(b, 6), 5);
        }
        if b % 5 == 0 {
            add(b as usize + 3, format!("copy{b}.py"), code(b, 0), 1);
        }
    }
    for i in 0..3u64 {
        let text = format!(
            "{}def has_close_elements(numbers, threshold):\n{BENCH_SOLUTION}",
            code(2000 + i, 0)
        );
        add(i as usize * 2, format!("hw{i}.py"), text, 3);
    }
    std::fs::create_dir_all(t.join("in")).unwrap();
    for (s, files) in shards.iter().enumerate() {
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

/// `curate` with every stage on the corpus, writing into `out`.
fn curate_args(out: &str) -> Vec<String> {
    let mut v: Vec<String> = [
        "--backend",
        "cpu",
        "--quiet",
        "curate",
        "--source",
        "in",
        "--min-stars",
        "0",
        "--benchmarks",
        "none",
        "--benchmark-file",
        "close=bench.jsonl",
        "--fields",
        "prompt,canonical_solution",
        "--partitions",
        "3",
        "--report-html",
        "off",
    ]
    .map(String::from)
    .to_vec();
    v.extend([
        "--output".into(),
        out.into(),
        "--rejects".into(),
        format!("{out}/rejects.jsonl"),
        "--clusters".into(),
        format!("{out}/clusters.jsonl"),
        "--report".into(),
        format!("{out}/decontam.jsonl"),
    ]);
    v
}

fn slurm_args(out: &str, work: &str, extra: &[&str]) -> Vec<String> {
    let mut v = curate_args(out);
    v.extend(
        [
            "--work-dir",
            work,
            "--executor",
            "slurm",
            "--slurm-tasks",
            "3",
        ]
        .iter()
        .chain(extra)
        .map(|s| s.to_string()),
    );
    v
}

/// Everything a run wrote, the stats without their timings and paths.
fn result(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            if !n.ends_with(".stats.json") {
                return (n, bytes);
            }
            (n, stats_without_timings(&bytes))
        })
        .collect()
}

fn local_reference(t: &TestDir) -> Vec<(String, Vec<u8>)> {
    run_expect(t.cmd().args(curate_args("ref")), 0);
    let r = result(&t.join("ref"));
    assert!(
        r.iter()
            .any(|(n, b)| n == "python_curated.jsonl" && !b.is_empty()),
        "{:?}",
        text(&std::fs::read(t.join("ref/rejects.jsonl")).unwrap())
            .lines()
            .next()
            .map(|l| l[l.len().saturating_sub(300)..].to_string())
    );
    r
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Submits the run of `sl/` through `w/` with every job held (queued, no
/// task started) and returns the (step, job id) pairs.
fn submit_held(c: &Cluster, t: &TestDir) -> Vec<(String, String)> {
    let out = run_expect(
        c.cmd(t)
            .args(slurm_args("sl", "w", &["--slurm-extra", "--hold"])),
        0,
    );
    job_ids(&out.stdout)
}

/// `STEP JOB` lines of a submission's stdout.
fn job_ids(stdout: &[u8]) -> Vec<(String, String)> {
    text(stdout)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(s, j)| (s.to_string(), j.to_string()))
        .collect()
}

/// Polls `slurm status` until the run is no longer running; its output
/// and exit code.
fn settled_status(c: &Cluster, t: &TestDir, work: &str) -> (i32, String) {
    let started = Instant::now();
    loop {
        let o = c
            .cmd(t)
            .args(["slurm", "status", "--work-dir", work])
            .output()
            .unwrap();
        let code = o.status.code().unwrap_or(-1);
        if code != 1 || started.elapsed() > Duration::from_secs(240) {
            return (code, format!("{}{}", text(&o.stdout), text(&o.stderr)));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `scontrol release` of the held arrays.
fn release(c: &Cluster, jobs: &[(String, String)]) {
    let ids: Vec<&str> = jobs.iter().map(|(_, j)| j.as_str()).collect();
    let o = c
        .client("scontrol")
        .arg("release")
        .arg(ids.join(","))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
}

// ---------------------------------------------------------------- tests

#[test]
fn slurm_run_with_every_stage_gives_the_local_bytes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    let t = TestDir::new();
    corpus(&t);
    let want = local_reference(&t);
    // Arrays of at most two tasks: a step of three array tasks is split in two.
    let out = run_expect(
        c.cmd(&t).args(slurm_args(
            "sl",
            "w",
            &["--wait", "--slurm-max-array-size", "2"],
        )),
        0,
    );
    let jobs = job_ids(&out.stdout);
    let mut steps: Vec<&str> = jobs.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(steps.iter().filter(|s| **s == "shards").count(), 2);
    steps.dedup();
    assert_eq!(
        steps,
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
    assert_eq!(result(&t.join("sl")), want);
    // The scripts and logs are in the work dir, readable.
    let script = std::fs::read_to_string(t.join("w/slurm/shards.part-1.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --array=0-0"), "{script}");
    assert!(script.contains("OFFSET=2"), "{script}");
    assert!(script.contains("run-step"), "{script}");
    assert!(t.join("w/slurm/logs").read_dir().unwrap().count() >= 8);
    let (code, status) = settled_status(c, &t, "w");
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("state: complete"), "{status}");
}

#[test]
fn dedup_on_slurm_gives_the_local_bytes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    let t = TestDir::new();
    common::write_dedup_corpus(&t.join("in.jsonl"), 300, 3, 5);
    let args = |out: &str| -> Vec<String> {
        [
            "dedup",
            "--backend",
            "cpu",
            "--input",
            "in.jsonl",
            "--output",
            out,
            "--clusters",
            &format!("{out}.clusters"),
            "--partitions",
            "4",
            "--shard-size",
            "40KiB",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    run_expect(t.cmd().args(args("local.jsonl")), 1);
    let mut slurm = args("sl.jsonl");
    slurm.extend(
        [
            "--work-dir",
            "w",
            "--executor",
            "slurm",
            "--slurm-tasks",
            "3",
            "--wait",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    // Exit 1 as locally: the input has bad lines.
    let out = run_expect(c.cmd(&t).args(&slurm), 1);
    let mut steps: Vec<String> = job_ids(&out.stdout).into_iter().map(|(s, _)| s).collect();
    steps.dedup();
    assert_eq!(
        steps,
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
    for f in ["sl.jsonl", "sl.jsonl.clusters"] {
        let local = f.replace("sl.", "local.");
        assert!(
            std::fs::read(t.join(f)).unwrap() == std::fs::read(t.join(&local)).unwrap(),
            "{f} differs from the local run's"
        );
    }
    let (code, status) = settled_status(c, &t, "w");
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("state: complete"), "{status}");
}

#[test]
fn a_cancelled_array_task_is_resumed_to_the_same_bytes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    let t = TestDir::new();
    corpus(&t);
    let want = local_reference(&t);
    // Held, so the cancellation lands before the task runs.
    let jobs = submit_held(c, &t);
    let shards = &jobs[0].1;
    let cancel = c
        .client("scancel")
        .arg(format!("{shards}_1"))
        .output()
        .unwrap();
    assert!(cancel.status.success(), "{}", text(&cancel.stderr));
    release(c, &jobs);
    let (code, status) = settled_status(c, &t, "w");
    assert_eq!(code, 2, "{status}");
    assert!(status.contains("failed: step shards task 1"), "{status}");
    assert!(!t.join("sl/python_curated.jsonl").exists());
    // Without the first submission's --hold this time.
    let resumed = run_expect(
        c.cmd(&t).args([
            "--quiet",
            "slurm",
            "resume",
            "--work-dir",
            "w",
            "--wait",
            "--slurm-extra",
            "",
        ]),
        0,
    );
    let again = job_ids(&resumed.stdout);
    assert_eq!(again[0].0, "shards", "{}", text(&resumed.stdout));
    // Only the cancelled slot's tasks (1 and 4 of six over three slots).
    let script = std::fs::read_to_string(t.join("w/slurm/shards.resume-1.sbatch")).unwrap();
    assert!(script.contains("TASKS=(1 4)"), "{script}");
    assert_eq!(result(&t.join("sl")), want);
}

#[test]
fn a_local_run_is_refused_while_the_slurm_jobs_of_its_work_dir_are_queued() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    let t = TestDir::new();
    corpus(&t);
    // Held: queued, no task has started, no task holds the work-dir lock.
    let jobs = submit_held(c, &t);
    let mut local = curate_args("sl");
    local.extend(["--work-dir".into(), "w".into()]);
    let refused = c.cmd(&t).args(&local).output().unwrap();
    let err = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("still queued or running"), "{err}");
    assert!(err.contains("slurm status --work-dir"), "{err}");
    assert!(!t.join("sl/python_curated.jsonl").exists());
    // Once the jobs are gone the same local run goes ahead.
    let ids: Vec<&str> = jobs.iter().map(|(_, j)| j.as_str()).collect();
    let o = c.client("scancel").args(&ids).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let (code, status) = settled_status(c, &t, "w");
    assert_ne!(code, 1, "{status}");
    run_expect(c.cmd(&t).args(&local), 0);
    assert!(t.join("sl/python_curated.jsonl").exists());
}

#[test]
fn a_failing_task_is_reported_with_its_log_and_the_exit_code() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    let t = TestDir::new();
    corpus(&t);
    // Not Parquet: phase 1 of this shard fails (no --keep-going).
    std::fs::write(t.join("in/shard-03.parquet"), b"not a parquet file at all").unwrap();
    let o = c
        .cmd(&t)
        .args(slurm_args("sl", "w", &["--wait"]))
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("failed: step shards task 3"), "{err}");
    let (code, status) = settled_status(c, &t, "w");
    assert_eq!(code, 2, "{status}");
    assert!(status.contains("failed: step shards task 3"), "{status}");
    // The task's own log lines: the input and the advice.
    assert!(
        status.contains("  | tritter-gpu: step shards task 3 starts"),
        "{status}"
    );
    assert!(status.contains("shard-03.parquet"), "{status}");
    assert!(status.contains("--keep-going"), "{status}");
    assert!(!t.join("sl/python_curated.jsonl").exists());
}

#[test]
fn a_node_that_cannot_see_the_work_dir_fails_fast_and_says_so() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    let t = TestDir::new();
    corpus(&t);
    let jobs = submit_held(c, &t);
    // What a node without the shared filesystem sees: no stored plan.
    std::fs::rename(t.join("w/config.json"), t.join("w/config.json.away")).unwrap();
    release(c, &jobs);
    // Until the queue (this test's jobs only) is empty.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let q = c
            .client("squeue")
            .args(["-h", "-t", "PENDING,RUNNING,COMPLETING,CONFIGURING"])
            .output()
            .unwrap();
        if q.stdout.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    std::fs::rename(t.join("w/config.json.away"), t.join("w/config.json")).unwrap();
    let (code, status) = settled_status(c, &t, "w");
    assert_eq!(code, 2, "{status}");
    assert!(status.contains("cannot see the work directory"), "{status}");
    assert!(
        status.contains("a filesystem every node mounts"),
        "{status}"
    );
}

#[test]
fn a_rejected_submission_shows_sbatch_s_message() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = cluster() else { return };
    let t = TestDir::new();
    corpus(&t);
    let o = run_expect(
        c.cmd(&t).args(slurm_args(
            "sl",
            "w",
            &["--slurm-partition", "no-such-partition"],
        )),
        2,
    );
    let err = text(&o.stderr);
    assert!(
        err.contains("tritter-gpu: cannot submit step shards"),
        "{err}"
    );
    assert!(err.contains("sbatch rejected"), "{err}");
    assert!(err.to_lowercase().contains("partition"), "{err}");
}

#[test]
fn wait_without_the_slurm_executor_is_refused() {
    let t = TestDir::new();
    corpus(&t);
    let mut args = curate_args("o");
    args.push("--wait".into());
    let o = run_expect(t.cmd().args(args), 2);
    assert!(
        text(&o.stderr).contains("--wait waits for cluster jobs: it needs --executor slurm"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn without_sbatch_on_the_path_the_error_says_so() {
    let t = TestDir::new();
    corpus(&t);
    std::fs::create_dir_all(t.join("empty-bin")).unwrap();
    let o = run_expect(
        t.cmd()
            .env("PATH", t.join("empty-bin"))
            .args(slurm_args("sl", "w", &[])),
        2,
    );
    let err = text(&o.stderr);
    assert!(
        err.contains("tritter-gpu: --executor slurm needs the Slurm client commands"),
        "{err}"
    );
    assert!(err.contains("sbatch"), "{err}");
    assert!(err.contains("login node"), "{err}");
    assert!(!t.join("w").exists(), "nothing is planned without Slurm");
}
