//! The curated-repositories source (`curate --repos FILE`): fetch each
//! listed repository at its revision with git, walk the tree of the
//! resolved commit, and turn its files of the run's language into one input
//! shard per repository in this tool's own schema
//! (`{text, language, license, stars, path, repo}`), so that they go
//! through the same filters, dedup, decontamination and output as every
//! other source.
//!
//! * `list.rs`: the JSON list and its validation.
//! * `fetch.rs`: shallow fetch of one revision into the cache with `git`.
//! * `tree.rs`: the walk of a commit (skips, with reasons).
//! * `attributes.rs`: `.gitattributes` marks (vendored, generated, -diff).
//! * `language.rs`: language from name and shebang, after linguist.
//!
//! Repositories are fetched in parallel, at most `concurrency` at a time;
//! one that cannot be fetched (gone, revision missing, transfer broken) is
//! recorded with its reason and the others go on. Its shard then fails in
//! phase 1 with that reason, which `--keep-going` skips and counts like an
//! unreadable shard.
//!
//! DETERMINISM: a shard holds the files of one commit, sorted by path, and
//! its file name carries the commit and a hash of the entry's settings, so a
//! rerun over the same commit reuses it byte for byte; the shards are
//! numbered in list order after the other inputs.

mod attributes;
pub mod fetch;
pub mod language;
pub mod list;
pub mod stars;
pub mod tree;

use crate::output::atomic::write_atomic;
use anyhow::{Context, Result};
use list::RepoEntry;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bumped when the shard layout or the walk's rules change, so that cached
/// shards of an older version are not reused.
const SHARD_VERSION: u32 = 2;

/// Default number of repositories fetched at the same time.
pub const DEFAULT_CONCURRENCY: u32 = 4;

/// `--repos` settings, stored in the run configuration so that `run-step`
/// resolves the same repositories.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReposConfig {
    /// The JSON list.
    pub list: PathBuf,
    /// `--repo-cache`: bare repositories and the shards made from them.
    pub cache: PathBuf,
    /// Repositories fetched at the same time.
    pub concurrency: u32,
    /// `--refresh-stars`: star counts from the GitHub API.
    #[serde(default)]
    pub refresh_stars: bool,
}

impl ReposConfig {
    /// The cache used without `--repo-cache`: `$XDG_CACHE_HOME/tritter-gpu/repos`,
    /// else `~/.cache/tritter-gpu/repos`, else `.tritter-repos` here.
    pub fn default_cache() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("tritter-gpu").join("repos");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(h)
                .join(".cache")
                .join("tritter-gpu")
                .join("repos");
        }
        PathBuf::from(".tritter-repos")
    }
}

/// One listed repository after fetching.
#[derive(Clone, Debug)]
pub struct RepoInput {
    pub entry: RepoEntry,
    pub outcome: std::result::Result<RepoShard, fetch::FetchError>,
}

/// The shard made from a repository's commit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RepoShard {
    pub commit: String,
    pub path: PathBuf,
    pub size: u64,
    /// Tree entries seen, files written, entries skipped by reason.
    pub entries: u64,
    pub files: u64,
    pub skipped: BTreeMap<String, u64>,
    /// What license detection found, and the license the files got.
    pub license: LicenseOutcome,
}

/// A repository's license: detected, declared, and the one applied.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LicenseOutcome {
    /// The expression detected from license files and manifests.
    pub detected: Option<String>,
    /// The list's `license`, which overrides detection when given.
    pub declared: Option<String>,
    /// What the files without their own header get (`declared`, else
    /// `detected`; `None` drops them as unlicensed).
    pub applied: Option<String>,
    /// The list's license differs from the detected one.
    pub overridden: bool,
    /// License files matched below the confidence threshold:
    /// `(file, best candidate, score)`, reported, not used.
    pub low_confidence: Vec<(String, Option<String>, f32)>,
    /// Manifest `license` fields that are not SPDX expressions.
    pub invalid_manifest_fields: Vec<(String, String)>,
    /// Files whose `SPDX-License-Identifier:` header set their license.
    pub files_with_header: u64,
}

impl RepoInput {
    /// The stats line of this repository.
    pub fn stats(&self) -> serde_json::Value {
        let e = &self.entry;
        let mut v = serde_json::json!({
            "repo": e.repo,
            "url": e.url,
            "revision": e.revision.as_deref().unwrap_or("HEAD"),
            "license_declared": e.license,
            "stars": e.stars,
        });
        match &self.outcome {
            Ok(s) => {
                v["status"] = "ok".into();
                v["commit"] = s.commit.clone().into();
                v["entries"] = s.entries.into();
                v["files"] = s.files.into();
                v["skipped"] = serde_json::to_value(&s.skipped).unwrap_or_default();
                v["license"] = serde_json::to_value(&s.license).unwrap_or_default();
            }
            Err(err) => {
                v["status"] = "failed".into();
                v["reason"] = err.reason.into();
                v["error"] = err.detail.clone().into();
            }
        }
        v
    }
}

