//! Remote sources against real HTTP servers that the tests start on
//! 127.0.0.1: a Hub-like endpoint (tree listing with `Link` pagination,
//! `resolve` redirects, Range requests, gated answers) and an S3-compatible
//! endpoint serving gzip blobs (404, 403, 500-then-200, slow, cut, truncated
//! gzip). The library's own client code talks to them; nothing is mocked
//! inside the code path. Every server thread and every test is bounded in
//! time (timeouts of a fraction of a second, a few retries).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tritter_gpu::remote::http::HttpSettings;
use tritter_gpu::remote::{
    open_content, open_content_store, Env, HubClient, HubConfig, HubShards, Prefetcher,
    RemoteConfig,
};

// ---------------------------------------------------------------- server

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Req {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn path(&self) -> String {
        let raw = self.target.split('?').next().unwrap_or("");
        percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .expect("utf8 path")
            .into_owned()
    }
    fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| {
                percent_encoding::percent_decode_str(v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    }
}

/// What the server does with one request.
enum Reply {
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Announces the whole body, sends `send` bytes of it, closes.
    Cut {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        send: usize,
    },
    Delay(Duration, Box<Reply>),
}

fn ok(body: Vec<u8>) -> Reply {
    Reply::Full {
        status: 200,
        headers: vec![],
        body,
    }
}

fn status(code: u16, body: &str, headers: Vec<(String, String)>) -> Reply {
    Reply::Full {
        status: code,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

type Handler = dyn Fn(&Req, usize) -> Reply + Send + Sync;

struct Server {
    base: String,
    log: Arc<Mutex<Vec<Req>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Starts a server; `handler` gets each request and how many requests
    /// with the same target came before it.
    fn start(handler: impl Fn(&Req, usize) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("addr");
        let log: Arc<Mutex<Vec<Req>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (log, handler) = (log.clone(), handler.clone());
                    std::thread::spawn(move || serve(conn, &log, &*handler));
                }
            });
        }
        Server {
            base: format!("http://{addr}"),
            log,
            stop,
        }
    }

    fn requests(&self) -> Vec<Req> {
        self.log.lock().expect("log").clone()
    }

    fn count(&self, pred: impl Fn(&Req) -> bool) -> usize {
        self.requests().iter().filter(|r| pred(r)).count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.base.trim_start_matches("http://"));
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<Req>>, handler: &Handler) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let method = line.split_whitespace().next().unwrap_or("GET").to_string();
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let req = Req {
        method,
        target,
        headers,
    };
    let seen = {
        let mut l = log.lock().expect("log");
        let seen = l.iter().filter(|r| r.target == req.target).count();
        l.push(req.clone());
        seen
    };
    let mut reply = handler(&req, seen);
    let mut conn = conn;
    loop {
        match reply {
            Reply::Delay(d, inner) => {
                std::thread::sleep(d);
                reply = *inner;
            }
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let len = body.len();
                write_response(&mut conn, status, &headers, &body, len);
                return;
            }
            Reply::Cut {
                status,
                headers,
                body,
                send,
            } => {
                write_response(&mut conn, status, &headers, &body[..send], body.len());
                return;
            }
        }
    }
}

