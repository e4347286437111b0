//! The curated-repositories source end to end: real repositories made with
//! the `git` program, served over HTTP on 127.0.0.1 by `git http-backend`
//! behind a tiny CGI server (so the fetch is the network path), plus local
//! paths and `file://` URLs, read by the built binary.

mod common;

use common::{read_jsonl, run_expect, TestDir};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A Python file of `n` functions, distinct per `tag` (passes the default
/// filters: enough lines, not minified, mostly letters).
fn python(tag: &str, n: usize) -> String {
    let mut s = format!("\"\"\"Module {tag}: helpers for the tests.\"\"\"\n\nimport math\n\n");
    for i in 0..n {
        s.push_str(&format!(
            "\ndef {tag}_step_{i}(value, scale={i}):\n    \"\"\"Scale value by {i} in {tag}.\"\"\"\n    total = math.sqrt(value * scale + {i})\n    if total > {i}:\n        return total - {i}\n    return total\n"
        ));
    }
    s
}

fn write(dir: &Path, rel: &str, text: &[u8]) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// A repository with everything the walk must skip or keep, a tag `v1` on
/// the first commit and a branch `dev` one commit ahead. Returns the first
/// commit.
fn make_fixture(dir: &Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    write(dir, "pkg/core.py", python("core", 6).as_bytes());
    write(dir, "vendor/six.py", python("six", 6).as_bytes());
    write(dir, "pkg/gen_pb2.py", python("gen", 6).as_bytes());
    write(dir, "pkg/data.py", python("data", 6).as_bytes());
    write(
        dir,
        "scripts/tool",
        format!("#!/usr/bin/env python3\n{}", python("tool", 6)).as_bytes(),
    );
    write(dir, "src/lib.rs", b"pub fn f() -> u32 {\n    1\n}\n");
    write(
        dir,
        ".gitattributes",
        b"vendor/** linguist-vendored\n*_pb2.py linguist-generated\npkg/data.py -diff\n",
    );
    write(
        dir,
        "model.py",
        b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n",
    );
    let mut bin = python("bin", 6).into_bytes();
    bin[10] = 0;
    write(dir, "blob.py", &bin);
    write(dir, "LICENSE", b"MIT License\n");
    std::os::unix::fs::symlink("pkg/core.py", dir.join("link.py")).unwrap();
    git(dir, &["add", "-A"]);
    // A submodule entry (a gitlink), without a second repository.
    git(
        dir,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            "160000,1111111111111111111111111111111111111111,third_party/sub",
        ],
    );
    git(dir, &["commit", "-qm", "first"]);
    let first = git(dir, &["rev-parse", "HEAD"]);
    git(dir, &["tag", "v1"]);
    git(dir, &["checkout", "-qb", "dev"]);
    write(dir, "pkg/extra.py", python("extra", 6).as_bytes());
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "dev"]);
    git(dir, &["checkout", "-q", "main"]);
    first
}

/// A CGI server for `git http-backend` over `root`. With `truncate` set,
/// pack responses are cut in the middle (an interrupted fetch).
struct GitServer {
    url: String,
    truncate: Arc<AtomicBool>,
}

impl GitServer {
    fn start(root: &Path) -> GitServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let truncate = Arc::new(AtomicBool::new(false));
        let root = root.to_path_buf();
        let t = truncate.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let root = root.clone();
                let t = t.clone();
                std::thread::spawn(move || serve(stream, &root, t.load(Ordering::SeqCst)));
            }
        });
        GitServer { url, truncate }
    }
}

fn serve(stream: TcpStream, root: &Path, truncate: bool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("GET").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        reader.read_exact(&mut body).unwrap();
    } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let exec = Command::new("git").arg("--exec-path").output().unwrap();
    let backend =
        PathBuf::from(String::from_utf8_lossy(&exec.stdout).trim()).join("git-http-backend");
    let mut cgi = Command::new(backend);
    cgi.env_clear()
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, env) in [
        ("content-type", "CONTENT_TYPE"),
        ("git-protocol", "GIT_PROTOCOL"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
    ] {
        if let Some(v) = header(k) {
            cgi.env(env, v);
        }
    }
    let mut child = cgi.spawn().unwrap();
    child.stdin.take().unwrap().write_all(&body).unwrap();
    let out = child.wait_with_output().unwrap();
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        });
    let Some((at, sep)) = split else { return };
    let head = String::from_utf8_lossy(&out.stdout[..at]).to_string();
    let mut payload = &out.stdout[at + sep..];
    let mut status = "200 OK".to_string();
    let mut response = String::new();
    for h in head.lines() {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_string(),
            _ => response.push_str(&format!("{h}\r\n")),
        }
    }
    let is_pack = method == "POST" && path.ends_with("git-upload-pack");
    let full = payload.len();
    if truncate && is_pack {
        payload = &payload[..full / 2];
    }
    let mut s = stream;
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\n{response}Content-Length: {full}\r\nConnection: close\r\n\r\n"
    );
    let _ = s.write_all(payload);
}

