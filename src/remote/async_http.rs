//! The asynchronous HTTP/1.1 client of the content stores: blob GETs on a
//! small tokio runtime, many keep-alive connections, the same timeouts,
//! error classes, retries and counters as the blocking [`HttpClient`].
//!
//! Why a second client: a blob fetch is a few KiB after 20-60 ms of
//! first-byte latency, so throughput is `requests in flight / latency`, and
//! a blocking client needs a thread per request in flight. Up to 256 that is
//! cheap; from 512 up the threads (and their wake-ups on two cores) cost
//! more than the extra requests bring. PERF: `cargo bench --bench
//! remote_fetch`, 40 ms latency, load 2.3-7.7: the blocking client 10,418
//! blobs/s at 512 and 10,150 at 1,024, this one 19,752 at 1,024
//! (`benches/results/remote.md`). Here a request in flight is
//! a future of a few hundred bytes and a socket; two runtime threads drive
//! all of them. The Hub's shard downloads (large bodies, two at a time) stay
//! on [`HttpClient`] (`ureq`), where a thread per transfer costs nothing.
//!
//! Transport: `hyper` 1.x through `hyper-util`'s pooled client (HTTP/1.1
//! only, S3 speaks HTTP/1.1; idle connections kept per host up to the
//! concurrency), TLS by `hyper-rustls` over the same rustls and Mozilla
//! roots (`webpki-roots`) as `ureq`. Everything above the transport is
//! shared with [`HttpClient`]: [`HttpError`] and its retry classes,
//! [`Retrier`] (`backon`'s exponential backoff with jitter, `Retry-After`),
//! the error-body summary ([`status_error`]) and the [`TransferStats`].
//!
//! Timeouts, as `HttpSettings::request_timeout` defines them: connecting
//! (the connector's own timeout), waiting for the response head, and every
//! wait for the next piece of a body (stall detection: a body that trickles
//! keeps going, one that stops for `request_timeout` fails as
//! [`HttpError::Timeout`] and is retried).
//!
//! Proxies: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` (and their lower-case
//! spellings) and `NO_PROXY`, read from the run's [`Env`] as `ureq` reads
//! them for the Hub; a proxied connection is an HTTP `CONNECT` tunnel
//! (`hyper-util`'s [`Tunnel`], `Proxy-Authorization: Basic` from the proxy
//! URL's user and password), with TLS to the store inside it.
//!
//! Redirects (HTTPS prefix stores only; S3 turns them off because its 301
//! carries the region in a header, not a `Location`): up to 10 hops; the
//! caller's headers travel only to the same host, as `ureq`'s
//! `RedirectAuthHeaders::SameHost` does.
//!
//! [`HttpClient`]: super::http::HttpClient