fn write_response(
    conn: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
    len: usize,
) {
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // The client may have given up (timeout test): write errors are expected.
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
    let _ = conn.flush();
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

// ---------------------------------------------------------------- data

fn parquet_bytes(rows: usize, tag: &str) -> Vec<u8> {
    use arrow_array::{ArrayRef, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let schema = Arc::new(Schema::new(vec![
        Field::new("blob_id", DataType::Utf8, false),
        Field::new("path", DataType::Utf8, false),
    ]));
    let ids: ArrayRef = Arc::new(StringArray::from(
        (0..rows).map(|i| format!("{i:040x}")).collect::<Vec<_>>(),
    ));
    let paths: ArrayRef = Arc::new(StringArray::from(
        (0..rows)
            .map(|i| format!("{tag}/src/file_{i}.py"))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), vec![ids, paths]).expect("batch");
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    buf
}

fn parquet_rows(path: &Path) -> usize {
    let f = std::fs::File::open(path).expect("open shard");
    parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .expect("parquet footer")
        .build()
        .expect("reader")
        .map(|b| b.expect("batch").num_rows())
        .sum()
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

// ---------------------------------------------------------------- hub

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

/// A Hub-like endpoint with commits: `main` points to one of them (and can
/// move while the server runs); listings, the revision API and downloads
/// answer for a commit. Answers follow the real Hub's: the revision API
/// gives `{"sha"}`, `resolve` redirects LFS files to `/cdn/...` with
/// `X-Repo-Commit` and `X-Linked-Etag` (the sha256), the CDN honours
/// `Range`; an unknown token is a 401 "Invalid credentials in
/// Authorization header" on any repository, a gated repository answers 401
/// `GatedRepo` without a token and 403 `GatedRepo` with a token whose
/// account has not accepted its terms.
#[derive(Clone)]
struct Hub {
    /// commit -> (repo, path) -> bytes
    commits: BTreeMap<String, BTreeMap<(String, String), Vec<u8>>>,
    main: Arc<Mutex<String>>,
    /// Listed sha256 overrides (to simulate a corrupt download).
    listed_sha: BTreeMap<String, String>,
    page: usize,
    /// Tokens the Hub knows; any other is refused with 401.
    valid_tokens: Vec<String>,
    /// `Some(accepted)`: every repository is gated, and only these tokens'
    /// accounts accepted the terms.
    gated: Option<Vec<String>>,
    /// Cut the first CDN response of each file after this many bytes.
    cut_first_at: Option<usize>,
    /// Answer this commit in `X-Repo-Commit` whatever was asked (a broken mirror).
    lie_commit: Option<String>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            commits: BTreeMap::from([(C1.to_string(), BTreeMap::new())]),
            main: Arc::new(Mutex::new(C1.to_string())),
            listed_sha: BTreeMap::new(),
            page: 100,
            valid_tokens: vec!["hf_test".into(), "hf_good".into(), "hf_other".into()],
            gated: None,
            cut_first_at: None,
            lie_commit: None,
        }
    }
}

impl Hub {
    fn add(&mut self, repo: &str, path: &str, bytes: Vec<u8>) {
        let main = self.main.lock().expect("main").clone();
        self.add_at(&main, repo, path, bytes);
    }

    fn add_at(&mut self, commit: &str, repo: &str, path: &str, bytes: Vec<u8>) {
        self.commits
            .entry(commit.to_string())
            .or_default()
            .insert((repo.into(), path.into()), bytes);
    }

    fn commit_of(&self, rev: &str) -> Option<String> {
        if self.commits.contains_key(rev) {
            return Some(rev.to_string());
        }
        (rev == "main").then(|| self.main.lock().expect("main").clone())
    }

    fn files(&self, commit: &str) -> &BTreeMap<(String, String), Vec<u8>> {
        &self.commits[commit]
    }

    /// The auth answer of the real Hub, if it refuses.
    fn refuse(&self, req: &Req) -> Option<Reply> {
        let token = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::to_string);
        if let Some(t) = &token {
            if !self.valid_tokens.contains(t) {
                return Some(status(
                    401,
                    r#"{"error":"Invalid credentials in Authorization header"}"#,
                    vec![(
                        "X-Error-Message".into(),
                        "Invalid credentials in Authorization header".into(),
                    )],
                ));
            }
        }
        let accepted = self.gated.as_ref()?;
        let gate = vec![("X-Error-Code".to_string(), "GatedRepo".to_string())];
        match token {
            None => Some(status(
                401,
                r#"{"error":"Access to dataset is restricted. You must be authenticated to access it."}"#,
                gate,
            )),
            Some(t) if !accepted.contains(&t) => Some(status(
                403,
                r#"{"error":"Access to dataset is restricted and you are not in the authorized list."}"#,
                gate,
            )),
            Some(_) => None,
        }
    }

    fn handle(&self, req: &Req, seen: usize) -> Reply {
        let path = req.path();
        let host = req.header("host").unwrap_or("127.0.0.1").to_string();
        if path.starts_with("/api/datasets/") || path.starts_with("/datasets/") {
            if let Some(r) = self.refuse(req) {
                return r;
            }
        }
        if let Some(rest) = path.strip_prefix("/api/datasets/") {
            let parts: Vec<&str> = rest.splitn(4, '/').collect();
            if parts.len() == 4 && parts[2] == "revision" {
                return match self.commit_of(parts[3]) {
                    Some(c) => ok(serde_json::to_vec(
                        &serde_json::json!({"id": format!("{}/{}", parts[0], parts[1]), "sha": c}),
                    )
                    .expect("json")),
                    None => status(
                        404,
                        r#"{"error":"Invalid rev id"}"#,
                        vec![("X-Error-Code".into(), "RevisionNotFound".into())],
                    ),
                };
            }
            return self.tree(rest, req);
        }
        if let Some(rest) = path.strip_prefix("/datasets/") {
            // /datasets/{owner}/{name}/resolve/{rev}/{path}
            let parts: Vec<&str> = rest.splitn(5, '/').collect();
            if parts.len() == 5 && parts[2] == "resolve" {
                let Some(commit) = self.commit_of(parts[3]) else {
                    return status(
                        404,
                        "",
                        vec![("X-Error-Code".into(), "RevisionNotFound".into())],
                    );
                };
                let repo = format!("{}/{}", parts[0], parts[1]);
                let Some(bytes) = self.files(&commit).get(&(repo, parts[4].to_string())) else {
                    return status(
                        404,
                        "",
                        vec![("X-Error-Code".into(), "EntryNotFound".into())],
                    );
                };
                let raw_rest = req.target.splitn(7, '/').nth(6).unwrap_or("");
                let told = self.lie_commit.clone().unwrap_or(commit.clone());
                return status(
                    302,
                    "",
                    vec![
                        // The CDN is another host, as the real one is: the
                        // token must not follow the redirect.
                        (
                            "Location".into(),
                            format!(
                                "http://{}/cdn/{}/{}/{commit}/{raw_rest}",
                                host.replace("127.0.0.1", "localhost"),
                                parts[0],
                                parts[1]
                            ),
                        ),
                        ("X-Repo-Commit".into(), told),
                        ("X-Linked-Etag".into(), format!("\"{}\"", sha256_hex(bytes))),
                        ("X-Linked-Size".into(), bytes.len().to_string()),
                    ],
                );
            }
        }
        if let Some(rest) = path.strip_prefix("/cdn/") {
            if req.header("authorization").is_some() {
                return status(400, "the token must not reach the CDN", vec![]);
            }
            let mut it = rest.splitn(4, '/');
            let (o, n, c, p) = (
                it.next().unwrap_or(""),
                it.next().unwrap_or(""),
                it.next().unwrap_or(""),
                it.next().unwrap_or(""),
            );
            let Some(bytes) = self
                .commits
                .get(c)
                .and_then(|f| f.get(&(format!("{o}/{n}"), p.to_string())))
            else {
                return status(404, "not found", vec![]);
            };
            let start = req
                .header("range")
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
            return match start {
                Some(s) if s < bytes.len() => Reply::Full {
                    status: 206,
                    headers: vec![(
                        "Content-Range".into(),
                        format!("bytes {s}-{}/{}", bytes.len() - 1, bytes.len()),
                    )],
                    body: bytes[s..].to_vec(),
                },
                Some(_) => status(416, "", vec![]),
                None => match self.cut_first_at {
                    Some(at) if seen == 0 => Reply::Cut {
                        status: 200,
                        headers: vec![],
                        body: bytes.clone(),
                        send: at,
                    },
                    _ => ok(bytes.clone()),
                },
            };
        }
        status(404, "no route", vec![])
    }

    fn tree(&self, rest: &str, req: &Req) -> Reply {
        // {owner}/{name}/tree/{rev}[/{dir}]
        let parts: Vec<&str> = rest.splitn(5, '/').collect();
        if parts.len() < 4 || parts[2] != "tree" {
            return status(404, "bad api path", vec![]);
        }
        let Some(commit) = self.commit_of(parts[3]) else {
            return status(
                404,
                "",
                vec![("X-Error-Code".into(), "RevisionNotFound".into())],
            );
        };
        let repo = format!("{}/{}", parts[0], parts[1]);
        let dir = parts
            .get(4)
            .copied()
            .unwrap_or("")
            .trim_matches('/')
            .to_string();
        let recursive = req.query("recursive").as_deref() == Some("true");
        let under = |p: &str| dir.is_empty() || p.starts_with(&format!("{dir}/"));
        let mut entries: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for ((r, p), bytes) in self.files(&commit) {
            if *r != repo || !under(p) {
                continue;
            }
            let rel = if dir.is_empty() {
                p.as_str()
            } else {
                &p[dir.len() + 1..]
            };
            let segs: Vec<&str> = rel.split('/').collect();
            let prefix = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            // Directories on the way down.
            let dir_levels = if recursive {
                segs.len() - 1
            } else {
                segs.len().min(2) - 1
            };
            for i in 0..dir_levels {
                let d = format!("{prefix}{}", segs[..=i].join("/"));
                entries.insert(
                    d.clone(),
                    serde_json::json!({"type": "directory", "oid": "0", "size": 0, "path": d}),
                );
            }
            if recursive || segs.len() == 1 {
                let sha = self
                    .listed_sha
                    .get(p)
                    .cloned()
                    .unwrap_or_else(|| sha256_hex(bytes));
                entries.insert(
                    p.clone(),
                    serde_json::json!({"type": "file", "oid": "deadbeef", "size": bytes.len(), "path": p,
                                       "lfs": {"oid": sha, "size": bytes.len(), "pointerSize": 134}}),
                );
            }
        }
        if entries.is_empty() {
            return status(
                404,
                r#"{"error":"Entry not found"}"#,
                vec![("X-Error-Code".into(), "EntryNotFound".into())],
            );
        }
        let all: Vec<serde_json::Value> = entries.into_values().collect();
        let page = self.page.max(1);
        let start: usize = req
            .query("cursor")
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let end = (start + page).min(all.len());
        let body = serde_json::to_vec(&all[start..end]).expect("json");
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        if end < all.len() {
            let host = req.header("host").unwrap_or("127.0.0.1");
            let base = req.target.split('?').next().unwrap_or("");
            let q = if recursive { "recursive=true&" } else { "" };
            headers.push((
                "Link".into(),
                format!("<http://{host}{base}?{q}cursor={end}>; rel=\"next\""),
            ));
        }
        Reply::Full {
            status: 200,
            headers,
            body,
        }
    }
}

fn fast_http() -> HttpSettings {
    HttpSettings {
        request_timeout: Duration::from_millis(2000),
        max_retries: 3,
        backoff_initial: Duration::from_millis(20),
        backoff_max: Duration::from_millis(200),
        max_connections: 8,
        follow_redirects: true,
    }
}

fn hub_client(server: &Server, cache: &Path, token: Option<&str>) -> HubClient {
    HubClient::with_http(HubConfig::new(&server.base, token, cache), fast_http()).expect("client")
}

const V2: &str = "bigcode/the-stack-v2-dedup";
const V2_DIR: &str = "datasets--bigcode--the-stack-v2-dedup";

#[test]
fn hub_lists_paginated_tree_and_prefetches_verified_parquet_shards() {
    let mut hub = Hub {
        page: 2,
        ..Hub::default()
    };
    let shard_rows = [300, 200, 100];
    for (i, rows) in shard_rows.iter().enumerate() {
        hub.add(
            V2,
            &format!("data/Python/train-0000{i}-of-00003.parquet"),
            parquet_bytes(*rows, &format!("py{i}")),
        );
    }
    hub.add(V2, "data/Python/README.md", b"not a shard".to_vec());
    hub.add(
        V2,
        "data/Rust/train-00000-of-00001.parquet",
        parquet_bytes(10, "rs"),
    );
    let expected = hub.files(C1).clone();
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");
    let client = Arc::new(hub_client(&server, tmp.path(), Some("hf_test")));

    let shards = HubShards::resolve(&format!("hf://{V2}"), Some("python"), "main", &client)
        .expect("resolve");
    assert_eq!(shards.dir, "data/Python");
    assert_eq!(
        (shards.revision.as_str(), shards.commit.as_str()),
        ("main", C1)
    );
    let names: Vec<&str> = shards.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        names,
        [
            "data/Python/train-00000-of-00003.parquet",
            "data/Python/train-00001-of-00003.parquet",
            "data/Python/train-00002-of-00003.parquet"
        ]
    );
    for f in &shards.files {
        let bytes = &expected[&(V2.to_string(), f.path.clone())];
        assert_eq!(f.size, bytes.len() as u64);
        assert_eq!(f.sha256.as_deref(), Some(sha256_hex(bytes).as_str()));
        assert_eq!(f.revision, C1, "listed at the pinned commit");
    }
    // Four entries under data/Python with pages of two: the cursor was followed.
    assert!(
        server.count(|r| r.query("cursor").is_some()) >= 1,
        "pagination not followed"
    );
    // Every API call carried the token; the revision was asked once, and
    // every listing after it named the commit, not the branch.
    assert!(server
        .requests()
        .iter()
        .filter(|r| r.path().starts_with("/api/"))
        .all(|r| r.header("authorization") == Some("Bearer hf_test")));
    assert_eq!(server.count(|r| r.path().contains("/revision/main")), 1);
    assert_eq!(server.count(|r| r.path().contains("/tree/main")), 0);
    assert_eq!(shards.missing_bytes(&client), shards.total_bytes());
    // The cache's refs/main records the commit, as huggingface_hub's does.
    let repo_dir = tmp.path().join(V2_DIR);
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).expect("ref"),
        C1
    );

    let pre = Prefetcher::new(client.clone(), shards.files.clone(), 1, 2);
    for (i, rows) in shard_rows.iter().enumerate() {
        let p = pre.get(i).expect("shard");
        assert_eq!(parquet_rows(&p), *rows, "shard {i}");
        let f = &shards.files[i];
        let expected_bytes = &expected[&(V2.to_string(), f.path.clone())];
        assert_eq!(&std::fs::read(&p).expect("read"), expected_bytes);
        // snapshots/{commit}/{path} -> ../../../../blobs/{sha256}
        assert_eq!(p, repo_dir.join("snapshots").join(C1).join(&f.path));
        assert_eq!(
            std::fs::read_link(&p).expect("snapshot is a symlink"),
            Path::new("../../../../blobs").join(sha256_hex(expected_bytes))
        );
    }
    drop(pre);
    assert!(server
        .requests()
        .iter()
        .filter(|r| r.path().contains("/resolve/"))
        .all(|r| r.path().contains(&format!("/resolve/{C1}/"))));
    assert_eq!(shards.missing_bytes(&client), 0);
    let snap = client.stats().snapshot();
    eprintln!("hub stats: {snap}");
    assert_eq!(snap.completed, 3);
    // Shard bytes plus the JSON of the listing pages.
    assert!(snap.bytes_downloaded > shards.total_bytes(), "{snap}");

    // A rerun finds everything in the cache: no download request at all.
    let cdn_before = server.count(|r| r.path().starts_with("/cdn/"));
    for f in &shards.files {
        client.download(f).expect("cached");
    }
    assert_eq!(server.count(|r| r.path().starts_with("/cdn/")), cdn_before);
    assert_eq!(client.stats().snapshot().cache_hits, 3);
}

