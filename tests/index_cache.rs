//! The benchmark index cache: an index read from the cache is the index a
//! build makes (same arrays, same verdicts), a changed benchmark file or
//! setting is never served a stale entry, a damaged entry is rebuilt, and a
//! cache that cannot be written never fails a run.
//!
//! The generated benchmark files of the other decontamination tests, plus the
//! real copies in `../shared/benchmarks` when they are here (required in CI).

mod common;

use common::{real_benchmarks, run_expect, write_benchmark_fixtures, TestDir};
use std::path::{Path, PathBuf};
use tritter_gpu::backends::{select, BackendKind};
use tritter_gpu::decontam::index_cache::{IndexCache, Lookup, MAX_ENTRIES};
use tritter_gpu::decontam::rows::{read_rows, text_field, Format};
use tritter_gpu::decontam::{CacheUse, Contamination, DecontamConfig, Decontaminator};

fn build(cfg: &DecontamConfig) -> Decontaminator {
    let (backend, _) = select(BackendKind::Cpu).unwrap();
    Decontaminator::build(cfg, backend).unwrap()
}

/// A test directory with the generated benchmark files in `bench/` and an
/// index cache directory `cache/` (not made yet).
fn fixtures_and_cache() -> (TestDir, PathBuf, PathBuf) {
    let t = TestDir::new();
    let fixtures = write_benchmark_fixtures(&t.join("bench"));
    let cache = t.join("cache");
    (t, fixtures, cache)
}

fn config(benchmarks: &Path, cache: &Path) -> DecontamConfig {
    DecontamConfig {
        benchmark_dir: Some(benchmarks.to_path_buf()),
        index_cache: Some(cache.to_path_buf()),
        ..DecontamConfig::default()
    }
}

/// Texts to judge: every generated HumanEval prompt with its solution (each
/// contaminated), the same with the function renamed and re-indented, and
/// files of the Python standard library (clean).
fn texts(benchmarks: &Path) -> Vec<String> {
    let rows = read_rows(
        &benchmarks.join("HumanEval.jsonl.gz"),
        Format::Jsonl,
        "HumanEval.jsonl.gz",
    )
    .unwrap();
    let mut out = Vec::new();
    for r in &rows {
        let prompt = text_field(r, "prompt").unwrap();
        let solution = text_field(r, "canonical_solution").unwrap();
        out.push(format!("import os\n\n{prompt}{solution}\n"));
        out.push(solution.replace("    ", "  ").replace("fixture", "other"));
    }
    let stdlib = PathBuf::from("/usr/lib/python3");
    let mut clean: Vec<PathBuf> =
        std::fs::read_dir(std::fs::canonicalize(&stdlib).unwrap_or(stdlib))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "py"))
            .collect();
    clean.sort();
    for p in clean.into_iter().take(40) {
        out.push(String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned());
    }
    out
}

fn verdicts(d: &Decontaminator, texts: &[String]) -> Vec<Option<Contamination>> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    d.check_batch(&refs).unwrap()
}

fn stored_path(d: &Decontaminator) -> PathBuf {
    match d.cache_use() {
        CacheUse::Stored(p) => p.clone(),
        other => panic!("expected a stored entry, got {other:?}"),
    }
}

/// Both builds hold the same index, part by part.
fn assert_same_index(a: &Decontaminator, b: &Decontaminator) {
    assert_eq!(a.index_summary(), b.index_summary());
    assert_eq!(a.benchmarks(), b.benchmarks());
    assert_eq!(a.ngram_index().parts(), b.ngram_index().parts());
    assert_eq!(a.exact_index().parts(), b.exact_index().parts());
}

