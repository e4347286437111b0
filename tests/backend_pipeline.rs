//! The whole commands, once per backend: `curate`, `dedup` and
//! `decontaminate` must write the same bytes with `--backend wgpu` (and
//! `cuda`, where present) as with the CPU reference. A backend that cannot
//! start here is skipped with a printed reason, unless
//! `TRITTER_REQUIRE_BACKENDS` names it (CI sets `wgpu`: lavapipe is installed).

mod common;

use common::{run_expect, write_benchmark_fixtures, TestDir};
use tritter_gpu::sources::writer::{write_shard, SourceFile, WriteOptions};
use tritter_gpu::sources::SchemaKind;

fn required(backend: &str) -> bool {
    std::env::var("TRITTER_REQUIRE_BACKENDS")
        .unwrap_or_default()
        .split(',')
        .any(|b| b.trim() == backend)
}

/// A corpus with near-duplicates and a planted benchmark: real Rust files
/// from the registry when present, else generated text, plus edited copies.
fn corpus(t: &TestDir) {
    let mut texts: Vec<(String, String)> = Vec::new();
    let registry = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cargo/registry/src");
    let mut stack = vec![registry];
    while let Some(dir) = stack.pop() {
        if texts.len() >= 150 {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") && texts.len() < 150 {
                if let Ok(s) = std::fs::read_to_string(&p) {
                    if s.lines().count() > 30 && s.len() < 60_000 {
                        texts.push((p.display().to_string(), s));
                    }
                }
            }
        }
    }
    for i in texts.len()..60 {
        texts.push((
            format!("gen/{i}.rs"),
            (0..50)
                .map(|l| format!("fn item_{i}_{l}(x: u64) -> u64 {{ x * {l} + {i} }}\n"))
                .collect(),
        ));
    }
    let mut files = Vec::new();
    for (i, (path, text)) in texts.iter().enumerate() {
        let mut f = SourceFile::new(path, &format!("org/r{i}"), "Rust", text);
        f.licenses = vec!["mit".into()];
        f.stars = Some(500);
        files.push(f.clone());
        if i % 4 == 0 {
            let edited: String = text
                .lines()
                .enumerate()
                .map(|(n, l)| {
                    if n % 20 == 3 {
                        format!("{l} // edited\n")
                    } else {
                        format!("{l}\n")
                    }
                })
                .collect();
            let mut copy = SourceFile::new(
                &format!("fork/{i}.rs"),
                &format!("fork/r{i}"),
                "Rust",
                &edited,
            );
            copy.licenses = vec!["mit".into()];
            copy.stars = Some(10 + i as u64);
            files.push(copy);
        }
    }
    std::fs::create_dir_all(t.join("in")).unwrap();
    write_shard(
        &t.join("in/a.parquet"),
        SchemaKind::StackV1,
        &files,
        WriteOptions::default(),
    )
    .unwrap();
}

/// Runs `args` with `--backend backend`; `None` when the backend is absent
/// here (and not required).
fn run_with(t: &TestDir, backend: &str, args: &[&str]) -> Option<std::process::Output> {
    let out = t
        .cmd()
        .args(["--backend", backend])
        .args(args)
        .output()
        .unwrap();
    if out.status.code() == Some(0) {
        return Some(out);
    }
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked"),
        "backend {backend} panicked: {err}"
    );
    if required(backend) {
        panic!("backend {backend} is required by TRITTER_REQUIRE_BACKENDS but failed: {err}");
    }
    eprintln!("SKIP {backend}: {err}");
    None
}

#[test]
fn every_command_writes_the_same_bytes_on_every_backend() {
    let t = TestDir::new();
    corpus(&t);
    // Generated benchmark files: the test compares backends, not recall.
    let bench = write_benchmark_fixtures(&t.join("bench"));
    let bench = bench.to_str().unwrap();
    let mut outputs: Vec<(String, Vec<Vec<u8>>)> = Vec::new();
    for backend in ["cpu", "wgpu", "cuda"] {
        let out = format!("out-{backend}");
        let curate = [
            "curate",
            "--source",
            "in",
            "--language",
            "rust",
            "--min-stars",
            "0",
            "--output",
            &out,
            "--benchmark-dir",
            bench,
            "--clusters",
        ];
        let clusters = format!("{out}/clusters.jsonl");
        let mut args: Vec<&str> = curate.to_vec();
        args.push(&clusters);
        // The CPU reference must run: a skip there would leave nothing
        // to compare against.
        if backend == "cpu" {
            run_expect(t.cmd().args(["--backend", backend]).args(&args), 0);
        } else if run_with(&t, backend, &args).is_none() {
            continue;
        }
        let curated = format!("{out}/rust_curated.jsonl");
        let deduped = format!("{out}/dedup.jsonl");
        run_expect(
            t.cmd().args([
                "--backend",
                backend,
                "dedup",
                "--input",
                &curated,
                "--output",
                &deduped,
                "--jaccard",
                "0.5",
                "--verify",
                "signature",
            ]),
            0,
        );
        let decon = format!("{out}/decon.jsonl");
        run_expect(
            t.cmd().args([
                "--backend",
                backend,
                "decontaminate",
                "--input",
                &curated,
                "--output",
                &decon,
                "--benchmark-dir",
                bench,
            ]),
            0,
        );
        let bytes = [&curated, &clusters, &deduped, &decon]
            .iter()
            .map(|p| std::fs::read(t.join(p)).unwrap())
            .collect();
        outputs.push((backend.to_string(), bytes));
    }
    let Some((reference_name, reference)) = outputs.first() else {
        panic!("the CPU reference did not run");
    };
    assert_eq!(reference_name, "cpu");
    let clusters = String::from_utf8_lossy(&reference[1]);
    assert!(
        clusters.lines().count() >= 5,
        "the corpus must exercise near dedup: {clusters}"
    );
    for (name, bytes) in &outputs[1..] {
        for (i, what) in [
            "curated output",
            "clusters",
            "dedup output",
            "decontaminate output",
        ]
        .iter()
        .enumerate()
        {
            assert!(
                bytes[i] == reference[i],
                "{what} differs between cpu and {name}"
            );
        }
    }
}

#[test]
fn cuda_without_a_gpu_is_a_clear_error() {
    let t = TestDir::new();
    corpus(&t);
    let out = t
        .cmd()
        .args([
            "--backend",
            "cuda",
            "curate",
            "--source",
            "in",
            "--language",
            "rust",
            "--min-stars",
            "0",
            "--output",
            "o",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    if out.status.code() == Some(0) {
        eprintln!("a CUDA device is present: nothing to check");
        return;
    }
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.to_lowercase().contains("cuda"), "{err}");
}