#[test]
fn hub_language_directories_match_case_and_spelling() {
    let mut hub = Hub::default();
    hub.add(
        "bigcode/the-stack-dedup",
        "data/python/data-00000.parquet",
        parquet_bytes(5, "a"),
    );
    hub.add(
        "bigcode/the-stack-dedup",
        "data/rust/data-00000.parquet",
        parquet_bytes(5, "b"),
    );
    hub.add(
        "HuggingFaceTB/stack-edu",
        "Python/train-00000.parquet",
        parquet_bytes(5, "c"),
    );
    hub.add("HuggingFaceTB/stack-edu", "README.md", b"readme".to_vec());
    hub.add(V2, "data/C++/train-00000.parquet", parquet_bytes(5, "d"));
    hub.add(V2, "data/C/train-00000.parquet", parquet_bytes(5, "e"));
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");
    let client = hub_client(&server, tmp.path(), None);

    let v1 = HubShards::resolve(
        "hf://bigcode/the-stack-dedup",
        Some("Python"),
        "main",
        &client,
    )
    .expect("v1");
    assert_eq!(v1.dir, "data/python");
    assert_eq!(v1.default_content_store(), None);
    let edu = HubShards::resolve(
        "hf://HuggingFaceTB/stack-edu",
        Some("python"),
        "main",
        &client,
    )
    .expect("edu");
    assert_eq!(edu.dir, "Python");
    assert_eq!(
        edu.default_content_store(),
        Some("s3://softwareheritage/content")
    );
    let cpp = HubShards::resolve(&format!("hf://{V2}"), Some("cpp"), "main", &client).expect("cpp");
    assert_eq!(cpp.files[0].path, "data/C++/train-00000.parquet");
    // The '+' travelled percent-encoded and the file downloads.
    let p = client.download(&cpp.files[0]).expect("download C++");
    assert_eq!(parquet_rows(&p), 5);
    // An explicit PATH that is already the language directory, and the
    // HfFileSystem form with a revision.
    let direct = HubShards::resolve(
        "hf://bigcode/the-stack-dedup/data/rust",
        Some("rust"),
        "main",
        &client,
    )
    .expect("direct");
    assert_eq!(direct.files.len(), 1);
    let pinned = HubShards::resolve(
        &format!("hf://datasets/bigcode/the-stack-dedup@{C1}/data/rust"),
        Some("rust"),
        "ignored-by-the-uri",
        &client,
    )
    .expect("revision in the URI");
    assert_eq!(pinned.commit, C1);

    let err = HubShards::resolve(&format!("hf://{V2}"), Some("cobol"), "main", &client)
        .expect_err("no cobol");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("cobol") && msg.contains("C++") && msg.contains("available"),
        "{msg}"
    );
    let err = HubShards::resolve(&format!("hf://{V2}"), Some("python"), "v9", &client)
        .expect_err("no such revision");
    assert!(format!("{err:#}").contains("RevisionNotFound"), "{err:#}");
}

#[test]
fn hub_gated_dataset_says_to_accept_terms_and_a_refused_token_is_named() {
    let mut hub = Hub {
        gated: Some(vec!["hf_good".into()]),
        ..Hub::default()
    };
    hub.add(V2, "data/Python/a.parquet", parquet_bytes(3, "g"));
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");

    let anon = hub_client(&server, tmp.path(), None);
    let msg = format!(
        "{:#}",
        HubShards::resolve(&format!("hf://{V2}"), Some("python"), "main", &anon)
            .expect_err("gated")
    );
    eprintln!("gated, no token: {msg}");
    assert!(msg.contains("HTTP 401"), "{msg}");
    assert!(msg.contains("accept the dataset's terms"), "{msg}");
    assert!(msg.contains("set HF_TOKEN"), "{msg}");
    assert!(msg.contains("GatedRepo"), "{msg}");

    // A valid token whose account has not accepted the terms.
    let other = hub_client(&server, tmp.path(), Some("hf_other"));
    let msg = format!(
        "{:#}",
        other
            .list_dataset_files(V2, "main", "data")
            .expect_err("refused")
    );
    eprintln!("gated, terms not accepted: {msg}");
    assert!(
        msg.contains("HTTP 403")
            && msg.contains("accept the dataset's terms")
            && msg.contains("owns the token"),
        "{msg}"
    );
    // A stale token: the token is named as the problem, not the gate.
    let stale = hub_client(&server, tmp.path(), Some("hf_expired"));
    let msg = format!(
        "{:#}",
        stale
            .list_dataset_files(V2, "main", "data")
            .expect_err("refused")
    );
    eprintln!("stale token: {msg}");
    assert!(
        msg.contains("HTTP 401")
            && msg.contains("refused the token")
            && msg.contains("hf auth login"),
        "{msg}"
    );
    // 401/403 are answers, not accidents: asked once each, never retried.
    assert_eq!(
        server.count(|r| r.header("authorization") == Some("Bearer hf_expired")),
        1
    );

    let good = hub_client(&server, tmp.path(), Some("hf_good"));
    let shards = HubShards::resolve(&format!("hf://{V2}"), Some("python"), "main", &good)
        .expect("token accepted");
    assert_eq!(shards.files.len(), 1);
    good.download(&shards.files[0])
        .expect("download; the token stays off the CDN");
}

#[test]
fn hub_public_dataset_with_a_stale_token_from_the_token_file_blames_the_token() {
    let mut hub = Hub::default();
    hub.add(V2, "data/Python/a.parquet", parquet_bytes(3, "p"));
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");
    // `hf auth login` wrote a token that has since been revoked.
    let token_file = tmp.path().join("home/.cache/huggingface/token");
    std::fs::create_dir_all(token_file.parent().expect("dir")).expect("mkdir");
    std::fs::write(&token_file, "hf_revoked\n").expect("token");
    let env = Env::fixed([
        ("HOME", tmp.path().join("home").to_str().expect("utf8")),
        ("HF_ENDPOINT", server.base.as_str()),
    ]);
    let config = HubConfig::from_env(&env, None).expect("config");
    assert_eq!(
        config.cache_dir,
        tmp.path().join("home/.cache/huggingface/hub")
    );
    let client = HubClient::with_http(config, fast_http()).expect("client");
    let msg = format!(
        "{:#}",
        HubShards::resolve(&format!("hf://{V2}"), Some("python"), "main", &client)
            .expect_err("refused")
    );
    eprintln!("public dataset, revoked token file: {msg}");
    assert!(
        msg.contains("refused the token from the token file"),
        "{msg}"
    );
    assert!(msg.contains(token_file.to_str().expect("utf8")), "{msg}");
    assert!(!msg.contains("gated or private"), "{msg}");
    assert!(
        !msg.contains("hf_revoked"),
        "the token is never printed: {msg}"
    );
}