#[test]
fn a_cached_index_is_the_built_index() {
    let (_t, fixtures, cache) = fixtures_and_cache();
    let built = build(&config(&fixtures, &cache));
    let entry = stored_path(&built);
    assert!(entry.is_file(), "{}", entry.display());
    let read = build(&config(&fixtures, &cache));
    assert_eq!(read.cache_use(), &CacheUse::Loaded(entry.clone()));
    assert_same_index(&built, &read);
    let uncached = build(&DecontamConfig {
        index_cache: None,
        ..config(&fixtures, &cache)
    });
    assert_eq!(uncached.cache_use(), &CacheUse::Off);
    assert_same_index(&uncached, &read);
    let texts = texts(&fixtures);
    let v = verdicts(&read, &texts);
    assert!(
        v.iter().filter(|c| c.is_some()).count() >= 20,
        "the planted solutions are found"
    );
    assert!(
        v[40..].iter().all(Option::is_none),
        "library files are clean"
    );
    assert_eq!(v, verdicts(&uncached, &texts));
    // Thresholds that only judge hits are not in the key: the cached index
    // with --min-matches 1 judges as a build with it.
    let strict = DecontamConfig {
        min_matches: 1,
        ..config(&fixtures, &cache)
    };
    let read_strict = build(&strict);
    assert_eq!(read_strict.cache_use(), &CacheUse::Loaded(entry));
    assert_eq!(
        verdicts(&read_strict, &texts),
        verdicts(
            &build(&DecontamConfig {
                index_cache: None,
                ..strict
            }),
            &texts
        )
    );
}

#[test]
fn item_texts_from_the_cache_are_the_loaded_ones() {
    use tritter_gpu::decontam::samples::ItemTexts;
    let (_t, fixtures, cache) = fixtures_and_cache();
    let cfg = config(&fixtures, &cache);
    stored_path(&build(&cfg));
    let from_cache = ItemTexts::load(&cfg).unwrap();
    let loaded = ItemTexts::load(&DecontamConfig {
        index_cache: None,
        ..cfg
    })
    .unwrap();
    assert_eq!(from_cache.parts(), loaded.parts());
    assert_eq!(loaded.parts().len(), 140);
}

#[test]
fn the_real_benchmarks_give_the_same_index_from_the_cache() {
    let Some(real) = real_benchmarks("the_real_benchmarks_give_the_same_index_from_the_cache")
    else {
        return;
    };
    let t = TestDir::new();
    let cache = t.join("cache");
    let built = build(&config(&real, &cache));
    stored_path(&built);
    let read = build(&config(&real, &cache));
    assert!(matches!(read.cache_use(), CacheUse::Loaded(_)));
    assert_same_index(&built, &read);
    let texts = texts(&write_benchmark_fixtures(&t.join("fixtures")));
    assert_eq!(verdicts(&built, &texts), verdicts(&read, &texts));
}

#[test]
fn a_changed_benchmark_file_or_setting_is_a_new_entry() {
    let (_t, fixtures, cache) = fixtures_and_cache();
    let first = stored_path(&build(&config(&fixtures, &cache)));
    // One more MBPP record: same file names, different bytes.
    let mbpp = fixtures.join("mbpp.jsonl");
    let mut text = std::fs::read_to_string(&mbpp).unwrap();
    text.push_str(&(common::fixture_mbpp(500).to_string() + "\n"));
    std::fs::write(&mbpp, text).unwrap();
    let changed = build(&config(&fixtures, &cache));
    let second = stored_path(&changed);
    assert_ne!(first, second);
    assert!(changed.index_summary().contains("mbpp (121 items)"));
    // Another n-gram length: another index, another entry.
    let ngram = build(&DecontamConfig {
        ngram: 10,
        ..config(&fixtures, &cache)
    });
    let third = stored_path(&ngram);
    assert!(third != first && third != second);
    assert!(ngram.index_summary().contains(" 10-grams "));
    // A benchmark left out is another entry too.
    let humaneval_only = build(&DecontamConfig {
        benchmarks: vec!["humaneval".into()],
        ..config(&fixtures, &cache)
    });
    let fourth = stored_path(&humaneval_only);
    assert!(![&first, &second, &third].contains(&&fourth));
}

