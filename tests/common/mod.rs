//! Shared helpers of the integration tests: run the real binary in a fresh
//! temporary directory with `TRITTER_*`, `HF_*` and proxy variables removed.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh working directory for one test.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> TestDir {
        TestDir {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// A `tritter-gpu` command running in this directory with a clean
    /// environment. `TRITTER_TEST_BIN` names another binary (a test binary
    /// carried to a GPU machine runs there without the checkout it was built
    /// in).
    pub fn cmd(&self) -> Command {
        let bin = std::env::var_os("TRITTER_TEST_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_tritter-gpu").into());
        let mut c = Command::new(bin);
        c.current_dir(self.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("TRITTER_")
                || k.starts_with("HF_")
                || k.starts_with("AWS_")
                || k.to_ascii_lowercase().ends_with("_proxy")
            {
                c.env_remove(k);
            }
        }
        // Caches that default under the home directory (the benchmark
        // index cache, the repository cache) are this test's own.
        c.env("HOME", self.path());
        c.env_remove("XDG_CACHE_HOME");
        // No test may reach the real instance metadata address (the AWS
        // credential chain's last step): tests that need it point
        // AWS_EC2_METADATA_SERVICE_ENDPOINT at a local server.
        c.env("AWS_EC2_METADATA_DISABLED", "true");
        c
    }

    /// The bundled sample shard copied into `in/` under each of `names`.
    pub fn copy_sample_shards(&self, names: &[&str]) {
        std::fs::create_dir_all(self.join("in")).unwrap();
        for n in names {
            std::fs::copy(sample().0, self.join("in").join(n)).unwrap();
        }
    }

    /// `curate` of `in/` on the CPU backend with the sample's content store,
    /// into `out/` through the work directory `work/`, then `extra` (global
    /// flags such as `-q` or `--threads` may come last too).
    pub fn curate_sample(&self, extra: &[&str]) -> Command {
        let mut c = self.cmd();
        c.args(["--backend", "cpu", "curate", "--source", "in"])
            .arg("--content-store")
            .arg(sample().1)
            .args(["--output", "out", "--work-dir", "work"])
            .args(extra);
        c
    }
}

/// The bundled sample shard (The Stack v2 layout) and its content store.
pub fn sample() -> (PathBuf, PathBuf) {
    let d = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/sample"));
    (d.join("the-stack-v2-sample.parquet"), d.join("content"))
}

/// A process's output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd`, panicking with its command line, stdout and stderr when the
/// exit code is not `expected`.
pub fn run_expect(cmd: &mut Command, expected: i32) -> Output {
    let out = cmd.output().expect("spawn tritter-gpu");
    if out.status.code() != Some(expected) {
        panic!(
            "expected exit {expected}, got {:?}\ncommand: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            cmd,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Parses every line of a JSONL file.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

// ------------------------------------------------------ benchmark fixtures

/// The real benchmark copies (HumanEval, MBPP, MBPP+, MultiPL-E), for the
/// tests that measure recall and false positives on them:
/// `$TRITTER_TEST_BENCHMARK_DIR`, else `../shared/benchmarks` beside the
/// repository. `None`, with a line saying that `test` was skipped, when they
/// are not on this machine (a fresh clone); with `TRITTER_REQUIRE_BENCHMARKS=1`
/// (CI) their absence fails the test instead.
pub fn real_benchmarks(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("TRITTER_TEST_BENCHMARK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/benchmarks"))
        });
    if dir.join("HumanEval.jsonl.gz").is_file() {
        return Some(dir);
    }
    if std::env::var("TRITTER_REQUIRE_BENCHMARKS").is_ok_and(|v| v == "1") {
        panic!(
            "{test}: the real benchmark copies are not at {} and TRITTER_REQUIRE_BENCHMARKS=1 \
             requires them: set TRITTER_TEST_BENCHMARK_DIR",
            dir.display()
        );
    }
    println!(
        "skipped {test}: the real benchmark copies are not at {} (set TRITTER_TEST_BENCHMARK_DIR)",
        dir.display()
    );
    None
}

/// A deterministic generator for the fixtures (splitmix64).
struct FixtureRng(u64);

