//! The content stores' async fetch path against a keep-alive HTTP/1.1
//! server on 127.0.0.1 that the tests start: how many requests are in
//! flight at once, retries on 500, 503 and S3's `SlowDown`, a body that
//! stalls, a server that closes its keep-alive connections without saying
//! so, and a store dropped while its requests are in flight. The server
//! counts what it sees (connections, requests per blob, requests open at
//! once); every test is bounded in time.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tritter_gpu::remote::{open_content, Env, RemoteConfig};

/// What the server does with one request for a blob.
#[derive(Clone, Copy, Debug)]
enum Act {
    /// The gzip blob after this delay, keep-alive.
    Ok(Duration),
    /// This status with an S3-like XML error body naming `code`.
    Status(u16, &'static str),
    /// The head and a third of the body, then nothing for 10 s.
    Stall,
    /// The blob, then the connection closed without `Connection: close`.
    OkThenClose,
    /// Wait up to 10 s for the client to close the connection.
    Hold,
}

type Plan = dyn Fn(&str, usize) -> Act + Send + Sync;

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    open_now: AtomicUsize,
    open_max: AtomicUsize,
    /// Requests held (`Act::Hold`) whose client went away.
    abandoned: AtomicUsize,
    attempts: Mutex<HashMap<String, usize>>,
}

struct BlobServer {
    base: String,
    counters: Arc<Counters>,
}

impl BlobServer {
    /// `plan(id, attempt)` decides each answer (attempt 0 is the first).
    fn start(plan: impl Fn(&str, usize) -> Act + Send + Sync + 'static) -> BlobServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let counters = Arc::new(Counters::default());
        let plan: Arc<Plan> = Arc::new(plan);
        let c = Arc::clone(&counters);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                c.connections.fetch_add(1, Ordering::SeqCst);
                let (c, plan) = (Arc::clone(&c), Arc::clone(&plan));
                std::thread::spawn(move || connection(conn, &c, &*plan));
            }
        });
        BlobServer { base, counters }
    }

    fn attempts(&self, id: &str) -> usize {
        let a = self.counters.attempts.lock().expect("attempts");
        a.get(id).copied().unwrap_or(0)
    }
}

