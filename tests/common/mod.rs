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
        c.env("HOME", self.path());
        // No test may reach the real instance metadata address (the AWS
        // credential chain's last step): tests that need it point
        // AWS_EC2_METADATA_SERVICE_ENDPOINT at a local server.
        c.env("AWS_EC2_METADATA_DISABLED", "true");
        c
    }
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