#[test]
fn a_damaged_entry_is_rebuilt_and_replaced() {
    let (_t, fixtures, cache) = fixtures_and_cache();
    let built = build(&config(&fixtures, &cache));
    let entry = stored_path(&built);
    let whole = std::fs::read(&entry).unwrap();
    let mut flipped = whole.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    for (damage, bytes, expect) in [
        ("one byte flipped", flipped, "checksum mismatch"),
        (
            "truncated",
            whole[..whole.len() - 100].to_vec(),
            "truncated",
        ),
        ("not an entry", b"{\"json\": true}".to_vec(), "bad magic"),
    ] {
        std::fs::write(&entry, bytes).unwrap();
        let rebuilt = build(&config(&fixtures, &cache));
        match rebuilt.cache_use() {
            CacheUse::Failed(why) => {
                assert!(why.contains(expect), "{damage}: {why}");
                assert!(why.contains("rebuilt"), "{damage}: {why}");
            }
            other => panic!("{damage}: expected a rebuild, got {other:?}"),
        }
        assert_same_index(&built, &rebuilt);
        assert!(
            rebuilt.describe().contains(expect),
            "{}",
            rebuilt.describe()
        );
        // The entry was written again, whole.
        assert_eq!(std::fs::read(&entry).unwrap(), whole, "{damage}");
        assert!(matches!(
            build(&config(&fixtures, &cache)).cache_use(),
            CacheUse::Loaded(_)
        ));
    }
    // An entry copied to another key's name is not that key's.
    let other = cache.join(format!("{:032x}.idx", 7u128));
    std::fs::copy(&entry, &other).unwrap();
    match IndexCache::new(&cache).get(7) {
        Lookup::Unusable(why) => {
            assert!(why.contains("another key"), "{why}")
        }
        Lookup::Hit(_) => {
            panic!("an entry copied to another key's name was read as that key's")
        }
        Lookup::Miss => panic!("the copied entry was not found"),
    }
}

#[test]
fn builds_of_the_same_index_at_once_each_leave_a_whole_entry() {
    let (_t, fixtures, cache) = fixtures_and_cache();
    let cfg = config(&fixtures, &cache);
    let built: Vec<Decontaminator> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| build(&cfg))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for d in &built {
        // Each either stored its entry or found one stored a moment before.
        assert!(
            matches!(d.cache_use(), CacheUse::Stored(_) | CacheUse::Loaded(_)),
            "{:?}",
            d.cache_use()
        );
        assert_same_index(d, &built[0]);
    }
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().flatten().collect();
    assert_eq!(
        entries.len(),
        1,
        "one entry, no temporary file left: {entries:?}"
    );
    let read = build(&cfg);
    assert!(matches!(read.cache_use(), CacheUse::Loaded(_)));
    assert_same_index(&read, &built[0]);
}

#[test]
fn a_cache_that_cannot_be_written_does_not_fail_the_build() {
    let t = TestDir::new();
    let fixtures = write_benchmark_fixtures(&t.join("bench"));
    // A directory below a regular file cannot be made, even by root.
    std::fs::write(t.join("file"), "x").unwrap();
    let cache = t.join("file/cache");
    let d = build(&config(&fixtures, &cache));
    match d.cache_use() {
        CacheUse::Failed(why) => assert!(why.contains("not written"), "{why}"),
        other => panic!("expected a failed write, got {other:?}"),
    }
    assert!(d.describe().contains("not written"));
    assert_same_index(
        &d,
        &build(&DecontamConfig {
            index_cache: None,
            ..config(&fixtures, &cache)
        }),
    );
}

