//! Benchmark decontamination, on real data: the real HumanEval,
//! MBPP, MBPP+ and MultiPL-E copies in `../shared/benchmarks`, real code read
//! at test time (the Python standard library and the Rust crates in
//! `~/.cargo/registry/src`), and the real binary.
//!
//! The benchmark directory is `../shared/benchmarks` next to the repository;
//! `TRITTER_TEST_BENCHMARK_DIR` overrides it (for a git worktree elsewhere).
//! The tests that measure recall and false positives on the real copies say
//! they were skipped when the copies are absent (a fresh clone), and fail
//! instead under `TRITTER_REQUIRE_BENCHMARKS=1` (CI); the command-line and
//! loader tests run on generated benchmark files in the published formats.
//!
//! The full false-positive measurement is `#[ignore]`d (it reads about 700 MB):
//! `cargo test --release --test decontam -- --ignored --nocapture`.

mod common;

use common::{read_jsonl, real_benchmarks, run_expect, write_benchmark_fixtures, TestDir};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use tritter_gpu::backends::{select, BackendKind};
use tritter_gpu::decontam::rows::{read_rows, text_field, Format, Row};
use tritter_gpu::decontam::{Contamination, DecontamConfig, Decontaminator, Tier};

// ---------------------------------------------------------------- helpers

/// The real benchmark copies: only called by tests that checked [`real`].
fn bench_dir() -> PathBuf {
    real_benchmarks("bench_dir").expect("checked by real() first")
}

/// Whether the real copies are here; prints that `test` was skipped when not
/// (a failure under `TRITTER_REQUIRE_BENCHMARKS=1`).
fn real(test: &str) -> bool {
    real_benchmarks(test).is_some()
}

fn rows(rel: &str) -> Vec<Row> {
    rows_in(&bench_dir(), rel)
}

fn rows_in(dir: &Path, rel: &str) -> Vec<Row> {
    let p = dir.join(rel);
    read_rows(&p, Format::from_name(rel).unwrap(), rel).unwrap()
}

/// Generated HumanEval and MBPP files in the published formats, in `t`: the
/// command-line and loader tests check logic and need no real copy.
fn fixtures(t: &TestDir) -> PathBuf {
    write_benchmark_fixtures(&t.join("fixtures"))
}

fn field(r: &Row, f: &str) -> String {
    text_field(r, f).unwrap_or_else(|| panic!("record {} has no {f}", r.number))
}

fn config() -> DecontamConfig {
    DecontamConfig {
        benchmark_dir: Some(bench_dir()),
        ..DecontamConfig::default()
    }
}

/// The decontaminator over every benchmark in the directory, CPU backend,
/// built once for all tests of this binary.
fn all_benchmarks() -> &'static Decontaminator {
    static D: OnceLock<Decontaminator> = OnceLock::new();
    D.get_or_init(|| {
        let (backend, _) = select(BackendKind::Cpu).unwrap();
        let d = Decontaminator::build(&config(), backend).unwrap();
        eprintln!("{}", d.describe());
        d
    })
}

fn python_stdlib() -> PathBuf {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_paths()['stdlib'])",
        ])
        .output()
        .expect("python3 is needed to find the standard library");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn cargo_registry() -> PathBuf {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    home.join("registry/src")
}