impl FixtureRng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// The body of generated Python function number `i` of a fixture family:
/// statements drawn from a dozen shapes with their own names and numbers,
/// so no two items share a long run of tokens.
fn fixture_body(family: &str, i: u64, arg: &str) -> String {
    let mut rng = FixtureRng(i.wrapping_mul(7919) ^ family.len() as u64);
    let v = |rng: &mut FixtureRng| {
        [
            "acc", "tally", "best", "carry", "span", "width", "score", "level",
        ][rng.below(8) as usize]
    };
    let mut out = format!("    {family}_state_{i} = []\n");
    for s in 0..9 {
        let (a, k, m) = (v(&mut rng), rng.below(9) + 2, rng.below(50) + 1);
        out += &match rng.below(8) {
            0 => format!(
                "    for {a}_{s} in {arg}:\n        if {a}_{s} % {k} == {}:\n            {family}_state_{i}.append({a}_{s} * {m})\n",
                rng.below(k)
            ),
            1 => format!("    {a}_{s} = sum({family}_state_{i}) // {k} + {m}\n"),
            2 => format!(
                "    while len({family}_state_{i}) > {m}:\n        {family}_state_{i}.pop({})\n",
                rng.below(2)
            ),
            3 => format!("    {a}_{s} = sorted({arg}, key=lambda q: (q % {k}, -q))[:{m}]\n"),
            4 => format!(
                "    {a}_{s} = {{n: n ** {} for n in range({m}) if n % {k}}}\n",
                rng.below(3) + 1
            ),
            5 => format!(
                "    if not {family}_state_{i}:\n        {family}_state_{i}.extend(range({k}, {m} + {k}))\n"
            ),
            6 => format!("    {a}_{s} = max({family}_state_{i} or [{m}]) - min({arg} or [{k}])\n"),
            _ => format!(
                "    {family}_state_{i} = [x for x in {family}_state_{i} if x != {m}] + [{k}]\n"
            ),
        };
    }
    out + &format!(
        "    return {family}_state_{i}[-1] if {family}_state_{i} else {}\n",
        i
    )
}

/// One generated HumanEval-shaped record `i`: `task_id` `HumanEval/i`,
/// `prompt`, `canonical_solution`, `test`, `entry_point`.
pub fn fixture_humaneval(i: u64) -> serde_json::Value {
    let name = format!("fixture_task_{i}");
    serde_json::json!({
        "task_id": format!("HumanEval/{i}"),
        "prompt": format!(
            "from typing import List\n\n\ndef {name}(numbers: List[int]) -> int:\n    \"\"\" Fold the numbers of fixture task {i} into one value.\n    >>> {name}([1, 2, 3])\n    {i}\n    \"\"\"\n"
        ),
        "canonical_solution": fixture_body("humaneval", i, "numbers"),
        "test": format!("\n\ndef check(candidate):\n    assert candidate([{i}, {}]) is not None\n", i + 3),
        "entry_point": name,
    })
}

/// One generated MBPP-shaped record `i`: `task_id` (a number), `text`,
/// `code`, `test_list`.
pub fn fixture_mbpp(i: u64) -> serde_json::Value {
    let name = format!("mbpp_fixture_{i}");
    serde_json::json!({
        "task_id": i,
        "text": format!("Write a function to fold the list of fixture problem {i}."),
        "code": format!("def {name}(items):\n{}", fixture_body("mbpp", i, "items")),
        "test_list": [format!("assert {name}([{i}, 2]) is not None")],
        "test_setup_code": "",
        "challenge_test_list": [],
    })
}

/// Writes generated benchmark files in the published formats into `dir`
/// (created): `HumanEval.jsonl.gz` with 20 items and `mbpp.jsonl` with 120,
/// for the tests of the decontamination logic, which need no real copy.
pub fn write_benchmark_fixtures(dir: &Path) -> PathBuf {
    use std::io::Write;
    std::fs::create_dir_all(dir).unwrap();
    let he: String = (0..20)
        .map(|i| fixture_humaneval(i).to_string() + "\n")
        .collect();
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(dir.join("HumanEval.jsonl.gz")).unwrap(),
        flate2::Compression::fast(),
    );
    gz.write_all(he.as_bytes()).unwrap();
    gz.finish().unwrap();
    let mbpp: String = (1..=120)
        .map(|i| fixture_mbpp(i).to_string() + "\n")
        .collect();
    std::fs::write(dir.join("mbpp.jsonl"), mbpp).unwrap();
    dir.to_path_buf()
}

