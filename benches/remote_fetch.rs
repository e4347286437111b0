//! Remote readers against a local keep-alive HTTP server on 127.0.0.1:
//! - `curate_fetch`: the whole phase 1 of `curate` (read Stack v2 shards,
//!   metadata filters, blob fetch, content filters, part files) with the
//!   contents behind an `http://` content store that answers each request
//!   after an injected first-byte latency of 40 ms, as S3 does (20-60 ms),
//!   at 64, 256, 512 and 1,024 requests in flight; and the same with no latency,
//!   the ceiling of this client, store and machine measured in the same run.
//!   The target is at least 80% of min(in flight / latency, ceiling);
//! - `hub_download`: one 32 MiB shard downloaded into the cache and verified
//!   (sha256), i.e. the download path's throughput over loopback.
//!
//! The server is a tokio task per keep-alive connection (two threads) that
//! sleeps the latency and writes a blob from memory; the no-latency runs
//! measure client and server together on the same cores.
//!
//! Run: `cargo bench --bench remote_fetch`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tritter_gpu::filters::FilterConfig;
use tritter_gpu::pipeline::{run_curate, shard_spec::ShardSpec, CurateConfig};
use tritter_gpu::remote::http::HttpSettings;
use tritter_gpu::remote::{Env, HubClient, HubConfig, HubFile, RemoteConfig};
use tritter_gpu::sources::writer::{write_shard, SourceFile, WriteOptions};
use tritter_gpu::sources::SchemaKind;

/// Serves `GET {prefix}/{name}` from `blobs` (or `body` for any name when
/// `blobs` is empty), after `latency`, on keep-alive connections.
///
/// One tokio task per connection on a runtime of two threads: at 1,024
/// connections a thread per connection (what this bench used before) spent
/// its time switching between 1,024 server threads on two cores and became
/// part of what was measured.
fn serve(blobs: Arc<HashMap<String, Vec<u8>>>, body: Arc<Vec<u8>>, latency: Duration) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-server")
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((conn, _)) = listener.accept().await {
                let (blobs, body) = (blobs.clone(), body.clone());
                tokio::spawn(async move { connection(conn, &blobs, &body, latency).await });
            }
        });
    });
    format!("http://{addr}")
}

async fn connection(
    conn: tokio::net::TcpStream,
    blobs: &HashMap<String, Vec<u8>>,
    body: &[u8],
    latency: Duration,
) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let _ = conn.set_nodelay(true);
    let (read, mut out) = conn.into_split();
    let mut reader = tokio::io::BufReader::new(read);
    let (mut line, mut h, mut reply) = (String::new(), String::new(), Vec::new());
    loop {
        line.clear();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        loop {
            h.clear();
            if reader.read_line(&mut h).await.unwrap_or(0) == 0 || h.trim_end().is_empty() {
                break;
            }
        }
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("");
        let name = target.rsplit('/').next().unwrap_or("");
        let bytes = if blobs.is_empty() {
            Some(body)
        } else {
            blobs.get(name).map(Vec::as_slice)
        };
        // Head and body in one write: one segment per small blob.
        reply.clear();
        match bytes {
            Some(b) => {
                reply.extend_from_slice(
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes(),
                );
                reply.extend_from_slice(b);
            }
            None => reply.extend_from_slice(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
        }
        if out.write_all(&reply).await.is_err() {
            return;
        }
    }
}

/// A small, distinct Python file that passes every filter.
fn code(i: usize) -> String {
    let mut s = format!("\"\"\"Module {i}: request handlers.\"\"\"\nimport json\n\n");
    for f in 0..12 {
        s.push_str(&format!(
            "def handler_{i}_{f}(event, context):\n    body = json.loads(event['body'])\n    return {{'status': 200, 'id': {}, 'body': body}}\n\n",
            i * 31 + f
        ));
    }
    s
}

/// `shards` Stack v2 shards of `per_shard` files each under `dir`, their
/// blobs in memory by id.
fn corpus(dir: &Path, shards: usize, per_shard: usize) -> HashMap<String, Vec<u8>> {
    let store = dir.join("content");
    std::fs::create_dir_all(dir.join("in")).expect("input dir");
    for s in 0..shards {
        let files: Vec<SourceFile> = (0..per_shard)
            .map(|k| {
                let i = s * per_shard + k;
                let mut f = SourceFile::new(
                    &format!("pkg/mod_{i}.py"),
                    &format!("owner{}/repo{}", i % 97, i),
                    "Python",
                    &code(i),
                );
                f.licenses = vec!["mit".into()];
                f.stars = Some(1000);
                f
            })
            .collect();
        write_shard(
            &dir.join(format!("in/shard-{s:03}.parquet")),
            SchemaKind::StackV2,
            &files,
            WriteOptions {
                content_store: Some(store.clone()),
                ..Default::default()
            },
        )
        .expect("write shard");
    }
    std::fs::read_dir(&store)
        .expect("store")
        .map(|e| {
            let e = e.expect("entry");
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("blob"),
            )
        })
        .collect()
}