fn connection(mut conn: TcpStream, c: &Counters, plan: &Plan) {
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
                break;
            }
        }
        let id = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_string();
        let attempt = {
            let mut a = c.attempts.lock().expect("attempts");
            let n = a.entry(id.clone()).or_insert(0);
            *n += 1;
            *n - 1
        };
        let now = c.open_now.fetch_add(1, Ordering::SeqCst) + 1;
        c.open_max.fetch_max(now, Ordering::SeqCst);
        let act = plan(&id, attempt);
        let gz = gzip(&text_of(&id));
        let keep = match act {
            Act::Ok(d) => {
                std::thread::sleep(d);
                write_reply(&mut conn, 200, &[], &gz, gz.len())
            }
            Act::Status(code, name) => {
                let body =
                    format!("<Error><Code>{name}</Code><Message>try later</Message></Error>");
                let extra: &[&str] = if code == 503 {
                    &["Retry-After: 0"]
                } else {
                    &[]
                };
                write_reply(&mut conn, code, extra, body.as_bytes(), body.len())
            }
            Act::Stall => {
                write_reply(&mut conn, 200, &[], &gz[..gz.len() / 3], gz.len());
                std::thread::sleep(Duration::from_secs(10));
                false
            }
            Act::OkThenClose => {
                write_reply(&mut conn, 200, &[], &gz, gz.len());
                false
            }
            Act::Hold => {
                // A read returns 0 (or fails) as soon as the client closes.
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let t = Instant::now();
                let mut b = [0u8; 1];
                let gone = matches!(conn.read(&mut b), Ok(0) | Err(_));
                if gone && t.elapsed() < Duration::from_secs(9) {
                    c.abandoned.fetch_add(1, Ordering::SeqCst);
                }
                false
            }
        };
        c.open_now.fetch_sub(1, Ordering::SeqCst);
        if !keep {
            let _ = conn.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

/// Writes a response head and `body` (declared `len` long); whether the
/// connection may serve another request.
fn write_reply(conn: &mut TcpStream, status: u16, extra: &[&str], body: &[u8], len: usize) -> bool {
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {len}\r\n");
    for h in extra {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    conn.write_all(&out).is_ok() && conn.flush().is_ok()
}

fn text_of(id: &str) -> Vec<u8> {
    format!("def f_{id}():\n    return '{id}'\n")
        .repeat(40)
        .into_bytes()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).expect("gzip");
    e.finish().expect("gzip")
}

fn id(i: usize) -> String {
    format!("{i:040x}")
}

fn config(concurrency: usize, timeout_ms: u64) -> RemoteConfig {
    RemoteConfig {
        fetch_concurrency: concurrency,
        request_timeout: Duration::from_millis(timeout_ms),
        max_retries: 3,
        env: Env::fixed([("AWS_EC2_METADATA_DISABLED", "true")]),
        ..RemoteConfig::default()
    }
}

#[test]
fn requests_in_flight_reach_but_never_exceed_the_concurrency_over_kept_alive_connections() {
    let server = BlobServer::start(|_, _| Act::Ok(Duration::from_millis(40)));
    let concurrency = 24;
    let opened = open_content(
        &format!("{}/content", server.base),
        &config(concurrency, 5000),
    )
    .expect("open");
    let ids: Vec<String> = (0..480).map(id).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    // Two callers at once share one bound.
    let (a, b) = refs.split_at(240);
    let store = &opened.store;
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| store.fetch_batch(a));
        let hb = s.spawn(|| store.fetch_batch(b));
        (ha.join().expect("a"), hb.join().expect("b"))
    });
    // DETERMINISM: each answer is the blob asked for, in the order asked.
    for (i, r) in ra.iter().chain(rb.iter()).enumerate() {
        assert_eq!(r.as_deref().ok(), Some(&text_of(&id(i))[..]), "blob {i}");
    }
    let max = server.counters.open_max.load(Ordering::SeqCst);
    let conns = server.counters.connections.load(Ordering::SeqCst);
    eprintln!("in flight at most {max}, {conns} connections for 480 requests");
    assert!(
        max <= concurrency,
        "{max} requests in flight > {concurrency}"
    );
    assert!(
        max >= concurrency / 2,
        "only {max} in flight of {concurrency}"
    );
    // Keep-alive: connections are reused, not one per request.
    assert!(conns <= 2 * concurrency, "{conns} connections");
    let snap = opened.stats.snapshot();
    assert_eq!(snap.completed, 480);
    assert_eq!(snap.requests, 480);
    assert_eq!(snap.retries, 0);
}

#[test]
fn server_errors_and_slow_down_are_retried_and_client_errors_are_not() {
    let (e500, e503, slow, bad) = (id(1), id(2), id(3), id(4));
    let (k500, k503, kslow, kbad) = (e500.clone(), e503.clone(), slow.clone(), bad.clone());
    let server = BlobServer::start(move |i, n| match i {
        _ if i == k500 && n == 0 => Act::Status(500, "InternalError"),
        _ if i == k503 && n < 2 => Act::Status(503, "ServiceUnavailable"),
        _ if i == kslow => Act::Status(503, "SlowDown"),
        _ if i == kbad => Act::Status(400, "InvalidRequest"),
        _ => Act::Ok(Duration::ZERO),
    });
    let opened = open_content(&format!("{}/content", server.base), &config(8, 5000)).expect("open");
    let ids = [id(0), e500.clone(), e503.clone(), slow.clone(), bad.clone()];
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let got = opened.store.fetch_batch(&refs);
    for i in 0..3 {
        assert_eq!(got[i].as_deref().ok(), Some(&text_of(&ids[i])[..]), "{i}");
    }
    let err = got[3].as_ref().expect_err("slow down every time");
    assert_eq!(err.reason, "content_fetch_failed");
    assert!(
        err.detail.contains("gave up after 3 retries")
            && err.detail.contains("HTTP 503")
            && err.detail.contains("SlowDown")
            && err.detail.contains(&slow),
        "{}",
        err.detail
    );
    let err = got[4].as_ref().expect_err("400");
    assert_eq!(err.reason, "content_fetch_failed");
    assert!(err.detail.starts_with("HTTP 400"), "{}", err.detail);
    assert_eq!(server.attempts(&e500), 2);
    assert_eq!(server.attempts(&e503), 3);
    assert_eq!(server.attempts(&slow), 4, "first attempt + 3 retries");
    assert_eq!(server.attempts(&bad), 1, "a 400 is not retried");
    let snap = opened.stats.snapshot();
    assert_eq!(snap.retries, 1 + 2 + 3);
    assert_eq!(snap.failures.get("content_fetch_failed"), Some(&2));
}

