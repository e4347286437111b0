//! The one HTTP client of the remote readers: timeouts, error classification
//! and retries with exponential backoff.
//!
//! We use [`ureq`] (blocking, rustls, no async runtime) for the Hub and
//! everything but blob fetch: a few large transfers at a time, where a
//! thread per transfer costs nothing and the code stays straight-line. One
//! [`ureq::Agent`] per client keeps a connection pool sized to the
//! configured concurrency. Blob fetch, up to 1,024 small requests in
//! flight, has its own async client (`async_http.rs`) that shares the
//! error classes, the retry policy and the error messages defined here.
//!
//! Retry policy (the same for the Hub and for content stores):
//! - retried: 5xx, 408, 429, timeouts, connection resets/refusals, a body cut
//!   off before its `Content-Length`; the delay grows exponentially with
//!   jitter (`backon`'s [`ExponentialBuilder`]), or follows the server's
//!   wait: `Retry-After` (seconds), or for a 429 the Hub's `RateLimit`
//!   header (`"api";r=0;t=55`: none left, the window resets in 55 s, read
//!   as `huggingface_hub`'s `parse_ratelimit_headers` reads it), capped at
//!   [`MAX_SERVER_WAIT`];
//! - never retried: 401, 403, 404 and every other 4xx (asking again cannot
//!   change the answer), TLS and URL errors.
//!
//! A resumable download counts its failures *without progress*: an attempt
//! that added bytes to the partial file resets the retry budget, so a long
//! shard over a flaky link converges instead of failing after N cuts.

use super::transfer_stats::TransferStats;
use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::config::RedirectAuthHeaders;
use ureq::http;

/// Timeouts and retry settings of one [`HttpClient`].
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Limit on connecting, on waiting for response headers, and on any stall
    /// between two reads of a body (not on a whole large download).
    pub request_timeout: Duration,
    /// Retries after the first attempt (0: one attempt only).
    pub max_retries: u32,
    /// First backoff delay; each retry doubles it, plus jitter.
    pub backoff_initial: Duration,
    /// Cap of one backoff delay (and of an honoured `Retry-After`).
    pub backoff_max: Duration,
    /// Connections kept open for reuse (set to the request concurrency).
    pub max_connections: usize,
    /// Follow redirects (the Hub's CDN hops). S3 clients turn it off: S3's
    /// `301 PermanentRedirect` carries no `Location`, only an error body
    /// and `x-amz-bucket-region`, which must reach the caller.
    pub follow_redirects: bool,
}

/// The longest wait a server's `Retry-After`/`RateLimit` may impose (the
/// Hub's rate-limit windows are 5 minutes).
pub const MAX_SERVER_WAIT: Duration = Duration::from_secs(300);

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            request_timeout: Duration::from_secs(30),
            max_retries: 5,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(20),
            max_connections: 64,
            follow_redirects: true,
        }
    }
}

/// Why a request failed, classified for the retry policy and for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The server answered with a non-success status.
    Status {
        status: u16,
        url: String,
        /// Start of the response body (error text of the Hub or S3).
        message: String,
        /// The Hub's `X-Error-Code` header (`GatedRepo`, `RepoNotFound`, ...),
        /// else S3's `<Code>` (`AccessDenied`, `ExpiredToken`, ...).
        error_code: Option<String>,
        /// The Hub's `X-Error-Message` header (`Invalid credentials in
        /// Authorization header` for a refused token).
        error_message: Option<String>,
        retry_after: Option<Duration>,
    },
    /// No answer, or a stalled body, within the request timeout.
    Timeout { url: String, detail: String },
    /// Connection refused/reset, body cut short, protocol error.
    Transport { url: String, detail: String },
    /// Bad URL, TLS failure, too many redirects: retrying cannot help.
    Fatal { url: String, detail: String },
    /// The caller asked us to stop (a prefetcher was dropped).
    Cancelled,
}