/// Fetches every repository of the list and makes its shard for
/// `language` (a canonical name). Fails only for a bad list or cache; a
/// repository's own failure is in its [`RepoInput::outcome`].
pub fn prepare(
    cfg: &ReposConfig,
    language: &str,
    quiet: bool,
) -> Result<(Vec<RepoInput>, Option<stars::StarsReport>)> {
    let mut entries = list::load(&cfg.list)?;
    fetch::check_git()?;
    std::fs::create_dir_all(cfg.cache.join("git")).with_context(|| {
        format!(
            "cannot create the repository cache {} (choose another with --repo-cache)",
            cfg.cache.display()
        )
    })?;
    let stars_report = cfg.refresh_stars.then(|| {
        let r = stars::refresh(&mut entries, &cfg.cache);
        if !quiet {
            eprintln!(
                "tritter-gpu: stars: {} refreshed, {} cached, {} rate limited, {} not found, {} failed",
                r.refreshed, r.from_cache, r.rate_limited, r.not_found, r.failed
            );
        }
        r
    });
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<RepoInput>>> = Mutex::new(vec![None; entries.len()]);
    let workers = (cfg.concurrency.max(1) as usize).min(entries.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(entry) = entries.get(i) else { break };
                let outcome = one(cfg, entry, language);
                if !quiet {
                    match &outcome {
                        Ok(s) => eprintln!(
                            "tritter-gpu: repo {} at {}: {} file(s)",
                            entry.repo,
                            &s.commit[..12],
                            s.files
                        ),
                        Err(e) => eprintln!("tritter-gpu: repo {} failed: {e}", entry.repo),
                    }
                }
                results.lock().unwrap()[i] = Some(RepoInput {
                    entry: entry.clone(),
                    outcome,
                });
            });
        }
    });
    let inputs = results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every entry was processed"))
        .collect();
    Ok((inputs, stars_report))
}

/// Fetch, walk and write one repository's shard (reused when the same
/// commit and settings were written before).
fn one(
    cfg: &ReposConfig,
    entry: &RepoEntry,
    language: &str,
) -> std::result::Result<RepoShard, fetch::FetchError> {
    let dir = fetch::git_dir(&cfg.cache, &entry.repo);
    let commit = fetch::fetch(&dir, &entry.url, entry.revision.as_deref())?;
    let walk_err = |e: anyhow::Error| fetch::FetchError {
        reason: "walk_failed",
        detail: format!("{e:#}"),
    };
    let shard = shard_path(&cfg.cache, entry, language, &commit);
    let counts_path = shard.with_extension("counts.json");
    if let (Ok(bytes), Ok(meta)) = (std::fs::read(&counts_path), std::fs::metadata(&shard)) {
        if let Ok(s) = serde_json::from_slice::<RepoShard>(&bytes) {
            if s.size == meta.len() && s.commit == commit {
                return Ok(RepoShard { path: shard, ..s });
            }
        }
    }
    let wanted = |l: &str| {
        crate::filters::language::matches(language, l)
            && (entry.languages.is_empty()
                || entry.languages.iter().any(|x| {
                    crate::filters::language::matches(&crate::filters::canonical_language(x), l)
                }))
    };
    let walk = tree::walk(&dir, &commit, entry, &wanted).map_err(walk_err)?;
    let found = crate::license_detect::detect(&walk.license_files);
    let declared = entry
        .license
        .as_deref()
        .map(|l| crate::license_detect::valid_expression(l).unwrap_or_else(|| l.to_string()));
    let mut license = LicenseOutcome {
        overridden: declared.is_some() && declared != found.expression,
        applied: declared.clone().or(found.expression.clone()),
        detected: found.expression,
        declared,
        low_confidence: found
            .files
            .iter()
            .filter(|f| !f.confident)
            .map(|f| (f.file.clone(), f.best.clone(), f.score))
            .collect(),
        invalid_manifest_fields: found.invalid_manifest_fields,
        files_with_header: 0,
    };
    let bytes = render_shard(entry, &walk.files, &mut license).map_err(walk_err)?;
    let write = |p: &Path, b: &[u8]| {
        std::fs::create_dir_all(p.parent().unwrap_or(Path::new(".")))
            .and_then(|()| write_atomic(p, b).map_err(std::io::Error::other))
            .map_err(|e| fetch::FetchError {
                reason: "cache_write_failed",
                detail: format!("cannot write {}: {e}", p.display()),
            })
    };
    write(&shard, &bytes)?;
    let out = RepoShard {
        commit,
        path: shard.clone(),
        size: bytes.len() as u64,
        entries: walk.entries,
        files: walk.files.len() as u64,
        skipped: walk
            .skipped
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        license,
    };
    write(
        &counts_path,
        &serde_json::to_vec_pretty(&out).expect("counts serialize"),
    )?;
    Ok(out)
}

/// `CACHE/shards/LANGUAGE/OWNER+NAME/COMMIT-SETTINGS.jsonl`.
fn shard_path(cache: &Path, entry: &RepoEntry, language: &str, commit: &str) -> PathBuf {
    let settings = serde_json::json!([
        SHARD_VERSION,
        entry.license,
        entry.stars,
        entry.languages,
        entry.include,
        entry.exclude,
    ]);
    let h = xxhash_rust::xxh3::xxh3_64(settings.to_string().as_bytes());
    cache
        .join("shards")
        .join(language)
        .join(entry.repo.replace('/', "+"))
        .join(format!("{commit}-{h:016x}.jsonl"))
}

/// The JSONL shard of a repository's files, in this tool's schema.
///
/// A file's `SPDX-License-Identifier:` header overrides the repository's
/// license for that file.
fn render_shard(
    entry: &RepoEntry,
    files: &[tree::TreeFile],
    license: &mut LicenseOutcome,
) -> Result<Vec<u8>> {
    let repo_license = license
        .applied
        .as_deref()
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let mut out = Vec::new();
    for f in files {
        let own = crate::license_detect::spdx_header(&f.text);
        if own.is_some() {
            license.files_with_header += 1;
        }
        let row = serde_json::json!({
            "text": f.text,
            "language": f.language,
            "license": own.map(|l| l.to_ascii_lowercase()).unwrap_or_else(|| repo_license.clone()),
            "stars": entry.stars,
            "path": f.path,
            "repo": entry.repo,
        });
        serde_json::to_writer(&mut out, &row)?;
        out.push(b'\n');
    }
    Ok(out)
}
