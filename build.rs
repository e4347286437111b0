//! Build script: a fingerprint of the sources this binary is built from.
//!
//! `TRITTER_SOURCE_FINGERPRINT` is a hash of every file under `src/`
//! (relative path and bytes, in sorted order), `Cargo.toml` and
//! `Cargo.lock`. Caches of derived data (the decontamination index cache)
//! key their entries by it, so an entry written by one build is never read
//! by a build whose code or dependencies differ.

use std::path::{Path, PathBuf};
use xxhash_rust::xxh3::Xxh3;

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut files = Vec::new();
    files_under(&root.join("src"), &mut files);
    files.push(root.join("Cargo.toml"));
    files.push(root.join("Cargo.lock"));
    files.sort();
    let mut h = Xxh3::new();
    for f in &files {
        let rel = f.strip_prefix(&root).unwrap_or(f);
        let bytes = std::fs::read(f).unwrap_or_default();
        // Length-prefixed, so that no two file lists hash the same bytes.
        h.update(&(rel.as_os_str().len() as u64).to_le_bytes());
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    println!(
        "cargo:rustc-env=TRITTER_SOURCE_FINGERPRINT={:032x}",
        h.digest128()
    );
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=Cargo.lock");
}