/// Phase 1 (and the cheap exact-dedup phase 2) of `curate` over `dir/in`,
/// contents from `store`, `concurrency` requests in flight, nothing written.
fn curate(dir: &Path, store: &str, concurrency: usize) -> Duration {
    let cfg = CurateConfig {
        sources: vec![dir.join("in").display().to_string()],
        filters: FilterConfig::default(),
        output_dir: dir.join("out"),
        work_dir: None,
        max_samples: None,
        dry_run: true,
        content_store: Some(store.to_string()),
        remote: RemoteConfig {
            fetch_concurrency: concurrency,
            env: Env::fixed([("AWS_EC2_METADATA_DISABLED", "true")]),
            ..RemoteConfig::default()
        },
        rejects: None,
        shard: ShardSpec::ALL,
        keep_going: false,
        quiet: true,
        fresh: true,
        batch_size: 1024,
        near: None,
        decontam: None,
        backend: tritter_gpu::backends::BackendKind::Cpu,
        partitions: 1,
        output_shards: None,
        format: Default::default(),
        plan_only: false,
        report_html: tritter_gpu::report::PageTarget::Off,
        repos: None,
        redact: tritter_gpu::redact::RedactMode::Off,
        tokens: None,
    };
    let t = Instant::now();
    assert_eq!(run_curate(&cfg).expect("curate"), 0);
    t.elapsed()
}

fn curate_fetch(c: &mut Criterion) {
    let latency = Duration::from_millis(40);
    let tmp = tempfile::tempdir().expect("tmp");
    // 8 shards, so that shard boundaries are part of what is measured, and
    // at least 64 round trips per run: 20,480 blobs at 64 and 256 in flight,
    // 65,536 at 512 and 1,024. With 20,480 blobs, 1,024 in flight is only 20
    // round trips, so the start (40 ms before the first answer), the tail of
    // the last requests and the run's fixed costs weigh as much as the
    // steady state this bench is about.
    let shards = 8;
    let (short, long) = (tmp.path().join("short"), tmp.path().join("long"));
    let mut blobs = corpus(&short, shards, 2_560);
    blobs.extend(corpus(&long, shards, 8_192));
    let blobs = Arc::new(blobs);
    let slow = serve(blobs.clone(), Arc::default(), latency);
    let fast = serve(blobs, Arc::default(), Duration::ZERO);
    let mut g = c.benchmark_group("curate_fetch");
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(20));
    for (conc, dir, per_shard) in [
        (64usize, &short, 2_560),
        (256, &short, 2_560),
        (512, &long, 8_192),
        (1024, &long, 8_192),
    ] {
        g.throughput(Throughput::Elements((shards * per_shard) as u64));
        for (name, base) in [("latency_40ms", &slow), ("no_latency", &fast)] {
            let store = format!("{base}/content");
            g.bench_function(format!("{name}/in_flight_{conc}"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| curate(dir, &store, conc)).sum())
            });
        }
    }
    g.finish();
}

fn hub_download(c: &mut Criterion) {
    use sha2::Digest;
    let size = 32 << 20;
    let bytes: Vec<u8> = (0..size as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let sha = hex::encode(sha2::Sha256::digest(&bytes));
    let base = serve(Arc::default(), Arc::new(bytes), Duration::ZERO);
    let tmp = tempfile::tempdir().expect("tmp");
    let client = HubClient::with_http(
        HubConfig::new(&base, None, tmp.path()),
        HttpSettings::default(),
    )
    .expect("client");
    let file = HubFile {
        repo: "bench/data".into(),
        path: "data/Python/shard.parquet".into(),
        size: size as u64,
        sha256: Some(sha.clone()),
        etag: sha.clone(),
        revision: "0123456789abcdef0123456789abcdef01234567".into(),
    };
    let blob = tmp.path().join("datasets--bench--data/blobs").join(&sha);
    let mut g = c.benchmark_group("hub_download");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function("32MiB_verified", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&blob);
            },
            |_| client.download(&file).expect("download"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, curate_fetch, hub_download);
criterion_main!(benches);