#[test]
fn hub_download_cut_off_mid_file_resumes_with_range_and_verifies() {
    let bytes = parquet_bytes(20_000, "big");
    let cut = bytes.len() * 2 / 5;
    let mut hub = Hub {
        cut_first_at: Some(cut),
        ..Hub::default()
    };
    hub.add(V2, "data/Python/big.parquet", bytes.clone());
    let mut other_bytes = bytes.clone();
    other_bytes.extend_from_slice(b"other");
    hub.add(V2, "data/Python/other.parquet", other_bytes.clone());
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");
    let client = hub_client(&server, tmp.path(), None);
    let files = client
        .list_dataset_files(V2, "main", "data/Python")
        .expect("list");
    let big = files
        .iter()
        .find(|f| f.path.ends_with("big.parquet"))
        .expect("big");

    let p = client.download(big).expect("resumed download");
    assert_eq!(std::fs::read(&p).expect("read"), bytes);
    assert_eq!(parquet_rows(&p), 20_000);
    let cdn: Vec<Req> = server
        .requests()
        .into_iter()
        .filter(|r| r.path().ends_with("/big.parquet") && r.path().starts_with("/cdn/"))
        .collect();
    assert_eq!(cdn.len(), 2, "one cut response, one resumed");
    assert_eq!(cdn[0].header("range"), None);
    let range = cdn[1]
        .header("range")
        .expect("second request resumes with Range");
    let start: usize = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .expect("offset");
    assert!(
        start > 0 && start <= cut,
        "resumed at {start}, cut at {cut}"
    );
    let blobs = tmp.path().join(V2_DIR).join("blobs");
    assert!(!blobs.join(format!("{}.incomplete", big.etag)).exists());
    assert!(client.stats().snapshot().retries >= 1);

    // A part file left by an earlier run (huggingface_hub's name for it) is
    // resumed from its length.
    let other = files
        .iter()
        .find(|f| f.path.ends_with("other.parquet"))
        .expect("other");
    std::fs::write(
        blobs.join(format!("{}.incomplete", other.etag)),
        &other_bytes[..1000],
    )
    .expect("part");
    let dest = client.download(other).expect("resume from part");
    assert_eq!(std::fs::read(&dest).expect("read"), other_bytes);
    let first = server
        .requests()
        .into_iter()
        .find(|r| r.path().starts_with("/cdn/") && r.path().ends_with("/other.parquet"))
        .expect("request");
    assert_eq!(first.header("range"), Some("bytes=1000-"));
}

#[test]
fn hub_pinned_commit_survives_main_moving_and_parts_resume_only_their_own_version() {
    let v1 = parquet_bytes(3_000, "v1");
    let v2 = parquet_bytes(2_000, "v2-opt-out-removed");
    let mut hub = Hub::default();
    hub.add_at(C1, V2, "data/Python/a.parquet", v1.clone());
    hub.add_at(C1, V2, "data/Python/b.parquet", parquet_bytes(10, "b"));
    hub.add_at(C2, V2, "data/Python/a.parquet", v2.clone());
    hub.add_at(C2, V2, "data/Python/b.parquet", parquet_bytes(10, "b"));
    let main = hub.main.clone();
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");
    let client = hub_client(&server, tmp.path(), None);

    let run1 = HubShards::resolve(&format!("hf://{V2}"), Some("python"), "main", &client)
        .expect("resolve");
    assert_eq!(run1.commit, C1);
    // BigCode rewrites a shard in place while the run goes on.
    *main.lock().expect("main") = C2.to_string();
    let a1 = &run1.files[0];
    let p = client.download(a1).expect("download");
    assert_eq!(
        std::fs::read(&p).expect("read"),
        v1,
        "still the pinned version"
    );

    // A part of the old version is left behind; the next run pins the new
    // commit, whose file is another blob: the old part is not resumed into it.
    let blobs = tmp.path().join(V2_DIR).join("blobs");
    std::fs::remove_file(blobs.join(&a1.etag)).expect("rm blob");
    std::fs::write(blobs.join(format!("{}.incomplete", a1.etag)), &v1[..500]).expect("part");
    let run2 = HubShards::resolve(&format!("hf://{V2}"), Some("python"), "main", &client)
        .expect("resolve again");
    assert_eq!(run2.commit, C2);
    let a2 = &run2.files[0];
    assert_ne!(a2.etag, a1.etag);
    let before = server.requests().len();
    let p2 = client.download(a2).expect("download new version");
    assert_eq!(std::fs::read(&p2).expect("read"), v2);
    let new_reqs = &server.requests()[before..];
    assert!(
        new_reqs.iter().all(|r| r.header("range").is_none()),
        "no Range into another version's part"
    );
    assert!(p2.starts_with(tmp.path().join(V2_DIR).join("snapshots").join(C2)));
    // The unchanged file is one blob shared by both snapshots.
    let b1 = client.download(&run1.files[1]).expect("b at C1");
    let cdn_before = server.count(|r| r.path().starts_with("/cdn/"));
    let b2 = client.download(&run2.files[1]).expect("b at C2");
    assert_eq!(server.count(|r| r.path().starts_with("/cdn/")), cdn_before);
    assert_eq!(std::fs::read_link(&b1).ok(), std::fs::read_link(&b2).ok());
}

#[test]
fn hub_download_refuses_an_answer_for_another_commit() {
    let mut hub = Hub {
        lie_commit: Some(C2.to_string()),
        ..Hub::default()
    };
    hub.add(V2, "data/Python/a.parquet", parquet_bytes(10, "x"));
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");
    let client = hub_client(&server, tmp.path(), None);
    let files = client.list_dataset_files(V2, "main", "data").expect("list");
    let msg = format!(
        "{:#}",
        client.download(&files[0]).expect_err("wrong commit")
    );
    assert!(
        msg.contains(C2) && msg.contains(C1) && msg.contains("pinned"),
        "{msg}"
    );
    assert_eq!(server.count(|r| r.path().starts_with("/cdn/")), 0);
}

/// Lays out files as `huggingface_hub` (`hf download`, `datasets`) leaves
/// them: `blobs/{sha256}`, `snapshots/{commit}/{path}` relative symlinks,
/// `refs/main`.
fn hf_hub_layout(cache: &Path, repo_dir: &str, commit: &str, files: &[(&str, &[u8])]) {
    let repo = cache.join(repo_dir);
    std::fs::create_dir_all(repo.join("blobs")).expect("mkdir");
    std::fs::create_dir_all(repo.join("refs")).expect("mkdir");
    std::fs::write(repo.join("refs/main"), commit).expect("ref");
    for (path, bytes) in files {
        let sha = sha256_hex(bytes);
        std::fs::write(repo.join("blobs").join(&sha), bytes).expect("blob");
        let link = repo.join("snapshots").join(commit).join(path);
        std::fs::create_dir_all(link.parent().expect("dir")).expect("mkdir");
        let up = "../".repeat(path.split('/').count() + 1);
        std::os::unix::fs::symlink(format!("{up}blobs/{sha}"), &link).expect("symlink");
    }
}

#[test]
fn hub_cache_written_by_huggingface_hub_is_reused_online_and_offline() {
    let a = parquet_bytes(40, "a");
    let b = parquet_bytes(30, "b");
    let mut hub = Hub::default();
    hub.add(V2, "data/Python/a.parquet", a.clone());
    hub.add(V2, "data/Python/b.parquet", b.clone());
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("hub");
    hf_hub_layout(
        &cache,
        V2_DIR,
        C1,
        &[("data/Python/a.parquet", &a), ("data/Python/b.parquet", &b)],
    );
    // Online: listed, and nothing downloaded.
    let env = Env::fixed([
        ("HOME", tmp.path().to_str().expect("utf8")),
        ("HF_HUB_CACHE", cache.to_str().expect("utf8")),
        ("HF_ENDPOINT", server.base.as_str()),
    ]);
    let client = HubClient::with_http(HubConfig::from_env(&env, None).expect("cfg"), fast_http())
        .expect("client");
    let shards = HubShards::resolve(&format!("hf://{V2}"), Some("python"), "main", &client)
        .expect("resolve");
    for f in &shards.files {
        client.download(f).expect("from the cache");
    }
    assert_eq!(server.count(|r| r.path().contains("/resolve/")), 0);
    assert_eq!(client.stats().snapshot().cache_hits, 2);

    // Offline: nothing is sent at all, the refs and snapshot are the listing.
    let before = server.requests().len();
    let env = Env::fixed([
        ("HOME", tmp.path().to_str().expect("utf8")),
        ("HF_HUB_CACHE", cache.to_str().expect("utf8")),
        ("HF_ENDPOINT", server.base.as_str()),
        ("HF_HUB_OFFLINE", "1"),
    ]);
    let offline = HubClient::with_http(HubConfig::from_env(&env, None).expect("cfg"), fast_http())
        .expect("client");
    let shards = HubShards::resolve(&format!("hf://{V2}"), Some("python"), "main", &offline)
        .expect("offline resolve");
    assert_eq!(shards.commit, C1);
    assert_eq!(shards.files.len(), 2);
    assert_eq!(
        shards.files[0].sha256.as_deref(),
        Some(sha256_hex(&a).as_str())
    );
    let p = offline
        .download(&shards.files[0])
        .expect("offline download");
    assert_eq!(std::fs::read(p).expect("read"), a);
    assert_eq!(server.requests().len(), before, "offline sends nothing");
}