#[test]
fn a_stalled_body_times_out_and_is_retried() {
    let (once, always) = (id(10), id(11));
    let (ko, ka) = (once.clone(), always.clone());
    let server = BlobServer::start(move |i, n| match i {
        _ if i == ko && n == 0 => Act::Stall,
        _ if i == ka => Act::Stall,
        _ => Act::Ok(Duration::ZERO),
    });
    let mut cfg = config(8, 400);
    cfg.max_retries = 1;
    let opened = open_content(&format!("{}/content", server.base), &cfg).expect("open");
    let t = Instant::now();
    let got = opened.store.fetch_batch(&[&once, &always]);
    let took = t.elapsed();
    assert_eq!(got[0].as_deref().ok(), Some(&text_of(&once)[..]));
    let err = got[1].as_ref().expect_err("stalls every time");
    assert_eq!(err.reason, "content_fetch_failed");
    assert!(
        err.detail.contains("timed out") && err.detail.contains("stalled"),
        "{}",
        err.detail
    );
    assert_eq!(server.attempts(&always), 2);
    // Two stalls of 0.4 s and one backoff, not the server's 10 s.
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[test]
fn a_server_that_closes_kept_alive_connections_is_survived() {
    let server = BlobServer::start(|_, _| Act::OkThenClose);
    let opened = open_content(&format!("{}/content", server.base), &config(8, 5000)).expect("open");
    let ids: Vec<String> = (100..300).map(id).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let got = opened.store.fetch_batch(&refs);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.as_deref().ok(), Some(&text_of(&ids[i])[..]), "blob {i}");
    }
    let snap = opened.stats.snapshot();
    eprintln!("closing server: {snap}");
    assert_eq!(snap.completed, 200);
    assert!(server.counters.connections.load(Ordering::SeqCst) >= 200);
}

#[test]
fn dropping_the_store_cancels_its_requests_and_leaves_no_cache_files() {
    let server = BlobServer::start(|_, _| Act::Hold);
    let tmp = tempfile::tempdir().expect("tmp");
    let cache = tmp.path().join("blobs");
    let mut cfg = config(16, 20_000);
    cfg.blob_cache = Some(cache.clone());
    let opened = open_content(&format!("{}/content", server.base), &cfg).expect("open");
    let ids: Vec<String> = (0..64).map(id).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    opened.store.prefetch(&refs);
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.counters.open_now.load(Ordering::SeqCst) < 16 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.counters.open_now.load(Ordering::SeqCst), 16);
    let t = Instant::now();
    drop(opened);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        t.elapsed()
    );
    // Every held request sees its connection closed, at once.
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.counters.abandoned.load(Ordering::SeqCst) < 16 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.counters.abandoned.load(Ordering::SeqCst), 16);
    // No request beyond the bound was ever sent, and nothing was cached.
    assert_eq!(server.counters.open_max.load(Ordering::SeqCst), 16);
    assert_eq!(files_under(&cache), 0);
}

fn files_under(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.path().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// A `CONNECT` proxy: tunnels each connection to the host it names and
/// records the targets.
fn connect_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
                        break;
                    }
                }
                let mut parts = line.split_whitespace();
                let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                log.lock().expect("log").push(format!("{method} {target}"));
                let Ok(up) = TcpStream::connect(target) else {
                    return;
                };
                let mut down = conn;
                let _ = down.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let (mut up_r, mut down_w) = (
                    up.try_clone().expect("clone"),
                    down.try_clone().expect("clone"),
                );
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_r, &mut down_w);
                    let _ = down_w.shutdown(std::net::Shutdown::Both);
                });
                // What the client sent after the CONNECT head is still in
                // the reader's buffer: forward it first.
                let mut up_w = up;
                let _ = up_w.write_all(reader.buffer());
                let mut rest = reader.into_inner();
                let _ = std::io::copy(&mut rest, &mut up_w);
                let _ = up_w.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    (base, seen)
}