#[test]
fn only_the_most_recently_used_entries_are_kept() {
    let t = TestDir::new();
    let cache = t.join("cache");
    let mut entries = Vec::new();
    for n in 0..MAX_ENTRIES + 3 {
        // Each benchmark set a different user file: a different key.
        let file = t.join(&format!("user{n}.jsonl"));
        std::fs::write(
            &file,
            (0..5)
                .map(|i| {
                    serde_json::json!({"id": i, "code": format!("def user_{n}_f{i}(x):\n    return x * {i} + {n}\n")})
                        .to_string()
                        + "\n"
                })
                .collect::<String>(),
        )
        .unwrap();
        let cfg = DecontamConfig {
            benchmarks: vec!["none".into()],
            user_files: vec![tritter_gpu::decontam::benchmarks::UserBenchmark::parse(
                &format!("user{n}={}", file.display()),
                vec!["code".into()],
            )
            .unwrap()],
            benchmark_dir: None,
            index_cache: Some(cache.clone()),
            ..DecontamConfig::default()
        };
        entries.push(stored_path(&build(&cfg)));
        if n == 0 {
            // Used again after every later write: never the oldest.
            continue;
        }
        let first = DecontamConfig {
            user_files: vec![tritter_gpu::decontam::benchmarks::UserBenchmark::parse(
                &format!("user0={}", t.join("user0.jsonl").display()),
                vec!["code".into()],
            )
            .unwrap()],
            ..cfg
        };
        // Modification times of a fast filesystem can tie: keep them apart.
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(matches!(build(&first).cache_use(), CacheUse::Loaded(_)));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let left: Vec<PathBuf> = entries.iter().filter(|p| p.is_file()).cloned().collect();
    assert_eq!(left.len(), MAX_ENTRIES, "{left:?}");
    assert!(entries[0].is_file(), "the entry used most often is kept");
    for gone in &entries[1..4] {
        assert!(!gone.exists(), "{} should be evicted", gone.display());
    }
}

#[test]
fn cli_reads_the_cache_and_writes_the_same_bytes() {
    let t = TestDir::new();
    let fixtures = write_benchmark_fixtures(&t.join("bench"));
    let input = t.join("in.jsonl");
    let texts = texts(&fixtures);
    std::fs::write(
        &input,
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                serde_json::json!({"text": text, "language": "Python", "license": "mit",
                    "stars": 1, "path": format!("f{i}.py"), "repo": "r"})
                .to_string()
                    + "\n"
            })
            .collect::<String>(),
    )
    .unwrap();
    let run = |out: &str, extra: &[&str]| {
        let o = run_expect(
            t.cmd()
                .args([
                    "--threads",
                    "1",
                    "decontaminate",
                    "--backend",
                    "cpu",
                    "--tokens",
                    "off",
                ])
                .arg("--input")
                .arg(&input)
                .args(["--output", out, "--benchmark-dir"])
                .arg(&fixtures)
                .args(extra),
            0,
        );
        (
            std::fs::read(t.join(out)).unwrap(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    // The default cache is under the home directory (the test's own).
    let (first, log1) = run("a.jsonl", &[]);
    assert!(log1.contains("index cached in"), "{log1}");
    let default_dir = t.join(".cache/tritter-gpu/decontam-index");
    assert_eq!(std::fs::read_dir(&default_dir).unwrap().count(), 1);
    let (second, log2) = run("b.jsonl", &[]);
    assert!(log2.contains("read from the index cache"), "{log2}");
    assert_eq!(first, second);
    assert!(
        first.len() < std::fs::read(&input).unwrap().len(),
        "some files removed"
    );
    // --index-cache DIR, and --no-index-cache, which writes nothing.
    let (third, log3) = run("c.jsonl", &["--index-cache", "mine"]);
    assert!(log3.contains("index cached in"), "{log3}");
    assert!(t.join("mine").is_dir());
    std::fs::remove_dir_all(&default_dir).unwrap();
    let (fourth, log4) = run("d.jsonl", &["--no-index-cache"]);
    assert!(!log4.contains("index cache"), "{log4}");
    assert!(!default_dir.exists());
    assert_eq!(first, third);
    assert_eq!(first, fourth);
    let o = run_expect(
        t.cmd()
            .args([
                "decontaminate",
                "--input",
                "in.jsonl",
                "--output",
                "e.jsonl",
            ])
            .args(["--index-cache", "x", "--no-index-cache"]),
        2,
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot be used with"));
}