/// The other direction, checked by the real `huggingface_hub` where a
/// Python with it is available (`TRITTER_PYTHON`, which CI sets up with
/// `datasets`): what we download, `hf_hub_download(local_files_only=True)`
/// finds in the cache.
#[test]
fn hub_cache_we_write_is_read_by_huggingface_hub() {
    let python = std::env::var("TRITTER_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_hub = std::process::Command::new(&python)
        .args(["-c", "import huggingface_hub"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_hub {
        eprintln!(
            "SKIP: {python} cannot import huggingface_hub; set TRITTER_PYTHON to a Python with it \
             (CI does) to check our cache with the real client"
        );
        return;
    }
    let a = parquet_bytes(40, "a");
    let mut hub = Hub::default();
    hub.add(V2, "data/Python/a.parquet", a.clone());
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");
    let client = hub_client(&server, tmp.path(), None);
    let files = client.list_dataset_files(V2, "main", "data").expect("list");
    let ours = client.download(&files[0]).expect("download");
    let script = format!(
        "from huggingface_hub import hf_hub_download\n\
         print(hf_hub_download({V2:?}, 'data/Python/a.parquet', repo_type='dataset', \
         revision='main', cache_dir={:?}, local_files_only=True))",
        tmp.path().to_str().expect("utf8")
    );
    let out = std::process::Command::new(&python)
        .args(["-c", &script])
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_ENDPOINT")
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "huggingface_hub could not read our cache: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(Path::new(&theirs), ours);
    assert_eq!(std::fs::read(&theirs).expect("read"), a);
}

#[test]
fn hub_checksum_mismatch_is_detected_and_nothing_enters_the_cache() {
    let bytes = parquet_bytes(50, "x");
    let mut hub = Hub::default();
    hub.add(V2, "data/Python/x.parquet", bytes);
    hub.listed_sha.insert(
        "data/Python/x.parquet".into(),
        sha256_hex(b"something else"),
    );
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");
    let client = hub_client(&server, tmp.path(), None);
    let files = client
        .list_dataset_files(V2, "main", "data/Python")
        .expect("list");
    // The listing and the Hub's X-Linked-Etag disagree: refused before any byte.
    let msg = format!("{:#}", client.download(&files[0]).expect_err("mismatch"));
    eprintln!("etag mismatch: {msg}");
    assert!(msg.contains("etag") && msg.contains("x.parquet"), "{msg}");
    let dest = client.cache_path(&files[0]).expect("path");
    assert!(!dest.exists(), "a bad file must not enter the cache");
}

#[test]
fn hub_checksum_mismatch_of_the_bytes_deletes_the_part() {
    // A mirror whose redirect carries no etag: only the sha256 of the bytes
    // can tell.
    let bytes = parquet_bytes(50, "x");
    let wrong = sha256_hex(b"something else");
    let mut hub = Hub::default();
    hub.add(V2, "data/Python/x.parquet", bytes.clone());
    hub.listed_sha
        .insert("data/Python/x.parquet".into(), wrong.clone());
    let server = Server::start(move |r, s| {
        let mut reply = hub.handle(r, s);
        if let Reply::Full { headers, .. } = &mut reply {
            headers.retain(|(k, _)| k != "X-Linked-Etag");
        }
        reply
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let client = hub_client(&server, tmp.path(), None);
    let files = client
        .list_dataset_files(V2, "main", "data/Python")
        .expect("list");
    let msg = format!("{:#}", client.download(&files[0]).expect_err("mismatch"));
    assert!(
        msg.contains("checksum mismatch") && msg.contains("x.parquet"),
        "{msg}"
    );
    let blobs = tmp.path().join(V2_DIR).join("blobs");
    assert!(
        !blobs.join(&wrong).exists(),
        "a bad file must not enter the cache"
    );
    assert!(
        !blobs.join(format!("{wrong}.incomplete")).exists(),
        "the bad part is deleted"
    );
    assert_eq!(
        client
            .stats()
            .snapshot()
            .failures
            .get("hub_checksum_mismatch"),
        Some(&1)
    );
}

#[test]
fn prefetcher_downloads_within_its_window_and_stops_when_dropped() {
    let mut hub = Hub::default();
    for i in 0..5 {
        hub.add(
            V2,
            &format!("data/Python/s{i}.parquet"),
            parquet_bytes(10, &format!("s{i}")),
        );
    }
    let server = Server::start(move |r, s| hub.handle(r, s));
    let tmp = tempfile::tempdir().expect("tmp");
    let client = Arc::new(hub_client(&server, tmp.path(), None));
    let shards = HubShards::resolve(&format!("hf://{V2}"), Some("Python"), "main", &client)
        .expect("resolve");
    assert_eq!(shards.files.len(), 5);
    {
        let pre = Prefetcher::new(client.clone(), shards.files.clone(), 1, 3);
        pre.get(0).expect("first shard");
        // --max-samples reached after shard 0: drop the prefetcher.
    }
    let fetched: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.path())
        .filter(|p| p.starts_with("/datasets/"))
        .collect();
    for i in 2..5 {
        assert!(
            !fetched
                .iter()
                .any(|p| p.ends_with(&format!("/s{i}.parquet"))),
            "shard {i} is beyond the window and must not be downloaded: {fetched:?}"
        );
    }
    assert!(fetched.iter().any(|p| p.ends_with("/s0.parquet")));
}

// ---------------------------------------------------------------- content stores

const OK: &str = "aa00000000000000000000000000000000000001";
const MISSING: &str = "bb00000000000000000000000000000000000002";
const FLAKY: &str = "cc00000000000000000000000000000000000003";
const SLOW_ONCE: &str = "dd00000000000000000000000000000000000004";
const SLOW_ALWAYS: &str = "ee00000000000000000000000000000000000005";
const TRUNCATED: &str = "ff00000000000000000000000000000000000006";
const FORBIDDEN: &str = "ab00000000000000000000000000000000000007";
const CUT: &str = "ac00000000000000000000000000000000000008";

fn text_of(id: &str) -> Vec<u8> {
    format!("def f_{id}():\n    return '{id}'\n")
        .repeat(50)
        .into_bytes()
}

/// An S3-like server: path-style `/{bucket}/content/{id}`, gzip bodies.
fn s3_server(bucket: &'static str) -> Server {
    Server::start(move |r, seen| {
        let path = r.path();
        let Some(id) = path.strip_prefix(&format!("/{bucket}/content/")) else {
            return status(404, "<Error><Code>NoSuchBucket</Code></Error>", vec![]);
        };
        let gz = gzip(&text_of(id));
        match id {
            OK => ok(gz),
            MISSING => status(404, "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>", vec![]),
            FORBIDDEN => status(403, "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>", vec![]),
            FLAKY if seen == 0 => status(500, "<Error><Code>InternalError</Code></Error>", vec![]),
            FLAKY => ok(gz),
            SLOW_ONCE if seen == 0 => Reply::Delay(Duration::from_millis(2000), Box::new(ok(gz))),
            SLOW_ONCE => ok(gz),
            SLOW_ALWAYS => Reply::Delay(Duration::from_millis(2000), Box::new(ok(gz))),
            TRUNCATED => ok(gz[..gz.len() / 2].to_vec()),
            CUT if seen == 0 => Reply::Cut { status: 200, headers: vec![], send: gz.len() / 3, body: gz },
            CUT => ok(gz),
            _ => status(404, "<Error><Code>NoSuchKey</Code></Error>", vec![]),
        }
    })
}

/// An environment with no AWS credentials anywhere and the instance
/// metadata service off, so that no test ever reaches 169.254.169.254.
fn no_aws(home: &Path) -> Vec<(String, String)> {
    vec![
        ("HOME".into(), home.display().to_string()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
    ]
}

fn s3_flags(server: &Server) -> RemoteConfig {
    RemoteConfig {
        s3_endpoint: Some(server.base.clone()),
        s3_anonymous: true,
        // Long enough for a loaded 2-core machine to answer a fast blob, short
        // enough that the slow blob's three attempts stay near 3 s.
        request_timeout: Duration::from_millis(500),
        max_retries: 2,
        fetch_concurrency: 16,
        env: Env::fixed(no_aws(Path::new("/nonexistent"))),
        ..RemoteConfig::default()
    }
}

#[test]
fn s3_store_fetches_in_parallel_retries_and_counts_failures_by_reason() {
    let server = s3_server("softwareheritage");
    let flags = s3_flags(&server);
    let opened = open_content("s3://softwareheritage/content", &flags).expect("open");
    assert!(opened.store.describe().contains("unsigned"));
    let ids = [
        OK,
        MISSING,
        FLAKY,
        SLOW_ONCE,
        SLOW_ALWAYS,
        TRUNCATED,
        FORBIDDEN,
        CUT,
        "../../etc/passwd",
    ];
    let t = Instant::now();
    let got = opened.store.fetch_batch(&ids);
    let took = t.elapsed();
    assert_eq!(got.len(), ids.len());
    let reason = |i: usize| got[i].as_ref().err().map(|e| e.reason);
    assert_eq!(got[0].as_deref().ok(), Some(&text_of(OK)[..]));
    assert_eq!(reason(1), Some("content_blob_missing"));
    assert_eq!(
        got[2].as_deref().ok(),
        Some(&text_of(FLAKY)[..]),
        "500 then 200 is retried"
    );
    assert_eq!(
        got[3].as_deref().ok(),
        Some(&text_of(SLOW_ONCE)[..]),
        "a timeout is retried"
    );
    assert_eq!(reason(4), Some("content_fetch_failed"));
    let detail = &got[4].as_ref().expect_err("slow").detail;
    assert!(
        detail.contains("gave up after 2 retries") && detail.contains("timed out"),
        "{detail}"
    );
    assert_eq!(reason(5), Some("content_gzip_corrupt"));
    assert_eq!(reason(6), Some("content_blob_forbidden"));
    assert_eq!(
        got[7].as_deref().ok(),
        Some(&text_of(CUT)[..]),
        "a body cut short is retried"
    );
    assert_eq!(reason(8), Some("content_blob_id_invalid"));

    let n = |id: &str| server.count(|r| r.path().ends_with(id));
    assert_eq!(n(MISSING), 1, "404 is not retried");
    assert_eq!(n(FORBIDDEN), 1, "403 is not retried");
    assert_eq!(
        n(TRUNCATED),
        1,
        "a corrupt gzip is data, not a transfer error"
    );
    assert_eq!(n(FLAKY), 2);
    assert_eq!(n(SLOW_ALWAYS), 3, "first attempt + 2 retries");
    assert!(server
        .requests()
        .iter()
        .all(|r| r.header("authorization").is_none()));
    // All blobs were in flight together: the batch took about one slow blob
    // (3 timeouts + backoff), not the sum of all of them.
    assert!(took < Duration::from_secs(8), "batch took {took:?}");

    let snap = opened.stats.snapshot();
    eprintln!("s3 stats: {snap}");
    assert_eq!(snap.completed, 4);
    assert_eq!(snap.failures.get("content_blob_missing"), Some(&1));
    assert_eq!(snap.failures.get("content_blob_forbidden"), Some(&1));
    assert_eq!(snap.failures.get("content_fetch_failed"), Some(&1));
    assert_eq!(snap.failures.get("content_gzip_corrupt"), Some(&1));
    assert_eq!(snap.failures.get("content_blob_id_invalid"), Some(&1));
    assert!(snap.retries >= 5, "{snap}");
    assert!(snap.bytes_downloaded > 0 && snap.requests >= 13, "{snap}");
    assert!(snap.to_string().contains("content_blob_missing=1"));
}

#[test]
fn https_prefix_store_and_blob_cache_avoid_a_second_download() {
    let server = Server::start(|r, _| {
        let path = r.path();
        match path.strip_prefix("/mirror/content/") {
            Some(OK) => ok(gzip(&text_of(OK))),
            _ => status(404, "not here", vec![]),
        }
    });
    let tmp = tempfile::tempdir().expect("tmp");
    let flags = RemoteConfig {
        blob_cache: Some(tmp.path().join("blobs")),
        request_timeout: Duration::from_millis(500),
        max_retries: 1,
        ..RemoteConfig::default()
    };
    let spec = format!("{}/mirror/content/", server.base);
    let opened = open_content(&spec, &flags).expect("open");
    for round in 0..2 {
        let got = opened.store.fetch_batch(&[OK, MISSING]);
        assert_eq!(
            got[0].as_deref().ok(),
            Some(&text_of(OK)[..]),
            "round {round}"
        );
        assert_eq!(
            got[1].as_ref().err().map(|e| e.reason),
            Some("content_blob_missing")
        );
    }
    assert_eq!(
        server.count(|r| r.path().ends_with(OK)),
        1,
        "the second round came from the blob cache"
    );
    assert_eq!(
        server.count(|r| r.path().ends_with(MISSING)),
        2,
        "missing blobs are not cached"
    );
    assert!(tmp.path().join("blobs/aa").join(OK).is_file());
    assert_eq!(opened.stats.snapshot().cache_hits, 1);
}

#[test]
fn content_store_specs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let flags = RemoteConfig::default();
    let local = open_content_store(tmp.path().to_str().expect("utf8"), &flags).expect("local dir");
    assert!(local.describe().starts_with("local"));
    let msg = format!(
        "{:#}",
        open_content_store("ftp://x/y", &flags)
            .err()
            .expect("bad scheme")
    );
    assert!(msg.contains("unknown scheme"), "{msg}");
    assert!(open_content_store(
        "s3://Bad_Bucket/x",
        &RemoteConfig {
            s3_anonymous: true,
            ..RemoteConfig::default()
        }
    )
    .is_err());
    assert!(
        open_content_store(tmp.path().join("missing").to_str().expect("utf8"), &flags).is_err()
    );
}

// ---------------------------------------------------------------- S3 credentials

fn with_env(server: &Server, pairs: Vec<(String, String)>) -> RemoteConfig {
    RemoteConfig {
        s3_anonymous: false,
        env: Env::fixed(pairs),
        ..s3_flags(server)
    }
}

fn last_auth(server: &Server) -> Option<String> {
    server
        .requests()
        .iter()
        .rev()
        .find(|r| r.path().contains("/content/"))
        .and_then(|r| r.header("authorization").map(str::to_string))
}

#[test]
fn s3_is_unsigned_without_credentials_signed_with_them_and_says_which() {
    let server = s3_server("bucket");
    let tmp = tempfile::tempdir().expect("tmp");
    let spec = "s3://bucket/content";

    // Nothing configured: unsigned requests, and the store says so.
    let store = open_content_store(spec, &with_env(&server, no_aws(tmp.path()))).expect("open");
    let d = store.describe();
    assert!(
        d.contains("unsigned requests: no AWS credentials found"),
        "{d}"
    );
    assert!(
        d.contains("profile default") && d.contains("instance metadata"),
        "{d}"
    );
    assert!(store.fetch_batch(&[OK])[0].is_ok());
    assert_eq!(last_auth(&server), None);

    // Environment credentials: SigV4.
    let mut env = no_aws(tmp.path());
    env.extend([
        ("AWS_ACCESS_KEY_ID".into(), "AKIDENVTEST".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "secretenv".into()),
        ("AWS_SESSION_TOKEN".into(), "sessiontok".into()),
    ]);
    let store = open_content_store(spec, &with_env(&server, env.clone())).expect("signed");
    assert!(store
        .describe()
        .contains("signed requests, AWS credentials from the environment"));
    assert!(store.fetch_batch(&[OK])[0].is_ok());
    let auth = last_auth(&server).expect("signed request has Authorization");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDENVTEST/")
            && auth.contains("/us-east-1/s3/aws4_request")
            && auth.contains("Signature="),
        "{auth}"
    );
    let req = server.requests().last().cloned().expect("req");
    assert_eq!(req.header("x-amz-content-sha256"), Some("UNSIGNED-PAYLOAD"));
    assert_eq!(req.header("x-amz-security-token"), Some("sessiontok"));
    assert!(req.header("x-amz-date").is_some());

    // --s3-anonymous wins over credentials.
    let anon = open_content_store(
        spec,
        &RemoteConfig {
            s3_anonymous: true,
            ..with_env(&server, env)
        },
    )
    .expect("anon");
    assert!(anon.describe().contains("--s3-anonymous"));
    assert!(anon.fetch_batch(&[OK])[0].is_ok());
    assert_eq!(
        last_auth(&server),
        None,
        "--s3-anonymous sends no Authorization"
    );

    // A profile of the shared credentials file.
    let aws = tmp.path().join(".aws");
    std::fs::create_dir_all(&aws).expect("mkdir");
    std::fs::write(
        aws.join("credentials"),
        "[work]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = sp\n",
    )
    .expect("write");
    let mut env = no_aws(tmp.path());
    env.push(("AWS_PROFILE".into(), "work".into()));
    let store = open_content_store(spec, &with_env(&server, env)).expect("profile store");
    assert!(
        store.describe().contains("profile work"),
        "{}",
        store.describe()
    );
    assert!(store.fetch_batch(&[OK])[0].is_ok());
    let auth = last_auth(&server).expect("signed");
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDPROFILE/"),
        "{auth}"
    );
}

fn rfc3339_in(secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    aws_smithy_types::DateTime::from_secs(now + secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .expect("fmt")
}

fn creds_json(key: &str, expires_in: i64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": key,
        "SecretAccessKey": "s", "Token": format!("tok-{key}"),
        "Expiration": rfc3339_in(expires_in),
    }))
    .expect("json")
}