#[test]
fn blobs_go_through_the_proxy_the_environment_names() {
    let server = BlobServer::start(|_, _| Act::Ok(Duration::ZERO));
    let (proxy, log) = connect_proxy();
    let mut cfg = config(4, 5000);
    cfg.env = Env::fixed([
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HTTP_PROXY", proxy.as_str()),
    ]);
    let opened = open_content(&format!("{}/content", server.base), &cfg).expect("open");
    let ids: Vec<String> = (0..20).map(id).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let got = opened.store.fetch_batch(&refs);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.as_deref().ok(), Some(&text_of(&ids[i])[..]), "blob {i}");
    }
    let seen = log.lock().expect("seen").clone();
    let target = server.base.trim_start_matches("http://");
    assert!(!seen.is_empty(), "the proxy saw nothing");
    assert!(
        seen.iter().all(|s| s == &format!("CONNECT {target}")),
        "{seen:?}"
    );
    // NO_PROXY names the store: straight to it.
    let before = seen.len();
    cfg.env = Env::fixed([
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HTTP_PROXY", proxy.as_str()),
        ("NO_PROXY", "127.0.0.1"),
    ]);
    let opened = open_content(&format!("{}/content", server.base), &cfg).expect("open");
    assert!(opened.store.fetch_batch(&refs).iter().all(|r| r.is_ok()));
    assert_eq!(log.lock().expect("seen").len(), before);
}

#[test]
fn ctrl_c_during_blob_fetch_exits_130_closes_every_request_and_leaves_no_files() {
    use tritter_gpu::sources::writer::{write_shard, SourceFile, WriteOptions};
    let server = BlobServer::start(|_, _| Act::Hold);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("in")).expect("in");
    let files: Vec<SourceFile> = (0..64)
        .map(|i| {
            let mut f = SourceFile::new(
                &format!("pkg/m{i}.py"),
                &format!("o/r{i}"),
                "Python",
                &format!("def f{i}():\n    return {i}\n"),
            );
            f.licenses = vec!["mit".into()];
            f
        })
        .collect();
    write_shard(
        &dir.join("in/s.parquet"),
        tritter_gpu::sources::SchemaKind::StackV2,
        &files,
        WriteOptions {
            content_store: Some(dir.join("blobs-src")),
            ..Default::default()
        },
    )
    .expect("shard");
    let cache = dir.join("cache");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tritter-gpu"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TRITTER_") || k.starts_with("AWS_") || k.ends_with("_PROXY") {
            cmd.env_remove(k);
        }
    }
    cmd.args([
        "-q",
        "--backend",
        "cpu",
        "--threads",
        "2",
        "curate",
        "--source",
    ])
    .arg(dir.join("in"))
    .arg("--content-store")
    .arg(format!("{}/content", server.base))
    .arg("--blob-cache")
    .arg(&cache)
    .args(["--fetch-concurrency", "16", "--min-stars", "0"])
    .args(["--decontaminate", "off", "--report-html", "off", "--output"])
    .arg(dir.join("out"))
    .arg("--work-dir")
    .arg(dir.join("work"))
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.counters.open_now.load(Ordering::SeqCst) < 16 {
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("curate ended ({status}) before its requests were in flight");
        }
        assert!(
            Instant::now() < deadline,
            "requests never reached 16 in flight"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill sends a signal to our own child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no exit 5 s after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let deadline = Instant::now() + Duration::from_secs(3);
    while server.counters.abandoned.load(Ordering::SeqCst) < 16 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.counters.abandoned.load(Ordering::SeqCst), 16);
    assert_eq!(server.counters.open_max.load(Ordering::SeqCst), 16);
    assert_eq!(files_under(&cache), 0, "the blob cache");
    assert_eq!(files_under(&dir.join("out")), 0, "the output directory");
    let tmp_left: Vec<_> = walk(&dir.join("work"))
        .into_iter()
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n.ends_with(".tmp") || n.starts_with(".tmp"))
        })
        .collect();
    assert!(tmp_left.is_empty(), "{tmp_left:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}