impl HttpError {
    /// Whether asking again may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            HttpError::Status { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            HttpError::Timeout { .. } | HttpError::Transport { .. } => true,
            HttpError::Fatal { .. } | HttpError::Cancelled => false,
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short name of the failure for counting and hints: S3's or the
    /// Hub's error code, else `HTTP 503`, `timeout`, `connection error`.
    pub fn code(&self) -> String {
        match self {
            HttpError::Status {
                error_code: Some(c),
                ..
            } => c.clone(),
            HttpError::Status { status, .. } => format!("HTTP {status}"),
            HttpError::Timeout { .. } => "timeout".into(),
            HttpError::Transport { .. } => "connection error".into(),
            HttpError::Fatal { .. } => "request error".into(),
            HttpError::Cancelled => "cancelled".into(),
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Status {
                status,
                url,
                message,
                ..
            } => {
                write!(f, "HTTP {status} from {url}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            HttpError::Timeout { url, detail } => write!(f, "timed out on {url}: {detail}"),
            HttpError::Transport { url, detail } => {
                write!(f, "connection error on {url}: {detail}")
            }
            HttpError::Fatal { url, detail } => write!(f, "request to {url} failed: {detail}"),
            HttpError::Cancelled => write!(f, "cancelled"),
        }
    }
}

impl std::error::Error for HttpError {}

/// The retry budget of one operation: yields the delay before the next
/// attempt, or `None` when we must give up.
pub struct Retrier {
    builder: ExponentialBuilder,
    backoff: ExponentialBackoff,
    max_retries: u32,
    backoff_max: Duration,
    used: u32,
}

impl Retrier {
    pub fn new(settings: &HttpSettings) -> Retrier {
        let builder = ExponentialBuilder::default()
            .with_min_delay(settings.backoff_initial)
            .with_max_delay(settings.backoff_max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Retrier {
            backoff: builder.build(),
            builder,
            max_retries: settings.max_retries,
            backoff_max: settings.backoff_max,
            used: 0,
        }
    }

    /// Retries spent since the last progress.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// The delay before retrying after `err`, or `None` to give up.
    /// `progressed` says the failed attempt still moved the work forward
    /// (bytes appended to a partial download): that resets the budget.
    pub fn next_delay(&mut self, err: &HttpError, progressed: bool) -> Option<Duration> {
        if !err.retryable() {
            return None;
        }
        if progressed {
            self.used = 0;
            self.backoff = self.builder.build();
        }
        if self.used >= self.max_retries {
            return None;
        }
        self.used += 1;
        let delay = self.backoff.next().unwrap_or(self.backoff_max);
        Some(match err.retry_after() {
            // The server said how long: wait that long (bounded), and at
            // least our own backoff.
            Some(ra) => ra.min(MAX_SERVER_WAIT).max(delay.min(self.backoff_max)),
            None => delay,
        })
    }
}

/// Sleeps `d`, waking early (with `Err(Cancelled)`) when `cancel` is set.
pub fn sleep_cancellable(d: Duration, cancel: Option<&AtomicBool>) -> Result<(), HttpError> {
    let deadline = Instant::now() + d;
    loop {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(HttpError::Cancelled);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(());
        }
        std::thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// A response whose status was a success, body not read yet.
pub type BodyResponse = http::Response<ureq::Body>;

/// HTTP client shared by the threads of one remote reader.
#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
    /// The same without redirect following, for callers that must read a
    /// redirect's own headers ([`HttpClient::send_manual`]).
    manual: ureq::Agent,
    settings: HttpSettings,
    stats: Arc<TransferStats>,
}

impl HttpClient {
    pub fn new(settings: HttpSettings, stats: Arc<TransferStats>) -> HttpClient {
        HttpClient {
            agent: agent(&settings, settings.follow_redirects),
            manual: agent(&settings, false),
            settings,
            stats,
        }
    }

    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    pub fn stats(&self) -> &Arc<TransferStats> {
        &self.stats
    }

    /// A fresh retry budget for one operation.
    pub fn retrier(&self) -> Retrier {
        Retrier::new(&self.settings)
    }

    /// Sends one GET (no retry). Success is a 2xx status after redirects;
    /// any other status becomes [`HttpError::Status`] with the start of the
    /// body as its message.
    pub fn send(&self, url: &str, headers: &[(String, String)]) -> Result<BodyResponse, HttpError> {
        self.send_on(&self.agent, url, headers, false)
    }

    /// [`send`](Self::send) without following redirects: a 3xx with a
    /// `Location` is returned as a success for the caller to follow.
    pub fn send_manual(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<BodyResponse, HttpError> {
        self.send_on(&self.manual, url, headers, true)
    }

    fn send_on(
        &self,
        agent: &ureq::Agent,
        url: &str,
        headers: &[(String, String)],
        redirects_ok: bool,
    ) -> Result<BodyResponse, HttpError> {
        let mut req = agent.get(url);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        self.stats.add_request();
        let resp = req.call().map_err(|e| classify(url, e))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status)
            || (redirects_ok
                && resp.status().is_redirection()
                && resp.headers().contains_key("location"))
        {
            return Ok(resp);
        }
        let headers = resp.headers().clone();
        // The error body is short (JSON or XML); a failure to read it only
        // loses detail, never the status.
        let mut body = resp.into_body();
        let text = body
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Err(status_error(url, status, &headers, &text))
    }

    /// One GET whose whole body is read into memory (no retry).
    pub fn get_once(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<(http::HeaderMap, Vec<u8>), HttpError> {
        let resp = self.send(url, headers)?;
        let (parts, mut body) = resp.into_parts();
        let bytes = body
            .with_config()
            .limit(u64::MAX)
            .read_to_vec()
            .map_err(|e| classify(url, e))?;
        self.stats.add_bytes(bytes.len() as u64);
        Ok((parts.headers, bytes))
    }

    /// Runs `op` until it succeeds, fails for good, or the budget is spent.
    /// Every retry is counted in the stats.
    pub fn retry<T>(
        &self,
        cancel: Option<&AtomicBool>,
        mut op: impl FnMut() -> Result<T, HttpError>,
    ) -> Result<T, HttpError> {
        let mut retrier = self.retrier();
        loop {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(HttpError::Cancelled);
            }
            match op() {
                Ok(v) => return Ok(v),
                Err(e) => match retrier.next_delay(&e, false) {
                    Some(d) => {
                        self.stats.add_retry();
                        sleep_cancellable(d, cancel)?;
                    }
                    None => return Err(e),
                },
            }
        }
    }

    /// GET with retries, whole body in memory.
    pub fn get_with_retry(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<(http::HeaderMap, Vec<u8>), HttpError> {
        self.retry(None, || self.get_once(url, headers))
    }
}

fn agent(settings: &HttpSettings, follow_redirects: bool) -> ureq::Agent {
    let t = Some(settings.request_timeout);
    let config = ureq::Agent::config_builder()
        // We classify statuses ourselves (and read error bodies).
        .http_status_as_error(false)
        .timeout_connect(t)
        .timeout_recv_response(t)
        .timeout_per_read(t)
        .max_redirects(if follow_redirects { 10 } else { 0 })
        .max_redirects_will_error(false)
        // The Hub redirects file downloads to a CDN on another host: the
        // token must not travel there, but must survive same-host redirects
        // (a renamed repository).
        .redirect_auth_headers(RedirectAuthHeaders::SameHost)
        .max_idle_connections(settings.max_connections.max(1))
        .max_idle_connections_per_host(settings.max_connections.max(1))
        .user_agent(format!("tritter-gpu/{}", env!("CARGO_PKG_VERSION")))
        .build();
    ureq::Agent::new_with_config(config)
}

/// The [`HttpError::Status`] of a non-success answer: the Hub's
/// `X-Error-Code`/`X-Error-Message`, else S3's `<Code>` from the body, the
/// body's summary, S3's `x-amz-bucket-region` (its 301 names the right
/// region only there) and the server's wait. Shared by both clients, so
/// their messages are the same.
pub fn status_error(url: &str, status: u16, headers: &http::HeaderMap, body: &str) -> HttpError {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let error_code = text("x-error-code").or_else(|| xml_tag(body, "Code"));
    let mut message = error_message(body);
    if let Some(r) = text("x-amz-bucket-region") {
        message.push_str(&format!(" (x-amz-bucket-region: {r})"));
    }
    HttpError::Status {
        status,
        url: url.to_string(),
        message,
        error_code,
        error_message: text("x-error-message"),
        retry_after: server_wait(headers, status),
    }
}

/// A response header as a string, when present and valid.
pub fn header<B>(resp: &http::Response<B>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// How long the server asks us to wait: `Retry-After: SECONDS`, or on a 429
/// the `RateLimit` header of the IETF draft the Hub sends
/// (`"api";r=0;t=55`: no request left, the window resets in 55 s), plus one
/// second for rounding as `huggingface_hub` does.
pub fn server_wait(headers: &http::HeaderMap, status: u16) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if status == 429 {
        if let Some((remaining, reset)) = text("ratelimit").and_then(parse_ratelimit) {
            if remaining == 0 {
                return Some(Duration::from_secs(reset + 1));
            }
        }
    }
    text("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// `(remaining, reset seconds)` of a `RateLimit` header value such as
/// `"api";r=0;t=55` (the subset `huggingface_hub` reads).
pub fn parse_ratelimit(v: &str) -> Option<(u64, u64)> {
    let (mut r, mut t) = (None, None);
    for part in v.split(';').map(str::trim) {
        if let Some((k, val)) = part.split_once('=') {
            match k.trim() {
                "r" => r = val.trim().parse().ok(),
                "t" => t = val.trim().parse().ok(),
                _ => {}
            }
        }
    }
    Some((r?, t?))
}

/// Maps a ureq error to our classes.
pub fn classify(url: &str, e: ureq::Error) -> HttpError {
    let url = url.to_string();
    match e {
        ureq::Error::Timeout(t) => HttpError::Timeout {
            url,
            detail: t.to_string(),
        },
        ureq::Error::Io(io) => classify_io(&url, io),
        ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::Protocol(_)
        | ureq::Error::BodyStalled => HttpError::Transport {
            url,
            detail: e.to_string(),
        },
        other => HttpError::Fatal {
            url,
            detail: other.to_string(),
        },
    }
}

/// Maps an I/O error met while reading a body. ureq wraps its own errors
/// (a timeout while streaming) in `io::Error`; we unwrap those first.
pub fn classify_io(url: &str, e: io::Error) -> HttpError {
    if e.get_ref().is_some_and(|inner| inner.is::<ureq::Error>()) {
        if let Ok(inner) = e.into_inner().expect("checked").downcast::<ureq::Error>() {
            return classify(url, *inner);
        }
        return HttpError::Transport {
            url: url.to_string(),
            detail: "unreadable error".into(),
        };
    }
    let detail = e.to_string();
    let url = url.to_string();
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => HttpError::Timeout { url, detail },
        _ => HttpError::Transport { url, detail },
    }
}

/// The useful part of an error body: the Hub's `{"error": "..."}`, S3's
/// `<Code>` and `<Message>`, or the first line of anything else.
fn error_message(body: &str) -> String {
    let body = body.trim();
    if body.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
            if let Some(s) = v.get("error").and_then(|e| e.as_str()) {
                return s.to_string();
            }
        }
    }
    if body.starts_with('<') {
        let tag = |name: &str| xml_tag(body, name);
        match (tag("Code"), tag("Message")) {
            (Some(c), Some(m)) => return format!("{c}: {m}"),
            (Some(c), None) => return c,
            _ => {}
        }
    }
    let first = body.lines().next().unwrap_or("");
    first.chars().take(300).collect()
}

/// The text of the first `<name>...</name>` of an XML error body.
fn xml_tag(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&close)? + start;
    Some(body[start..end].trim().to_string()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> HttpError {
        HttpError::Status {
            status: code,
            url: "u".into(),
            message: String::new(),
            error_code: None,
            error_message: None,
            retry_after: None,
        }
    }

    fn fast() -> HttpSettings {
        HttpSettings {
            max_retries: 3,
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_millis(100),
            ..HttpSettings::default()
        }
    }

    #[test]
    fn retry_classes() {
        for code in [500, 502, 503, 504, 408, 429] {
            assert!(status(code).retryable(), "{code}");
        }
        for code in [400, 401, 403, 404, 416] {
            assert!(!status(code).retryable(), "{code}");
        }
        let t = HttpError::Timeout {
            url: "u".into(),
            detail: String::new(),
        };
        assert!(t.retryable());
        assert!(!HttpError::Cancelled.retryable());
    }

    #[test]
    fn budget_is_spent_then_gives_up_and_progress_resets_it() {
        let mut r = Retrier::new(&fast());
        let e = status(503);
        let d1 = r.next_delay(&e, false).expect("1");
        let d2 = r.next_delay(&e, false).expect("2");
        assert!(r.next_delay(&e, false).is_some());
        assert!(r.next_delay(&e, false).is_none(), "budget of 3 spent");
        // Delays are within [initial, 2 * max] whatever the jitter.
        for d in [d1, d2] {
            assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(200));
        }
        assert!(
            r.next_delay(&e, true).is_some(),
            "progress resets the budget"
        );
        assert_eq!(r.used(), 1);
        assert!(r.next_delay(&status(404), false).is_none());
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let mut r = Retrier::new(&fast());
        let e = HttpError::Status {
            status: 429,
            url: "u".into(),
            message: String::new(),
            error_code: None,
            error_message: None,
            retry_after: Some(Duration::from_secs(3600)),
        };
        assert_eq!(r.next_delay(&e, false), Some(MAX_SERVER_WAIT));
        let e = HttpError::Status {
            status: 429,
            url: "u".into(),
            message: String::new(),
            error_code: None,
            error_message: None,
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(r.next_delay(&e, false), Some(Duration::from_secs(2)));
    }

    #[test]
    fn hub_ratelimit_header_sets_the_wait_of_a_429() {
        let mut h = http::HeaderMap::new();
        h.insert("ratelimit", "\"api\";r=0;t=55".parse().expect("hv"));
        h.insert(
            "ratelimit-policy",
            "\"fixed window\";\"api\";q=500;w=300".parse().expect("hv"),
        );
        assert_eq!(server_wait(&h, 429), Some(Duration::from_secs(56)));
        // Requests left: the header is information, not a wait.
        h.insert("ratelimit", "\"api\";r=3;t=55".parse().expect("hv"));
        assert_eq!(server_wait(&h, 429), None);
        h.insert("retry-after", "7".parse().expect("hv"));
        assert_eq!(server_wait(&h, 429), Some(Duration::from_secs(7)));
        assert_eq!(parse_ratelimit("\"api\" ; r = 0 ; t = 9"), Some((0, 9)));
        assert_eq!(parse_ratelimit("garbage"), None);
    }

    #[test]
    fn error_bodies_are_summarised() {
        assert_eq!(
            error_message(r#"{"error":"Access to dataset x is restricted"}"#),
            "Access to dataset x is restricted"
        );
        assert_eq!(
            error_message("<Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"),
            "NoSuchKey: gone"
        );
        assert_eq!(error_message("plain\nmore"), "plain");
    }

    #[test]
    fn cancelled_sleep_returns_early() {
        let flag = AtomicBool::new(true);
        let t = Instant::now();
        assert_eq!(
            sleep_cancellable(Duration::from_secs(5), Some(&flag)),
            Err(HttpError::Cancelled)
        );
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