/// `curate --repos` in `t` with a cache in the test directory.
fn curate(t: &TestDir, list: &str, extra: &[&str]) -> Command {
    let mut c = t.cmd();
    c.args([
        "curate",
        "--repos",
        list,
        "--repo-cache",
        "cache",
        "--output",
        "out",
    ])
    .args(["--language", "python", "--decontaminate", "off", "--quiet"])
    .args(extra);
    c
}

fn stats(t: &TestDir) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(t.join("out/python_curated.stats.json")).unwrap())
        .unwrap()
}

fn repo_stats<'a>(s: &'a serde_json::Value, repo: &str) -> &'a serde_json::Value {
    s["transfers"]["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo"] == repo)
        .unwrap_or_else(|| panic!("{repo} not in the stats: {s}"))
}

fn paths_of(t: &TestDir, repo: &str) -> Vec<String> {
    let mut p: Vec<String> = read_jsonl(&t.join("out/python_curated.jsonl"))
        .iter()
        .filter(|r| r["repo"] == repo)
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    p.sort();
    p
}

fn all_paths(t: &TestDir) -> Vec<String> {
    let mut p: Vec<String> = read_jsonl(&t.join("out/python_curated.jsonl"))
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    p.sort();
    p
}

#[test]
fn http_fetch_walks_pins_and_follows_a_moved_branch() {
    let t = TestDir::new();
    let served = t.join("served");
    let first = make_fixture(&served.join("fix.git").join("..").join("fix"));
    // Serve a bare copy, as a hosting service does.
    git(
        t.path(),
        &["clone", "-q", "--bare", "served/fix", "served/fix.git"],
    );
    let server = GitServer::start(&served);
    let list = serde_json::json!([
        {"repo": "t/pinned", "url": format!("{}/fix.git", server.url), "revision": first, "license": "MIT"},
        {"repo": "t/branch", "url": format!("{}/fix.git", server.url), "revision": "dev", "license": "MIT"},
        {"repo": "t/tag", "url": format!("file://{}", served.join("fix.git").display()), "revision": "v1", "license": "MIT"},
        {"repo": "t/local", "url": "served/fix", "license": "MIT", "paths": {"exclude": ["scripts/**"]}},
    ]);
    std::fs::write(t.join("list.json"), list.to_string()).unwrap();
    run_expect(&mut curate(&t, "list.json", &["--near-dedup", "off"]), 0);
    let s = stats(&t);
    let pinned = repo_stats(&s, "t/pinned");
    assert_eq!(pinned["commit"], first.as_str());
    assert_eq!(pinned["status"], "ok");
    let skipped = &pinned["skipped"];
    for reason in [
        "repo_submodule",
        "repo_symlink",
        "repo_vendored",
        "repo_generated",
        "repo_no_diff",
        "repo_lfs_pointer",
        "repo_binary",
        "repo_other_language",
    ] {
        assert!(
            skipped[reason].as_u64().unwrap_or(0) >= 1,
            "{reason}: {skipped}"
        );
    }
    // What each entry's commit and paths give, before dedup.
    for (repo, files) in [
        ("t/pinned", 2),
        ("t/branch", 3),
        ("t/tag", 2),
        ("t/local", 1),
    ] {
        assert_eq!(repo_stats(&s, repo)["files"], files, "{repo}");
    }
    // Exact dedup keeps one copy of the files the entries share.
    assert_eq!(
        all_paths(&t),
        vec!["pkg/core.py", "pkg/extra.py", "scripts/tool"]
    );
    assert!(paths_of(&t, "t/branch").contains(&"pkg/extra.py".to_string()));
    let branch_commit = repo_stats(&s, "t/branch")["commit"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(branch_commit, first);
    assert_eq!(repo_stats(&s, "t/tag")["commit"], first.as_str());

    // The branch moves: the rerun fetches the new commit and redoes only
    // that repository's shard.
    let src = served.join("fix");
    git(&src, &["checkout", "-q", "dev"]);
    write(&src, "pkg/later.py", python("later", 6).as_bytes());
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-qm", "later"]);
    git(&src, &["push", "-q", "../fix.git", "dev"]);
    let pinned_done = t.join("out/.work/python/parts/part-000000.done.json");
    let before = std::fs::metadata(&pinned_done).unwrap().modified().unwrap();
    run_expect(&mut curate(&t, "list.json", &["--near-dedup", "off"]), 0);
    let s = stats(&t);
    let moved = repo_stats(&s, "t/branch")["commit"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(moved, branch_commit);
    assert_eq!(moved, git(&src, &["rev-parse", "dev"]));
    assert_eq!(repo_stats(&s, "t/branch")["files"], 4);
    assert!(paths_of(&t, "t/branch").contains(&"pkg/later.py".to_string()));
    let after = std::fs::metadata(&pinned_done).unwrap().modified().unwrap();
    assert_eq!(before, after, "the pinned repository's shard was redone");
}

#[test]
fn failing_repositories_are_counted_and_do_not_stop_the_others() {
    let t = TestDir::new();
    let served = t.join("served");
    make_fixture(&served.join("fix"));
    git(
        t.path(),
        &["clone", "-q", "--bare", "served/fix", "served/fix.git"],
    );
    let server = GitServer::start(&served);
    let list = serde_json::json!([
        {"repo": "t/ok", "url": format!("{}/fix.git", server.url), "license": "MIT"},
        {"repo": "t/gone", "url": format!("{}/gone.git", server.url), "license": "MIT"},
        {"repo": "t/norev", "url": format!("{}/fix.git", server.url), "revision": "no-such-branch", "license": "MIT"},
    ]);
    std::fs::write(t.join("list.json"), list.to_string()).unwrap();
    let out = run_expect(&mut curate(&t, "list.json", &[]), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--keep-going"), "{err}");
    let out = run_expect(&mut curate(&t, "list.json", &["--keep-going"]), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("t/gone") && err.contains("repo_not_found"),
        "{err}"
    );
    assert!(
        err.contains("t/norev") && err.contains("revision_not_found"),
        "{err}"
    );
    let s = stats(&t);
    assert_eq!(repo_stats(&s, "t/gone")["reason"], "repo_not_found");
    assert_eq!(repo_stats(&s, "t/norev")["reason"], "revision_not_found");
    assert_eq!(paths_of(&t, "t/ok"), vec!["pkg/core.py", "scripts/tool"]);
}

#[test]
fn an_interrupted_fetch_fails_the_repository_and_a_rerun_recovers() {
    let t = TestDir::new();
    let served = t.join("served");
    make_fixture(&served.join("fix"));
    git(
        t.path(),
        &["clone", "-q", "--bare", "served/fix", "served/fix.git"],
    );
    let server = GitServer::start(&served);
    let list = serde_json::json!([
        {"repo": "t/cut", "url": format!("{}/fix.git", server.url), "license": "MIT"},
    ]);
    std::fs::write(t.join("list.json"), list.to_string()).unwrap();
    server.truncate.store(true, Ordering::SeqCst);
    run_expect(&mut curate(&t, "list.json", &["--keep-going"]), 1);
    assert_eq!(repo_stats(&stats(&t), "t/cut")["reason"], "fetch_failed");
    server.truncate.store(false, Ordering::SeqCst);
    run_expect(&mut curate(&t, "list.json", &["--keep-going"]), 0);
    assert_eq!(repo_stats(&stats(&t), "t/cut")["status"], "ok");
    assert_eq!(paths_of(&t, "t/cut"), vec!["pkg/core.py", "scripts/tool"]);
}

/// A one-commit repository at `dir` with `LICENSE`-like file `name` holding
/// Debian's copy of license `common`, and the given Python files.
fn licensed_repo(dir: &Path, name: &str, common: &str, files: &[(&str, String)]) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    let text = std::fs::read(Path::new("/usr/share/common-licenses").join(common))
        .expect("this test reads Debian's /usr/share/common-licenses");
    write(dir, name, &text);
    for (p, t) in files {
        write(dir, p, t.as_bytes());
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-qm", "c"]);
}

#[test]
fn detected_gpl_is_dropped_except_a_file_with_its_own_spdx_header() {
    let t = TestDir::new();
    let own = format!(
        "# SPDX-License-Identifier: MIT
{}",
        python("own", 6)
    );
    licensed_repo(
        &t.join("gpl"),
        "COPYING",
        "GPL-3",
        &[("pkg/core.py", python("gplcore", 6)), ("pkg/own.py", own)],
    );
    licensed_repo(
        &t.join("apache"),
        "LICENSE",
        "Apache-2.0",
        &[("src/app.py", python("app", 6))],
    );
    let list = serde_json::json!([
        {"repo": "t/gpl", "url": "gpl"},
        {"repo": "t/apache", "url": "apache"},
        {"repo": "t/declared", "url": "gpl", "license": "GPL-3.0-only"},
    ]);
    std::fs::write(t.join("list.json"), list.to_string()).unwrap();
    run_expect(&mut curate(&t, "list.json", &["--near-dedup", "off"]), 0);
    let rows = read_jsonl(&t.join("out/python_curated.jsonl"));
    let got: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["repo"].as_str().unwrap().to_string(),
                r["path"].as_str().unwrap().to_string(),
                r["license"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        got.contains(&("t/gpl".into(), "pkg/own.py".into(), "mit".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("t/apache".into(), "src/app.py".into(), "apache-2.0".into())),
        "{got:?}"
    );
    assert!(!got.iter().any(|g| g.1 == "pkg/core.py"), "{got:?}");
    let s = stats(&t);
    let gpl = &repo_stats(&s, "t/gpl")["license"];
    assert!(
        gpl["detected"].as_str().unwrap().starts_with("GPL-3.0"),
        "{gpl}"
    );
    assert_eq!(gpl["files_with_header"], 1);
    assert_eq!(
        repo_stats(&s, "t/apache")["license"]["applied"],
        "Apache-2.0"
    );
    let declared = &repo_stats(&s, "t/declared")["license"];
    assert_eq!(declared["declared"], "GPL-3.0-only");
    assert_eq!(repo_stats(&s, "t/declared")["files"], 2);
}

#[test]
fn a_malformed_list_names_the_entry_and_field() {
    let t = TestDir::new();
    std::fs::write(
        t.join("list.json"),
        r#"[{"repo": "a/b"}, {"repo": "c/d", "stars": "many"}]"#,
    )
    .unwrap();
    let out = run_expect(&mut curate(&t, "list.json", &[]), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("list.json") && err.contains("entry 1 (c/d)") && err.contains("\"stars\""),
        "{err}"
    );
}

#[test]
fn planted_secrets_are_redacted_and_the_file_kept() {
    let t = TestDir::new();
    let dir = t.join("leaky");
    let settings = format!(
        "{}\nAWS_ACCESS_KEY_ID = \"AKIA2E3A5F3B244C7Q6W\"\nGITHUB = \"ghp_R8aD2kQw9ZpL3mN7xV1cB5tY6uJ0hG4fE2sA\"\n# Maintainer: Jane Roe <jane.roe@acme-corp.com>\nLOCAL = \"127.0.0.1\"\nDOCS = \"someone@example.com\"\n",
        python("settings", 6)
    );
    licensed_repo(
        &dir,
        "LICENSE",
        "Apache-2.0",
        &[("app/settings.py", settings.clone())],
    );
    std::fs::write(
        t.join("list.json"),
        serde_json::json!([{"repo": "t/leaky", "url": "leaky"}]).to_string(),
    )
    .unwrap();
    run_expect(&mut curate(&t, "list.json", &[]), 0);
    // The run is quiet, so the counts per kind are read from the stats file
    // (the retention table prints the same notes).
    let run_stats = stats(&t);
    let redacted: Vec<(String, u64)> = run_stats["notes"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.starts_with("redacted_"))
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(
        redacted,
        [
            ("redacted_aws_access_key".to_string(), 1),
            ("redacted_email".to_string(), 1),
            ("redacted_github_token".to_string(), 1)
        ],
        "{run_stats}"
    );
    let rows = read_jsonl(&t.join("out/python_curated.jsonl"));
    assert_eq!(rows.len(), 1);
    let text = rows[0]["text"].as_str().unwrap();
    assert!(
        text.contains("AWS_ACCESS_KEY_ID = \"<AWS_ACCESS_KEY>\""),
        "{text}"
    );
    assert!(text.contains("GITHUB = \"<GITHUB_TOKEN>\""), "{text}");
    assert!(text.contains("Jane Roe <<EMAIL>>"), "{text}");
    assert!(text.contains("\"127.0.0.1\"") && text.contains("someone@example.com"));
    let notes = &stats(&t)["notes"];
    for k in [
        "redacted_aws_access_key",
        "redacted_github_token",
        "redacted_email",
    ] {
        assert_eq!(notes[k], 1, "{k}: {notes}");
    }
    // `--redact off` keeps the text as it is (a new work dir: the setting
    // shapes the parts).
    run_expect(
        &mut curate(&t, "list.json", &["--redact", "off", "--fresh"]),
        0,
    );
    let rows = read_jsonl(&t.join("out/python_curated.jsonl"));
    assert_eq!(rows[0]["text"].as_str().unwrap(), settings);
}

/// A server answering like the GitHub REST API: `t/a` has 1234 stars,
/// `t/gone` is 404, `t/limited` answers 403 with the rate limit exhausted.
/// Counts the requests.
fn github_api() -> (String, Arc<std::sync::atomic::AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            h.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut auth = None;
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
                    break;
                }
                if l.to_ascii_lowercase().starts_with("authorization:") {
                    auth = Some(l.trim().to_string());
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, extra, body) = match path.as_str() {
                "/repos/t/a" => (
                    "200 OK",
                    "x-ratelimit-remaining: 59\r\n",
                    format!(
                        "{{\"full_name\":\"t/a\",\"stargazers_count\":1234,\"auth\":{:?}}}",
                        auth.unwrap_or_default()
                    ),
                ),
                "/repos/t/limited" => (
                    "403 Forbidden",
                    "x-ratelimit-remaining: 0\r\nx-ratelimit-reset: 1900000000\r\n",
                    "{\"message\":\"API rate limit exceeded\"}".to_string(),
                ),
                _ => (
                    "404 Not Found",
                    "",
                    "{\"message\":\"Not Found\"}".to_string(),
                ),
            };
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, hits)
}

#[test]
fn refresh_stars_reads_the_api_honours_the_rate_limit_and_caches() {
    let t = TestDir::new();
    licensed_repo(
        &t.join("r"),
        "LICENSE",
        "Apache-2.0",
        &[("m.py", python("m", 6))],
    );
    let list = serde_json::json!([
        {"repo": "t/a", "url": "r"},
        {"repo": "t/gone", "url": "r", "stars": 5},
        {"repo": "t/limited", "url": "r", "stars": 7},
        {"repo": "t/after", "url": "r"},
    ]);
    std::fs::write(t.join("list.json"), list.to_string()).unwrap();
    let (api, hits) = github_api();
    let run = |extra: &[&str]| {
        let mut c = curate(&t, "list.json", &["--refresh-stars", "--near-dedup", "off"]);
        c.args(extra)
            .env("GITHUB_API_URL", &api)
            .env("GITHUB_TOKEN", "test-token");
        run_expect(&mut c, 0);
        stats(&t)
    };
    let s = run(&[]);
    let r = &s["transfers"]["stars_refresh"];
    assert_eq!(r["refreshed"], 1, "{r}");
    assert_eq!(r["not_found"], 1, "{r}");
    // The limit stops the refresh: t/limited and t/after are not asked.
    assert_eq!(r["rate_limited"], 2, "{r}");
    assert_eq!(r["rate_limit_reset"], 1900000000u64, "{r}");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    assert_eq!(repo_stats(&s, "t/a")["stars"], 1234);
    assert_eq!(repo_stats(&s, "t/gone")["stars"], 5);
    assert_eq!(repo_stats(&s, "t/limited")["stars"], 7);
    let rows = read_jsonl(&t.join("out/python_curated.jsonl"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["repo"], "t/a");
    assert_eq!(rows[0]["stars"], 1234);
    // A rerun takes t/a from the cache.
    let s = run(&[]);
    assert_eq!(s["transfers"]["stars_refresh"]["from_cache"], 1);
    assert_eq!(hits.load(Ordering::SeqCst), 5);
}

#[test]
fn repos_and_another_source_are_deduplicated_together() {
    let t = TestDir::new();
    let shared = python("shared", 6);
    licensed_repo(
        &t.join("r"),
        "LICENSE",
        "Apache-2.0",
        &[
            ("lib/shared.py", shared.clone()),
            ("lib/own.py", python("own", 6)),
        ],
    );
    std::fs::write(
        t.join("list.json"),
        serde_json::json!([{"repo": "t/r", "url": "r"}]).to_string(),
    )
    .unwrap();
    let row = serde_json::json!({"text": shared, "language": "python", "license": "mit",
        "stars": 500, "path": "copy/shared.py", "repo": "other/copy"});
    std::fs::write(t.join("local.jsonl"), format!("{row}\n")).unwrap();
    run_expect(
        &mut curate(&t, "list.json", &["--source", "local.jsonl"]),
        0,
    );
    let s = stats(&t);
    assert_eq!(s["exact_dedup"]["duplicates"], 1, "{}", s["exact_dedup"]);
    let rows = read_jsonl(&t.join("out/python_curated.jsonl"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().any(|r| r["path"] == "lib/own.py"));
}