/// Files under `root` with extension `ext`, sorted, skipping `skip` dirs.
fn files(root: &Path, ext: &str, skip: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !skip.iter().any(|s| p.file_name().is_some_and(|n| n == *s)) {
                    stack.push(p);
                }
            } else if ft.is_file() && p.extension().is_some_and(|x| x == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn read_lossy(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

/// Every `step`-th file of `list` until `max_bytes` are read (files over
/// `max_file` bytes skipped).
fn sample(
    list: &[PathBuf],
    step: usize,
    max_bytes: usize,
    max_file: u64,
) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut total = 0;
    for p in list.iter().step_by(step.max(1)) {
        if std::fs::metadata(p)
            .map(|m| m.len() > max_file)
            .unwrap_or(true)
        {
            continue;
        }
        let t = read_lossy(p);
        total += t.len();
        out.push((p.clone(), t));
        if total >= max_bytes {
            break;
        }
    }
    out
}

/// Deterministic pseudo-random numbers (splitmix64).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        tritter_gpu::backends::ops::splitmix64(&mut self.0)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

// ------------------------------------------------------- planted edits

/// Re-indents every line: each 4 columns of indentation (a tab counts 4)
/// become one `unit`.
fn reindent(code: &str, unit: &str) -> String {
    code.split('\n')
        .map(|line| {
            let body = line.trim_start_matches([' ', '\t']);
            let ws = &line[..line.len() - body.len()];
            let cols: usize = ws.chars().map(|c| if c == '\t' { 4 } else { 1 }).sum();
            if body.is_empty() {
                String::new()
            } else {
                format!("{}{}{body}", unit.repeat(cols / 4), " ".repeat(cols % 4))
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Renames the identifier `old` everywhere (whole words only).
fn rename(code: &str, old: &str, new: &str) -> String {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(i) = rest.find(old) {
        let before_ok = !rest[..i].chars().next_back().is_some_and(is_word);
        let after_ok = !rest[i + old.len()..].chars().next().is_some_and(is_word);
        out.push_str(&rest[..i]);
        out.push_str(if before_ok && after_ok { new } else { old });
        rest = &rest[i + old.len()..];
    }
    out.push_str(rest);
    out
}

const COMMENTS: &[&str] = &[
    "TODO: handle edge cases",
    "loop over the input",
    "helper logic",
    "compute the result here",
    "NOTE: keep this simple",
    "this could be faster",
];

/// Adds a header comment, comment lines before about a quarter of the code
/// lines and trailing comments on a few others; never inside a Python
/// triple-quoted string. `marker` is `#` or `//`.
fn add_comments(code: &str, marker: &str, rng: &mut Rng) -> String {
    let mut out = vec![format!("{marker} my solution")];
    let mut in_doc = false;
    for line in code.split('\n') {
        let quotes = line.matches("\"\"\"").count() + line.matches("'''").count();
        let code_line = !in_doc && quotes == 0 && !line.trim().is_empty();
        let indent = &line[..line.len() - line.trim_start().len()];
        let c = COMMENTS[rng.below(COMMENTS.len() as u64) as usize];
        if code_line && rng.below(4) == 0 {
            out.push(format!("{indent}{marker} {c}"));
        }
        if code_line && rng.below(7) == 0 && !line.trim_end().ends_with('\\') {
            out.push(format!("{line}  {marker} {c}"));
        } else {
            out.push(line.to_string());
        }
        if quotes % 2 == 1 {
            in_doc = !in_doc;
        }
    }
    out.join("\n")
}

const VARIANTS: &[&str] = &[
    "verbatim",
    "reindented",
    "renamed",
    "commented",
    "all edits",
];

fn edit(code: &str, name: Option<&str>, variant: &str, marker: &str, rng: &mut Rng) -> String {
    let unit = ["  ", "\t", "   ", "        "][rng.below(4) as usize];
    let new_name = format!("solve_{}", rng.below(1000));
    let renamed = |c: &str| match name {
        Some(n) => rename(c, n, &new_name),
        None => c.to_string(),
    };
    match variant {
        "verbatim" => code.to_string(),
        "reindented" => reindent(code, unit),
        "renamed" => renamed(code),
        "commented" => add_comments(code, marker, rng),
        _ => add_comments(&reindent(&renamed(code), unit), marker, rng),
    }
}

/// Plants `code` in the middle of (up to 3 kB of) a real host file.
fn plant(host: &str, code: &str) -> String {
    let mut cut = host.len().min(3000);
    while !host.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = &host[..cut];
    let lines: Vec<&str> = head.lines().collect();
    let mid = lines.len() / 2;
    format!(
        "{}\n\n{}\n\n{}\n",
        lines[..mid].join("\n"),
        code.trim_end(),
        lines[mid..].join("\n")
    )
}

fn first_def(code: &str) -> Option<String> {
    let i = code.find("def ")?;
    let rest = &code[i + 4..];
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(rest[..end].to_string())
}

/// A benchmark solution to plant: benchmark, code, name to rename, comment
/// marker, host files.
type Unit<'a> = (
    &'static str,
    String,
    Option<String>,
    &'static str,
    &'a [(PathBuf, String)],
);

/// The planted corpus: (benchmark, variant, text, planted code).
fn planted_corpus() -> Vec<(&'static str, &'static str, String, String)> {
    let py_hosts = sample(
        &files(&python_stdlib(), "py", &["site-packages", "test", "tests"]),
        7,
        usize::MAX,
        100_000,
    );
    let rs_hosts = sample(
        &files(&cargo_registry(), "rs", &[]),
        17,
        usize::MAX,
        100_000,
    );
    assert!(
        py_hosts.len() > 100 && rs_hosts.len() > 100,
        "too few host files"
    );
    let mut units: Vec<Unit<'_>> = Vec::new();
    for r in rows("HumanEval.jsonl.gz") {
        let code = field(&r, "prompt") + &field(&r, "canonical_solution");
        units.push((
            "humaneval",
            code,
            text_field(&r, "entry_point"),
            "#",
            &py_hosts,
        ));
    }
    for r in rows("mbpp.jsonl") {
        let code = field(&r, "code").replace("\r\n", "\n");
        let name = first_def(&code);
        units.push(("mbpp", code, name, "#", &py_hosts));
    }
    for r in rows("MbppPlus-evalplus-038088e.jsonl.gz") {
        let code = field(&r, "canonical_solution");
        units.push((
            "mbppplus",
            code,
            text_field(&r, "entry_point"),
            "#",
            &py_hosts,
        ));
    }
    for lang in ["rs", "js"] {
        for r in rows(&format!("humaneval-multilang/humaneval-{lang}.jsonl.gz")) {
            // A file holding the prompt and the test harness of a task.
            let code = field(&r, "prompt") + "    todo!()\n" + &field(&r, "tests");
            let name = field(&r, "name");
            let entry = name.splitn(3, '_').nth(2).map(String::from);
            units.push(("multipl_e", code, entry, "//", &rs_hosts));
        }
    }
    let mut out = Vec::new();
    for (i, (bench, code, name, marker, hosts)) in units.iter().enumerate() {
        for (v, variant) in VARIANTS.iter().enumerate() {
            let mut rng = Rng((i * VARIANTS.len() + v) as u64);
            let text = edit(code, name.as_deref(), variant, marker, &mut rng);
            let host = &hosts[(i * 7 + v) % hosts.len()].1;
            out.push((*bench, *variant, plant(host, &text), text));
        }
    }
    out
}

// ----------------------------------------------------------- quality

/// Recall on real benchmark solutions planted in real files, with edits.
#[test]
fn recall_on_planted_benchmarks_is_at_least_95_percent() {
    if !real("recall_on_planted_benchmarks_is_at_least_95_percent") {
        return;
    }
    let d = all_benchmarks();
    let corpus = planted_corpus();
    let texts: Vec<&str> = corpus.iter().map(|c| c.2.as_str()).collect();
    let verdicts = d.check_batch(&texts).unwrap();
    let mut table: BTreeMap<(&str, &str), (u32, u32, u32)> = BTreeMap::new();
    for ((bench, variant, _, code), v) in corpus.iter().zip(&verdicts) {
        let e = table.entry((bench, variant)).or_default();
        e.2 += 1;
        if v.is_none() && std::env::var_os("DECONTAM_SHOW_MISSES").is_some() {
            println!("MISSED {bench} {variant}:\n{code}\n----");
        }
        match v.as_ref().map(|c| c.tier) {
            Some(Tier::Exact) => e.0 += 1,
            Some(Tier::Ngram) => e.1 += 1,
            None => {}
        }
    }
    let mut by_bench: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    println!("benchmark   variant      caught  exact  ngram  files");
    for ((b, v), (x, n, t)) in &table {
        println!(
            "{b:<11} {v:<11} {:>6.1}% {x:>6} {n:>6} {t:>6}",
            100.0 * (x + n) as f64 / *t as f64
        );
        let e = by_bench.entry(b).or_default();
        e.0 += x + n;
        e.1 += t;
    }
    let caught: u32 = by_bench.values().map(|v| v.0).sum();
    let total: u32 = by_bench.values().map(|v| v.1).sum();
    let recall = caught as f64 / total as f64;
    println!(
        "overall recall {:.2}% of {total} planted files",
        100.0 * recall
    );
    assert!(recall >= 0.95, "recall {:.2}% < 95%", 100.0 * recall);
    for (b, (c, t)) in by_bench {
        let r = c as f64 / t as f64;
        assert!(r >= 0.90, "recall on {b} is {:.1}%", 100.0 * r);
    }
}

/// The host files alone are clean, so a planted file is caught for its
/// benchmark, not for its host.
#[test]
fn planted_files_are_caught_for_the_planted_item() {
    if !real("planted_files_are_caught_for_the_planted_item") {
        return;
    }
    let d = all_benchmarks();
    let he = rows("HumanEval.jsonl.gz");
    let host = read_lossy(&python_stdlib().join("textwrap.py"));
    assert!(d.check_batch(&[&host]).unwrap()[0].is_none());
    for r in he.iter().step_by(20) {
        let code = field(r, "prompt") + &field(r, "canonical_solution");
        let planted = plant(
            &host,
            &add_comments(&reindent(&code, "  "), "#", &mut Rng(r.number)),
        );
        let c = d
            .check_batch(&[&planted])
            .unwrap()
            .remove(0)
            .expect("caught");
        let id = field(r, "task_id");
        assert!(
            c.items.iter().any(|i| i.id == id),
            "{id}: matched {:?}",
            c.items
        );
    }
}

fn flagged_report(
    sample: &[(PathBuf, String)],
    d: &Decontaminator,
) -> Vec<(PathBuf, Contamination)> {
    let texts: Vec<&str> = sample.iter().map(|s| s.1.as_str()).collect();
    let v = d.check_batch(&texts).unwrap();
    sample
        .iter()
        .zip(v)
        .filter_map(|(s, c)| c.map(|c| (s.0.clone(), c)))
        .collect()
}

/// False positives on a sample of real code without benchmarks (always on;
/// the full measurement is `false_positives_on_all_local_code`).
#[test]
fn no_false_positives_on_a_sample_of_real_code() {
    if !real("no_false_positives_on_a_sample_of_real_code") {
        return;
    }
    let d = all_benchmarks();
    let mut s = sample(&files(&python_stdlib(), "py", &[]), 11, 6 << 20, 300_000);
    s.extend(sample(
        &files(&cargo_registry(), "rs", &[]),
        13,
        6 << 20,
        300_000,
    ));
    let flagged = flagged_report(&s, d);
    for (p, c) in &flagged {
        println!(
            "FLAGGED {} {}",
            p.display(),
            serde_json::to_string(c).unwrap()
        );
    }
    println!("{} of {} real files flagged", flagged.len(), s.len());
    assert!(s.len() > 1000, "sample too small: {}", s.len());
    // Under 0.1% of a sample of this size means none.
    assert!(
        (flagged.len() as f64) < 0.001 * s.len() as f64,
        "{} false positives",
        flagged.len()
    );
}

/// The full measurement behind docs/decontamination.md.
#[test]
#[ignore = "reads ~700 MB of local code; run in release with --ignored --nocapture"]
fn false_positives_on_all_local_code() {
    if !real("false_positives_on_all_local_code") {
        return;
    }
    let d = all_benchmarks();
    let mut total_files = 0usize;
    let mut total_bytes = 0usize;
    let mut all_flagged = Vec::new();
    for (name, list) in [
        ("python", files(&python_stdlib(), "py", &[])),
        ("rust", files(&cargo_registry(), "rs", &[])),
    ] {
        let started = std::time::Instant::now();
        let mut n = 0;
        let mut bytes = 0;
        let mut flagged = 0;
        for chunk in list.chunks(2000) {
            let s: Vec<(PathBuf, String)> = chunk
                .iter()
                .filter(|p| {
                    std::fs::metadata(p)
                        .map(|m| m.len() <= 2_000_000)
                        .unwrap_or(false)
                })
                .map(|p| (p.clone(), read_lossy(p)))
                .collect();
            n += s.len();
            bytes += s.iter().map(|x| x.1.len()).sum::<usize>();
            let f = flagged_report(&s, d);
            flagged += f.len();
            all_flagged.extend(f);
        }
        println!(
            "{name}: {flagged} of {n} files flagged ({:.4}%), {:.1} MB in {:.1}s",
            100.0 * flagged as f64 / n as f64,
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        total_files += n;
        total_bytes += bytes;
    }
    for (p, c) in &all_flagged {
        println!(
            "FLAGGED {} {}",
            p.display(),
            serde_json::to_string(c).unwrap()
        );
    }
    let rate = all_flagged.len() as f64 / total_files as f64;
    println!(
        "total: {} of {total_files} files ({:.1} MB) flagged: {:.4}%",
        all_flagged.len(),
        total_bytes as f64 / 1e6,
        100.0 * rate
    );
    assert!(rate < 0.001, "false-positive rate {:.4}%", 100.0 * rate);
}

/// The measurements behind the defaults (docs/decontamination.md): for each
/// n-gram length in `DECONTAM_SWEEP_N` (default 10,13), recall on the
/// planted corpus and flagged files on all local code, for a grid of
/// `--min-matches` and `--min-exact-len`. The two tiers are measured apart
/// (an exact-only and an n-gram-only index) and combined per file.
#[test]
#[ignore = "minutes in release: cargo test --release --test decontam parameter_sweep -- --ignored --nocapture"]
fn parameter_sweep() {
    if !real("parameter_sweep") {
        return;
    }
    const KS: &[u32] = &[3, 4, 5, 6, 8, 10, 12, 15, 20];
    const LS: &[usize] = &[16, 24, 32, 40, 48, 64];
    let ns: Vec<usize> = std::env::var("DECONTAM_SWEEP_N")
        .unwrap_or_else(|_| "10,13".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let (backend, _) = select(BackendKind::Cpu).unwrap();
    let exact_only = Decontaminator::build(
        &DecontamConfig {
            min_exact_len: LS[0],
            min_matches: usize::MAX,
            ..config()
        },
        backend.clone(),
    )
    .unwrap();
    let planted = planted_corpus();
    let mut real: Vec<String> = Vec::new();
    for list in [
        files(&python_stdlib(), "py", &[]),
        files(&cargo_registry(), "rs", &[]),
    ] {
        for p in list {
            if std::fs::metadata(&p)
                .map(|m| m.len() <= 2_000_000)
                .unwrap_or(false)
            {
                real.push(read_lossy(&p));
            }
        }
    }
    println!(
        "planted files: {}, real files: {}",
        planted.len(),
        real.len()
    );
    // Longest exact match per file (0: none).
    let longest = |texts: &[&str]| -> Vec<usize> {
        texts
            .chunks(4096)
            .flat_map(|c| exact_only.check_batch(c).unwrap())
            .map(|v| v.map_or(0, |c| c.items[0].matched_len.unwrap_or(0)))
            .collect()
    };
    let planted_texts: Vec<&str> = planted.iter().map(|p| p.2.as_str()).collect();
    let real_texts: Vec<&str> = real.iter().map(String::as_str).collect();
    let planted_exact = longest(&planted_texts);
    let real_exact = longest(&real_texts);
    for n in ns {
        let started = std::time::Instant::now();
        let ngram_only = Decontaminator::build(
            &DecontamConfig {
                ngram: n,
                min_exact_len: usize::MAX,
                min_matches: 1,
                ..config()
            },
            backend.clone(),
        )
        .unwrap();
        let most = |texts: &[&str]| -> Vec<u32> {
            texts
                .chunks(4096)
                .flat_map(|c| ngram_only.check_batch(c).unwrap())
                .map(|v| v.map_or(0, |c| c.items[0].ngrams.unwrap_or(0)))
                .collect()
        };
        let planted_ngram = most(&planted_texts);
        let real_ngram = most(&real_texts);
        println!("\nn = {n} ({:.1}s)", started.elapsed().as_secs_f64());
        println!("min-exact-len x min-matches: recall % / flagged real files");
        for &l in LS {
            let row: Vec<String> = KS
                .iter()
                .map(|&k| {
                    let hit = |e: usize, g: u32| e >= l || g >= k;
                    let rec = planted_exact
                        .iter()
                        .zip(&planted_ngram)
                        .filter(|(&e, &g)| hit(e, g))
                        .count();
                    let fp = real_exact
                        .iter()
                        .zip(&real_ngram)
                        .filter(|(&e, &g)| hit(e, g))
                        .count();
                    format!("k{k}:{:.2}/{fp}", 100.0 * rec as f64 / planted.len() as f64)
                })
                .collect();
            println!("L{l:<3} {}", row.join(" "));
        }
        let tiers: Vec<String> = KS
            .iter()
            .map(|&k| format!("k{k}:{}", real_ngram.iter().filter(|&&g| g >= k).count()))
            .collect();
        println!("n-gram tier alone, flagged real files: {}", tiers.join(" "));
        let exact: Vec<String> = LS
            .iter()
            .map(|&l| format!("L{l}:{}", real_exact.iter().filter(|&&e| e >= l).count()))
            .collect();
        println!("exact tier alone, flagged real files: {}", exact.join(" "));
    }
}

/// Verdicts do not depend on batch composition, order or size.
#[test]
fn verdicts_do_not_depend_on_batching() {
    if !real("verdicts_do_not_depend_on_batching") {
        return;
    }
    let d = all_benchmarks();
    let corpus = planted_corpus();
    let mut texts: Vec<&str> = corpus.iter().step_by(37).map(|c| c.2.as_str()).collect();
    let host = read_lossy(&python_stdlib().join("textwrap.py"));
    texts.push(&host);
    texts.push("");
    let all = d.check_batch(&texts).unwrap();
    let one_by_one: Vec<_> = texts
        .iter()
        .map(|t| d.check_batch(&[t]).unwrap().remove(0))
        .collect();
    assert_eq!(all, one_by_one);
    let mut rev = texts.clone();
    rev.reverse();
    let mut back = d.check_batch(&rev).unwrap();
    back.reverse();
    assert_eq!(all, back);
    assert!(all.iter().filter(|v| v.is_some()).count() > texts.len() / 2);
}

/// Every item of every benchmark in the directory is loaded.
#[test]
fn all_bundled_benchmarks_load_with_their_item_counts() {
    if !real("all_bundled_benchmarks_load_with_their_item_counts") {
        return;
    }
    let d = all_benchmarks();
    let counts: BTreeMap<&str, usize> = d
        .benchmarks()
        .iter()
        .map(|b| (b.name.as_str(), b.items))
        .collect();
    assert_eq!(counts["humaneval"], 164);
    assert_eq!(counts["mbpp"], 974);
    assert_eq!(counts["mbppplus"], 399);
    // 19 MultiPL-E languages (cs twice) and HumanEval-X Python.
    let multilang: usize = std::fs::read_dir(bench_dir().join("humaneval-multilang"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            rows(&format!("humaneval-multilang/{name}")).len()
        })
        .sum();
    assert_eq!(counts["multipl_e"], multilang);
    assert!(d.describe().contains("humaneval (164 items)"));
}

// Regression tests: one per false positive found while tuning the thresholds
// on real code. The real files are read from this machine at test time (we do
// not copy third-party code); the snippets are written for these tests.

/// Files flagged at some point of the tuning, and which rule cleared them:
/// - `test_future.py`: `.replace("(", "").replace(")", "")` shared with MBPP
///   785 (8 13-grams at the final settings): cleared by listing
///   standard-library names as generic words.
/// - the grammar tests, `pydoc_data/topics.py`, `test_encode_basestring_ascii.py`
///   and aws-smithy-http's `receiver.rs`: runs of number words (`'one',
///   'two', 'three', ...`) shared with HumanEval 19 and 105: cleared by not
///   letting quoted words make an n-gram rare.
/// - `test_pwd.py`, sympy's `lra_theory.py`, `crypto.py`, `matrixbase.py`,
///   networkx's `test_trophic.py`, `statistics.py`: generic loops and data
///   matched at n = 10 with few matches (the prototype): cleared by n = 13,
///   8 matches and the rare-token rule.
#[test]
fn regression_real_files_flagged_while_tuning_are_clean() {
    if !real("regression_real_files_flagged_while_tuning_are_clean") {
        return;
    }
    let d = all_benchmarks();
    let stdlib = python_stdlib();
    let mut paths: Vec<PathBuf> = [
        "test/test_future_stmt/test_future.py",
        "lib2to3/tests/data/py2_test_grammar.py",
        "lib2to3/tests/data/py3_test_grammar.py",
        "pydoc_data/topics.py",
        "test/test_grammar.py",
        "test/test_json/test_encode_basestring_ascii.py",
        "test/test_pwd.py",
        "statistics.py",
        "site-packages/sympy/logic/algorithms/lra_theory.py",
        "site-packages/sympy/crypto/crypto.py",
        "site-packages/sympy/matrices/matrixbase.py",
        "site-packages/networkx/algorithms/centrality/tests/test_trophic.py",
    ]
    .iter()
    .map(|p| stdlib.join(p))
    .collect();
    for index in std::fs::read_dir(cargo_registry())
        .into_iter()
        .flatten()
        .flatten()
    {
        for krate in std::fs::read_dir(index.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if krate
                .file_name()
                .to_string_lossy()
                .starts_with("aws-smithy-http-0")
            {
                paths.push(krate.path().join("src/event_stream/receiver.rs"));
            }
        }
    }
    let present: Vec<(PathBuf, String)> = paths
        .into_iter()
        .filter_map(|p| match std::fs::read(&p) {
            Ok(b) => Some((p, String::from_utf8_lossy(&b).into_owned())),
            Err(_) => {
                println!("not on this machine, skipped: {}", p.display());
                None
            }
        })
        .collect();
    println!("{} regression files present", present.len());
    let flagged = flagged_report(&present, d);
    assert!(flagged.is_empty(), "flagged: {flagged:?}");
}

/// The shape behind most false positives of the tuning: a table of number
/// words, which HumanEval 19 and 105 also list.
#[test]
fn regression_number_word_tables_are_clean() {
    if !real("regression_number_word_tables_are_clean") {
        return;
    }
    let d = all_benchmarks();
    let text = "WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine']\nNAMES = {1: \"One\", 2: \"Two\", 3: \"Three\", 4: \"Four\", 5: \"Five\", 6: \"Six\", 7: \"Seven\", 8: \"Eight\", 9: \"Nine\"}\n\ndef spell(n):\n    return ' '.join(WORDS[int(c)] for c in str(n))\n";
    assert_eq!(d.check_batch(&[text]).unwrap()[0], None);
}

/// Chains of standard-library calls (the shape of the test_future.py hit).
#[test]
fn regression_library_call_chains_are_clean() {
    if !real("regression_library_call_chains_are_clean") {
        return;
    }
    let d = all_benchmarks();
    let text = "def clean(actual):\n    actual = actual.replace(\"(\", \"\").replace(\")\", \"\").replace(\" \", \"\")\n    return tuple(int(x) for x in actual.split(\",\"))\n";
    assert_eq!(d.check_batch(&[text]).unwrap()[0], None);
}

/// Generic nested loops (the shape of the n = 10 hits on HumanEval 40).
#[test]
fn regression_triple_loops_are_clean() {
    if !real("regression_triple_loops_are_clean") {
        return;
    }
    let d = all_benchmarks();
    let text = "def triples(l):\n    out = []\n    for i in range(len(l)):\n        for j in range(i + 1, len(l)):\n            for k in range(j + 1, len(l)):\n                out.append((l[i], l[j], l[k]))\n    return out\n";
    assert_eq!(d.check_batch(&[text]).unwrap()[0], None);
}

// ------------------------------------------------------- command line

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn record(text: &str, path: &str) -> String {
    serde_json::json!({
        "text": text, "language": "python", "license": "mit", "stars": 3,
        "path": path, "repo": "o/r"
    })
    .to_string()
}

/// An input of clean real files and two contaminated ones.
fn cli_input(t: &TestDir) -> (PathBuf, Vec<String>) {
    let dir = fixtures(t);
    let he = rows_in(&dir, "HumanEval.jsonl.gz");
    let mbpp = rows_in(&dir, "mbpp.jsonl");
    let clean = [
        read_lossy(&python_stdlib().join("textwrap.py")),
        read_lossy(&python_stdlib().join("colorsys.py")),
        read_lossy(&python_stdlib().join("bisect.py")),
    ];
    let contaminated_he = format!(
        "import os\n\n{}{}\n\nprint('done')\n",
        field(&he[10], "prompt"),
        field(&he[10], "canonical_solution")
    );
    let contaminated_mbpp = add_comments(&field(&mbpp[100], "code"), "#", &mut Rng(5));
    let lines = vec![
        record(&clean[0], "a/textwrap.py"),
        record(&contaminated_he, "b/he.py"),
        record(&clean[1], "c/colorsys.py"),
        record(&contaminated_mbpp, "d/mbpp.py"),
        record(&clean[2], "e/bisect.py"),
    ];
    let p = t.join("in.jsonl");
    write(&p, &(lines.join("\n") + "\n"));
    (p, lines)
}

#[test]
fn cli_removes_contaminated_files_and_keeps_the_rest_byte_identical() {
    let t = TestDir::new();
    let (input, lines) = cli_input(&t);
    let out = run_expect(
        t.cmd()
            .args(["decontaminate", "--backend", "cpu", "--input"])
            .arg(&input)
            .args([
                "--output",
                "out.jsonl",
                "--report",
                "report.jsonl",
                "--benchmark-dir",
            ])
            .arg(t.join("fixtures")),
        0,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("backend cpu"), "{stderr}");
    assert!(stderr.contains("decontam_humaneval_exact=1"), "{stderr}");
    assert!(stderr.contains("overall"), "{stderr}");
    let got = std::fs::read_to_string(t.join("out.jsonl")).unwrap();
    assert_eq!(got, format!("{}\n{}\n{}\n", lines[0], lines[2], lines[4]));
    let report = read_jsonl(&t.join("report.jsonl"));
    assert_eq!(report.len(), 2);
    assert_eq!(report[0]["line"], 2);
    assert_eq!(report[0]["path"], "b/he.py");
    assert_eq!(report[0]["action"], "dropped");
    assert_eq!(report[0]["contamination"]["tier"], "exact");
    let items = report[0]["contamination"]["items"].as_array().unwrap();
    assert!(items
        .iter()
        .any(|i| i["id"] == "HumanEval/10" && i["benchmark"] == "humaneval"));
    assert!(items[0]["matched"].as_str().unwrap().len() > 20);
    assert_eq!(report[1]["path"], "d/mbpp.py");
    assert!(report[1]["reason"]
        .as_str()
        .unwrap()
        .starts_with("decontam_mbpp"));
}

#[test]
fn cli_flag_only_keeps_every_file_and_marks_the_contaminated() {
    let t = TestDir::new();
    let (input, lines) = cli_input(&t);
    let gz = t.join("in.jsonl.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        e.write_all(&std::fs::read(&input).unwrap()).unwrap();
        e.finish().unwrap();
    }
    run_expect(
        t.cmd()
            .args([
                "decontaminate",
                "--backend",
                "cpu",
                "--flag-only",
                "--input",
            ])
            .arg(&gz)
            .args(["--output", "out.jsonl", "--benchmark-dir"])
            .arg(t.join("fixtures")),
        0,
    );
    let got = std::fs::read_to_string(t.join("out.jsonl")).unwrap();
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(got.len(), 5);
    for i in [0, 2, 4] {
        assert_eq!(got[i], lines[i]);
    }
    for i in [1, 3] {
        let base = &lines[i][..lines[i].len() - 1];
        assert!(got[i].starts_with(base));
        let v: serde_json::Value = serde_json::from_str(got[i]).unwrap();
        assert!(v["contamination"]["benchmark"].is_string());
    }
}

/// Same output and report bytes with 1 and 2 threads.
#[test]
fn cli_output_does_not_depend_on_thread_count() {
    let t = TestDir::new();
    let (input, _) = cli_input(&t);
    let mut outs = Vec::new();
    for threads in ["1", "2"] {
        let out = format!("out{threads}.jsonl");
        let rep = format!("rep{threads}.jsonl");
        run_expect(
            t.cmd()
                .env("RAYON_NUM_THREADS", threads)
                .args(["decontaminate", "--backend", "cpu", "--input"])
                .arg(&input)
                .args(["--output", &out, "--report", &rep, "--benchmark-dir"])
                .arg(t.join("fixtures")),
            0,
        );
        outs.push((
            std::fs::read(t.join(&out)).unwrap(),
            std::fs::read(t.join(&rep)).unwrap(),
        ));
    }
    assert_eq!(outs[0], outs[1]);
    assert!(!outs[0].1.is_empty());
}

#[test]
fn cli_counts_invalid_records_and_exits_1() {
    let t = TestDir::new();
    let good = record("x = 1\n", "a.py");
    write(
        &t.join("in.jsonl"),
        &format!("{good}\n{{\"text\": 5}}\nnot json\n"),
    );
    let out = run_expect(
        t.cmd()
            .args([
                "decontaminate",
                "--backend",
                "cpu",
                "--input",
                "in.jsonl",
                "--output",
                "o.jsonl",
            ])
            .arg("--benchmark-dir")
            .arg(fixtures(&t)),
        1,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in.jsonl: line 2: not a record"),
        "{stderr}"
    );
    assert!(stderr.contains("decontam_invalid_record=2"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(t.join("o.jsonl")).unwrap(),
        format!("{good}\n")
    );
}

#[test]
fn cli_errors_name_what_to_do() {
    let t = TestDir::new();
    write(&t.join("in.jsonl"), &record("x", "a.py"));
    let run = |extra: &[&str]| {
        let mut c = t.cmd();
        c.args([
            "decontaminate",
            "--backend",
            "cpu",
            "--input",
            "in.jsonl",
            "--output",
            "o.jsonl",
        ]);
        c.args(extra);
        let out = run_expect(&mut c, 2);
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // No benchmark directory at all (the temp dir has no ../shared).
    let e = run(&[]);
    assert!(e.contains("--benchmark-dir"), "{e}");
    let e = run(&["--benchmark-dir", "nowhere"]);
    assert!(
        e.contains("benchmark directory nowhere does not exist"),
        "{e}"
    );
    let bd = fixtures(&t).display().to_string();
    let e = run(&["--benchmark-dir", &bd, "--benchmarks", "humaneval,apps"]);
    assert!(e.contains("unknown benchmark \"apps\""), "{e}");
    let e = run(&["--benchmark-dir", &bd, "--benchmarks", "ds1000"]);
    assert!(e.contains("benchmark ds1000: no file for it"), "{e}");
    assert!(!t.join("o.jsonl").exists());
}

/// Until the Hub client lands (remote-sources issue) this checks only the
/// offline error; with the client, a closed local port gives the same one.
#[test]
fn cli_hub_source_offline_says_how_to_work_offline() {
    let t = TestDir::new();
    write(&t.join("in.jsonl"), &record("x", "a.py"));
    let out = run_expect(
        t.cmd()
            .env("HF_ENDPOINT", "http://127.0.0.1:9")
            .args([
                "decontaminate",
                "--backend",
                "cpu",
                "--input",
                "in.jsonl",
                "--output",
                "o.jsonl",
            ])
            .args([
                "--benchmark-source",
                "hub",
                "--benchmarks",
                "humaneval",
                "--benchmark-cache",
            ])
            .arg(t.join("cache")),
        2,
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains(
            "cannot load benchmark humaneval from the Hugging Face Hub (openai/openai_humaneval)"
        ),
        "{e}"
    );
    assert!(
        e.contains("--benchmark-source local with --benchmark-dir"),
        "{e}"
    );
}

#[test]
fn cli_user_benchmark_file_with_fields() {
    let t = TestDir::new();
    let solution = "def rotate_matrix_clockwise(matrix):\n    size = len(matrix)\n    rotated = [[None] * size for _ in range(size)]\n    for r, row in enumerate(matrix):\n        for c, value in enumerate(row):\n            rotated[c][size - 1 - r] = value\n    return rotated\n";
    let bench = serde_json::json!({"id": "apps-7", "question": "Rotate a square matrix by 90 degrees clockwise.", "solution": solution});
    write(&t.join("apps.jsonl"), &format!("{bench}\n"));
    let planted = format!(
        "import sys\n\n{}\n\nif __name__ == '__main__':\n    print(1)\n",
        reindent(solution, "  ")
    );
    write(
        &t.join("in.jsonl"),
        &format!(
            "{}\n{}\n",
            record(&planted, "x.py"),
            record("print('hello world')\n", "y.py")
        ),
    );
    let out = run_expect(
        t.cmd()
            .args([
                "decontaminate",
                "--backend",
                "cpu",
                "--input",
                "in.jsonl",
                "--output",
                "o.jsonl",
            ])
            .args([
                "--benchmarks",
                "none",
                "--benchmark-file",
                "apps=apps.jsonl",
                "--fields",
                "question,solution",
            ])
            .args(["--report", "r.jsonl"]),
        0,
    );
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("apps (1 items)"), "{e}");
    assert!(e.contains("decontam_apps_exact=1"), "{e}");
    let r = read_jsonl(&t.join("r.jsonl"));
    assert_eq!(r[0]["contamination"]["items"][0]["id"], "apps-7");
    assert_eq!(r[0]["contamination"]["items"][0]["field"], "solution");
    assert_eq!(read_jsonl(&t.join("o.jsonl")).len(), 1);
}

// ------------------------------------------------ DS-1000 and Parquet

/// DS-1000 in its published format (fields prompt, reference_code, metadata,
/// code_context), written here, including a perturbation of problem 0.
fn write_ds1000(dir: &Path) {
    let prompt0 = "Problem:\nI have a DataFrame with columns city and temperature_celsius and I want the mean temperature of each city, sorted from the warmest city to the coldest one, as a Series named avg_temp.\nA:\n<code>\nimport pandas as pd\ndf = pd.DataFrame({'city': ['Oslo', 'Rome', 'Oslo'], 'temperature_celsius': [3, 18, 5]})\n</code>\nresult = ... # put solution in this variable\nBEGIN SOLUTION\n<code>\n";
    let ref0 = "result = df.groupby('city')['temperature_celsius'].mean().sort_values(ascending=False).rename('avg_temp')\n";
    let ctx = "import pandas as pd\nimport copy\n\ndef generate_test_case(test_case_id):\n    def define_test_input(test_case_id):\n        return pd.DataFrame({'city': ['Oslo', 'Rome'], 'temperature_celsius': [3, 18]})\n    df = define_test_input(test_case_id)\n    return df, None\n";
    let rows = [
        serde_json::json!({"prompt": prompt0, "reference_code": ref0, "code_context": ctx,
            "metadata": {"problem_id": 0, "library_problem_id": 0, "library": "Pandas", "test_case_cnt": 1, "perturbation_type": "Origin", "perturbation_origin_id": 0}}),
        serde_json::json!({"prompt": prompt0.replace("warmest city to the coldest", "coldest city to the warmest"), "reference_code": ref0.replace("False", "True"), "code_context": ctx,
            "metadata": {"problem_id": 1, "library_problem_id": 1, "library": "Pandas", "test_case_cnt": 1, "perturbation_type": "Semantic", "perturbation_origin_id": 0}}),
    ];
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::create_dir_all(dir).unwrap();
    write(&dir.join("ds1000.jsonl"), &text);
}

#[test]
fn ds1000_loader_reads_the_published_format() {
    let t = TestDir::new();
    let bd = t.join("benchmarks");
    write_ds1000(&bd);
    let (backend, _) = select(BackendKind::Cpu).unwrap();
    let d = Decontaminator::build(
        &DecontamConfig {
            benchmark_dir: Some(bd.clone()),
            benchmarks: vec!["ds1000".into()],
            ..DecontamConfig::default()
        },
        backend,
    )
    .unwrap();
    assert_eq!(d.benchmarks()[0].items, 2);
    let file = "import numpy as np\nimport pandas as pd\n\ndef summarise(df):\n    result = df.groupby('city')['temperature_celsius'].mean().sort_values(\n        ascending=False\n    ).rename('avg_temp')\n    return result\n";
    let c = d.check_batch(&[file]).unwrap().remove(0).expect("caught");
    assert_eq!(c.reason(), "decontam_ds1000_exact");
    assert_eq!(c.items[0].id, "0");
    assert_eq!(c.items[0].field.as_deref(), Some("reference_code"));
    let clean = "import pandas as pd\ndf = pd.read_csv('x.csv')\nprint(df.groupby('a').sum())\n";
    assert_eq!(d.check_batch(&[clean]).unwrap()[0], None);
}

/// MBPP in the Hub's Parquet layout (`full/test-00000-of-00001.parquet`:
/// task_id int, text, code, test_list list<string>, ...), read from a local
/// directory named after the benchmark.
#[test]
fn mbpp_parquet_in_the_hub_layout_loads() {
    use arrow_array::builder::{ListBuilder, StringBuilder};
    use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
    let t = TestDir::new();
    let dir = t.join("benchmarks/mbpp");
    std::fs::create_dir_all(&dir).unwrap();
    let src = rows_in(&fixtures(&t), "mbpp.jsonl");
    let picked: Vec<&Row> = src.iter().take(20).collect();
    let mut tests = ListBuilder::new(StringBuilder::new());
    for r in &picked {
        for a in r.fields["test_list"].as_array().unwrap() {
            tests.values().append_value(a.as_str().unwrap());
        }
        tests.append(true);
    }
    let cols: Vec<(&str, ArrayRef)> = vec![
        (
            "task_id",
            Arc::new(Int64Array::from_iter_values(
                picked.iter().map(|r| r.fields["task_id"].as_i64().unwrap()),
            )),
        ),
        (
            "text",
            Arc::new(StringArray::from_iter_values(
                picked.iter().map(|r| field(r, "text")),
            )),
        ),
        (
            "code",
            Arc::new(StringArray::from_iter_values(
                picked.iter().map(|r| field(r, "code")),
            )),
        ),
        ("test_list", Arc::new(tests.finish())),
    ];
    let batch = RecordBatch::try_from_iter(cols).unwrap();
    let file = std::fs::File::create(dir.join("test-00000-of-00001.parquet")).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let (backend, _) = select(BackendKind::Cpu).unwrap();
    let d = Decontaminator::build(
        &DecontamConfig {
            benchmark_dir: Some(t.join("benchmarks")),
            ..DecontamConfig::default()
        },
        backend,
    )
    .unwrap();
    assert_eq!(d.benchmarks().len(), 1);
    assert_eq!(d.benchmarks()[0].name, "mbpp");
    assert_eq!(d.benchmarks()[0].items, 20);
    let code = field(picked[0], "code");
    let c = d.check_batch(&[&code]).unwrap().remove(0).expect("caught");
    assert_eq!(c.items[0].id, field(picked[0], "task_id"));
}

// ---------------------------------------------------------------- Hub

/// The one commit of [`local_hub`]'s repositories (`main` points to it).
const HUB_COMMIT: &str = "abcdefabcdefabcdefabcdefabcdefabcdefabcd";

/// A minimal Hugging Face Hub on 127.0.0.1 for the given `(repo, path,
/// bytes)` files: `GET /api/datasets/{repo}/revision/main` answers
/// `{"sha": HUB_COMMIT}`, `GET /api/datasets/{repo}/tree/{commit}[/{prefix}]`
/// lists them (JSON array of `{"type":"file","path","size","oid"}`, the oid
/// being the git blob id), `GET /datasets/{repo}/resolve/{commit}/{path}`
/// serves them. Returns the endpoint and the log of requested paths.
fn local_hub(
    files: Vec<(String, String, Vec<u8>)>,
) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log2 = log.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
            }
            let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
            log2.lock().unwrap().push(target.clone());
            let path = target.split('?').next().unwrap_or("");
            let mut body: Option<(Vec<u8>, &str)> = None;
            for (repo, _, _) in &files {
                if path == format!("/api/datasets/{repo}/revision/main") {
                    let sha = serde_json::json!({ "sha": HUB_COMMIT });
                    body = Some((serde_json::to_vec(&sha).unwrap(), "application/json"));
                    break;
                }
                if let Some(rest) =
                    path.strip_prefix(&format!("/api/datasets/{repo}/tree/{HUB_COMMIT}"))
                {
                    let prefix = rest.trim_start_matches('/');
                    let list: Vec<serde_json::Value> = files
                        .iter()
                        .filter(|(r, p, _)| r == repo && p.starts_with(prefix))
                        .map(|(_, p, b)| serde_json::json!({"type": "file", "path": p, "size": b.len(), "oid": git_blob_id(b)}))
                        .collect();
                    body = Some((serde_json::to_vec(&list).unwrap(), "application/json"));
                    break;
                }
                for (r, p, b) in &files {
                    if r == repo && path == format!("/datasets/{repo}/resolve/{HUB_COMMIT}/{p}") {
                        body = Some((b.clone(), "application/octet-stream"));
                    }
                }
            }
            let (status, (bytes, ctype)) = match body {
                Some(b) => ("200 OK", b),
                None => (
                    "404 Not Found",
                    (b"{\"error\":\"not found\"}".to_vec(), "application/json"),
                ),
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: {ctype}\r\nConnection: close\r\n\r\n",
                bytes.len()
            );
            let _ = conn.write_all(&bytes);
        }
    });
    (endpoint, log)
}

/// Git's blob id of `bytes` (sha1 of `blob LEN\0` + bytes): the `oid` the
/// Hub lists, and the etag of a non-LFS file.
fn git_blob_id(bytes: &[u8]) -> String {
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex::encode(h.finalize())
}

/// HumanEval rows in the Hub's Parquet schema (task_id, prompt,
/// canonical_solution, test, entry_point).
fn humaneval_parquet(rows: &[Row]) -> Vec<u8> {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    let col = |f: &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| field(r, f)),
        ))
    };
    let batch = RecordBatch::try_from_iter(
        [
            "task_id",
            "prompt",
            "canonical_solution",
            "test",
            "entry_point",
        ]
        .into_iter()
        .map(|f| (f, col(f))),
    )
    .unwrap();
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    out
}

