//! Progress bars on stderr: for phase 1, input shards done (bytes on disk,
//! with ETA when the total is known), files and MB/s of text processed
//! ([`Progress`]); for every other long loop, units done of a total with
//! rate and ETA ([`StepBar`]), bytes of an input file read ([`StepBar::bytes`])
//! or, for a step we can only time, a ticking spinner ([`StepBar::spinner`]).
//!
//! Visibility has one rule ([`visible`]): drawn only when stderr is a
//! terminal and neither the caller's `quiet` nor `--quiet`
//! ([`super::messages::quiet`]) is set. Redirected to a file or a Slurm log,
//! stderr gets no bar: a log of carriage-return redraws helps no one.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Whether a bar is drawn: on a terminal, and not asked to be quiet.
pub fn visible(quiet: bool, stderr_is_terminal: bool) -> bool {
    !quiet && !super::messages::quiet() && stderr_is_terminal
}

/// The bytes a bar over `path`'s lines counts to: its size on disk when it
/// is not compressed (a `.gz` or `.zst` file's lines are longer than the
/// file, so its bar counts without a total).
pub fn plain_input_size(path: &std::path::Path) -> Option<u64> {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".gz") || name.ends_with(".zst") {
        return None;
    }
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn target(quiet: bool) -> ProgressDrawTarget {
    if visible(quiet, std::io::stderr().is_terminal()) {
        ProgressDrawTarget::stderr_with_hz(4)
    } else {
        ProgressDrawTarget::hidden()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

pub struct Progress {
    bar: ProgressBar,
    files: AtomicU64,
    bytes: AtomicU64,
    started: Instant,
}

impl Progress {
    /// `total_bytes` is the on-disk size of the input shards to read.
    pub fn new(quiet: bool, total_bytes: Option<u64>) -> Progress {
        let bar = match total_bytes {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        };
        bar.set_draw_target(target(quiet));
        let template = match total_bytes {
            Some(_) => "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ETA {eta} | {msg}",
            None => "{spinner} [{elapsed_precise}] {msg}",
        };
        bar.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress {
            bar,
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// Counts records processed and their bytes of text (or announced size).
    pub fn records(&self, files: u64, bytes: u64) {
        let f = self.files.fetch_add(files, Ordering::Relaxed) + files;
        let b = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!(
            "{f} files, {:.1} MB, {:.1} MB/s",
            b as f64 / 1e6,
            b as f64 / 1e6 / secs
        ));
    }

    /// Counts an input shard of `bytes` on disk as done (or skipped).
    pub fn shard_done(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// Prints a line above the bar.
    pub fn println(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Records handled inside the running global step, by all its tasks: a
/// step of few long tasks then still shows it moves. Reset when a step
/// starts ([`StepBar::for_step`]).
static WITHIN_STEP: AtomicU64 = AtomicU64::new(0);

/// Counts `n` records handled by a task of the running global step.
pub fn count_within_step(n: u64) {
    WITHIN_STEP.fetch_add(n, Ordering::Relaxed);
}

/// A bar for one long loop: a global step's tasks, the records of a pass,
/// the bytes of an input. Hidden when stderr is not a terminal or with
/// `--quiet`, like [`Progress`]. The spinner and the clock tick on their
/// own, so a long unit (one big task, one slow batch) still shows the run
/// is alive.
pub struct StepBar {
    bar: ProgressBar,
}

impl StepBar {
    /// `label`, units done of `total`, rate and ETA.
    pub fn new(quiet: bool, total: u64, label: &str, unit: &str) -> StepBar {
        StepBar::with(
            quiet,
            ProgressBar::new(total),
            &format!(
                "{{spinner}} [{{elapsed_precise}}] {label:<10} {{wide_bar}} {{human_pos}}/{{human_len}} {unit} {{per_sec}} ETA {{eta}}"
            ),
        )
    }

    /// A global step: its tasks done of `total`, with rate and ETA, and the
    /// records its tasks have handled so far ([`count_within_step`]).
    pub fn for_step(quiet: bool, total: u64, label: &str) -> StepBar {
        WITHIN_STEP.store(0, Ordering::Relaxed);
        let bar = ProgressBar::new(total);
        bar.set_draw_target(target(quiet));
        bar.set_style(
            style(&format!(
                "{{spinner}} [{{elapsed_precise}}] {label:<10} {{wide_bar}} {{human_pos}}/{{human_len}} tasks {{per_sec}} ETA {{eta}}{{within}}"
            ))
            .with_key(
                "within",
                |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let n = WITHIN_STEP.load(Ordering::Relaxed);
                    if n > 0 {
                        let _ = write!(w, " | {} records", indicatif::HumanCount(n));
                    }
                },
            ),
        );
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(250));
        }
        StepBar { bar }
    }

    /// `label`, units done of an unknown total, and rate.
    pub fn counter(quiet: bool, label: &str, unit: &str) -> StepBar {
        StepBar::with(
            quiet,
            ProgressBar::no_length(),
            &format!(
                "{{spinner}} [{{elapsed_precise}}] {label} {{human_pos}} {unit} ({{per_sec}})"
            ),
        )
    }

    /// `label`, bytes done of `total` (when known) with rate and ETA, and a
    /// message (set with [`StepBar::message`]).
    pub fn bytes(quiet: bool, total: Option<u64>, label: &str) -> StepBar {
        match total {
            Some(n) => StepBar::with(
                quiet,
                ProgressBar::new(n),
                &format!(
                    "{{spinner}} [{{elapsed_precise}}] {label} {{wide_bar}} {{binary_bytes}}/{{binary_total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}} | {{msg}}"
                ),
            ),
            None => StepBar::with(
                quiet,
                ProgressBar::no_length(),
                &format!(
                    "{{spinner}} [{{elapsed_precise}}] {label} {{binary_bytes}} {{binary_bytes_per_sec}} | {{msg}}"
                ),
            ),
        }
    }

    /// `label` and the time spent: a step with nothing to count from here.
    pub fn spinner(quiet: bool, label: &str) -> StepBar {
        StepBar::with(
            quiet,
            ProgressBar::no_length(),
            &format!("{{spinner}} [{{elapsed_precise}}] {label}"),
        )
    }

    fn with(quiet: bool, bar: ProgressBar, template: &str) -> StepBar {
        bar.set_draw_target(target(quiet));
        bar.set_style(style(template));
        if !bar.is_hidden() {
            bar.enable_steady_tick(Duration::from_millis(250));
        }
        StepBar { bar }
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    pub fn set_length(&self, n: u64) {
        self.bar.set_length(n);
    }

    pub fn message(&self, msg: String) {
        self.bar.set_message(msg);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for StepBar {
    /// A bar left on an error path is cleared, not left ticking.
    fn drop(&mut self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_show_only_on_a_terminal_and_never_when_quiet() {
        // `--quiet` is off in unit tests (see `messages`), so the rule is the
        // caller's flag and the terminal.
        assert!(visible(false, true));
        assert!(!visible(true, true));
        assert!(!visible(false, false));
        assert!(!visible(true, false));
    }

    #[test]
    fn a_bar_on_a_non_terminal_is_hidden() {
        // Test output is captured: stderr is not a terminal here unless run
        // by hand with --nocapture in one.
        if std::io::stderr().is_terminal() {
            return;
        }
        assert!(StepBar::new(false, 10, "x", "tasks").bar.is_hidden());
        assert!(StepBar::spinner(false, "x").bar.is_hidden());
        assert!(StepBar::bytes(false, Some(5), "x").bar.is_hidden());
    }
}