use super::env::Env;
use super::http::{status_error, HttpError, HttpSettings, Retrier};
use super::transfer_stats::TransferStats;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::http::{HeaderMap, HeaderValue, Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::error::Error as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tower_service::Service;

/// Redirect hops followed before we give up (as the blocking client).
const MAX_REDIRECTS: usize = 10;
/// Most bytes of an error body read for its message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// An async HTTP client shared by every request of one content store.
/// Its futures must run on a tokio runtime with I/O and time enabled.
#[derive(Clone)]
pub struct AsyncHttpClient {
    client: Client<HttpsConnector<ProxyConnector>, Empty<Bytes>>,
    settings: HttpSettings,
    stats: Arc<TransferStats>,
    user_agent: HeaderValue,
}

impl AsyncHttpClient {
    /// A client whose proxies come from `env`.
    pub fn new(settings: HttpSettings, stats: Arc<TransferStats>, env: &Env) -> AsyncHttpClient {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(settings.request_timeout));
        // Small requests and answers: Nagle's delay would add to latency.
        http.set_nodelay(true);
        // The TLS layer above handles https:// itself.
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(ProxyConnector {
                direct: http,
                proxies: Arc::new(proxy_matcher(env)),
            });
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(settings.max_connections.max(1))
            .build(https);
        let user_agent =
            HeaderValue::from_str(&format!("tritter-gpu/{}", env!("CARGO_PKG_VERSION")))
                .expect("the user agent is ASCII");
        AsyncHttpClient {
            client,
            settings,
            stats,
            user_agent,
        }
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    pub fn stats(&self) -> &Arc<TransferStats> {
        &self.stats
    }

    /// One GET whose whole body is read into memory (no retry); success is
    /// a 2xx status after redirects, anything else [`HttpError::Status`]
    /// with the start of the body as its message.
    pub async fn get_once(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<(HeaderMap, Vec<u8>), HttpError> {
        let mut target = url.to_string();
        let origin = authority(url);
        let mut hops = 0;
        loop {
            // The caller's headers (a signature) go to its host only.
            let same_host = authority(&target) == origin;
            let resp = self
                .send(&target, if same_host { headers } else { &[] })
                .await?;
            let status = resp.status();
            if status.is_redirection() && self.settings.follow_redirects {
                if let Some(next) = resp
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .map(|loc| join_location(&target, loc))
                {
                    hops += 1;
                    if hops > MAX_REDIRECTS {
                        return Err(HttpError::Fatal {
                            url: url.to_string(),
                            detail: format!("more than {MAX_REDIRECTS} redirects"),
                        });
                    }
                    target = next;
                    continue;
                }
            }
            let (parts, body) = resp.into_parts();
            if status.is_success() {
                let bytes = self.read_body(&target, body, usize::MAX).await?;
                self.stats.add_bytes(bytes.len() as u64);
                return Ok((parts.headers, bytes));
            }
            // The error body is short (JSON or XML); a failure to read it
            // only loses detail, never the status.
            let text = self
                .read_body(&target, body, ERROR_BODY_LIMIT)
                .await
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            return Err(status_error(
                &target,
                status.as_u16(),
                &parts.headers,
                &text,
            ));
        }
    }

    /// Sends one request and waits for its response head.
    async fn send(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Response<Incoming>, HttpError> {
        let fatal = |detail: String| HttpError::Fatal {
            url: url.to_string(),
            detail,
        };
        let uri: Uri = url.parse().map_err(|e| fatal(format!("bad URL: {e}")))?;
        let mut req = Request::get(uri);
        if let Some(h) = req.headers_mut() {
            h.insert("user-agent", self.user_agent.clone());
        }
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Empty::new())
            .map_err(|e| fatal(format!("bad request header: {e}")))?;
        self.stats.add_request();
        match tokio::time::timeout(self.settings.request_timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(classify(url, &e)),
            Err(_) => Err(HttpError::Timeout {
                url: url.to_string(),
                detail: format!(
                    "no response within {:?} (connect and response head)",
                    self.settings.request_timeout
                ),
            }),
        }
    }

    /// Reads a body to its end (at most `limit` bytes), failing when no
    /// new bytes arrive for the request timeout.
    async fn read_body(
        &self,
        url: &str,
        mut body: Incoming,
        limit: usize,
    ) -> Result<Vec<u8>, HttpError> {
        let hint = hyper::body::Body::size_hint(&body).lower() as usize;
        let mut out = Vec::with_capacity(hint.min(limit).min(64 << 20));
        while out.len() < limit {
            let frame =
                match tokio::time::timeout(self.settings.request_timeout, body.frame()).await {
                    Err(_) => {
                        return Err(HttpError::Timeout {
                            url: url.to_string(),
                            detail: format!(
                                "the body stalled for {:?} after {} bytes",
                                self.settings.request_timeout,
                                out.len()
                            ),
                        })
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return Err(classify_hyper(url, &e)),
                    Ok(Some(Ok(f))) => f,
                };
            if let Ok(data) = frame.into_data() {
                let room = limit - out.len();
                out.extend_from_slice(&data[..data.len().min(room)]);
            }
        }
        Ok(out)
    }

    /// GET with retries (a fresh `headers()` per attempt: a new signature),
    /// whole body in memory. Every retry is counted in the stats.
    pub async fn get_with_retry(
        &self,
        url: &str,
        headers: impl Fn() -> Result<Vec<(String, String)>, String>,
    ) -> Result<(HeaderMap, Vec<u8>), HttpError> {
        let mut retrier = Retrier::new(&self.settings);
        loop {
            let attempt = match headers() {
                Ok(h) => self.get_once(url, &h).await,
                Err(detail) => Err(HttpError::Fatal {
                    url: url.to_string(),
                    detail,
                }),
            };
            match attempt {
                Ok(v) => return Ok(v),
                Err(e) => match retrier.next_delay(&e, false) {
                    Some(d) => {
                        self.stats.add_retry();
                        tokio::time::sleep(d).await;
                    }
                    None => return Err(e),
                },
            }
        }
    }
}

/// The proxy rules of `env`, as `ureq` (and curl) read them.
fn proxy_matcher(env: &Env) -> Matcher {
    let var = |name: &str| {
        env.get(name)
            .or_else(|| env.get(&name.to_ascii_lowercase()))
            .filter(|v| !v.trim().is_empty())
    };
    let mut b = Matcher::builder();
    if let Some(v) = var("ALL_PROXY") {
        b = b.all(v);
    }
    if let Some(v) = var("HTTP_PROXY") {
        b = b.http(v);
    }
    if let Some(v) = var("HTTPS_PROXY") {
        b = b.https(v);
    }
    if let Some(v) = var("NO_PROXY") {
        b = b.no(v);
    }
    b.build()
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Connecting =
    Pin<Box<dyn Future<Output = Result<TokioIo<tokio::net::TcpStream>, BoxError>> + Send>>;

/// TCP to the store, or a `CONNECT` tunnel through the proxy that the
/// rules name for it; TLS (when `https://`) is layered above by
/// `hyper-rustls`.
#[derive(Clone)]
pub struct ProxyConnector {
    direct: HttpConnector,
    proxies: Arc<Matcher>,
}

impl Service<Uri> for ProxyConnector {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.direct.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Connecting {
        match self.proxies.intercept(&dst) {
            Some(proxy) => {
                let mut tunnel = Tunnel::new(proxy.uri().clone(), self.direct.clone());
                if let Some(auth) = proxy.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                Box::pin(async move { tunnel.call(dst).await.map_err(Into::into) })
            }
            None => {
                let fut = self.direct.call(dst);
                Box::pin(async move { fut.await.map_err(Into::into) })
            }
        }
    }
}

/// `scheme://authority` of a URL, for the same-host rule.
fn authority(url: &str) -> Option<String> {
    let uri: Uri = url.parse().ok()?;
    Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
}

/// A `Location` resolved against the URL that answered with it.
fn join_location(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let scheme = base.split_once("://").map_or("https", |(s, _)| s);
    if let Some(rest) = loc.strip_prefix("//") {
        return format!("{scheme}://{rest}");
    }
    let origin = authority(base).unwrap_or_default();
    if loc.starts_with('/') {
        return format!("{origin}{loc}");
    }
    // Relative to the directory of the base path.
    let path = base
        .strip_prefix(&origin)
        .unwrap_or("/")
        .split(['?', '#'])
        .next()
        .unwrap_or("/");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    format!("{origin}{}{loc}", if dir.is_empty() { "/" } else { dir })
}

/// Maps a client error to our classes: connect timeouts are timeouts, TLS
/// and URL errors are fatal, everything else on the wire (refused, reset,
/// closed, a body cut short) is a transport error and retried.
fn classify(url: &str, e: &hyper_util::client::legacy::Error) -> HttpError {
    let detail = chain(e);
    let url = url.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return HttpError::Timeout { url, detail };
            }
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return HttpError::Fatal { url, detail };
            }
        }
        if s.downcast_ref::<rustls::Error>().is_some() {
            return HttpError::Fatal { url, detail };
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            return classify_hyper(&url, h);
        }
        src = s.source();
    }
    // hyper-util's connect timeout says so only in its text.
    if e.is_connect() && detail.contains("timed out") {
        return HttpError::Timeout { url, detail };
    }
    HttpError::Transport { url, detail }
}

fn classify_hyper(url: &str, e: &hyper::Error) -> HttpError {
    let detail = chain(e);
    let url = url.to_string();
    if e.is_timeout() {
        HttpError::Timeout { url, detail }
    } else {
        HttpError::Transport { url, detail }
    }
}

/// An error and its sources as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_answering_url() {
        let base = "http://127.0.0.1:9/swh/content/ab?x=1";
        assert_eq!(join_location(base, "https://cdn/x"), "https://cdn/x");
        assert_eq!(join_location(base, "//cdn/x"), "http://cdn/x");
        assert_eq!(join_location(base, "/y/z"), "http://127.0.0.1:9/y/z");
        assert_eq!(
            join_location(base, "cd"),
            "http://127.0.0.1:9/swh/content/cd"
        );
        assert_eq!(
            authority("https://h:8443/a").as_deref(),
            Some("https://h:8443")
        );
    }
}