/// EC2's instance metadata service, IMDSv2: a session token from `PUT
/// /latest/api/token` (with a TTL header), required on every GET.
fn imds_server() -> Server {
    Server::start(|r, _| {
        let token_ok = r.header("x-aws-ec2-metadata-token") == Some("imds-session");
        match (r.method.as_str(), r.path().as_str()) {
            ("PUT", "/latest/api/token") => {
                match r.header("x-aws-ec2-metadata-token-ttl-seconds") {
                    Some(_) => ok(b"imds-session".to_vec()),
                    None => status(400, "", vec![]),
                }
            }
            (_, _) if !token_ok => status(401, "", vec![]),
            ("GET", "/latest/meta-data/iam/security-credentials/") => ok(b"data-role".to_vec()),
            ("GET", "/latest/meta-data/iam/security-credentials/data-role") => {
                ok(creds_json("AKIDIMDS", 6 * 3600))
            }
            _ => status(404, "", vec![]),
        }
    })
}

#[test]
fn s3_credentials_from_instance_metadata_v2_container_and_web_identity() {
    let server = s3_server("bucket");
    let tmp = tempfile::tempdir().expect("tmp");
    let spec = "s3://bucket/content";
    let base = |extra: &[(&str, &str)]| {
        let mut env = vec![("HOME".to_string(), tmp.path().display().to_string())];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };

    // IMDSv2.
    let imds = imds_server();
    let store = open_content_store(
        spec,
        &with_env(
            &server,
            base(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.base)]),
        ),
    )
    .expect("imds");
    assert!(
        store
            .describe()
            .contains("instance metadata (role data-role"),
        "{}",
        store.describe()
    );
    assert!(store.fetch_batch(&[OK])[0].is_ok());
    assert!(last_auth(&server)
        .expect("signed")
        .contains("Credential=AKIDIMDS/"));
    let req = server.requests().last().cloned().expect("req");
    assert_eq!(req.header("x-amz-security-token"), Some("tok-AKIDIMDS"));
    assert_eq!(imds.count(|r| r.method == "PUT"), 1, "one session token");

    // ECS/EKS container credentials with an authorization token; they
    // expire within the refresh margin, so each signature fetches anew.
    let container = Server::start(|r, _| match r.header("authorization") {
        Some("ecs-secret") => ok(creds_json("AKIDECS", 60)),
        _ => status(403, "", vec![]),
    });
    let uri = format!("{}/v2/credentials/abc", container.base);
    let store = open_content_store(
        spec,
        &with_env(
            &server,
            base(&[
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &uri),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-secret"),
            ]),
        ),
    )
    .expect("container");
    assert!(
        store.describe().contains("container credentials"),
        "{}",
        store.describe()
    );
    assert!(store.fetch_batch(&[OK])[0].is_ok());
    assert!(last_auth(&server)
        .expect("signed")
        .contains("Credential=AKIDECS/"));
    assert!(store.fetch_batch(&[OK])[0].is_ok());
    assert!(
        container.count(|_| true) >= 3,
        "expiring credentials are refreshed"
    );

    // Web identity: STS AssumeRoleWithWebIdentity at AWS_ENDPOINT_URL_STS.
    let sts = Server::start(|r, _| {
        if r.query("Action").as_deref() != Some("AssumeRoleWithWebIdentity")
            || r.query("WebIdentityToken").as_deref() != Some("oidc-jwt")
        {
            return status(
                400,
                "<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>",
                vec![],
            );
        }
        let body = format!(
            "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>\
             <AccessKeyId>AKIDSTS</AccessKeyId><SecretAccessKey>s</SecretAccessKey>\
             <SessionToken>tok-sts</SessionToken><Expiration>{}</Expiration></Credentials>\
             </AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
            rfc3339_in(3600)
        );
        ok(body.into_bytes())
    });
    let jwt = tmp.path().join("token");
    std::fs::write(&jwt, "oidc-jwt\n").expect("jwt");
    let store = open_content_store(
        spec,
        &with_env(
            &server,
            base(&[
                ("AWS_WEB_IDENTITY_TOKEN_FILE", jwt.to_str().expect("utf8")),
                ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/reader"),
                ("AWS_ENDPOINT_URL_STS", &sts.base),
                ("AWS_EC2_METADATA_DISABLED", "true"),
            ]),
        ),
    )
    .expect("web identity");
    assert!(store
        .describe()
        .contains("web identity (role arn:aws:iam::123456789012:role/reader"));
    assert!(store.fetch_batch(&[OK])[0].is_ok());
    assert!(last_auth(&server)
        .expect("signed")
        .contains("Credential=AKIDSTS/"));
    assert_eq!(sts.requests()[0].method, "POST");
}