/// `--benchmark-source hub` against a local Hub: HumanEval as Parquet in
/// `openai/openai_humaneval`, DS-1000 as `test.jsonl` in `xlangai/DS-1000`.
/// Until the Hub client lands (remote-sources issue) the client refuses every
/// request; the test then only prints that it was skipped.
#[test]
fn hub_source_downloads_and_reads_the_published_layouts() {
    let t = TestDir::new();
    let he: Vec<Row> = rows_in(&fixtures(&t), "HumanEval.jsonl.gz")
        .into_iter()
        .take(10)
        .collect();
    write_ds1000(&t.join("ds"));
    let ds = std::fs::read(t.join("ds/ds1000.jsonl")).unwrap();
    let (endpoint, log) = local_hub(vec![
        (
            "openai/openai_humaneval".into(),
            "README.md".into(),
            b"# HE\n".to_vec(),
        ),
        (
            "openai/openai_humaneval".into(),
            "openai_humaneval/test-00000-of-00001.parquet".into(),
            humaneval_parquet(&he),
        ),
        ("xlangai/DS-1000".into(), "test.jsonl".into(), ds),
    ]);
    let planted = plant(
        &read_lossy(&python_stdlib().join("bisect.py")),
        &(field(&he[3], "prompt") + &field(&he[3], "canonical_solution")),
    );
    write(
        &t.join("in.jsonl"),
        &format!(
            "{}\n{}\n",
            record(&planted, "p.py"),
            record("print(1)\n", "q.py")
        ),
    );
    let mut cmd = t.cmd();
    cmd.env("HF_ENDPOINT", &endpoint)
        .args([
            "decontaminate",
            "--backend",
            "cpu",
            "--input",
            "in.jsonl",
            "--output",
            "o.jsonl",
        ])
        .args([
            "--benchmark-source",
            "hub",
            "--benchmarks",
            "humaneval,ds1000",
        ])
        .args(["--benchmark-cache", "cache", "--report", "r.jsonl"]);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(2) && stderr.contains("not implemented yet") {
        println!("skipped: the Hub client of this build is not implemented yet: {stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("humaneval (10 items), ds1000 (2 items)"),
        "{stderr}"
    );
    let r = read_jsonl(&t.join("r.jsonl"));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["reason"], "decontam_humaneval_exact");
    assert_eq!(r[0]["contamination"]["items"][0]["id"], "HumanEval/3");
    assert_eq!(read_jsonl(&t.join("o.jsonl")).len(), 1);
    let log = log.lock().unwrap();
    assert!(
        log.iter().any(|p| p.contains(&format!(
            "/resolve/{HUB_COMMIT}/openai_humaneval/test-00000-of-00001.parquet"
        ))),
        "{log:?}"
    );
    assert!(!log.iter().any(|p| p.contains("README.md")), "{log:?}");
}
