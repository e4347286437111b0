//! Walks the tree of one commit in a bare repository (no working copy):
//! `git ls-tree -r -l -z` lists every entry with its mode and size, and one
//! `git cat-file --batch` process streams the blobs.
//!
//! Skipped, each counted under its reason: submodules (mode 160000: the
//! code is another repository), symbolic links (120000: their "content" is a
//! path), what `.gitattributes` marks vendored, generated or `-diff`,
//! paths outside the entry's include/exclude globs, blobs over
//! [`MAX_BLOB_BYTES`], Git LFS pointers (the content is elsewhere), binary
//! files (a NUL byte in the first 8000 bytes, git's own test), text that is
//! not UTF-8, and files of other languages.

use super::attributes::Attributes;
use super::fetch::git;
use super::language;
use super::list::RepoEntry;
use anyhow::{bail, Context, Result};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

/// Blobs larger than this are not read (the size filter would drop them,
/// and reading them costs memory for nothing).
pub const MAX_BLOB_BYTES: u64 = 8 << 20;

/// A file kept by the walk.
#[derive(Clone, Debug, PartialEq)]
pub struct TreeFile {
    pub path: String,
    pub language: &'static str,
    pub text: String,
}

/// What the walk of one commit kept, and what it skipped by reason.
#[derive(Debug, Default)]
pub struct Walk {
    pub files: Vec<TreeFile>,
    pub skipped: BTreeMap<&'static str, u64>,
    pub entries: u64,
    /// Root license files and manifests `(path, text)`, whatever their
    /// language, for license detection.
    pub license_files: Vec<(String, String)>,
}

struct Entry {
    mode: String,
    oid: String,
    size: Option<u64>,
    path: String,
}

/// Walks `commit` in `git_dir`, keeping the files `wanted` accepts by
/// language (linguist name).
pub fn walk(
    git_dir: &Path,
    commit: &str,
    entry: &RepoEntry,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Walk> {
    let entries = ls_tree(git_dir, commit)?;
    let mut blobs = CatFile::start(git_dir)?;
    let include = globs(&entry.include)?;
    let exclude = globs(&entry.exclude)?;
    // Attribute files first, shallow before deep.
    let mut attr_files: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            e.mode.starts_with("100")
                && (e.path == ".gitattributes" || e.path.ends_with("/.gitattributes"))
        })
        .collect();
    attr_files.sort_by_key(|e| (e.path.matches('/').count(), e.path.clone()));
    let mut attrs = Attributes::default();
    for a in attr_files {
        let bytes = blobs.read(&a.oid)?;
        let dir = a.path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        attrs.add(dir, &String::from_utf8_lossy(&bytes));
    }
    let mut walk = Walk {
        entries: entries.len() as u64,
        ..Walk::default()
    };
    let mut skip = |reason: &'static str| *walk.skipped.entry(reason).or_insert(0) += 1;
    let mut files = Vec::new();
    let mut license_files = Vec::new();
    for e in &entries {
        let reason = match e.mode.as_str() {
            "160000" => Some("repo_submodule"),
            "120000" => Some("repo_symlink"),
            m if m.starts_with("100") => None,
            _ => Some("repo_not_a_file"),
        };
        if let Some(r) = reason {
            skip(r);
            continue;
        }
        if (crate::license_detect::is_license_file(&e.path)
            || crate::license_detect::is_manifest(&e.path))
            && e.size.unwrap_or(0) <= 1 << 20
        {
            let bytes = blobs.read(&e.oid)?;
            license_files.push((e.path.clone(), String::from_utf8_lossy(&bytes).into_owned()));
        }
        if !include.as_ref().is_none_or(|g| g.is_match(&e.path))
            || exclude.as_ref().is_some_and(|g| g.is_match(&e.path))
        {
            skip("repo_path_excluded");
            continue;
        }
        let marks = attrs.marks(&e.path);
        if marks.vendored {
            skip("repo_vendored");
            continue;
        }
        if marks.generated {
            skip("repo_generated");
            continue;
        }
        if marks.no_diff {
            skip("repo_no_diff");
            continue;
        }
        if e.size.unwrap_or(0) > MAX_BLOB_BYTES {
            skip("repo_too_large");
            continue;
        }
        // By name first: most files are decided without reading them.
        let by_name = language::detect(&e.path, b"");
        if by_name.is_some_and(|l| !wanted(l)) {
            skip("repo_other_language");
            continue;
        }
        let bytes = blobs.read(&e.oid)?;
        if is_lfs_pointer(&bytes) {
            skip("repo_lfs_pointer");
            continue;
        }
        if bytes[..bytes.len().min(8000)].contains(&0) {
            skip("repo_binary");
            continue;
        }
        let lang = match by_name.or_else(|| language::detect(&e.path, &bytes)) {
            Some(l) if wanted(l) => l,
            _ => {
                skip("repo_other_language");
                continue;
            }
        };
        let Ok(text) = String::from_utf8(bytes) else {
            skip("repo_not_utf8");
            continue;
        };
        files.push(TreeFile {
            path: e.path.clone(),
            language: lang,
            text,
        });
    }
    blobs.finish();
    walk.files = files;
    walk.license_files = license_files;
    Ok(walk)
}

