//! Probing Vulkan adapters without letting a driver print on our stderr.
//!
//! Mesa's Vulkan drivers initialise their window-system support while the
//! loader enumerates adapters, and on a machine without a desktop session
//! (no `XDG_RUNTIME_DIR`) they print "error: XDG_RUNTIME_DIR is invalid or
//! not set in the environment." to file descriptor 2, which a user reads as
//! our error although a compute-only probe needs no display at all. We point
//! descriptor 2 at a temporary file for the probe, then restore it and pass
//! on every captured line except those known driver notices (anything else
//! written meanwhile, by a driver or another thread of ours, still appears).

use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;

/// Driver lines that only concern windowing, dropped from the probe's output.
const DROPPED: &[&str] = &["XDG_RUNTIME_DIR"];

/// Runs `f` with stderr captured, then replays what it printed, less the
/// windowing notices. Without a temporary file it just runs `f`.
pub fn quiet<T>(f: impl FnOnce() -> T) -> T {
    let Ok(mut capture) = tempfile::tempfile() else {
        return f();
    };
    let _ = std::io::stderr().flush();
    // SAFETY: dup and dup2 take descriptors and touch no memory of ours;
    // descriptor 2 is restored from `saved` before we return.
    let saved = unsafe { libc::dup(2) };
    if saved < 0 || unsafe { libc::dup2(capture.as_raw_fd(), 2) } < 0 {
        if saved >= 0 {
            unsafe { libc::close(saved) };
        }
        return f();
    }
    let out = f();
    let _ = std::io::stderr().flush();
    // SAFETY: as above; `saved` is ours to close after restoring.
    unsafe {
        libc::dup2(saved, 2);
        libc::close(saved);
    }
    let mut text = String::new();
    if capture.rewind().is_ok() && capture.read_to_string(&mut text).is_ok() {
        let kept: String = text
            .lines()
            .filter(|l| !DROPPED.iter().any(|d| l.contains(d)))
            .map(|l| format!("{l}\n"))
            .collect();
        let _ = std::io::stderr().write_all(kept.as_bytes());
    }
    out
}
