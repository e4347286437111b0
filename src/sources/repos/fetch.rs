//! Fetching one repository at one revision with the `git` program.
//!
//! Why the `git` program rather than a library (gix): it speaks every
//! transport the same way the user's git does (smart HTTP with
//! `git http-backend`, GitHub, `file://`, local paths), fetches a single
//! commit shallowly (`git fetch --depth 1 URL REV`, which GitHub and any
//! protocol-v2 server allow for a commit id too), and an interrupted fetch
//! leaves the cache as it was, since git only updates refs after a complete
//! pack has been received and checked.
//!
//! Layout: one bare repository per listed repository,
//! `CACHE/git/OWNER+NAME.git`. A fetch resolves the revision to a commit,
//! stores it under `refs/tritter/pinned` so that a later `git gc` keeps it,
//! and returns its id. A revision that is already a full commit id present
//! in the cache is not fetched again; a branch or tag is fetched each run
//! (one round trip when it has not moved).
//!
//! Credentials: with `GITHUB_TOKEN` set, HTTPS fetches from github.com send
//! it as an `Authorization` header (the form GitHub's Actions checkout uses),
//! passed through `GIT_CONFIG_*` variables rather than the command line, so
//! it never shows in a process listing. Git never prompts
//! (`GIT_TERMINAL_PROMPT=0`): a private or missing repository fails fast.

use anyhow::{Context, Result};
use base64::Engine;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Why a repository could not be fetched, for the per-repository counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchError {
    /// `repo_not_found`, `revision_not_found`, `fetch_failed`, `git_missing`.
    pub reason: &'static str,
    pub detail: String,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

/// The bare repository of `repo` under `cache`.
pub fn git_dir(cache: &Path, repo: &str) -> PathBuf {
    cache
        .join("git")
        .join(format!("{}.git", repo.replace('/', "+")))
}

/// Runs git with the settings every call shares.
pub fn git(dir: Option<&Path>) -> Command {
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.arg("--git-dir").arg(d);
    }
    c.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("LC_ALL", "C")
        .stdin(Stdio::null());
    c
}

fn run(mut c: Command) -> std::result::Result<Output, FetchError> {
    c.output().map_err(|e| FetchError {
        reason: "git_missing",
        detail: format!("cannot run git ({e}); install git"),
    })
}

/// Fetches `revision` (or the remote's HEAD) of `url` into `dir` and returns
/// the commit id it resolved to.
pub fn fetch(
    dir: &Path,
    url: &str,
    revision: Option<&str>,
) -> std::result::Result<String, FetchError> {
    if !dir.join("HEAD").exists() {
        let mut init = git(None);
        init.args(["init", "--bare", "-q"]).arg(dir);
        let out = run(init)?;
        if !out.status.success() {
            return Err(FetchError {
                reason: "fetch_failed",
                detail: format!("git init {} failed: {}", dir.display(), stderr(&out)),
            });
        }
    }
    if let Some(rev) = revision {
        if is_commit_id(rev) {
            if let Some(c) = local_commit(dir, rev) {
                pin(dir, &c)?;
                return Ok(c);
            }
        }
    }
    let mut f = git(Some(dir));
    // Low-speed abort: a stalled server fails the repository instead of
    // hanging the run.
    f.args([
        "-c",
        "http.lowSpeedLimit=1000",
        "-c",
        "http.lowSpeedTime=60",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--depth",
        "1",
    ])
    .arg(url)
    .arg(format!(
        "+{}:refs/tritter/fetched",
        revision.unwrap_or("HEAD")
    ));
    with_token(&mut f, url);
    let out = run(f)?;
    if !out.status.success() {
        return Err(classify(&stderr(&out), url, revision));
    }
    let c = local_commit(dir, "refs/tritter/fetched").ok_or_else(|| FetchError {
        reason: "fetch_failed",
        detail: format!("{url}: the fetched revision is not a commit"),
    })?;
    pin(dir, &c)?;
    Ok(c)
}

/// Records `commit` as the pinned one so that `git gc` keeps it.
fn pin(dir: &Path, commit: &str) -> std::result::Result<(), FetchError> {
    let mut c = git(Some(dir));
    c.args(["update-ref", "refs/tritter/pinned", commit]);
    let out = run(c)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FetchError {
            reason: "fetch_failed",
            detail: format!(
                "git update-ref in {} failed: {}",
                dir.display(),
                stderr(&out)
            ),
        })
    }
}

/// The commit `rev` names in `dir`, when present.
fn local_commit(dir: &Path, rev: &str) -> Option<String> {
    let mut c = git(Some(dir));
    c.args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{rev}^{{commit}}"));
    let out = c.output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| is_commit_id(s))
}

fn is_commit_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Sorts git's error text into a reason.
fn classify(err: &str, url: &str, revision: Option<&str>) -> FetchError {
    let lower = err.to_ascii_lowercase();
    let reason = if lower.contains("couldn't find remote ref")
        || lower.contains("not our ref")
        || lower.contains("no such remote ref")
        || lower.contains("unadvertised object")
        || lower.contains("upload-pack: not our ref")
        || (lower.contains("remote error") && lower.contains("want"))
    {
        "revision_not_found"
    } else if lower.contains("not found")
        || lower.contains("does not appear to be a git repository")
        || lower.contains("does not exist")
        || lower.contains("returned error: 404")
        || lower.contains("could not read username")
        || lower.contains("authentication failed")
    {
        "repo_not_found"
    } else {
        "fetch_failed"
    };
    let rev = revision.unwrap_or("HEAD");
    FetchError {
        reason,
        detail: format!("git fetch {url} {rev}: {}", err.trim().replace('\n', "; ")),
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// Adds `GITHUB_TOKEN` as an HTTP header for github.com over HTTPS.
fn with_token(c: &mut Command, url: &str) {
    let Ok(token) = std::env::var("GITHUB_TOKEN") else {
        return;
    };
    if token.is_empty() || !url.starts_with("https://github.com/") {
        return;
    }
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    c.env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.https://github.com/.extraheader")
        .env(
            "GIT_CONFIG_VALUE_0",
            format!("Authorization: Basic {basic}"),
        );
}

/// Makes sure `git` runs, with a message saying what to do when it does not.
pub fn check_git() -> Result<()> {
    let out = git(None).arg("--version").output().context(
        "the repository source needs the git program; install git (e.g. apt-get install git)",
    )?;
    anyhow::ensure!(
        out.status.success(),
        "`git --version` failed; check the git installation"
    );
    Ok(())
}