/// A stats file without what differs between two runs of the same job:
/// timings, the command line, resources, the backend line, output paths and
/// the benchmark index's build time. Everything else must match byte for byte.
pub fn stats_without_timings(bytes: &[u8]) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    let o = v.as_object_mut().unwrap();
    for k in [
        "elapsed_seconds",
        "phase_seconds",
        "step_seconds",
        "transfers",
        "command",
        "argv",
        "started_at",
        "resources",
        "backend",
    ] {
        o.remove(k);
    }
    let output = o["output"].as_object_mut().unwrap();
    output.remove("path");
    output.remove("shards");
    let b = o["decontam"]["benchmarks"]
        .as_str()
        .unwrap_or("")
        .to_string();
    // The index summary, without how long the index took or whether the
    // index cache served it.
    let summary = b
        .split("; built in")
        .next()
        .unwrap()
        .split("; read from the index cache")
        .next()
        .unwrap();
    o["decontam"]["benchmarks"] = summary.into();
    serde_json::to_vec_pretty(&v).unwrap()
}

/// Runs a Python `script` with Hugging Face `datasets` offline (its caches
/// under `t`) on `args`, and returns the JSON of its last stdout line.
/// `python` is the interpreter named by `TRITTER_PYTHON`.
pub fn run_datasets_script(
    python: &str,
    t: &TestDir,
    script: &str,
    args: &[PathBuf],
) -> serde_json::Value {
    // Leave without the interpreter's teardown: a streaming `datasets`
    // iterator left open keeps a pyarrow thread that can abort the process
    // at exit ("terminate called without an active exception") after the
    // script has printed and succeeded.
    let script =
        format!("{script}\nimport os as _os, sys as _sys\n_sys.stdout.flush()\n_os._exit(0)\n");
    let out = Command::new(python)
        .arg("-c")
        .arg(&script)
        .args(args)
        .env("HF_DATASETS_CACHE", t.join("hf-cache"))
        .env("HF_HOME", t.join("hf"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// A tool-schema JSONL corpus for `dedup`: `bases` files of 150-400 words
/// (a vocabulary of 3000), each followed at a distance by up to three
/// copies with a few words replaced (near-duplicates), an identical copy
/// every fifth, and between them blank lines, CRLF lines, files without
/// words, unlicensed files and `bad` lines that are not records. Same bytes
/// for the same arguments.
pub fn write_dedup_corpus(path: &Path, bases: usize, bad: usize, seed: u64) {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut docs: Vec<(String, String, u64)> = Vec::new();
    for b in 0..bases {
        let n = 150 + (next() % 250) as usize;
        let words: Vec<String> = (0..n).map(|_| format!("w{}", next() % 3000)).collect();
        docs.push((words.join(" "), format!("src/base{b}.py"), next() % 50));
        for c in 0..(next() % 4) {
            let mut copy = words.clone();
            for _ in 0..(n / 40) {
                let at = (next() as usize) % n;
                copy[at] = format!("x{}", next() % 100);
            }
            docs.push((copy.join(" "), format!("src/copy{b}_{c}.py"), next() % 50));
        }
        if b % 5 == 0 {
            docs.push((words.join(" "), format!("dup/base{b}.py"), next() % 50));
        }
        if b % 11 == 0 {
            docs.push(("{ } ( ) ;".to_string(), format!("empty{b}.py"), 0));
        }
    }
    // Copies far from their originals.
    for i in (0..docs.len()).rev() {
        let j = (next() as usize) % (i + 1);
        docs.swap(i, j);
    }
    let mut out = String::new();
    let mut bad_left = bad;
    for (i, (text, path, stars)) in docs.iter().enumerate() {
        let license = if i % 13 == 0 { "no_license" } else { "mit" };
        let line = serde_json::json!({
            "text": text, "language": "python", "license": license,
            "stars": stars, "path": path, "repo": format!("org/r{}", i % 17),
        });
        out.push_str(&line.to_string());
        out.push_str(match i % 29 {
            3 => "\r\n",
            7 => "\n\n",
            _ => "\n",
        });
        if bad_left > 0 && i % 37 == 5 {
            out.push_str(if bad_left.is_multiple_of(2) {
                "{not json\n"
            } else {
                "{\"text\": 5}\n"
            });
            bad_left -= 1;
        }
    }
    std::fs::write(path, out).expect("write corpus");
}
