//! A small client of the Chrome DevTools Protocol over
//! `--remote-debugging-pipe`, enough to load a page in headless Chromium and
//! ask it what it saw: console messages, exceptions, log entries (failed
//! loads, CSP violations), network requests, and the values of DOM queries.
//!
//! The pipe transport: Chromium reads commands from fd 3 and writes replies
//! and events to fd 4, each a JSON message ended by a NUL byte. We talk to
//! the browser target, create a page target, attach to it with a flat
//! session, enable the Runtime, Log, Network and Page domains, navigate, wait
//! for `Page.loadEventFired`, then evaluate expressions.
//!
//! Chromium is Debian's `chromium` (or `$TRITTER_CHROMIUM`), started with the
//! flags that work on a machine without a network or a display: headless,
//! no sandbox (we run as root in CI), no GPU, no background networking, and
//! a fresh profile directory.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The Chromium binary, if this machine has one.
pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TRITTER_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// What a page load produced.
#[derive(Debug, Default)]
pub struct Load {
    /// Console messages of type error or warning, exceptions, and log
    /// entries of level error or warning.
    pub problems: Vec<String>,
    /// URLs requested other than the page itself.
    pub requests: Vec<String>,
}

pub struct Browser {
    child: Child,
    commands: std::io::PipeWriter,
    events: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
    /// Events seen while waiting for replies.
    pending: Vec<Value>,
}

const TIMEOUT: Duration = Duration::from_secs(60);

impl Browser {
    pub fn start(binary: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let (cmd_read, cmd_write) = std::io::pipe().expect("pipe");
        let (ev_read, ev_write) = std::io::pipe().expect("pipe");
        let (fd_in, fd_out) = (cmd_read.as_raw_fd(), ev_write.as_raw_fd());
        let mut cmd = Command::new(binary);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: between fork and exec the closure only calls
        // async-signal-safe functions (fcntl, dup2) on descriptors that are
        // open in the parent. Both ends are first moved above 10 so that
        // placing one on 3 cannot overwrite the other.
        unsafe {
            cmd.pre_exec(move || {
                let a = libc::fcntl(fd_in, libc::F_DUPFD, 10);
                let b = libc::fcntl(fd_out, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        drop(cmd_read);
        drop(ev_write);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(ev_read);
            loop {
                let mut buf = Vec::new();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                            if tx.send(v).is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        Browser {
            child,
            commands: cmd_write,
            events: rx,
            next_id: 0,
            session: None,
            _profile: profile,
            pending: Vec::new(),
        }
    }

    /// Sends a command (to the attached page once there is one) and waits
    /// for its reply; events that arrive meanwhile are kept.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = &self.session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.commands.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if v.get("id").and_then(Value::as_u64) == Some(id) => {
                    if let Some(e) = v.get("error") {
                        panic!("chromium: {method} failed: {e}");
                    }
                    return v["result"].clone();
                }
                Ok(v) => self.pending.push(v),
                Err(RecvTimeoutError::Timeout) => panic!("chromium: no reply to {method}"),
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("chromium exited before replying to {method}")
                }
            }
        }
    }

    /// Waits for an event named `method`.
    fn wait_event(&mut self, method: &str) {
        if self.pending.iter().any(|e| e["method"] == method) {
            return;
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    let hit = v["method"] == method;
                    self.pending.push(v);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("chromium: no {method} event"),
            }
        }
    }

    /// Opens `page` in a new tab and waits until it has loaded.
    pub fn load(&mut self, page: &Path) -> Load {
        let url = format!("file://{}", page.canonicalize().unwrap().display());
        let target = self.call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().unwrap().to_string();
        let attached = self.call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        self.session = Some(attached["sessionId"].as_str().unwrap().to_string());
        for domain in ["Runtime", "Log", "Network", "Page"] {
            self.call(&format!("{domain}.enable"), json!({}));
        }
        self.pending.clear();
        self.call("Page.navigate", json!({"url": url}));
        self.wait_event("Page.loadEventFired");
        // A moment for anything the load still logs.
        let _ = self.call("Runtime.evaluate", json!({"expression": "1"}));
        std::thread::sleep(Duration::from_millis(300));
        while let Ok(v) = self.events.try_recv() {
            self.pending.push(v);
        }
        let mut load = Load::default();
        for e in &self.pending {
            let p = &e["params"];
            match e["method"].as_str().unwrap_or("") {
                "Runtime.consoleAPICalled" => {
                    let t = p["type"].as_str().unwrap_or("");
                    if t == "error" || t == "warning" || t == "assert" {
                        load.problems.push(format!("console.{t}: {}", p["args"]));
                    }
                }
                "Runtime.exceptionThrown" => {
                    load.problems
                        .push(format!("exception: {}", p["exceptionDetails"]));
                }
                "Log.entryAdded" => {
                    let level = p["entry"]["level"].as_str().unwrap_or("");
                    if level == "error" || level == "warning" {
                        load.problems.push(format!(
                            "log {level}: {} {}",
                            p["entry"]["text"], p["entry"]["url"]
                        ));
                    }
                }
                "Network.requestWillBeSent" => {
                    let u = p["request"]["url"].as_str().unwrap_or("").to_string();
                    if u != url {
                        load.requests.push(u);
                    }
                }
                _ => {}
            }
        }
        load
    }

    /// The value of a JavaScript expression in the loaded page.
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("evaluating {expression}: {e}");
        }
        r["result"]["value"].clone()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.session = None;
        let mut bytes = serde_json::to_vec(&json!({"id": 0, "method": "Browser.close"})).unwrap();
        bytes.push(0);
        let _ = self.commands.write_all(&bytes);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