/// An S3 bucket that refuses every request the way misconfigured setups
/// do; the circuit breaker must stop the run, naming the code.
#[test]
fn s3_circuit_breaker_stops_on_access_denied_expired_token_skewed_clock_and_wrong_region() {
    let server = Server::start(|r, _| {
        let path = r.path();
        let bucket = path.split('/').nth(1).unwrap_or("");
        let xml = |code: &str, msg: &str| {
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{msg}</Message><RequestId>R</RequestId></Error>")
        };
        match bucket {
            "denied" => status(403, &xml("AccessDenied", "Access Denied"), vec![]),
            "expired" => status(400, &xml("ExpiredToken", "The provided token has expired."), vec![]),
            "skewed" => status(
                403,
                &xml("RequestTimeTooSkewed", "The difference between the request time and the current time is too large."),
                vec![],
            ),
            "elsewhere" => status(
                301,
                &xml("PermanentRedirect", "The bucket you are attempting to access must be addressed using the specified endpoint."),
                vec![("x-amz-bucket-region".into(), "eu-west-1".into())],
            ),
            _ => ok(gzip(b"fine")),
        }
    });
    let ids: Vec<String> = (0..60).map(|i| format!("{i:040x}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    for (bucket, code, hint) in [
        ("denied", "AccessDenied", "s3:GetObject"),
        ("expired", "ExpiredToken", "renew"),
        ("skewed", "RequestTimeTooSkewed", "clock"),
        ("elsewhere", "PermanentRedirect", "region"),
    ] {
        let opened =
            open_content(&format!("s3://{bucket}/content"), &s3_flags(&server)).expect("open");
        assert!(opened.store.health().is_ok());
        let got = opened.store.fetch_batch(&refs);
        let err = opened.store.health().expect_err("tripped");
        let msg = format!("{err:#}");
        eprintln!("{bucket}: {msg}");
        assert!(
            msg.contains("the first 50 blob fetches all failed"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("{code} x")) && msg.contains(hint),
            "{msg}"
        );
        assert!(tritter_gpu::remote::is_fatal(&err));
        assert!(got.iter().all(|r| r.is_err()));
        // Answers, not accidents: never retried, and a 301 not followed.
        let n = server.count(|r| r.path().starts_with(&format!("/{bucket}/")));
        assert!(n <= 60, "{bucket}: {n} requests");
        if bucket == "elsewhere" {
            let detail = &got[0].as_ref().expect_err("301").detail;
            assert!(detail.contains("eu-west-1"), "{detail}");
        }
    }
    // A healthy bucket with a few missing blobs does not trip.
    let opened = open_content("s3://fine/content", &s3_flags(&server)).expect("open");
    assert!(opened.store.fetch_batch(&refs).iter().all(|r| r.is_ok()));
    assert!(opened.store.health().is_ok());
}

#[test]
fn prefetched_blobs_are_requested_once_and_claimed_by_later_batches() {
    let server = s3_server("softwareheritage");
    let opened = open_content("s3://softwareheritage/content", &s3_flags(&server)).expect("open");
    // The reader prefetches two batches ahead; a blob that appears in both
    // (an exact duplicate) is requested once and delivered twice.
    opened.store.prefetch(&[OK, FLAKY]);
    opened.store.prefetch(&[OK, MISSING]);
    let first = opened.store.fetch_batch(&[OK, FLAKY]);
    let second = opened.store.fetch_batch(&[OK, MISSING]);
    assert_eq!(first[0].as_deref().ok(), Some(&text_of(OK)[..]));
    assert_eq!(first[1].as_deref().ok(), Some(&text_of(FLAKY)[..]));
    assert_eq!(second[0].as_deref().ok(), Some(&text_of(OK)[..]));
    assert_eq!(
        second[1].as_ref().err().map(|e| e.reason),
        Some("content_blob_missing")
    );
    assert_eq!(server.count(|r| r.path().ends_with(OK)), 1);
    // Claimed entries are gone: asking again sends a new request.
    assert!(opened.store.fetch_batch(&[OK])[0].is_ok());
    assert_eq!(server.count(|r| r.path().ends_with(OK)), 2);
}

// ------------------------------------------- curate: fetch across shards

/// A small, distinct Python file that passes every default filter.
fn module(i: usize) -> String {
    let mut s = format!("\"\"\"Module {i}: request handlers.\"\"\"\nimport json\n\n");
    for f in 0..12 {
        s.push_str(&format!(
            "def handler_{i}_{f}(event, context):\n    body = json.loads(event['body'])\n    return {{'status': 200, 'id': {}, 'body': body}}\n\n",
            i * 31 + f
        ));
    }
    s
}

/// `shards` Stack v2 shards of `per_shard` files under `dir/in`, blobs in
/// `dir/in/content`; file 0 of shard 0 is copied (another repository, same
/// blob) as the first file of the last shard. Returns each shard's blob ids.
fn v2_shards(dir: &Path, shards: usize, per_shard: usize) -> Vec<Vec<String>> {
    use tritter_gpu::sources::writer::{write_shard, SourceFile, WriteOptions};
    let mut ids = Vec::new();
    for s in 0..shards {
        let mut files: Vec<SourceFile> = (0..per_shard)
            .map(|k| {
                let i = s * per_shard + k;
                let mut f = SourceFile::new(
                    &format!("pkg/mod_{i}.py"),
                    &format!("owner{}/repo{i}", i % 7),
                    "Python",
                    &module(i),
                );
                f.licenses = vec!["mit".into()];
                f.stars = Some(100 + i as u64);
                f
            })
            .collect();
        if s + 1 == shards && s > 0 {
            let mut copy = SourceFile::new("copy/mod_0.py", "mirror/copy", "Python", &module(0));
            copy.licenses = vec!["mit".into()];
            copy.stars = Some(1);
            files[0] = copy;
        }
        ids.push(files.iter().map(|f| f.blob_id()).collect());
        write_shard(
            &dir.join(format!("in/shard-{s}.parquet")),
            tritter_gpu::sources::SchemaKind::StackV2,
            &files,
            WriteOptions {
                content_store: Some(dir.join("in/content")),
                ..Default::default()
            },
        )
        .expect("write shard");
    }
    ids
}

/// `curate` in process over `dir/in` into `dir/{out}`, contents from `store`.
fn curate_v2(dir: &Path, out: &str, store: &str, tune: impl FnOnce(&mut CurateCfg)) -> Vec<u8> {
    let mut cfg = CurateCfg {
        sources: vec![dir.join("in").display().to_string()],
        filters: tritter_gpu::filters::FilterConfig::default(),
        output_dir: dir.join(out),
        work_dir: None,
        max_samples: None,
        dry_run: false,
        content_store: Some(store.to_string()),
        remote: RemoteConfig {
            fetch_concurrency: 8,
            request_timeout: Duration::from_secs(10),
            max_retries: 1,
            env: Env::fixed(no_aws(Path::new("/nonexistent"))),
            ..RemoteConfig::default()
        },
        rejects: None,
        shard: tritter_gpu::pipeline::shard_spec::ShardSpec::ALL,
        keep_going: false,
        quiet: true,
        fresh: true,
        batch_size: 16,
        near: None,
        decontam: None,
        backend: tritter_gpu::backends::BackendKind::Cpu,
        partitions: 1,
        output_shards: None,
        plan_only: false,
        report_html: tritter_gpu::report::PageTarget::Off,
        repos: None,
        redact: tritter_gpu::redact::RedactMode::Off,
        tokens: None,
        format: Default::default(),
    };
    tune(&mut cfg);
    let code = tritter_gpu::pipeline::run_curate(&cfg).expect("curate");
    assert_eq!(code, if cfg.keep_going { 1 } else { 0 });
    std::fs::read(dir.join(out).join("python_curated.jsonl")).expect("output")
}

type CurateCfg = tritter_gpu::pipeline::CurateConfig;

/// Serves `/content/{id}` from `dir`, one request per connection, after
/// `hold(id)` returns.
fn blob_server(dir: std::path::PathBuf, hold: impl Fn(&str) + Send + Sync + 'static) -> Server {
    Server::start(move |r, _| {
        let path = r.path();
        let Some(id) = path.strip_prefix("/content/") else {
            return status(404, "", vec![]);
        };
        hold(id);
        match std::fs::read(dir.join(id)) {
            Ok(gz) => ok(gz),
            Err(_) => status(404, "", vec![]),
        }
    })
}

#[test]
fn content_requests_stay_in_flight_across_shard_boundaries_and_output_is_unchanged() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    // 3 batches of 16 per shard (16, 16, 8).
    let ids = v2_shards(dir, 3, 40);
    // The server holds the blobs of shard 0's last batch until a blob of
    // shard 1 has been asked for. A worker that drains at the shard boundary
    // (asks for shard 1 only once shard 0 is committed) cannot get them
    // before the hold gives up, 3 s later, and the test sees it.
    let last_batch: std::collections::HashSet<String> = ids[0][32..].iter().cloned().collect();
    let next_shard: std::collections::HashSet<String> = ids[1].iter().cloned().collect();
    let next_asked = Arc::new(AtomicBool::new(false));
    let drained = Arc::new(AtomicBool::new(false));
    let (asked, gave_up) = (next_asked.clone(), drained.clone());
    let server = blob_server(dir.join("in/content"), move |id| {
        if next_shard.contains(id) {
            asked.store(true, Ordering::SeqCst);
        }
        if last_batch.contains(id) {
            let deadline = Instant::now() + Duration::from_secs(3);
            while !asked.load(Ordering::SeqCst) {
                if Instant::now() > deadline {
                    gave_up.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    // 16 in flight: the 8 held requests leave 8 free for shard 1.
    let remote = curate_v2(dir, "out_http", &format!("{}/content", server.base), |c| {
        c.remote.fetch_concurrency = 16
    });
    assert!(
        !drained.load(Ordering::SeqCst),
        "shard 1's blobs were not requested while shard 0's last batch was in flight"
    );
    let local = curate_v2(
        dir,
        "out_local",
        &dir.join("in/content").display().to_string(),
        |_| {},
    );
    assert_eq!(
        remote, local,
        "output differs between the HTTP and the local store"
    );
    assert_eq!(
        read_lines(&remote),
        120 - 1,
        "the copy of file 0 is an exact duplicate"
    );
    // Every blob requested exactly once: each prefetch was claimed by the
    // batch that needed it, the blob shared by shards 0 and 2 included.
    let mut per_path: BTreeMap<String, usize> = BTreeMap::new();
    for r in server.requests() {
        *per_path.entry(r.path()).or_default() += 1;
    }
    assert_eq!(per_path.len(), 119);
    assert!(per_path.values().all(|&n| n == 1), "{per_path:?}");
}

fn read_lines(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

#[test]
fn read_ahead_across_shards_keeps_output_with_a_broken_shard_and_max_samples() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let ids = v2_shards(dir, 4, 40);
    // Shard 1 is not Parquet: --keep-going skips it, the read-ahead moves on.
    std::fs::write(dir.join("in/shard-1.parquet"), b"not a parquet file").expect("write");
    let server = blob_server(dir.join("in/content"), |_| {
        std::thread::sleep(Duration::from_millis(5))
    });
    let http = format!("{}/content", server.base);
    let local = dir.join("in/content").display().to_string();
    let keep_going = |c: &mut CurateCfg| c.keep_going = true;
    let a = curate_v2(dir, "kg_http", &http, keep_going);
    let b = curate_v2(dir, "kg_local", &local, keep_going);
    assert_eq!(a, b);
    assert_eq!(read_lines(&a), 3 * 40 - 1);
    // Nothing of the broken shard was asked for (its blobs exist).
    let asked: Vec<String> = server.requests().iter().map(Req::path).collect();
    assert!(ids[1]
        .iter()
        .all(|id| !asked.contains(&format!("/content/{id}"))));

    // --max-samples stops inside shard 2 (the second readable one): the
    // read-ahead, already in shard 3, is abandoned and the output is the
    // local store's.
    std::fs::remove_file(dir.join("in/shard-1.parquet")).expect("rm");
    let cap = |c: &mut CurateCfg| c.max_samples = Some(50);
    let a = curate_v2(dir, "cap_http", &http, cap);
    let b = curate_v2(dir, "cap_local", &local, cap);
    assert_eq!(a, b);
    assert_eq!(read_lines(&a), 50);
}