/// A Git LFS pointer file (git-lfs `docs/spec.md`): small, first line the
/// spec version.
fn is_lfs_pointer(bytes: &[u8]) -> bool {
    bytes.len() < 1024 && bytes.starts_with(b"version https://git-lfs.github.com/spec/v1")
}

fn globs(patterns: &[String]) -> Result<Option<GlobSet>> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(
            GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .with_context(|| format!("bad glob {p:?}"))?,
        );
    }
    Ok(Some(b.build()?))
}

fn ls_tree(git_dir: &Path, commit: &str) -> Result<Vec<Entry>> {
    let out = git(Some(git_dir))
        .args(["ls-tree", "-r", "-l", "-z", "--full-tree", commit])
        .output()
        .context("cannot run git ls-tree")?;
    if !out.status.success() {
        bail!(
            "git ls-tree {commit} in {} failed: {}",
            git_dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut entries = Vec::new();
    for rec in out.stdout.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let rec = String::from_utf8_lossy(rec);
        // `<mode> SP <type> SP <oid> SP+ <size> TAB <path>`
        let Some((meta, path)) = rec.split_once('\t') else {
            bail!("git ls-tree printed an entry without a path: {rec:?}");
        };
        let mut f = meta.split_whitespace();
        let (Some(mode), Some(_kind), Some(oid), Some(size)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            bail!("git ls-tree printed an unexpected entry: {rec:?}");
        };
        entries.push(Entry {
            mode: mode.to_string(),
            oid: oid.to_string(),
            size: size.parse().ok(),
            path: path.to_string(),
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// One `git cat-file --batch` process: write an id, read its blob.
struct CatFile {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl CatFile {
    fn start(git_dir: &Path) -> Result<CatFile> {
        let mut child = git(Some(git_dir))
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("cannot run git cat-file")?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("git cat-file has no stdout")?);
        Ok(CatFile {
            child,
            stdin,
            stdout,
        })
    }

    fn read(&mut self, oid: &str) -> Result<Vec<u8>> {
        let stdin = self.stdin.as_mut().context("git cat-file is closed")?;
        writeln!(stdin, "{oid}")
            .and_then(|()| stdin.flush())
            .context("git cat-file stopped")?;
        let mut header = String::new();
        self.stdout
            .read_line(&mut header)
            .context("git cat-file stopped")?;
        let mut f = header.split_whitespace();
        let (Some(_), Some(kind), Some(size)) = (f.next(), f.next(), f.next()) else {
            bail!("git cat-file: object {oid} is missing ({})", header.trim());
        };
        let size: usize = size.parse().context("git cat-file printed a bad size")?;
        if kind != "blob" {
            bail!("git cat-file: object {oid} is a {kind}, not a blob");
        }
        let mut buf = vec![0u8; size + 1];
        self.stdout
            .read_exact(&mut buf)
            .context("git cat-file stopped in the middle of a blob")?;
        buf.pop();
        Ok(buf)
    }

    fn finish(mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
